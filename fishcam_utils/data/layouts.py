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

How each layout is recognised and walked is ``layout_readers``'s (``LAYOUTS``, ``register_layout``);
the index and the ``ScanOptions`` are ``dataset_index``'s. Their names can be imported from here too.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from ..errors import DataError, DataWarning, option
from .dataset_index import COLUMNS, DatasetIndex, MissingViews, ScanOptions
from .folders import MASKS_DIR, UnknownFiles, Walk, class_dirs, files_under
from .kaggle_layout import find_kaggle_root
from .layout_readers import (
    LAYOUTS,
    Layout,
    Row,
    check_root,
    detect_layout,
    layout_names,
    register_layout,
    unregister_layout,
)

__all__ = [
    "LAYOUTS", "DataWarning", "DatasetIndex", "Layout", "ScanOptions", "detect_layout", "find_kaggle_root",
    "group_by_fish", "layout_names", "register_layout", "scan_dataset", "survey", "unregister_layout",
]

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
        message += (f" Dropped them ({option('missing_views', 'drop')}): {frame['fish_id'].nunique()} complete fish "
                    "remain.")
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
        problems = [f"{s} lacks {sorted(everything - have)}" for s, have in sorted(per_split.items())
                    if have != everything]
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
        trees[kind_dir.name] = {p.relative_to(kind_dir).with_suffix("").as_posix(): p
                                for p in files_under(kind_dir, walk)}
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



# ---------------------------------------------------------------------------------------
# The entry points


def survey(
    root: str | Path,
    layout: str | None = None,
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    missing_views: MissingViews | None = None,
    unknown_files: UnknownFiles | None = None,
    scan: ScanOptions | None = None,
) -> tuple[DatasetIndex | None, Walk]:
    """Scan ``root`` without stopping at the first problem: returns the index of what could be
    read (None if nothing) and the walk, whose ``problems`` lists every problem found.
    Arguments as ``scan_dataset``; a folder that cannot be read at all still raises."""
    root = check_root(root)
    scan = ScanOptions.merge(scan, layout=layout, views=views, missing_views=missing_views,
                             unknown_files=unknown_files)
    views = scan.views
    layout = detect_layout(root, views) if scan.layout == "auto" else scan.layout
    walk = Walk(root, scan.unknown_files)
    rows, gt_masks = LAYOUTS[layout].read(walk, classes, views)
    if not rows:
        walk.report_strangers()
        if walk.problems:
            return None, walk
        raise DataError(f"no images found under {walk.root} in the {layout!r} layout.")
    by_fish = LAYOUTS[layout].by_fish
    frame, class_list = _labelled_frame(rows, walk, classes, by_fish)
    if by_fish:
        frame = _check_fish(_identify_fish(frame, walk), list(views), scan.missing_views, walk)
    frame = _mask_columns(frame.copy(), walk, gt_masks)
    walk.report_strangers()
    frame["label"] = frame["class_name"].map({c: i for i, c in enumerate(class_list)}).astype(int)
    frame = frame[COLUMNS + [c for c in frame.columns if c.startswith("mask_")]]
    frame = frame.sort_values(["label", "fish_id", "view", "relpath"]).reset_index(drop=True)
    view_names = tuple(v for v in views if v in set(frame["view"])) if by_fish else ()
    index = DatasetIndex(root=walk.root, layout=layout, classes=class_list, frame=frame, views=view_names,
                         notes=walk.notes, options=replace(scan, layout=layout))
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
    layout: str | None = None,
    *,
    classes: Sequence[str] | None = None,
    views: Sequence[str] | None = None,
    missing_views: MissingViews | None = None,
    unknown_files: UnknownFiles | None = None,
    scan: ScanOptions | None = None,
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

    ``scan`` gives the four reading options as one ``ScanOptions`` (an ``index.options``, or a
    checkpoint's ``ScanOptions.from_dict(preprocessing["scan"])``); a keyword given as well, other than
    its default, replaces its field. The index's ``options`` record how it was read.
    """
    index, walk = survey(root, layout, classes=classes, views=views, missing_views=missing_views,
                         unknown_files=unknown_files, scan=scan)
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
