"""ARCC, as pytorch-grad-cam's ``metrics.arcc`` computes it: the ADCC of Poppi et al. 2021 ("Revisiting the
evaluation of class activation mapping for explainability") with ROAD in the place of Average Drop. One number
from three of a map's properties, their harmonic mean, so that none can be traded for another:

* coherency: a map should not change when the image is multiplied by it: (Pearson's r between the map of the
  map-multiplied image and the map, + 1) / 2;
* 1 - its mean heat (pytorch-grad-cam calls the mean heat "complexity"; this package's ``complexity`` is the
  entropy of the map, Bhatt et al. 2020);
* ROAD combined, doubled and clipped to [0, 1].

pytorch-grad-cam adds 1e-8 to each of the three and to Pearson's denominator; here a component of 0 makes ARCC
0 and a flat map's correlation is 0, so the two agree to within those 1e-8s.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .road import road_combined

ARCC_FRACTIONS = (0.2, 0.4, 0.6, 0.8)


def coherency(explain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
              maps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N,) in [0, 1]: (r + 1) / 2, r Pearson's correlation over the pixels between ``maps`` (N, H, W) and
    ``explain(images * maps, targets)``; 0.5 where either map is flat."""
    again = explain(images * maps.to(images)[:, None], torch.as_tensor(targets).long())
    a, b = maps.detach().flatten(1).double(), again.detach().flatten(1).double().to(maps.device)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    spread = a.norm(dim=1) * b.norm(dim=1)
    r = torch.where(spread > 0, (a * b).sum(1) / torch.where(spread > 0, spread, torch.ones_like(spread)), 0.0)
    return ((r + 1) / 2).cpu()


def mean_heat(maps: torch.Tensor) -> torch.Tensor:
    """(N,) each map's mean |value|: 0 for a map of zeros, 1 for a map of ones (maps in [0, 1])."""
    return maps.detach().flatten(1).double().abs().mean(1).cpu()


def arcc(model: nn.Module, explain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
         maps: torch.Tensor, targets: torch.Tensor, fractions: Sequence[float] = ARCC_FRACTIONS,
         noise: float = 0.01, seed: int = 0, ties: str = "rank") -> torch.Tensor:
    """(N,) ARCC in [0, 1], higher is better: the harmonic mean of ``coherency``, 1 - ``mean_heat`` and ROAD
    combined (``road_combined`` over ``fractions``, ``ties`` as there; pytorch-grad-cam's: ``"threshold"``) times
    2, clipped to [0, 1]. ``maps`` (N, H, W) in [0, 1] are ``explain(images, targets)``'s."""
    road = 2 * road_combined(model, images, maps, targets, fractions, noise, seed, ties).double()
    parts = torch.stack([coherency(explain, images, maps, targets), 1 - mean_heat(maps), road.clamp(0, 1)])
    zero = (parts <= 0).any(0)
    return torch.where(zero, 0.0, 3 / (1 / torch.where(parts > 0, parts, torch.ones_like(parts))).sum(0))
