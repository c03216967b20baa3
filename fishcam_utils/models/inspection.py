"""What every model-inspecting call shares: reading logits (and a multi-view model's view weights)
from a model's output, the model's device, and borrowing
the model in eval mode with frozen parameters, given back exactly as it was, even on error."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


def logits_of(output: Any) -> torch.Tensor:
    """The (N, K) logits of a model's output: the output itself, or the first item of a tuple
    (multi-view models return ``(logits, view_weights)``). Anything else raises ``ValueError``."""
    logits = output[0] if isinstance(output, (tuple, list)) and len(output) else output
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"the model must return (batch, classes) logits, or a tuple whose first item they are; got {shape}")
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
