"""Classifier heads that sit on a backbone's pooled features."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import nn

from ..registry import Registry


class MLPHead(nn.Sequential):
    """The mushroom project's head: (Linear → BatchNorm → ReLU → Dropout) for each hidden size,
    then Linear. (B, in_features) → (B, num_classes). BatchNorm needs batches of 2 or more in
    training, so the training engine drops a last batch of one.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: Sequence[int] = (512, 256),
                 dropout: float = 0.3) -> None:
        layers: list[nn.Module] = []
        size = in_features
        for width in hidden:
            layers += [nn.Linear(size, width), nn.BatchNorm1d(width), nn.ReLU(), nn.Dropout(dropout)]
            size = width
        layers.append(nn.Linear(size, num_classes))
        super().__init__(*layers)


HEADS: Registry[Callable[..., nn.Module]] = Registry("head", {
    "linear": lambda in_features, num_classes, hidden, dropout: nn.Linear(in_features, num_classes),
    "mlp": MLPHead,
})


def make_head(kind: str, in_features: int, num_classes: int, hidden: Sequence[int] = (512, 256),
              dropout: float = 0.3) -> nn.Module:
    """``"linear"``: one Linear layer; ``"mlp"``: ``MLPHead`` (any name of ``HEADS``). (B, in_features) →
    (B, num_classes)."""
    return HEADS.lookup(kind)(in_features, num_classes, hidden, dropout)
