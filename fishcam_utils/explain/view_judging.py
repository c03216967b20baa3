"""Judging a multi-view model's explanation: do its view weights, its heatmaps and its behaviour
when a view is taken away tell the same story?

For every fish, three answers to "which view mattered?":

* ``weight``: the attention weight the model gave the view (what it *says*);
* ``heat``: the view's share of the fused logit's Grad-CAM mass, all views on one scale (where the
  explanation *looks*);
* ``drop``: how much the probability of the true class falls when the view is removed (what the
  model *does* without it, the multi-view analogue of deletion).

and one answer to "is the heat on the evidence?": ``energy``, the share of the fused map's mass on the
deciding view's evidence mask (every view's pixels count in the denominator).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..models.state import eval_mode, logits_of, model_device, view_weights_of
from .cam import make_cam

MEASURES = ("weight", "heat", "drop")


def _probability_without(model: nn.Module, views: torch.Tensor, present: torch.Tensor, labels: torch.Tensor,
                         removed: int | None) -> torch.Tensor:
    """(N,) probability of ``labels`` with view ``removed`` taken away (None: every view)."""
    keep = present.clone()
    if removed is not None:
        keep[:, removed] = False
    with torch.no_grad():
        logits = logits_of(model(views * keep[:, :, None, None, None], keep))
    return logits.softmax(1).gather(1, labels[:, None])[:, 0]


def judge_views(model: nn.Module, dataset, indices: Sequence[int], deciding: Mapping[str, str],
                layer: str | None = None, method: str = "gradcam") -> pd.DataFrame:
    """One row per fish of a multi-view dataset made with ``masks=["evidence"]``: ``fish_id``,
    ``label``, ``deciding_view`` (from ``deciding``: class name -> view), ``energy`` in [0, 1] and its
    ``chance`` (the trait's share of all the fish's pixels: what a uniform map scores), and per
    view v the columns ``weight_v``, ``heat_v`` (each summing to 1 over the views) and ``drop_v``
    (p_true with every view minus p_true without v; negative when removing v helps). Maps explain
    the true class at branch layer ``layer`` (default: the last CAM layer)."""
    from ..models.factory import cam_layers

    samples = [dataset[int(i)] for i in indices]
    if not samples or len(samples[0]) < 3 or "evidence" not in samples[0][2]:
        raise ValueError("judge_views needs fish with evidence masks: make the dataset with "
                         "make_datasets(..., multiview=True, masks=['evidence']) and pass at least one index")
    views_names = list(dataset.views)
    unknown = sorted({dataset.classes[int(s[1])] for s in samples} - set(deciding))
    if unknown:
        raise ValueError(f"no deciding view for {unknown}: pass deciding={{class: view}} for every class")
    device = model_device(model)
    views = torch.stack([s[0][0] for s in samples]).to(device)
    present = torch.stack([torch.as_tensor(s[0][1]) for s in samples]).bool().to(device)
    labels = torch.tensor([int(s[1]) for s in samples], device=device)
    evidence = torch.stack([s[2]["evidence"] for s in samples]).bool()
    chosen = torch.tensor([views_names.index(deciding[dataset.classes[int(t)]]) for t in labels.tolist()])
    with eval_mode(model):
        result = make_cam(method, model, layer or cam_layers(model)[-1])((views, present), labels, normalize=None)
        with torch.no_grad():
            weights = view_weights_of(model(views, present))
        full = _probability_without(model, views, present, labels, None)
        drops = torch.stack([full - _probability_without(model, views, present, labels, v)
                             for v in range(len(views_names))], 1)
    maps = result.maps.detach().cpu().float()  # (N, V, H, W), ReLU'd, not normalised: masses compare
    mass = maps.flatten(2).sum(2)  # (N, V)
    total = mass.sum(1).clamp_min(torch.finfo(mass.dtype).tiny)
    on_trait = (maps[torch.arange(len(samples)), chosen] * evidence[torch.arange(len(samples)), chosen]).flatten(1).sum(1)
    pixels = present.cpu().sum(1) * maps.shape[-2] * maps.shape[-1]  # every present view's pixels
    trait_area = evidence[torch.arange(len(samples)), chosen].flatten(1).sum(1)
    frame = pd.DataFrame({"fish_id": [str(dataset.fish["fish_id"].iloc[int(i)]) for i in indices],
                          "label": labels.cpu().numpy(), "deciding_view": [views_names[c] for c in chosen.tolist()],
                          "energy": (on_trait / total).numpy(), "chance": (trait_area / pixels).numpy()})
    for v, name in enumerate(views_names):
        frame[f"weight_{name}"] = weights[:, v].detach().cpu().float().numpy()
        frame[f"heat_{name}"] = (mass[:, v] / total).numpy()
        frame[f"drop_{name}"] = drops[:, v].cpu().float().numpy()
    frame.attrs.update(views=views_names, classes=list(dataset.classes), method=method, layer=layer)
    return frame


def views_by_class(frame: pd.DataFrame) -> pd.DataFrame:
    """Per class (rows, named) from ``judge_views``: the deciding view, the mean of each measure on it
    (``weight``, ``heat``, ``drop``), the view each measure ranks first on average (``top_weight``,
    ``top_heat``, ``top_drop``), whether all three name the deciding view (``agree``), and the means
    of ``energy`` and ``chance``."""
    views, classes = frame.attrs["views"], frame.attrs["classes"]
    rows = {}
    for label, group in frame.groupby("label", sort=True):
        deciding = group["deciding_view"].iloc[0]
        row = {"deciding_view": deciding, "fish": len(group)}
        for measure in MEASURES:
            means = group[[f"{measure}_{v}" for v in views]].mean().to_numpy()
            row[measure] = float(means[views.index(deciding)])
            row[f"top_{measure}"] = views[int(np.argmax(means))]
        row["agree"] = all(row[f"top_{m}"] == deciding for m in MEASURES)
        row["energy"] = float(group["energy"].mean())
        row["chance"] = float(group["chance"].mean())
        rows[classes[int(label)]] = row
    return pd.DataFrame(rows).T.infer_objects()
