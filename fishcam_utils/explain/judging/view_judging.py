"""Judging a multi-view model's explanation: do its view weights, its heatmaps and its behaviour
with views taken away tell the same story?

For every fish and view v, four answers to "which view mattered?":

* ``weight``: the attention weight the model gave the view (what it *says*);
* ``heat``: the view's share of the fused logit's Grad-CAM mass, all views on one scale (where the
  explanation *looks*);
* ``alone``: the probability of the true class when v is the only view left (is the view *sufficient*?);
* ``drop``: how much that probability falls when v alone is removed (is the view *necessary*?), the
  multi-view analogue of deletion. Where the other views carry the same information (on our fish any
  two views name the species) a view can matter and still cost nothing to remove.

and one answer to "is the heat on the evidence?": ``energy``, the share of the fused map's mass on the
deciding view's evidence mask (every view's pixels count in the denominator).

Missing views, a view removed from a fish that has no other, and maps with no mass give NaN, never 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ...evaluation.attention import top_view
from ...models.inspection import eval_mode, logits_of, model_device
from ..registry import make_cam

MEASURES = ("weight", "heat", "alone", "drop")
# The measures that should rank the deciding view first; ``drop`` need not (redundant views).
RANKED = ("weight", "heat", "alone")


def _probability_with(model: nn.Module, views: torch.Tensor, keep: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(N,) probability of ``labels`` seeing only the views ``keep`` (N, V) marks; NaN for a fish left with none."""
    out = torch.full((len(labels),), float("nan"))
    some = keep.any(1)
    if some.any():
        with torch.no_grad():
            logits = logits_of(model(views[some] * keep[some][:, :, None, None, None], keep[some]))
        out[some.cpu()] = logits.softmax(1).gather(1, labels[some][:, None])[:, 0].float().cpu()
    return out


def _judge_chunk(model, cam, views, present, labels, evidence, chosen) -> dict[str, torch.Tensor]:
    """The per-fish measures of one chunk of fish (all on the CPU), keyed by measure, each (n, V) or (n,)."""
    n, v = present.shape
    result = cam((views, present), labels, normalize=None)
    if result.maps.ndim != 4 or result.maps.shape[1] != v:
        raise ValueError(f"the layer did not give one map per view (maps of shape {tuple(result.maps.shape)}); "
                         "pick a branch layer such as the one cam_layers(model)[-1] names")
    # The CAM's own forward pass gives the weights and the probability with every view: no second pass.
    weights = result.view_weights.float().cpu()
    full = result.logits.float().softmax(1).gather(1, labels[:, None])[:, 0].cpu()
    eye = torch.eye(v, dtype=torch.bool, device=present.device)
    alone = torch.stack([_probability_with(model, views, present & eye[u], labels) for u in range(v)], 1)
    drop = torch.stack([full - _probability_with(model, views, present & ~eye[u], labels) for u in range(v)], 1)
    maps = result.maps.detach().float().cpu()  # (n, V, H, W), ReLU'd, not normalised: masses compare
    shown = present.cpu()
    evidence = evidence & shown[:, :, None, None]  # a missing view's trait is not in the picture
    mass = maps.flatten(2).sum(2)
    total = mass.sum(1)
    rows = torch.arange(n)
    on_trait = (maps[rows, chosen] * evidence[rows, chosen]).flatten(1).sum(1)
    area = evidence[rows, chosen].flatten(1).sum(1).float()
    pixels = shown.sum(1) * maps.shape[-2] * maps.shape[-1]
    nan = torch.tensor(float("nan"))
    return {"weight": torch.where(shown, weights, nan),
            "heat": torch.where(shown & (total > 0)[:, None], mass / total.clamp_min(1e-30)[:, None], nan),
            "alone": alone, "drop": torch.where(shown, drop, nan),
            "energy": torch.where((total > 0) & (area > 0), on_trait / total.clamp_min(1e-30), nan),
            "chance": torch.where(area > 0, area / pixels, nan)}


