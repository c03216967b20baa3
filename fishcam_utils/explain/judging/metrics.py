"""Is a heatmap right? Measures of an explanation against ground truth and against the model.

Every function works on a batch at once (tensors, no Python loop over images):

* ``pointing_game``: does the map's maximum fall inside the mask (within ``tolerance`` pixels)?
* ``energy_in_mask``: which share of the map's mass lies inside the mask?
* ``deletion_curve`` / ``insertion_curve``: the class probability as pixels are removed (or
  restored) in the map's order; a faithful map makes deletion fall fast and insertion rise fast.
  Each step is one forward pass of the whole batch (or ``batch_size`` images at a time).
* ``spearman``: rank correlation of two batches of maps (ties get average ranks), for the
  model-randomisation sanity check (Adebayo et al. 2018).

Maps are (N, H, W), non-negative (CAMs after the ReLU); masks are (N, H, W) bool of the same size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torch import nn

from ...models.inspection import eval_mode, logits_of


def _check_maps(maps: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    maps = torch.as_tensor(maps)
    if maps.ndim != 3:
        raise ValueError(f"maps must be (N, H, W), got shape {tuple(maps.shape)}; for one map use map[None]")
    if masks is not None and tuple(torch.as_tensor(masks).shape) != tuple(maps.shape):
        raise ValueError(f"maps {tuple(maps.shape)} and masks {tuple(torch.as_tensor(masks).shape)} must have the "
                         f"same shape; make the CAMs at the image size (they are, by default)")
    if masks is not None:
        masks = torch.as_tensor(masks)
        if masks.dtype != torch.bool and not ((masks == 0) | (masks == 1)).all():
            raise ValueError(f"masks must be True/False (or 0/1), got values up to {masks.max().item():g}; a mask "
                             f"read as 0/255 pixels becomes one with masks > 0")
    broken = ~torch.isfinite(maps.detach().float().flatten(1)).all(1)
    if broken.any():
        raise ValueError(f"maps {broken.nonzero().flatten().tolist()[:20]} hold NaN or inf values, so no score of "
                         f"them would mean anything; check how they were made (a NaN image?)")
    return maps.detach().float()


def dilate(masks: torch.Tensor, radius: int) -> torch.Tensor:
    """(N, H, W) bool masks grown by a disk of ``radius`` pixels (Euclidean); radius 0 returns them."""
    masks = torch.as_tensor(masks).bool()
    if radius < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {radius}")
    if radius == 0:
        return masks
    r = int(math.ceil(radius))
    offsets = torch.arange(-r, r + 1, dtype=torch.float32, device=masks.device)  # the kernel where the masks are
    disk = (offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius ** 2).float()
    grown = F.conv2d(masks[:, None].float(), disk[None, None], padding=r)[:, 0]
    return grown > 0.5


def pointing_game(maps: torch.Tensor, masks: torch.Tensor, tolerance: float = 0) -> torch.Tensor:
    """(N,) bool: a hit when the map's maximum lies inside the mask, or within ``tolerance`` pixels
    of it. A map whose maximum is a plateau hits only if every maximal pixel does (a coarse map
    gets no benefit of the doubt), and a constant map (say all zero) points nowhere: a miss."""
    maps = _check_maps(maps, masks)
    target = dilate(masks, tolerance).flatten(1)
    flat = maps.flatten(1)
    top = flat.max(1, keepdim=True).values
    at_max = flat >= top  # every maximal pixel
    constant = flat.min(1).values >= top[:, 0]
    all_inside = ~(at_max & ~target).any(1)
    return all_inside & ~constant


def energy_in_mask(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) float in [0, 1]: the share of each map's mass inside its mask (the energy-based pointing
    game of Score-CAM, Wang et al. 2020). Negative values are clipped to 0; an all-zero map scores 0."""
    maps = _check_maps(maps, masks).clamp_min(0)
    total = maps.sum((1, 2))
    inside = (maps * torch.as_tensor(masks).float()).sum((1, 2))
    return torch.where(total > 0, inside / total.clamp_min(torch.finfo(total.dtype).tiny), torch.zeros_like(total))


def per_class(values, labels, classes, name: str = "mean") -> pd.DataFrame:
    """A per-image score (hits, energies, AUCs: (N,)) averaged per true class and overall: one row per
    class plus ``"overall"``, columns ``images`` and ``name``. NaN scores are left out of the means."""
    values = torch.as_tensor(values).detach().float().cpu().numpy()
    labels = torch.as_tensor(labels).cpu().numpy()
    if values.shape != labels.shape:
        raise ValueError(f"one score per image: got {values.shape[0]} scores for {labels.shape[0]} labels")
    rows = {name_: (int((labels == k).sum()), float(np.nanmean(values[labels == k])) if (labels == k).any()
                    else float("nan")) for k, name_ in enumerate(classes)}
    rows["overall"] = (len(values), float(np.nanmean(values)) if len(values) else float("nan"))
    return pd.DataFrame.from_dict(rows, orient="index", columns=["images", name])


# ---------------------------------------------------------------------------------------------
# Deletion and insertion

BASELINES = ("blur", "mean", "zero")


