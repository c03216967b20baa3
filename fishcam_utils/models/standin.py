"""The course's pretrained stand-in: backbones pretrained on a *source* task that is not the course's
(the species table ``"source"``: other invented fish, other marks), shipped small with the course so
that transfer learning can be taught offline.

The weights live in ``checkpoints/standin/`` beside a ``manifest.json`` that records, for each
backbone, the file, its sha256, the build arguments, the recipe and data seed that made it, and the
source task's test accuracy. ``build_model(name, k, weights="course")`` loads them, checking the hash
and reading with ``weights_only=True``. ``fishcam pretrain`` (``training.pretrain``) makes them again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..files import atomic_write
from ..settings import course_root

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
        raise ValueError(f"{path} is not valid JSON ({error}); restore it from git or run `fishcam pretrain`") from error


def standin_entry(name: str, folder: Path | None = None) -> dict[str, Any]:
    """The manifest entry of backbone ``name``, or a ``FileNotFoundError`` that says how to make it."""
    folder = folder or standin_dir()
    entry = read_manifest(folder).get(name)
    if entry is None:
        raise FileNotFoundError(f"no course stand-in weights for {name} in {folder}: make them with "
                                f"`fishcam pretrain --backbone {name}` (the recipe is in the README), or use "
                                f"weights='imagenet' where ImageNet weights can be downloaded")
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
    state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def save_standin(model: nn.Module, name: str, head: str, record: dict[str, Any], folder: Path | None = None) -> Path:
    """Write the backbone of ``model`` (every tensor but the ``head`` module's, floats in fp16 to keep
    the file small) as ``standin-<name>.pt`` and its manifest entry (``record`` plus file, sha256 and
    size), both atomically. Returns the weights file."""
    folder = folder or standin_dir()
    state = {k: (v.detach().half() if v.is_floating_point() else v.detach()).cpu().clone()
             for k, v in model.state_dict().items() if not k.startswith(head + ".")}
    path = folder / f"standin-{name}.pt"
    with atomic_write(path) as handle:
        torch.save(state, handle)
    manifest = read_manifest(folder)
    manifest[name] = {**record, "file": path.name, "sha256": sha256_of(path), "bytes": path.stat().st_size}
    with atomic_write(folder / MANIFEST, "w") as handle:
        handle.write(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return path
