"""Class activation maps, written from scratch: Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM,
LayerCAM, Eigen-Grad-CAM (gradient methods), Score-CAM, Ablation-CAM, Eigen-CAM and the original
CAM (gradient-free).

One base class, ``BaseCAM``, holds the hooks and the pipeline; each method says only how it turns
the target layer's activations ``A`` (N, C, h, w) and the gradients ``G = d score / d A`` into a
signed map (N, h, w), or (gradient-free methods) how it turns the activations and extra passes
through the network into maps. The pipeline:

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
import difflib
import inspect
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..models.inspection import check_images, check_logits, check_model, eval_mode, frozen_parameters, logits_of, view_weights_of
from .registry import lookup, register
from .targets import Targets, all_class_targets, check_target_count, resolve_score_targets

NORMALIZATIONS = ("minmax", None)


@dataclass
class CAMResult:
    """What a CAM call returns (all detached, on the model's device).

    ``maps``: (N, H, W) at the input size, ReLU'd, min-max normalised to [0, 1] per map unless
    ``normalize=None``; for ``all_classes``, (N, K, H, W). ``raw``: the signed maps at the layer's
    resolution, before ReLU, (N, h, w) or (N, K, h, w). When the target layer runs once per view
    (a multi-view model), a view dimension V follows: (N, V, H, W) or (N, K, V, H, W), and the views
    of one image are normalised together, so that they compare. ``logits``: (N, K). ``explained``: (N,) long
    (the classes explained, what the call's ``targets`` asked for; for ``all_classes``, every class). ``view_weights``: (N, V), the view
    weights a multi-view model returned in the same forward pass (``view_weights_of``), else None.
    A target given as a function is -1 in ``explained``. ``flat``: bool of ``maps.shape[:-2]``, True for a
    map with no spatial information (constant at the layer's resolution, or varying only at rounding-noise
    level), which is zeros in ``maps`` (with ``normalize=None`` a constant map keeps its value). ``pixels``: guided Grad-CAM's signed input-space product
    (N, 3, H, W) (multi-view (N, V, 3, H, W); all classes (N, K, ...)), else None.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    logits: torch.Tensor
    explained: torch.Tensor
    view_weights: torch.Tensor | None = None
    flat: torch.Tensor | None = None
    pixels: torch.Tensor | None = None


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


# What PyTorch says when a backward op cannot run batched (``is_grads_batched`` vmaps the backward):
# "Batching rule not implemented for aten::...", "vmap: ... is not supported", "...batched...".
_NO_BATCHING_RULE = ("batching rule", "vmap", "batched")


def _lacks_batching_rule(error: RuntimeError) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _NO_BATCHING_RULE)


def _all_class_gradients(logits: torch.Tensor, activations: list[torch.Tensor]) -> list[torch.Tensor]:
    """d logit_k / d activation for every class k: a (K, N, C, h, w) tensor per activation, from one
    batched backward (``is_grads_batched``); images are independent in eval mode."""
    n, k = logits.shape
    one_hot = torch.eye(k, device=logits.device, dtype=logits.dtype)[:, None, :].expand(k, n, k)
    try:
        # retain_graph: should the batched pass fail halfway, the per-class fallback needs the graph.
        gradients = torch.autograd.grad(logits, activations, grad_outputs=one_hot, is_grads_batched=True,
                                        retain_graph=True)
    except RuntimeError as error:
        if not _lacks_batching_rule(error):
            raise  # out of memory, a broken graph...: a per-class loop would hide or repeat it
        # Some layers have no batching rule for their backward: one backward per class instead.
        per_class = [torch.autograd.grad(logits, activations, grad_outputs=one_hot[c], retain_graph=True)
                     for c in range(k)]
        gradients = [torch.stack([g[i] for g in per_class]) for i in range(len(activations))]
    return [g.detach() for g in gradients]


def resolve_layer(model: nn.Module, layer: str | nn.Module) -> tuple[str, nn.Module]:
    """``(name, module)`` for a target layer given as a module of ``model`` or a dotted name
    (``"layer4"``, ``"layer4.1.conv2"``). A wrong name raises ``ValueError`` listing candidates."""
    named = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        for name, module in named.items():
            if module is layer:
                return name, module
        raise ValueError(f"the target layer {type(layer).__name__} is not a submodule of this model; "
                         f"pass one of its modules, or a name such as {_suggest(model, '')}")
    if not isinstance(layer, str) or layer not in named or layer == "":
        close = difflib.get_close_matches(str(layer), [n for n in named if n], n=5, cutoff=0.5)
        raise ValueError(f"no layer named {layer!r} in {type(model).__name__}. "
                         + (f"Did you mean {', '.join(map(repr, close))}? " if close else "")
                         + f"Sensible targets: {_suggest(model, layer)}")
    return layer, named[layer]


def _branch_layers(model: nn.Module, layer: Any) -> Any:
    """A multi-view model's branch layer given by its branch name (``"layer2"``) becomes that layer
    in every branch (``model.cam_target``); anything else is returned as it is."""
    from ..models.factory import unwrap

    inner = unwrap(model)
    if isinstance(layer, str) and hasattr(inner, "cam_target") and layer not in dict(model.named_modules()):
        return inner.cam_target(layer)
    return layer


def _suggest(model: nn.Module, _: Any) -> str:
    try:
        from ..models.factory import cam_layers

        return ", ".join(map(repr, cam_layers(model)))
    except ValueError:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        return ", ".join(map(repr, convs[-3:])) or "(none found)"


def normalize_maps(maps: torch.Tensor, normalize: str | None = "minmax") -> torch.Tensor:
    """Per-map min-max to [0, 1] over the last two dimensions; a constant map becomes zeros
    (never NaN). ``normalize=None`` returns the maps unchanged."""
    if normalize is None:
        return maps
    if normalize != "minmax":
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    flat = maps.flatten(-2)
    low = flat.min(-1).values[..., None, None]
    span = flat.max(-1).values[..., None, None] - low
    return torch.where(span > 0, (maps - low) / span.clamp_min(torch.finfo(maps.dtype).tiny), torch.zeros_like(maps))


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(..., h, w) → (..., H, W), bilinear with pixel centres aligned (``align_corners=False``)."""
    lead = maps.shape[:-2]
    out = F.interpolate(maps.reshape(-1, 1, *maps.shape[-2:]), size=size, mode="bilinear", align_corners=False)
    return out.reshape(*lead, *size)


def _ordinary(inputs: Any) -> Any:
    """Inputs made under ``torch.inference_mode()`` cannot enter autograd: clone those. All are
    detached, so that inside a call only what descends from a target layer requires grad."""
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_ordinary(x) for x in inputs)
    if isinstance(inputs, torch.Tensor) and inputs.is_inference():
        with torch.inference_mode(False):
            return inputs.clone()
    return inputs.detach() if isinstance(inputs, torch.Tensor) else inputs


class _Session:
    """Everything a call changes on the model, undone on exit whatever happens: eval mode,
    frozen parameters (so that nothing before the target layer is differentiated), the hook.

    The hook records each target layer's output (``record``), or, for a gradient-free method
    rerunning the network, records nothing or hands on a ``replacement`` for the layer's output."""

    def __init__(self, model: nn.Module, layers: Sequence[nn.Module], names: Sequence[str]) -> None:
        self.model, self.layers, self.names = model, list(layers), list(names)
        self.activations: list[torch.Tensor] = []
        self.ran: list[nn.Module] = []
        self.view_weights: torch.Tensor | None = None
        self.record = True
        self.replacement: torch.Tensor | None = None

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> torch.Tensor | None:
        if self.replacement is not None:
            return self.replacement.clone()  # later in-place ops must not change the caller's tensor
        if not self.record:
            return None
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"the target layer must output (N, C, h, w) feature maps; it gave {shape}. "
                             f"Pick a convolutional layer or stage.")
        # Parameters are frozen and inputs detached, so a tensor here that requires grad descends from an
        # activation recorded earlier in this forward: the layer's map would cut that one off the graph.
        if output.requires_grad or any(isinstance(x, torch.Tensor) and x.requires_grad for x in inputs):
            self._refuse_reuse(module)
        activation = output.detach().requires_grad_(True)
        self.activations.append(activation)
        self.ran.append(module)
        return activation.clone()

    def _refuse_reuse(self, module: nn.Module) -> None:
        name = self.names[self.layers.index(module)]
        if module in self.ran:
            parent = name.rpartition(".")[0]
            better = f"its block {parent!r}" if parent else "a layer that runs once"
            raise ValueError(f"the target layer {name!r} runs twice in one forward pass, the second time on "
                             f"what its first output became (torchvision's BasicBlock uses one ReLU module after "
                             f"bn1 and again after the residual add), so one map cannot explain it; "
                             f"target {better} or a convolution inside it instead")
        raise ValueError(f"the target layer {name!r} takes what another target layer made in this forward; "
                         f"give one layer, or one layer per branch of a multi-view model")

    def __enter__(self) -> _Session:
        with contextlib.ExitStack() as stack:  # if entering fails halfway, what was done is undone
            stack.enter_context(eval_mode(self.model))
            # Nothing before the target layer is differentiated, and no parameter's .grad is filled.
            stack.enter_context(frozen_parameters(self.model))
            for layer in self.layers:
                stack.callback(layer.register_forward_hook(self._hook).remove)
            # Callers often explain inside torch.no_grad() or torch.inference_mode(): leave both.
            stack.enter_context(torch.inference_mode(False))
            stack.enter_context(torch.enable_grad())
            self.stack = stack.pop_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stack.__exit__(*exc)


