"""The course's default dataset: invented fish species photographed from three views.

``ensure_synthetic()`` gives the course's dataset, drawn on first use (seconds) into a folder of
its own per mode, image size and seed (``default_dataset_dir``), with the course's settings
(``course_config``). How a dataset is made is ``synthetic_config``'s, how its photos are drawn
``synthetic_photos``'s, and how its folder is written and read ``synthetic_folder``'s; their names
can be imported from here too (``from fishcam_utils.data.synthetic import generate_dataset``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd

from ..errors import DataError
from ..settings import course_data, course_image_size, course_seed, data_dir, quick_mode, run_folder, size_folder
from .species import seen_ceiling, species_table
from .synthetic_config import (
    DEFAULT_CONFIG,
    DISTRACTOR_VERSION,
    NUISANCES,
    OUTPUT_LAYOUTS,
    QUICK_CONFIG,
    SHORTCUT_MARKER_SIZE,
    SPLITS,
    SyntheticConfig,
)
from .synthetic_folder import FORMAT, FORMAT_VERSION, dataset_config, dataset_info, generate_dataset, load_metadata
from .synthetic_photos import _table_stream, split_of_each_fish  # noqa: F401 (tests read _table_stream here)

__all__ = [
    "DEFAULT_CONFIG", "DISTRACTOR_VERSION", "FORMAT", "FORMAT_VERSION", "NUISANCES", "OUTPUT_LAYOUTS", "QUICK_CONFIG",
    "SHORTCUT_MARKER_SIZE", "SPLITS", "SyntheticConfig", "course_config", "dataset_config", "dataset_info",
    "default_dataset_dir", "ensure_synthetic", "generate_dataset", "load_metadata", "split_ceiling",
    "split_of_each_fish",
]


def default_dataset_dir(quick: bool | None = None, size: int | None = None) -> Path:
    """Where the course keeps its default dataset: quick mode has its own, smaller one, each image
    size its own folder (``synthetic`` at 64 px, ``synthetic-224px`` at 224), each course seed
    other than 0 (``FISHCAM_SEED``) too (``synthetic-seed7``), and the clean photos of ``FISHCAM_DATA=clean``
    (``synthetic-clean``): ``settings.run_folder``."""
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    return data_dir() / (("synthetic-quick" if quick else "synthetic") + size_folder(size) + run_folder())


def course_config(quick: bool | None = None, size: int | None = None, kind: str | None = None) -> SyntheticConfig:
    """The settings of the course's dataset: quick mode's or the full one, at ``size`` pixels (default
    ``course_image_size()``), from the course seed, with the nuisances of ``NUISANCES`` unless ``kind``
    (default ``settings.course_data()``) is "clean"."""
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    config = dataclasses.replace(QUICK_CONFIG if quick else DEFAULT_CONFIG, size=size, seed=course_seed())
    if (course_data() if kind is None else kind) == "clean":
        config = dataclasses.replace(config, **{name: 0 for name in NUISANCES})
    return config


def ensure_synthetic(quick: bool | None = None, progress: bool = True, shortcut: tuple[str, ...] = (),
                     size: int | None = None) -> Path:
    """The course's default dataset, generated on first use (seconds). Returns its root folder.

    In quick mode (``FISHCAM_QUICK=1``) it is a smaller copy with 30 fish per class. Its photos are of uneven
    quality, with distractors in the water (``course_config``; clean with ``FISHCAM_DATA=clean``). It is drawn from
    the course seed (``settings.course_seed()``: 0 unless ``FISHCAM_SEED`` says otherwise). Its photos are
    ``size`` pixels a side (default ``settings.course_image_size()``: 64 on a CPU, 224 on a CUDA GPU).
    ``shortcut=("train", "test")`` gives the same photos with the class-coloured marker (of
    ``SHORTCUT_MARKER_SIZE``) on every photo of those splits (notebook 08), in a folder of its own
    (``synthetic-marker-train-test``).
    """
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    config = course_config(quick, size)
    folder = default_dataset_dir(quick, size)
    if shortcut:
        config = dataclasses.replace(config, shortcut=True, shortcut_splits=tuple(shortcut),
                                     marker_size=SHORTCUT_MARKER_SIZE)
        folder = folder.with_name(folder.name.replace("synthetic", "synthetic-marker-" + "-".join(shortcut), 1))
    return generate_dataset(folder, config, overwrite=True, progress=progress)




def split_ceiling(root: str | Path, view: str, split: str | None = "test") -> float:
    """The best expected accuracy from ``view`` alone on the photos of ``split`` (None: every photo, as in the
    Kaggle layout, which has no splits) of a synthetic dataset, in [0, 1]: ``species.seen_ceiling``, a photo whose
    trait is wholly hidden (``visible_evidence`` 0, or empty for a trait of no pixel) counted as a guess among all
    species. On clean photos, ``single_view_ceiling`` for balanced splits."""
    meta = load_metadata(root)
    photos = meta[(meta["view"] == view) & ((meta["split"] == split) if split is not None else True)]
    if photos.empty:
        raise DataError(f"{root} has no {view} photo in the {split!r} split; splits: {sorted(set(meta['split']))}")
    if "visible_evidence" in photos:
        hidden = pd.to_numeric(photos["visible_evidence"], errors="coerce").fillna(0) == 0
    else:
        hidden = pd.Series(False, index=photos.index)
    table = species_table(dataset_config(root).species)
    return seen_ceiling(view, photos["label"].to_numpy(), hidden.to_numpy(), table)
