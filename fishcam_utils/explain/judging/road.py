"""ROAD: RemOve And Debias (Rong et al. 2022), deletion without the blur's tell-tale shapes.

Deleting pixels by blurring or greying them leaves the shape of what was deleted in the image, and a model can
read the shape (the "class information leakage" ROAD measures). ROAD fills each removed pixel with the weighted
mean of its eight neighbours (4-neighbours 1/6, diagonals 1/12), all removed pixels at once: one sparse linear
system per image and fraction, then a little noise. A faithful map makes the score fall fast when its most
relevant pixels go (``order="most"``) and stay when its least relevant go (``order="least"``).

Which pixels go: by default (``ties="rank"``) exactly round(fraction H W) of them, in the map's order, ties broken
by position as ``deletion_curve`` breaks them, so every map loses the same share. pytorch-grad-cam removes every
pixel at or above the map's percentile instead (``ties="threshold"``): a map zero on most pixels then loses far
more than the share asked for (all its zeros when the least relevant go first, and when the most relevant go
first at a share beyond its warm pixels), and a flat map loses all of its pixels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.linalg import spsolve
from torch import nn

from .confidence import check_maps_for, class_scores

# (row offset, column offset) -> weight: the neighbours a removed pixel is the weighted mean of.
NEIGHBOURS = {(0, 1): 1 / 6, (0, -1): 1 / 6, (1, 0): 1 / 6, (-1, 0): 1 / 6,
              (1, 1): 1 / 12, (1, -1): 1 / 12, (-1, 1): 1 / 12, (-1, -1): 1 / 12}
ORDERS = ("most", "least")
TIES = ("rank", "threshold")
FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def linear_impute(image: torch.Tensor, removed: torch.Tensor) -> torch.Tensor:
    """(C, H, W) ``image`` with the pixels ``removed`` (H, W) bool replaced, every channel at once, by the
    solution of: each removed pixel equals the weighted mean of its neighbours inside the image (``NEIGHBOURS``),
    known or removed. One sparse solve; no noise. With every pixel removed (a flat map ties them all at its
    threshold) nothing is known: each channel is filled with its mean, the image's least informative version."""
    c, h, w = image.shape
    flat = removed.reshape(-1).cpu().numpy()
    holes = np.flatnonzero(flat)
    if len(holes) == 0:
        return image.clone()
    if len(holes) == h * w:
        return image.detach().mean((1, 2), keepdim=True).expand_as(image).clone()
    number = np.full(h * w, -1)
    number[holes] = np.arange(len(holes))
    values = image.detach().reshape(c, -1).double().cpu().numpy()
    rows, cols = holes // w, holes % w
    matrix_rows, matrix_cols, entries = [], [], []
    rhs = np.zeros((len(holes), c))
    total = np.zeros(len(holes))
    for (dy, dx), weight in NEIGHBOURS.items():
        y, x = rows + dy, cols + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        at = np.flatnonzero(inside)
        neighbour = y[inside] * w + x[inside]
        total[at] += weight
        unknown = flat[neighbour]
        matrix_rows.append(at[unknown])
        matrix_cols.append(number[neighbour[unknown]])
        entries.append(np.full(int(unknown.sum()), weight))
        rhs[at[~unknown]] -= weight * values[:, neighbour[~unknown]].T
    # Each equation: sum_q w_q x_q - (sum_q w_q) x_p = 0, the known x_q moved to the right-hand side.
    everything = np.arange(len(holes))
    matrix = coo_matrix((np.concatenate(entries + [-total]),
                         (np.concatenate(matrix_rows + [everything]), np.concatenate(matrix_cols + [everything]))),
                        shape=(len(holes), len(holes))).tocsc()
    solved = spsolve(matrix, rhs).reshape(len(holes), c)
    out = image.detach().clone().reshape(c, -1)
    out[:, torch.as_tensor(holes)] = torch.as_tensor(solved.T, dtype=out.dtype).to(out.device)
    return out.reshape(c, h, w)


