"""A training run's folder: what a run leaves there, checking it before a run starts, preparing it
(resuming, or clearing an earlier run when asked), saving every epoch atomically, and the history.

``fit`` calls these in order; ``fishcam train`` calls ``check_run_dir`` before its minutes of data loading.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import option, option_name
from ..files import atomic_write, describe, earlier_outputs, hold_folder, remove_abandoned, remove_all
from . import distributed as ddp
from .checkpoints import read_checkpoint, save_checkpoint
from .config import TrainConfig

# What a run leaves in its folder: fit's checkpoints and history, and the reports written beside them.
RUN_OUTPUTS = ("best.pt", "last.pt", "history.csv", "tensorboard", "eval-*")


# Options that may change when a run is resumed: where and how it runs, not what it computes.
_RESUMABLE_CHANGES = {"device", "num_workers", "progress", "tensorboard"}


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
            raise FileExistsError(f"{run_dir} has no last.pt to resume from, but holds an earlier run's "
                                  f"{describe(old)}; pass {option('overwrite')} to replace them, "
                                  f"or another {option_name('run_dir')}")
        raise FileExistsError(f"{run_dir} already holds a training run ({describe(old)}); pass {option('resume')} to "
                              f"continue it, {option('overwrite')} to start it again, "
                              f"or another {option_name('run_dir')}")
    return old


def hold_run_dir(run_dir: str | Path | None):
    """The run folder held for this process while it trains (by rank 0 under torchrun): a second
    ``fit`` or ``fishcam train`` into it is refused by name instead of mixing its files in."""
    if run_dir is None or not ddp.is_main_process():
        return contextlib.nullcontext()
    return hold_folder(run_dir, "a training run")


def prepare_run_dir(run_dir: Path | None, resume: bool, overwrite: bool, main: bool, progress: bool) -> dict | None:
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


def check_same_run(saved: dict, config: TrainConfig, run_dir: Path) -> None:
    old, new = saved["train_config"], asdict(config)
    changed = [k for k in new if k not in _RESUMABLE_CHANGES and old.get(k) != new[k]]
    if changed:
        detail = ", ".join(f"{k}: {old.get(k)!r} → {new[k]!r}" for k in changed)
        raise ValueError(f"cannot resume {run_dir} with other settings ({detail}); resume with the run's settings, "
                         f"or start a new run (another {option_name('run_dir')}, or {option('overwrite')})")


def check_same_data(saved: dict, identity: dict, run_dir: Path) -> None:
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


def save_epoch(run: Any, epoch: int, stage: str, steps: Any, improved: bool) -> None:
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
    write_history(run.run_dir, run.history)


def log_epoch(run: Any, row: dict, epoch: int) -> None:
    """The epoch's row in TensorBoard, when the run writes there."""
    if run.writer is not None:
        for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
            if row.get(key) is not None and not math.isnan(row[key]):
                run.writer.add_scalar(key, row[key], epoch + 1)


def open_tensorboard(run_dir: Path | None, enabled: bool):
    if not enabled:
        return None
    if run_dir is None:
        raise ValueError(f"{option('tensorboard')} needs a run folder ({option_name('run_dir')}) to write its logs to")
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ImportError(f"{option('tensorboard')} needs the tensorboard package: pip install tensorboard") from error
    return SummaryWriter(log_dir=str(run_dir / "tensorboard"))


def history_frame(history: list[dict]) -> pd.DataFrame:
    """The history rows as a DataFrame: epoch, stage, lr, train_loss, train_acc, val_loss, val_acc, seconds."""
    columns = ["epoch", "stage", "lr", "train_loss", "train_acc", "val_loss", "val_acc", "seconds"]
    return pd.DataFrame(history, columns=columns)


def write_history(run_dir: Path, history: list[dict]) -> None:
    with atomic_write(run_dir / "history.csv", "w", newline="") as handle:
        history_frame(history).to_csv(handle, index=False)
