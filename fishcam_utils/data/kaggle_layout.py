"""The Kaggle fish dataset's layout on disk, whole or in part.

The archive holds ``Fish_Dataset/Fish_Dataset/<Species>/<Species>/NNNNN.png`` with the masks in
``<Species>/<Species> GT/``, and the original photos in ``NA_Fish_Dataset/<Species>/``. Copies
people make are often partial: one species folder, or the species folders flattened by one
level (``<Species>/`` beside ``<Species> GT/``). Wherever they stand, mask folders hold masks:
they are never read as classes.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import DataError
from .folders import (
    DATASET_FILES,
    MASKS_DIR,
    Walk,
    breadth_first,
    class_files,
    files_under,
    has_images,
    visible_children,
)
from .images import is_image_file

GT_SUFFIX = " GT"
ORIGINALS_DIR = "NA_Fish_Dataset"


def is_originals(folder: Path) -> bool:
    """True for the archive's folder of original photos, ``NA_Fish_Dataset``."""
    return folder.name.lower() == ORIGINALS_DIR.lower()


def set_aside_originals(folders: list[Path], walk: Walk) -> list[Path]:
    """Class folders without ``NA_Fish_Dataset`` (a flattened Kaggle copy keeps it beside the
    species): it is not a species, and its photos are the sources of the others. Said in a note."""
    kept = [f for f in folders if not is_originals(f)]
    for originals in (f for f in folders if is_originals(f)):
        walk.notes.append(originals_note(originals))
    return kept


def is_species_folder(folder: Path) -> bool:
    """True for a Kaggle species folder: ``<Species>/<Species>/`` holding images."""
    inner = folder / folder.name
    return inner.is_dir() and has_images(inner)


def find_kaggle_root(root: str | Path, depth: int = 3) -> Path | None:
    """The folder holding the Kaggle species folders, at or below ``root``; None if none.

    The Kaggle archive nests it as ``Fish_Dataset/Fish_Dataset/<Species>/<Species>/``.
    """
    for folder in breadth_first(Path(root), depth):
        if folder.is_dir() and any(c.is_dir() and is_species_folder(c) for c in visible_children(folder)):
            return folder
    return None


def pair_mask_folders(folders: list[Path], walk: Walk) -> tuple[list[Path], dict[str, Path]]:
    """Sibling folders split into classes and Kaggle-style mask folders (``<X> GT`` beside ``<X>``).

    Returns the class folders and each class's mask folder by class name. A ``<X> GT`` folder
    with no ``<X>`` beside it is a problem: read as a class, it would count masks as images.
    """
    names = {f.name for f in folders}
    classes, masks = [], {}
    for folder in folders:
        base = folder.name[: -len(GT_SUFFIX)] if folder.name.endswith(GT_SUFFIX) else None
        if base is None:
            classes.append(folder)
        elif base in names:
            masks[base] = folder
        else:
            walk.problems.add(
                f"{folder} looks like a mask folder of the Kaggle fish layout ('{base}{GT_SUFFIX}' beside '{base}'), "
                f"but there is no folder {base!r} beside it, so its files would be counted as images of a class "
                f"{folder.name!r}. Put the images of {base!r} beside it, or rename the folder if it really is a class."
            )
    if masks:
        walk.notes.append(f"the '<class>{GT_SUFFIX}' folders beside {len(masks)} class folder(s) hold masks (as in the "
                          "Kaggle fish dataset): paired with their images as body masks, not counted as samples.")
    return classes, masks


def refuse_single_species(root: Path, classes: list[Path], masks: dict[str, Path]) -> None:
    """Raise if ``root`` is one Kaggle species folder (``Trout/Trout`` beside ``Trout/Trout GT``)."""
    if len(classes) == 1 and classes[0].name == root.name and root.name in masks:
        raise DataError(
            f"{root} is one species folder of the Kaggle fish dataset ({root.name}/{root.name} with its masks in "
            f"{root.name}/{root.name}{GT_SUFFIX}): a classifier needs every species. Point at its parent folder "
            f"{root.parent}, which holds all the species folders."
        )


