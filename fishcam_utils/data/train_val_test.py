"""Train, validation and test datasets from a folder in one call (the notebooks' and the CLI's).

Splits come from the dataset's folders when it has them, otherwise from a seeded, grouped,
stratified split; a multi-view dataset gives one view (``view="side"``) or whole fish
(``view=None`` with ``multiview=True``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ..errors import ArgumentError, DataError
from ..settings import USE_CACHE, check_image_size
from .dataset_index import DatasetIndex, ScanOptions
from .datasets import FishImageDataset, MultiViewDataset
from .layouts import scan_dataset
from .splits import carve_validation, make_splits, split_problem
from .transforms import eval_transform, train_transform


@dataclass
class SplitDatasets:
    """The three datasets of one experiment, and the index they were drawn from."""

    train: FishImageDataset | MultiViewDataset
    val: FishImageDataset | MultiViewDataset
    test: FishImageDataset | MultiViewDataset
    index: DatasetIndex

    @property
    def classes(self) -> list[str]:
        return list(self.index.classes)

    def __repr__(self) -> str:
        return (f"SplitDatasets({self.index.root}, {len(self.classes)} classes: train={len(self.train)}, "
                f"val={len(self.val)}, test={len(self.test)})")


def make_datasets(
    root: str | os.PathLike,
    view: str | None = "side",
    image_size: int | None = None,
    augment: float = 1.0,
    cache: bool = USE_CACHE,
    split_seed: int = 0,
    classes: Sequence[str] | None = None,
    layout: str | None = None,
    multiview: bool = False,
    masks: Sequence[str] = (),
    missing_views: str | None = None,
    unknown_files: str | None = None,
    views: Sequence[str] | None = None,
    progress: bool = True,
    scan: ScanOptions | None = None,
) -> SplitDatasets:
    """Datasets for training (augmented with ``train_transform(image_size, augment)``),
    validation and test (``eval_transform``), as (3, S, S) normalised images and int labels;
    S is ``image_size``, by default the course's (``settings.course_image_size()``: 64 on a CPU, 224 on CUDA).

    ``view`` picks one view of a multi-view dataset (ignored by single-view layouts); ``None``
    takes every view, each photo a sample of its own (the views mixed, as for pretraining);
    ``multiview=True`` gives whole fish instead. ``classes`` fixes the class order (a
    checkpoint's); ``cache`` decodes each file once into the decode-once cache.
    ``missing_views``: a fish lacking a view is refused (``"error"``, the default everywhere, as
    ``check_dataset`` does), kept with the view marked missing (``"keep"``) or left out (``"drop"``).
    ``layout``, ``unknown_files`` and ``views`` are passed to ``scan_dataset``, as is ``scan``: the four
    reading options as one ``ScanOptions`` (a keyword other than its default replaces its field). Split
    folders are used as they are; train and test folders without val give a val split carved from train
    (said in ``index.notes``).
    """
    image_size = check_image_size(image_size)
    if isinstance(augment, bool) or not isinstance(augment, (int, float)) or augment < 0:
        raise ArgumentError("augment must be a number >= 0 (the augmentation's strength; 0 turns it off), "
                            f"got {augment!r}")
    index = scan_dataset(root, layout, classes=list(classes) if classes is not None else None,
                         missing_views=missing_views, unknown_files=unknown_files, views=views, scan=scan)
    if len(index.classes) < 2:
        raise DataError(f"{index.root} holds one class only ({', '.join(index.classes)}): a classifier needs at least "
                        "two. Add a folder per class, or point at the folder above this one.")
    if not index.splits:
        index = make_splits(index, seed=split_seed)
    elif set(index.splits) == {"train", "test"}:
        index = carve_validation(index, seed=split_seed)
    problem = split_problem(index)
    if problem:
        raise DataError(problem)
    if multiview:
        kind, view = MultiViewDataset, None
    else:
        kind = FishImageDataset
        if not index.views:
            view = None
        elif view is not None and view not in index.views:
            raise ValueError(f"view {view!r} is not in {root}; it has views {index.views} (or view=None for all "
                             "of them mixed, each photo a sample)")
    parts = {}
    for split in ("train", "val", "test"):
        transform = train_transform(image_size, augment) if split == "train" else eval_transform(image_size)
        parts[split] = kind(index.subset(split=split, view=view), transform=transform, image_size=image_size,
                            masks=masks, cache=cache, progress=progress)
    return SplitDatasets(index=index, **parts)


def few_per_class(dataset: FishImageDataset | MultiViewDataset, n: int,
                  seed: int = 0) -> FishImageDataset | MultiViewDataset:
    """The same dataset with only ``n`` fish of each class, drawn with ``seed`` (all views of a fish
    stay together). Its transform and decode size are the dataset's; for few-label experiments."""
    frame = dataset.frame
    fish = frame[["fish_id", "class_name"]].drop_duplicates("fish_id")
    short = fish.groupby("class_name").size()
    if n < 1 or (short < n).any():
        raise ValueError(f"few_per_class(n={n}): n must be between 1 and the smallest class's "
                         f"{int(short.min())} fish ({short.idxmin()!r})")
    kept = fish.groupby("class_name", sort=False).sample(n=n, random_state=seed)["fish_id"]
    index = replace(dataset.index, frame=frame[frame["fish_id"].isin(set(kept))].reset_index(drop=True))
    return type(dataset)(index, transform=dataset.transform, image_size=dataset.image_size,
                         masks=dataset.mask_kinds, cache=dataset._image_cache is not None, progress=False)
