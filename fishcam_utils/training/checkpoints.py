"""Checkpoints that rebuild their model with no other input, written atomically, read safely.

A checkpoint is a dict of plain types and tensors (so ``torch.load(..., weights_only=True)``
reads it): the model's build arguments and weights, the optimiser, scheduler and AMP scaler
states, the epoch, the history, the class names and the preprocessing settings.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .. import __version__
from ..errors import ArgumentError
from ..files import atomic_write
from ..models.factory import rebuild_model
from ..models.inspection import check_model
from ..runtime import pick_device, unwrap

FORMAT = "fishcam-checkpoint"
VERSION = 1
# What every checkpoint carries (``save_checkpoint`` writes both; model_config is None for a model of one's own).
REQUIRED_FIELDS = ("model_config", "model_state")


def strip_module_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys saved from DataParallel/DDP (``module.layer1...``) or ``torch.compile``
    (``_orig_mod.``) as plain module keys, so they load into an unwrapped model."""
    out = {}
    for key, value in state.items():
        for prefix in ("module.", "_orig_mod."):
            while key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def save_checkpoint(path: str | os.PathLike, model: nn.Module, **fields: Any) -> Path:
    """Write ``model`` (unwrapped, on CPU) and ``fields`` to ``path`` atomically: a temporary file
    in the same folder, flushed to disk, then renamed over ``path``. An interrupted save leaves
    the previous checkpoint intact; a full disk raises an ``OSError`` naming the file. Returns the path."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"path must be a file name (a str or Path), got {type(path).__name__}: "
                            f"save_checkpoint(path, model, ...) takes the path first")
    check_model(model)
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give the checkpoint a file name in it, e.g. {path / 'best.pt'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise NotADirectoryError(f"{parent} is a file, so {path} cannot be written below it: "
                                         f"choose another path")
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    inner = unwrap(model)
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "fishcam_version": __version__,
        "model_config": getattr(inner, "fishcam", None),  # None for a model not built by build_model
        "model_state": {k: v.detach().cpu() for k, v in inner.state_dict().items()},
        **fields,
    }
    # Serialised in memory first: torch.save into a file on a full disk fails with an opaque RuntimeError,
    # while a plain write raises OSError(ENOSPC) with the file's name.
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    with atomic_write(path) as handle:
        handle.write(buffer.getbuffer())
    return path


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """The checkpoint dict at ``path``, read with ``weights_only=True``; a clear error if the file
    is missing, truncated or not a FishCAM checkpoint."""
    if not isinstance(path, (str, os.PathLike)):
        raise ArgumentError(f"path must be the file name of a checkpoint (a str or Path), got {type(path).__name__}; "
                            f"e.g. load_checkpoint('checkpoints/fishresnet-side/best.pt')")
    path = Path(path).expanduser()
    if path.is_dir():
        inside = [p.name for p in sorted(path.glob("*.pt"))]
        hint = f"; it holds {', '.join(inside)}" if inside else "; it holds no .pt file"
        raise IsADirectoryError(f"{path} is a folder, not a checkpoint: "
                                f"pass the file, e.g. {path / 'best.pt'}{hint}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; "
                                f"train a model first (fit(..., run_dir=...) or `fishcam train`)")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        # Not torch's advice to pass weights_only=False: a file that needs it is not one of ours, and unsafe.
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        detail = "" if "weights_only" in first or "Weights only" in first else f" ({first[:200]})"
        raise ValueError(f"cannot read {path} as a checkpoint{detail}: the file is truncated, or not a checkpoint "
                         f"written by fit or fishcam train; use the run's other checkpoint (best.pt / last.pt) or "
                         f"train again.") from error
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise ValueError(f"{path} is not a FishCAM checkpoint (no 'format': {FORMAT!r}); for a plain state dict, "
                         f"use build_model(..., weights=path)")
    if checkpoint.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer fishcam_utils (format version {checkpoint['version']}); "
                         f"upgrade the package")
    missing = [k for k in REQUIRED_FIELDS if k not in checkpoint]
    if missing or not isinstance(checkpoint["model_state"], dict):
        what = (f"has no {' and no '.join(repr(k) for k in missing)}" if missing
                else "has no weights ('model_state' is no dict)")
        raise ValueError(f"{path} claims to be a FishCAM checkpoint but {what}: it was changed or written by another "
                         f"program. Use the run's other checkpoint (best.pt / last.pt), or train again.")
    return checkpoint


def check_compatible(model: nn.Module, checkpoint: dict[str, Any], source: str = "the checkpoint") -> None:
    """Raise ``ValueError`` if ``checkpoint`` was saved from another architecture or class count."""
    saved, own = checkpoint["model_config"], getattr(unwrap(model), "fishcam", None)
    if saved is None or own is None:
        # Models of one's own carry no build arguments: compare their tensors' names and shapes.
        theirs = {k: tuple(v.shape) for k, v in strip_module_prefix(checkpoint["model_state"]).items()}
        mine = {k: tuple(v.shape) for k, v in unwrap(model).state_dict().items()}
        if theirs != mine:
            odd = sorted(set(theirs.items()) ^ set(mine.items()))[:3]
            raise ValueError(f"{source} does not fit this model: its tensors differ in names or shapes (e.g. {odd}); "
                             f"load it into the architecture it was saved from")
        return
    if saved != own:
        differences = ", ".join(f"{k}: saved {saved.get(k)!r}, model {own.get(k)!r}"
                                for k in sorted(set(saved) | set(own)) if saved.get(k) != own.get(k))
        raise ValueError(f"{source} does not fit this model ({differences}). Load it with load_checkpoint(path), "
                         f"which rebuilds the saved architecture, or train a new run for this model.")


def load_model_state(model: nn.Module, checkpoint: dict[str, Any] | str | os.PathLike,
                     source: str = "the checkpoint") -> nn.Module:
    """Copy the checkpoint's weights (a checkpoint dict, or the path of one) into ``model`` after
    checking it has the same architecture."""
    check_model(model)
    if isinstance(checkpoint, (str, os.PathLike)):
        checkpoint, source = read_checkpoint(checkpoint), str(checkpoint)
    if not isinstance(checkpoint, dict):
        raise ArgumentError(f"checkpoint must be a checkpoint dict (read_checkpoint(path)) or its path, got "
                            f"{type(checkpoint).__name__}")
    check_compatible(model, checkpoint, source)
    try:
        unwrap(model).load_state_dict(strip_module_prefix(checkpoint["model_state"]))
    except RuntimeError as error:  # the recorded build arguments and the weights disagree
        detail = str(error).strip().splitlines()
        raise ValueError(f"{source}: its weights do not fit the architecture it records "
                         f"({' '.join(detail[:2])[:300]}). "
                         "The file was changed, or written by another program: use the run's other checkpoint "
                         "(best.pt / last.pt), or train again.") from None
    return model


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved at ``path`` and load its weights: returns ``(model, checkpoint)``,
    the model in eval mode on ``device``. ``checkpoint["classes"]``, ``["preprocessing"]`` and
    ``["history"]`` say what it was trained on and how."""
    device = pick_device(device)  # "gpu", or CUDA on a machine without one, said before the file is read
    checkpoint = read_checkpoint(path)
    if checkpoint["model_config"] is None:
        raise ValueError(f"{path} holds a model not built by build_model, so it cannot be rebuilt by name; create the "
                         f"model yourself and call load_model_state(model, read_checkpoint(path))")
    try:
        model = rebuild_model(checkpoint["model_config"])
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path} records a model this version cannot build ({error}); upgrade fishcam_utils, or "
                         f"train again") from None
    load_model_state(model, checkpoint, str(path))
    return model.to(device).eval(), checkpoint