class FlatMapWarning(UserWarning):
    """Maps whose span is at rounding-noise level: shown as zeros, flagged in ``CAMResult.flat``."""


# A map is flat when its span is within this many rounding errors (of its dtype) of the largest
# term it sums or of its own size: a 1x1 layer, or HiResCAM right before a LayerNorm, where
# sum_c G_c A_c cancels to rounding noise at every pixel.
FLAT_ROUNDING_ERRORS = 1000


def flat_maps(maps: torch.Tensor, raw: torch.Tensor, scale: torch.Tensor | None = None, dims: int = 2) -> torch.Tensor:
    """Which maps carry no spatial information: bool of ``maps.shape[:-dims]``, from the ReLU'd
    ``maps`` and signed ``raw`` at the layer's resolution and the per-pixel size of the terms summed
    (``scale``, same shape, or None). Decided before upsampling, which would add its own ripples."""
    pixels = maps.flatten(-dims)
    span = pixels.amax(-1) - pixels.amin(-1)
    size = raw.abs().flatten(-dims).amax(-1)
    if scale is not None:
        size = torch.maximum(size, scale.flatten(-dims).amax(-1))
    tolerance = FLAT_ROUNDING_ERRORS * torch.finfo(maps.dtype).eps
    return span <= tolerance * size


