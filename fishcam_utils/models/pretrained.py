"""ImageNet weights for the pretrained backbones: found in the torch cache, or downloaded.

Offline, asking for them fails within seconds with a message that says where to put the file;
``weights="auto"`` then starts from random initialisation and says so in one line. A plain
weights file (``weights="path/to/file.pth"``) is read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import OfflineError, option


def weights_cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _reachable(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A state dict from a weights file (``weights_only=True``), with any DataParallel/DDP
    ``module.`` prefix removed. A FishCAM checkpoint gives its model weights."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} does not exist; give the path of a .pth/.pt state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated download, or a pickled whole model
        raise ValueError(
            f"cannot read weights from {path}: {error}. It must be a state dict saved with torch.save(model.state_dict(), ...); "
            f"if it is a partial download, delete it and fetch it again."
        ) from error
    if isinstance(state, dict) and isinstance(state.get("model_state"), dict):
        state = state["model_state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def imagenet_state_dict(name: str, url: str, timeout: float = 5.0, progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``name`` (from ``url``): the cached file if present,
    else a download. Raises ``OfflineError`` within about ``timeout`` seconds when the file is
    not cached and the download server cannot be reached."""
    filename = Path(urlparse(url).path).name
    cached = weights_cache_dir() / filename
    if cached.is_file():
        return read_state_dict(cached)
    host = urlparse(url).hostname or ""
    if not _reachable(host, 443, timeout):
        raise OfflineError(
            f"ImageNet weights for {name} are not in the torch cache and {host} cannot be reached (offline?). "
            f"On a machine with internet, download {url} and copy it to {cached} "
            f"(or set TORCH_HOME to a folder holding hub/checkpoints/{filename}); "
            f"or pass {option('weights', None)} to train from random initialisation."
        )
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(max(timeout, 30.0))  # a stalled transfer must end in an error, not a hang
    try:
        torch.hub.load_state_dict_from_url(url, progress=progress, check_hash=True, map_location="cpu")
    except OSError as error:
        raise OfflineError(f"downloading ImageNet weights for {name} from {url} failed: {error}. "
                           f"Copy the file to {cached} by hand, or pass {option('weights', None)}.") from error
    finally:
        socket.setdefaulttimeout(previous)
    return read_state_dict(cached)
