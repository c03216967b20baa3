"""Early stopping on a validation metric, with state that survives a resume."""

from __future__ import annotations

import math
from typing import Any


class EarlyStopping:
    """Tracks ``monitor`` (e.g. ``"val_acc"``, mode ``"max"``; ``"val_loss"``, mode ``"min"``).

    ``step(value)`` returns True when the value beats the best by more than ``min_delta``;
    ``should_stop`` turns True after ``patience`` epochs without improvement (never when
    ``patience`` is None). A NaN value never counts as an improvement.
    """

    def __init__(self, monitor: str = "val_acc", mode: str | None = None, patience: int | None = 5,
                 min_delta: float = 0.0) -> None:
        mode = mode or ("min" if "loss" in monitor else "max")
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be >= 1 or None, got {patience}")
        self.monitor, self.mode, self.patience, self.min_delta = monitor, mode, patience, abs(min_delta)
        self.best: float = math.inf if mode == "min" else -math.inf
        self.best_epoch: int = 0
        self.bad_epochs: int = 0

    def improved(self, value: float) -> bool:
        if value is None or math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def step(self, value: float, epoch: int) -> bool:
        """Record epoch ``epoch``'s value; True if it is the new best."""
        if self.improved(value):
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = (float(state["best"]), int(state["best_epoch"]),
                                                       int(state["bad_epochs"]))
