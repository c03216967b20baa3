"""Checker for notebook 07: the guided ReLU backward rule."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..explain.guided import _RuleFn
from .core import Mistake, Verdict, call, check_shape, diagnose, run_check


def _case() -> tuple[torch.Tensor, torch.Tensor]:
    """Pre-activations f (zeros among them: a ReLU at exactly 0 is closed) and signals from above R."""
    f = torch.tensor([[-1.0, 2.0, 3.0, -0.5, 1.0, 0.0, 0.7], [0.2, -2.0, 0.0, 1.5, -0.1, 4.0, 0.3]])
    # Among them a unit closed in both ways (f < 0 and R < 0): f * R > 0 there, yet the rule drops it.
    signal = torch.tensor([[0.5, -1.0, 2.0, 3.0, -0.2, 1.0, 0.0], [-0.4, -0.6, 2.5, -1.5, 1.0, 0.9, -3.0]])
    return f, signal


def reference_guided_relu(f: torch.Tensor, signal: torch.Tensor) -> torch.Tensor:
    """The package's guided rule (the backward of its guided ReLU) for pre-activations ``f`` and signal ``signal``."""
    f = f.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_RuleFn.apply(f, "guided"), f, grad_outputs=signal)
    return grad


def guided_relu(student: Callable) -> Verdict:
    """Check ``student(f, R) -> R^l``: the guided backward rule of one ReLU, (f > 0) * (R > 0) * R."""
    mistakes = [
        Mistake("that is the ordinary backward rule (backprop): guided backprop also drops the negative signals, "
                "(R > 0)", lambda f, r: r * (f > 0)),
        Mistake("that is the deconvnet rule: guided backprop also keeps only the units that were open in the forward "
                "pass, (f > 0)", lambda f, r: r.clamp(min=0)),
        Mistake("you multiplied by the value of ReLU(f): the rule uses the 0/1 mask (f > 0), not the activation",
                lambda f, r: r.clamp(min=0) * f.clamp(min=0)),
        Mistake("a unit with f = 0 exactly is closed (ReLU's derivative there is taken as 0): use f > 0, not f >= 0",
                lambda f, r: r.clamp(min=0) * (f >= 0)),
        Mistake("you returned the signal unchanged: apply both masks to it", lambda f, r: r),
        Mistake("you returned the mask itself: multiply the mask (f > 0) * (R > 0) by R",
                lambda f, r: ((f > 0) & (r > 0)).float()),
        Mistake("f * R > 0 also keeps units where both are negative: test f > 0 and R > 0 separately",
                lambda f, r: r * (f * r > 0)),
    ]

    def body() -> None:
        want = reference_guided_relu(*_case())
        got = call(student, *_case())
        check_shape(got, want, "R^l")
        diagnose(got, want, mistakes, _case, "R^l")

    return run_check("the guided ReLU rule", student, reference_guided_relu, body,
                     "correct: the same as the package's guided rule")
