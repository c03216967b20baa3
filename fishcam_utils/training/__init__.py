"""Training: ``fit`` with checkpoints, resume, early stopping, staged fine-tuning and DDP.

Typical use::

    from fishcam_utils.training import fit, load_checkpoint
    result = fit(model, train_ds, val_ds, epochs=10, run_dir="checkpoints/fishresnet")
    model, checkpoint = load_checkpoint("checkpoints/fishresnet/best.pt")
"""

from .checkpoints import check_compatible, load_checkpoint, load_model_state, read_checkpoint, save_checkpoint
from .devices import autocast, move_to, pick_device
from .distributed import cleanup_distributed, init_distributed, is_main_process
from .early_stopping import EarlyStopping
from .engine import (
    OPTIMIZERS,
    SCHEDULES,
    FitResult,
    TrainConfig,
    check_run_dir,
    class_weights_for,
    evaluate,
    fit,
    forward,
    history_frame,
    make_config,
    make_optimizer,
    make_scheduler,
    train_one_epoch,
)
from .fusion_head import fit_fusion_head, view_features
from .finetune import freeze_backbone, frozen_batchnorm_to_eval, parameter_groups, unfreeze
from .seeding import epoch_seed, seed_everything

__all__ = [
    "OPTIMIZERS", "SCHEDULES", "EarlyStopping", "FitResult", "TrainConfig", "autocast", "check_compatible", "check_run_dir",
    "class_weights_for", "cleanup_distributed", "epoch_seed", "evaluate", "fit", "fit_fusion_head", "forward", "freeze_backbone",
    "frozen_batchnorm_to_eval", "history_frame", "init_distributed", "is_main_process", "load_checkpoint",
    "load_model_state", "make_config", "make_optimizer", "make_scheduler", "move_to", "parameter_groups",
    "pick_device", "read_checkpoint", "save_checkpoint", "seed_everything", "train_one_epoch", "unfreeze", "view_features",
]
