"""The training engine: one ``fit`` that a notebook calls in one line.

    result = fit(model, train_ds, val_ds, epochs=10, lr=1e-3, run_dir="checkpoints/fishresnet")
    result.history      # one row per epoch: loss, accuracy, learning rate, time

Every option is a field of ``TrainConfig`` with its default in plain sight. Each epoch draws
its shuffling, augmentation and dropout from ``epoch_seed(seed, epoch)``, so a run resumed from
``last.pt`` ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import option, option_name
from ..files import atomic_write, describe, earlier_outputs, remove_abandoned, remove_all
from ..models.factory import unwrap
from ..models.standin import warn_if_other_size
from ..models.state import eval_mode, logits_of
from . import distributed as ddp
from .checkpoints import load_model_state, read_checkpoint, save_checkpoint
from .devices import autocast, move_to, pick_device
from .early_stopping import EarlyStopping
from .finetune import freeze_backbone, frozen_batchnorm_to_eval, parameter_groups, unfreeze
from .seeding import epoch_seed, seed_everything, seed_worker

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("none", "cosine", "onecycle", "plateau")
MONITORS = ("val_acc", "val_loss")
# Options that may change when a run is resumed: where and how it runs, not what it computes.
_RESUMABLE_CHANGES = {"device", "num_workers", "progress", "tensorboard"}


@dataclass
class TrainConfig:
    """Every option of ``fit``. Pass a few as keywords (``fit(..., lr=3e-4)``) or a whole config."""

    epochs: int = 10
    batch_size: int = 64  # per process under torchrun
    optimizer: str = "adamw"  # sgd | adam | adamw
    lr: float = 1e-3  # the head's (or the whole model's) learning rate
    weight_decay: float = 1e-4  # not applied to biases and normalisation weights
    momentum: float = 0.9  # SGD only
    schedule: str = "cosine"  # none | cosine, onecycle (stepped every batch) | plateau (every epoch)
    label_smoothing: float = 0.0
    class_weights: str | list[float] | None = None  # None | "balanced" | one weight per class
    grad_clip: float | None = None  # max gradient norm
    freeze_epochs: int = 0  # staged fine-tuning: the first epochs train the head only
    backbone_lr_scale: float = 1.0  # backbone learning rate = lr * this (0.1 for fine-tuning)
    patience: int | None = None  # early stopping: epochs without improvement; None never stops
    monitor: str = "val_acc"  # val_acc | val_loss: what "best" means
    min_delta: float = 0.0
    restore_best: bool = True  # end with the best epoch's weights (when there is validation data)
    seed: int = 0
    deterministic: bool = False  # deterministic algorithms (bit-identical reruns on CPU)
    amp: bool = True  # mixed precision, used on CUDA only
    num_workers: int = 0
    device: str | None = None  # None: CUDA, then MPS, then CPU
    tensorboard: bool = False  # log to <run_dir>/tensorboard (needs the tensorboard package)
    progress: bool = True

    def validate(self) -> None:
        def check(ok: bool, message: str) -> None:
            if not ok:
                raise ValueError(message)

        check(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        check(self.batch_size >= 1, f"batch_size must be >= 1, got {self.batch_size}")
        check(self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        check(self.schedule in SCHEDULES, f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        check(self.monitor in MONITORS, f"monitor must be one of {MONITORS}, got {self.monitor!r}")
        check(self.lr > 0, f"lr must be > 0, got {self.lr}")
        check(0 <= self.label_smoothing < 1, f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        check(0 <= self.freeze_epochs, f"freeze_epochs must be >= 0, got {self.freeze_epochs}")
        check(self.backbone_lr_scale >= 0, f"backbone_lr_scale must be >= 0, got {self.backbone_lr_scale}")
        check(self.grad_clip is None or self.grad_clip > 0, f"grad_clip must be > 0 or None, got {self.grad_clip}")
        check(self.class_weights is None or self.class_weights == "balanced" or not isinstance(self.class_weights, str),
              f"class_weights must be None, 'balanced' or a list of numbers, got {self.class_weights!r}")


@dataclass
class FitResult:
    """What ``fit`` returns. The model itself was trained in place."""

    history: pd.DataFrame
    run_dir: Path | None
    best_epoch: int | None = None  # 1-based; None without validation data
    best_value: float | None = None
    monitor: str = "val_acc"
    stopped_early: bool = False
    interrupted: bool = False
    seconds: float = 0.0
    config: TrainConfig = field(default_factory=TrainConfig)

    @property
    def last_path(self) -> Path | None:
        return self.run_dir / "last.pt" if self.run_dir else None

    @property
    def best_path(self) -> Path | None:
        """``best.pt`` (the best validation epoch), or ``last.pt`` when there was no validation."""
        if self.run_dir is None:
            return None
        best = self.run_dir / "best.pt"
        return best if best.is_file() else self.last_path


def make_config(config: TrainConfig | None = None, **options: Any) -> TrainConfig:
    """``config`` (or the defaults) with ``options`` replaced; unknown names are a clear error."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"unknown training option(s) {unknown}; the options are: {', '.join(sorted(known))}")
    config = replace(config or TrainConfig(), **options)
    config.validate()
    return config


