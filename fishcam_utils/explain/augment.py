"""Test-time augmentation for maps: each augmentation changes the image and says how to bring a map of the
changed image back onto the original, so that maps of several augmentations can be averaged (smoothing).

``Augmentation(flip, shift, factor)``: a horizontal flip, a shift by (rows, columns) pixels (a roll: what leaves
one border comes in at the other, and rolls back exactly) and a brightness factor (the map is not moved).
``DEFAULT_TTA``: the identity, the flip, and shifts of two pixels both ways, flipped or not (6 in all);
``PYTORCH_GRAD_CAM_TTA``: pytorch-grad-cam's ``aug_smooth`` (flip x brightness 0.9, 1, 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Augmentation:
    """One change of the images (N, C, H, W) and its inverse on maps (..., H, W)."""

    flip: bool = False
    shift: tuple[int, int] = (0, 0)
    factor: float = 1.0

    def image(self, images: torch.Tensor) -> torch.Tensor:
        """The augmented images: times ``factor``, flipped, then shifted."""
        out = images * self.factor if self.factor != 1.0 else images
        if self.flip:
            out = out.flip(-1)
        if self.shift != (0, 0):
            out = torch.roll(out, self.shift, dims=(-2, -1))
        return out

    def map_back(self, maps: torch.Tensor) -> torch.Tensor:
        """A map of the augmented image, moved back onto the original's pixels."""
        if self.shift != (0, 0):
            maps = torch.roll(maps, (-self.shift[0], -self.shift[1]), dims=(-2, -1))
        return maps.flip(-1) if self.flip else maps


DEFAULT_TTA = tuple(Augmentation(flip=f, shift=s) for f in (False, True) for s in ((0, 0), (2, 2), (-2, -2)))
PYTORCH_GRAD_CAM_TTA = tuple(Augmentation(flip=f, factor=k) for f in (False, True) for k in (0.9, 1.0, 1.1))