class BaseCAM:
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
    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """Gradient methods: signed maps (N, h, w) from activations and gradients (N, C, h, w)."""
        raise NotImplementedError

    def term_scale(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """(N, h, w): how large the terms the map sums are, the yardstick of a noise-level map."""
        return (gradients.abs() * activations.abs()).sum(1)

    def class_maps(self, activations: torch.Tensor, inputs: Any, logits: torch.Tensor,
                   targets: Targets) -> torch.Tensor:
        """Gradient-free methods: signed maps (N, J, h, w) of the J columns of ``targets`` from the
        target layer's activations (N, C, h, w) and the logits (N, K) of ``inputs``."""
        raise NotImplementedError

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
        return self.model(*inputs) if isinstance(inputs, (tuple, list)) else self.model(inputs)

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

    def __call__(self, inputs: torch.Tensor, targets: Any = None, normalize: str | None = "minmax") -> CAMResult:
        """Maps of ``targets`` (default: the predicted classes) for a batch (N, 3, H, W)."""
        return self._run(inputs, targets, normalize, every_class=False)

    def all_classes(self, inputs: torch.Tensor, normalize: str | None = "minmax") -> CAMResult:
        """Every class's map: maps (N, K, H, W), raw (N, K, h, w), from one forward pass and one
        batched backward (``is_grads_batched``), for a class slider that only re-renders."""
        if self.needs_gradients:
            normalize_maps(torch.zeros(1, 1, 1), normalize)
            return self.from_capture(self.capture(inputs), normalize)
        return self._run(inputs, None, normalize, every_class=True)

    def _run(self, inputs: Any, targets: Any, normalize: str | None, every_class: bool) -> CAMResult:
        normalize_maps(torch.zeros(1, 1, 1), normalize)  # a bad choice fails before any work
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
                raw, scale = self._gradient_maps(session, logits, chosen)
            else:
                self._session = session
                try:
                    raw = self.class_maps(session.activations[0].detach(), inputs, logits.detach(), chosen)
                finally:
                    self._session = None
                raw = raw if every_class else raw[:, 0]
            views = len(session.activations)
        explained = chosen.classes[0] if every_class else chosen.classes[:, 0]
        return self._finish(raw, logits, explained, self._size(inputs), normalize, views, session.view_weights, scale)

    def _gradient_maps(self, session: _Session, logits: torch.Tensor,
                       targets: Targets) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, h, w) maps and term scales, or (N, V, h, w) for V activations, from one backward of
        the summed scores (images are independent in eval mode)."""
        activations = session.activations
        gradients = torch.autograd.grad(targets.scores(logits).sum(), activations)
        pairs = [(a.detach(), g) for a, g in zip(activations, gradients)]
        return (self._views([self.combine(a, g) for a, g in pairs], dim=1),
                self._views([self.term_scale(a, g) for a, g in pairs], dim=1))

    def capture(self, inputs: Any) -> LayerCapture:
        """The target layer's activations and every class's gradients, from one forward pass and one
        batched backward. Every gradient method turns the same capture into its maps
        (``from_capture``), so switching method needs no new pass through the network."""
        check_images(inputs, self.model)
        inputs = _ordinary(inputs)
        with _Session(self.model, self.layers, self.layer_names) as session:
            logits = self._forward(session, inputs)
            gradients = _all_class_gradients(logits, session.activations)
        return LayerCapture(activations=[a.detach() for a in session.activations], gradients=gradients,
                            logits=logits.detach(), size=self._size(inputs), view_weights=session.view_weights,
                            layer_names=list(self.layer_names))

    def from_capture(self, capture: LayerCapture, normalize: str | None = "minmax", inputs: Any = None) -> CAMResult:
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
            maps.append(torch.stack([self.combine(a, g[c]) for c in range(k)], dim=1))
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


@register
class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weights are the spatially averaged gradients,
    alpha_c = mean_ij dS/dA_cij; map = sum_c alpha_c A_c."""

    name, label = "gradcam", "Grad-CAM"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)


