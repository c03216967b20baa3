"""Finding the images of a dataset on disk, whatever layout it has, and checking them.

``scan_dataset(root)`` reads one of four layouts, detected automatically or named:

- ``"class_folders"``: ``root/<class>/*.jpg`` (optionally ``root/<split>/<class>/...``);
- ``"kaggle"``: the Kaggle "A Large Scale Fish Dataset": ``<Species>/<Species>/NNNNN.png``
  with masks in ``<Species>/<Species> GT/NNNNN.png``; masks are paired, never counted;
- ``"multiview"``: ``root/<split>/<class>/<fishID>_<view>.png`` (split folders optional);
- ``"filename"``: ``root/<label>_<id>.jpg`` (optionally ``root/<split>/<label>_<id>.jpg``), the
  label read from the file name, or a number indexing a list of class names.

Masks may sit in a mirrored tree, ``root/masks/<kind>/<same relative path>``, or, as in the
Kaggle dataset, in a ``<class> GT`` folder beside the class folder. The result is a
``DatasetIndex``: one row per image, with its label, split, fish ID, view and mask paths.
Bad input raises one ``DataError`` that lists every problem of the folder, each naming the
file or folder and the fix.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Literal

import pandas as pd

from ..errors import ArgumentError, DataError, DataWarning, listing, option
from ..settings import MISSING_VIEWS, UNKNOWN_FILES
from .folders import (
    DATASET_FILES,
    MASKS_DIR,
    UnknownFiles,
    Walk,
    class_dirs,
    class_files,
    files_under,
    has_images,
    split_dirs,
    visible_children,
)
from .images import is_image_file, is_junk_file
from .kaggle_layout import (
    find_kaggle_root,
    find_originals,
    masks_by_stem,
    originals_note,
    pair_mask_folders,
    read_kaggle,
    refuse_single_species,
    set_aside_originals,
)
from .species import VIEWS

COLUMNS = ["path", "relpath", "label", "class_name", "split", "fish_id", "view"]

MissingViews = Literal["error", "keep", "drop"]


@dataclass
class DatasetIndex:
    """Every image of a dataset, one row each, and what is known about it.

    ``frame`` columns: ``path`` (absolute), ``relpath`` (to ``root``), ``label`` (int),
    ``class_name``, ``split`` ("" when the layout has none), ``fish_id`` (groups the views of
    one fish; each image is its own group in single-view layouts), ``view`` ("" for
    single-view layouts) and one ``mask_<kind>`` column per mask kind ("" when absent).
    """

    root: Path
    layout: str
    classes: list[str]
    frame: pd.DataFrame
    views: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    # How it was scanned (layout, views, unknown_files, missing_views), to scan it again alike.
    options: dict = field(default_factory=dict)

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
                raise ValueError(f"split {split!r} not in this dataset; it has {self.splits or 'no splits (use make_splits)'}")
            frame = frame[frame["split"] == split]
        if view is not None:
            if view not in self.views:
                raise ValueError(f"view {view!r} not in this dataset; it has {list(self.views) or 'no views'}")
            frame = frame[frame["view"] == view]
        return replace(self, frame=frame.reset_index(drop=True), notes=list(self.notes), options=dict(self.options))

    def counts(self) -> pd.DataFrame:
        """Number of images per class (rows, in label order) and split (columns)."""
        frame = self.frame.assign(split=self.frame["split"].replace("", "all"))
        table = pd.crosstab(pd.Categorical(frame["class_name"], categories=self.classes), frame["split"])
        table.index.name, table.columns.name = "class", "split"
        ordered = [s for s in ["train", "val", "test", "all"] if s in table.columns]
        return table[ordered + [c for c in table.columns if c not in ordered]]


# ---------------------------------------------------------------------------------------
# Layout detection

_VIEW_STEM = re.compile(r"^(?P<fish>.+)_(?P<view>[A-Za-z]+)$")


def _looks_multiview(files: Iterable[Path], views: Sequence[str]) -> bool:
    known = {v.lower() for v in views}
    for path in files:
        match = _VIEW_STEM.match(path.stem)
        if match and match["view"].lower() in known:
            return True
    return False


def detect_layout(root: str | Path, views: Sequence[str] = VIEWS) -> str:
    """Which layout of ``LAYOUTS`` ``root`` holds: the first whose detector recognises it (in table
    order, the most particular first). Raises ``DataError`` if it holds none."""
    root = _check_root(root)
    for name, layout in LAYOUTS.items():
        if layout.detect(root, views):
            return name
    known = ", ".join(f"{layout.title} ({layout.pattern})" for layout in LAYOUTS.values())
    raise DataError(f"no images found under {root}. FishCAM reads these layouts: {known}. Check the path, or make "
                    "the course's dataset with `fishcam make-data`.")


def _top_folders(root: Path) -> list[Path]:
    """The split folders of ``root``, or ``root`` itself when it has none."""
    return list(split_dirs(root).values()) or [root]


def _class_dirs_anywhere(root: Path) -> list[Path]:
    """The class folders of ``root``, or of its split folders."""
    return [c for f in _top_folders(root) for c in class_dirs(f)]


def _detect_multiview(root: Path, views: Sequence[str]) -> bool:
    sample = [p for c in _class_dirs_anywhere(root) for p in c.iterdir() if is_image_file(p)][:2000]
    return _looks_multiview(sample, views)


def _detect_filename(root: Path, views: Sequence[str]) -> bool:
    return any(has_images(f) for f in _top_folders(root))


def _check_root(root: str | Path) -> Path:
    if not isinstance(root, (str, os.PathLike)):
        raise ArgumentError(f"root must be the path of a dataset folder (a str or Path), got {type(root).__name__}; "
                            "for several folders, read each and join them (torch.utils.data.ConcatDataset)")
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist; check the path (it is relative to {Path.cwd()}).")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a dataset folder; pass the folder that holds the images.")
    return root.resolve()


# ---------------------------------------------------------------------------------------
# The readers: each returns rows of (path, class_name, split, fish_id, view), and says in
# the walk what it stepped over.

Row = dict


def _read_folders(walk: Walk, views: Sequence[str] | None) -> tuple[list[Row], dict[str, dict[str, Path]]]:
    """Class folders, with or without split folders; with ``views``, files are <fish>_<view>.
    Returns the rows and the masks of '<class> GT' folders by image path."""
    splits = split_dirs(walk.root)
    _beside_splits(splits, walk)
    rows: list[Row] = []
    gt_masks: dict[str, dict[str, Path]] = {}
    for split, folder in (splits or {"": walk.root}).items():
        dirs, mask_dirs = pair_mask_folders(set_aside_originals(class_dirs(folder), walk), walk)
        if not split:
            refuse_single_species(walk.root, dirs, mask_dirs)
        if not dirs:
            walk.problems.add(f"{folder} has no class folders; expected {folder}/<class>/<images>."
                              + (" Every split folder needs one folder per class." if split else ""))
        _loose_files(folder, walk)
        for class_dir in dirs:
            masks = masks_by_stem(mask_dirs.get(class_dir.name), walk)
            for path in class_files(class_dir, walk):
                row = {"path": path, "class_name": class_dir.name, "split": split, "fish_id": "", "view": ""}
                if views is not None:
                    parsed = _parse_view(path, views, walk)
                    if parsed is None:
                        continue
                    row["fish_id"], row["view"] = parsed
                if path.stem in masks:
                    gt_masks[str(path)] = {"body": masks[path.stem]}
                rows.append(row)
    return rows, gt_masks


def _loose_files(folder: Path, walk: Walk) -> None:
    """Files beside the class (or split) folders belong to no class. Images there are a problem
    (left out, and said, with ``unknown_files='skip'``); other files are said in a note."""
    loose = [p for p in visible_children(folder) if p.is_file() and not is_junk_file(p) and p.name not in DATASET_FILES]
    images = [p.name for p in loose if is_image_file(p)]
    where = f"{folder} beside the class or split folders, in no class"
    if images and walk.unknown_files == "error":
        walk.problems.add(f"{len(images)} image(s) lie in {where} (e.g. {', '.join(images[:3])}): move each into its "
                          f"class folder or out of the dataset, or pass {option('unknown_files', 'skip')} to leave "
                          "them out.")
    elif images:
        walk.notes.append(f"left out {len(images)} image(s) in {where} ({option('unknown_files', 'skip')}):"
                          + listing(images, 5))
    others = [p.name for p in loose if not is_image_file(p)]
    if others:
        walk.notes.append(f"skipped {len(others)} file(s) in {folder} beside the class or split folders:"
                          + listing(others, 5))


def _beside_splits(splits: dict[str, Path], walk: Walk) -> None:
    """What lies beside the split folders is read by no split: loose files are checked as in a
    class folder's parent, and other folders are named."""
    if not splits:
        return
    _loose_files(walk.root, walk)
    others = [c.name for c in class_dirs(walk.root) if c not in splits.values()]
    if others:
        walk.notes.append(f"skipped {len(others)} folder(s) beside the split folders, in no split: {', '.join(others)}")


