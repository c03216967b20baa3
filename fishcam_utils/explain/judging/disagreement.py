"""Every measure of the package on one table, for "do the measures agree?" (notebook 08).

``every_measure`` scores named map makers (a method at a layer, a smoothed variant, a reference, a map built to
game one measure) by ``map_scores`` plus ROAD (most and least relevant first) and the random-logit test. Then
``agreement.rankings`` and ``agreement.kendall_tau`` compare the rankings the measures give.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from .confidence import class_scores
from .experiments import EvidenceBatch, explanation_maps, map_scores
from .random_logit import random_logit
from .road import road_changes

# explain(images (N, C, H, W), classes (N,)) -> maps (N, H, W) in [0, 1]
MapMaker = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
ROAD_FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)
# What map_scores measures, besides energy elsewhere (energy_<mask>).
SCORE_COLUMNS = ("pointing", "pointing_tol", "energy", "deletion_auc", "insertion_auc", "average_drop",
                 "increase_in_confidence", "sparseness", "complexity")


def map_maker(model: nn.Module, method: str, layer: str | None = None, options: Mapping[str, Any] | None = None,
              cam_options: Mapping[str, Any] | None = None) -> MapMaker:
    """A ``MapMaker`` by ``explanation_maps``: ``method`` at ``layer``, with call ``options`` (``augment=``,
    ``eigen_smooth=``) and ``cam_options`` (``samples=`` for SmoothGrad)."""
    def explain(images: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return explanation_maps(model, images, classes, method, layer, progress=False, options=options,
                                cam_options=cam_options)
    return explain


def every_measure(model: nn.Module, batch: EvidenceBatch, makers: Mapping[str, MapMaker], num_classes: int,
                  mask: str = "evidence", tolerance: float = 0, curve_images: int = 32, steps: int = 20,
                  baseline: str = "blur", road_fractions: Sequence[float] = ROAD_FRACTIONS, seed: int = 0,
                  known: pd.DataFrame | None = None, ties: str = "rank", progress: bool = True) -> pd.DataFrame:
    """One row per maker (index: its name): ``map_scores``'s columns, and on the first ``curve_images``
    ``road_most`` / ``road_least`` (the mean change of the class probability over ``road_fractions`` removed,
    most or least relevant first: lower / higher is better; ``ties`` as ``road``'s) and ``random_logit`` (SSIM
    between the map of the class and of a random other of ``num_classes``: lower is better); ``seconds``.
    ``known``: a table whose rows (index: maker names) already hold ``map_scores``'s columns for this batch, with
    the same settings (not checked), so those makers' maps are made again for the first ``curve_images`` only
    (a reference drawn at random draws anew)."""
    curve = batch.head(curve_images)
    # The untouched images' probabilities, the same for every maker: once for the batch, once for the curve
    # images (ROAD's, in their own batch, as road_changes alone would measure them).
    before = class_scores(model, batch.images, batch.labels)
    curve_before = class_scores(model, curve.images, curve.labels)
    rows = {}
    for name, explain in tqdm(makers.items(), desc="every measure", disable=not progress):
        start = time.perf_counter()
        if known is not None and name in known.index:
            first = explain(curve.images, curve.labels)
            scores = {column: known.loc[name, column] for column in known.columns
                      if column in SCORE_COLUMNS or column.startswith("energy_")}
        else:
            maps = explain(batch.images, batch.labels)
            scores = map_scores(model, batch, maps, mask, tolerance, curve_images, steps, baseline, before=before)
            first = maps[:len(curve)]
        road = {order: road_changes(model, curve.images, first, curve.labels, road_fractions, order, seed=seed + k,
                                    ties=ties, before=curve_before).change.mean().item()
                for k, order in enumerate(("most", "least"))}
        similarity = random_logit(explain, curve.images, curve.labels, num_classes, seed=seed, maps=first)
        rows[name] = {**scores, "road_most": road["most"], "road_least": road["least"],
                      "random_logit": similarity.nanmean().item(), "seconds": time.perf_counter() - start}
    table = pd.DataFrame(rows).T
    table.attrs.update(images=len(batch), curve_images=len(curve), steps=steps, road_fractions=list(road_fractions))
    return table
