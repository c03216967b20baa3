"""Finding the images of a dataset on disk, whatever layout it has, and checking them.

``scan_dataset(root)`` reads one of four layouts, detected automatically or named:

- ``"class_folders"``: ``root/<class>/*.jpg`` (optionally ``root/<split>/<class>/...``);
- ``"kaggle"``: the Kaggle "A Large Scale Fish Dataset": ``<Species>/<Species>/NNNNN.png``
  with masks in ``<Species>/<Species> GT/NNNNN.png``; masks are paired, never counted;
- ``"multiview"``: ``root/<split>/<class>/<fishID>_<view>.png`` (split folders optional);
- ``"filename"``: ``root/<label>_<id>.jpg``, the label read from the file name.

Masks may sit in a mirrored tree, ``root/masks/<kind>/<same relative path>``. The result is a
``DatasetIndex``: one row per image, with its label, split, fish ID, view and mask paths.
Bad input raises a ``DataError`` naming the file or folder and the fix.
"""

from __future__ import annotations

import json
import re
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import pandas as pd

from ..errors import DataError
from .images import IMAGE_EXTENSIONS, is_image_file, is_junk_file
from .species import VIEWS

LAYOUTS = ("class_folders", "kaggle", "multiview", "filename")
MASKS_DIR = "masks"
# Folder names read as splits, and the name each one stands for.
SPLIT_NAMES = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}
COLUMNS = ["path", "relpath", "label", "class_name", "split", "fish_id", "view"]

MissingViews = Literal["error", "keep", "drop"]
UnknownFiles = Literal["error", "skip"]


class DataWarning(UserWarning):
    """Something in a dataset was kept or left out by choice; the message says what."""


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
        return replace(self, frame=frame.reset_index(drop=True), notes=list(self.notes))

    def counts(self) -> pd.DataFrame:
        """Number of images per class (rows, in label order) and split (columns)."""
        frame = self.frame.assign(split=self.frame["split"].replace("", "all"))
        table = pd.crosstab(pd.Categorical(frame["class_name"], categories=self.classes), frame["split"])
        table.index.name, table.columns.name = "class", "split"
        ordered = [s for s in ["train", "val", "test", "all"] if s in table.columns]
        return table[ordered + [c for c in table.columns if c not in ordered]]


# ---------------------------------------------------------------------------------------
# Walking folders


