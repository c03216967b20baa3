"""The hook session of a CAM call, and finding the layer it hooks.

``_Session`` is everything a call changes on the model (eval mode, frozen parameters, the forward
hook on the target layers), undone on exit whatever happens. ``resolve_layer`` turns a dotted name or a
module into the layer; ``all_class_gradients`` takes every class's gradient in one batched backward.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...models.factory import cam_layers
from ...models.inspection import eval_mode, frozen_parameters
from ...runtime import unwrap

# What PyTorch says when a backward op cannot run batched (``is_grads_batched`` vmaps the backward):
# "Batching rule not implemented for aten::...", "vmap: ... is not supported", "...batched...".
_NO_BATCHING_RULE = ("batching rule", "vmap", "batched")


def _lacks_batching_rule(error: RuntimeError) -> bool:
    text = str(error).lower()
    return any(marker in text for marker in _NO_BATCHING_RULE)


def all_class_gradients(logits: torch.Tensor, activations: list[torch.Tensor]) -> list[torch.Tensor]:
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
    inner = unwrap(model)
    if isinstance(layer, str) and hasattr(inner, "cam_target") and layer not in dict(model.named_modules()):
        return inner.cam_target(layer)
    return layer


def _suggest(model: nn.Module, _: Any) -> str:
    try:
        return ", ".join(map(repr, cam_layers(model)))
    except ValueError:
        convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
        return ", ".join(map(repr, convs[-3:])) or "(none found)"


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