def _gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, C, H, W) images blurred by a Gaussian of ``sigma`` pixels, cut at 3 sigma, with reflected
    borders (so the edges keep the image's colours); same dtype and device."""
    radius = max(1, int(3 * sigma))
    h, w = images.shape[-2:]
    # Reflection needs a pad smaller than the side, so a huge sigma is cut at the image's size
    # (and a side of 1 pixel is not blurred along).
    kx, ky = 2 * min(radius, w - 1) + 1, 2 * min(radius, h - 1) + 1
    # torchvision builds a full (ky, kx) kernel, (6 sigma)^2 taps per pixel (seconds per 224 px image
    # on a CPU); a row pass then a column pass give the same result with 12 sigma taps.
    rows = TF.gaussian_blur(images, [kx, 1], [sigma, sigma])
    return TF.gaussian_blur(rows, [1, ky], [sigma, sigma])


def make_baseline(images: torch.Tensor, baseline: str | torch.Tensor = "blur",
                  sigma: float | None = None) -> torch.Tensor:
    """What a removed pixel becomes, (N, C, H, W): ``"blur"`` a Gaussian blur of the image (sigma
    ``W / 8`` by default), ``"mean"`` each image's mean colour, ``"zero"`` zeros (the normalised
    mean colour of the training data), or a tensor broadcastable to the images."""
    if isinstance(baseline, torch.Tensor):
        return baseline.to(images).expand_as(images)
    if baseline == "zero":
        return torch.zeros_like(images)
    if baseline == "mean":
        return images.mean((2, 3), keepdim=True).expand_as(images)
    if baseline == "blur":
        return _gaussian_blur(images, images.shape[-1] / 8 if sigma is None else sigma)
    raise ValueError(f"baseline must be one of {BASELINES} or a tensor, got {baseline!r}")


@dataclass
class Curve:
    """Deletion or insertion curves of N images: ``fractions`` (S + 1,) from 0 to 1, the share of
    pixels removed (deletion) or restored (insertion); ``probs`` (N, S + 1) the softmax probability of
    each image's target class; ``auc`` (N,) the area under each curve (trapezoid rule), in [0, 1]."""

    kind: str
    fractions: torch.Tensor
    probs: torch.Tensor
    auc: torch.Tensor


def _check_classes(targets: torch.Tensor, classes: int) -> None:
    if ((targets < 0) | (targets >= classes)).any():
        raise ValueError(f"targets must be classes of the model, 0 to {classes - 1}; got {targets.tolist()[:20]}")


def _curve(kind: str, model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets, steps: int,
           baseline: str | torch.Tensor, batch_size: int | None) -> Curve:
    if images.ndim != 4 or maps.ndim != 3 or images.shape[0] != maps.shape[0] or images.shape[-2:] != maps.shape[-2:]:
        raise ValueError(f"images (N, C, H, W) and maps (N, H, W) must agree; got {tuple(images.shape)} and "
                         f"{tuple(maps.shape)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    n, _, h, w = images.shape
    _check_maps(maps)
    targets = torch.as_tensor(targets, device=images.device).long().reshape(-1).expand(n)
    maps = maps.detach().float().to(images.device)
    # Rank of every pixel in the map's order (0 = hottest); ties are broken by position, so the
    # order is the same on every run.
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w, device=images.device).expand(n, -1))
    rank = rank.view(n, 1, h, w)
    base = make_baseline(images, baseline)
    fractions = torch.linspace(0, 1, steps + 1)
    counts = torch.round(fractions * h * w).long()
    size = batch_size or n
    probs = torch.empty(n, steps + 1)
    with eval_mode(model), torch.inference_mode():
        for s, k in enumerate(counts.tolist()):
            changed = rank < k  # the k hottest pixels
            x = torch.where(changed, base, images) if kind == "deletion" else torch.where(changed, images, base)
            for start in range(0, n, size):
                logits = logits_of(model(x[start:start + size])).float()
                if s == 0 and start == 0:
                    _check_classes(targets, logits.shape[1])
                probs[start:start + size, s] = (logits.softmax(1)
                                                .gather(1, targets[start:start + size, None])[:, 0].cpu())
    auc = torch.trapezoid(probs, fractions, dim=1)
    return Curve(kind, fractions, probs, auc)


def deletion_curve(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets, steps: int = 50,
                   baseline: str | torch.Tensor = "blur", batch_size: int | None = None) -> Curve:
    """Remove pixels from the hottest down, ``steps`` equal shares, replacing them by ``baseline``
    (``make_baseline``). Lower area = a more faithful map. One forward pass of the batch per step."""
    return _curve("deletion", model, images, maps, targets, steps, baseline, batch_size)


def insertion_curve(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets, steps: int = 50,
                    baseline: str | torch.Tensor = "blur", batch_size: int | None = None) -> Curve:
    """Start from ``baseline`` and restore pixels from the hottest down. Higher area = better."""
    return _curve("insertion", model, images, maps, targets, steps, baseline, batch_size)


# ---------------------------------------------------------------------------------------------
# Rank correlation


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks (0-based) along the last dimension of (N, D) values; tied values share their mean rank."""
    values = values.detach().float()
    n, d = values.shape
    order = values.argsort(dim=1, stable=True)
    ordered = values.gather(1, order)
    starts = torch.ones_like(ordered, dtype=torch.bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = starts.long().cumsum(1) - 1
    position = torch.arange(d, dtype=torch.float32).expand(n, d)
    total = torch.zeros(n, d).scatter_add_(1, group, position)
    count = torch.zeros(n, d).scatter_add_(1, group, torch.ones(n, d))
    mean_rank = (total / count.clamp_min(1)).gather(1, group)
    return torch.empty(n, d).scatter_(1, order, mean_rank)


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) Spearman rank correlation between paired maps a[i] and b[i] (any shape after the first
    dimension), ties ranked by their average. A constant map has no ranking: its correlation is NaN."""
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        raise ValueError(f"the two batches of maps must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    ra, rb = average_ranks(a.flatten(1).cpu()), average_ranks(b.flatten(1).cpu())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denominator = (ra.norm(dim=1) * rb.norm(dim=1))
    return torch.where(denominator > 0, (ra * rb).sum(1) / denominator.clamp_min(1e-12),
                       torch.full_like(denominator, float("nan")))