def masks_by_stem(mask_dir: Path | None, walk: Walk) -> dict[str, Path]:
    """The mask files of a GT folder by file stem (``00001``)."""
    return {p.stem: p for p in files_under(mask_dir, walk)} if mask_dir is not None and mask_dir.is_dir() else {}


def read_kaggle(kaggle_root: Path, walk: Walk) -> tuple[list[dict], dict[str, dict[str, Path]]]:
    """The species folders under ``kaggle_root``: rows, and GT masks by image path.

    Every image without a mask, folder in another form and stray file is said in ``walk``.
    """
    rows: list[dict] = []
    masks: dict[str, dict[str, Path]] = {}
    unmatched, stray = 0, []
    for child in visible_children(kaggle_root):
        if not child.is_dir():
            if child.name not in DATASET_FILES:
                stray.append(child.name)
            continue
        if child.name == MASKS_DIR or is_originals(child):
            continue  # mirrored masks are read later; the originals are offered in a note
        if not is_species_folder(child):
            _other_folder(child, walk)
            continue
        gt = masks_by_stem(child / f"{child.name}{GT_SUFFIX}", walk)
        for path in class_files(child / child.name, walk):
            rows.append({"path": path, "class_name": child.name, "split": "", "fish_id": "", "view": ""})
            if path.stem in gt:
                masks.setdefault(str(path), {})["body"] = gt[path.stem]
            else:
                unmatched += 1
    walk.notes.append(f"Kaggle layout at {kaggle_root}: {len(rows)} images; the 'GT' folders hold masks, "
                      "paired with their images as body masks, not counted as samples.")
    if unmatched:
        walk.notes.append(f"{unmatched} image(s) have no GT mask (their mask_body is empty).")
    if stray:
        walk.notes.append(f"skipped {len(stray)} file(s) beside the species folders, part of no class: "
                          + ", ".join(stray[:8]) + (" ..." if len(stray) > 8 else ""))
    return rows, masks


def _other_folder(folder: Path, walk: Walk) -> None:
    if any(is_image_file(p) for p in folder.rglob("*")):
        walk.problems.add(
            f"{folder} is beside the Kaggle species folders but not in their form {folder.name}/{folder.name}/: "
            f"its images are not read. Move them into {folder / folder.name} (and their masks into "
            f"{folder / (folder.name + GT_SUFFIX)}), or move the folder out of the dataset."
        )
    else:
        walk.notes.append(f"skipped {folder}: it holds no images.")


def find_originals(root: Path, kaggle_root: Path) -> Path | None:
    """The archive's ``NA_Fish_Dataset`` folder (the photos before augmentation), if it is
    within two levels below ``root`` (the archive keeps it beside ``Fish_Dataset/``) or beside
    ``kaggle_root`` or one of its two parents."""
    for folder in breadth_first(root, 2):
        if is_originals(folder):
            return folder
    for parent in (kaggle_root, kaggle_root.parent, kaggle_root.parent.parent):
        candidate = parent / ORIGINALS_DIR
        if candidate.is_dir():
            return candidate
    return None


def originals_note(originals: Path) -> str:
    """What the originals are, why they were not read, and how to use them for a leak-free test."""
    count = sum(1 for p in originals.rglob("*") if is_image_file(p))
    return (
        f"not read: {originals} ({count} images), the original photos before augmentation. By the dataset's "
        "description the 1000 images per species are flipped and rotated copies of such photos, and their file "
        "names do not say which copies belong together, so no split of them is leak-free, and neither is testing "
        "on the originals a model trained on the copies. The originals are distinct photos: for a leak-free test, "
        f"train and test on them alone (a class-folder dataset: make_datasets('{originals}'), or "
        f"fishcam train --data '{originals}')."
    )