def judge_views(model: nn.Module, dataset, indices: Sequence[int], deciding: Mapping[str, str],
                layer: str | None = None, method: str = "gradcam", batch_size: int = 32) -> pd.DataFrame:
    """One row per fish of a multi-view dataset made with ``masks=["evidence"]``: ``fish_id``,
    ``label``, ``deciding_view`` (from ``deciding``: class name -> view), ``energy`` in [0, 1] and its
    ``chance`` (the trait's share of all the fish's pixels: what a uniform map scores), and per view v
    the columns ``weight_v``, ``heat_v`` (each summing to 1 over a fish's views), ``alone_v`` (p_true
    with only v) and ``drop_v`` (p_true with every view minus p_true without v). Maps explain the true
    class at branch layer ``layer`` (default: the last CAM layer); ``batch_size`` fish at a time."""
    from ...models.factory import cam_layers

    indices = [int(i) for i in indices]
    samples = [dataset[i] for i in indices]
    if not samples or len(samples[0]) < 3 or "evidence" not in samples[0][2]:
        raise ValueError("judge_views needs fish with evidence masks: make the dataset with "
                         "make_datasets(..., multiview=True, masks=['evidence']) and pass at least one index")
    names = list(dataset.views)
    unknown = sorted({dataset.classes[int(s[1])] for s in samples} - set(deciding))
    if unknown:
        raise ValueError(f"no deciding view for {unknown}: pass deciding={{class: view}} for every class")
    layer = layer or cam_layers(model)[-1]
    cam = make_cam(method, model, layer)
    device = model_device(model)
    labels = torch.tensor([int(s[1]) for s in samples])
    chosen = torch.tensor([names.index(deciding[dataset.classes[int(t)]]) for t in labels.tolist()])
    parts = []
    with eval_mode(model):
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            views = torch.stack([s[0][0] for s in chunk]).to(device)
            present = torch.stack([torch.as_tensor(s[0][1]) for s in chunk]).bool().to(device)
            evidence = torch.stack([s[2]["evidence"] for s in chunk]).bool().cpu()
            parts.append(_judge_chunk(model, cam, views, present, labels[start:start + batch_size].to(device),
                                      evidence, chosen[start:start + batch_size]))
    measures = {k: torch.cat([p[k] for p in parts]).numpy() for k in parts[0]}
    fish = getattr(dataset, "fish", None)
    frame = pd.DataFrame({"fish_id": [str(fish["fish_id"].iloc[i]) if fish is not None else str(i) for i in indices],
                          "label": labels.numpy(), "deciding_view": [names[c] for c in chosen.tolist()],
                          "energy": measures["energy"], "chance": measures["chance"]})
    for v, name in enumerate(names):
        for measure in MEASURES:
            frame[f"{measure}_{name}"] = measures[measure][:, v]
    frame.attrs.update(views=names, classes=list(dataset.classes), method=cam.name, layer=layer)
    return frame


def views_by_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Per class (rows, named) from ``judge_views``: the deciding view, the mean of each measure on it
    (``weight``, ``heat``, ``alone``, ``drop``; NaNs left out), the view each measure ranks first on
    average (``top_weight``, ...; None when two views tie, as the weights of a mean fusion do),
    ``agree`` (True when weight, heat and alone all rank the deciding view first; NaN if one of them
    ties), and the means of ``energy`` and ``chance``."""
    views, classes = frame.attrs["views"], frame.attrs["classes"]
    rows = {}
    for label, group in frame.groupby("label", sort=True):
        deciding = group["deciding_view"].iloc[0]
        row = {"deciding_view": deciding, "fish": len(group)}
        for measure in MEASURES:
            means = group[[f"{measure}_{v}" for v in views]].mean()  # pandas skips NaN
            means.index = views
            row[measure] = float(means[deciding])
            row[f"top_{measure}"] = top_view(means)
        tops = [row[f"top_{m}"] for m in RANKED]
        row["agree"] = np.nan if None in tops else all(t == deciding for t in tops)
        row["energy"] = float(group["energy"].mean())
        row["chance"] = float(group["chance"].mean())
        rows[classes[int(label)]] = row
    return pd.DataFrame(rows).T.infer_objects()
