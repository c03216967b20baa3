"""Checking a dataset folder as ``fishcam check-data`` does: every problem in one pass.

``check_dataset(root)`` scans the folder without stopping at the first problem, decodes every
image file under it (masks too) and returns a ``DataReport``: the index of what could be read,
every problem, and the warnings (images too small to learn from). Problems make a dataset
unusable; warnings do not.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Problems
from .dataset_index import DatasetIndex, ScanOptions
from .folders import Walk, files_under
from .images import decode_in_threads, is_tiny, load_mask, load_rgb, tiny_images_message, unreadable_files_message
from .layouts import survey
from .splits import split_problem


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

    def raise_if_problems(self) -> None:
        """One ``DataError`` listing every problem, if there is any."""
        problems = Problems()
        for message in self.problems:
            problems.add(message)
        problems.raise_if_any(self.root)


def decode_all(paths: Sequence[Path], images: set[str], progress: bool = True,
               sizes: dict[str, tuple[int, int]] | None = None) -> tuple[list[str], list]:
    """Decode every file (``images`` as RGB, the rest as masks). Returns the failures' messages
    and the tiny images as (path, (width, height)); fills ``sizes`` (path -> (width, height) as decoded)."""
    tiny: list[tuple[str, tuple[int, int]]] = []
    sizes = {} if sizes is None else sizes

    def decode(i: int) -> None:
        path = paths[i]
        if str(path) not in images:
            mask = load_mask(path)
            sizes[str(path)] = (mask.shape[1], mask.shape[0])
            return
        image = load_rgb(path)
        sizes[str(path)] = (image.shape[1], image.shape[0])
        if is_tiny(image):
            tiny.append((str(path), (image.shape[1], image.shape[0])))

    failures = decode_in_threads(len(paths), decode, f"Decoding {len(paths)} files", progress)
    return failures, sorted(tiny)


def mask_size_message(index: DatasetIndex, sizes: dict[str, tuple[int, int]]) -> str | None:
    """What is wrong when masks are of another size than their images (``sizes`` as ``decode_all`` fills it);
    None when every mask decoded matches its image. A mask is resized with its image, so one of another shape
    would point at other pixels."""
    wrong = []
    for kind in index.mask_kinds:
        for image, mask in zip(index.frame["path"], index.frame[f"mask_{kind}"]):
            if mask and image in sizes and mask in sizes and sizes[mask] != sizes[image]:
                wrong.append((mask, sizes[mask], image, sizes[image]))
    if not wrong:
        return None
    mask, (mw, mh), image, (iw, ih) = wrong[0]
    return (f"{len(wrong)} mask(s) are of another size than their images, e.g. {mask} is {mw}x{mh} pixels and its "
            f"image {image} {iw}x{ih}: a mask must cover its image pixel for pixel. Save each mask at its image's "
            "size (resized with nearest-neighbour, so that it stays two-valued), or leave the masks out.")


def check_dataset(
    root: str | os.PathLike,
    layout: str | None = None,
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    missing_views: str | None = None,
    unknown_files: str | None = None,
    decode: bool = True,
    progress: bool = True,
    scan: ScanOptions | None = None,
) -> DataReport:
    """Scan and (with ``decode``) decode the dataset at ``root``, collecting every problem.

    Arguments as ``scan_dataset`` (``scan``: the reading options as one ``ScanOptions``). A folder that
    cannot be read at all (missing, empty) still raises a ``DataError``; every other problem is listed in
    the report.
    """
    index, walk = survey(root, layout, classes=classes, views=views, missing_views=missing_views,
                         unknown_files=unknown_files, scan=scan)
    report = DataReport(root=walk.root, index=index, problems=list(walk.problems.messages))
    if index is not None and len(index.classes) < 2:  # make_datasets and fishcam train refuse it too
        report.problems.append(f"one class only ({', '.join(index.classes)}): a classifier needs at least two; add a "
                               "folder per class, or check the folder above this one")
    if index is not None and len(index.classes) >= 2:
        # what make_datasets would refuse when it splits: said here, beside the other problems
        problem = split_problem(index)
        if problem:
            report.problems.append(problem)
    if decode:
        files = files_under(walk.root, Walk(walk.root))  # every image file, wherever it lies
        images = set(index.frame["path"]) if index is not None else {str(p) for p in files}
        sizes: dict[str, tuple[int, int]] = {}
        failures, tiny = decode_all(files, images, progress, sizes)
        report.decoded, report.unreadable = len(files), failures
        if failures:
            report.problems.append(unreadable_files_message(failures))
        if tiny:
            report.warnings.append(tiny_images_message(tiny))
        mismatch = mask_size_message(index, sizes) if index is not None else None
        if mismatch:
            report.problems.append(mismatch)
    return report
