"""The experiments of notebook 08, a function each, so that the notebook and ``fishcam evaluate-cam``
share them.

* ``methods_by_layers``: pointing game and energy against the evidence masks, deletion and
  insertion areas, for every method at every layer;
* ``sanity_check``: the model-parameter randomisation test of Adebayo et al. (2018);
* ``shortcut_energy``: how much of the map lies on a shortcut marker and how much on the trait.

Maps explain each image's **true** class, the class whose evidence the masks mark.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn
from tqdm.auto import tqdm

from ...models.inspection import model_device
from .. import registry
from ..guided import GuidedBackprop
from ..registry import make_cam
from .confidence import (
    average_drop,
    class_scores,
    complexity,
    confidence_change,
    increase_in_confidence,
    sparseness,
)
from .metrics import deletion_curve, energy_in_mask, insertion_curve, per_class, pointing_game, spearman
from .references import reference_names


def table_methods() -> list[str]:
    """Methods of the methods x layers table: every registered method that explains at a layer and works
    at any layer (the CAM family and guided Grad-CAM, by its saliency), in the registry's order."""
    return registry.method_names(any_layer=True, needs_layer=True)


# Methods of the sanity check: Grad-CAM and guided Grad-CAM, which need a layer, and every input-gradient map
# (guided backprop, the plain gradient), which does not.
SANITY_METHODS = ("gradcam", "guided-gradcam", *registry.method_names(family="input-gradient"))


@dataclass
class EvidenceBatch:
    """Images of a single-view dataset with their masks, as one batch.

    ``images`` (N, 3, H, W) normalised; ``labels`` (N,); ``masks`` kind → (N, H, W) bool;
    ``indices`` the dataset positions; ``classes`` the class names.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: dict[str, torch.Tensor]
    indices: list[int]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.indices)

    def head(self, n: int) -> EvidenceBatch:
        """The first ``n`` images (the batch is ordered class by class in turn, so any head is balanced)."""
        return EvidenceBatch(self.images[:n], self.labels[:n], {k: m[:n] for k, m in self.masks.items()},
                             self.indices[:n], self.classes)


def interleaved(groups: Sequence[Sequence[int]]) -> list[int]:
    """The positions of ``groups`` (one list per class) taken in turn, a, b, c, a, b, c, ...: any first n are
    balanced."""
    return [group[r] for r in range(max(map(len, groups), default=0)) for group in groups if r < len(group)]


def load_evidence(dataset, per_class: int | None = None, require: str | None = None) -> EvidenceBatch:
    """Up to ``per_class`` images of each class (all by default) of a dataset made with
    ``make_datasets(..., masks=[...])``, interleaved class by class (a, b, c, a, b, c, ...). With ``require``
    (a mask kind, e.g. ``"evidence"``), only images where that mask has a pixel: a photo whose trait is wholly
    hidden has nothing to point at."""
    targets = [int(t) for t in dataset.targets]
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    loaded: dict[int, tuple] = {}
    chosen = []
    for _, members in sorted(by_class.items()):
        kept = []
        for i in members:
            if per_class and len(kept) >= per_class:
                break
            item = dataset[i]
            if len(item) < 3:
                raise ValueError("the dataset has no masks: make it with make_datasets(..., masks=['evidence'])")
            if require is not None:
                if require not in item[2]:
                    raise ValueError(f"require={require!r}: the dataset has no such mask; it has {', '.join(item[2])}")
                if not item[2][require].any():
                    continue
            kept.append(i)
            loaded[i] = item
        chosen.append(kept)
    order = interleaved(chosen)
    if not order:
        raise ValueError("the dataset is empty: load_evidence needs images with masks"
                         + (f" (and a pixel of {require!r})" if require else ""))
    items = [loaded[i] for i in order]
    masks = {k: torch.stack([item[2][k] for item in items]).bool() for k in items[0][2]}
    return EvidenceBatch(torch.stack([item[0] for item in items]), torch.tensor([int(item[1]) for item in items]),
                         masks, order, list(dataset.classes))


def _guided_gradients(model: nn.Module, images: torch.Tensor, targets: torch.Tensor,
                      batch_size: int = 64) -> torch.Tensor:
    """Guided-backprop input gradients (N, 3, H, W) of ``targets``, on the CPU, ``batch_size`` images at a
    time."""
    device = model_device(model)
    targets = torch.as_tensor(targets).long()
    return torch.cat([GuidedBackprop(model)(images[i:i + batch_size].to(device), targets[i:i + batch_size].to(device))
                      .gradients.cpu() for i in range(0, len(images), batch_size)])


def explanation_maps(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, method: str,
                     layer: str | None = None, batch_size: int = 64, guided: torch.Tensor | None = None,
                     progress: bool | None = None, options: Mapping[str, Any] | None = None,
                     cam_options: Mapping[str, Any] | None = None) -> torch.Tensor:
    """(N, H, W) maps in [0, 1] of ``targets`` by any registered ``method`` (``registry.method_names()``),
    ``batch_size`` images at a time: a CAM method or ``"guided-gradcam"`` at ``layer``; a method that needs
    no layer (``"guided-backprop"``, ``"gradient"``, the references ``"random"`` and ``"edges"``) ignores it.
    ``guided`` may pass guided-backprop gradients (N, 3, H, W) already computed, for guided Grad-CAM.
    ``progress``: the bar of slow methods (Score-CAM, Ablation-CAM; None: only for long work).
    ``options`` go to each call (smoothing: ``augment=``, ``eigen_smooth=``), ``cam_options`` to the
    explainer's constructor (SmoothGrad: ``samples=``, ``sigma=``)."""
    entry = registry.lookup(method)
    explainer = make_cam(method, model, None if layer == "-" else layer, progress=progress, **dict(cam_options or {}))
    device = model_device(model)
    targets = torch.as_tensor(targets).long()
    options = dict(options or {})
    out = []
    for start in range(0, len(images), batch_size):
        x, t = images[start:start + batch_size].to(device), targets[start:start + batch_size].to(device)
        if guided is not None and entry.family == "guided":
            out.append(explainer(x, t, guided=guided[start:start + batch_size].to(device), **options).maps)
        else:
            out.append(explainer(x, t, **options).maps)
    return torch.cat(out).cpu().float()


