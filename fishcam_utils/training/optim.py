"""What takes a run's steps: the loss (label smoothing, class weights), the optimiser and its
parameter groups' learning rates, the schedule and the AMP scaler; ``Steps`` holds one stage's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..data.introspection import DatasetFacts
from .config import TrainConfig
from .finetune import parameter_groups


def class_weights_for(config: TrainConfig, targets: list[int], num_classes: int) -> torch.Tensor | None:
    """``"balanced"``: n / (C * n_c) for each class c (0 for a class with no sample); a list is used as given."""
    if config.class_weights is None:
        return None
    if config.class_weights == "balanced":
        counts = torch.bincount(torch.as_tensor(targets, dtype=torch.long), minlength=num_classes).double()
        weights = torch.where(counts > 0, counts.sum() / (num_classes * counts.clamp(min=1)), torch.zeros_like(counts))
        return weights.float()
    weights = torch.as_tensor(config.class_weights, dtype=torch.float32)
    if weights.shape != (num_classes,) or (weights < 0).any():
        raise ValueError(f"class_weights must hold {num_classes} non-negative numbers (one per class), "
                         f"got {config.class_weights}")
    return weights


def make_optimizer(config: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    if config.optimizer == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    return torch.optim.AdamW(groups, lr=config.lr)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, epochs: int, steps_per_epoch: int):
    """The LR schedule of one stage. Cosine and one-cycle move every batch (``per_batch=True``);
    plateau looks at the validation metric once per epoch."""
    total = max(1, epochs * steps_per_epoch)
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                   total_steps=total)
    if config.schedule == "plateau":
        mode = "min" if "loss" in config.monitor else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.1, patience=2)
    return None


def grad_scaler(enabled: bool):
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def make_criterion(config: TrainConfig, train_data: Dataset, facts: DatasetFacts, num_classes: int,
               device: torch.device) -> nn.Module:
    """Cross-entropy with the run's label smoothing and class weights; "balanced" weights count the
    labels actually trained on (those of a ``Subset``, not of the dataset under it)."""
    targets = facts.targets
    if config.class_weights == "balanced" and targets is None:
        targets = [int(train_data[i][1]) for i in tqdm(range(len(train_data)), desc="reading the labels",
                                                       disable=not config.progress, leave=False)]
    weights = class_weights_for(config, targets or [], num_classes)
    return nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device),
                               label_smoothing=config.label_smoothing)


@dataclass
class Steps:
    """What takes the steps of one stage: the optimiser, its schedule and the AMP scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any

    @classmethod
    def make(cls, run: Any, stage: str, first: int, end: int) -> Steps:
        """Fresh for the stage, or as saved when the run resumes inside it."""
        config = run.config
        backbone_lr = config.lr * (config.backbone_lr_scale if stage == "all" else 1.0)
        optimizer = make_optimizer(config, parameter_groups(run.inner, config.lr, backbone_lr, config.weight_decay))
        steps = cls(optimizer, make_scheduler(config, optimizer, end - first, len(run.train_loader)),
                    grad_scaler(config.amp and run.device.type == "cuda"))
        saved = run.saved
        if saved is not None and saved["stage"] == stage and first <= run.start_epoch < end:
            steps.optimizer.load_state_dict(saved["optimizer_state"])
            if steps.scheduler is not None:
                steps.scheduler.load_state_dict(saved["scheduler_state"])
            steps.scaler.load_state_dict(saved["scaler_state"])
        return steps
