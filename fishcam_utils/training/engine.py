"""The training engine: one ``fit`` that a notebook calls in one line.

    result = fit(model, train_ds, val_ds, epochs=10, lr=1e-3, run_dir="checkpoints/fishresnet")
    result.history      # one row per epoch: loss, accuracy, learning rate, time

Every option is a field of ``TrainConfig`` with its default in plain sight. Each epoch draws
its shuffling, augmentation and dropout from ``epoch_seed(seed, epoch)``, so a run resumed from
``last.pt`` ends with the same weights as one that never stopped.
"""

from __future__ import annotations

import contextlib
import math
import warnings
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from ..data.introspection import DatasetFacts, data_record, dataset_facts, sample_image_size
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ArgumentError, TrainingDiverged, option, option_name
from ..files import atomic_write, describe, earlier_outputs, hold_folder, remove_abandoned, remove_all
from ..models.factory import unwrap
from ..models.standin import warn_if_other_size
from ..models.inspection import check_model, eval_mode, kind_of, logits_of
from . import distributed as ddp
from .config import TrainConfig, make_config
from .checkpoints import load_model_state, read_checkpoint, save_checkpoint
from .devices import autocast, move_to, pick_device
from .early_stopping import EarlyStopping
from .finetune import freeze_backbone, frozen_batchnorm_to_eval, parameter_groups, unfreeze
from .seeding import epoch_seed, seed_everything, seed_worker

# A cross-entropy this large means the true class gets e^-100 of the probability: no healthy run gets there
# (a uniform guess scores ln(classes), about 2.2 for nine), a diverging learning rate does, with finite numbers.
DIVERGING_LOSS = 100.0

# Options that may change when a run is resumed: where and how it runs, not what it computes.
_RESUMABLE_CHANGES = {"device", "num_workers", "progress", "tensorboard"}


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


def train_one_epoch(model, loader, criterion, optimizer, scheduler, scaler, device, config: TrainConfig, bar=None,
                    epoch: int | None = None) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean loss, accuracy) over all processes. A loss that is not
    a finite number raises ``TrainingDiverged`` before its step spoils the weights."""
    model.train()
    frozen_batchnorm_to_eval(model)
    use_amp = scaler.is_enabled()
    total_loss, correct, seen = 0.0, 0.0, 0.0
    for number, batch in enumerate(loader, 1):
        inputs, labels = move_to(batch[0], device), batch[1].to(device)
        with autocast(device, use_amp):
            output = model_output(model, inputs)
            logits, loss = logits_of(output), training_loss(model, output, labels, criterion)
        if not torch.isfinite(loss):  # .item() below syncs every batch anyway
            raise TrainingDiverged(_divergence(loss, inputs, logits, config, epoch, number, len(loader)))
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


def _divergence(loss: torch.Tensor, inputs: Any, logits: torch.Tensor, config: TrainConfig, epoch: int | None,
                number: int, batches: int) -> str:
    """Where the loss went non-finite, and the likely cause, from what this batch holds."""
    where = (f"epoch {epoch}, " if epoch is not None else "") + f"batch {number} of {batches}"
    tensors = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    if not all(torch.isfinite(t).all() for t in tensors if torch.is_floating_point(t)):
        cause = "the batch's images hold NaN or inf values: check the image files and the transform"
    elif not torch.isfinite(logits).all():
        cause = (f"the model's outputs are no longer finite, so the weights diverged: the learning rate is likely too "
                 f"high ({option('lr', config.lr)}; try a tenth of it), or clip the gradients ({option('grad_clip', 1.0)})")
    else:
        cause = (f"the outputs are finite but the loss is not: check the class weights ({option('class_weights', config.class_weights)}) "
                 f"and the labels")
    return f"the training loss became {loss.item()} at {where}, so training stopped: {cause}."


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``model`` on ``loader``, summed over all processes.
    Plain cross-entropy, whatever the training loss, so that runs compare."""
    if not isinstance(loader, DataLoader):
        raise ArgumentError(f"loader must be a DataLoader, got {type(loader).__name__}; wrap a dataset as "
                            f"DataLoader(dataset, batch_size=64), or use evaluation.predict(model, dataset)")
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


