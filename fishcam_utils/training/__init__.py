"""Training: ``fit`` with checkpoints, resume, early stopping, staged fine-tuning and DDP.

Typical use::

    from fishcam_utils.training import fit, load_checkpoint
    result = fit(model, train_ds, val_ds, epochs=10, run_dir="checkpoints/fishresnet")
    model, checkpoint = load_checkpoint("checkpoints/fishresnet/best.pt")
"""

from ..lazy import lazy_names
from .config import MONITORS, OPTIMIZERS, SCHEDULES, TrainConfig, make_config

# Where each name lives. They import torch, which takes seconds, so they load on first use: the
# `fishcam` command builds its train flags from TrainConfig and must answer --help at once.
_HOMES = {
    "checkpoints": ["check_compatible", "load_checkpoint", "load_model_state", "read_checkpoint", "save_checkpoint"],
    ".runtime": ["autocast", "move_to", "pick_device"],  # the package's plumbing, one floor down
    "distributed": ["cleanup_distributed", "init_distributed", "is_main_process"],
    "early_stopping": ["EarlyStopping"],
    "engine": ["FitResult", "evaluate", "fit", "forward", "train_one_epoch"],
    "optim": ["class_weights_for", "make_optimizer", "make_scheduler"],
    "run_dir": ["RUN_OUTPUTS", "check_run_dir", "history_frame"],
    "fusion_head": ["fit_fusion_head", "view_features"],
    "finetune": ["freeze_backbone", "frozen_batchnorm_to_eval", "parameter_groups", "unfreeze"],
    "seeding": ["epoch_seed", "seed_everything"],
}
# The names imported above, re-exported as they are; lazy_names adds those of _HOMES.
__all__ = ["MONITORS", "OPTIMIZERS", "SCHEDULES", "TrainConfig", "make_config"]
__all__, __getattr__, __dir__ = lazy_names(__name__, _HOMES, eager=__all__)
