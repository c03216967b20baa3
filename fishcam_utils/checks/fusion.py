"""Checker for notebook 04: attention pooling over the views present."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..models.fusion import masked_softmax
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Four fish, three views, five features: all views present; view 1 missing with the largest score
    and features of 1000 (whatever a missing view's branch made of a blank photo); only view 2 present;
    scores near 1000 (exp overflows in float32 unless the largest is subtracted first)."""
    generator = torch.Generator().manual_seed(41)
    features = torch.randn(4, 3, 5, generator=generator)
    scores = torch.randn(4, 3, generator=generator)
    present = torch.tensor([[True, True, True], [True, False, True], [False, False, True], [True, True, True]])
    scores[1, 1], features[1, 1] = 3.0, 1000.0
    features[2, :2] = 1000.0
    scores[3] = torch.tensor([1000.0, 998.5, 999.0])
    return features, scores, present


def reference_attention_pool(features: torch.Tensor, scores: torch.Tensor,
                             present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax of the scores over the present views, then the weighted sum of the features:
    (fused (N, F), weights (N, V))."""
    if not present.any(1).all():
        raise ValueError("every fish needs at least one present view")
    weights = masked_softmax(scores, present)
    return (weights[..., None] * features.masked_fill(~present[..., None], 0.0)).sum(1), weights


def _pool(features, scores, present, mask: str = "-inf", dim: int = 1, fused: str = "sum"):
    """Attention pooling with one step done another way (the typical slips; an overflow is told by its NaN)."""
    if mask == "-inf":
        scores = scores.masked_fill(~present, float("-inf"))
    elif mask == "zero":
        scores = scores.masked_fill(~present, 0.0)
    e = (scores - scores.amax(dim, keepdim=True)).exp()
    weights = e / e.sum(dim, keepdim=True)
    if mask == "after":
        weights = weights * present
    pooled = (weights[..., None] * features.masked_fill(~present[..., None], 0.0)).sum(1)
    return pooled / features.shape[1] if fused == "mean" else pooled, weights


def attention_pooling(student: Callable) -> Verdict:
    """Check ``student(features (N, V, F), scores (N, V), present (N, V) bool) -> (fused (N, F), weights (N, V))``:
    a softmax over the present views only, the weighted sum of their features, ValueError for a fish
    with no view."""
    mistakes = [
        Mistake("a missing view got a weight: give it a score of -inf *before* the softmax, "
                "scores.masked_fill(~present, float('-inf')), so that exp(-inf) = 0",
                lambda f, s, p: _pool(f, s, p, mask="none")),
        Mistake("you zeroed the missing views' weights after the softmax, so the others no longer sum to 1: mask the "
                "scores before the softmax instead", lambda f, s, p: _pool(f, s, p, mask="after")),
        Mistake("a score of 0 does not mean absent: exp(0) = 1 still gives the view a weight. Use -inf",
                lambda f, s, p: _pool(f, s, p, mask="zero")),
        Mistake("you took the softmax over the batch (dim 0): each fish weighs its own views, over dim 1",
                lambda f, s, p: _pool(f, s, p, dim=0)),
        Mistake("the fused vector is the weighted *sum* of the views: the weights already sum to 1, so do not "
                "divide by the number of views", lambda f, s, p: _pool(f, s, p, fused="mean")),
    ]

    def body() -> None:
        features, scores, present = _case()
        fused_want, weights_want = reference_attention_pool(features, scores, present)
        result = call(student, *_case())
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise WrongAnswer("return two things: the fused vectors (N, F) and the weights (N, V)")
        fused, weights = result
        check_shape(weights, weights_want, "the weights")
        check_shape(fused, fused_want, "the fused vectors")
        if not (torch.isfinite(weights).all() and torch.isfinite(fused).all()):
            fish = sorted({int(i) for i in (~torch.isfinite(weights)).nonzero()[:, 0]}
                          | {int(i) for i in (~torch.isfinite(fused)).nonzero()[:, 0]})
            raise WrongAnswer(f"NaN or inf for fish {fish}: fish 3's scores are near 1000, and exp(1000) is inf in "
                              "float32 (inf / inf is NaN). Subtract each fish's largest present score before exp: "
                              "it does not change the softmax, and the largest exp becomes 1")
        diagnose(weights, weights_want, [Mistake(m.message, lambda *c, make=m.make: make(*c)[1]) for m in mistakes],
                 _case, "the weights")
        diagnose(fused, fused_want, [Mistake(m.message, lambda *c, make=m.make: make(*c)[0]) for m in mistakes],
                 _case, "the fused vectors")
        nobody = present.clone()
        nobody[2] = False
        try:
            student(features, scores, nobody)
        except ValueError:
            pass
        except Exception as error:  # noqa: BLE001 - which error the student raises is what is checked
            raise WrongAnswer(f"for a fish with no view present, raise ValueError (saying so), not "
                              f"{type(error).__name__}") from error
        else:
            raise WrongAnswer("fish 2 with no view present gave a result: it has nothing to weigh. Check "
                              "present.any(1).all() first and raise ValueError naming the problem")

    return run_check("attention_pooling", "attention pooling", student, reference_attention_pool, body,
                     "correct: the same weights and fused vectors as the package's attention")
