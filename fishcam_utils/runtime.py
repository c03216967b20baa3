"""Where a model runs and how it is called: the plumbing every floor above shares.

* ``pick_device``: CUDA, Apple MPS or CPU (or the one asked for, checked); ``move_to`` moves a batch
  (nested tuples, lists, dicts) there; ``autocast``: float16 on CUDA when asked, a no-op elsewhere;
* ``unwrap``: the model inside DataParallel, DistributedDataParallel or ``torch.compile``;
* ``call_model``: one batch through a model, whether its inputs are one tensor or a tuple (a
  multi-view model takes ``(views, present)``): written once, for training, prediction and every
  explainer.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch
from torch import nn


def pick_device(preferred: str | torch.device | None = None) -> torch.device:
    """``preferred`` if given (e.g. ``"cpu"``, ``"cuda:1"``); else CUDA, then MPS, then CPU.

    Under ``torchrun`` with CUDA, each process takes the GPU of its ``LOCAL_RANK``.
    """
    if preferred is not None:
        try:
            device = torch.device(preferred)
        except (RuntimeError, TypeError):
            raise ValueError(f"device {preferred!r} is not a device; use 'cpu', 'cuda', 'cuda:N' or 'mps', "
                             "or leave it unset for the best available") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {preferred!r} asked for, but CUDA is not available here; use 'cpu' or "
                             "leave device unset")
        if device.type == "mps" and not mps_available():
            raise ValueError(f"device {preferred!r} asked for, but Apple MPS is not available here; use 'cpu' or "
                             "leave device unset")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def mps_available() -> bool:
    """Whether this torch has Apple's MPS backend and a device for it."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def move_to(batch: Any, device: torch.device) -> Any:
    """Tensors in ``batch`` (nested tuples, lists, dicts) moved to ``device``; the rest as is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(b, device) for b in batch)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    return batch


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """Mixed precision (float16) on CUDA when ``enabled``; a no-op elsewhere, where it would
    be slower (CPU) or is not supported for every layer (MPS)."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside DataParallel / DistributedDataParallel (or ``torch.compile``), else itself."""
    while True:
        if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
            model = model.module
        elif hasattr(model, "_orig_mod"):
            model = model._orig_mod
        else:
            return model


def call_model(model: nn.Module, inputs: Any) -> Any:
    """``model``'s output for one batch: ``model(*inputs)`` for a tuple or list (a multi-view model's
    ``(views, present)``), else ``model(inputs)``. The output as the model gives it (a tensor, or a
    tuple whose first item is the logits)."""
    return model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)