def _dataset_info(dataset: Dataset, facts: DatasetFacts, num_classes: int,
                  preprocessing: dict | None) -> tuple[list[str], dict]:
    """The class names and preprocessing a checkpoint records, read through ``Subset`` and the like:
    names "0".."K-1" and the first sample's size where the dataset does not say them."""
    classes = facts.classes if facts.classes is not None else [str(k) for k in range(num_classes)]
    image_size = facts.image_size if facts.image_size is not None else sample_image_size(dataset)
    info = {"image_size": image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if facts.views is not None:
        info["views"] = list(facts.views)  # a multi-view dataset: whole fish, in this view order
    if facts.view is not None:
        info["view"] = facts.view  # the one view a single-view model was trained on
    if facts.index is not None:
        info["data_root"] = str(facts.index.root)
        info["layout"] = facts.index.layout
        info["scan"] = dict(facts.index.options or {})  # how the folder was read, to read it alike
    info.update(preprocessing or {})
    return classes, info


def _open_tensorboard(run_dir: Path | None, enabled: bool):
    if not enabled:
        return None
    if run_dir is None:
        raise ValueError(f"{option('tensorboard')} needs a run folder ({option_name('run_dir')}) to write its logs to")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(f"{option('tensorboard')} needs the tensorboard package: pip install tensorboard") from error
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def _head_lr(optimizer: torch.optim.Optimizer) -> float:
    for group in optimizer.param_groups:
        if group.get("name", "").startswith("head"):
            return group["lr"]
    return optimizer.param_groups[-1]["lr"]


@dataclass
class _Run:
    """One call of ``fit``: what every epoch reads (model, data, loss, where to save) and what it
    updates (history, early stopping, the best weights)."""

    inner: nn.Module  # the model itself; under torchrun each stage wraps it in DDP
    config: TrainConfig
    device: torch.device
    run_dir: Path | None
    train_loader: DataLoader
    val_loader: DataLoader | None
    generator: torch.Generator  # reseeded every epoch: the order of the batches
    criterion: nn.Module
    saved: dict | None  # the checkpoint resumed from
    checkpoint_fields: dict  # what every checkpoint of this run carries: classes, preprocessing, config
    callback: Callable[[dict], None] | None = None
    writer: Any = None  # TensorBoard's SummaryWriter, when asked for
    main: bool = True  # rank 0 (or not distributed): the process that saves and prints
    history: list[dict] = field(default_factory=list)
    stopper: EarlyStopping | None = None
    start_epoch: int = 0
    best_state: dict | None = None
    stopped_early: bool = False

    def say(self, text: str) -> None:
        if self.main and self.config.progress:
            print(text)


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
    _check_arguments(model, train_data, val_data)
    if resume and run_dir is None:
        raise ValueError(f"{option('resume')} continues the run saved in a run folder: pass its "
                         f"{option_name('run_dir')} too")
    config = make_config(config, **options)
    _check_data(config, train_data, val_data)
    device = pick_device(config.device)  # an unavailable device is said before any global state changes
    with _holding(run_dir):
        return _fit(model, train_data, val_data, config, device, run_dir, resume, overwrite, preprocessing, callback)


def _holding(run_dir: str | Path | None):
    """The run folder held for this process while it trains (by rank 0 under torchrun): a second
    ``fit`` or ``fishcam train`` into it is refused by name instead of mixing its files in."""
    if run_dir is None or not ddp.is_main_process():
        return contextlib.nullcontext()
    return hold_folder(run_dir, "a training run")


def _fit(model: nn.Module, train_data: Dataset, val_data: Dataset | None, config: TrainConfig, device: torch.device,
         run_dir: str | Path | None, resume: bool, overwrite: bool, preprocessing: dict | None,
         callback: Callable[[dict], None] | None) -> FitResult:
    deterministic_on_entry = torch.are_deterministic_algorithms_enabled()
    seed_everything(config.seed, config.deterministic)
    run = _start_or_resume(model, train_data, val_data, config, device, run_dir, resume, overwrite, preprocessing)
    run.callback = callback
    if 0 < config.freeze_epochs >= config.epochs:  # said, as a quick run may mean it; never silent
        run.say(f"{option('freeze_epochs', config.freeze_epochs)} >= {option('epochs', config.epochs)}: only the head "
                f"trains, the backbone never does")
    run.writer = _open_tensorboard(run.run_dir, config.tensorboard and run.main)
    trainable_on_entry = [p.requires_grad for p in run.inner.parameters()]
    started, interrupted = time.perf_counter(), False
    try:
        for stage, first, end in _stages(config):
            if end > run.start_epoch and not run.stopped_early:
                _train_stage(run, stage, first, end)
    except KeyboardInterrupt:
        interrupted = True
        if run.main:
            where = f"; the last checkpoint is {run.run_dir / 'last.pt'} ({option('resume')} continues)" if run.run_dir else ""
            print(f"interrupted after {len(run.history)} completed epoch(s){where}")
    except TrainingDiverged as error:
        kept = (f" {run.run_dir / 'last.pt'} keeps epoch {len(run.history)}, the last good one."
                if run.run_dir is not None and run.history else " Nothing was saved.")
        raise TrainingDiverged(str(error) + kept) from None
    finally:
        for p, flag in zip(run.inner.parameters(), trainable_on_entry):
            p.requires_grad_(flag)
        if run.writer is not None:
            run.writer.close()
        torch.use_deterministic_algorithms(deterministic_on_entry)
    return _finish(run, interrupted, time.perf_counter() - started)


def _check_arguments(model: Any, train_data: Any, val_data: Any) -> None:
    """``fit``'s model and datasets are what it can train with, or an error that says what to pass."""
    check_model(model)
    for name, data in (("train_data", train_data), ("val_data", val_data)):
        if data is None and name == "val_data":
            continue
        if isinstance(data, torch.Tensor):
            raise ArgumentError(f"{name} must be a Dataset of (input, label) samples, got a tensor {tuple(data.shape)}; "
                            f"wrap images and labels as TensorDataset(images, labels), or use make_datasets(...)")
        if isinstance(data, DataLoader):
            raise ArgumentError(f"{name} must be a Dataset, got a DataLoader; pass its dataset ({name}=loader.dataset): "
                            f"fit makes its own loaders (batch_size=..., num_workers=...)")
        if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")) or isinstance(data, (str, bytes, Path)):
            raise ArgumentError(f"{name} must be a Dataset of (input, label) samples, got {kind_of(data)}; for a folder, "
                            f"use make_datasets(folder).train (and .val)")


def _check_data(config: TrainConfig, train_data: Dataset, val_data: Dataset | None) -> None:
    if val_data is not None and len(val_data) == 0:
        raise ValueError("val_data is empty, so there is nothing to pick the best epoch or stop early by; pass a "
                         "split with samples, or val_data=None to train without validation (then best.pt is last.pt)")
    if config.patience is not None and val_data is None:
        raise ValueError(f"early stopping ({option_name('patience')}) needs validation data: pass val_data")
    if config.schedule == "plateau" and val_data is None:
        raise ValueError(f"{option('schedule', 'plateau')} follows a validation metric: pass val_data")
    if len(train_data) == 0:
        raise ValueError("train_data is empty; check the split and view you selected")


def _start_or_resume(model: nn.Module, train_data: Dataset, val_data: Dataset | None, config: TrainConfig,
                     device: torch.device, run_dir: str | Path | None, resume: bool, overwrite: bool,
                     preprocessing: dict | None) -> _Run:
    """The run's pieces, on ``device``; from ``run_dir/last.pt`` when resuming."""
    run_dir = Path(run_dir) if run_dir is not None else None
    inner = unwrap(model).to(device)
    facts = dataset_facts(train_data)
    num_classes = _num_classes(inner, facts)
    classes, info = _dataset_info(train_data, facts, num_classes, preprocessing)
    identity = data_record(train_data, facts, info["image_size"])  # a resumed run must train on the same
    warn_if_other_size(inner, info["image_size"])
    main = ddp.is_main_process()
    run = _Run(inner=inner, config=config, device=device, run_dir=run_dir, main=main,
               train_loader=None, val_loader=None, generator=torch.Generator(),
               criterion=_criterion(config, train_data, facts, num_classes, device),
               saved=_prepare_run_dir(run_dir, resume, overwrite, main, config.progress),
               checkpoint_fields={"classes": classes, "preprocessing": info, "train_config": asdict(config),
                                  "data_identity": identity},
               stopper=EarlyStopping(config.monitor, patience=config.patience, min_delta=config.min_delta))
    if run.saved is not None:
        saved = run.saved
        _check_same_run(saved, config, run_dir)
        _check_same_data(saved, identity, run_dir)
        load_model_state(inner, saved, str(run_dir / "last.pt"))
        run.history, run.start_epoch, run.stopped_early = list(saved["history"]), int(saved["epoch"]), bool(saved["stopped_early"])
        run.stopper.load_state_dict(saved["stopper"])
        if (run_dir / "best.pt").is_file():
            run.best_state = read_checkpoint(run_dir / "best.pt")["model_state"]
        run.say(f"resuming {run_dir} after epoch {run.start_epoch} of {config.epochs}")
    run.train_loader = _loader(train_data, config, True, run.generator)
    run.val_loader = _loader(val_data, config, False, None) if val_data is not None else None
    return run


def _num_classes(inner: nn.Module, facts: DatasetFacts) -> int:
    """The model's class count (from its build arguments, else its last layer's outputs), after
    checking that the data's classes and labels fit it."""
    declared, classes = getattr(inner, "fishcam", {}).get("num_classes"), facts.classes
    if classes is not None and len(classes) < 2:
        raise ValueError(f"the training data has one class only ({', '.join(classes)}): a classifier needs at least "
                         f"two; add images of another class")
    if classes and declared and len(classes) != declared:
        raise ValueError(f"the model predicts {declared} classes but the training data has {len(classes)} "
                         f"({', '.join(classes)}); build the model with num_classes={len(classes)}")
    known = declared or len(classes or [])
    num_classes = known or _output_width(inner) or 0
    targets = facts.targets or []
    if targets and known and not 0 <= min(targets) <= max(targets) < num_classes:
        raise ValueError(f"the training labels run from {min(targets)} to {max(targets)}, but the model predicts "
                         f"{num_classes} classes (labels 0 to {num_classes - 1}); build the model with "
                         f"num_classes={max(targets) + 1}, or check the labels")
    return num_classes


def _output_width(inner: nn.Module) -> int | None:
    """The out_features of the model's last Linear layer, or None when it has none."""
    linears = [m for m in inner.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def _criterion(config: TrainConfig, train_data: Dataset, facts: DatasetFacts, num_classes: int,
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


def _train_stage(run: _Run, stage: str, first: int, end: int) -> None:
    """Epochs ``first``..``end - 1`` of one stage ("head": backbone frozen, or "all"), each saved
    and logged; stops early when the stopper says so."""
    config, inner = run.config, run.inner
    if config.freeze_epochs > 0:
        freeze_backbone(inner) if stage == "head" else unfreeze(inner)
    steps = _Steps.make(run, stage, first, end)
    net = _wrap_ddp(inner, run.device) if ddp.is_distributed() else inner
    try:
        for epoch in range(max(first, run.start_epoch), end):
            row = _run_epoch(run, net, epoch, stage, steps)
            improved = _record(run, row)
            if run.main and run.run_dir is not None:
                _save(run, epoch, stage, steps, improved)
            _log(run, row, epoch)
            ddp.barrier()
            if run.callback is not None:
                run.callback(row)
            if run.stopped_early:
                run.say(f"early stopping after epoch {epoch + 1}: no {config.monitor} improvement for "
                        f"{config.patience} epochs (best {run.stopper.best:.4f} at epoch {run.stopper.best_epoch})")
                break
    finally:
        del net  # a stage's DDP wrapper must go before the next one hooks the parameters


@dataclass
class _Steps:
    """What takes the steps of one stage: the optimiser, its schedule and the AMP scaler."""

    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Any

    @classmethod
    def make(cls, run: _Run, stage: str, first: int, end: int) -> _Steps:
        """Fresh for the stage, or as saved when the run resumes inside it."""
        config = run.config
        backbone_lr = config.lr * (config.backbone_lr_scale if stage == "all" else 1.0)
        optimizer = make_optimizer(config, parameter_groups(run.inner, config.lr, backbone_lr, config.weight_decay))
        steps = cls(optimizer, make_scheduler(config, optimizer, end - first, len(run.train_loader)),
                    _grad_scaler(config.amp and run.device.type == "cuda"))
        saved = run.saved
        if saved is not None and saved["stage"] == stage and first <= run.start_epoch < end:
            steps.optimizer.load_state_dict(saved["optimizer_state"])
            if steps.scheduler is not None:
                steps.scheduler.load_state_dict(saved["scheduler_state"])
            steps.scaler.load_state_dict(saved["scaler_state"])
        return steps


def _record(run: _Run, row: dict) -> bool:
    """Add the epoch's row to the history and tell the stopper; True when validation improved."""
    run.history.append(row)
    improved = run.val_loader is not None and run.stopper.step(row[run.config.monitor], row["epoch"])
    if improved and run.config.restore_best:
        run.best_state = {k: v.detach().cpu().clone() for k, v in run.inner.state_dict().items()}
    run.stopped_early = run.stopper.should_stop
    return improved


def _save(run: _Run, epoch: int, stage: str, steps: _Steps, improved: bool) -> None:
    """``last.pt`` (and ``best.pt`` when validation improved) and ``history.csv``, atomically."""
    stopper = run.stopper
    state = {**run.checkpoint_fields, "epoch": epoch + 1, "stage": stage, "history": run.history,
             "optimizer_state": steps.optimizer.state_dict(),
             "scheduler_state": steps.scheduler.state_dict() if steps.scheduler is not None else {},
             "scaler_state": steps.scaler.state_dict(), "stopper": stopper.state_dict(),
             "best": {"monitor": run.config.monitor, "value": stopper.best, "epoch": stopper.best_epoch},
             "stopped_early": run.stopped_early, "finished": run.stopped_early or epoch + 1 == run.config.epochs,
             "world_size": ddp.world_size()}
    if improved:
        save_checkpoint(run.run_dir / "best.pt", run.inner, **state)
    save_checkpoint(run.run_dir / "last.pt", run.inner, **state)
    _write_history(run.run_dir, run.history)


def _log(run: _Run, row: dict, epoch: int) -> None:
    if run.writer is not None:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            if row.get(key) is not None and not math.isnan(row[key]):
                run.writer.add_scalar(key, row[key], epoch + 1)


def _finish(run: _Run, interrupted: bool, seconds: float) -> FitResult:
    """The best weights back in the model (unless interrupted), eval mode, and the result."""
    validated = run.val_loader is not None
    if run.best_state is not None and run.config.restore_best and validated and not interrupted:
        run.inner.load_state_dict(run.best_state)
    run.inner.eval()
    stopper = run.stopper
    has_best = validated and stopper.best_epoch > 0
    return FitResult(
        history=history_frame(run.history), run_dir=run.run_dir, best_epoch=stopper.best_epoch if has_best else None,
        best_value=stopper.best if has_best else None, monitor=run.config.monitor, stopped_early=run.stopped_early,
        interrupted=interrupted, seconds=seconds, config=run.config,
    )


# What a run leaves in its folder: fit's checkpoints and history, and the reports written beside them.
RUN_OUTPUTS = ("best.pt", "last.pt", "history.csv", "tensorboard", "eval-*")


def check_run_dir(run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> list[Path]:
    """What a new run in ``run_dir`` would remove: nothing when it resumes from ``last.pt``; an
    earlier run's outputs (checkpoints, history, TensorBoard logs, ``eval-*`` reports) with
    ``overwrite``. Without it, such outputs raise ``FileExistsError``, which says what to pass."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a run folder: choose another {option_name('run_dir')}")
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
    if resume and main:  # said even without progress bars: the user asked for something else
        print(f"nothing to resume in {run_dir} (no last.pt); starting a new run")
    if old and main:
        names = describe(old)
        remove_all(old)
        print(f"{option('overwrite')}: removed the earlier run's {names} from {run_dir}")
    return None


def _run_epoch(run: _Run, net: nn.Module, epoch: int, stage: str, steps: _Steps) -> dict:
    """Train one epoch with its own seed, then validate; returns the epoch's history row."""
    config, loader = run.config, run.train_loader
    seed = epoch_seed(config.seed, epoch, ddp.rank())
    run.generator.manual_seed(seed)
    seed_everything(seed)  # augmentation and dropout of this epoch
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)
    started = time.perf_counter()
    bar = tqdm(total=len(loader), desc=f"epoch {epoch + 1}/{config.epochs} [{stage}]",
               disable=not (config.progress and run.main), leave=True)
    try:
        train_loss, train_acc = train_one_epoch(net, loader, run.criterion, steps.optimizer, steps.scheduler,
                                                steps.scaler, run.device, config, bar, epoch=epoch + 1)
        val_loss = val_acc = float("nan")
        if train_loss > DIVERGING_LOSS:
            warnings.warn(f"the training loss is {train_loss:.3g} at epoch {epoch + 1}: the weights are diverging "
                          f"(a guess scores ln(classes), about 2); lower the learning rate ({option('lr', config.lr)}; "
                          f"try a tenth of it) or clip the gradients ({option('grad_clip', 1.0)})", stacklevel=2)
        shown = {"loss": f"{train_loss:.3f}", "acc": f"{train_acc:.3f}"}
        if run.val_loader is not None:
            _sync_buffers(run.inner)
            val_loss, val_acc = evaluate(run.inner, run.val_loader, run.device)
            if not math.isfinite(val_loss):  # finite logits always give a finite cross-entropy
                raise TrainingDiverged(
                    f"the validation loss became {val_loss} after epoch {epoch + 1}, so training stopped: the model's "
                    f"outputs on the validation data are no longer finite, so the weights (or BatchNorm's running "
                    f"statistics) diverged: the learning rate is likely too high ({option('lr', config.lr)}; try a "
                    f"tenth of it), or clip the gradients ({option('grad_clip', 1.0)}).")
            shown.update(val_loss=f"{val_loss:.3f}", val_acc=f"{val_acc:.3f}")
        bar.set_postfix(**shown)
    finally:
        bar.close()
    if isinstance(steps.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        steps.scheduler.step(val_acc if config.monitor == "val_acc" else val_loss)
    return {"epoch": epoch + 1, "stage": stage, "lr": _head_lr(steps.optimizer), "train_loss": train_loss,
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


def _check_same_data(saved: dict, identity: dict, run_dir: Path) -> None:
    """Refuse to resume on other data than the run started with (checkpoints from before this
    was recorded are not checked)."""
    old = saved.get("data_identity")
    if old is None:  # a run started before the record existed: compare what its preprocessing says
        prep = saved.get("preprocessing") or {}
        old = {k: prep.get(k) for k in ("data_root", "view", "image_size") if prep.get(k) is not None}
        identity = {k: identity.get(k) for k in old}
    changed = [k for k in identity if k in old and old[k] != identity[k]]  # what the run recorded
    if not changed:
        return
    names = {"data_root": option_name("data"), "samples": "training samples", "sample_hash": "which samples",
             "dataset_json": "the photos (their dataset.json: drawn again with other settings)"}
    detail = ", ".join(f"{names.get(k, k)}: {old.get(k)!r} → {identity[k]!r}" for k in changed if k != "sample_hash")
    if changed == ["sample_hash"]:
        detail = "the same number of training samples, but other ones"
    flag = option_name("data")
    where = f"{flag} {old.get('data_root')}" if flag.startswith("--") else f"the data in {old.get('data_root')}"
    root = f" ({where})" if old.get("data_root") and "data_root" in changed else ""
    raise ValueError(f"cannot resume {run_dir} on other data than it started with ({detail}); resume with the run's "
                     f"data{root}, or start a new run (another {option_name('run_dir')}, or {option('overwrite')})")


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The history rows as a DataFrame: epoch, stage, lr, train_loss, train_acc, val_loss, val_acc, seconds."""
    columns = ["epoch", "stage", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    return pd.DataFrame(history, columns=columns)


def _write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_write(run_dir / "history.csv", "w", newline="") as handle:
        history_frame(history).to_csv(handle, index=False)
