"""The course's pretrained stand-in: backbones pretrained on a *source* task that is not the course's
(the species table ``"source"``: other invented fish, other marks), shipped small with the course so
that transfer learning can be taught offline.

The weights live in ``checkpoints/standin/`` (fp16 where fp16 holds them) beside a ``manifest.json``
that records, for each backbone, the file, its sha256, the build arguments, the recipe and data seed that made
it, and the source task's test accuracy. ``build_model(name, k, weights="course")`` loads them, checking the hash
and reading with ``weights_only=True``. ``fishcam pretrain`` (``standin.pretrain``) makes them again.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import option
from ..files import atomic_write
from ..settings import course_root
from .recipes import STANDIN_RECIPES

MANIFEST = "manifest.json"
STANDIN_ENV = "FISHCAM_STANDIN_DIR"


def standin_dir() -> Path:
    """Where the stand-in weights are: ``$FISHCAM_STANDIN_DIR`` or the course's ``checkpoints/standin``
    (shipped with the repository, so not under ``$FISHCAM_CHECKPOINTS_DIR``)."""
    value = os.environ.get(STANDIN_ENV)
    return Path(value).expanduser() if value else course_root() / "checkpoints" / "standin"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(folder: Path | None = None) -> dict[str, Any]:
    """The manifest of the stand-in folder: backbone name -> its entry; {} when there is none."""
    path = (folder or standin_dir()) / MANIFEST
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON ({error}); restore it from git or run "
                         f"`fishcam pretrain`") from error


def standin_entry(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The manifest entry of backbone ``name``, or a ``FileNotFoundError`` that says how to make it."""
    folder = folder or standin_dir()
    entry = read_manifest(folder).get(name)
    if entry is None and name not in STANDIN_RECIPES:
        raise FileNotFoundError(f"the course has no stand-in for {name}; there are stand-ins for "
                                f"{', '.join(STANDIN_RECIPES)} (STANDIN_RECIPES in fishcam_utils/standin/recipes.py), "
                                f"or use {option('weights', 'imagenet')} where ImageNet weights can be downloaded")
    if entry is None:
        raise FileNotFoundError(f"no course stand-in weights for {name} in {folder}: make them with "
                                f"`fishcam pretrain --backbone {name}` (its recipe is STANDIN_RECIPES[{name!r}] in "
                                f"fishcam_utils/standin/recipes.py), or use {option('weights', 'imagenet')} where "
                                f"ImageNet weights can be downloaded")
    return entry


def standin_state_dict(name: str, folder: Path | None = None) -> dict[str, torch.Tensor]:
    """The stand-in backbone weights of ``name`` as float32 tensors, after checking the file's sha256
    against the manifest; read with ``weights_only=True``."""
    folder = folder or standin_dir()
    entry = standin_entry(name, folder)
    path = folder / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing though {folder / MANIFEST} lists it; restore it from git or "
                                f"run `fishcam pretrain --backbone {name}`")
    actual = sha256_of(path)
    if actual != entry["sha256"]:
        raise ValueError(f"{path} does not match its manifest (sha256 {actual[:12]}... instead of "
                         f"{entry['sha256'][:12]}...): the file is damaged or was replaced; restore it from git or "
                         f"run `fishcam pretrain --backbone {name}`")
    return unshipped(torch.load(path, map_location="cpu", weights_only=True))


# fp16 keeps the files small; a tensor fp16 cannot hold (BatchNorm statistics, ConvNeXt's layer scales
# of 1e-6, values beyond 65504) stays in fp32, a few kilobytes in all. "Cannot hold": rounding to fp16
# moves the tensor by more than 0.1 % of its norm (a few tiny weights among many do not).
_FP16_MAX, _FP16_TOLERANCE = 65504.0, 1e-3


def shippable(state: dict[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
    """The backbone tensors of a state dict (every one outside the ``head`` module), as shipped: floats
    in fp16 where fp16 holds them, else fp32; CPU copies."""
    out = {}
    for name, value in state.items():
        if name.startswith(head + "."):
            continue
        value = value.detach().cpu()
        if value.is_floating_point():
            value = value.float()
            error = (value.half().float() - value).norm()
            keep = ("running_" in name or value.abs().max() > _FP16_MAX
                    or error > _FP16_TOLERANCE * value.norm())
            value = value if keep else value.half()
        out[name] = value.clone()
    return out


def unshipped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Shipped tensors back as float32 (integers, such as BatchNorm's batch counts, as they are)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


@contextlib.contextmanager
def _locked(folder: Path, timeout: float = 60.0):
    """One writer of the manifest at a time (two ``fishcam pretrain`` runs into one folder)."""
    lock = folder / (MANIFEST + ".lock")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{lock} has been held for {timeout:.0f} s: another `fishcam pretrain` is writing "
                                   f"this folder, or one was killed; if none is running, delete {lock}") from None
            time.sleep(0.2)
    try:
        yield
    finally:
        os.close(fd)
        lock.unlink(missing_ok=True)


def save_standin(model: nn.Module, name: str, head: str, record: dict[str, Any], folder: Path | None = None) -> Path:
    """Write the backbone of ``model`` (``shippable``) as ``standin-<name>-<sha12>.pt`` and its manifest
    entry (``record`` plus file, sha256 and size). The weights are written first, under a name of their
    own, then the manifest is switched to them, then the file it listed before is deleted: at every
    moment the manifest lists a complete file that matches its hash. Returns the weights file."""
    folder = folder or standin_dir()
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    torch.save(shippable(model.state_dict(), head), buffer)
    digest = hashlib.sha256(buffer.getvalue()).hexdigest()
    path = folder / f"standin-{name}-{digest[:12]}.pt"
    with atomic_write(path) as handle:
        handle.write(buffer.getvalue())
    with _locked(folder):
        manifest = read_manifest(folder)
        before = manifest.get(name, {}).get("file")
        manifest[name] = {**record, "file": path.name, "sha256": digest, "bytes": path.stat().st_size}
        with atomic_write(folder / MANIFEST, "w") as handle:
            handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if before and before != path.name:
        (folder / before).unlink(missing_ok=True)
    return path
