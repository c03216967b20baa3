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
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from ..data.introspection import data_record, dataset_facts
from ..errors import ArgumentError, TrainingDiverged, option, option_name
from ..models.inspection import eval_mode, logits_of
from ..runtime import autocast, call_model, move_to, pick_device, unwrap
from . import distributed as ddp
from .checkpoints import load_model_state, read_checkpoint
from .config import TrainConfig, make_config
from .early_stopping import EarlyStopping
from .finetune import freeze_backbone, frozen_batchnorm_to_eval, unfreeze
from .inputs import check_arguments, check_data, dataset_info, num_classes_of, warn_if_other_scale
from .optim import Steps, make_criterion
from .run_dir import (
    check_same_data,
    check_same_run,
    history_frame,
    hold_run_dir,
    log_epoch,
    open_tensorboard,
    prepare_run_dir,
    save_epoch,
)
from .seeding import epoch_seed, seed_everything, seed_worker

# A cross-entropy this large means the true class gets e^-100 of the probability: no healthy run gets there
# (a uniform guess scores ln(classes), about 2.2 for nine), a diverging learning rate does, with finite numbers.
DIVERGING_LOSS = 100.0


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


def forward(model: nn.Module, inputs: Any) -> torch.Tensor:
    """Logits for one batch of inputs."""
    return logits_of(call_model(model, inputs))


def training_loss(model: nn.Module, output: Any, labels: torch.Tensor, criterion: nn.Module) -> torch.Tensor:
    """The criterion on the logits, plus the model's own ``auxiliary_loss(output, labels, criterion)``
    when it has one (the multi-view networks' per-view losses)."""
    loss = criterion(logits_of(output).float(), labels)
    auxiliary = getattr(unwrap(model), "auxiliary_loss", None)
    return loss if auxiliary is None else loss + auxiliary(output, labels, criterion)


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
            output = call_model(model, inputs)
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
                 f"high ({option('lr', config.lr)}; try a tenth of it), "
                 f"or clip the gradients ({option('grad_clip', 1.0)})")
    else:
        cause = (f"the outputs are finite but the loss is not: "
                 f"check the class weights ({option('class_weights', config.class_weights)}) "
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
    sampler = ddp.sampler_for(dataset, train, config.seed, generator)
    # A last batch of one breaks BatchNorm in training; dropping one sample of an epoch is harmless.
    per_process = math.ceil(len(dataset) / ddp.world_size()) if train else 0
    drop_last = train and per_process % config.batch_size == 1 and per_process > 1
    return DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=drop_last,
                      num_workers=config.num_workers, worker_init_fn=seed_worker, generator=generator,
                      persistent_workers=False, pin_memory=False)


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
    check_arguments(model, train_data, val_data)
    if resume and run_dir is None:
        raise ValueError(f"{option('resume')} continues the run saved in a run folder: pass its "
                         f"{option_name('run_dir')} too")
    config = make_config(config, **options)
    check_data(config, train_data, val_data)
    device = pick_device(config.device)  # an unavailable device is said before any global state changes
    with hold_run_dir(run_dir):
        return _fit(model, train_data, val_data, config, device, run_dir, resume, overwrite, preprocessing, callback)


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
    run.writer = open_tensorboard(run.run_dir, config.tensorboard and run.main)
    trainable_on_entry = [p.requires_grad for p in run.inner.parameters()]
    started, interrupted = time.perf_counter(), False
    try:
        for stage, first, end in _stages(config):
            if end > run.start_epoch and not run.stopped_early:
                _train_stage(run, stage, first, end)
    except KeyboardInterrupt:
        interrupted = True
        if run.main:
            where = (f"; the last checkpoint is {run.run_dir / 'last.pt'} ({option('resume')} continues)"
                     if run.run_dir else "")
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


