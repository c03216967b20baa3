"""How the course's pretrained stand-in weights are made: one recipe per backbone, declared once.

Plain data (no torch), so that the command line can list the backbones without importing torch.
``standin.pretrain`` runs a recipe; the manifest of ``checkpoints/standin`` records it.
"""

from __future__ import annotations

from typing import Any

STANDIN_RECIPES: dict[str, dict[str, Any]] = {
    # ResNet-18 (notebook 03): more photos than the course's, all views mixed, a short one-cycle run.
    "resnet18": {"build": {}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                 "fit": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "schedule": "onecycle"}, "augment": 1.0},
    # The small ConvNeXt (notebook 03's ResNet-vs-ConvNeXt comparison offline): AdamW, as ConvNeXts are trained.
    # It learns far more slowly than the ResNet (its blocks start as near-identities): 8 epochs at 2e-3 reached
    # 44 % on the source task, 30 at 4e-3 82 %.
    "convnext_nano": {"build": {}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                      "fit": {"epochs": 40, "batch_size": 64, "optimizer": "adamw", "lr": 4e-3, "weight_decay": 0.05,
                              "schedule": "onecycle"}, "augment": 1.0},
    # The course's FishResNet, for checks and for students without much time.
    "fishresnet": {"build": {"width": 32, "blocks": [2, 2]}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                   "fit": {"epochs": 8, "batch_size": 64, "lr": 3e-3, "schedule": "onecycle"}, "augment": 1.0},
}

