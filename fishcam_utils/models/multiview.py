"""A multi-view fish classifier: one backbone per view (or one shared by all), then a fusion.

``MultiViewNet(num_classes, views=("side", "back", "belly"), backbone="fishresnet",
fusion="attention")`` takes ``(views, present)``: views (N, V, 3, H, W) normalised images in
``views`` order and present (N, V) bool (missing views are ignored, whatever their pixels), and
returns ``(logits (N, K), weights (N, V))``, the weights summing to 1 over the present views.
It trains with the ordinary engine (``fit``), since ``MultiViewDataset`` yields exactly
``((views, present), label)``.

Backbones come from ``build_model`` with their classifier removed, so every single-view
architecture (and its pretrained weights) can be a branch. Each branch runs once per view, so a
CAM at a branch layer gives a map for every view from one backward of the fused logit
(``cam_target(layer)`` names that layer in every branch).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ..data.species import VIEWS
from ..runtime import unwrap
from .backbones import get_backbone
from .factory import _set_submodule, build_model, register_builder
from .fusion import FUSIONS, check_present, make_fusion


class MultiViewOutput(NamedTuple):
    """What ``MultiViewNet`` returns (a tuple, so ``logits, weights, *_ = model(views, present)``).

    logits (N, K); weights (N, V), zero on missing views and summing to 1 over present ones;
    view_logits (N, V, K), what the classifier makes of each view alone (for a weighted fusion,
    logits = sum_v weights_v * view_logits_v exactly); present (N, V) bool, the views used.
    """

    logits: torch.Tensor
    weights: torch.Tensor
    view_logits: torch.Tensor
    present: torch.Tensor


class FusionHead(nn.Module):
    """Fusion then a linear classifier: ``(features (N, V, F), present) -> MultiViewOutput``.
    One module, so freezing "the backbone" freezes the branches and trains fusion and classifier."""

    def __init__(self, fusion: str, num_views: int, num_features: int, num_classes: int, dropout: float = 0.0,
                 view_norm: bool = True) -> None:
        super().__init__()
        # Every view's features on one scale (LayerNorm, shared by the views): otherwise a branch can
        # blow its features up and dominate the sum with a small weight, and weights stop meaning influence.
        self.norm = nn.LayerNorm(num_features) if view_norm else nn.Identity()
        self.fusion = make_fusion(fusion, num_views, num_features)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(self.fusion.out_features, num_classes)

    def forward(self, features: torch.Tensor, present: torch.Tensor) -> MultiViewOutput:
        features = self.norm(features)
        fused, weights = self.fusion(features, present)
        logits = self.classifier(self.dropout(fused))
        if self.fusion.name == "concat":
            # The classifier's block for view v alone, with the bias: logits = sum_v of them - (V-1) b.
            n, v, f = features.shape
            blocks = self.classifier.weight.reshape(-1, v, f)
            view_logits = torch.einsum("nvf,kvf->nvk", features, blocks) + self.classifier.bias
        else:
            # A weighted fusion is linear in the features, so the classifier reads each view alone.
            view_logits = self.classifier(self.dropout(features))
        return MultiViewOutput(logits, weights, view_logits, present.bool())


def _branch(backbone: str, weights: Any, verbose: bool, options: dict[str, Any]) -> tuple[nn.Module, int]:
    """A backbone from the factory with its classifier replaced by Identity: (N, 3, H, W) -> (N, F)."""
    model = build_model(backbone, 2, weights=weights, head="linear", verbose=verbose, **options)
    head = get_backbone(backbone).head
    num_features = model.get_submodule(head).in_features
    _set_submodule(model, head, nn.Identity())
    return model, num_features


class MultiViewNet(nn.Module):
    """Multi-view classifier: a branch per view (``shared=False``) or one shared branch, a fusion
    (``attention``, ``mean``, ``concat`` or ``gated``) and a linear classifier.

    ``aux_weight``: while training, ``auxiliary_loss`` adds this times the loss of every present
    view's own logits, so each branch learns to recognise fish by itself; without it, attention
    tends to settle on the view that is easiest early on and starve the other branches.
    ``view_dropout`` p: while training, each present view is dropped with probability p (at least
    one view of every fish is kept), so the model learns to classify fish with views missing.
    ``weights``: the branches' initial weights, as in ``build_model`` ("auto", "imagenet", None, path).
    ``backbone_options``: the backbone's own build options (FishResNet's ``width`` and ``blocks``).
    """

    head_name = "head"

    def __init__(self, num_classes: int, views: Sequence[str] = VIEWS, backbone: str = "fishresnet",
                 fusion: str = "attention", shared: bool = False, view_dropout: float = 0.0, aux_weight: float = 0.5,
                 entropy_weight: float = 0.0, view_norm: bool = True, dropout: float = 0.0,
                 weights: Any = "auto", verbose: bool = True, **backbone_options: Any) -> None:
        super().__init__()
        views = [str(v) for v in views]
        if len(views) < 1 or len(set(views)) != len(views):
            raise ValueError(f"views must be distinct view names, e.g. {list(VIEWS)}; got {views}")
        options = get_backbone(backbone).build_options(backbone, backbone_options)
        FUSIONS.lookup(fusion)  # an unknown name fails before the branches are built
        if not 0.0 <= view_dropout < 1.0:
            raise ValueError(f"view_dropout is a probability in [0, 1), got {view_dropout}")
        if aux_weight < 0 or entropy_weight < 0:
            raise ValueError(f"aux_weight and entropy_weight must be >= 0, got {aux_weight} and {entropy_weight}")
        self.views, self.shared, self.view_dropout = views, bool(shared), float(view_dropout)
        self.aux_weight, self.entropy_weight = float(aux_weight), float(entropy_weight)
        self.backbone_name = backbone
        if self.shared:
            self.backbone, num_features = _branch(backbone, weights, verbose, options)
        else:
            branches = {}
            for i, view in enumerate(views):
                branches[view], num_features = _branch(backbone, weights, verbose and i == 0, options)
            self.branches = nn.ModuleDict(branches)
        self.num_features = num_features
        self.head = FusionHead(fusion, len(views), num_features, num_classes, dropout, view_norm)
        self.fishcam = {"name": "multiview", "num_classes": num_classes, "views": views, "backbone": backbone,
                        "fusion": fusion, "shared": self.shared, "view_dropout": self.view_dropout,
                        "aux_weight": self.aux_weight, "entropy_weight": self.entropy_weight,
                        "view_norm": bool(view_norm), "dropout": float(dropout), **options}

    @property
    def fusion(self) -> str:
        return self.head.fusion.name

    @property
    def cam_layer_names(self) -> list[str]:
        """The branch's sensible CAM layers, input to output; ``cam_target`` maps one to every view."""
        return list(get_backbone(self.backbone_name).cam_layers)

    def cam_target(self, layer: str) -> list[str]:
        """The modules of branch layer ``layer`` (e.g. ``"layer2"``): one per view, or the shared one."""
        if not layer or layer not in dict(self.branch(self.views[0]).named_modules()):
            raise ValueError(f"no branch layer {layer!r}; sensible ones: {', '.join(self.cam_layer_names)}")
        if self.shared:
            return [f"backbone.{layer}"]
        return [f"branches.{view}.{layer}" for view in self.views]

    def branch(self, view: str) -> nn.Module:
        """The backbone that reads ``view``."""
        return self.backbone if self.shared else self.branches[view]

    def init_branches(self, experts: Mapping[str, nn.Module]) -> MultiViewNet:
        """Start each view's branch from a trained single-view model of the same backbone (its
        classifier is left out): ``init_branches({"side": side_model, "back": ..., ...})``.
        Views not named keep their weights; a shared backbone takes exactly one expert."""
        unknown = [v for v in experts if v not in self.views]
        if unknown:
            raise ValueError(f"no branch for view(s) {unknown}; this model's views are {self.views}")
        if self.shared and len(experts) != 1:
            raise ValueError(f"a shared backbone starts from one single-view model, got {len(experts)}")
        head = get_backbone(self.backbone_name).head + "."
        for view, expert in experts.items():
            config = getattr(unwrap(expert), "fishcam", {})
            if config.get("name") != self.backbone_name:
                raise ValueError(f"the {view} expert is a {config.get('name', type(expert).__name__)}, but the "
                                 f"branches are {self.backbone_name}; pass a model built with build_model("
                                 f"{self.backbone_name!r}, ...) with the same width")
            state = {k: v for k, v in unwrap(expert).state_dict().items() if not k.startswith(head)}
            self.branch(view).load_state_dict(state)
        return self

    def drop_views(self, present: torch.Tensor) -> torch.Tensor:
        """View dropout: ``present`` with each present view dropped with probability p, keeping at
        least one (chosen at random among the present ones) for every fish."""
        kept = present & (torch.rand(present.shape, device=present.device) >= self.view_dropout)
        none_left = ~kept.any(1)
        if none_left.any():
            pick = torch.rand(present.shape, device=present.device).masked_fill(~present, -1.0).argmax(1)
            kept[none_left, pick[none_left]] = True
        return kept

    def forward(self, views: torch.Tensor, present: torch.Tensor | None = None) -> MultiViewOutput:
        """views (N, V, 3, H, W), present (N, V) bool or None (all present) ->
        ``MultiViewOutput(logits (N, K), weights (N, V), view_logits (N, V, K), present (N, V))``."""
        if views.ndim != 5 or views.shape[1] != len(self.views):
            raise ValueError(f"views must be (batch, {len(self.views)}, 3, H, W) for views {self.views}, "
                             f"got {tuple(views.shape)}")
        if present is None:
            present = torch.ones(views.shape[:2], dtype=torch.bool, device=views.device)
        present = present.to(views.device).bool()
        if self.training and self.view_dropout > 0:
            present = self.drop_views(check_present(present, views))
        # A missing view is blanked before its branch too, so training and test see the same input.
        views = views * present[:, :, None, None, None]
        # One branch call per view, in view order (a CAM hook sees the views in that order).
        features = torch.stack([self.branch(view)(views[:, v]) for v, view in enumerate(self.views)], 1)
        return self.head(features, present)

    def auxiliary_loss(self, output: MultiViewOutput, targets: torch.Tensor,
                       criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """``aux_weight`` x the mean ``criterion`` of every present view's own logits (the
        training engine adds it to the loss of the fused logits)."""
        loss = output.logits.new_zeros((), dtype=torch.float32)
        fish, view = output.present.nonzero(as_tuple=True)
        if self.aux_weight > 0 and fish.numel():
            loss = loss + self.aux_weight * criterion(output.view_logits[fish, view].float(), targets[fish])
        if self.entropy_weight > 0 and self.head.fusion.learns_weights:
            weights = output.weights.float()
            entropy = -(weights * weights.clamp_min(1e-12).log()).sum(1)
            loss = loss + self.entropy_weight * entropy.mean()
        return loss


def build_multiview(num_classes: int, **config: Any) -> MultiViewNet:
    """Rebuild a ``MultiViewNet`` from its saved config (random weights; a checkpoint fills them)."""
    config.setdefault("weights", None)
    config.setdefault("verbose", False)
    return MultiViewNet(num_classes, **config)


register_builder("multiview", build_multiview)