def map_scores(model: nn.Module, batch: EvidenceBatch, maps: torch.Tensor, mask: str = "evidence",
               tolerance: float = 0, curve_images: int = 64, steps: int = 50, baseline: str = "blur",
               elsewhere: Sequence[str] = ("distractor",), before: torch.Tensor | None = None) -> dict[str, float]:
    """The scores of one set of maps (N, H, W) of the batch's true classes: on the whole batch ``pointing``,
    ``pointing_tol`` (within ``tolerance`` px), ``energy`` (in ``mask``), ``energy_<name>`` for the masks of
    ``elsewhere``, ``average_drop`` and ``increase_in_confidence`` (%, the map-multiplied image), ``sparseness``
    and ``complexity``; on the first ``curve_images``, ``deletion_auc`` and ``insertion_auc``. ``before``: the
    batch's ``class_scores`` (probabilities of its labels), measured once for all the maps of a table."""
    masks = batch.masks[mask]
    curve = batch.head(curve_images)
    kwargs = dict(steps=steps, baseline=baseline)
    deletion = deletion_curve(model, curve.images, maps[:len(curve)], curve.labels, **kwargs)
    insertion = insertion_curve(model, curve.images, maps[:len(curve)], curve.labels, **kwargs)
    change = confidence_change(model, batch.images.to(model_device(model)), maps, batch.labels, before=before)
    return {"pointing": pointing_game(maps, masks).float().mean().item(),
            "pointing_tol": pointing_game(maps, masks, tolerance).float().mean().item(),
            "energy": energy_in_mask(maps, masks).mean().item(),
            **{f"energy_{name}": energy_in_mask(maps, batch.masks[name]).mean().item()
               for name in elsewhere if name in batch.masks},
            "deletion_auc": deletion.auc.mean().item(), "insertion_auc": insertion.auc.mean().item(),
            "average_drop": average_drop(change), "increase_in_confidence": increase_in_confidence(change),
            "sparseness": sparseness(maps).mean().item(), "complexity": complexity(maps).mean().item()}


