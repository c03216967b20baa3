"""Ways to fuse the feature vectors of several views of one fish into one.

Every fusion takes ``features`` (N, V, F), one vector per view, and ``present`` (N, V) bool,
and returns ``(fused, weights)``: fused (N, out_features) and the per-sample view weights (N, V),
non-negative, zero on missing views and summing to 1 over the present ones.

- ``mean``: the average of the present views (weights fixed at 1/present).
- ``concat``: the views side by side, missing ones zeroed; no weighting of its own, so the
  weights it reports are the fixed 1/present.
- ``attention``: a small MLP reads all the views together and scores each one; a softmax over
  the present views turns the scores into weights, and the fused vector is sum_v a_v f_v.
- ``gated``: each view scores itself alone, g_v = sigmoid(w_v . f_v + b_v); the weights are the
  gates renormalised over the present views.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry


def check_present(present: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``present`` as (N, V) bool, checked against ``features`` (N, V, F): every fish needs a view."""
    if present.shape != features.shape[:2]:
        raise ValueError(f"present must be (batch, views) = {tuple(features.shape[:2])}, got {tuple(present.shape)}")
    present = present.bool()
    if not present.any(1).all():
        raise ValueError("every fish needs at least one present view; a fish with none cannot be classified")
    return present


def uniform_weights(present: torch.Tensor) -> torch.Tensor:
    """(N, V): 1/(number of present views) on present views, 0 on missing ones."""
    weights = present.float()
    return weights / weights.sum(1, keepdim=True)


class ViewFusion(nn.Module):
    """Base of the fusions: ``forward(features (N, V, F), present (N, V)) -> (fused, weights)``."""

    name = "base"
    learns_weights = False  # whether the view weights depend on the input (attention, gated)

    def __init__(self, num_views: int, num_features: int) -> None:
        super().__init__()
        self.num_views, self.num_features = num_views, num_features
        self.out_features = num_features

    def weigh(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(N, V) weights over present views; the fusions that learn weights override this."""
        return uniform_weights(present)

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if features.ndim != 3 or features.shape[1:] != (self.num_views, self.num_features):
            raise ValueError(f"{self.name} fusion expects features (batch, {self.num_views}, {self.num_features}), "
                             f"got {tuple(features.shape)}")
        present = check_present(present, features)
        # Missing views are zeroed first, so nothing of them can leak into a score or the sum.
        return self.fuse(features * present[..., None], present)

    def fuse(self, features: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The weighted sum of the (already zeroed where missing) view features."""
        weights = self.weigh(features, present)
        return (weights[..., None] * features).sum(1), weights


class MeanFusion(ViewFusion):
    """The average of the present views' features."""

    name = "mean"


class ConcatFusion(ViewFusion):
    """All views' features side by side (N, V*F), missing views as zeros."""

    name = "concat"

    def __init__(self, num_views: int, num_features: int) -> None:
        super().__init__(num_views, num_features)
        self.out_features = num_views * num_features

    def fuse(self, features: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features.flatten(1), uniform_weights(present)


def masked_softmax(scores: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Softmax over dim 1 of (N, V) scores, over the present views only (missing ones get 0)."""
    return scores.masked_fill(~present, float("-inf")).softmax(1)


class AttentionFusion(ViewFusion):
    """Attention over views: scores = MLP(concat of all views) (the multi-view seed's
    ``Linear(V*F, hidden) -> ReLU -> Linear(hidden, V)``), a softmax over the present views,
    fused = sum_v a_v f_v."""

    name = "attention"
    learns_weights = True

    def __init__(self, num_views: int, num_features: int, hidden: int | None = None) -> None:
        super().__init__(num_views, num_features)
        hidden = hidden or num_features
        self.score = nn.Sequential(nn.Linear(num_views * num_features, hidden), nn.ReLU(), nn.Linear(hidden, num_views))

    def weigh(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        return masked_softmax(self.score(features.flatten(1)), present)


class GatedFusion(ViewFusion):
    """Gates: each view judges itself, g_v = sigmoid(w_v . f_v + b_v); weights g_v / sum of the
    present views' gates. Unlike attention, a view's gate cannot look at the other views."""

    name = "gated"
    learns_weights = True

    def __init__(self, num_views: int, num_features: int) -> None:
        super().__init__(num_views, num_features)
        self.gates = nn.ModuleList(nn.Linear(num_features, 1) for _ in range(num_views))

    def weigh(self, features: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        gates = torch.cat([gate(features[:, v]) for v, gate in enumerate(self.gates)], 1).sigmoid()
        gates = gates * present
        return gates / gates.sum(1, keepdim=True)


FUSIONS: Registry[type[ViewFusion]] = Registry("fusion", {"attention": AttentionFusion, "mean": MeanFusion,
                                                         "concat": ConcatFusion, "gated": GatedFusion})


def make_fusion(name: str, num_views: int, num_features: int) -> ViewFusion:
    """The fusion ``name`` (one of ``FUSIONS``) for ``num_views`` vectors of ``num_features``."""
    return FUSIONS.lookup(name)(num_views, num_features)
