"""What a scan of a dataset folder gives, and how it was asked for.

``DatasetIndex`` holds every image of a dataset, one row each, with its label, split, fish ID, view
and masks. ``ScanOptions`` says how a folder is read (its layout, view names, and what to do with
files that are not images and with fish lacking a view): one frozen value that ``scan_dataset``,
``check_dataset``, ``make_datasets``, the command line and a checkpoint's record share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from ..settings import MISSING_VIEWS, UNKNOWN_FILES
from .folders import UnknownFiles
from .layout_readers import layout_names
from .species import VIEWS

COLUMNS = ["path", "relpath", "label", "class_name", "split", "fish_id", "view"]

MissingViews = Literal["error", "keep", "drop"]
MISSING_VIEWS_CHOICES: tuple[str, ...] = ("error", "keep", "drop")
UNKNOWN_FILES_CHOICES: tuple[str, ...] = ("error", "skip")


def _choices(values: Sequence[str]) -> str:
    """``'a', 'b' or 'c'``."""
    quoted = [repr(v) for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


@dataclass(frozen=True)
class ScanOptions:
    """How a dataset folder is read, as one value.

    ``layout`` is ``"auto"`` (detected) or a name of ``LAYOUTS``; ``views`` the view names of a
    multi-view dataset (a sequence, or ``"side,top"``); ``unknown_files`` ``"error"`` (refuse files
    that are not images) or ``"skip"`` (leave them out, said in the notes); ``missing_views``
    ``"error"``, ``"keep"`` (the view marked missing) or ``"drop"`` for a fish lacking a view. A bad
    value raises a ``ValueError`` naming the argument and what it may be. ``to_dict`` is the plain
    record a checkpoint keeps; ``from_dict`` reads one back, old ones included.
    """

    layout: str = "auto"
    views: tuple[str, ...] = VIEWS
    unknown_files: UnknownFiles = UNKNOWN_FILES
    missing_views: MissingViews = MISSING_VIEWS

    def __post_init__(self) -> None:
        views = self.views
        if isinstance(views, str):
            views = [v.strip() for v in views.split(",") if v.strip()]
        if not isinstance(views, Sequence) or not views or not all(isinstance(v, str) and v for v in views):
            raise ValueError(f"views must be a non-empty list of view names (e.g. {list(VIEWS)}, or 'side,back'), "
                             f"got {self.views!r}")
        object.__setattr__(self, "views", tuple(views))  # lists from JSON or the CLI: compare and hash alike
        known = layout_names()
        if self.layout != "auto" and self.layout not in known:
            raise ValueError(f"layout must be 'auto' or one of {', '.join(known)}, got {self.layout!r}")
        if self.unknown_files not in UNKNOWN_FILES_CHOICES:
            raise ValueError(f"unknown_files must be {_choices(UNKNOWN_FILES_CHOICES)}, got {self.unknown_files!r}")
        if self.missing_views not in MISSING_VIEWS_CHOICES:
            raise ValueError(f"missing_views must be {_choices(MISSING_VIEWS_CHOICES)}, got {self.missing_views!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, as a checkpoint's ``preprocessing["scan"]`` records them."""
        return {"layout": self.layout, "views": list(self.views), "unknown_files": self.unknown_files,
                "missing_views": self.missing_views}

    def keys(self) -> list[str]:
        """The keys of ``to_dict``: ``dict(scan)`` is ``scan.to_dict()``, as code written for the plain dict
        that ``DatasetIndex.options`` was (``dict(index.options or {})``) reads it."""
        return list(self.to_dict())

    def __getitem__(self, key: str) -> Any:
        return self.to_dict()[key]

    @classmethod
    def from_dict(cls, record: Mapping[str, Any] | None) -> ScanOptions:
        """The options a ``to_dict`` record holds. A record without some keys (or with them empty), or
        None, takes the defaults for what it lacks, so that older checkpoints read; other keys are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (record or {}).items() if k in names and v not in (None, "", [], ())})

    @classmethod
    def merge(cls, scan: ScanOptions | Mapping[str, Any] | None = None, **keywords: Any) -> ScanOptions:
        """``scan`` (default ``ScanOptions()``; a ``to_dict`` record is read with ``from_dict``) with the
        keyword arguments of the same names put in: each one given (not None) replaces ``scan``'s, even one
        equal to the default. How every reader turns its keywords and ``scan=`` into one value: the readers'
        keywords default to None, so the defaults live here, once."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(keywords) - set(names))
        if unknown:
            raise TypeError(f"{', '.join(unknown)} is not a scan option; the options are {', '.join(names)}")
        if scan is None:
            base = cls()
        elif isinstance(scan, ScanOptions):
            base = scan
        elif isinstance(scan, Mapping):
            base = cls.from_dict(scan)
        else:
            raise TypeError(f"scan must be a ScanOptions (or its to_dict record), got {type(scan).__name__}")
        changes = {name: value for name, value in keywords.items() if value is not None}
        return replace(base, **changes) if changes else base


