"""Checker for notebook 01: the leak simulation, photos split at random and fish kept whole."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ..data.splits import leaked_groups
from .core import Verdict, WrongAnswer, call, run_check

SHARES = (0.7, 0.15, 0.15)
SIDES = 6  # a departure this many standard errors from the expected leak is never chance (p < 1e-8)


PHOTOS = (1, 1, 2, 4)  # photos per fish, in turn: the mistakes' expected leaks then lie 4 tolerances apart or more


def _case() -> list[str]:
    """8000 fish with 1, 1, 2 and 4 photos in turn, their photos in a shuffled order."""
    ids = [f"fish{f:05d}" for f in range(8000) for _ in range(PHOTOS[f % len(PHOTOS)])]
    order = np.random.default_rng(51).permutation(len(ids))
    return [ids[i] for i in order]


def _counts(fish_ids: Sequence[str]) -> np.ndarray:
    return np.unique(np.asarray(fish_ids), return_counts=True)[1]


def expected_leak(counts: np.ndarray, shares: Sequence[float] = SHARES, per: str = "fish",
                  singles: bool = True) -> tuple[float, float]:
    """The expected share of fish (``per="photo"``: of photos) whose photos land in more than one split
    when each photo draws its split alone, and its standard error: a fish of k photos stays whole with
    probability sum_s p_s^k."""
    counts = counts if singles else counts[counts > 1]
    leaks = 1 - sum(p ** counts.astype(float) for p in shares)
    weights = counts.astype(float) if per == "photo" else np.ones(len(counts))
    mean = float((weights * leaks).sum() / weights.sum())
    error = math.sqrt(float((weights ** 2 * leaks * (1 - leaks)).sum())) / weights.sum()
    return mean, error


def reference_leak_simulation(fish_ids: Sequence[str], shares: Sequence[float] = SHARES,
                              seed: int = 0) -> tuple[float, float]:
    """(per-photo split's leak, per-fish split's leak): the share of fish whose photos sit in more than one split."""
    rng = np.random.default_rng(seed)
    fish_ids = np.asarray(fish_ids)
    fish, photo_fish = np.unique(fish_ids, return_inverse=True)
    per_photo = rng.choice(3, size=len(fish_ids), p=shares)
    per_fish = rng.choice(3, size=len(fish), p=shares)[photo_fish]

    def leak(split: np.ndarray) -> float:
        return len(leaked_groups(pd.DataFrame({"fish_id": fish_ids, "split": split}))) / len(fish)

    return leak(per_photo), leak(per_fish)


def leak_simulation(student: Callable) -> Verdict:
    """Check ``student(fish_ids, shares=(0.7, 0.15, 0.15), seed=0) -> (per_photo_leak, per_fish_leak)`` on
    8000 fish of 1 to 4 photos: the fish-kept-whole split never leaks, the per-photo split leaks as
    often as the probabilities say (within six standard errors), and the same seed repeats."""
    def body() -> None:
        ids = _case()
        result = call(student, ids, SHARES, 1)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise WrongAnswer("return two numbers: the per-photo split's leak, then the per-fish split's")
        try:
            per_photo, per_fish = (float(v) for v in result)
        except (TypeError, ValueError) as error:
            raise WrongAnswer("return two plain numbers (shares of fish between 0 and 1)") from error
        if max(per_photo, per_fish) > 1 or min(per_photo, per_fish) < 0:
            raise WrongAnswer(f"a leak is a share of fish, between 0 and 1; you returned {per_photo:g} and "
                              f"{per_fish:g} (percent? a count?)")
        if per_fish > 0:
            raise WrongAnswer(f"your per-fish split still leaks ({per_fish:.1%} of the fish): draw one split per fish, "
                              "then give each photo the split of its fish")
        counts = _counts(ids)
        want, error = expected_leak(counts)
        tolerance = SIDES * error
        if per_photo < tolerance:
            raise WrongAnswer("your per-photo split does not leak: draw a split for every *photo*, independently, "
                              f"so that a fish's photos can land apart (about {want:.0%} of these fish do)")
        if abs(per_photo - want) > tolerance:
            for value, message in (
                (expected_leak(counts, per="photo")[0], "that is the share of *photos* whose fish straddles splits; "
                 "the leak is counted in fish: the share of fish whose photos sit in more than one split"),
                (expected_leak(counts, shares=(1 / 3,) * 3)[0], "you drew the three splits with equal chances: draw "
                 "them with the shares given (p=shares)"),
                (expected_leak(counts, singles=False)[0], "you left out the fish with a single photo: they cannot "
                 "leak, but they are fish of the dataset, so they count in the share"),
            ):
                if abs(per_photo - value) <= tolerance:
                    raise WrongAnswer(message)
            raise WrongAnswer(f"your per-photo split leaks {per_photo:.1%} of the fish; with these shares about "
                              f"{want:.1%} should (1 - sum of p^k for a fish of k photos, averaged over the fish)")
        # Two unseeded draws give the same leak about once in a hundred (its count over 8000 fish spreads by about
        # 40): three calls all agree about once in ten thousand.
        for _ in range(2):
            again = call(student, ids, SHARES, 1)
            if tuple(float(v) for v in again) != (per_photo, per_fish):
                raise WrongAnswer("the same seed gave another result: draw every split from "
                                  "np.random.default_rng(seed)")
        # Two seeds give the same count of leaking fish by chance about once in a hundred; three others, never.
        if all(float(call(student, ids, SHARES, seed)[0]) == per_photo for seed in (2, 3, 4)):
            raise WrongAnswer("three other seeds gave exactly the same leak: draw the splits from "
                              "np.random.default_rng(seed), with the seed you are given")

    return run_check("leak_simulation", "the leak simulation", student, reference_leak_simulation, body,
                     "correct: the per-fish split never leaks, and the per-photo split leaks as often as expected")