def removed_pixels(maps: torch.Tensor, fraction: float, order: str = "most", ties: str = "rank") -> torch.Tensor:
    """(N, H, W) bool: the pixels removed at ``fraction``, the most relevant first (``"most"``) or the least.
    ``ties="rank"``: exactly round(fraction H W) pixels in the map's order, ties broken by position (the
    earlier pixel first, as ``deletion_curve``); ``ties="threshold"``: pytorch-grad-cam's rule, every pixel at or
    above the ``1 - fraction`` quantile of the map (``"most"``) or of ``1 - map`` (``"least"``), linear
    interpolation, ties all removed."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    if ties not in TIES:
        raise ValueError(f"ties must be one of {TIES}, got {ties!r}")
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie strictly between 0 and 1, got {fraction}")
    if ties == "threshold":  # as pytorch-grad-cam: 1 - map in the map's own dtype
        values = (maps if order == "most" else 1 - maps).flatten(1).double()
        threshold = torch.quantile(values, 1 - fraction, dim=1, keepdim=True)
        return (values >= threshold).reshape(maps.shape)
    values = maps.flatten(1).double() * (1 if order == "most" else -1)  # negated exactly: every value keeps its rank
    count = round(fraction * values.shape[1])
    first = values.argsort(dim=1, descending=True, stable=True)[:, :count]
    return torch.zeros_like(values, dtype=torch.bool).scatter_(1, first, True).reshape(maps.shape)


def road(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
         fractions: Sequence[float] = FRACTIONS, order: str = "most", noise: float = 0.01,
         seed: int = 0, ties: str = "rank") -> pd.DataFrame:
    """ROAD: for each fraction, the images (N, C, H, W) with that fraction of their pixels removed in the order
    of ``maps`` (N, H, W) (``removed_pixels``, by ``ties``) and imputed (``linear_impute`` plus Gaussian noise of
    std ``noise``, seeded), and the probability of ``targets`` (N,). One row per fraction: ``fraction``,
    ``probability`` (mean), ``change`` (mean of probability minus that of the untouched image). One forward pass
    of the batch per fraction."""
    changes = road_changes(model, images, maps, targets, fractions, order, noise, seed, ties)
    table = pd.DataFrame({"fraction": list(fractions), "probability": changes.after.mean(1).tolist(),
                          "change": changes.change.mean(1).tolist()})
    table.attrs.update(order=order, noise=noise, images=len(images), ties=ties)
    return table


@dataclass
class RoadChanges:
    """Per fraction and image, (F, N) float: ``after`` the target's probability once removed and imputed;
    ``before`` (N,) that of the untouched image."""

    before: torch.Tensor
    after: torch.Tensor

    @property
    def change(self) -> torch.Tensor:
        return self.after - self.before


def road_changes(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
                 fractions: Sequence[float] = FRACTIONS, order: str = "most", noise: float = 0.01,
                 seed: int = 0, ties: str = "rank", before: torch.Tensor | None = None) -> RoadChanges:
    """``road``'s probabilities image by image, before and after each fraction's removal. ``before``: the
    untouched images' ``class_scores`` already measured (the same for every map of them), so no pass for it."""
    check_maps_for(images, maps)
    targets = torch.as_tensor(targets).long()
    generator = torch.Generator().manual_seed(seed)
    images, maps = images.detach().cpu(), maps.detach().cpu()  # imputed on the CPU (scipy), scored on the model's
    if before is None:
        before = class_scores(model, images, targets)
    after = []
    for fraction in fractions:
        removed = removed_pixels(maps, fraction, order, ties)
        filled = torch.stack([linear_impute(image, hole) for image, hole in zip(images, removed)])
        filled = filled + noise * torch.randn(filled.shape, generator=generator, dtype=filled.dtype) * removed[:, None]
        after.append(class_scores(model, filled, targets))
    return RoadChanges(before, torch.stack(after))


def road_combined(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, targets: torch.Tensor,
                  fractions: Sequence[float] = FRACTIONS, noise: float = 0.01, seed: int = 0,
                  ties: str = "rank") -> torch.Tensor:
    """(N,) pytorch-grad-cam's ``ROADCombined``: the mean over ``fractions`` of (change when the least relevant
    go - change when the most relevant go) / 2, in [-0.5, 0.5]; higher is better."""
    before = class_scores(model, images, targets)
    most = road_changes(model, images, maps, targets, fractions, "most", noise, seed, ties, before).change
    least = road_changes(model, images, maps, targets, fractions, "least", noise, seed + 1, ties, before).change
    return ((least - most) / 2).mean(0)