def _parse_view(path: Path, views: Sequence[str], walk: Walk) -> tuple[str, str] | None:
    match = _VIEW_STEM.match(path.stem)
    known = {v.lower(): v for v in views}
    if match and match["view"].lower() in known:
        return match["fish"], known[match["view"].lower()]
    got = f"the view suffix {('_' + match['view'])!r}" if match else "no _<view> suffix"
    walk.problems.add_file(path, f"{got}, but multi-view files are named <fishID>_<view>.<ext> with a view among "
                                 f"{', '.join(views)}. Rename them, or pass {option('views', ...)} listing the views "
                                 "your data has")
    return None


def _read_filename(walk: Walk, classes: Sequence[str] | None) -> list[Row]:
    """``root/<label>_<id>.ext`` (or ``root/<split>/<label>_<id>.ext``). With ``classes``, the
    longest class name that prefixes the stem, or a leading number indexing ``classes``."""
    rows = []
    splits = split_dirs(walk.root)
    _beside_splits(splits, walk)
    for split, folder in (splits or {"": walk.root}).items():
        for path in files_under(folder, walk, recursive=False):
            label = _filename_label(path, classes, walk)
            if label is not None:
                rows.append({"path": path, "class_name": label, "split": split, "fish_id": "", "view": ""})
    return rows


