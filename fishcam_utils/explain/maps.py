"""What every explainer does to its maps, once: min-max normalisation (and the check of the
``normalize`` argument), bilinear upsampling, the flat-map test and the first principal component.

Plain tensor functions, no model: the floor every explanation module stands on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

NORMALIZATIONS = ("minmax", None)


def check_normalize(normalize: str | None) -> str | None:
    """``normalize`` itself when it is one of ``NORMALIZATIONS``, else a ``ValueError`` before any work."""
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    return normalize


def normalize_maps(maps: torch.Tensor, normalize: str | None = "minmax") -> torch.Tensor:
    """Per-map min-max to [0, 1] over the last two dimensions; a constant map becomes zeros
    (never NaN). ``normalize=None`` returns the maps unchanged."""
    if check_normalize(normalize) is None:
        return maps
    flat = maps.flatten(-2)
    low = flat.min(-1).values[..., None, None]
    span = flat.max(-1).values[..., None, None] - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., h, w) → (..., H, W), bilinear with pixel centres aligned (``align_corners=False``)."""
    lead = maps.shape[:-2]
    out = F.interpolate(maps.reshape(-1, 1, *maps.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *size)



class FlatMapWarning(UserWarning):
    """Maps whose span is at rounding-noise level: shown as zeros, flagged in ``CAMResult.flat``."""


# A map is flat when its span is within this many rounding errors (of its dtype) of the largest
# term it sums or of its own size: a 1x1 layer, or HiResCAM right before a LayerNorm, where
# sum_c G_c A_c cancels to rounding noise at every pixel.
FLAT_ROUNDING_ERRORS = 1000


def flat_maps(maps: torch.Tensor, raw: torch.Tensor, scale: torch.Tensor | None = None, dims: int = 2) -> torch.Tensor:
    """Which maps carry no spatial information: bool of ``maps.shape[:-dims]``, from the ReLU'd
    ``maps`` and signed ``raw`` at the layer's resolution and the per-pixel size of the terms summed
    (``scale``, same shape, or None). Decided before upsampling, which would add its own ripples."""
    pixels = maps.flatten(-dims)
    span = pixels.amax(-1) - pixels.amin(-1)
    size = raw.abs().flatten(-dims).amax(-1)
    if scale is not None:
        size = torch.maximum(size, scale.flatten(-dims).amax(-1))
    tolerance = FLAT_ROUNDING_ERRORS * torch.finfo(maps.dtype).eps
    return span <= tolerance * size



def principal_projection(features: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) → (N, h, w): each pixel's feature vector, centred over the pixels, projected on
    the first principal component (the first right singular vector). SVD leaves the component's
    sign open; it is chosen so that the map correlates positively with ``features.sum(1)``, the
    map of the summed channels (for G * A, HiResCAM's), so warm means what the features say."""
    n, c, h, w = features.shape
    pixels = features.flatten(2).transpose(1, 2)  # (N, hw, C)
    centred = pixels - pixels.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = (centred @ vh[:, 0, :, None])[..., 0]  # (N, hw)
    summed = features.sum(1).flatten(1)
    agreement = (projection * (summed - summed.mean(1, keepdim=True))).sum(1)
    sign = torch.where(agreement < 0, -1.0, 1.0).to(projection.dtype)
    return (projection * sign[:, None]).reshape(n, h, w)

