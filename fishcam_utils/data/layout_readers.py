"""The layouts a dataset folder may have: how each is recognised and read, in one table.

Each entry of ``LAYOUTS`` is a ``Layout``: a detector (does this folder hold it?) and a reader
that walks the folder and returns one row per image, ``(path, class_name, split, fish_id,
view)``, saying in the ``Walk`` what it stepped over. ``register_layout`` adds one; the scan
itself (checks, masks, labels) is ``layouts.scan_dataset``'s.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArgumentError, DataError, listing, option
from ..registry import Registry
from .folders import DATASET_FILES, Walk, class_dirs, class_files, files_under, has_images, split_dirs, visible_children
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
    root = check_root(root)
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


def check_root(root: str | Path) -> Path:
    """``root`` as an absolute path to a folder that exists; ``ArgumentError`` or ``DataError`` naming the fix
    when it is not a path, does not exist or is a file."""
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


LAYOUTS: Registry[Layout] = Registry("layout", {
    "kaggle": Layout("the Kaggle fish dataset", "<Species>/<Species>/00001.png",
                     lambda root, views: find_kaggle_root(root) is not None, _read_kaggle),
    "multiview": Layout("multi-view", "root/<split>/<class>/<fishID>_<view>.png", _detect_multiview,
                        lambda walk, classes, views: _read_folders(walk, views), by_fish=True),
    "class_folders": Layout("class folders", "root/<class>/*.jpg", lambda root, views: bool(_class_dirs_anywhere(root)),
                            lambda walk, classes, views: _read_folders(walk, None)),
    "filename": Layout("labels in file names", "root/<label>_<id>.jpg, or root/<split>/<label>_<id>.jpg",
                       _detect_filename, lambda walk, classes, views: (_read_filename(walk, classes), {})),
}, hint="register_layout adds one")  # in detection order


def register_layout(name: str, layout: Layout, before: str | None = None) -> Layout:
    """Make ``scan_dataset`` (and ``--layout``) read ``name``. Detection tries it just before the
    layout ``before`` (at the end by default; ``"filename"`` recognises any folder of images)."""
    if name == "auto":
        raise ValueError("'auto' means \"detect the layout\"; choose another name")
    return LAYOUTS.register(name, layout, before=before)


def unregister_layout(name: str) -> None:
    """Forget a layout added with ``register_layout`` (tests, experiments)."""
    LAYOUTS.unregister(name)


def layout_names() -> list[str]:
    """The layout names ``scan_dataset`` reads, in detection order."""
    return LAYOUTS.names()

