"""Checking a dataset folder as ``fishcam check-data`` does: every problem in one pass.

``check_dataset(root)`` scans the folder without stopping at the first problem, decodes every
image file under it (masks too) and returns a ``DataReport``: the index of what could be read,
every problem, and the warnings (images too small to learn from). Problems make a dataset
unusable; warnings do not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from ..errors import DataError
from .images import is_image_file, is_tiny, load_mask, load_rgb, tiny_images_message, unreadable_files_message
from .layouts import DatasetIndex, survey
from .species import VIEWS


@dataclass
class DataReport:
    """What ``check_dataset`` found: ``ok`` when ``problems`` is empty."""

    root: Path
    index: DatasetIndex | None
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    decoded: int = 0  # files decoded (0 when decoding was not asked for)
    unreadable: list[str] = field(default_factory=list)  # the messages of the files that could not be decoded

    @property
    def ok(self) -> bool:
        return not self.problems


def _image_files(root: Path) -> list[Path]:
    """Every image file under ``root``, hidden folders aside."""
    return sorted(p for p in root.rglob("*")
                  if is_image_file(p) and not any(part.startswith(".") for part in p.relative_to(root).parts))


def decode_all(paths: Sequence[Path], images: set[str], progress: bool = True) -> tuple[list[str], list]:
    """Decode every file (``images`` as RGB, the rest as masks). Returns the failures' messages
    and the tiny images as (path, (width, height))."""
    failures: list[str] = []
    tiny: list[tuple[str, tuple[int, int]]] = []

    def decode(path: Path) -> None:
        try:
            if str(path) not in images:
                load_mask(path)
                return
            image = load_rgb(path)
            if is_tiny(image):
                tiny.append((str(path), (image.shape[1], image.shape[0])))
        except DataError as error:
            failures.append(str(error))

    with ThreadPoolExecutor(max_workers=min(os.cpu_count() or 1, 8)) as pool:
        list(tqdm(pool.map(decode, paths), total=len(paths), desc=f"Decoding {len(paths)} files", unit="file",
                  disable=not progress))
    return sorted(failures), sorted(tiny)


def check_dataset(
    root: str | os.PathLike,
    layout: str = "auto",
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] = VIEWS,
    missing_views: str = "error",
    unknown_files: str = "error",
    decode: bool = True,
    progress: bool = True,
) -> DataReport:
    """Scan and (with ``decode``) decode the dataset at ``root``, collecting every problem.

    Arguments as ``scan_dataset``. A folder that cannot be read at all (missing, empty) still
    raises a ``DataError``; every other problem is listed in the report.
    """
    index, walk = survey(root, layout, classes=classes, views=views, missing_views=missing_views,
                         unknown_files=unknown_files)
    report = DataReport(root=walk.root, index=index, problems=list(walk.problems.messages))
    if decode:
        files = _image_files(walk.root)
        images = set(index.frame["path"]) if index is not None else {str(p) for p in files}
        failures, tiny = decode_all(files, images, progress)
        report.decoded, report.unreadable = len(files), failures
        if failures:
            report.problems.append(unreadable_files_message(failures))
        if tiny:
            report.warnings.append(tiny_images_message(tiny))
    return report