@register
class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018): pixel-weighted positive gradients, with the
    closed-form coefficients a = g^2 / (2 g^2 + sum_ij A g^3) (exponential-score assumption)."""

    name, label = "gradcam++", "Grad-CAM++"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2, g3 = gradients.pow(2), gradients.pow(3)
        total = activations.sum(dim=(2, 3), keepdim=True)
        denominator = 2 * g2 + total * g3
        # The paper's formula, exactly: a zero denominator (zero gradient) gives a zero coefficient.
        # (pytorch-grad-cam adds 1e-6 to every denominator instead, which distorts the weights of
        # models whose gradients are small, since g^2 is then comparable to 1e-6.)
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where((gradients != 0) & (denominator != 0), g2 / safe, torch.zeros_like(g2))
        weights = (torch.relu(gradients) * alpha).sum(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)


@register
class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al. 2020): each channel's weight is its gradient averaged over the pixels
    weighted by the channel's own activation, alpha_c = sum_ij A_cij G_cij / sum_ij A_cij."""

    name, label = "xgradcam", "XGrad-CAM"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        total = activations.sum(dim=(2, 3), keepdim=True)
        # The formula exactly; a channel that is zero everywhere weighs nothing (pytorch-grad-cam adds
        # 1e-7 to every denominator, which matters only when the activations sum to about that).
        safe = torch.where(total != 0, total, torch.ones_like(total))
        weights = torch.where(total != 0, (activations * gradients).sum(dim=(2, 3), keepdim=True) / safe,
                              torch.zeros_like(total))
        return (weights * activations).sum(1)