# ---------------------------------------------------------------------------------------
# The pieces of an epoch


def model_output(model: nn.Module, inputs: Any) -> Any:
    """The model's output for one batch of inputs: a tensor, or a tuple of tensors for multi-view models."""
    return model(*inputs) if isinstance(inputs, (tuple, list)) else model(inputs)


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Logits for one batch of inputs."""
    return logits_of(model_output(model, inputs))


def training_loss(model: nn.Module, output: Any, labels: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
    """The criterion on the logits, plus the model's own ``auxiliary_loss(output, labels, criterion)``
    when it has one (the multi-view networks' per-view losses)."""
    loss = criterion(logits_of(output).float(), labels)
    auxiliary = getattr(unwrap(model), "auxiliary_loss", None)
    return loss if auxiliary is None else loss + auxiliary(output, labels, criterion)


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
        raise ValueError(f"class_weights must hold {num_classes} non-negative numbers (one per class), got {config.class_weights}")
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
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total)
    if config.schedule == "plateau":
        mode = "min" if "loss" in config.monitor else "max"
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode=mode, factor=0.1, patience=2)
    return None


def _grad_scaler(enabled: bool):
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # torch < 2.3


def train_one_epoch(model, loader, criterion, optimizer, scheduler, scaler, device, config: TrainConfig, bar=None) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss, accuracy) over all processes."""
    model.train()
    frozen_batchnorm_to_eval(model)
    use_amp = scaler.is_enabled()
    total_loss, correct, seen = 0.0, 0.0, 0.0
    for batch in loader:
        inputs, labels = move_to(batch[0], device), batch[1].to(device)
        with autocast(device, use_amp):
            output = model_output(model, inputs)
            logits, loss = logits_of(output), training_loss(model, output, labels, criterion)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if config.grad_clip is not None:
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_([p for g in optimizer.param_groups for p in g["params"]], config.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        if scheduler is not None and not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step()
        n = labels.shape[0]
        total_loss += loss.item() * n
        correct += (logits.argmax(1) == labels).sum().item()
        seen += n
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{total_loss / seen:.3f}", acc=f"{correct / seen:.3f}", refresh=False)
    total_loss, correct, seen = ddp.all_reduce_sum([total_loss, correct, seen], device)
    return total_loss / max(seen, 1), correct / max(seen, 1)


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``loader``, summed over all processes.
    Plain cross-entropy, whatever the training loss, so that runs compare."""
    total_loss, correct, seen = 0.0, 0.0, 0.0
    with eval_mode(model):
        for batch in loader:
            inputs, labels = move_to(batch[0], device), batch[1].to(device)
            logits = forward(model, inputs).float()
            total_loss += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += labels.shape[0]
    total_loss, correct, seen = ddp.all_reduce_sum([total_loss, correct, seen], device)
    return total_loss / max(seen, 1), correct / max(seen, 1)


