"""Guided Backpropagation and the deconvnet rule (Springenberg et al. 2015), written from scratch.

All three rules take the gradient of one class logit with respect to the input pixels; they differ
only in what a ReLU passes backwards. With ``x`` the ReLU's forward input and ``g`` the gradient
arriving from above:

* ``"backprop"`` (plain gradient): ``g * (x > 0)``, the true derivative;
* ``"deconvnet"`` (Zeiler & Fergus): ``g * (g > 0)``, the forward input is ignored;
* ``"guided"`` (Springenberg et al.): ``g * (x > 0) * (g > 0)``, both masks: only positive evidence
  that actually flowed forward is kept, which gives the sharp, edge-like pictures.

The caller's model is never changed: for the duration of a call every ``nn.ReLU`` module gets a
forward hook. For the guided rule it clamps the gradient arriving at the ReLU's output to its positive
part (the ReLU's own backward adds the ``x > 0`` mask); for deconvnet, which must skip that mask, a
pre-hook and a forward hook route the ReLU's value through ``_RuleFn`` (below). All are removed
afterwards. ReLUs written as ``F.relu`` / ``torch.relu`` inside ``forward`` are not modules,
so they keep the plain gradient (as in captum). Other activation modules (GELU, SiLU...) have no
guided rule either: a network built from them (ConvNeXt) gets its plain gradient back, and a
``GuidedRuleWarning`` says so.

``guided_gradcam`` multiplies guided gradients by Grad-CAM maps, and ``GuidedGradCAM`` does both
passes (ReLU'd Grad-CAM before normalisation, as captum defines it); ``gradient_to_image`` and
``saliency`` turn gradients into pictures.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..models.inspection import check_images, check_logits, eval_mode, frozen_parameters, logits_of
from ..runtime import call_model
from ..settings import SMOOTHGRAD_SIGMA
from .cam import GradCAM, LayerCapture
from .explainer import CAMResult, Explainer, LayerFreeExplainer
from .maps import check_normalize
from .registry import register
from .targets import check_target_count as _check_target_count
from .targets import repeat_targets
from .targets import resolve_score_targets as _resolve_targets

# Activation modules that have no guided rule: their gradient passes unchanged.
_OTHER_ACTIVATIONS = (nn.GELU, nn.SiLU, nn.ELU, nn.LeakyReLU, nn.PReLU, nn.Hardswish, nn.Mish, nn.SELU, nn.CELU)


class GuidedRuleWarning(UserWarning):
    """A guided or deconvnet rule that has few or no ReLU modules to act on."""

RULES = ("guided", "deconvnet", "backprop")


@dataclass
class GuidedResult:
    """What a ``GuidedBackprop`` call returns (all detached, on the inputs' device).

    ``gradients``: same shape as the differentiated input, (N, 3, H, W) (or (N, V, 3, H, W) for
    multi-view inputs), float, signed. ``logits``: (N, K). ``explained``: (N,) long, the classes explained
    (-1 where a score function decided).
    """

    gradients: torch.Tensor
    logits: torch.Tensor
    explained: torch.Tensor  # the classes explained (the call's targets, resolved)


class _RuleFn(torch.autograd.Function):
    """``relu(x)`` in forward; the chosen rule's gradient in backward.

    Why a whole ReLU and not an identity after the module's own ReLU: the module's backward always
    masks by ``x > 0``, and the deconvnet rule must not, so the module's own graph node has to be
    bypassed. The forward hook therefore returns this function applied to (a clone of) the ReLU's
    *input*; the module's output is dropped from the graph (its values are identical).
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, rule: str) -> torch.Tensor:  # type: ignore[override]
        ctx.rule = rule
        # Keep a boolean mask, not x or the output: later in-place ops on the output (``out += ...``,
        # another in-place ReLU) would otherwise invalidate what backward needs.
        ctx.save_for_backward(x > 0)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None]:  # type: ignore[override]
        (forward_mask,) = ctx.saved_tensors
        if ctx.rule == "backprop":
            return grad * forward_mask, None
        if ctx.rule == "deconvnet":
            return grad.clamp(min=0), None
        return grad.clamp(min=0) * forward_mask, None