def _filename_label(path: Path, classes: Sequence[str] | None, walk: Walk) -> str | None:
    stem = path.stem
    if not classes:
        if "_" in stem:
            return stem.rsplit("_", 1)[0]
        walk.problems.add_file(path, "no label in the name; files must be named <label>_<id>.<ext> (e.g. "
                                     f"trout_0001.jpg). Rename them, or pass {option('classes', ...)} if labels "
                                     "contain underscores")
        return None
    label = next((c for c in sorted(classes, key=len, reverse=True) if stem.startswith(c + "_")), None)
    number = stem.split("_", 1)[0]
    if label is None and "_" in stem and number.isdigit() and not any(c.isdigit() for c in classes):
        if int(number) < len(classes):
            return classes[int(number)]  # <index>_<id>: the label is the class's position in the list
        walk.problems.add_file(path, f"the leading number is not a position in the class list (0 to "
                                     f"{len(classes) - 1}: {', '.join(classes)}); fix the file names or the class list")
        return None
    if label is None:
        walk.problems.add_file(path, f"the name does not start with a known class name and '_' (classes: "
                                     f"{', '.join(classes)}). Rename them to <label>_<id>.<ext>, or fix the class list")
    return label


# ---------------------------------------------------------------------------------------
# Fish, classes and masks


