"""Decode once, train many times: images decoded and resized into one uint8 array on disk.

Decoding a 590x445 PNG costs far more than the network does on a small model, so a cache
decodes every file once, resizes it to the training size, and stores the lot in a ``.npy``
file that later epochs (and later runs) read through a memory map. The cache is keyed by the
files' paths, sizes and modification times and by the target size: change any of them and a
new cache is built, and the stale one is removed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import DataError, DataWarning, NoSpaceError, option
from ..files import atomic_path, remove_abandoned
from ..settings import cache_dir as default_cache_dir
from .images import (
    _as_size,
    decode_in_threads,
    fit_size,
    is_tiny,
    load_rgb,
    read_mask,
    tiny_images_message,
    unreadable_files_message,
)

CACHE_VERSION = 1
Kind = Literal["rgb", "mask"]


def _digest(payload: object) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


class DecodedCache:
    """A (N, H, W, 3) uint8 array of decoded RGB images (``kind="rgb"``), or (N, H, W) bool
    masks (``kind="mask"``), built on first use and memory-mapped afterwards.

    ``cache[i]`` is the i-th image as a numpy array, equal to ``read_image(paths[i], size)``
    (or ``read_mask``) byte for byte. Safe to use from DataLoader worker processes.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        size: int | tuple[int, int],
        kind: Kind = "rgb",
        cache_dir: str | os.PathLike | None = None,
        workers: int | None = None,
        progress: bool = True,
    ) -> None:
        if kind not in ("rgb", "mask"):
            raise ValueError(f"kind must be 'rgb' or 'mask', got {kind!r}")
        self.paths = [str(p) for p in paths]
        if not self.paths:
            raise ValueError("a cache needs at least one file")
        self.size = _as_size(size)
        self.kind = kind
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
        self.progress = progress
        self._array: np.ndarray | None = None
        self.file = self._file_for_current_files()

    # -- identity -------------------------------------------------------------------------
    def _family(self) -> str:
        """Same files, kind and size: caches that differ only by the files' contents."""
        return _digest([CACHE_VERSION, self.kind, self.size, self.paths])

    def _file_for_current_files(self) -> Path:
        stats = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except FileNotFoundError:
                raise DataError(f"{path} does not exist: the dataset changed since it was scanned; "
                                "scan it again.") from None
            stats.append((st.st_size, st.st_mtime_ns))
        key = _digest([self._family(), stats])
        h, w = self.size
        return self.cache_dir / f"{self.kind}-{h}x{w}-{self._family()}-{key}.npy"

    @property
    def is_built(self) -> bool:
        return self.file.is_file()

    # -- building -------------------------------------------------------------------------
    def _decode(self, i: int, tiny: list) -> np.ndarray:
        if self.kind == "mask":
            return read_mask(self.paths[i], self.size)
        image = load_rgb(self.paths[i])
        if is_tiny(image):
            tiny.append((self.paths[i], (image.shape[1], image.shape[0])))
        return fit_size(image, self.size)

    def _reserve(self, tmp: Path, shape: tuple[int, ...], dtype) -> np.memmap:
        """A memory-mapped .npy file for the array, its disk blocks reserved first: writing into
        a sparse map on a full disk kills the process with SIGBUS instead of raising an error."""
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        free = shutil.disk_usage(self.cache_dir).free
        if nbytes + (16 << 20) > free:
            raise _no_space(self.cache_dir, nbytes, free)
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=shape)
        if hasattr(os, "posix_fallocate"):
            with open(tmp, "r+b") as handle:
                try:
                    os.posix_fallocate(handle.fileno(), 0, os.fstat(handle.fileno()).st_size)
                except OSError as error:
                    if error.errno == errno.ENOSPC:
                        raise _no_space(self.cache_dir, nbytes, shutil.disk_usage(self.cache_dir).free) from None
                    if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
        return array

    def _fill(self, array: np.ndarray) -> tuple[list[str], list[tuple[str, tuple[int, int]]]]:
        """Decode every file into ``array``. Returns the unreadable files' messages and the tiny
        images as (path, (width, height))."""
        tiny: list[tuple[str, tuple[int, int]]] = []

        def fill(i: int) -> None:
            array[i] = self._decode(i, tiny)

        desc = f"Decoding {len(self.paths)} {'images' if self.kind == 'rgb' else 'masks'} once into the cache"
        return decode_in_threads(len(self.paths), fill, desc, self.progress, self.workers), tiny

    def build(self) -> DecodedCache:
        """Decode every file into the cache, unless it is already there. Returns ``self``.

        Every unreadable file is reported at once, in one ``DataError``; images with a side under
        16 pixels are named in one ``DataWarning``. The array is written to a temporary file
        (its space reserved first, so a full disk is an error that names the folder) and renamed
        into place, so an interrupted build leaves nothing half-done.
        """
        if self.is_built:
            return self
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        remove_abandoned(self.cache_dir, "*.npy.*")  # builds that were killed
        h, w = self.size
        shape = (len(self.paths), h, w, 3) if self.kind == "rgb" else (len(self.paths), h, w)
        dtype = np.uint8 if self.kind == "rgb" else np.bool_
        with atomic_path(self.file) as tmp:
            array = self._reserve(tmp, shape, dtype)
            failures, tiny = self._fill(array)
            if failures:
                raise DataError(unreadable_files_message(failures))
            array.flush()
            del array  # the map must close before the file is renamed
        if tiny:
            warnings.warn(tiny_images_message(sorted(tiny)), DataWarning, stacklevel=2)
        self._remove_stale()
        return self

    def _remove_stale(self) -> None:
        """Delete caches of the same files built before the files changed."""
        h, w = self.size
        for old in self.cache_dir.glob(f"{self.kind}-{h}x{w}-{self._family()}-*.npy"):
            if old != self.file:
                old.unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------------------
    @property
    def array(self) -> np.ndarray:
        """The whole cache as a read-only memory-mapped array (built if needed)."""
        if self._array is None:
            self.build()
            self._array = np.load(self.file, mmap_mode="r")
        return self._array

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> np.ndarray:
        return np.array(self.array[i])  # a copy: callers may write to it

    def __getstate__(self) -> dict:
        # Worker processes reopen the memory map instead of receiving a pickled copy of it.
        state = self.__dict__.copy()
        state["_array"] = None
        return state


def _no_space(folder: Path, needed: int, free: int) -> NoSpaceError:
    return NoSpaceError(f"not enough space in {folder} for the decode-once cache: it needs {needed / 2**20:.1f} MiB "
                        f"and {free / 2**20:.1f} MiB are free. Free some space, point FISHCAM_CACHE_DIR at a larger "
                        f"disk, or read the files without the cache ({option('cache', False)}).")