def methods_by_layers(model: nn.Module, batch: EvidenceBatch, layers: Sequence[str],
                      methods: Sequence[str] | None = None, mask: str = "evidence", tolerance: float = 0,
                      curve_images: int = 64, steps: int = 50, baseline: str = "blur", progress: bool = True,
                      references: Sequence[str] | None = None,
                      elsewhere: Sequence[str] = ("distractor",)) -> pd.DataFrame:
    """One row per (method, layer): ``pointing`` (hit rate), ``pointing_tol`` (hit rate within
    ``tolerance`` px), ``energy`` (mean share of the map in the mask) over the whole batch, and
    ``energy_<name>`` for each mask of ``elsewhere`` the batch holds (heat where it should not be: on the
    distractors in the water, say);
    ``deletion_auc`` and ``insertion_auc`` (means over the first ``curve_images`` images, ``steps``
    steps, ``baseline``); ``average_drop``, ``increase_in_confidence``, ``sparseness``, ``complexity``
    (``map_scores``); ``seconds`` spent. Maps explain the true class. A method that needs no layer
    gets one row, layer ``"-"``. Then one row per reference map (``references``, default
    ``reference_names()``: ``"random"``, ``"edges"``, no model), the scores a method must beat.
    ``methods`` default: ``table_methods()``."""
    methods = table_methods() if methods is None else list(methods)
    # A reference listed among the methods is one row, not two.
    references = [r for r in (reference_names() if references is None else references) if r not in methods]
    batch.masks[mask]  # a missing mask fails here, before any work
    before = class_scores(model, batch.images, batch.labels)  # the same for every row's confidence change
    guided = None
    rows = []
    jobs = [(m, layer) for m in methods for layer in (layers if registry.lookup(m).needs_layer else ["-"])]
    jobs += [(r, "-") for r in references]
    for method, layer in tqdm(jobs, desc="methods x layers", disable=not progress):
        start = time.perf_counter()
        # computed once for all layers
        if guided is None and layer != "-" and registry.lookup(method).family == "guided":
            guided = _guided_gradients(model, batch.images, batch.labels)
        maps = explanation_maps(model, batch.images, batch.labels, method, layer, guided=guided,
                                progress=None if progress else False)
        scores = map_scores(model, batch, maps, mask, tolerance, curve_images, steps, baseline, elsewhere, before)
        rows.append({"method": method, "layer": layer, **scores, "seconds": time.perf_counter() - start})
    table = pd.DataFrame(rows)
    table.attrs.update(tolerance=tolerance, images=len(batch), curve_images=min(curve_images, len(batch)),
                       steps=steps, baseline=baseline, mask=mask)
    return table


def randomized_copies(model: nn.Module, stages: Sequence[str], seed: int = 0) -> Iterator[tuple[int, str, nn.Module]]:
    """Cascading randomisation: copies of ``model`` with its ``stages`` (dotted module names, top
    first, e.g. ``["fc", "layer4", "layer3"]``) re-initialised one more at a time, each with its
    modules' own ``reset_parameters`` (BatchNorm: identity and fresh statistics). Yields
    ``(k, stage, copy)`` for k = 1, 2, ...; the caller's model is never changed."""
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for k, stage in enumerate(stages, start=1):
            if stage not in modules:
                raise ValueError(f"no stage named {stage!r} in {type(model).__name__}; stages are module names "
                                 f"such as {', '.join(n for n in list(modules)[1:6])}")
            for module in modules[stage].modules():
                if hasattr(module, "reset_parameters"):
                    module.reset_parameters()
                if hasattr(module, "reset_running_stats"):
                    module.reset_running_stats()
            yield k, stage, randomized
    finally:
        torch.random.set_rng_state(generator_state)