def _visible_children(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _files_under(folder: Path, unknown_files: UnknownFiles) -> list[Path]:
    """Image files under ``folder`` (recursively, skipping hidden folders such as .ipynb_checkpoints)."""
    images, strangers = [], []
    for path in sorted(folder.rglob("*")):
        rel_parts = path.relative_to(folder).parts
        if any(part.startswith(".") for part in rel_parts[:-1]) or path.is_dir():
            continue
        if is_junk_file(path):
            continue
        if is_image_file(path):
            images.append(path)
        else:
            strangers.append(path)
    if strangers and unknown_files == "error":
        listed = "\n  ".join(str(p) for p in strangers[:5])
        more = f"\n  ... and {len(strangers) - 5} more" if len(strangers) > 5 else ""
        raise DataError(
            f"{len(strangers)} file(s) in {folder} are not images (known extensions: "
            f"{', '.join(sorted(IMAGE_EXTENSIONS))}, in any case):\n  {listed}{more}\n"
            "Move them out of the dataset folder, or pass unknown_files='skip' to leave them out."
        )
    return images


def _class_files(class_dir: Path, unknown_files: UnknownFiles) -> list[Path]:
    files = _files_under(class_dir, unknown_files)
    if not files:
        raise DataError(
            f"class folder {class_dir} has no images (looked for {', '.join(sorted(IMAGE_EXTENSIONS))}). "
            "Add its images, or remove the folder if the class is not wanted."
        )
    return files


def _split_dirs(root: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for child in _visible_children(root):
        name = SPLIT_NAMES.get(child.name.lower())
        if child.is_dir() and name:
            if name in found:
                raise DataError(f"{found[name]} and {child} are both the {name!r} split; keep one of them.")
            found[name] = child
    return found


def _class_dirs(folder: Path) -> list[Path]:
    return [c for c in _visible_children(folder) if c.is_dir() and c.name != MASKS_DIR]


# ---------------------------------------------------------------------------------------
# Layout detection

_VIEW_STEM = re.compile(r"^(?P<fish>.+)_(?P<view>[A-Za-z]+)$")


def _is_kaggle_species_dir(folder: Path) -> bool:
    inner = folder / folder.name
    return inner.is_dir() and any(is_image_file(p) for p in inner.iterdir())


def find_kaggle_root(root: str | Path, depth: int = 3) -> Path | None:
    """The folder holding the Kaggle species folders, at or below ``root``; None if none.

    The Kaggle archive nests it as ``Fish_Dataset/Fish_Dataset/<Species>/<Species>/``.
    """
    level = [Path(root)]
    for _ in range(depth + 1):
        for folder in level:
            if folder.is_dir() and any(c.is_dir() and _is_kaggle_species_dir(c) for c in _visible_children(folder)):
                return folder
        level = [c for f in level if f.is_dir() for c in _visible_children(f) if c.is_dir()]
    return None


def _looks_multiview(files: Iterable[Path], views: Sequence[str]) -> bool:
    known = {v.lower() for v in views}
    for path in files:
        match = _VIEW_STEM.match(path.stem)
        if match and match["view"].lower() in known:
            return True
    return False


def detect_layout(root: str | Path, views: Sequence[str] = VIEWS) -> str:
    """Which of the four layouts ``root`` holds. Raises ``DataError`` if it holds none."""
    root = _check_root(root)
    if find_kaggle_root(root) is not None:
        return "kaggle"
    top = _split_dirs(root)
    folders = list(top.values()) or [root]
    class_dirs = [c for f in folders for c in _class_dirs(f)]
    if class_dirs:
        sample = [p for c in class_dirs for p in c.iterdir() if is_image_file(p)][:2000]
        return "multiview" if _looks_multiview(sample, views) else "class_folders"
    if any(is_image_file(p) for p in root.iterdir()):
        return "filename"
    raise DataError(
        f"no images found under {root}. FishCAM reads these layouts: class folders "
        "(root/<class>/*.jpg), the Kaggle fish dataset (<Species>/<Species>/00001.png), multi-view "
        "(root/<split>/<class>/<fishID>_<view>.png) and labels in file names (root/<label>_<id>.jpg). "
        "Check the path, or make the course's dataset with `fishcam make-data`."
    )


def _check_root(root: str | Path) -> Path:
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"dataset folder {root} does not exist; check the path (it is relative to {Path.cwd()}).")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a dataset folder; pass the folder that holds the images.")
    return root.resolve()


# ---------------------------------------------------------------------------------------
# The four readers: each returns rows of (path, class_name, split, fish_id, view).

Row = dict


def _read_folders(root: Path, unknown_files: UnknownFiles, views: Sequence[str] | None) -> list[Row]:
    """Class folders, with or without split folders; with ``views``, files are <fish>_<view>."""
    splits = _split_dirs(root)
    folders = splits or {"": root}
    rows: list[Row] = []
    for split, folder in folders.items():
        class_dirs = _class_dirs(folder)
        if not class_dirs:
            raise DataError(
                f"{folder} has no class folders; expected {folder}/<class>/<images>."
                + (" Every split folder needs one folder per class." if split else "")
            )
        for class_dir in class_dirs:
            for path in _class_files(class_dir, unknown_files):
                row = {"path": path, "class_name": class_dir.name, "split": split, "fish_id": "", "view": ""}
                if views is not None:
                    row["fish_id"], row["view"] = _parse_view(path, views)
                rows.append(row)
    return rows


def _parse_view(path: Path, views: Sequence[str]) -> tuple[str, str]:
    match = _VIEW_STEM.match(path.stem)
    known = {v.lower(): v for v in views}
    if not match or match["view"].lower() not in known:
        got = f"view suffix {('_' + match['view'])!r}" if match else "no _<view> suffix"
        raise DataError(
            f"{path}: {got}, but multi-view files are named <fishID>_<view>{path.suffix} with a view among "
            f"{', '.join(views)}. Rename the file, or pass views=[...] listing the views your data has."
        )
    return match["fish"], known[match["view"].lower()]


def _read_kaggle(kaggle_root: Path, unknown_files: UnknownFiles) -> tuple[list[Row], dict[str, dict[str, Path]], list[str]]:
    """The species folders under ``kaggle_root``. Returns rows, GT masks by image path, and notes."""
    rows: list[Row] = []
    masks: dict[str, dict[str, Path]] = {}
    notes = []
    unmatched = 0
    for species_dir in _visible_children(kaggle_root):
        if not species_dir.is_dir() or species_dir.name == MASKS_DIR:
            continue
        image_dir = species_dir / species_dir.name
        if not image_dir.is_dir():
            continue
        images = _class_files(image_dir, unknown_files)
        gt_dir = species_dir / f"{species_dir.name} GT"
        gt = {p.stem: p for p in _files_under(gt_dir, unknown_files)} if gt_dir.is_dir() else {}
        for path in images:
            rows.append({"path": path, "class_name": species_dir.name, "split": "", "fish_id": "", "view": ""})
            if path.stem in gt:
                masks.setdefault(str(path), {})["body"] = gt[path.stem]
            else:
                unmatched += 1
    notes.append(
        f"Kaggle layout at {kaggle_root}: {len(rows)} images; the 'GT' folders hold masks, "
        "paired with their images as body masks, not counted as samples."
    )
    if unmatched:
        notes.append(f"{unmatched} image(s) have no GT mask (their mask_body is empty).")
    return rows, masks, notes


def _read_filename(root: Path, classes: Sequence[str] | None, unknown_files: UnknownFiles) -> list[Row]:
    """``root/<label>_<id>.ext``; with ``classes``, the longest class name that prefixes the stem."""
    files = [p for p in _visible_children(root) if p.is_file() and not is_junk_file(p)]
    strangers = [p for p in files if not is_image_file(p)]
    if strangers and unknown_files == "error":
        raise DataError(
            f"{strangers[0]} is not an image; move it out of {root} or pass unknown_files='skip'."
        )
    rows = []
    by_length = sorted(classes or [], key=len, reverse=True)
    for path in (p for p in files if is_image_file(p)):
        if classes:
            label = next((c for c in by_length if path.stem.startswith(c + "_")), None)
            if label is None:
                raise DataError(
                    f"{path.name}: its name does not start with a known class name and '_' "
                    f"(classes: {', '.join(classes)}). Rename it to <label>_<id>{path.suffix} or fix the class list."
                )
        else:
            if "_" not in path.stem:
                raise DataError(
                    f"{path.name}: no label in the name; files must be named <label>_<id>{path.suffix} "
                    "(e.g. trout_0001.jpg). Rename it, or pass classes=[...] if labels contain underscores."
                )
            label = path.stem.rsplit("_", 1)[0]
        rows.append({"path": path, "class_name": label, "split": "", "fish_id": "", "view": ""})
    return rows


# ---------------------------------------------------------------------------------------
# Masks in mirrored trees, checks, and the public entry point


def _mirrored_masks(root: Path, unknown_files: UnknownFiles) -> dict[str, dict[str, Path]]:
    """``root/masks/<kind>/<relpath>``: masks keyed by kind, then by relative path without extension."""
    trees: dict[str, dict[str, Path]] = {}
    masks_root = root / MASKS_DIR
    if not masks_root.is_dir():
        return trees
    for kind_dir in _class_dirs(masks_root):
        trees[kind_dir.name] = {
            p.relative_to(kind_dir).with_suffix("").as_posix(): p for p in _files_under(kind_dir, unknown_files)
        }
    return trees


def _check_classes(frame: pd.DataFrame, classes: Sequence[str] | None, root: Path) -> list[str]:
    found = sorted(frame["class_name"].unique())
    if classes is not None:
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(
                f"{root} has images of classes not in the class list: {unknown}. "
                f"Add them to classes=[...] or remove their folders. The list was {list(classes)}."
            )
        absent = [c for c in classes if c not in found]
        if absent:
            raise DataError(
                f"classes {absent} have no images under {root}; check their spelling or remove them from classes=[...]."
            )
        found = list(classes)
    splits = [s for s in frame["split"].unique() if s]
    if len(splits) > 1:
        per_split = {s: set(frame.loc[frame["split"] == s, "class_name"]) for s in splits}
        everything = set(found)
        problems = [f"{s} lacks {sorted(everything - have)}" for s, have in sorted(per_split.items()) if have != everything]
        if problems:
            raise DataError(
                f"the splits of {root} have different classes: {'; '.join(problems)}. "
                "Every split needs a folder for every class: add the missing images, or remove the extra class folders."
            )
    return found


def _check_fish(frame: pd.DataFrame, views: Sequence[str], missing_views: MissingViews) -> tuple[pd.DataFrame, list[str]]:
    """Duplicates, leaks and missing views of multi-view fish."""
    notes: list[str] = []
    dup = frame[frame.duplicated(["fish_id", "view"], keep=False)]
    if len(dup):
        first = dup.sort_values(["fish_id", "view"]).head(2)["path"].tolist()
        raise DataError(
            f"fish {dup['fish_id'].iloc[0]} has its {dup['view'].iloc[0]!r} view twice: {first[0]} and {first[1]}. "
            "Each fish has one file per view; remove or rename one of them."
        )
    for column, what in (("split", "splits"), ("class_name", "classes")):
        spread = frame.groupby("fish_id")[column].nunique()
        bad = spread[spread > 1]
        if len(bad):
            fish = bad.index[0]
            where = sorted(frame.loc[frame["fish_id"] == fish, column].unique())
            raise DataError(
                f"fish {fish} appears in several {what} ({', '.join(where)}), and {len(bad) - 1} other fish too. "
                + ("All views of one fish must stay in one split, or test images leak into training. "
                   if column == "split" else "A fish belongs to one species. ")
                + "Move its files together."
            )
    present = frame.groupby("fish_id")["view"].agg(set)
    lacking = {fish: [v for v in views if v not in have] for fish, have in present.items() if len(have) < len(views)}
    if lacking:
        listed = ", ".join(f"{fish} (missing {'/'.join(v)})" for fish, v in list(lacking.items())[:8])
        more = f" and {len(lacking) - 8} more" if len(lacking) > 8 else ""
        message = f"{len(lacking)} fish lack a view: {listed}{more}."
        if missing_views == "error":
            raise DataError(
                message + " Pass missing_views='keep' to keep them with the view marked missing, "
                "or missing_views='drop' to leave them out."
            )
        if missing_views == "drop":
            frame = frame[~frame["fish_id"].isin(lacking)]
            message += f" Dropped them (missing_views='drop'): {frame['fish_id'].nunique()} complete fish remain."
        else:
            message += " Kept them with the view marked missing (missing_views='keep')."
        warnings.warn(message, DataWarning, stacklevel=3)
        notes.append(message)
    return frame, notes


def _saved_class_order(root: Path) -> list[str] | None:
    """The label order stored by the synthetic generator in ``dataset.json``, if any."""
    path = root / "dataset.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    classes = info.get("classes") if isinstance(info, dict) else None
    return list(classes) if isinstance(classes, list) else None


def scan_dataset(
    root: str | Path,
    layout: str = "auto",
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] = VIEWS,
    missing_views: MissingViews = "error",
    unknown_files: UnknownFiles = "error",
) -> DatasetIndex:
    """Find and check every image of the dataset at ``root``.

    ``layout`` is ``"auto"`` or one of ``LAYOUTS``. ``classes`` fixes the label order (by
    default: the order saved by the synthetic generator, else alphabetical). For multi-view
    data, ``views`` lists the view names and ``missing_views`` says what to do with a fish
    missing one: ``"error"`` (default), ``"keep"`` it with the view marked missing, or
    ``"drop"`` it; keeping or dropping is reported with a ``DataWarning``.
    """
    root = _check_root(root)
    if missing_views not in ("error", "keep", "drop"):
        raise ValueError(f"missing_views must be 'error', 'keep' or 'drop', got {missing_views!r}")
    if unknown_files not in ("error", "skip"):
        raise ValueError(f"unknown_files must be 'error' or 'skip', got {unknown_files!r}")
    if layout == "auto":
        layout = detect_layout(root, views)
    elif layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")

    notes: list[str] = []
    extra_masks: dict[str, dict[str, Path]] = {}
    if layout == "kaggle":
        kaggle_root = find_kaggle_root(root)
        if kaggle_root is None:
            raise DataError(
                f"{root} is not in the Kaggle fish layout: no <Species>/<Species>/ folder with images was found "
                "within three levels. Point at the folder that holds the species folders."
            )
        root = kaggle_root  # paths, masks/ and dataset.json are relative to the species' parent
        rows, extra_masks, notes = _read_kaggle(root, unknown_files)
    elif layout == "filename":
        rows = _read_filename(root, classes, unknown_files)
    else:
        rows = _read_folders(root, unknown_files, views if layout == "multiview" else None)
    if not rows:
        raise DataError(f"no images found under {root} in the {layout!r} layout.")

    frame = pd.DataFrame(rows)
    frame["relpath"] = [p.relative_to(root).as_posix() for p in frame["path"]]
    if layout != "multiview":
        frame["fish_id"] = frame["relpath"].str.rsplit(".", n=1).str[0]
    frame["path"] = frame["path"].map(str)

    order = classes if classes is not None else _saved_class_order(root)
    if order is not None and classes is None and set(order) != set(frame["class_name"]):
        order = None  # a dataset.json from something else: fall back to alphabetical
    class_list = _check_classes(frame, order, root)

    if layout == "multiview":
        frame, fish_notes = _check_fish(frame, list(views), missing_views)
        notes += fish_notes

    # Masks: the Kaggle GT folders, and any mirrored trees root/masks/<kind>/...
    mirrored = _mirrored_masks(root, unknown_files)
    kinds = list(dict.fromkeys(["body"] * bool(extra_masks) + list(mirrored)))
    for kind in kinds:
        tree = mirrored.get(kind, {})
        column = []
        for path, relpath in zip(frame["path"], frame["relpath"]):
            mask = extra_masks.get(path, {}).get(kind) or tree.get(relpath.rsplit(".", 1)[0])
            column.append(str(mask) if mask else "")
        frame[f"mask_{kind}"] = column

    frame["label"] = frame["class_name"].map({c: i for i, c in enumerate(class_list)}).astype(int)
    frame = frame[COLUMNS + [c for c in frame.columns if c.startswith("mask_")]]
    frame = frame.sort_values(["label", "fish_id", "view", "relpath"]).reset_index(drop=True)
    view_names = tuple(v for v in views if v in set(frame["view"])) if layout == "multiview" else ()
    return DatasetIndex(root=root, layout=layout, classes=class_list, frame=frame, views=view_names, notes=notes)


def group_by_fish(index: DatasetIndex) -> pd.DataFrame:
    """One row per fish of a multi-view index: ``fish_id``, ``label``, ``split`` and, per view,
    the path of its image ("" where the view is missing)."""
    if index.layout != "multiview":
        raise ValueError(f"group_by_fish needs a multi-view dataset; this one is {index.layout!r}")
    frame = index.frame
    fish = frame.groupby("fish_id", sort=False)[["label", "class_name", "split"]].first()
    paths: dict[str, dict[str, str]] = defaultdict(dict)
    for fish_id, view, path in zip(frame["fish_id"], frame["view"], frame["path"]):
        paths[view][fish_id] = path
    for view in index.views:
        fish[view] = [paths[view].get(f, "") for f in fish.index]
    return fish.reset_index()