class _ReluHooks:
    """Pre-hook + forward hook on every ``nn.ReLU`` of a model; remove with ``remove()``.

    The pre-hook clones the ReLU's input before the module runs: for ``nn.ReLU(inplace=True)`` the
    input tensor is overwritten and its autograd history rebased onto the ReLU's node, and the clone
    (no shared storage) keeps the pre-ReLU history and values. The caller's tensor is still modified
    in place as usual. Clones wait on a per-module stack, so a module called several times in one
    forward (torchvision's BasicBlock reuses ``self.relu``) pairs each call with its own input.
    """

    def __init__(self, model: nn.Module, rule: str) -> None:
        self.rule = rule
        self.pending: dict[int, list[torch.Tensor | None]] = {}
        self.handles: list[Any] = []
        try:
            for module in model.modules():
                if not isinstance(module, nn.ReLU) or rule == "backprop":
                    continue  # the plain gradient needs no help
                if rule == "guided":
                    self.handles.append(module.register_forward_hook(self._positive_gradient))
                else:
                    self.handles.append(module.register_forward_pre_hook(self._before))
                    self.handles.append(module.register_forward_hook(self._after))
        except BaseException:
            self.remove()
            raise

    @staticmethod
    def _positive_gradient(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> None:
        # Guided = the ReLU's own backward (the x > 0 mask) applied to the positive part of the
        # gradient arriving at its output. A tensor hook clamps that gradient: no copy of any
        # activation is needed, and it stays attached to this call's output even if the tensor is
        # later changed in place or the module is called again.
        if isinstance(output, torch.Tensor) and output.requires_grad:
            output.register_hook(lambda grad: grad.clamp(min=0))

    def _before(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        # ``relu(input=x)`` passes no positional argument: leave that call alone (plain gradient).
        x = args[0].clone() if args and isinstance(args[0], torch.Tensor) else None
        self.pending.setdefault(id(module), []).append(x)

    def _after(self, module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor | None:
        x = self.pending[id(module)].pop()
        return None if x is None else _RuleFn.apply(x, self.rule)

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.pending.clear()


class GuidedBackprop:
    """Input gradients of class logits under a modified ReLU rule: ``"guided"`` (default),
    ``"deconvnet"`` or ``"backprop"`` (the plain gradient, a vanilla saliency map).

    ``GuidedBackprop(model)(x)`` explains the predicted classes of a batch ``x`` (N, 3, H, W);
    ``targets=3`` or ``targets=[...]`` explains others. Each image's gradient is that of its own
    target logit only (the selected logits are summed; in eval mode images do not interact).

    During a call the model is in eval mode, its parameters do not require grad (no ``.grad`` is
    filled) and its ReLUs are hooked; afterwards, even when the call raises, every hook is gone and
    every module's mode and parameter's ``requires_grad`` is as before.
    """

    def __init__(self, model: nn.Module, rule: str = "guided") -> None:
        if rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.model = model
        self.rule = rule
        if rule != "backprop":
            _warn_without_relus(model, rule)

    def __call__(self, inputs: torch.Tensor | Sequence[Any], targets: Any = None) -> GuidedResult:
        """Gradients (same shape as the image tensor) of ``targets`` (default: predicted classes).

        ``inputs``: a float tensor (N, 3, H, W), or a tuple/list whose first item is the float image
        tensor (multi-view: ``(views (N, V, 3, H, W), present (N, V) bool)``), called as
        ``model(*inputs)``; gradients are taken with respect to that first tensor only.
        ``targets``: None, an int, N ints in [0, K), or score functions of one image's logits (as
        ``BaseCAM``'s; such an image's entry in ``targets`` is -1); anything else raises ``ValueError``.
        """
        multi = isinstance(inputs, (tuple, list))
        check_images(inputs, self.model, image_batch=False)
        images = inputs[0] if multi else inputs
        n = images.shape[0]
        _check_target_count(targets, n)

        hooks: _ReluHooks | None = None
        with eval_mode(self.model), frozen_parameters(self.model):
            try:
                hooks = _ReluHooks(self.model, self.rule)
                # enable_grad: callers often explain inside torch.no_grad(); inference_mode(False) plus
                # a clone turns inference tensors into ordinary ones autograd can use.
                with torch.inference_mode(False), torch.enable_grad():
                    x = images.detach().clone().requires_grad_(True)
                    args = (x, *inputs[1:]) if multi else (x,)
                    logits = logits_of(call_model(self.model, args))
                    check_logits(logits)
                    chosen = _resolve_targets(targets, logits)
                    score = chosen.scores(logits).sum()
                    (grad,) = torch.autograd.grad(score, x, allow_unused=True)
            finally:
                if hooks is not None:
                    hooks.remove()
        if grad is None:  # the logits do not depend on the images at all
            grad = torch.zeros_like(x)
        return GuidedResult(gradients=grad.detach(), logits=logits.detach(), explained=chosen.classes[:, 0].detach())


def guided_gradcam(guided: torch.Tensor, cam: torch.Tensor) -> torch.Tensor:
    """Guided Grad-CAM: guided gradients (N, 3, H, W) times CAM maps (N, H, W), ReLU'd and upsampled
    to the input size but not min-max normalised (``GradCAM(...)(x, normalize=None).maps``; min-max
    would zero the weakest region of a map that is positive everywhere); (N, 1, H, W) is accepted
    too; broadcast over channels.

    Returns (N, 3, H, W), signed like ``guided``. Mismatched shapes raise ``ValueError``.
    """
    if cam.ndim == 4 and cam.shape[1] == 1:
        cam = cam[:, 0]
    if guided.ndim != 4 or cam.ndim != 3 or guided.shape[0] != cam.shape[0] or guided.shape[2:] != cam.shape[1:]:
        raise ValueError(f"guided gradients (N, C, H, W) and CAM maps (N, H, W) must agree; got guided "
                         f"{tuple(guided.shape)} and cam {tuple(cam.shape)}")
    return guided * cam.to(device=guided.device, dtype=guided.dtype)[:, None]


def _check_gradients(g: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(g, torch.Tensor):
        g = torch.as_tensor(np.asarray(g))
    if g.ndim != 4:
        raise ValueError(f"{name} expects gradients (N, C, H, W); got shape {tuple(g.shape)}")
    return g.detach().float()


def gradient_to_image(g: torch.Tensor) -> np.ndarray:
    """Gradients (N, 3, H, W) → displayable float32 images (N, H, W, 3) in [0, 1].

    Per image: standardise (zero mean, unit std over all channels and pixels; a constant gradient
    stays at zero), scale by 0.1 and centre on 0.5 grey, then clip. So zero gradient is grey and
    about three standard deviations either side saturate.
    """
    g = _check_gradients(g, "gradient_to_image")
    if g.shape[1] != 3:
        raise ValueError(f"gradient_to_image expects 3 channels (N, 3, H, W); got shape {tuple(g.shape)}")
    flat = g.reshape(g.shape[0], -1)
    mean = flat.mean(dim=1)
    std = flat.std(dim=1, unbiased=False)
    std = torch.where(std > 1e-12, std, torch.ones_like(std))  # constant image: avoid 0/0
    z = (g - mean[:, None, None, None]) / std[:, None, None, None]
    image = (z * 0.1 + 0.5).clamp(0.0, 1.0)
    return image.permute(0, 2, 3, 1).cpu().numpy().astype(np.float32)


def saliency(g: torch.Tensor) -> torch.Tensor:
    """Saliency map: max over channels of |g|, (N, C, H, W) → (N, H, W), scaled per image to [0, 1]
    by its maximum. An all-zero gradient gives an all-zero map (never NaN)."""
    g = _check_gradients(g, "saliency")
    s = g.abs().amax(dim=1)
    peak = s.reshape(s.shape[0], -1).amax(dim=1)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    return s / peak[:, None, None]


def _warn_without_relus(model: nn.Module, rule: str) -> None:
    relus = sum(isinstance(m, nn.ReLU) for m in model.modules())
    others = sorted({type(m).__name__ for m in model.modules() if isinstance(m, _OTHER_ACTIVATIONS)})
    if relus == 0:
        warnings.warn(f"{type(model).__name__} has no nn.ReLU modules"
                      f"{' (it uses ' + ', '.join(others) + ')' if others else ''}, "
                      f"so the {rule} rule changes nothing: these are plain gradients (rule='backprop'). "
                      f"A guided rule is defined for ReLU only.", GuidedRuleWarning, stacklevel=3)
    elif others:
        warnings.warn(f"the {rule} rule acts at the {relus} nn.ReLU modules of {type(model).__name__}; its "
                      f"{', '.join(others)} modules keep the plain gradient", GuidedRuleWarning, stacklevel=3)


@register
class GuidedGradCAM(Explainer):
    """Guided Grad-CAM (Selvaraju et al. 2017): guided-backprop input gradients times the Grad-CAM
    map at ``layer``, both of the same targets, as ``BaseCAM``'s calls take them.

    The Grad-CAM map enters ReLU'd and upsampled but *not* min-max normalised (captum's
    definition): normalising first would zero the weakest region even where Grad-CAM is positive
    everywhere. ``maps`` are the product's saliency (N, H, W) in [0, 1]; ``pixels`` the signed
    product (N, 3, H, W) for ``gradient_to_image``; ``raw`` Grad-CAM's signed map.
    """

    name, label, family = "guided-gradcam", "guided Grad-CAM", "guided"
    needs_gradients = uses_capture = True
    any_layer = True

    def __init__(self, model: nn.Module, layer, progress: bool | None = None) -> None:
        # ``progress`` is accepted as every registered method's is; both passes here are short.
        self.cam = GradCAM(model, layer)
        self.model, self.layer_name, self.layer_names = model, self.cam.layer_name, self.cam.layer_names
        self.guided = GuidedBackprop(model)

    def __call__(self, inputs, targets: Any = None, normalize: str | None = "minmax",
                 guided: torch.Tensor | None = None) -> CAMResult:
        """As ``BaseCAM.__call__``; ``normalize=None`` leaves the saliency unscaled (max over colour of
        |product|). ``guided``: guided-backprop gradients of these targets already computed (same shape
        as the images), else one guided pass is made."""
        check_normalize(normalize)  # a bad choice fails before any work
        cam = self.cam(inputs, targets, normalize=None)
        if guided is None:  # a second forward, of the same model in eval mode: the same targets
            guided = self.guided(inputs, targets).gradients
        return self._product(cam, guided, normalize)

    def all_classes(self, inputs, normalize: str | None = "minmax") -> CAMResult:
        """Every class's maps (N, K, [V,] H, W), from one capture and one guided backward of K copies per image."""
        return self.from_capture(self.cam.capture(inputs), normalize, inputs)

    def from_capture(self, capture: LayerCapture, normalize: str | None = "minmax", inputs: Any = None) -> CAMResult:
        """Every class's maps from a Grad-CAM ``capture`` and the ``inputs`` it was made of."""
        check_normalize(normalize)
        if inputs is None:
            raise ValueError("guided Grad-CAM needs the inputs as well as the capture: "
                             "from_capture(capture, inputs=...)")
        cam = self.cam.from_capture(capture, normalize=None)  # (N, K, [V,] H, W)
        n, k = cam.logits.shape
        multi = isinstance(inputs, (tuple, list))
        copies = tuple(t.repeat_interleave(k, dim=0) for t in inputs) if multi else inputs.repeat_interleave(k, dim=0)
        guided = self.guided(copies, torch.arange(k, device=cam.logits.device).repeat(n)).gradients
        flat_cam = CAMResult(maps=cam.maps.flatten(0, 1), raw=cam.raw.flatten(0, 1), logits=cam.logits,
                             explained=cam.explained, view_weights=cam.view_weights)
        result = self._product(flat_cam, guided, normalize)
        return CAMResult(maps=result.maps.unflatten(0, (n, k)), raw=cam.raw, logits=cam.logits, explained=cam.explained,
                         view_weights=cam.view_weights, flat=cam.flat, pixels=result.pixels.unflatten(0, (n, k)))

    @staticmethod
    def _product(cam: CAMResult, guided: torch.Tensor, normalize: str | None) -> CAMResult:
        views = guided.ndim == 5  # (N, V, 3, H, W): one product per view
        product = guided_gradcam(guided.flatten(0, 1) if views else guided,
                                 cam.maps.flatten(0, 1) if views else cam.maps)
        maps = saliency(product) if normalize is not None else product.abs().amax(dim=1)
        if views:
            product, maps = product.unflatten(0, guided.shape[:2]), maps.unflatten(0, guided.shape[:2])
        return CAMResult(maps=maps, raw=cam.raw, logits=cam.logits, explained=cam.explained,
                         view_weights=cam.view_weights, flat=cam.flat, pixels=product)


class _InputGradientMap(LayerFreeExplainer):
    """The saliency of input gradients under one ReLU rule: max over colour of |gradient|, scaled per
    image to [0, 1] by its peak (``normalize=None``: unscaled). No target layer.

    SmoothGrad (Smilkov et al. 2017): with ``samples`` > 0, |gradient| is averaged over that many copies of each
    image with Gaussian noise of std ``sigma`` (in the images' units; Smilkov et al. suggest 10-20 % of their
    range) drawn from a generator seeded with ``seed``, the copies in backward passes of up to
    ``SMOOTHGRAD_COPIES_PER_PASS``, every copy explaining what its clean image was asked for (a class or a score
    function; the predicted class by default). ``samples=0``: the plain map."""

    family = "input-gradient"
    needs_gradients = True
    rule = "guided"
    smoothings = frozenset({"smoothgrad"})

    def __init__(self, model: nn.Module, layer: Any = None, progress: bool | None = None, samples: int = 0,
                 sigma: float = SMOOTHGRAD_SIGMA, seed: int = 0) -> None:
        super().__init__(model, layer, progress)
        if not isinstance(samples, int) or isinstance(samples, bool) or samples < 0:
            raise ValueError(f"samples must be a whole number >= 0 (0: no SmoothGrad), got {samples!r}")
        if not sigma >= 0:
            raise ValueError(f"sigma must be a standard deviation >= 0, got {sigma!r}")
        self.samples, self.sigma, self.seed = samples, float(sigma), seed

    def explain(self, inputs: Any, targets: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if not self.samples:
            result = GuidedBackprop(self.model, self.rule)(inputs, targets)
            return result.gradients.abs().amax(dim=-3), result.logits, result.explained
        if isinstance(inputs, (tuple, list)):
            raise ValueError(f"SmoothGrad adds noise to a batch of single images (N, C, H, W), and these inputs are a "
                             f"{type(inputs).__name__}; use samples=0 for them")
        with eval_mode(self.model), torch.no_grad():  # the classes of the clean images, for all their copies
            logits = logits_of(call_model(self.model, inputs)).float()
        explained = _resolve_targets(targets, logits).classes[:, 0]
        n, s = inputs.shape[0], self.samples
        # Every copy explains what its clean image was asked for (the predicted class by default).
        per_copy = repeat_targets(explained if targets is None else targets, s, interleave=True)
        sliced = isinstance(per_copy, list) or (isinstance(per_copy, torch.Tensor) and per_copy.ndim == 1)
        generator = torch.Generator(device=inputs.device).manual_seed(self.seed)
        # Per image and colour, the sum of its copies' |gradient|, in float32 at least (half would round the sum).
        total = torch.zeros_like(inputs, dtype=torch.promote_types(inputs.dtype, torch.float32))
        for start in range(0, n * s, SMOOTHGRAD_COPIES_PER_PASS):  # passes of bounded memory
            image_of = torch.arange(start, min(start + SMOOTHGRAD_COPIES_PER_PASS, n * s), device=inputs.device) // s
            chunk = inputs[image_of]
            noise = torch.normal(0.0, torch.full_like(chunk, self.sigma), generator=generator)
            chunk_targets = per_copy[start:start + len(chunk)] if sliced else per_copy
            gradients = GuidedBackprop(self.model, self.rule)(chunk + noise, chunk_targets).gradients
            total.index_add_(0, image_of, gradients.abs().to(total.dtype))
        return (total / s).amax(dim=-3), logits, explained

    def __call__(self, inputs: Any, targets: Any = None, normalize: str | None = "minmax") -> CAMResult:
        check_normalize(normalize)
        result = super().__call__(inputs, targets, normalize=None)
        if normalize is not None:  # by the peak, as ``saliency``: zero gradient stays zero
            result.maps = saliency(result.maps[:, None])
        return result


# SmoothGrad's copies per backward pass: 64 ResNet-18 copies at 224 px keep a pass to a few GB.
SMOOTHGRAD_COPIES_PER_PASS = 64


@register
class GuidedBackpropMap(_InputGradientMap):
    """Guided backpropagation's saliency (Springenberg et al. 2015), the ``"guided"`` rule."""

    name, label, rule = "guided-backprop", "guided backprop", "guided"


@register
class GradientMap(_InputGradientMap):
    """The plain gradient's saliency (Simonyan et al. 2014), the ``"backprop"`` rule."""

    name, label, rule = "gradient", "gradient", "backprop"