@dataclass
class DatasetIndex:
    """Every image of a dataset, one row each, and what is known about it.

    ``frame`` columns: ``path`` (absolute), ``relpath`` (to ``root``), ``label`` (int),
    ``class_name``, ``split`` ("" when the layout has none), ``fish_id`` (groups the views of
    one fish; each image is its own group in single-view layouts), ``view`` ("" for
    single-view layouts) and one ``mask_<kind>`` column per mask kind ("" when absent).
    ``options``: how it was scanned (its ``layout`` the one read, never ``"auto"``), to scan it again alike.
    """

    root: Path
    layout: str
    classes: list[str]
    frame: pd.DataFrame
    views: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    options: ScanOptions = field(default_factory=ScanOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.options, ScanOptions):  # a dict, as indexes held before ScanOptions
            self.options = ScanOptions.from_dict(self.options)

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        sizes = self.frame["split"].value_counts()
        splits = ", ".join(f"{s}={sizes[s]}" for s in self.splits)
        return (
            f"DatasetIndex({self.layout!r}, {len(self)} images, {len(self.classes)} classes"
            + (f", views={list(self.views)}" if self.views else "")
            + (f", {splits}" if splits else "")
            + f", root={str(self.root)!r})"
        )

    @property
    def mask_kinds(self) -> list[str]:
        """The kinds of mask found (e.g. ``["body", "evidence"]``)."""
        return [c[len("mask_"):] for c in self.frame.columns if c.startswith("mask_")]

    @property
    def splits(self) -> list[str]:
        """The splits present, in train/val/test order."""
        present = set(self.frame["split"]) - {""}
        order = ["train", "val", "test"]
        return [s for s in order if s in present] + sorted(present - set(order))

    def subset(self, split: str | None = None, view: str | None = None) -> DatasetIndex:
        """The rows of one split and/or one view (labels and classes are kept)."""
        frame = self.frame
        if split is not None:
            if split not in self.splits:
                raise ValueError(f"split {split!r} not in this dataset; it has "
                                 f"{self.splits or 'no splits (use make_splits)'}")
            frame = frame[frame["split"] == split]
        if view is not None:
            if view not in self.views:
                raise ValueError(f"view {view!r} not in this dataset; it has {list(self.views) or 'no views'}")
            frame = frame[frame["view"] == view]
        return replace(self, frame=frame.reset_index(drop=True), notes=list(self.notes))

    def counts(self) -> pd.DataFrame:
        """Number of images per class (rows, in label order) and split (columns)."""
        frame = self.frame.assign(split=self.frame["split"].replace("", "all"))
        table = pd.crosstab(pd.Categorical(frame["class_name"], categories=self.classes), frame["split"])
        table.index.name, table.columns.name = "class", "split"
        ordered = [s for s in ["train", "val", "test", "all"] if s in table.columns]
        return table[ordered + [c for c in table.columns if c not in ordered]]
