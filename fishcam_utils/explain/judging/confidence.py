"""Measures of a map by what the model says of the image the map keeps, and of the map alone.

* ``confidence_change``: the class score of the image multiplied by its map, minus the score of the image
  (pytorch-grad-cam's ``CamMultImageConfidenceChange``); ``average_drop`` and ``increase_in_confidence``
  (Chattopadhay et al. 2018, the Grad-CAM++ paper) summarise it;
* ``sparseness``: the Gini index of a map's values (Chalasani et al. 2020): (n - 1) / n, its largest, for all the
  mass on one of n pixels, 0 for a flat map;
* ``complexity``: the entropy of a map's values read as a distribution (Bhatt et al. 2020): log(H W) for a flat
  map, 0 for one pixel.

Maps are (N, H, W), non-negative; images (N, C, H, W) as the model sees them. Batched, no loop over images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ...models.inspection import eval_mode, logits_of, model_device

SCORES = ("probability", "logit")


@dataclass
class ConfidenceChange:
    """What ``confidence_change`` measured, per image: ``before`` the class score of the image, ``after`` that of
    the image times its map, ``change`` = after - before (all (N,) float); ``score``: what they are
    (``"probability"`` or ``"logit"``)."""

    before: torch.Tensor
    after: torch.Tensor
    score: str = "probability"

    @property
    def change(self) -> torch.Tensor:
        return self.after - self.before


def class_scores(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                 score: str = "probability") -> torch.Tensor:
    """(N,) float on the CPU: the softmax probability (or the logit) of class ``targets`` (N,) for ``images``
    (N, C, H, W), one forward pass on the model's device, without gradients."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}, got {score!r}")
    with eval_mode(model), torch.no_grad():
        logits = logits_of(model(images.to(model_device(model)))).float()
    chosen = logits if score == "logit" else logits.softmax(1)
    return chosen.gather(1, torch.as_tensor(targets).long().to(chosen.device)[:, None])[:, 0].cpu()


def check_maps_for(images: torch.Tensor, maps: torch.Tensor) -> None:
    """Refuse maps that are not one (H, W) map per image of ``images`` (N, C, H, W)."""
    if maps.shape != images.shape[:1] + images.shape[2:]:
        raise ValueError(f"maps must be (N, H, W) = {tuple(images.shape[:1] + images.shape[2:])} for these images, "
                         f"got {tuple(maps.shape)}")


def confidence_change(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
                      score: str = "probability", before: torch.Tensor | None = None) -> ConfidenceChange:
    """The score of class ``targets`` (N,) for ``images`` (N, C, H, W) and for ``images * maps`` (maps (N, H, W)
    in [0, 1], broadcast over channels): two forward passes of the batch. ``score``: ``"probability"`` (softmax,
    as the Grad-CAM++ paper) or ``"logit"``. ``before``: ``class_scores(model, images, targets, score)`` already
    measured (the same for every map of these images), so one pass."""
    check_maps_for(images, maps)
    targets = torch.as_tensor(targets).long()
    if before is None:
        before = class_scores(model, images, targets, score)
    after = class_scores(model, images * maps.to(images)[:, None], targets, score)
    return ConfidenceChange(before, after, score)


def average_drop(change: ConfidenceChange) -> float:
    """Average Drop (%): the mean over images of max(0, before - after) / before, times 100. Lower is better;
    an image whose score was 0 counts as no drop. Of probabilities only: a relative drop of logits, which may be
    negative, means nothing."""
    if change.score != "probability":
        raise ValueError(f"Average Drop is a relative drop of probabilities; this change holds {change.score}s: "
                         f"measure it with confidence_change(..., score='probability')")
    before = change.before
    drop = (before - change.after).clamp_min(0) / torch.where(before > 0, before, torch.ones_like(before))
    return float(100 * drop.mean())


def increase_in_confidence(change: ConfidenceChange) -> float:
    """Increase in Confidence (%): the share of images whose score rose when multiplied by their map, times 100,
    of whichever score ``change`` holds (the paper's: probabilities)."""
    return float(100 * (change.after > change.before).float().mean())


def sparseness(maps: torch.Tensor) -> torch.Tensor:
    """(N,) the Gini index of each map's |values|, in [0, (n - 1) / n]: sum_i (2 i - n - 1) a_(i) / (n sum_i a_(i))
    with the n values sorted ascending (i from 1). A map of zeros is 0 (nothing is concentrated)."""
    values = maps.detach().flatten(1).double().abs().sort(1).values
    n = values.shape[1]
    rank = torch.arange(1, n + 1, dtype=values.dtype, device=values.device)
    total = values.sum(1)
    gini = ((2 * rank - n - 1) * values).sum(1) / (n * torch.where(total > 0, total, torch.ones_like(total)))
    return gini.float()


def complexity(maps: torch.Tensor) -> torch.Tensor:
    """(N,) the entropy (natural log) of each map's values divided by their sum: 0 for one pixel, log(H W) for a
    flat map. A map of zeros is log(H W), as a flat one (it says nothing)."""
    values = maps.detach().flatten(1).double().abs()
    total = values.sum(1, keepdim=True)
    p = torch.where(total > 0, values / torch.where(total > 0, total, torch.ones_like(total)),
                    torch.full_like(values, 1 / values.shape[1]))
    return (-(p * torch.log(torch.where(p > 0, p, torch.ones_like(p)))).sum(1)).float()