def _identify_fish(frame: pd.DataFrame, walk: Walk) -> pd.DataFrame:
    """Fish IDs as people number them. IDs unique in the dataset stay as they are; when the
    same ID has the same view in several class or split folders (``fish0_side.png`` in every
    class), IDs are numbered per folder, and each fish becomes (split, class, ID)."""
    folder = frame["split"] + "/" + frame["class_name"]
    folders_per_view = folder.groupby([frame["fish_id"], frame["view"]]).nunique()
    if not (folders_per_view > 1).any():
        return frame
    splits_per_view = frame.groupby(["fish_id", "class_name", "view"])["split"].nunique()
    if (splits_per_view > 1).any():
        fish, species, _ = splits_per_view[splits_per_view > 1].index[0]
        where = sorted(frame.loc[(frame["fish_id"] == fish) & (frame["class_name"] == species), "split"].unique())
        message = (f"fish IDs repeat across split folders within a class ({fish} of {species} is in "
                   f"{' and '.join(where)}): they are read as different fish. If they are the same fish photographed "
                   "again, test images leak into training: give each fish its own ID.")
        warnings.warn(message, DataWarning, stacklevel=4)
        walk.notes.append(message)
    example = folders_per_view[folders_per_view > 1].index[0][0]
    where = sorted(set(frame.loc[frame["fish_id"] == example, "class_name"]))
    prefix = (frame["split"] + "/").where(frame["split"] != "", "") + frame["class_name"] + "/"
    frame = frame.assign(fish_id=prefix + frame["fish_id"])
    walk.notes.append(f"fish IDs are numbered per folder ({example} is in {', '.join(where)}): each fish is "
                      f"identified by its split, class and ID, e.g. {frame['fish_id'].iat[0]!r}.")
    return frame


def _check_fish(frame: pd.DataFrame, views: Sequence[str], missing_views: MissingViews, walk: Walk) -> pd.DataFrame:
    """Duplicates, leaks and missing views of multi-view fish."""
    dup = frame[frame.duplicated(["fish_id", "view"], keep=False)]
    if len(dup):
        first = dup.sort_values(["fish_id", "view"]).head(2)["path"].tolist()
        others = dup["fish_id"].nunique() - 1
        walk.problems.add(
            f"fish {dup['fish_id'].iloc[0]} has its {dup['view'].iloc[0]!r} view twice: {first[0]} and {first[1]}"
            + (f" (and {others} other fish have a view twice)" if others else "")
            + ". Each fish has one file per view; remove or rename one of them."
        )
    for column, what in (("split", "splits"), ("class_name", "classes")):
        spread = frame.groupby("fish_id")[column].nunique()
        bad = spread[spread > 1]
        if len(bad):
            fish = bad.index[0]
            where = sorted(frame.loc[frame["fish_id"] == fish, column].unique())
            walk.problems.add(
                f"fish {fish} appears in several {what} ({', '.join(where)}), and {len(bad) - 1} other fish too. "
                + ("All views of one fish must stay in one split, or test images leak into training. "
                   if column == "split" else "A fish belongs to one species. ")
                + "Move its files together."
            )
    present = frame.groupby("fish_id")["view"].agg(set)
    lacking = {fish: [v for v in views if v not in have] for fish, have in present.items() if len(have) < len(views)}
    if not lacking:
        return frame
    listed = ", ".join(f"{fish} (missing {'/'.join(v)})" for fish, v in list(lacking.items())[:8])
    more = f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""
    message = f"{len(lacking)} fish lack a view: {listed}{more}."
    if missing_views == "error":
        walk.problems.add(message + f" Pass {option('missing_views', 'keep')} to keep them with the view marked "
                          f"missing, or {option('missing_views', 'drop')} to leave them out.")
        return frame
    if missing_views == "drop":
        frame = frame[~frame["fish_id"].isin(lacking)]
        message += f" Dropped them ({option('missing_views', 'drop')}): {frame['fish_id'].nunique()} complete fish remain."
    else:
        message += f" Kept them with the view marked missing ({option('missing_views', 'keep')})."
    warnings.warn(message, DataWarning, stacklevel=4)
    walk.notes.append(message)
    return frame


