"""What an explainer is: the one protocol every registered method follows, and what it returns.

An explainer is made as ``Explainer(model, layer, progress=None, **options)`` and called as
``explainer(inputs, targets=None, normalize="minmax") -> CAMResult``. Its class attributes say what it
is, and ``registry.register`` reads them: ``name``, ``label``, ``family``, ``needs_layer``,
``needs_gradients``, ``uses_capture``, ``any_layer``.

Two kinds follow it: the CAM family (``cam.BaseCAM``) and guided Grad-CAM, which explain at a layer;
and ``LayerFreeExplainer``, the maps that need no layer: input gradients (guided backprop, the plain
gradient) and the reference maps that ignore the model (random, edges). A new layer-free map is one
class with one method, ``image_maps`` (or ``explain``), and ``@register``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..models.inspection import check_images, check_logits, check_model, eval_mode, logits_of
from ..runtime import call_model
from .maps import check_normalize, normalize_maps
from .targets import check_target_count, resolve_score_targets

FAMILIES = ("gradient", "gradient-free", "guided", "input-gradient", "reference")


@dataclass
class CAMResult:
    """What a CAM call returns (all detached, on the model's device).

    ``maps``: (N, H, W) at the input size, ReLU'd, min-max normalised to [0, 1] per map unless
    ``normalize=None``; for ``all_classes``, (N, K, H, W). ``raw``: the signed maps at the layer's
    resolution, before ReLU, (N, h, w) or (N, K, h, w) (for a map that needs no layer, the map itself,
    unnormalised). When the target layer runs once per view
    (a multi-view model), a view dimension V follows: (N, V, H, W) or (N, K, V, H, W), and the views
    of one image are normalised together, so that they compare. ``logits``: (N, K). ``explained``: (N,) long
    (the classes explained, what the call's ``targets`` asked for; for ``all_classes``, every class).
    ``view_weights``: (N, V), the view weights a multi-view model returned in the same forward pass
    (``view_weights_of``), else None.
    A target given as a function is -1 in ``explained``. ``flat``: bool of ``maps.shape[:-2]``, True for a
    map with no spatial information (constant at the layer's resolution, or varying only at rounding-noise
    level), which is zeros in ``maps`` (with ``normalize=None`` a constant map keeps its value).
    ``pixels``: guided Grad-CAM's signed input-space product (N, 3, H, W) (multi-view (N, V, 3, H, W); all
    classes (N, K, ...)), else None.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    logits: torch.Tensor
    explained: torch.Tensor
    view_weights: torch.Tensor | None = None
    flat: torch.Tensor | None = None
    pixels: torch.Tensor | None = None


SMOOTHINGS = ("augment", "eigen", "smoothgrad")


class Explainer:
    """The protocol of an explanation method (see the module's docstring); subclasses set the
    attributes and implement ``__call__`` (and, where they can, ``all_classes``)."""

    name = "explainer"
    label = "explainer"
    family = "gradient"  # one of FAMILIES
    needs_layer = True  # False: made without a target layer (``LayerFreeExplainer``)
    needs_gradients = True
    any_layer = True  # False for CAM, which works only at the layer before the head
    # The smoothings the method takes (``SMOOTHINGS``): "augment" and "eigen" are options of its call
    # (``augment=``, ``eigen_smooth=``), "smoothgrad" of its constructor (``samples=``).
    smoothings: frozenset[str] = frozenset()
    # ``uses_capture``: maps from one capture of activations and every class's gradients (the explorer's
    # cache); unset, it follows ``needs_gradients``.

    def __call__(self, inputs: Any, targets: Any = None, normalize: str | None = "minmax") -> CAMResult:
        """Maps of ``targets`` (default: the predicted classes) for a batch of inputs."""
        raise NotImplementedError


class LayerFreeExplainer(Explainer):
    """An explainer that needs no target layer. A subclass implements ``image_maps(images) -> (N, H, W)``
    (a map made from the images alone, ``family = "reference"``) or overrides ``explain`` (a map that
    asks the model, say for a gradient). Maps come back min-max normalised unless ``normalize=None``."""

    needs_layer = False
    needs_gradients = False
    uses_capture = False
    family = "reference"

    def __init__(self, model: nn.Module, layer: Any = None, progress: bool | None = None) -> None:
        # ``progress`` is accepted as every registered method's is; these maps are quick.
        if layer is not None:
            raise ValueError(f"{self.label} needs no target layer (it explains at the input); got layer={layer!r}. "
                             f"Leave layer out, or use a CAM method to explain at a layer")
        self.model = check_model(model)
        self.layer_name, self.layer_names = "-", []

    def image_maps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, H, W) non-negative maps made from the images (N, C, H, W) alone."""
        raise NotImplementedError

    def explain(self, inputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(maps (N, H, W) non-negative, logits (N, K), explained (N,))``; by default ``image_maps`` of
        the images beside one forward pass for the logits and the classes explained."""
        with eval_mode(self.model), torch.inference_mode():
            logits = logits_of(call_model(self.model, inputs)).float()
        check_logits(logits)
        chosen = resolve_score_targets(targets, logits)
        images = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return self.image_maps(images), logits, chosen.classes[:, 0]

    def __call__(self, inputs: Any, targets: Any = None, normalize: str | None = "minmax") -> CAMResult:
        check_normalize(normalize)  # a bad choice fails before any work
        check_images(inputs, self.model, image_batch=False)
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        if first.ndim != 4:
            raise ValueError(f"{self.label} explains a batch of single images (N, C, H, W); these inputs are "
                             f"{tuple(first.shape)} (a multi-view model's views?). For a multi-view model use a "
                             f"CAM method at a branch layer (explain_fish)")
        check_target_count(targets, first.shape[0])
        maps, logits, explained = self.explain(inputs, targets)
        raw = maps.to(torch.promote_types(maps.dtype, torch.float32))  # half lifted, float64 kept
        maps = normalize_maps(raw, normalize)
        span = raw.flatten(-2).amax(-1) - raw.flatten(-2).amin(-1)
        return CAMResult(maps=maps.detach(), raw=raw.detach(), logits=logits.detach(), explained=explained.detach(),
                         flat=span == 0)