# ---------------------------------------------------------------------------------------
# fit


def _stages(config: TrainConfig) -> list[tuple[str, int, int]]:
    """(name, first epoch, end epoch) of each stage: "head" (backbone frozen), then "all"."""
    if config.freeze_epochs == 0:
        return [("all", 0, config.epochs)]
    if config.freeze_epochs >= config.epochs:
        return [("head", 0, config.epochs)]
    return [("head", 0, config.freeze_epochs), ("all", config.freeze_epochs, config.epochs)]


def _loader(dataset: Dataset, config: TrainConfig, train: bool, generator: torch.Generator | None) -> DataLoader:
    world, rank = ddp.world_size(), ddp.rank()
    if train:
        if world > 1:
            sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed)
        else:
            sampler = RandomSampler(dataset, generator=generator)
    else:
        sampler = ddp.ShardSampler(len(dataset), rank, world)
    # A last batch of one breaks BatchNorm in training; dropping one sample of an epoch is harmless.
    per_process = math.ceil(len(dataset) / world) if train else 0
    drop_last = train and per_process % config.batch_size == 1 and per_process > 1
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=config.num_workers, worker_init_fn=seed_worker, generator=generator,
                      persistent_workers=False, pin_memory=False)


def _dataset_info(dataset: Dataset, preprocessing: dict | None) -> tuple[list[str], dict]:
    classes = list(getattr(dataset, "classes", []) or [])
    info = {"image_size": getattr(dataset, "image_size", None), "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if getattr(dataset, "views", None) is not None:
        info["views"] = list(dataset.views)  # a multi-view dataset: whole fish, in this view order
    frame = getattr(dataset, "frame", None)
    if frame is not None and "view" in frame.columns and frame["view"].nunique() == 1 and frame["view"].iat[0]:
        info["view"] = str(frame["view"].iat[0])  # the one view a single-view model was trained on
    index = getattr(dataset, "index", None)
    if index is not None:
        info["data_root"] = str(index.root)
        info["layout"] = index.layout
        info["scan"] = dict(getattr(index, "options", {}) or {})  # how the folder was read, to read it alike
    info.update(preprocessing or {})
    return classes, info


def _open_tensorboard(run_dir: Path | None, enabled: bool):
    if not enabled:
        return None
    if run_dir is None:
        raise ValueError("tensorboard=True needs a run_dir to write its logs to")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError("tensorboard=True needs the tensorboard package: pip install tensorboard") from error
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _head_lr(optimizer: torch.optim.Optimizer) -> float:
    for group in optimizer.param_groups:
        if group.get("name", "").startswith("head"):
            return group["lr"]
    return optimizer.param_groups[-1]["lr"]


def fit(
    model: nn.Module,
    train_data: Dataset,
    val_data: Dataset | None = None,
    *,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    config: TrainConfig | None = None,
    preprocessing: dict | None = None,
    callback: Callable[[dict], None] | None = None,
    **options: Any,
) -> FitResult:
    """Train ``model`` on ``train_data``, validating on ``val_data`` after every epoch.

    Options are the fields of ``TrainConfig`` (``epochs``, ``lr``, ``optimizer``, ``schedule``,
    ``freeze_epochs``, ``patience``, ...). With ``run_dir``, ``last.pt`` and ``best.pt`` are
    written atomically every epoch (by rank 0 under torchrun) with ``history.csv``;
    ``resume=True`` continues from ``last.pt``; an existing run is never replaced unless
    ``overwrite=True``, which removes all of its outputs (checkpoints, history, TensorBoard logs,
    ``eval-*`` reports) and says so. Ctrl-C stops cleanly: the last checkpoint and the history are kept.
    ``callback(row)`` is called after each epoch with its history row. The model ends in eval
    mode, with the best epoch's weights when ``restore_best`` and there is validation data.
    """
    config = make_config(config, **options)
    if config.patience is not None and val_data is None:
        raise ValueError("early stopping (patience=...) needs validation data: pass val_data")
    if config.schedule == "plateau" and val_data is None:
        raise ValueError("schedule='plateau' follows a validation metric: pass val_data")
    if len(train_data) == 0:
        raise ValueError("train_data is empty; check the split and view you selected")
    run_dir = Path(run_dir) if run_dir is not None else None
    device = pick_device(config.device)
    main = ddp.is_main_process()
    deterministic_on_entry = torch.are_deterministic_algorithms_enabled()
    seed_everything(config.seed, config.deterministic)
    inner = unwrap(model).to(device)
    classes, info = _dataset_info(train_data, preprocessing)
    warn_if_other_size(inner, info["image_size"])
    num_classes = getattr(inner, "fishcam", {}).get("num_classes") or len(classes)
    if classes and len(classes) != num_classes:
        raise ValueError(f"the model predicts {num_classes} classes but the training data has {len(classes)} "
                         f"({', '.join(classes)}); build the model with num_classes={len(classes)}")
    weights = class_weights_for(config, list(getattr(train_data, "targets", [])), num_classes)
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else weights.to(device), label_smoothing=config.label_smoothing)

    history: list[dict] = []
    stopper = EarlyStopping(config.monitor, patience=config.patience, min_delta=config.min_delta)
    start_epoch, best_state, stopped_early = 0, None, False
    saved = _prepare_run_dir(run_dir, resume, overwrite, main, config.progress)
    if saved is not None:
        _check_same_run(saved, config, run_dir)
        load_model_state(inner, saved, str(run_dir / "last.pt"))
        history, start_epoch, stopped_early = list(saved["history"]), int(saved["epoch"]), bool(saved["stopped_early"])
        stopper.load_state_dict(saved["stopper"])
        if (run_dir / "best.pt").is_file():
            best_state = read_checkpoint(run_dir / "best.pt")["model_state"]
        if main and config.progress:
            print(f"resuming {run_dir} after epoch {start_epoch} of {config.epochs}")

    generator = torch.Generator()
    train_loader = _loader(train_data, config, True, generator)
    val_loader = _loader(val_data, config, False, None) if val_data is not None else None
    writer = _open_tensorboard(run_dir, config.tensorboard and main)
    use_amp = config.amp and device.type == "cuda"
    trainable_on_entry = [p.requires_grad for p in inner.parameters()]
    fields_common = {"classes": classes, "preprocessing": info, "train_config": asdict(config)}
    started, interrupted, net = time.perf_counter(), False, None
    try:
        for stage, first, end in _stages(config):
            if end <= start_epoch or stopped_early:
                continue
            if config.freeze_epochs > 0:
                freeze_backbone(inner) if stage == "head" else unfreeze(inner)
            backbone_lr = config.lr * (config.backbone_lr_scale if stage == "all" else 1.0)
            optimizer = make_optimizer(config, parameter_groups(inner, config.lr, backbone_lr, config.weight_decay))
            scheduler = make_scheduler(config, optimizer, end - first, len(train_loader))
            scaler = _grad_scaler(use_amp)
            if saved is not None and saved["stage"] == stage and first <= start_epoch < end:
                optimizer.load_state_dict(saved["optimizer_state"])
                if scheduler is not None:
                    scheduler.load_state_dict(saved["scheduler_state"])
                scaler.load_state_dict(saved["scaler_state"])
            net = None  # the previous stage's DDP wrapper must go before a new one hooks the parameters
            net = _wrap_ddp(inner, device) if ddp.is_distributed() else inner
            for epoch in range(max(first, start_epoch), end):
                row = _run_epoch(net, inner, epoch, stage, config, train_loader, val_loader, generator,
                                 criterion, optimizer, scheduler, scaler, device)
                history.append(row)
                improved = val_loader is not None and stopper.step(row[config.monitor], epoch + 1)
                if improved and config.restore_best:
                    best_state = {k: v.detach().cpu().clone() for k, v in inner.state_dict().items()}
                stopped_early = stopper.should_stop
                if main and run_dir is not None:
                    state = {**fields_common, "epoch": epoch + 1, "stage": stage, "history": history,
                             "optimizer_state": optimizer.state_dict(),
                             "scheduler_state": scheduler.state_dict() if scheduler is not None else {},
                             "scaler_state": scaler.state_dict(), "stopper": stopper.state_dict(),
                             "best": {"monitor": config.monitor, "value": stopper.best, "epoch": stopper.best_epoch},
                             "stopped_early": stopped_early, "finished": stopped_early or epoch + 1 == config.epochs,
                             "world_size": ddp.world_size()}
                    if improved:
                        save_checkpoint(run_dir / "best.pt", inner, **state)
                    save_checkpoint(run_dir / "last.pt", inner, **state)
                    _write_history(run_dir, history)
                if writer is not None:
                    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
                        if row.get(key) is not None and not math.isnan(row[key]):
                            writer.add_scalar(key, row[key], epoch + 1)
                ddp.barrier()
                if callback is not None:
                    callback(row)
                if stopped_early:
                    if main and config.progress:
                        print(f"early stopping after epoch {epoch + 1}: no {config.monitor} improvement for "
                              f"{config.patience} epochs (best {stopper.best:.4f} at epoch {stopper.best_epoch})")
                    break
    except KeyboardInterrupt:
        interrupted = True
        if main:
            where = f"; the last checkpoint is {run_dir / 'last.pt'} ({option('resume')} continues)" if run_dir else ""
            print(f"interrupted after {len(history)} completed epoch(s){where}")
    finally:
        net = None
        for p, flag in zip(inner.parameters(), trainable_on_entry):
            p.requires_grad_(flag)
        if writer is not None:
            writer.close()
        torch.use_deterministic_algorithms(deterministic_on_entry)
    if best_state is not None and config.restore_best and val_loader is not None and not interrupted:
        inner.load_state_dict(best_state)
    inner.eval()
    has_best = val_loader is not None and stopper.best_epoch > 0
    return FitResult(
        history=history_frame(history), run_dir=run_dir, best_epoch=stopper.best_epoch if has_best else None,
        best_value=stopper.best if has_best else None, monitor=config.monitor, stopped_early=stopped_early,
        interrupted=interrupted, seconds=time.perf_counter() - started, config=config,
    )