def _default_order(found: Iterable[str]) -> list[str]:
    """Alphabetical; numbers (labels ``0``, ``1``, ..., ``10``) in numeric order."""
    found = sorted(set(found))
    return sorted(found, key=int) if all(c.isdigit() for c in found) else found


def _check_classes(frame: pd.DataFrame, classes: Sequence[str] | None, walk: Walk) -> list[str]:
    found = _default_order(frame["class_name"])
    if classes is not None:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            walk.problems.add(
                f"{walk.root} has images of classes not in the class list: {unknown}. "
                f"Add them to {option('classes', ...)} or remove their folders. The list was {list(classes)}."
            )
        absent = [c for c in classes if c not in found]
        if absent:
            walk.problems.add(f"classes {absent} have no images under {walk.root}; check their spelling or remove them "
                              f"from {option('classes', ...)}.")
        found = list(classes)
    splits = [s for s in frame["split"].unique() if s]
    if len(splits) > 1:
        per_split = {s: set(frame.loc[frame["split"] == s, "class_name"]) for s in splits}
        everything = set(frame["class_name"])
        problems = [f"{s} lacks {sorted(everything - have)}" for s, have in sorted(per_split.items()) if have != everything]
        if problems:
            walk.problems.add(
                f"the splits of {walk.root} have different classes: {'; '.join(problems)}. "
                "Every split needs a folder for every class: add the missing images, or remove the extra class folders."
            )
    return found


def _mirrored_masks(walk: Walk) -> dict[str, dict[str, Path]]:
    """``root/masks/<kind>/<relpath>``: masks keyed by kind, then by relative path without extension."""
    trees: dict[str, dict[str, Path]] = {}
    masks_root = walk.root / MASKS_DIR
    if not masks_root.is_dir():
        return trees
    for kind_dir in class_dirs(masks_root):
        trees[kind_dir.name] = {p.relative_to(kind_dir).with_suffix("").as_posix(): p for p in files_under(kind_dir, walk)}
    return trees


def _mask_columns(frame: pd.DataFrame, walk: Walk, gt_masks: dict[str, dict[str, Path]]) -> pd.DataFrame:
    """One ``mask_<kind>`` column per kind: the '<class> GT' folders' masks, then the mirrored trees."""
    mirrored = _mirrored_masks(walk)
    kinds = list(dict.fromkeys(["body"] * bool(gt_masks) + list(mirrored)))
    for kind in kinds:
        tree = mirrored.get(kind, {})
        column = []
        for path, relpath in zip(frame["path"], frame["relpath"]):
            mask = gt_masks.get(path, {}).get(kind) or tree.get(relpath.rsplit(".", 1)[0])
            column.append(str(mask) if mask else "")
        frame[f"mask_{kind}"] = column
    return frame


def _saved_class_order(root: Path) -> list[str] | None:
    """The label order stored by the synthetic generator in ``dataset.json``, if any."""
    path = root / "dataset.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    classes = info.get("classes") if isinstance(info, dict) else None
    return list(classes) if isinstance(classes, list) else None


def _read_kaggle(walk: Walk, classes: Sequence[str] | None, views: Sequence[str]) -> tuple[list[Row], dict]:
    kaggle_root = find_kaggle_root(walk.root)
    if kaggle_root is None:
        raise DataError(
            f"{walk.root} is not in the Kaggle fish layout: no <Species>/<Species>/ folder with images was found "
            "within three levels. Point at the folder that holds the species folders."
        )
    originals = find_originals(walk.root, kaggle_root)
    walk.root = kaggle_root  # paths, masks/ and dataset.json are relative to the species' parent
    rows, gt_masks = read_kaggle(kaggle_root, walk)
    if originals is not None:
        walk.notes.append(originals_note(originals))
    return rows, gt_masks


# ---------------------------------------------------------------------------------------
# The table of layouts: a new layout is one reader and one entry.