@register
class HiResCAM(BaseCAM):
    """HiResCAM (Draelos & Carin 2020): gradients times activations, summed over channels, with no
    spatial averaging, so the map is faithful to what the score actually used."""

    name, label = "hirescam", "HiResCAM"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (gradients * activations).sum(1)


@register
class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al. 2021): positive gradients weight each activation pixel; useful at
    earlier, finer layers."""

    name, label = "layercam", "LayerCAM"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (torch.relu(gradients) * activations).sum(1)


def principal_projection(features: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) → (N, h, w): each pixel's feature vector, centred over the pixels, projected on
    the first principal component (the first right singular vector). SVD leaves the component's
    sign open; it is chosen so that the map correlates positively with ``features.sum(1)``, the
    map of the summed channels (for G * A, HiResCAM's), so warm means what the features say."""
    n, c, h, w = features.shape
    pixels = features.flatten(2).transpose(1, 2)  # (N, hw, C)
    centred = pixels - pixels.mean(dim=1, keepdim=True)
    _, _, vh = torch.linalg.svd(centred, full_matrices=False)
    projection = (centred @ vh[:, 0, :, None])[..., 0]  # (N, hw)
    summed = features.sum(1).flatten(1)
    agreement = (projection * (summed - summed.mean(1, keepdim=True))).sum(1)
    sign = torch.where(agreement < 0, -1.0, 1.0).to(projection.dtype)
    return (projection * sign[:, None]).reshape(n, h, w)


@register
class EigenGradCAM(BaseCAM):
    """Eigen-Grad-CAM (as pytorch-grad-cam defines it, after Muhammad & Yeasin 2020): the first
    principal component of gradients times activations, G * A, over the layer's pixels."""

    name, label = "eigengradcam", "Eigen-Grad-CAM"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return principal_projection(gradients * activations)


class _GradientFree(BaseCAM):
    """Methods that need no gradients: one activation per image (no multi-view branches)."""

    needs_gradients = False
    family = "gradient-free"
    multi_activation = False

    def __init__(self, model: nn.Module, layer: str | nn.Module, batch_size: int = 64,
                 progress: bool | None = None) -> None:
        super().__init__(model, layer, progress)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int (network passes per batch); got {batch_size!r}")
        self.batch_size = batch_size

    def _single_images(self, inputs: Any, activations: torch.Tensor) -> None:
        if isinstance(inputs, (tuple, list)):
            raise ValueError(f"{self.label} explains single-image models; use a gradient method for multi-view models")
        if activations.shape[0] != inputs.shape[0]:
            raise ValueError(f"{self.label} needs one activation per image at {self.layer_name!r}; it has "
                             f"{activations.shape[0]} for {inputs.shape[0]} images")


