"""Notebook 09's capstone: a folder of photos, checked, split without leaks, ready to train on.

The folder is named by one setting, ``FISHCAM_CAPSTONE_DATA``: a path to any folder the loaders read
(with or without masks), ``kaggle`` for the Kaggle fish dataset (a copy on disk, else kagglehub), or
``standin`` (the default): photos drawn by the package in the Kaggle layout, 590 x 445 with ``GT`` body
masks and the course's nuisances, drawn once and kept.

    folder = capstone_folder()
    report = check_folder(folder)              # a bad folder stops here, with what to fix
    splits, note = capstone_datasets(folder, report.index)
"""

from __future__ import annotations

import os
from pathlib import Path

from ..data.check import DataReport, check_dataset
from ..errors import DataError
from ..settings import course_seed, data_dir, quick_mode, run_folder

CAPSTONE_ENV = "FISHCAM_CAPSTONE_DATA"
STANDIN, KAGGLE = "standin", "kaggle"
STANDIN_SIZE = (590, 445)  # the Kaggle photos' width and height
# Photos per species of the stand-in (side views, each a fish of its own): full mode and quick mode (CI).
STANDIN_PHOTOS = {"full": 50, "quick": 12}
# Kaggle's fish fill most of the frame: at zoom 1.3 the stand-in's are 70 % of the photo's width (54 % at 1), so
# that their marks keep a few pixels at 64 px.
STANDIN_ZOOM = 1.3


def standin_config(quick: bool | None = None):
    """The stand-in's ``SyntheticConfig``: the course's nine species from the side, in the Kaggle layout at
    590 x 445, with the course's nuisances (``FISHCAM_DATA=clean``: without) and the course seed."""
    from ..data.synthetic import NUISANCES, SyntheticConfig, course_config

    quick = quick_mode() if quick is None else quick
    nuisances = {name: getattr(course_config(quick), name) for name in NUISANCES}  # off for FISHCAM_DATA=clean
    return SyntheticConfig(size=STANDIN_SIZE, fish_per_class=STANDIN_PHOTOS["quick" if quick else "full"],
                           seed=course_seed(), layout="kaggle", views=("side",), zoom=STANDIN_ZOOM, **nuisances)


def standin_dir(quick: bool | None = None) -> Path:
    """Where the stand-in photos are kept: ``<data>/capstone-standin[-quick]`` (and the course's seed and kind
    of data, ``settings.run_folder``)."""
    quick = quick_mode() if quick is None else quick
    return data_dir() / ("capstone-standin" + ("-quick" if quick else "") + run_folder())


def ensure_standin(quick: bool | None = None, progress: bool = True) -> Path:
    """The stand-in photos, drawn on first use (about a minute in full mode on 2 cores) and kept: a
    later call with the same settings returns the folder untouched. Returns its root."""
    from ..data.synthetic import generate_dataset

    return generate_dataset(standin_dir(quick), standin_config(quick), overwrite=True, progress=progress)


def capstone_folder(setting: str | None = None, progress: bool = True) -> Path:
    """The capstone's folder of photos from ``setting`` (default: ``$FISHCAM_CAPSTONE_DATA``, else
    ``standin``): the stand-in (drawn if needed), the Kaggle fish dataset (``kaggle``: a copy on disk, else
    downloaded; offline an ``OfflineError`` that says where to put a copy), or a path, which must exist."""
    value = (os.environ.get(CAPSTONE_ENV, "") if setting is None else setting).strip()
    if value.lower() in ("", STANDIN):
        return ensure_standin(progress=progress)
    if value.lower() == KAGGLE:
        from ..data.kaggle import download_kaggle_fish

        return download_kaggle_fish()
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise DataError(f"FOLDER (or {CAPSTONE_ENV}) is {value!r}, and there is no folder {folder.resolve()}. Give the "
                        f"path of your photos' folder (absolute, or relative to {Path.cwd()}), '{KAGGLE}' for the "
                        f"Kaggle fish dataset, or '{STANDIN}' for the course's stand-in photos.")
    return folder


def _is_synthetic(folder: Path) -> bool:
    from ..data.synthetic import dataset_info

    return dataset_info(folder) is not None


def _gt_masks(index) -> bool:
    """Whether the masks of ``index`` come from Kaggle-style ``<class> GT`` folders (the archive, or a copy of it)."""
    return any(f" GT{os.sep}" in path for path in index.frame.get("mask_body", []))


def kaggle_originals(folder: str | os.PathLike, index) -> Path | None:
    """The Kaggle archive's ``NA_Fish_Dataset`` (the photos its 1000 per species were copied from) when ``folder``
    is that archive, whole or flattened by a level (species folders beside their ``GT`` folders); else None."""
    from ..data.kaggle_layout import find_kaggle_root, find_originals

    folder = Path(folder)
    copies = index.layout == "kaggle" or _gt_masks(index)
    if not copies or _is_synthetic(folder):
        return None
    return find_originals(folder, find_kaggle_root(folder, depth=5) or folder)