@dataclass(frozen=True)
class Layout:
    """One way a dataset lies on disk: how to recognise it and how to read it."""

    title: str  # for messages: "class folders"
    pattern: str  # what its files look like: "root/<class>/*.jpg"
    detect: Callable[[Path, Sequence[str]], bool]  # (root, views) -> does root hold this layout?
    # (walk, classes, views) -> (rows, masks by image path); may move walk.root to where paths start
    read: Callable[[Walk, Sequence[str] | None, Sequence[str]], tuple[list[Row], dict]]
    by_fish: bool = False  # rows carry a fish ID and a view (the multi-view layout)


_LAYOUTS: dict[str, Layout] = {
    "kaggle": Layout("the Kaggle fish dataset", "<Species>/<Species>/00001.png",
                     lambda root, views: find_kaggle_root(root) is not None, _read_kaggle),
    "multiview": Layout("multi-view", "root/<split>/<class>/<fishID>_<view>.png", _detect_multiview,
                        lambda walk, classes, views: _read_folders(walk, views), by_fish=True),
    "class_folders": Layout("class folders", "root/<class>/*.jpg", lambda root, views: bool(_class_dirs_anywhere(root)),
                            lambda walk, classes, views: _read_folders(walk, None)),
    "filename": Layout("labels in file names", "root/<label>_<id>.jpg, or root/<split>/<label>_<id>.jpg",
                       _detect_filename, lambda walk, classes, views: (_read_filename(walk, classes), {})),
}
LAYOUTS: Mapping[str, Layout] = MappingProxyType(_LAYOUTS)  # in detection order; add with register_layout


def register_layout(name: str, layout: Layout, before: str | None = None) -> Layout:
    """Make ``scan_dataset`` (and ``--layout``) read ``name``. Detection tries it just before the
    layout ``before`` (at the end by default; ``"filename"`` recognises any folder of images)."""
    if name in _LAYOUTS or name == "auto":
        raise ValueError(f"a layout named {name!r} exists already; choose another name")
    if before is not None and before not in _LAYOUTS:
        raise ValueError(f"before={before!r} is not a layout; the layouts are {', '.join(_LAYOUTS)}")
    entries = list(_LAYOUTS.items())
    at = len(entries) if before is None else [n for n, _ in entries].index(before)
    entries.insert(at, (name, layout))
    _LAYOUTS.clear()
    _LAYOUTS.update(entries)
    return layout


def unregister_layout(name: str) -> None:
    """Forget a layout added with ``register_layout`` (tests, experiments)."""
    _LAYOUTS.pop(name, None)


def layout_names() -> list[str]:
    """The layout names ``scan_dataset`` reads, in detection order."""
    return list(_LAYOUTS)


# ---------------------------------------------------------------------------------------
# The entry points


def survey(
    root: str | Path,
    layout: str = "auto",
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] = VIEWS,
    missing_views: MissingViews = MISSING_VIEWS,
    unknown_files: UnknownFiles = UNKNOWN_FILES,
) -> tuple[DatasetIndex | None, Walk]:
    """Scan ``root`` without stopping at the first problem: returns the index of what could be
    read (None if nothing) and the walk, whose ``problems`` lists every problem found.
    Arguments as ``scan_dataset``; a folder that cannot be read at all still raises."""
    root = _check_root(root)
    if missing_views not in ("error", "keep", "drop"):
        raise ValueError(f"missing_views must be 'error', 'keep' or 'drop', got {missing_views!r}")
    if unknown_files not in ("error", "skip"):
        raise ValueError(f"unknown_files must be 'error' or 'skip', got {unknown_files!r}")
    if isinstance(views, str):
        views = [v for v in views.split(",") if v]
    if layout == "auto":
        layout = detect_layout(root, views)
    elif layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {', '.join(LAYOUTS)}, got {layout!r}")
    walk = Walk(root, unknown_files)
    rows, gt_masks = LAYOUTS[layout].read(walk, classes, views)
    if not rows:
        walk.report_strangers()
        if walk.problems:
            return None, walk
        raise DataError(f"no images found under {walk.root} in the {layout!r} layout.")
    by_fish = LAYOUTS[layout].by_fish
    frame, class_list = _labelled_frame(rows, walk, classes, by_fish)
    if by_fish:
        frame = _check_fish(_identify_fish(frame, walk), list(views), missing_views, walk)
    frame = _mask_columns(frame.copy(), walk, gt_masks)
    walk.report_strangers()
    frame["label"] = frame["class_name"].map({c: i for i, c in enumerate(class_list)}).astype(int)
    frame = frame[COLUMNS + [c for c in frame.columns if c.startswith("mask_")]]
    frame = frame.sort_values(["label", "fish_id", "view", "relpath"]).reset_index(drop=True)
    view_names = tuple(v for v in views if v in set(frame["view"])) if by_fish else ()
    options = {"layout": layout, "views": list(views), "unknown_files": unknown_files, "missing_views": missing_views}
    index = DatasetIndex(root=walk.root, layout=layout, classes=class_list, frame=frame, views=view_names,
                         notes=walk.notes, options=options)
    return index, walk


