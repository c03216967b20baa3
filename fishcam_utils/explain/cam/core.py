"""The CAM pipeline: ``BaseCAM`` holds the hooks and the steps every class activation map shares;
each method (``gradient``, ``gradient_free``) says only how it weights the channels.

1. a forward hook on the target layer keeps its output *as produced* (a detached leaf) and hands a
   copy to the rest of the network, so in-place operations later in the network (``out += identity``
   then ``relu_`` in a torchvision ResNet block) cannot change the activation we explain;
2. gradients are taken with ``torch.autograd.grad`` with respect to that activation only: nothing
   before the target layer is differentiated and no parameter's ``.grad`` is filled;
3. ReLU; maps with no spatial information (constant, or at rounding-noise level) are flagged and
   become zeros, decided at the layer's resolution; bilinear upsampling to the input size, and
   (optionally) per-image min-max normalisation.

After every call, even one that raises, the hooks are gone and the model's train/eval modes and
``requires_grad`` flags are as they were.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ...models.inspection import check_images, check_logits, check_model, eval_mode, logits_of, view_weights_of
from ...runtime import call_model
from ..augment import Augmentation
from ..explainer import CAMResult, Explainer
from ..maps import FlatMapWarning, check_normalize, flat_maps, normalize_maps, principal_projection, upsample
from ..targets import Targets, all_class_targets, check_target_count, repeat_targets, resolve_score_targets
from .session import _branch_layers, _ordinary, _Session, all_class_gradients, resolve_layer


@dataclass
class LayerCapture:
    """One forward pass and one all-class backward at a target layer (detached, on the model's device).

    ``activations``: one (N, C, h, w) tensor per activation (one per view for a multi-view model);
    ``gradients``: for each, (K, N, C, h, w), d logit_k / d activation; ``logits`` (N, K); ``size``
    the input's (H, W); ``view_weights`` (N, V) or None; ``layer_names`` the layers captured.
    """

    activations: list[torch.Tensor]
    gradients: list[torch.Tensor]
    logits: torch.Tensor
    size: tuple[int, int]
    view_weights: torch.Tensor | None
    layer_names: list[str]


class BaseCAM(Explainer):
    """A class activation map of ``model`` at ``layer`` (a module or a dotted name).

    ``cam(x)`` explains the predicted classes; ``cam(x, targets=3)``, ``targets=[...]`` (one class per
    image) or a callable on one image's logits (K,) returning a score (for every image, or per image
    in a list) explains others. ``cam.all_classes(x)`` gives every class's map from one forward and
    one batched backward. For a multi-view model, give the layer of a shared branch (it runs once per
    view), a list with one layer per branch, or (for ``MultiViewNet``) a branch layer's name such as
    ``"layer2"``, meaning that layer in every branch: every view's map comes from one forward and one
    backward of the fused logit. Inputs may be a tuple (``model(*inputs)``); maps take the size of its
    first item. ``progress``: a bar for long work (None: only when it is long).

    A gradient method implements ``combine(A, G) -> (N, h, w)`` (signed, before ReLU); a
    gradient-free one ``class_maps(A, inputs, logits, targets) -> (N, J, h, w)`` and may call
    ``logits_for`` and ``logits_with`` to run the network again. ``@register`` makes it known
    everywhere (``registry``).
    """

    name = "base"
    label = "base"
    family = "gradient"
    needs_gradients = True
    any_layer = True
    multi_activation = True  # maps for a layer that runs once per view (multi-view models)
    smoothings = frozenset({"augment", "eigen"})
    SLOW_BATCHES = 32  # a progress bar (when ``progress`` is None) from this many network passes

    def __init__(self, model: nn.Module, layer: str | nn.Module | Sequence[str | nn.Module],
                 progress: bool | None = None) -> None:
        self.model = check_model(model)
        layer = _branch_layers(model, layer)
        several = isinstance(layer, (list, tuple))
        resolved = [resolve_layer(model, t) for t in (layer if several else [layer])]
        if not resolved:
            raise ValueError("layer must name at least one layer")
        self.layer_names = [name for name, _ in resolved]
        self.layers = [module for _, module in resolved]
        self.layer_name, self.layer = ", ".join(self.layer_names), self.layers[0]
        self.progress = progress
        self._session: _Session | None = None

    # -- what a method says -----------------------------------------------------------------
    def weigh(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Gradient methods: the weighted activations (N, C, h, w) whose channel sum is the map (what
        eigen-smoothing takes the first principal component of)."""
        raise NotImplementedError

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Gradient methods: signed maps (N, h, w) from activations and gradients (N, C, h, w); by default
        the channel sum of ``weigh``."""
        return self.weigh(activations, gradients).sum(1)

    def _combined(self, activations: torch.Tensor, gradients: torch.Tensor, eigen: bool) -> torch.Tensor:
        """``combine``, or with ``eigen`` the first principal component of ``weigh`` (eigen-smoothing)."""
        if not eigen:
            return self.combine(activations, gradients)
        try:
            weighted = self.weigh(activations, gradients)
        except NotImplementedError:
            raise ValueError(f"{self.label} does not say its weighted activations (weigh), so it cannot be "
                             f"eigen-smoothed") from None
        return principal_projection(weighted)

    def term_scale(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """(N, h, w): how large the terms the map sums are, the yardstick of a noise-level map."""
        return (gradients.abs() * activations.abs()).sum(1)

    def class_maps(self, activations: torch.Tensor, inputs: Any, logits: torch.Tensor,
                   targets: Targets) -> torch.Tensor:
        """Gradient-free methods: signed maps (N, J, h, w) of the J columns of ``targets`` from the
        target layer's activations (N, C, h, w) and the logits (N, K) of ``inputs``."""
        raise NotImplementedError

    def eigen_class_maps(self, activations: torch.Tensor, inputs: Any, logits: torch.Tensor,
                         targets: Targets) -> torch.Tensor:
        """Gradient-free methods, eigen-smoothed: (N, J, h, w) first principal components of the weighted
        activations."""
        raise ValueError(f"{self.label} does not say its channel weights (channel_weights), so it cannot be "
                         f"eigen-smoothed")

    # -- what a gradient-free method may call inside class_maps -----------------------------
    def logits_for(self, inputs: Any) -> torch.Tensor:
        """The logits (M, K) of other inputs (say masked images), without gradients."""
        session = self._running("logits_for")
        session.record = False
        try:
            with torch.no_grad():
                return logits_of(self._call(inputs)).detach()
        finally:
            session.record = True

    def logits_with(self, inputs: Any, activations: torch.Tensor) -> torch.Tensor:
        """The logits (M, K) when the target layer's output is replaced by ``activations`` (M, C, h, w);
        the layers before it run on ``inputs``. Raises ``ValueError`` when the network does not give
        one row per replaced activation."""
        session = self._running("logits_with")
        session.replacement = activations
        try:
            with torch.no_grad():
                logits = logits_of(self._call(inputs)).detach()
        finally:
            session.replacement = None
        if logits.shape[0] != activations.shape[0]:
            raise ValueError(f"the network gave {logits.shape[0]} rows of logits for {activations.shape[0]} "
                             f"replaced activations of {self.layer_name!r}")
        return logits

    def _running(self, what: str) -> _Session:
        if self._session is None:
            raise RuntimeError(f"{what} runs the network with this CAM's hooks: call it inside class_maps")
        return self._session

    def _call(self, inputs: Any) -> Any:
        return call_model(self.model, inputs)

    def _progress(self, steps: Sequence[int], desc: str) -> Any:
        show = len(steps) > self.SLOW_BATCHES if self.progress is None else self.progress
        return tqdm(steps, desc=desc, unit="batch", leave=False, disable=not show)

    # -- the pipeline -----------------------------------------------------------------------
    def _forward(self, session: _Session, inputs: Any) -> torch.Tensor:
        output = self._call(inputs)
        if not session.activations:
            raise ValueError(f"the target layer {self.layer_name!r} was not used in the forward pass")
        if len(session.activations) > 1:
            # A multi-view model: one branch per view, or one shared branch run once per view.
            # Every activation gets its map, in the order the forward produced them.
            shapes = {tuple(a.shape[-2:]) for a in session.activations}
            repeated = [m for i, m in enumerate(session.ran) if m in session.ran[:i]]
            if repeated and isinstance(inputs, torch.Tensor) and inputs.ndim == 4:
                session._refuse_reuse(repeated[0])  # one image per item, yet a layer ran twice: reused
            if not self.multi_activation:
                raise ValueError(f"{self.label} works with a layer that runs once per image, and "
                                 f"{self.layer_name!r} ran {len(session.activations)} times (once per view of a "
                                 f"multi-view model); use a gradient method such as Grad-CAM")
            if len(shapes) > 1:
                raise ValueError(f"the target layers {self.layer_name!r} ran {len(session.activations)} times in one "
                                 f"forward with feature sizes {sorted(shapes)}; pick layers of the same resolution")
        weights = view_weights_of(output)
        session.view_weights = None if weights is None else weights.detach()
        logits = logits_of(output)
        check_logits(logits)
        return logits

    @staticmethod
    def _batch(inputs: Any) -> int:
        return (inputs[0] if isinstance(inputs, (tuple, list)) else inputs).shape[0]

    @staticmethod
    def _size(inputs: Any) -> tuple[int, int]:
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return tuple(first.shape[-2:])

    def __call__(self, inputs: torch.Tensor, targets: Any = None, normalize: str | None = "minmax",
                 augment: Sequence[Augmentation] | None = None, eigen_smooth: bool = False) -> CAMResult:
        """Maps of ``targets`` (default: the predicted classes) for a batch (N, 3, H, W). ``augment``: smooth
        by test-time augmentation (e.g. ``augment.DEFAULT_TTA``): the maps of every augmented copy, from one
        call on the A x N copies, each normalised, moved back and averaged; ``raw`` and ``logits`` are then
        the first augmentation's. ``eigen_smooth``: the map is the first principal component of the weighted
        activations over the layer's pixels, not their channel sum (gradient methods)."""
        if augment:
            return self._augmented(inputs, targets, normalize, list(augment), eigen_smooth)
        return self._run(inputs, targets, normalize, every_class=False, eigen=eigen_smooth)

    def _augmented(self, inputs: Any, targets: Any, normalize: str | None,
                   augment: list[Augmentation], eigen: bool = False) -> CAMResult:
        if isinstance(inputs, (tuple, list)):
            raise ValueError("test-time augmentation takes single images (N, 3, H, W), not a multi-view model's views")
        check_normalize(normalize)
        check_target_count(targets, self._batch(inputs))
        n = self._batch(inputs)
        if targets is None:  # the predicted class of each original image, for every copy of it
            with eval_mode(self.model), torch.no_grad():
                targets = logits_of(call_model(self.model, _ordinary(inputs))).argmax(1)
        copies = torch.cat([a.image(inputs) for a in augment])
        result = self._run(copies, repeat_targets(targets, len(augment)), normalize, every_class=False, eigen=eigen)
        maps = result.maps.unflatten(0, (len(augment), n))
        back = torch.stack([a.map_back(m) for a, m in zip(augment, maps)])
        return CAMResult(maps=back.mean(0), raw=result.raw[:n], logits=result.logits[:n],
                         explained=result.explained[:n], view_weights=None,
                         flat=result.flat.unflatten(0, (len(augment), n)).all(0))

    def all_classes(self, inputs: torch.Tensor, normalize: str | None = "minmax",
                    eigen_smooth: bool = False) -> CAMResult:
        """Every class's map: maps (N, K, H, W), raw (N, K, h, w), from one forward pass and one
        batched backward (``is_grads_batched``), for a class slider that only re-renders."""
        if self.needs_gradients:
            check_normalize(normalize)
            return self.from_capture(self.capture(inputs), normalize, eigen_smooth=eigen_smooth)
        return self._run(inputs, None, normalize, every_class=True, eigen=eigen_smooth)

    def _run(self, inputs: Any, targets: Any, normalize: str | None, every_class: bool,
             eigen: bool = False) -> CAMResult:
        check_normalize(normalize)  # a bad choice fails before any work
        check_images(inputs, self.model)
        check_target_count(targets, self._batch(inputs))
        inputs = _ordinary(inputs)
        # Gradient-free methods build no graph: the forward runs without autograd, as a plain inference.
        no_graph = contextlib.nullcontext() if self.needs_gradients else torch.no_grad()
        with _Session(self.model, self.layers, self.layer_names) as session, no_graph:
            logits = self._forward(session, inputs)
            chosen = all_class_targets(logits.detach()) if every_class else resolve_score_targets(targets, logits)
            scale = None
            if self.needs_gradients:
                raw, scale = self._gradient_maps(session, logits, chosen, eigen)
            else:
                self._session = session
                try:
                    maps_of = self.eigen_class_maps if eigen else self.class_maps
                    raw = maps_of(session.activations[0].detach(), inputs, logits.detach(), chosen)
                finally:
                    self._session = None
                raw = raw if every_class else raw[:, 0]
            views = len(session.activations)
        explained = chosen.classes[0] if every_class else chosen.classes[:, 0]
        return self._finish(raw, logits, explained, self._size(inputs), normalize, views, session.view_weights, scale)

    def _gradient_maps(self, session: _Session, logits: torch.Tensor,
                       targets: Targets, eigen: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, h, w) maps and term scales, or (N, V, h, w) for V activations, from one backward of
        the summed scores (images are independent in eval mode)."""
        activations = session.activations
        gradients = torch.autograd.grad(targets.scores(logits).sum(), activations)
        pairs = [(a.detach(), g) for a, g in zip(activations, gradients)]
        return (self._views([self._combined(a, g, eigen) for a, g in pairs], dim=1),
                self._views([self.term_scale(a, g) for a, g in pairs], dim=1))

    def capture(self, inputs: Any) -> LayerCapture:
        """The target layer's activations and every class's gradients, from one forward pass and one
        batched backward. Every gradient method turns the same capture into its maps
        (``from_capture``), so switching method needs no new pass through the network."""
        check_images(inputs, self.model)
        inputs = _ordinary(inputs)
        with _Session(self.model, self.layers, self.layer_names) as session:
            logits = self._forward(session, inputs)
            gradients = all_class_gradients(logits, session.activations)
        return LayerCapture(activations=[a.detach() for a in session.activations], gradients=gradients,
                            logits=logits.detach(), size=self._size(inputs), view_weights=session.view_weights,
                            layer_names=list(self.layer_names))

    def from_capture(self, capture: LayerCapture, normalize: str | None = "minmax", inputs: Any = None,
                     eigen_smooth: bool = False) -> CAMResult:
        """Every class's maps (as ``all_classes``) from a ``capture`` of the same layer(s).
        (``inputs`` is for methods that need the images too, as guided Grad-CAM.)"""
        if not self.needs_gradients:
            raise ValueError(f"{self.label} does not use gradients, so a capture cannot make its maps; "
                             f"call all_classes(inputs)")
        if capture.layer_names != self.layer_names:
            raise ValueError(f"this capture is of {capture.layer_names}, not of {self.layer_names}")
        k = capture.logits.shape[1]
        maps, scales = [], []
        for a, g in zip(capture.activations, capture.gradients):
            maps.append(torch.stack([self._combined(a, g[c], eigen_smooth) for c in range(k)], dim=1))
            scales.append(torch.stack([self.term_scale(a, g[c]) for c in range(k)], dim=1))
        everything = torch.arange(k, device=capture.logits.device)
        return self._finish(self._views(maps, dim=2), capture.logits, everything, capture.size, normalize,
                            len(capture.activations), capture.view_weights, self._views(scales, dim=2))

    @staticmethod
    def _views(maps: list[torch.Tensor], dim: int) -> torch.Tensor:
        """One activation: its map; several (one per view): stacked along ``dim``."""
        return maps[0] if len(maps) == 1 else torch.stack(maps, dim=dim)

    def _finish(self, raw: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, size: tuple[int, int],
                normalize: str | None, views: int = 1, view_weights: torch.Tensor | None = None,
                scale: torch.Tensor | None = None) -> CAMResult:
        positive = torch.relu(raw)
        dims = 3 if views > 1 else 2  # the views of one fish share one scale, so a view with little evidence stays dim
        flat = flat_maps(positive, raw, scale, dims)
        noisy = self._warn_if_noise(flat, positive, dims)
        maps = upsample(positive, size)
        if views > 1:
            joint = maps.flatten(-3)[..., None, :]
            maps = normalize_maps(joint, normalize).reshape(maps.shape)
            flat, noisy = flat[..., None].expand(maps.shape[:-2]), noisy[..., None].expand(maps.shape[:-2])
        else:
            maps = normalize_maps(maps, normalize)
        # Normalised, a flat map is zeros; unnormalised, a constant map keeps its (exact) value and
        # only a noise-level one becomes zeros.
        zero = flat if normalize is not None else noisy
        maps = torch.where(zero[..., None, None], torch.zeros_like(maps), maps)
        return CAMResult(maps=maps.detach(), raw=raw.detach(), logits=logits.detach(), explained=targets.detach(),
                         view_weights=view_weights, flat=flat.detach())

    def _warn_if_noise(self, flat: torch.Tensor, positive: torch.Tensor, dims: int) -> torch.Tensor:
        """The flat maps that are not constant (rounding noise), after a warning if there are any."""
        flatten = positive.flatten(-dims)
        noisy = flat & (flatten.amax(-1) > flatten.amin(-1))
        if bool(noisy.any()):
            warnings.warn(f"{self.label} at {self.layer_name!r}: {int(noisy.sum())} of {noisy.numel()} maps vary only "
                          f"at rounding-noise level next to the terms they sum (HiResCAM right before a LayerNorm "
                          f"cancels this way); they are zeros here and True in CAMResult.flat. Try Grad-CAM, or "
                          f"another layer.", FlatMapWarning, stacklevel=4)
        return noisy
