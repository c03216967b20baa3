"""``TrainConfig``: every option of ``fit``, with its default, its range and one line of help.

The ``fishcam train`` flags are made from these fields (``lr`` → ``--lr``), so the command line and
``fit`` share one set of defaults and one check of each value. No torch here: ``fishcam --help``
reads this module without waiting for it.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field, fields, replace
from typing import Any

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "onecycle", "plateau")
MONITORS = ("val_acc", "val_loss")


def _option(default: Any, help: str, *, choices: tuple | None = None, low: float | None = None,
            above: float | None = None, below: float | None = None, flag: str | None = "",
            or_numbers: bool = False) -> Any:
    """A field with what the command line and ``validate`` need: values at least ``low``, more
    than ``above``, less than ``below``, or one of ``choices`` (``or_numbers``: or, in Python, a
    sequence of numbers); ``flag=None`` keeps it off the command line, ``flag="--x"`` names its
    flag (else ``--`` + the name with dashes)."""
    return field(default=default, metadata={"help": help, "choices": choices, "low": low, "above": above,
                                            "below": below, "flag": flag, "or_numbers": or_numbers})


@dataclass
class TrainConfig:
    """Every option of ``fit``. Pass a few as keywords (``fit(..., lr=3e-4)``) or a whole config."""

    epochs: int = _option(20, "passes over the training set", low=1)
    batch_size: int = _option(64, "images per step (per process under torchrun)", low=1)
    optimizer: str = _option("adamw", "optimiser", choices=OPTIMIZERS)
    lr: float = _option(3e-3, "learning rate (of the head, when fine-tuning)", above=0)
    weight_decay: float = _option(1e-4, "weight decay, not on biases and norms: decoupled from "
                                  "the gradient with adamw (AdamW), an L2 term added to it with adam and sgd", low=0)
    momentum: float = _option(0.9, "SGD momentum", low=0, below=1)
    schedule: str = _option("onecycle", "learning-rate schedule (cosine and onecycle step every batch, plateau "
                            "every epoch)", choices=SCHEDULES)
    label_smoothing: float = _option(0.0, "share of the target spread over all classes", low=0, below=1)
    class_weights: str | list[float] | None = _option(None, "weight the loss by inverse class frequency "
                                                      "(in Python also a list, one weight per class)",
                                                      choices=("balanced",), or_numbers=True)
    grad_clip: float | None = _option(None, "clip the gradient norm to this", above=0)
    freeze_epochs: int = _option(0, "train only the head for this many epochs first", low=0)
    backbone_lr_scale: float = _option(1.0, "backbone learning rate = lr x this after unfreezing", low=0)
    patience: int | None = _option(None, "stop after this many epochs without improvement", low=1)
    monitor: str = _option("val_acc", "what 'best' means", choices=MONITORS)
    min_delta: float = _option(0.0, "the least change of the monitored value that counts as improvement", low=0)
    restore_best: bool = _option(True, "end with the best epoch's weights (with validation data)", flag=None)
    seed: int = _option(0, "seed of the initial weights, shuffling and augmentation")
    deterministic: bool = _option(False, "deterministic algorithms (identical reruns)")
    amp: bool = _option(True, "mixed precision, used on CUDA only", flag=None)
    num_workers: int = _option(0, "data-loading processes", low=0, flag="--workers")
    device: str | None = _option(None, "cpu, cuda, cuda:N or mps (None: CUDA, then MPS, then CPU)", flag=None)
    tensorboard: bool = _option(False, "log to <run-dir>/tensorboard (needs tensorboard)")
    progress: bool = _option(True, "progress bars", flag=None)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option out of its range."""
        for spec in fields(self):
            problem = out_of_range(spec, getattr(self, spec.name))
            if problem:
                raise ValueError(f"{spec.name} must be {problem}, got {getattr(self, spec.name)!r}")


def out_of_range(spec, value: Any) -> str | None:
    """What ``value`` of the field ``spec`` should be, or None when it is fine; None is always fine
    for options whose default is None."""
    meta = spec.metadata
    if value is None and spec.default is None:
        return None
    kind = _wrong_kind(spec, value)
    if kind:
        return kind
    if meta.get("choices") is not None:
        if meta.get("or_numbers") and not isinstance(value, str):
            return None  # a list, array or tensor of numbers: class_weights_for reads it
        return None if value in meta["choices"] else f"one of {meta['choices']}" + (
            " or a sequence of numbers" if meta.get("or_numbers") else "")
    bounds = [(meta.get("low"), lambda v, b: v >= b, ">= {}"), (meta.get("above"), lambda v, b: v > b, "> {}"),
              (meta.get("below"), lambda v, b: v < b, "< {}")]
    wanted = [text.format(bound) for bound, ok, text in bounds if bound is not None and not ok(value, bound)]
    return " and ".join(wanted) or None


def _wrong_kind(spec, value: Any) -> str | None:
    """What ``value`` should be when it is not even of the field's kind (a string for a number, say)."""
    meta, default = spec.metadata, spec.default
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "True or False"
    if meta.get("choices") is not None:
        return None
    numeric = isinstance(default, (int, float)) or any(meta.get(k) is not None for k in ("low", "above", "below"))
    if not numeric:
        return None
    whole = str(spec.type).split(" |")[0] == "int"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return "a whole number" if whole else "a number"
    if whole and not isinstance(value, numbers.Integral):
        return "a whole number"
    return None


def make_config(config: TrainConfig | None = None, **options: Any) -> TrainConfig:
    """``config`` (or the defaults) with ``options`` replaced; unknown names are a clear error."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown training option(s) {unknown}; the options are: {', '.join(sorted(known))}")
    config = replace(config or TrainConfig(), **options)
    config.validate()
    return config


def command_line_options() -> list:
    """The fields ``fishcam train`` offers as flags, in order."""
    return [spec for spec in fields(TrainConfig) if spec.metadata["flag"] is not None]


def flag_of(spec) -> str:
    """``--lr`` for ``lr``; ``--workers`` for ``num_workers``."""
    return spec.metadata["flag"] or "--" + spec.name.replace("_", "-")
