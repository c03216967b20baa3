"""The real data: "A Large Scale Fish Dataset" (Ulucan et al., 2020) from Kaggle.

9 species, 1000 images each (590x445 PNG) with 1000 segmentation masks in the "GT" folders.
The 1000 images of a species are augmented copies (flips, rotations) of fewer original
photos, and the file names do not say which copies belong together: any random split puts
copies of one photo on both sides, so test accuracy on it is optimistic. Use it to try the
course's tools on real photos, not to claim a benchmark result.

``kaggle_fish_dir()`` finds a copy on disk; ``download_kaggle_fish()`` fetches one with
``kagglehub`` when online and, when not, says plainly where to put a copy downloaded elsewhere.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from ..errors import OfflineError
from ..network import can_connect, route
from ..settings import data_dir
from .kaggle_layout import find_kaggle_root

KAGGLE_HANDLE = "crowww/a-large-scale-fish-dataset"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_HANDLE}"
KAGGLE_HOST = "www.kaggle.com"


def default_kaggle_dir() -> Path:
    """Where the course looks for a manually placed copy: ``<data>/kaggle-fish``."""
    return data_dir() / "kaggle-fish"


def _kagglehub_cache_dirs() -> list[Path]:
    base = os.environ.get("KAGGLEHUB_CACHE")
    root = Path(base) if base else Path.home() / ".cache" / "kagglehub"
    return [root / "datasets" / KAGGLE_HANDLE]


def kaggle_fish_dir(extra: list[str | os.PathLike] | None = None) -> Path | None:
    """The folder holding the Kaggle species folders, if a copy is on disk; else None.

    Looks in ``extra``, then ``<data>/kaggle-fish``, then kagglehub's download cache.
    """
    candidates = [Path(p) for p in (extra or [])] + [default_kaggle_dir()] + _kagglehub_cache_dirs()
    for candidate in candidates:
        if candidate.is_dir():
            found = find_kaggle_root(candidate, depth=5)
            if found is not None:
                return found
    return None


def network_available(host: str = KAGGLE_HOST, port: int = 443, timeout: float = 3.0) -> bool:
    """True if a connection towards ``host`` opens within ``timeout`` seconds (through the proxy
    of ``HTTPS_PROXY`` when one is set: see ``fishcam_utils.network``)."""
    return can_connect(host, port, timeout)


def _manual_instructions() -> str:
    target = default_kaggle_dir()
    return (
        f"Download it on a machine with internet from {KAGGLE_URL} (the 'Download' button, about 3 GB), "
        f"unzip it into {target}, so that "
        f"{target / 'Fish_Dataset' / 'Fish_Dataset' / 'Trout' / 'Trout' / '00001.png'} exists, and run this again. "
        "The course itself needs none of it: its synthetic dataset is made offline by `fishcam make-data`."
    )


def download_kaggle_fish(timeout: float = 5.0) -> Path:
    """Return the Kaggle fish dataset's species folder, downloading it if needed.

    A copy already on disk is used without touching the network. Otherwise ``kagglehub``
    downloads it (about 3 GB). Offline, or without ``kagglehub``, this fails within
    ``timeout`` seconds with an ``OfflineError`` that says how to place a copy by hand.
    """
    found = kaggle_fish_dir()
    if found is not None:
        return found
    try:
        kagglehub = importlib.import_module("kagglehub")
    except ImportError:
        raise OfflineError(
            "the Kaggle fish dataset is not on disk and kagglehub is not installed "
            "(pip install kagglehub, or pip install -e '.[kaggle]'). " + _manual_instructions()
        ) from None
    if not network_available(timeout=timeout):
        raise OfflineError(f"the Kaggle fish dataset is not on disk and {KAGGLE_HOST} cannot be reached"
                           f"{route(KAGGLE_HOST)} (offline?). " + _manual_instructions())
    try:
        downloaded = Path(kagglehub.dataset_download(KAGGLE_HANDLE))
    except Exception as error:  # kagglehub raises many kinds: credentials, HTTP, disk
        raise OfflineError(f"kagglehub could not download {KAGGLE_HANDLE}: {error}. "
                           + _manual_instructions()) from error
    root = find_kaggle_root(downloaded, depth=5)
    if root is None:
        raise OfflineError(f"kagglehub downloaded {downloaded}, but no <Species>/<Species>/ folders were found in it. "
                           + _manual_instructions())
    return root