@register
class ScoreCAM(_GradientFree):
    """Score-CAM (Wang et al. 2020): no gradients. Each channel, upsampled and min-max scaled,
    masks the input; the class scores of the masked images, softmaxed over channels, weight the
    channels. Masked images of all the batch's images go through the model ``batch_size`` at a time."""

    name, label = "scorecam", "Score-CAM"

    def class_maps(self, activations, inputs, logits, targets):
        self._single_images(inputs, activations)
        n, c = activations.shape[:2]
        # Same mask upsampling as pytorch-grad-cam (corners aligned), so results are comparable.
        masks = F.interpolate(activations, size=inputs.shape[-2:], mode="bilinear", align_corners=True)
        flat = masks.flatten(2)
        low, high = flat.min(-1).values[..., None, None], flat.max(-1).values[..., None, None]
        masks = ((masks - low) / (high - low + 1e-8)).reshape(n * c, 1, *inputs.shape[-2:])
        # All (image, channel) pairs in one queue, so that batches stay full across images.
        image_of = torch.arange(n, device=inputs.device).repeat_interleave(c)
        scores = []
        for start in self._progress(range(0, n * c, self.batch_size), f"Score-CAM, {n} image(s) x {c} channels"):
            pairs = slice(start, start + self.batch_size)
            masked = self.logits_for(inputs[image_of[pairs]] * masks[pairs]).float()
            scores.append(targets.scores(masked, image_of[pairs]))
        weights = torch.softmax(torch.cat(scores).reshape(n, c, -1), dim=1)  # over channels
        return torch.einsum("ncj,nchw->njhw", weights.to(activations.dtype), activations)


@register
class AblationCAM(_GradientFree):
    """Ablation-CAM (Desai & Ramaswamy 2020): a channel weighs what the score loses when that channel
    is set to zero, w_c = (y - y_without_c) / |y|; map = sum_c w_c A_c. No gradients.

    Batched: the layers before the target run once per image per ``batch_size`` channels, and only
    the rest of the network sees the batch of ablated copies (pytorch-grad-cam reruns the whole
    network for every copy). Where the rest of the network does its own batch bookkeeping and
    cannot take the copies so, the copies go through the whole network instead."""

    name, label = "ablationcam", "Ablation-CAM"

    def class_maps(self, activations, inputs, logits, targets):
        self._single_images(inputs, activations)
        n, c = activations.shape[:2]
        original = targets.scores(logits.float())  # (N, J)
        starts = range(0, c, self.batch_size)
        steps = [(i, start) for i in range(n) for start in starts]
        ablated = torch.empty(n, c, original.shape[1], device=original.device)
        whole_network = False  # until the rest of the network refuses a batch of copies alone
        for i, start in self._progress(steps, f"Ablation-CAM, {n} image(s) x {c} channels"):
            channels = torch.arange(start, min(start + self.batch_size, c), device=activations.device)
            copies = activations[i].expand(len(channels), *activations.shape[1:]).clone()
            copies[torch.arange(len(channels)), channels] = 0
            rows, whole_network = self._ablated_logits(inputs[i:i + 1], copies, whole_network)
            rows = rows.float()
            ablated[i, channels] = targets.scores(rows, torch.full((len(channels),), i, device=rows.device))
        # The paper divides by y; by |y| here, so that a class with a negative score is not flipped.
        size = original.abs()
        weights = (original[:, None] - ablated) / torch.where(size > 0, size, torch.ones_like(size))[:, None]
        return torch.einsum("ncj,nchw->njhw", weights.to(activations.dtype), activations)

    def _ablated_logits(self, image: torch.Tensor, copies: torch.Tensor,
                        whole_network: bool) -> tuple[torch.Tensor, bool]:
        """Logits of the ablated copies, and whether they had to go through the whole network."""
        if not whole_network:
            try:
                return self.logits_with(image, copies), False
            except _OUT_OF_MEMORY:
                raise
            except (RuntimeError, ValueError):
                pass  # a shape clash after the layer: run the copies all through, from now on
        return self.logits_with(image.expand(len(copies), *image.shape[1:]), copies), True


# torch.OutOfMemoryError is new in torch 2.5; before, CUDA's was the only one.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@register
class EigenCAM(_GradientFree):
    """Eigen-CAM (Muhammad & Yeasin 2020): the first principal component of the layer's activations
    over its pixels. No gradients, and the same map for every class."""

    name, label = "eigencam", "Eigen-CAM"

    def class_maps(self, activations, inputs, logits, targets):
        return principal_projection(activations)[:, None].expand(-1, targets.classes.shape[1], -1, -1)


