"""Walking a dataset folder: its visible children, image files, split folders and class folders.

A ``Walk`` carries what one scan learns on the way: the problems it steps over (raised
together at the end), the non-image files it met, and notes on what it read or left out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..errors import DataError, Problems, listing, option
from .images import IMAGE_EXTENSIONS, is_image_file, is_junk_file

MASKS_DIR = "masks"
# Files the synthetic generator writes beside the class, split or species folders.
DATASET_FILES = frozenset({"dataset.json", "metadata.csv"})
# Folder names read as splits, and the name each one stands for.
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}
UnknownFiles = Literal["error", "skip"]


@dataclass
class Walk:
    """One scan of ``root``: what to do with non-image files, and what was found on the way."""

    root: Path
    unknown_files: UnknownFiles = "error"
    problems: Problems = field(default_factory=Problems)
    strangers: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)  # every class name read, listed or not

    def report_strangers(self) -> None:
        """One problem (or, with ``unknown_files='skip'``, one note) for all non-image files met."""
        if not self.strangers:
            return
        listed = listing(self.strangers, 5)
        if self.unknown_files == "skip":
            self.notes.append(f"left out {len(self.strangers)} file(s) that are not images "
                              f"({option('unknown_files', 'skip')}):{listed}")
            return
        self.problems.add(
            f"{len(self.strangers)} file(s) under {self.root} are not images (known extensions: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, in any case):{listed}\n"
            f"Move them out of the dataset folder, or pass {option('unknown_files', 'skip')} to leave them out."
        )


def visible_children(folder: Path) -> list[Path]:
    """The entries of ``folder`` whose names do not start with a dot, sorted."""
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def files_under(folder: Path, walk: Walk, recursive: bool = True) -> list[Path]:
    """Image files under ``folder`` (recursively, skipping hidden folders such as .ipynb_checkpoints).
    Other files, system clutter aside, are recorded in ``walk.strangers``."""
    entries = sorted(folder.rglob("*")) if recursive else visible_children(folder)
    images = []
    for path in entries:
        rel_parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel_parts[:-1]) or path.is_dir() or is_junk_file(path):
            continue
        if is_image_file(path):
            images.append(path)
        else:
            walk.strangers.append(path)
    return images


def class_files(class_dir: Path, walk: Walk) -> list[Path]:
    """The images of one class folder; a folder with none is a problem."""
    files = files_under(class_dir, walk)
    if not files:
        walk.problems.add(
            f"class folder {class_dir} has no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
            "Add its images, or remove the folder if the class is not wanted."
        )
    return files


def split_dirs(root: Path) -> dict[str, Path]:
    """The split folders of ``root`` by the split each stands for (``Training`` → ``train``)."""
    found: dict[str, Path] = {}
    for child in visible_children(root):
        name = SPLIT_NAMES.get(child.name.lower())
        if child.is_dir() and name:
            if name in found:
                raise DataError(f"{found[name]} and {child} are both the {name!r} split; keep one of them.")
            found[name] = child
    return found


def class_dirs(folder: Path) -> list[Path]:
    """The sub-folders of ``folder`` that may be classes (not hidden, not ``masks``)."""
    return [c for c in visible_children(folder) if c.is_dir() and c.name != MASKS_DIR]


def has_images(folder: Path) -> bool:
    """True if ``folder`` holds an image file directly."""
    return any(is_image_file(p) and not is_junk_file(p) for p in folder.iterdir())


def breadth_first(root: Path, depth: int) -> Iterator[Path]:
    """``root`` and the visible folders below it, level by level, down to ``depth`` levels."""
    level = [root]
    for below in range(depth + 1):
        yield from level
        if below == depth:
            return  # the deepest level is not listed: its folders can hold thousands of images
        level = [c for f in level if f.is_dir() for c in visible_children(f) if c.is_dir()]
