"""What every checker shares: running the student's function safely, and saying what is wrong.

A checker runs the student's function on fixed cases, compares the result with the package's own
implementation and, when they differ, with the typical mistakes (each a small function with the
same signature): a match names the mistake in words a student understands. A task still blank
(``raise NotImplementedError``) is "not done yet", never an error, so the notebook keeps running;
the verdict's ``function`` is then the reference solution, for the cells that follow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..numerics import allclose_by_rounding

DONE, WRONG, NOT_DONE = "✅", "❌", "⏳"


@dataclass(repr=False)
class Verdict:
    """The outcome of one check. ``function`` is the student's when it passed, else the reference.
    ``key`` is the checker's name in ``checks.TASKS``; ``convention`` names the other convention a right
    answer followed ("" for the package's own)."""

    task: str
    done: bool
    passed: bool
    message: str
    function: Callable
    key: str = ""
    convention: str = ""

    def __str__(self) -> str:
        icon = DONE if self.passed else WRONG if self.done else NOT_DONE
        return f"{icon} {self.task}: {self.message}"

    __repr__ = __str__

    def _ipython_display_(self) -> None:
        """Nothing more to show in a notebook: the checker has printed the verdict already."""

    def __bool__(self) -> bool:
        return self.passed


class NotDone(Exception):
    """The student's function is still the placeholder."""


class WrongAnswer(Exception):
    """The student's result is wrong; the message says how."""


@dataclass
class Mistake:
    """A typical mistake: a function that makes it (same signature as the task) and what to tell."""

    message: str
    make: Callable[..., Any]


def call(student: Callable, *args: Any, **kwargs: Any) -> Any:
    """The student's result; ``NotDone`` for the placeholder, ``WrongAnswer`` naming any other error."""
    try:
        result = student(*args, **kwargs)
    except NotImplementedError as error:
        raise NotDone() from error
    except Exception as error:  # noqa: BLE001 - whatever the student's code raises is reported, not raised
        raise WrongAnswer(f"your function raised {type(error).__name__}: {error}") from error
    if result is None or result is Ellipsis:
        raise WrongAnswer("your function returned nothing: end it with `return ...` of the result")
    return result


# A correct answer written another way (an einsum for a loop, another summation order, one image at a time)
# differs from the reference by float32 rounding: at most SAFETY * terms * eps32 * scale (fishcam_utils.numerics),
# on any CPU. The checkers' cases are small; the longest is the Grad-CAM maps': the tiny network's reductions
# forward and back (network_terms: 556) and the map's h w + C (28), which min-max scaling counts twice, over a
# span down to 1 / 2.5 of the terms' size: 2 * 584 * 2.5, under 3000. So one count for every case; tests/
# test_numerics.py checks that it still covers the cases. It is 1e-3 of a map: every mistake is far more.
CASE_TERMS = 4096


def same(a: Any, b: Any, terms: int = CASE_TERMS, scale: float | None = None) -> bool:
    """Equal tensors (or tuples of them) up to float32 rounding of ``terms``-long reductions of terms of size
    ``scale`` (default: ``b``'s largest |value|); False for other shapes or types."""
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y, terms, scale) for x, y in zip(a, b))
    try:
        a, b = torch.as_tensor(a), torch.as_tensor(b)
    except (TypeError, ValueError, RuntimeError):
        return False
    if a.shape != b.shape:
        return False
    if a.dtype == torch.bool and b.dtype == torch.bool:
        return bool(torch.equal(a, b))  # (a True/False answer to a question of values is compared by value: wrong)
    return allclose_by_rounding(a.detach().float(), b.detach().float(), terms, scale)


def check_shape(got: Any, want: torch.Tensor, what: str) -> None:
    """``WrongAnswer`` naming both shapes if ``got`` is not a tensor of ``want``'s shape."""
    if not isinstance(got, torch.Tensor):
        raise WrongAnswer(f"{what} should be a tensor, got {type(got).__name__}")
    if got.shape != want.shape:
        raise WrongAnswer(f"{what} has shape {tuple(got.shape)}, but should have shape {tuple(want.shape)}")


def diagnose(got: Any, want: Any, mistakes: Sequence[Mistake], args: Callable[[], tuple], what: str) -> None:
    """Raise ``WrongAnswer`` unless ``got`` equals ``want``: with the message of the first mistake
    whose result ``got`` equals, or with the largest difference."""
    if same(got, want):
        return
    for mistake in mistakes:
        if same(got, mistake.make(*args())):
            raise WrongAnswer(mistake.message)
    difference = (torch.as_tensor(got).float() - torch.as_tensor(want).float()).abs().max()
    raise WrongAnswer(f"{what} differs from the reference by up to {float(difference):.3g}; compare your code with "
                      "the formula above, line by line")


class Accepted(Exception):
    """The student's result is right under another convention than the package's, named by ``convention``;
    the message says where the two part."""

    def __init__(self, convention: str, message: str) -> None:
        super().__init__(message)
        self.convention = convention


# The latest verdict of each checker run in this Python session, for the notebook's last cell (``summary``).
LATEST: dict[str, Verdict] = {}


def run_check(key: str, task: str, student: Callable, reference: Callable, body: Callable[[], None],
              success: str = "correct") -> Verdict:
    """Run ``body`` (which calls the student's function and raises ``WrongAnswer``, ``NotDone`` or
    ``Accepted``), print the verdict, keep it for ``summary`` and return it."""
    try:
        body()
    except NotDone:
        verdict = Verdict(task, False, False, "not done yet. Fill in the cell above and run it, then this one; "
                          "until then the rest of the notebook uses the package's version.", reference, key)
    except WrongAnswer as wrong:
        verdict = Verdict(task, True, False, f"not yet right: {wrong} (the rest of the notebook uses the package's "
                          "version until it is)", reference, key)
    except Accepted as other:
        verdict = Verdict(task, True, True, f"correct, {other}", student, key, other.convention)
    else:
        verdict = Verdict(task, True, True, success, student, key)
    print(verdict)
    LATEST[key] = verdict
    return verdict
