"""Preprocessing for training, for evaluation (predictions and CAMs alike), and its inverse.

The transforms take an image, or an ``(image, masks)`` pair where ``masks`` is a dict of
``tv_tensors.Mask``: geometric augmentations then move the masks with the image, and colour
changes leave them alone. Images enter as uint8 (H, W, 3) arrays or (3, H, W) tensors.
Masks are resized with exact nearest-neighbour sampling, so they stay on the pixels they
mark (torchvision's default for masks drifts by up to a pixel).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _resize_mask_exactly(kernel: Callable, mask: tv_tensors.Mask, **kwargs) -> tv_tensors.Mask:
    """Resize a mask with NEAREST_EXACT (pixel centres), as bilinear resizing of images does.

    torchvision resizes masks with legacy NEAREST, whose sampling grid is shifted by half a
    source pixel: on upscaling, the mask lands up to a pixel off the image it belongs to.
    """
    data = mask.as_subclass(torch.Tensor)
    flat = data.ndim == 2
    if flat:
        data = data[None]
    out = kernel(data.to(torch.uint8), **kwargs, interpolation=InterpolationMode.NEAREST_EXACT).to(mask.dtype)
    return tv_tensors.wrap(out[0] if flat else out, like=mask)


def _parent_transform(obj: v2.Transform, cls: type) -> Callable:
    parent = super(cls, obj)
    return getattr(parent, "transform", None) or parent._transform  # torchvision < 0.21 names it _transform


class Resize(v2.Resize):
    """``v2.Resize`` that keeps masks aligned with the image (see ``_resize_mask_exactly``)."""

    def transform(self, inpt, params):
        if isinstance(inpt, tv_tensors.Mask):
            return _resize_mask_exactly(F.resize, inpt, size=self.size, max_size=self.max_size)
        return _parent_transform(self, Resize)(inpt, params)

    _transform = transform


class RandomResizedCrop(v2.RandomResizedCrop):
    """``v2.RandomResizedCrop`` that keeps masks aligned with the image."""

    def transform(self, inpt, params):
        if isinstance(inpt, tv_tensors.Mask):
            return _resize_mask_exactly(F.resized_crop, inpt, **params, size=self.size)
        return _parent_transform(self, RandomResizedCrop)(inpt, params)

    _transform = transform


def eval_transform(size: int = 64) -> Callable:
    """Resize to ``size`` x ``size`` (antialiased bilinear), scale to [0, 1], ImageNet-normalise.

    The one preprocessing for validation, test, prediction and CAMs. Returns (3, size, size)
    float tensors; masks come back resized (nearest) to the same grid.
    """
    return v2.Compose(
        [
            v2.ToImage(),
            Resize((size, size), antialias=True),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def train_transform(size: int = 64, strength: float = 1.0) -> Callable:
    """Augmentation for training: random crop and zoom, flip, small rotation, colour jitter.

    ``strength`` scales all of it (0 gives the eval preprocessing plus nothing random).
    No hue jitter: some species differ by belly colour, and torchvision's hue shift was 40 % of the
    augmentation's time (0.8 of 1.8 ms per 64 px photo).
    """
    if strength < 0:
        raise ValueError(f"strength must be >= 0, got {strength}")
    s = float(strength)
    steps: list[Callable] = [
        v2.ToImage(),
        Resize((size, size), antialias=True),
    ]
    if s > 0:
        steps += [
            RandomResizedCrop(size, scale=(max(0.05, 1 - 0.3 * s), 1.0), ratio=(1 - 0.15 * s, 1 + 0.15 * s),
                              antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10 * s),
            v2.ColorJitter(brightness=0.25 * s, contrast=0.25 * s, saturation=0.2 * s),
        ]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    return v2.Compose(steps)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Undo the ImageNet normalisation: (..., 3, H, W) → same shape, clamped to [0, 1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x * std + mean).clamp(0, 1)


def to_display(x: torch.Tensor) -> np.ndarray:
    """A normalised (3, H, W) or (N, 3, H, W) tensor as float images in [0, 1], (H, W, 3) or (N, H, W, 3)."""
    return denormalize(x.detach().cpu().float()).movedim(-3, -1).numpy()


def masks_to_tv(masks: dict[str, np.ndarray]) -> dict[str, tv_tensors.Mask]:
    """Boolean (H, W) numpy masks → ``tv_tensors.Mask`` so that transforms move them with the image."""
    return {k: tv_tensors.Mask(torch.from_numpy(np.ascontiguousarray(m))) for k, m in masks.items()}
