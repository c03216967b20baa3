"""Class activation maps, written from scratch: Grad-CAM, Grad-CAM++, HiResCAM, LayerCAM,
Score-CAM and the original CAM.

One base class, ``BaseCAM``, holds the hooks and the pipeline; each method says only how it turns
the target layer's activations ``A`` (N, C, h, w) and the gradients ``G = d score / d A`` into a
signed map (N, h, w). The pipeline:

1. a forward hook on the target layer keeps its output *as produced* (a detached leaf) and hands a
   copy to the rest of the network, so in-place operations later in the network (``out += identity``
   then ``relu_`` in a torchvision ResNet block) cannot change the activation we explain;
2. gradients are taken with ``torch.autograd.grad`` with respect to that activation only: nothing
   before the target layer is differentiated and no parameter's ``.grad`` is filled;
3. ReLU, bilinear upsampling to the input size, and (optionally) per-image min-max normalisation.

After every call, even one that raises, the hooks are gone and the model's train/eval modes and
``requires_grad`` flags are as they were.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..models.state import eval_mode, frozen_parameters, logits_of, view_weights_of
from .targets import check_target_count, resolve_targets

NORMALIZATIONS = ("minmax", None)


@dataclass
class CAMResult:
    """What a CAM call returns (all detached, on the model's device).

    ``maps``: (N, H, W) at the input size, ReLU'd, min-max normalised to [0, 1] per map unless
    ``normalize=None``; for ``all_classes``, (N, K, H, W). ``raw``: the signed maps at the layer's
    resolution, before ReLU, (N, h, w) or (N, K, h, w). When the target layer runs once per view
    (a multi-view model), a view dimension V follows: (N, V, H, W) or (N, K, V, H, W), and the views
    of one image are normalised together, so that they compare. ``logits``: (N, K). ``targets``: (N,) long
    (the classes explained; for ``all_classes``, every class). ``view_weights``: (N, V), the view
    weights a multi-view model returned in the same forward pass (``view_weights_of``), else None.
    """

    maps: torch.Tensor
    raw: torch.Tensor
    logits: torch.Tensor
    targets: torch.Tensor
    view_weights: torch.Tensor | None = None


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
    """Inputs made under ``torch.inference_mode()`` cannot enter autograd: clone those."""
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_ordinary(x) for x in inputs)
    if isinstance(inputs, torch.Tensor) and inputs.is_inference():
        with torch.inference_mode(False):
            return inputs.clone()
    return inputs


class _Session:
    """Everything a call changes on the model, undone on exit whatever happens: eval mode,
    frozen parameters (so that nothing before the target layer is differentiated), the hook."""

    def __init__(self, model: nn.Module, layers: Sequence[nn.Module]) -> None:
        self.model, self.layers = model, list(layers)
        self.activations: list[torch.Tensor] = []
        self.view_weights: torch.Tensor | None = None

    def _hook(self, module: nn.Module, inputs: Any, output: Any) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            shape = tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
            raise ValueError(f"the target layer must output (N, C, h, w) feature maps; it gave {shape}. "
                             f"Pick a convolutional layer or stage.")
        activation = output.detach().requires_grad_(True)
        self.activations.append(activation)
        return activation.clone()

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


class BaseCAM:
    """A class activation map of ``model`` at ``target_layer`` (a module or a dotted name).

    ``cam(x)`` explains the predicted classes; ``cam(x, targets=3)`` or ``targets=[...]`` others.
    ``cam.all_classes(x)`` gives every class's map from one forward and one batched backward.
    For a multi-view model, give the layer of a shared branch (it runs once per view), a list
    with one layer per branch, or (for ``MultiViewNet``) a branch layer's name such as ``"layer2"``,
    meaning that layer in every branch: every view's map comes from one forward and one backward of the
    fused logit. Inputs may be a tuple (``model(*inputs)``); maps take the size of its first item.
    Subclasses implement ``combine(A, G) -> (N, h, w)`` (signed, before ReLU).
    """

    name = "base"
    needs_gradients = True
    multi_activation = True  # maps for a layer that runs once per view (multi-view models)

    def __init__(self, model: nn.Module, target_layer: str | nn.Module | Sequence[str | nn.Module]) -> None:
        self.model = model
        target_layer = _branch_layers(model, target_layer)
        several = isinstance(target_layer, (list, tuple))
        resolved = [resolve_layer(model, t) for t in (target_layer if several else [target_layer])]
        if not resolved:
            raise ValueError("target_layer must name at least one layer")
        self.layer_names = [name for name, _ in resolved]
        self.layers = [module for _, module in resolved]
        self.layer_name, self.layer = ", ".join(self.layer_names), self.layers[0]

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _forward(self, session: _Session, inputs: Any) -> torch.Tensor:
        output = self.model(*inputs) if isinstance(inputs, (tuple, list)) else self.model(inputs)
        if not session.activations:
            raise ValueError(f"the target layer {self.layer_name!r} was not used in the forward pass")
        if len(session.activations) > 1:
            # A multi-view model: one branch per view, or one shared branch run once per view.
            # Every activation gets its map, in the order the forward produced them.
            shapes = {tuple(a.shape[-2:]) for a in session.activations}
            if not self.multi_activation:
                raise ValueError(f"{self.name} works with a layer that runs once per image, and "
                                 f"{self.layer_name!r} ran {len(session.activations)} times (once per view of a "
                                 f"multi-view model); use a gradient method such as Grad-CAM")
            if len(shapes) > 1:
                raise ValueError(f"the target layers {self.layer_name!r} ran {len(session.activations)} times in one "
                                 f"forward with feature sizes {sorted(shapes)}; pick layers of the same resolution")
        weights = view_weights_of(output)
        session.view_weights = None if weights is None else weights.detach()
        return logits_of(output)

    @staticmethod
    def _batch(inputs: Any) -> int:
        return (inputs[0] if isinstance(inputs, (tuple, list)) else inputs).shape[0]

    @staticmethod
    def _size(inputs: Any) -> tuple[int, int]:
        first = inputs[0] if isinstance(inputs, (tuple, list)) else inputs
        return tuple(first.shape[-2:])

    def __call__(self, inputs: torch.Tensor, targets: Any = None, normalize: str | None = "minmax") -> CAMResult:
        """Maps of ``targets`` (default: the predicted classes) for a batch (N, 3, H, W)."""
        normalize_maps(torch.zeros(1, 1, 1), normalize)  # a bad choice fails before any work
        check_target_count(targets, self._batch(inputs))
        inputs = _ordinary(inputs)
        with _Session(self.model, self.layers) as session:
            logits = self._forward(session, inputs)
            chosen = resolve_targets(targets, logits.detach())
            raw = self._raw(session, inputs, logits, chosen)
            views = len(session.activations)
        return self._finish(raw, logits, chosen, self._size(inputs), normalize, views, session.view_weights)

    def all_classes(self, inputs: torch.Tensor, normalize: str | None = "minmax") -> CAMResult:
        """Every class's map: maps (N, K, H, W), raw (N, K, h, w), from one forward pass and one
        batched backward (``is_grads_batched``), for a class slider that only re-renders."""
        normalize_maps(torch.zeros(1, 1, 1), normalize)
        if self.needs_gradients:
            return self.from_capture(self.capture(inputs), normalize)
        inputs = _ordinary(inputs)
        with _Session(self.model, self.layers) as session:
            logits = self._forward(session, inputs)
            raw = self._raw_all(session, inputs, logits)
            views = len(session.activations)
        everything = torch.arange(logits.shape[1], device=logits.device)
        return self._finish(raw, logits, everything, self._size(inputs), normalize, views, session.view_weights)

    def capture(self, inputs: Any) -> LayerCapture:
        """The target layer's activations and every class's gradients, from one forward pass and one
        batched backward. Every gradient method turns the same capture into its maps
        (``from_capture``), so switching method needs no new pass through the network."""
        inputs = _ordinary(inputs)
        with _Session(self.model, self.layers) as session:
            logits = self._forward(session, inputs)
            gradients = _all_class_gradients(logits, session.activations)
        return LayerCapture(activations=[a.detach() for a in session.activations], gradients=gradients,
                            logits=logits.detach(), size=self._size(inputs), view_weights=session.view_weights,
                            layer_names=list(self.layer_names))

    def from_capture(self, capture: LayerCapture, normalize: str | None = "minmax") -> CAMResult:
        """Every class's maps (as ``all_classes``) from a ``capture`` of the same layer(s)."""
        if not self.needs_gradients:
            raise ValueError(f"{self.name} does not use gradients, so a capture cannot make its maps; "
                             f"call all_classes(inputs)")
        if capture.layer_names != self.layer_names:
            raise ValueError(f"this capture is of {capture.layer_names}, not of {self.layer_names}")
        k = capture.logits.shape[1]
        maps = [torch.stack([self.combine(a, g[c]) for c in range(k)], dim=1)
                for a, g in zip(capture.activations, capture.gradients)]
        everything = torch.arange(k, device=capture.logits.device)
        return self._finish(self._views(maps, dim=2), capture.logits, everything, capture.size, normalize,
                            len(capture.activations), capture.view_weights)

    @staticmethod
    def _views(maps: list[torch.Tensor], dim: int) -> torch.Tensor:
        """One activation: its map; several (one per view): stacked along ``dim``."""
        return maps[0] if len(maps) == 1 else torch.stack(maps, dim=dim)

    def _raw(self, session: _Session, inputs: Any, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, h, w), or (N, V, h, w) for V activations, from one backward of the summed scores."""
        activations = session.activations
        score = logits.gather(1, targets[:, None]).sum()  # images are independent in eval mode
        gradients = torch.autograd.grad(score, activations)
        return self._views([self.combine(a.detach(), g) for a, g in zip(activations, gradients)], dim=1)

    def _raw_all(self, session: _Session, inputs: Any, logits: torch.Tensor) -> torch.Tensor:
        """(N, K, h, w) for the methods that need no gradients (the others go through ``capture``)."""
        raise NotImplementedError

    def _finish(self, raw: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, size: tuple[int, int],
                normalize: str | None, views: int = 1, view_weights: torch.Tensor | None = None) -> CAMResult:
        maps = upsample(torch.relu(raw), size)
        if views > 1:
            # The views of one fish share one scale, so a view with little evidence stays dim.
            joint = maps.flatten(-3)[..., None, :]
            maps = normalize_maps(joint, normalize).reshape(maps.shape)
        else:
            maps = normalize_maps(maps, normalize)
        return CAMResult(maps=maps.detach(), raw=raw.detach(), logits=logits.detach(), targets=targets.detach(),
                         view_weights=view_weights)


class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weights are the spatially averaged gradients,
    alpha_c = mean_ij dS/dA_cij; map = sum_c alpha_c A_c."""

    name = "gradcam"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018): pixel-weighted positive gradients, with the
    closed-form coefficients a = g^2 / (2 g^2 + sum_ij A g^3) (exponential-score assumption)."""

    name = "gradcam++"

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


class HiResCAM(BaseCAM):
    """HiResCAM (Draelos & Carin 2020): gradients times activations, summed over channels, with no
    spatial averaging, so the map is faithful to what the score actually used."""

    name = "hirescam"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (gradients * activations).sum(1)


class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al. 2021): positive gradients weight each activation pixel; useful at
    earlier, finer layers."""

    name = "layercam"

    @staticmethod
    def combine(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (torch.relu(gradients) * activations).sum(1)


class ScoreCAM(BaseCAM):
    """Score-CAM (Wang et al. 2020): no gradients. Each channel, upsampled and min-max scaled,
    masks the input; the class logits of the masked images, softmaxed over channels, weight the
    channels. Masked images of all the batch's images go through the model ``batch_size`` at a time."""

    name = "scorecam"
    needs_gradients = False
    multi_activation = False

    def __init__(self, model: nn.Module, target_layer: str | nn.Module, batch_size: int = 64,
                 progress: bool | None = None) -> None:
        super().__init__(model, target_layer)
        self.batch_size = batch_size
        # None: a progress bar only for long work (more than SLOW_BATCHES batches of masked images).
        self.progress = progress

    SLOW_BATCHES = 32

    def _channel_scores(self, session: _Session, inputs: torch.Tensor) -> torch.Tensor:
        """(N, C, K): the logits of every class for the input masked by each channel."""
        if isinstance(inputs, (tuple, list)):
            raise ValueError("Score-CAM explains single-image models; use a gradient method for multi-view models")
        activation = session.activations[0].detach()
        n, c = activation.shape[:2]
        # Same mask upsampling as pytorch-grad-cam (corners aligned), so results are comparable.
        masks = F.interpolate(activation, size=inputs.shape[-2:], mode="bilinear", align_corners=True)
        flat = masks.flatten(2)
        low, high = flat.min(-1).values[..., None, None], flat.max(-1).values[..., None, None]
        masks = (masks - low) / (high - low + 1e-8)
        # All (image, channel) pairs in one queue, so that batches stay full across images.
        image_of = torch.arange(n, device=inputs.device).repeat_interleave(c)
        flat = masks.reshape(n * c, 1, *masks.shape[-2:])
        scores = []
        starts = range(0, n * c, self.batch_size)
        show = len(starts) > self.SLOW_BATCHES if self.progress is None else self.progress
        with torch.no_grad():
            for start in tqdm(starts, desc=f"Score-CAM, {n} image(s) x {c} channels", unit="batch", leave=False,
                              disable=not show):
                stop = min(start + self.batch_size, n * c)
                batch = inputs[image_of[start:stop]] * flat[start:stop]
                session.activations.clear()
                scores.append(logits_of(self.model(batch)).float())
        session.activations[:] = [activation]
        return torch.cat(scores).reshape(n, c, -1)

    def _raw(self, session, inputs, logits, targets):
        scores = self._channel_scores(session, inputs)
        weights = torch.softmax(scores.gather(2, targets[:, None, None].expand(-1, scores.shape[1], 1))[..., 0], dim=1)
        return (weights[..., None, None] * session.activations[0].detach()).sum(1)

    def _raw_all(self, session, inputs, logits):
        scores = self._channel_scores(session, inputs)  # (N, C, K): every class from the same masked passes
        weights = torch.softmax(scores, dim=1)
        return torch.einsum("nck,nchw->nkhw", weights, session.activations[0].detach())


class CAM(BaseCAM):
    """The original CAM (Zhou et al. 2016) for a network whose last conv features are globally
    average-pooled into one linear layer: map = sum_c w_{k,c} A_c with w the linear weights."""

    name = "cam"
    needs_gradients = False
    multi_activation = False

    def __init__(self, model: nn.Module, target_layer: str | nn.Module, fc: str | nn.Module | None = None) -> None:
        super().__init__(model, target_layer)
        if fc is None:
            from ..models.factory import head_name

            fc = head_name(model)
        _, self.fc = resolve_layer(model, fc)
        if not isinstance(self.fc, nn.Linear):
            raise ValueError(f"CAM needs a linear head after global average pooling; {fc!r} is a "
                             f"{type(self.fc).__name__}. Use Grad-CAM, which works with any head.")

    def _raw(self, session, inputs, logits, targets):
        weights = self.fc.weight.detach()[targets]  # (N, C)
        return torch.einsum("nc,nchw->nhw", weights, session.activations[0].detach())

    def _raw_all(self, session, inputs, logits):
        return torch.einsum("kc,nchw->nkhw", self.fc.weight.detach(), session.activations[0].detach())


METHODS: dict[str, type[BaseCAM]] = {
    cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM, CAM)
}


def make_cam(method: str, model: nn.Module, target_layer: str | nn.Module, **options: Any) -> BaseCAM:
    """A CAM object by method name: one of ``METHODS`` ("gradcam", "gradcam++", "hirescam",
    "layercam", "scorecam", "cam")."""
    key = method.lower().replace("-", "").replace("_", "").replace("plusplus", "++")
    if key not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(METHODS)}")
    return METHODS[key](model, target_layer, **options)


def target_layers(model: nn.Module) -> Sequence[str]:
    """The model's sensible target layers, input to output (see ``fishcam_utils.models.cam_layers``)."""
    from ..models.factory import cam_layers

    return cam_layers(model)