def _start_or_resume(model: nn.Module, train_data: Dataset, val_data: Dataset | None, config: TrainConfig,
                     device: torch.device, run_dir: str | Path | None, resume: bool, overwrite: bool,
                     preprocessing: dict | None) -> _Run:
    """The run's pieces, on ``device``; from ``run_dir/last.pt`` when resuming."""
    run_dir = Path(run_dir) if run_dir is not None else None
    inner = unwrap(model).to(device)
    facts = dataset_facts(train_data)
    num_classes = num_classes_of(inner, facts)
    classes, info = dataset_info(train_data, facts, num_classes, preprocessing)
    identity = data_record(train_data, facts, info["image_size"])  # a resumed run must train on the same
    warn_if_other_scale(inner, info["image_size"])
    main = ddp.is_main_process()
    run = _Run(inner=inner, config=config, device=device, run_dir=run_dir, main=main,
               train_loader=None, val_loader=None, generator=torch.Generator(),
               criterion=make_criterion(config, train_data, facts, num_classes, device),
               saved=prepare_run_dir(run_dir, resume, overwrite, main, config.progress),
               checkpoint_fields={"classes": classes, "preprocessing": info, "train_config": asdict(config),
                                  "data_identity": identity},
               stopper=EarlyStopping(config.monitor, patience=config.patience, min_delta=config.min_delta))
    if run.saved is not None:
        saved = run.saved
        check_same_run(saved, config, run_dir)
        check_same_data(saved, identity, run_dir)
        load_model_state(inner, saved, str(run_dir / "last.pt"))
        run.history, run.start_epoch, run.stopped_early = (list(saved["history"]), int(saved["epoch"]),
                                                           bool(saved["stopped_early"]))
        run.stopper.load_state_dict(saved["stopper"])
        if (run_dir / "best.pt").is_file():
            run.best_state = read_checkpoint(run_dir / "best.pt")["model_state"]
        run.say(f"resuming {run_dir} after epoch {run.start_epoch} of {config.epochs}")
    run.train_loader = _loader(train_data, config, True, run.generator)
    run.val_loader = _loader(val_data, config, False, None) if val_data is not None else None
    return run


def _train_stage(run: _Run, stage: str, first: int, end: int) -> None:
    """Epochs ``first``..``end - 1`` of one stage ("head": backbone frozen, or "all"), each saved
    and logged; stops early when the stopper says so."""
    config, inner = run.config, run.inner
    if config.freeze_epochs > 0:
        freeze_backbone(inner) if stage == "head" else unfreeze(inner)
    steps = Steps.make(run, stage, first, end)
    net = ddp.wrap_ddp(inner, run.device) if ddp.is_distributed() else inner
    try:
        for epoch in range(max(first, run.start_epoch), end):
            row = _run_epoch(run, net, epoch, stage, steps)
            improved = _record(run, row)
            if run.main and run.run_dir is not None:
                save_epoch(run, epoch, stage, steps, improved)
            log_epoch(run, row, epoch)
            ddp.barrier()
            if run.callback is not None:
                run.callback(row)
            if run.stopped_early:
                run.say(f"early stopping after epoch {epoch + 1}: no {config.monitor} improvement for "
                        f"{config.patience} epochs (best {run.stopper.best:.4f} at epoch {run.stopper.best_epoch})")
                break
    finally:
        del net  # a stage's DDP wrapper must go before the next one hooks the parameters


def _record(run: _Run, row: dict) -> bool:
    """Add the epoch's row to the history and tell the stopper; True when validation improved."""
    run.history.append(row)
    improved = run.val_loader is not None and run.stopper.step(row[run.config.monitor], row["epoch"])
    if improved and run.config.restore_best:
        run.best_state = {k: v.detach().cpu().clone() for k, v in run.inner.state_dict().items()}
    run.stopped_early = run.stopper.should_stop
    return improved


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


def _run_epoch(run: _Run, net: nn.Module, epoch: int, stage: str, steps: Steps) -> dict:
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
            ddp.sync_buffers(run.inner)
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
