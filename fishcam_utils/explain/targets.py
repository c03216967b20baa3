"""Which classes an explanation is for: the same rules for every method.

``None`` means the predicted class of each image; one int (Python or NumPy) means that class for
every image; a list or 1-D integer tensor gives one class per image. Booleans and floats are
refused (a float would otherwise be silently truncated), as are classes outside ``[0, K - 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def check_target_count(targets: Any, n: int) -> None:
    """Wrong-length targets fail before the (possibly costly) forward pass."""
    if targets is None or isinstance(targets, (bool, int, np.integer)):
        return  # a single value: checked against the class count after the forward pass
    if isinstance(targets, torch.Tensor) and targets.ndim == 0:
        return
    try:
        count = targets.numel() if isinstance(targets, torch.Tensor) else len(targets)
    except TypeError:
        raise ValueError(f"targets must be None, one int, or {n} ints (one per image); "
                         f"got {type(targets).__name__}") from None
    if (isinstance(targets, torch.Tensor) and targets.ndim != 1) or count != n:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else count
        raise ValueError(f"targets must be None, one int, or a 1-D list/tensor of {n} ints (one per image); "
                         f"got {shape}")


def resolve_targets(targets: Any, logits: torch.Tensor) -> torch.Tensor:
    """(N,) long: the predicted classes for None, one int repeated, or one int per image."""
    n, k = logits.shape
    if targets is None:
        return logits.argmax(dim=1)
    if isinstance(targets, bool) or (isinstance(targets, torch.Tensor) and targets.dtype == torch.bool):
        raise ValueError(f"targets must be class indices in [0, {k - 1}], not booleans")
    if isinstance(targets, (int, np.integer)):
        targets = [int(targets)] * n
    if isinstance(targets, torch.Tensor):
        if targets.is_floating_point() or targets.is_complex():
            raise ValueError(f"targets must be integer class indices in [0, {k - 1}]; got a {targets.dtype} tensor")
        t = targets.detach().to(logits.device, torch.long).reshape(-1)
    else:
        values = list(targets)
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
            raise ValueError(f"targets must be integer class indices in [0, {k - 1}]; got {values!r}")
        t = torch.tensor([int(v) for v in values], dtype=torch.long, device=logits.device)
    if t.numel() == 1 and n != 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ValueError(f"targets must be None, one int, or {n} ints (one per image); got {t.numel()}")
    bad = (t < 0) | (t >= k)
    if bool(bad.any()):
        raise ValueError(f"targets must be class indices in [0, {k - 1}] (the model has {k} classes); "
                         f"got {t[bad].tolist()}")
    return t