def check_folder(folder: str | os.PathLike, progress: bool = True) -> DataReport:
    """``check_dataset``'s report on the photos the capstone will use when they can be used; otherwise a
    ``DataError`` listing every problem with its fix, so that nothing runs on a bad folder. Bad: empty, one
    class, no images, files that do not decode, masks of another size than their images, a class too small to
    split (fewer than three photos), split folders that cannot be used. For the Kaggle archive the photos used
    are its originals (``kaggle_originals``, ``split_rule``), and only they are decoded: the report is theirs."""
    try:  # the folders alone, to know which photos will be used; their problems are reported below
        index = check_dataset(folder, progress=progress, decode=False).index
    except DataError:
        index = None
    originals = kaggle_originals(folder, index) if index is not None else None
    if originals is None:
        return _checked(Path(folder), progress)
    used = _checked(originals, progress)
    used.index.notes.insert(0, f"{folder} is Kaggle's archive: its original photos in {originals} are used (section "
                               "3 says why); its augmented copies are not read.")
    return used


def _checked(folder: Path, progress: bool) -> DataReport:
    try:
        report = check_dataset(folder, progress=progress)
    except DataError as error:
        raise DataError(f"{folder} cannot be used for the capstone: {error}") from None
    if not report.ok:
        listed = "\n".join(f"  {i}. {problem}" for i, problem in enumerate(report.problems, 1))
        raise DataError(f"{folder} cannot be used for the capstone until {len(report.problems)} problem(s) are "
                        f"fixed:\n{listed}\nFix them and run this cell again; nothing after it runs on this folder.")
    return report


def used_view(index) -> str | None:
    """The view the capstone trains on: the side of a multi-view folder (one photo per fish, as a single-view
    classifier needs), None for a single-view folder."""
    return ("side" if "side" in index.views else index.views[0]) if index.views else None


def masks_used(index) -> bool:
    """Whether the capstone judges against body masks: only when every photo it uses has one (a photo without one
    would leave a hole in every measure)."""
    frame = index.frame if used_view(index) is None else index.frame[index.frame["view"] == used_view(index)]
    return "mask_body" in frame and bool((frame["mask_body"] != "").all())


def split_rule(folder: str | os.PathLike, index) -> str:
    """Why the split of ``index`` (the photos ``check_folder`` returned for ``folder``) does not leak, or where it
    could, in a few sentences for the notebook and the model card."""
    from ..data.kaggle_layout import is_originals

    if is_originals(Path(index.root)) and Path(index.root).resolve() != Path(folder).resolve():
        return ("Kaggle's archive: training, validation and test photos are all drawn from its originals "
                f"({index.root}). Its 1000 photos per species are flipped and rotated copies of these originals, with "
                "nothing in their names to say which: a split of the copies, or a test on the originals of a model "
                "trained on the copies, would test on photos the model has seen. The originals have no masks, so "
                "the explanations are judged by deletion and insertion.")
    if index.splits:
        carved = " (validation carved from train/, seeded and grouped)" if "val" not in index.splits else ""
        return (f"the folder's own split ({', '.join(index.splits)}{carved}), used as it is: it is leak-free if no "
                "object has photos in two of its folders.")
    if _is_synthetic(Path(index.root)) and not index.views:
        return "stand-in photos, each of a fish of its own: a split by photo (seeded, stratified) is leak-free."
    if index.layout == "kaggle" or _gt_masks(index):
        return ("Kaggle's layout without the archive's NA_Fish_Dataset: photos split one by one. If these are the "
                "archive's augmented copies, copies of one photo fall on both sides and the test accuracy is "
                "optimistic: put NA_Fish_Dataset beside Fish_Dataset to split the originals instead.")
    if index.views:
        return (f"multi-view fish: split by fish, all views of a fish on one side (seeded, stratified); the capstone "
                f"trains on the {used_view(index)} view alone (notebook 04 fuses the views).")
    return ("photos split one by one (seeded, stratified). If several photos show the same object or scene, that "
            "split leaks: keep them in one of train/, val/ and test/ folders of your own.")


def capstone_datasets(folder: str | os.PathLike, index, image_size: int | None = None, augment: float = 1.0,
                      seed: int = 0, progress: bool = True):
    """``(SplitDatasets, note)``: train, validation and test sets of the photos ``check_folder`` returned for
    ``folder`` (its ``index``), seeded, stratified and grouped, with body masks when every photo has one, and
    ``split_rule``'s sentences, plus a word on masks not used. Images are (3, S, S), S = ``image_size``."""
    from ..data.train_val_test import make_datasets

    note = split_rule(folder, index)
    masks = ["body"] if masks_used(index) else []
    if "mask_body" in index.frame and not masks:
        have = int((index.frame["mask_body"] != "").sum())
        note += (f" Only {have} of {len(index.frame)} photos have a body mask, so the masks are not used: give every "
                 "photo one to judge against them.")
    splits = make_datasets(index.root, view=used_view(index), image_size=image_size, augment=augment, split_seed=seed,
                           masks=masks, progress=progress, layout=index.layout)
    return splits, note


def standin_ceiling(folder: str | os.PathLike) -> float | None:
    """The best expected accuracy on the stand-in's photos from the side (``split_ceiling`` over all of them: a
    wholly hidden trait counts as a guess), in [0, 1]; None for a folder that is not a synthetic dataset."""
    from ..data.synthetic import split_ceiling

    return split_ceiling(folder, "side", None) if _is_synthetic(Path(folder)) else None


__all__ = ["CAPSTONE_ENV", "STANDIN_PHOTOS", "STANDIN_SIZE", "capstone_datasets", "capstone_folder", "check_folder",
           "ensure_standin", "kaggle_originals", "masks_used", "split_rule", "standin_ceiling", "standin_config",
           "standin_dir", "used_view"]