@register
class CAM(_GradientFree):
    """The original CAM (Zhou et al. 2016) for a network whose last conv features are globally
    average-pooled into one linear layer: map = sum_c w_{k,c} A_c with w the linear weights.
    Any other head (a LayerNorm before the linear layer, as ConvNeXt's), or a layer that is not the
    last before the pooling, raises ``ValueError``: Grad-CAM is the general form."""

    name, label = "cam", "CAM"
    any_layer = False  # only the last layer before the pooling

    def __init__(self, model: nn.Module, layer: str | nn.Module, fc: str | nn.Module | None = None,
                 progress: bool | None = None) -> None:
        super().__init__(model, layer, progress=progress)
        if fc is None:
            fc = _head_of(model)
        fc_name, self.fc = resolve_layer(model, fc)
        if not isinstance(self.fc, nn.Linear):
            raise ValueError(f"CAM needs a linear head after global average pooling; {fc_name!r} is a "
                             f"{type(self.fc).__name__}. Use Grad-CAM, which works with any head.")
        self.fc_name = fc_name

    def class_maps(self, activations, inputs, logits, targets):
        self._check_head(activations, logits)
        if targets.uses_functions:
            raise ValueError("CAM reads one class's row of the linear head, so its targets must be class indices; "
                             "for a score function use Grad-CAM, which equals CAM on this kind of head")
        weights = self.fc.weight.detach()[targets.classes.to(activations.device)]  # (N, J, C)
        return torch.einsum("njc,nchw->njhw", weights.to(activations.dtype), activations)

    def _check_head(self, activations: torch.Tensor, logits: torch.Tensor) -> None:
        """CAM's map is right only if logits = fc(mean over pixels of the layer): check it."""
        advice = "use Grad-CAM, which works at any layer and with any head"
        if activations.shape[1] != self.fc.in_features:
            raise ValueError(f"CAM works only at the layer whose pooled output the head {self.fc_name!r} reads: "
                             f"{self.layer_name!r} has {activations.shape[1]} channels and the head takes "
                             f"{self.fc.in_features}; {advice}")
        pooled = F.linear(activations.mean(dim=(2, 3)), self.fc.weight, self.fc.bias)
        tolerance = 1e-3 * float(logits.abs().max().clamp_min(1.0))
        if not torch.allclose(pooled.to(logits.dtype), logits, rtol=1e-3, atol=tolerance):
            raise ValueError(f"CAM needs the head to be global average pooling then {self.fc_name!r} straight after "
                             f"{self.layer_name!r}; here the logits are not {self.fc_name}(mean of {self.layer_name}) "
                             f"(ConvNeXt puts a LayerNorm between, and a layer before the last stage has more "
                             f"layers after it); {advice}")


def _head_of(model: nn.Module) -> str:
    """The linear head of a model made by ``build_model``; for any other, a clear request for ``fc=``."""
    from ..models.factory import head_name

    try:
        return head_name(model)
    except ValueError:
        linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        hint = f"; its last linear layer is {linear[-1]!r}, so try fc={linear[-1]!r}" if linear else ""
        raise ValueError(f"CAM reads the weights of the model's linear head, and {type(model).__name__} was not built "
                         f"by build_model, so name the head: CAM(model, layer, fc=...) (a torchvision ResNet's is "
                         f"'fc'){hint}") from None


def make_cam(method: str, model: nn.Module, layer: str | nn.Module, **options: Any) -> Any:
    """An explainer by method name or label (any spelling ``registry.canonical`` forgives): one of
    ``registry.method_names()`` ("gradcam", "gradcam++", "xgradcam", "hirescam", "layercam",
    "eigengradcam", "scorecam", "ablationcam", "eigencam", "cam", "guided-gradcam")."""
    entry = lookup(method)
    accepted = [name for name in inspect.signature(entry.cls.__init__).parameters if name not in ("self", "model", "layer")]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in inspect.signature(entry.cls.__init__).parameters.values()):
        raise TypeError(f"{entry.cls.__name__} takes no option {', '.join(unknown)}; its options are "
                        f"{', '.join(accepted) or 'none'}")
    return entry.cls(model, layer, **options)
