"""ImageNet weights for the pretrained backbones: found in the torch cache, or downloaded.

Offline, asking for them fails within seconds with a message that says where to put the file;
``weights="auto"`` then starts from random initialisation and says so in one line. A plain
weights file (``weights="path/to/file.pth"``) is read with ``weights_only=True``.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..errors import OfflineError, option
from ..network import can_connect, route


def weights_cache_dir() -> Path:
    """Where torchvision keeps downloaded weights: ``<torch hub dir>/checkpoints`` (``$TORCH_HOME``)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _reachable(host: str, port: int, timeout: float) -> bool:
    return can_connect(host, port, timeout, scheme="http" if port == 80 else "https")


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
            f"cannot read weights from {path}: {error}. "
            f"It must be a state dict saved with torch.save(model.state_dict(), ...); "
            f"if it is a partial download, delete it and fetch it again."
        ) from error
    if isinstance(state, dict) and isinstance(state.get("model_state"), dict):
        state = state["model_state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}


def imagenet_state_dict(name: str, url: str, timeout: float = 5.0, progress: bool = True) -> dict[str, torch.Tensor]:
    """torchvision's ImageNet weights for ``name`` (from ``url``): the cached file if present,
    else a download whose SHA-256 must start with the hash in the file name (``resnet18-f37072fd.pth``).
    Either way the file is read with ``weights_only=True``: tensors, never code. Raises
    ``OfflineError`` within about ``timeout`` seconds when the file is not cached and the server
    (or the proxy of ``HTTPS_PROXY``) cannot be reached."""
    filename = Path(urlparse(url).path).name
    cached = weights_cache_dir() / filename
    if cached.is_file():
        return read_state_dict(cached)
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if parsed.scheme != "file" and not _reachable(host, parsed.port or (80 if parsed.scheme == "http" else 443),
                                                  timeout):
        raise OfflineError(
            f"ImageNet weights for {name} are not in the torch cache and {host} cannot be reached{route(host)} "
            f"(offline?). On a machine with internet, download {url} and copy it to {cached} "
            f"(or set TORCH_HOME to a folder holding hub/checkpoints/{filename}); "
            f"or pass {option('weights', None)} to train from random initialisation."
        )
    _download(name, url, cached, timeout, progress)
    return read_state_dict(cached)


def _download(name: str, url: str, cached: Path, timeout: float, progress: bool) -> None:
    """``url`` to ``cached``, hash checked; torch.hub writes a temporary file and moves it into place."""
    found = _HASH_IN_NAME.search(cached.name)
    cached.parent.mkdir(parents=True, exist_ok=True)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(max(timeout, 30.0))  # a stalled transfer must end in an error, not a hang
    try:
        torch.hub.download_url_to_file(url, str(cached), hash_prefix=found.group(1) if found else None,
                                       progress=progress)
    except RuntimeError as error:  # torch.hub's "invalid hash value": the file was removed
        raise OfflineError(f"the download of the ImageNet weights for {name} from {url} is not the file it "
                           f"should be ({error}); it was deleted. Try again, or copy the file to {cached} "
                           f"by hand.") from error
    except OSError as error:
        raise OfflineError(f"downloading ImageNet weights for {name} from {url} failed: {error}. "
                           f"Copy the file to {cached} by hand, or pass {option('weights', None)}.") from error
    finally:
        socket.setdefaulttimeout(previous)


# torchvision's file names carry the first hex digits of the file's SHA-256: resnet18-f37072fd.pth.
_HASH_IN_NAME = re.compile(r"-([a-f0-9]{6,})\.")