def sanity_check(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, stages: Sequence[str], layer: str,
                 methods: Sequence[str] = SANITY_METHODS, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """The model-parameter randomisation test: the Spearman rank correlation between each image's
    map from the trained model and from copies whose ``stages`` are randomised from the top down,
    one more at a time. One row per (method, k): ``randomized`` k (0 = the trained model itself,
    correlation 1), ``stage`` the last stage randomised, ``spearman`` mean and ``spearman_std``.
    A map that keeps its correlation while the weights that make the decision are random does not
    explain the decision."""
    trained = {m: explanation_maps(model, images, targets, m, layer) for m in methods}
    rows = [{"method": m, "randomized": 0, "stage": "(trained)", "spearman": 1.0, "spearman_std": 0.0}
            for m in methods]
    for k, stage, randomized in tqdm(randomized_copies(model, stages, seed), total=len(stages),
                                     desc="randomising", disable=not progress):
        for m in methods:
            rho = spearman(trained[m], explanation_maps(randomized, images, targets, m, layer))
            rows.append({"method": m, "randomized": k, "stage": stage, "spearman": rho.nanmean().item(),
                         "spearman_std": rho[~rho.isnan()].std().item() if (~rho.isnan()).sum() > 1 else 0.0})
    return pd.DataFrame(rows)


def plot_sanity_check(frame: pd.DataFrame, title: str = "Model-parameter randomisation") -> Figure:
    """Correlation with the trained model's maps against the stages randomised, a line per method."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    stages = frame[frame["method"] == frame["method"].iloc[0]].sort_values("randomized")
    for method, rows in frame.groupby("method", sort=False):
        rows = rows.sort_values("randomized")
        ax.errorbar(rows["randomized"], rows["spearman"], yerr=rows["spearman_std"], marker="o", capsize=3,
                    label=method)
    ax.set_xticks(stages["randomized"], ["trained"] + [f"+{s}" for s in stages["stage"].iloc[1:]], rotation=30)
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set_ylabel("Spearman ρ with trained maps")
    ax.set_xlabel("stages randomised, top down (cumulative)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    return fig


def shortcut_energy(model: nn.Module, batch: EvidenceBatch, layer: str, method: str = "gradcam") -> pd.DataFrame:
    """Per image, the share of the map's energy on the shortcut marker (``masks["marker"]``) and on the
    deciding trait (``masks["evidence"]``), for images that carry a marker; columns ``marker``,
    ``evidence``, ``label``."""
    if "marker" not in batch.masks or "evidence" not in batch.masks:
        raise ValueError("shortcut_energy needs masks=['evidence', 'marker'] (a dataset made with shortcut=True)")
    marked = batch.masks["marker"].flatten(1).any(1)
    if not marked.any():
        raise ValueError("no image of this batch carries a marker: load a split the marker was put on")
    maps = explanation_maps(model, batch.images[marked], batch.labels[marked], method, layer)
    return pd.DataFrame({"marker": energy_in_mask(maps, batch.masks["marker"][marked]).numpy(),
                         "evidence": energy_in_mask(maps, batch.masks["evidence"][marked]).numpy(),
                         "label": batch.labels[marked].numpy()})


def pointing_by_class(model: nn.Module, batch: EvidenceBatch, layer: str, method: str = "gradcam",
                      mask: str = "evidence", tolerance: float = 0) -> pd.DataFrame:
    """The pointing game's hit rate per true class and overall (``per_class``), plus the mean energy
    in the mask, for one method at one layer."""
    maps = explanation_maps(model, batch.images, batch.labels, method, layer)
    hits = per_class(pointing_game(maps, batch.masks[mask], tolerance), batch.labels, batch.classes, "hit rate")
    energy = per_class(energy_in_mask(maps, batch.masks[mask]), batch.labels, batch.classes, "energy")
    return hits.join(energy["energy"])