def _labelled_frame(rows: list[Row], walk: Walk, classes: Sequence[str] | None,
                    by_fish: bool) -> tuple[pd.DataFrame, list[str]]:
    """The rows as a frame with relative paths (and, one image per fish, the path as fish ID),
    kept to the classes of the class order; returns it with that order."""
    root = walk.root
    frame = pd.DataFrame(rows)
    walk.classes = _default_order(frame["class_name"])
    frame["relpath"] = [p.relative_to(root).as_posix() for p in frame["path"]]
    if not by_fish:
        frame["fish_id"] = frame["relpath"].str.rsplit(".", n=1).str[0]
    frame["path"] = frame["path"].map(str)
    order = classes if classes is not None else _saved_class_order(root)
    if order is not None and classes is None and set(order) != set(frame["class_name"]):
        order = None  # a dataset.json from something else: fall back to alphabetical
    class_list = _check_classes(frame, order, walk)
    return frame[frame["class_name"].isin(class_list)], class_list


def scan_dataset(
    root: str | Path,
    layout: str = "auto",
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] = VIEWS,
    missing_views: MissingViews = MISSING_VIEWS,
    unknown_files: UnknownFiles = UNKNOWN_FILES,
) -> DatasetIndex:
    """Find and check every image of the dataset at ``root``.

    ``layout`` is ``"auto"`` or a name of ``LAYOUTS``. ``classes`` fixes the label order (by
    default: the order saved by the synthetic generator, else alphabetical, numbers in
    numeric order). For multi-view data, ``views`` lists the view names (a list, or
    ``"side,top"``) and ``missing_views`` says what to do with a fish missing one: ``"error"``
    (default), ``"keep"`` it with the view marked missing, or ``"drop"`` it; keeping or
    dropping is reported with a ``DataWarning``. ``unknown_files="skip"`` leaves non-image
    files out (and says so in ``notes``) instead of refusing them. Every problem found raises
    one ``DataError`` that lists them all.
    """
    index, walk = survey(root, layout, classes=classes, views=views, missing_views=missing_views,
                         unknown_files=unknown_files)
    walk.problems.raise_if_any(walk.root)
    assert index is not None  # no rows without a problem raises in survey
    return index


def group_by_fish(index: DatasetIndex) -> pd.DataFrame:
    """One row per fish of a multi-view index: ``fish_id``, ``label``, ``split`` and, per view,
    the path of its image ("" where the view is missing)."""
    if not LAYOUTS[index.layout].by_fish:
        raise ValueError(f"group_by_fish needs a multi-view dataset; this one is {index.layout!r}")
    frame = index.frame
    fish = frame.groupby("fish_id", sort=False)[["label", "class_name", "split"]].first()
    paths: dict[str, dict[str, str]] = defaultdict(dict)
    for fish_id, view, path in zip(frame["fish_id"], frame["view"], frame["path"]):
        paths[view][fish_id] = path
    for view in index.views:
        fish[view] = [paths[view].get(f, "") for f in fish.index]
    return fish.reset_index()
