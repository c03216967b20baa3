"""Explaining a multi-view prediction: every view's CAM of the *fused* logit, with the view weights.

One forward pass of the whole multi-view model and one backward of the fused class score give
a map for every view at once (the target layer runs once per view); the view weights come from
that same forward pass. ``plot_fish_cams`` shows a row per fish: each view's overlay, titled
with its weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..data.introspection import dataset_facts
from ..data.transforms import to_display
from ..models.inspection import model_device
from .overlay import overlay_heatmap
from .registry import make_cam


@dataclass
class FishExplanation:
    """CAMs of N fish seen from V views (numpy, CPU).

    ``images`` (N, V, H, W, 3) float in [0, 1] (the model's input, shown); ``present`` (N, V) bool;
    ``maps`` (N, V, H, W) in [0, 1], the views of one fish on one scale (0 for a missing view);
    ``weights`` (N, V) the model's view weights; ``probs`` (N, K); ``explained`` (N,) the class
    each map explains; ``labels`` (N,) the true classes; plus ids, views, classes, method, layer.
    """

    ids: list[str]
    views: list[str]
    classes: list[str]
    images: np.ndarray
    present: np.ndarray
    maps: np.ndarray
    weights: np.ndarray
    probs: np.ndarray
    explained: np.ndarray
    labels: np.ndarray
    method: str
    layer: str

    @property
    def preds(self) -> np.ndarray:
        """(N,) predicted classes."""
        return self.probs.argmax(1)


def explain_fish(model: nn.Module, dataset, indices: Sequence[int], layer: str | None = None,
                 method: str = "gradcam", targets: Any = None) -> FishExplanation:
    """CAMs of the fish ``indices`` of a ``MultiViewDataset`` (or ``WithoutViews``) at branch layer
    ``layer`` (default: the branch's last CAM layer), for ``targets`` (default: the predicted
    classes), from one forward and one backward of the fused logits."""
    from ..models.factory import cam_layers

    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("indices is empty: pass the positions of the fish to explain, e.g. range(4)")
    samples = [dataset[i] for i in indices]
    if not isinstance(samples[0][0], (tuple, list)):
        raise ValueError("explain_fish explains multi-view fish: pass a MultiViewDataset "
                         "(make_datasets(..., multiview=True)); for single images use make_cam(...)(images)")
    views = torch.stack([s[0][0] for s in samples])
    present = torch.stack([torch.as_tensor(s[0][1]) for s in samples]).bool()
    layer = layer or cam_layers(model)[-1]
    cam = make_cam(method, model, layer)
    device = model_device(model)
    result = cam((views.to(device), present.to(device)), targets=targets)
    maps = result.maps
    if maps.ndim != 4 or maps.shape[1] != views.shape[1]:
        raise ValueError(f"{layer!r} did not give one map per view (maps of shape {tuple(maps.shape)}); "
                         f"pick a branch layer, one of {cam_layers(model)}")
    if result.view_weights is None:
        raise ValueError("the model returned no view weights; explain_fish needs a MultiViewNet-style model "
                         "whose output has .weights")
    facts = dataset_facts(dataset)
    ids = [facts.ids[i] for i in indices] if facts.ids is not None else [str(i) for i in indices]
    classes = facts.classes or [str(k) for k in range(result.logits.shape[1])]
    return FishExplanation(
        ids=ids, views=facts.views or [f"view{v}" for v in range(views.shape[1])],
        classes=classes, images=to_display(views), present=present.numpy(),
        maps=maps.cpu().numpy(), weights=result.view_weights.cpu().float().numpy(),
        probs=torch.softmax(result.logits.float(), 1).cpu().numpy(), explained=result.explained.cpu().numpy(),
        labels=np.array([int(s[1]) for s in samples]), method=cam.name, layer=layer)


def plot_fish_cams(explanation: FishExplanation, alpha: float = 0.5, cmap: str = "jet", size: float = 2.2) -> Figure:
    """A row per fish, a column per view: each view's overlay titled with its weight; the row says
    the true class, the prediction and the class explained. A missing view is a grey panel."""
    e = explanation
    n, v = e.maps.shape[:2]
    fig, axes = plt.subplots(n, v, figsize=(v * size, n * (size + 0.35) + 0.2), squeeze=False)
    for i in range(n):
        for j in range(v):
            ax = axes[i, j]
            if e.present[i, j]:
                ax.imshow(overlay_heatmap(e.images[i, j], e.maps[i, j], alpha, cmap))
                ax.set_title(f"{e.views[j]}: weight {e.weights[i, j]:.2f}", fontsize=9)
            else:
                ax.imshow(np.full(e.images.shape[2:], 0.85, dtype=np.float32))
                ax.text(0.5, 0.5, "missing", ha="center", va="center", transform=ax.transAxes, color="0.4")
                ax.set_title(f"{e.views[j]}: no view", fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
        pred, true, explained = e.classes[e.preds[i]], e.classes[e.labels[i]], e.classes[e.explained[i]]
        label = f"{e.ids[i]}\ntrue {true}\npred {pred} ({e.probs[i, e.preds[i]]:.2f})"
        if explained != pred:
            label += f"\nmap of {explained}"
        axes[i, 0].set_ylabel(label, fontsize=8, rotation=0, ha="right", va="center", labelpad=8)
    fig.suptitle(f"{e.method} of the fused logit at {e.layer}, every view from one backward pass", fontsize=10)
    fig.tight_layout()
    return fig
