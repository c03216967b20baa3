"""Staged fine-tuning: train the head on a frozen backbone, then everything with a smaller
learning rate for the backbone (discriminative learning rates)."""

from __future__ import annotations

from torch import nn

from ..models.factory import backbone_parameters, head_parameters
from ..runtime import unwrap

_BATCHNORM = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def freeze_backbone(model: nn.Module) -> None:
    """Stop gradients for every backbone parameter; the head stays trainable."""
    for p in backbone_parameters(model):
        p.requires_grad_(False)
    for p in head_parameters(model):
        p.requires_grad_(True)


def unfreeze(model: nn.Module) -> None:
    """Make every parameter trainable again."""
    for p in unwrap(model).parameters():
        p.requires_grad_(True)


def frozen_batchnorm_to_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer whose parameters are all frozen in eval mode, so that training
    batches do not move its running mean and variance (which the frozen weights were fitted
    to). Call after ``model.train()``. Returns how many layers it switched."""
    switched = 0
    for module in unwrap(model).modules():
        if isinstance(module, _BATCHNORM):
            params = list(module.parameters(recurse=False))
            if params and not any(p.requires_grad for p in params):
                module.eval()
                switched += 1
    return switched


def parameter_groups(model: nn.Module, lr: float, backbone_lr: float | None = None,
                     weight_decay: float = 0.0) -> list[dict]:
    """Optimizer groups: the head at ``lr``, the backbone at ``backbone_lr`` (default ``lr``).

    Frozen parameters are left out. Biases and normalisation weights get no weight decay.
    """
    backbone_lr = lr if backbone_lr is None else backbone_lr
    if getattr(unwrap(model), "fishcam", None) is None:
        # A model of the student's own: no known head, so one learning rate for everything.
        parts = [("head", unwrap(model).parameters(), lr)]
    else:
        parts = [("backbone", backbone_parameters(model), backbone_lr), ("head", head_parameters(model), lr)]
    groups = []
    for name, params, group_lr in parts:
        params = [p for p in params if p.requires_grad]
        decay = [p for p in params if p.ndim > 1]
        no_decay = [p for p in params if p.ndim <= 1]
        for suffix, group, wd in (("", decay, weight_decay), ("_no_decay", no_decay, 0.0)):
            if group:
                groups.append({"params": group, "lr": group_lr, "weight_decay": wd, "name": name + suffix})
    if not groups:
        raise ValueError("the model has no trainable parameters; did you freeze everything?")
    return groups
