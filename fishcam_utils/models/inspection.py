"""What every model-inspecting call shares: reading logits (and a multi-view model's view weights)
from a model's output, the model's device, and borrowing
the model in eval mode with frozen parameters, given back exactly as it was, even on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from ..errors import ArgumentError


def logits_of(output: Any) -> torch.Tensor:
    """The (N, K) logits of a model's output: the output itself, or the first item of a tuple
    (multi-view models return ``(logits, view_weights)``). Anything else raises ``ValueError``."""
    logits = output[0] if isinstance(output, (tuple, list)) and len(output) else output
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return (batch, classes) logits, or a tuple whose first item they are; "
                         f"got {shape}")
    return logits


def view_weights_of(output: Any) -> torch.Tensor | None:
    """The (N, V) view weights of a multi-view model's output (its ``weights`` field, or the second
    item of a tuple), or None when the output has none (a single-view model)."""
    weights = getattr(output, "weights", None)
    if weights is None and isinstance(output, (tuple, list)) and len(output) > 1:
        weights = output[1]
    if isinstance(weights, torch.Tensor) and weights.ndim == 2 and weights.shape[0] == logits_of(output).shape[0]:
        return weights
    return None


def model_device(model: nn.Module) -> torch.device:
    """Where the model's parameters (or buffers) are; CPU for a model with neither."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block; afterwards exactly the modules that were training
    train again. (Not ``model.train(was_training)``: that would wake a frozen BatchNorm kept in
    eval mode inside a training model.)"""
    training = [m for m in model.modules() if m.training]
    for m in training:
        m.training = False
    try:
        yield model
    finally:
        for m in training:
            m.training = True


@contextmanager
def frozen_parameters(model: nn.Module) -> Iterator[nn.Module]:
    """No parameter of ``model`` requires grad during the block, so autograd records nothing for
    them and fills no ``.grad``; afterwards the trainable ones are trainable again."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in trainable:
            p.requires_grad_(True)


def check_images(inputs: Any, model: nn.Module | None = None, name: str = "inputs", image_batch: bool = True) -> None:
    """Raise an error naming ``name`` and the fix unless ``inputs`` is a batch the model can explain:
    a float tensor (N, C, H, W) (or a tuple whose first item is one, (N, V, C, H, W) for the views
    of multi-view fish) of finite values, with the channel count of ``model``'s first convolution
    and on its device. ``image_batch=False`` takes any batch (N, ...) of at least two dimensions (guided
    backpropagation works on any network, an MLP's (N, features) too)."""
    images = inputs[0] if isinstance(inputs, (tuple, list)) and len(inputs) else inputs
    if not isinstance(images, torch.Tensor):
        raise ArgumentError(f"{name} must be a float image tensor (N, 3, H, W), got {type(images).__name__}; for one "
                        f"image of a dataset use dataset[i][0][None], for several torch.stack([...])")
    if not images.is_floating_point():
        raise ArgumentError(f"{name} must hold floats (normalised images, as the course's datasets give them), got "
                        f"{images.dtype}; turn a picture into one with eval_transform(size)(picture)")
    if images.ndim < (4 if image_batch else 2):
        raise ArgumentError(f"{name} must be a batch (N, C, H, W), got shape {tuple(images.shape)}; for one image, "
                         f"add the batch dimension: image[None]")
    if images.shape[0] == 0:
        raise ArgumentError(f"{name} is an empty batch (shape {tuple(images.shape)}): pass at least one image")
    first = (next((m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))), None)
             if model is not None else None)
    conv = first if isinstance(first, nn.Conv2d) else None
    if conv is not None and images.ndim < 4:
        raise ArgumentError(f"{name} must be a batch of images (N, C, H, W) for this convolutional model, got shape "
                            f"{tuple(images.shape)}; for one image, add the batch dimension: image[None]")
    if conv is not None and images.shape[-3] != conv.in_channels:
        raise ArgumentError(f"{name} has {images.shape[-3]} channels (shape {tuple(images.shape)}) but the model's "
                            f"first convolution takes {conv.in_channels}; give images as (N, {conv.in_channels}, H, W)"
                            + (" (a grey picture: repeat it 3 times, image.expand(-1, 3, -1, -1))"
                               if images.shape[-3] == 1 else ""))
    if first is not None and images.dtype != first.weight.dtype and not torch.is_autocast_enabled():
        raise ArgumentError(f"{name} holds {images.dtype} but the model's weights are {first.weight.dtype}; convert "
                            f"the images: {name}.to({first.weight.dtype})")
    if model is not None and not isinstance(model, nn.DataParallel) and images.device != model_device(model):
        raise ArgumentError(f"{name} is on {images.device} but the model is on {model_device(model)}; move them to one "
                         f"device: {name}.to({str(model_device(model))!r})")
    check_finite(images, name)


def check_finite(inputs: Any, name: str = "inputs", first: int = 0) -> None:
    """``ArgumentError`` naming the samples (numbered from ``first``) of a batch tensor (or of the first
    tensor of a tuple) that hold NaN or inf values: nothing computed from them would mean anything."""
    images = inputs[0] if isinstance(inputs, (tuple, list)) and len(inputs) else inputs
    if not isinstance(images, torch.Tensor) or not images.is_floating_point() or images.ndim == 0:
        return
    if bool(torch.isfinite(images).all()):
        return  # the usual case: one pass, no copy
    broken = (~torch.isfinite(images.detach().reshape(len(images), -1))).any(1)
    if broken.any():
        where = [int(i) + first for i in broken.nonzero().flatten().tolist()[:20]]
        raise ArgumentError(f"{name}: image(s) {where} hold NaN or inf values, so nothing computed from them "
                            f"would mean anything; check the image files and the transform")


def check_logits(logits: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the images whose logits are NaN or inf (a model whose weights diverged)."""
    broken = (~torch.isfinite(logits.detach())).any(1)
    if broken.any():
        raise ArgumentError(f"the model's outputs for image(s) {broken.nonzero().flatten().tolist()[:20]} "
                            f"are NaN or inf: its weights are broken (a training that diverged?); "
                            f"load a good checkpoint")


def kind_of(value: Any) -> str:
    """A value's type for a message, with the text of a string or path (which is what the user passed)."""
    text = isinstance(value, (str, bytes)) or hasattr(value, "__fspath__")
    return f"{type(value).__name__} {str(value)[:60]!r}" if text else type(value).__name__


def check_model(model: Any, name: str = "model") -> nn.Module:
    """``model`` itself if it is a torch module; else an ``ArgumentError`` naming ``name`` and how to get one."""
    if not isinstance(model, nn.Module):
        raise ArgumentError(f"{name} must be a torch nn.Module, got {kind_of(model)}; build one with "
                            f"build_model(...), or load a trained one with model, checkpoint = load_checkpoint(path)")
    return model
