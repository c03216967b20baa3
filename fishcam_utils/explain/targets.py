"""Which classes an explanation is for: the same rules for every method.

``None`` means the predicted class of each image; one int (Python or NumPy) means that class for
every image; a list or 1-D integer tensor gives one class per image. Booleans and floats are
refused (a float would otherwise be silently truncated), as are classes outside ``[0, K - 1]``.
The CAM methods also take a callable on one image's logits (K,) that returns a score (say the
softmax probability of a class, or a difference of two logits), for every image or per image in a
list mixed with class indices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def check_target_count(targets: Any, n: int) -> None:
    """Wrong-length targets fail before the (possibly costly) forward pass."""
    if targets is None or isinstance(targets, (bool, int, np.integer)) or (callable(targets)
                                                                           and not isinstance(targets, torch.Tensor)):
        return  # a single value: checked against the class count after the forward pass
    if isinstance(targets, torch.Tensor) and targets.ndim == 0:
        return
    if isinstance(targets, str):
        raise ValueError(f"targets are class indices (ints) or score functions, not a name; for the class "
                         f"{targets!r} pass its index, e.g. classes.index({targets!r})")
    try:
        count = targets.numel() if isinstance(targets, torch.Tensor) else len(targets)
    except TypeError:
        raise ValueError(f"targets must be None, one int, or {n} ints (one per image); "
                         f"got {type(targets).__name__}") from None
    if (isinstance(targets, torch.Tensor) and targets.ndim != 1) or count != n:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else count
        raise ValueError(f"targets must be None, one int, or a 1-D list/tensor of {n} ints (one per image); "
                         f"got {shape}")


def repeat_targets(targets: Any, times: int, interleave: bool = False) -> Any:
    """The targets of ``times`` copies of a batch: one per image (a 1-D tensor, a NumPy array, a list) repeated,
    the whole batch ``times`` over (``interleave=False``, as ``torch.cat([batch] * times)``) or each image's
    copies side by side (``interleave=True``, as ``batch.repeat_interleave(times, 0)``); None, one class or one
    score function stays as it is (it already holds for every copy)."""
    if isinstance(targets, np.ndarray):
        targets = torch.as_tensor(targets)
    if isinstance(targets, torch.Tensor) and targets.ndim == 1:
        return targets.repeat_interleave(times) if interleave else targets.repeat(times)
    if isinstance(targets, (list, tuple)):
        return [t for t in targets for _ in range(times)] if interleave else list(targets) * times
    return targets


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


ScoreFunction = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Targets:
    """What each of N images is explained for, as J columns (J = 1 for a call, K for all classes).

    ``classes`` (N, J) long: the class of each column, -1 where a function decides; ``functions``:
    None, or one entry per image (J = 1), a callable on that image's logits (K,) returning a scalar
    score (like pytorch-grad-cam's target objects), or None for a class index.
    """

    classes: torch.Tensor
    functions: list[ScoreFunction | None] | None = None

    def scores(self, logits: torch.Tensor, image_of: torch.Tensor | None = None) -> torch.Tensor:
        """(M, J) scores of M rows of logits (M, K); row m belongs to image ``image_of[m]``
        (default: row m is image m)."""
        if image_of is None:
            image_of = torch.arange(logits.shape[0], device=logits.device)
        columns = self.classes.to(logits.device)[image_of]
        if self.functions is None:
            return logits.gather(1, columns)
        rows = []
        for m, i in enumerate(image_of.tolist()):
            function = self.functions[i]
            rows.append(logits[m, columns[m]] if function is None else _score_of(function, logits[m], i))
        return torch.stack(rows)

    @property
    def uses_functions(self) -> bool:
        return self.functions is not None


def _score_of(function: ScoreFunction, logits: torch.Tensor, image: int) -> torch.Tensor:
    value = function(logits)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        what = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"the target function of image {image} must return one score (a tensor with one "
                         f"element) from that image's logits (K,); it returned {what}")
    return value.reshape(1).to(logits.dtype)


def resolve_score_targets(targets: Any, logits: torch.Tensor) -> Targets:
    """``Targets`` (J = 1) for None, class indices (as ``resolve_targets``), one callable for every
    image, or a list with one int or callable per image."""
    n = logits.shape[0]
    if callable(targets) and not isinstance(targets, torch.Tensor):
        targets = [targets] * n
    if isinstance(targets, (list, tuple)) and any(callable(t) for t in targets):
        if len(targets) != n:
            raise ValueError(f"targets must give one class or function per image ({n}); got {len(targets)}")
        functions = [t if callable(t) else None for t in targets]
        indices = [0 if callable(t) else t for t in targets]
        classes = resolve_targets(indices, logits.detach())
        classes = torch.where(torch.tensor([f is not None for f in functions], device=classes.device), -1, classes)
        return Targets(classes[:, None], functions)
    return Targets(resolve_targets(targets, logits.detach())[:, None])


def all_class_targets(logits: torch.Tensor) -> Targets:
    """``Targets`` with J = K: every class for every image."""
    n, k = logits.shape
    return Targets(torch.arange(k, device=logits.device).expand(n, k))