# What a run leaves in its folder: fit's checkpoints and history, and the reports written beside them.
RUN_OUTPUTS = ("best.pt", "last.pt", "history.csv", "tensorboard", "eval-*")


def check_run_dir(run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> list[Path]:
    """What a new run in ``run_dir`` would remove: nothing when it resumes from ``last.pt``; an
    earlier run's outputs (checkpoints, history, TensorBoard logs, ``eval-*`` reports) with
    ``overwrite``. Without it, such outputs raise ``FileExistsError``, which says what to pass."""
    run_dir = Path(run_dir)
    if resume and (run_dir / "last.pt").is_file():
        return []
    old = earlier_outputs(run_dir, RUN_OUTPUTS)
    if old and not overwrite:
        if resume:
            raise FileExistsError(f"{run_dir} has no last.pt to resume from, but holds an earlier run's {describe(old)}; "
                                  f"pass {option('overwrite')} to replace them, or another {option_name('run_dir')}")
        raise FileExistsError(f"{run_dir} already holds a training run ({describe(old)}); pass {option('resume')} to "
                              f"continue it, {option('overwrite')} to start it again, or another {option_name('run_dir')}")
    return old


def _prepare_run_dir(run_dir: Path | None, resume: bool, overwrite: bool, main: bool, progress: bool) -> dict | None:
    """The checkpoint to resume from (None for a new run), after making ``run_dir`` safe to start
    in (``check_run_dir``): the earlier outputs it allows to replace are removed and named, and
    temporary files of saves that were killed are cleared."""
    if run_dir is None:
        return None
    if main:
        stale = [t for name in ("best.pt", "last.pt", "history.csv") for t in remove_abandoned(run_dir, f"{name}.*")]
        if stale:
            print(f"removed {len(stale)} temporary file(s) in {run_dir} left by an interrupted save")
    old = check_run_dir(run_dir, resume, overwrite)
    if resume and (run_dir / "last.pt").is_file():
        return read_checkpoint(run_dir / "last.pt")
    if resume and main and progress:
        print(f"nothing to resume in {run_dir}; starting a new run")
    if old and main:
        names = describe(old)
        remove_all(old)
        print(f"{option('overwrite')}: removed the earlier run's {names} from {run_dir}")
    return None


def _run_epoch(net, inner, epoch, stage, config, train_loader, val_loader, generator, criterion, optimizer,
               scheduler, scaler, device) -> dict:
    seed = epoch_seed(config.seed, epoch, ddp.rank())
    generator.manual_seed(seed)
    seed_everything(seed)  # augmentation and dropout of this epoch
    if isinstance(train_loader.sampler, DistributedSampler):
        train_loader.sampler.set_epoch(epoch)
    started = time.perf_counter()
    bar = tqdm(total=len(train_loader), desc=f"epoch {epoch + 1}/{config.epochs} [{stage}]",
               disable=not (config.progress and ddp.is_main_process()), leave=True)
    try:
        train_loss, train_acc = train_one_epoch(net, train_loader, criterion, optimizer, scheduler, scaler, device, config, bar)
        val_loss = val_acc = float("nan")
        if val_loader is not None:
            _sync_buffers(inner)
            val_loss, val_acc = evaluate(inner, val_loader, device)
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{train_acc:.3f}", val_loss=f"{val_loss:.3f}", val_acc=f"{val_acc:.3f}")
        else:
            bar.set_postfix(loss=f"{train_loss:.3f}", acc=f"{train_acc:.3f}")
    finally:
        bar.close()
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(val_acc if config.monitor == "val_acc" else val_loss)
    return {"epoch": epoch + 1, "stage": stage, "lr": _head_lr(optimizer), "train_loss": train_loss,
            "train_acc": train_acc, "val_loss": val_loss, "val_acc": val_acc, "seconds": time.perf_counter() - started}


def _wrap_ddp(inner: nn.Module, device: torch.device) -> nn.Module:
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(inner, device_ids=ids)


def _sync_buffers(inner: nn.Module) -> None:
    """Give every process rank 0's BatchNorm statistics, so that all evaluate the model rank 0 saves."""
    if ddp.is_distributed():
        for buffer in inner.buffers():
            torch.distributed.broadcast(buffer, src=0)


def _check_same_run(saved: dict, config: TrainConfig, run_dir: Path) -> None:
    old, new = saved["train_config"], asdict(config)
    changed = [k for k in new if k not in _RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} → {new[k]!r}" for k in changed)
        raise ValueError(f"cannot resume {run_dir} with other settings ({detail}); resume with the run's settings, "
                         f"or start a new run (another {option_name('run_dir')}, or {option('overwrite')})")


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The history rows as a DataFrame: epoch, stage, lr, train_loss, train_acc, val_loss, val_acc, seconds."""
    columns = ["epoch", "stage", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    return pd.DataFrame(history, columns=columns)


def _write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_write(run_dir / "history.csv", "w", newline="") as handle:
        history_frame(history).to_csv(handle, index=False)
