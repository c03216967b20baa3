"""PyTorch datasets over a ``DatasetIndex``: one image per sample, or one fish (all views) per sample.

Samples are tuples whose first item is the model's input and whose second is the label:

- ``FishImageDataset``: ``(image, label)``; with ``masks=[...]``, ``(image, label, masks)``;
- ``MultiViewDataset``: ``((views, present), label)``; with masks, ``((views, present), label, masks)``.

Images are decoded and resized to ``image_size`` first (through the decode-once cache when
``cache=True``), then passed with their masks through ``transform``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ..errors import ArgumentError
from ..settings import USE_CACHE, check_image_size
from .cache import DecodedCache
from .dataset_index import DatasetIndex
from .images import read_image, read_mask
from .layouts import group_by_fish
from .transforms import eval_transform, masks_to_tv


def _mask_columns(frame: pd.DataFrame, kinds: Sequence[str], root) -> list[str]:
    columns = []
    for kind in kinds:
        column = f"mask_{kind}"
        if column not in frame.columns:
            available = [c[5:] for c in frame.columns if c.startswith("mask_")]
            raise ValueError(
                f"no {kind!r} masks in {root}; it has {available or 'no masks'}. Masks are read from "
                f"root/masks/{kind}/<same path as the image> (or the GT folders of the Kaggle layout)."
            )
        missing = frame.loc[frame[column] == "", "path"]
        if len(missing):
            raise ValueError(f"{len(missing)} image(s) have no {kind!r} mask, e.g. {missing.iloc[0]}; "
                             f"add the masks or leave {kind!r} out of masks=[...].")
        columns.append(column)
    return columns


def _plain(x):
    """A tv_tensor as a plain tensor, so batches collate to ordinary tensors."""
    return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x


class _ImageFiles(Dataset):
    """What both datasets share: the image files of an index, decoded at one size (from the
    files or the decode-once cache), their masks, and the transform applied to both."""

    def __init__(
        self,
        index: DatasetIndex,
        transform: Callable | None = None,
        image_size: int | None = None,
        masks: Sequence[str] = (),
        cache: bool = USE_CACHE,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> None:
        if not isinstance(index, DatasetIndex):
            raise ArgumentError("index must be a DatasetIndex (index = scan_dataset(root), then "
                                f"index.subset(split=..., view=...)), got {type(index).__name__}; for a folder, "
                                "make_datasets(root) does it all")
        self.index = index
        self.frame = index.frame.reset_index(drop=True)
        self.classes = list(index.classes)
        self.image_size = image_size = check_image_size(image_size)
        self.transform = transform if transform is not None else eval_transform(image_size)
        self.mask_kinds = list(masks)
        columns = _mask_columns(self.frame, self.mask_kinds, index.root)
        self._mask_paths = {k: self.frame[c].tolist() for k, c in zip(self.mask_kinds, columns)}
        self._image_cache: DecodedCache | None = None
        self._mask_caches: dict[str, DecodedCache] = {}
        if cache and len(self.frame):
            self._image_cache = DecodedCache(self.frame["path"], image_size, "rgb", cache_dir,
                                             progress=progress).build()
            self._mask_caches = {
                k: DecodedCache(p, image_size, "mask", cache_dir, progress=progress).build()
                for k, p in self._mask_paths.items()
            }
        self._index_samples()

    def _index_samples(self) -> None:
        """Set ``targets`` (one label per sample) and whatever else a sample needs."""
        raise NotImplementedError

    def _image(self, row: int) -> np.ndarray:
        """Row ``row`` of the index as decoded: uint8 (S, S, 3)."""
        if self._image_cache is not None:
            return self._image_cache[row]
        return read_image(self.frame["path"].iat[row], self.image_size)

    def _masks(self, row: int) -> dict[str, np.ndarray]:
        if self._mask_caches:
            return {k: c[row] for k, c in self._mask_caches.items()}
        return {k: read_mask(p[row], self.image_size) for k, p in self._mask_paths.items()}

    def _transformed(self, row: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Row ``row`` through the transform: (3, S, S) image and its (S, S) masks, if any were asked for."""
        image = self._image(row)
        if not self.mask_kinds:
            return _plain(self.transform(image)), {}
        image, masks = self.transform(image, masks_to_tv(self._masks(row)))
        return _plain(image), {k: _plain(m) for k, m in masks.items()}


class FishImageDataset(_ImageFiles):
    """One sample per image file.

    ``index`` is a ``DatasetIndex`` (use ``index.subset(split=..., view=...)`` to choose).
    Returns ``(image, label)``: image (3, S, S) float normalised, label int; with
    ``masks=["body", ...]`` also a dict of (S, S) bool masks, moved with the image by the
    transform. ``image_size`` S is the decode size (default: the course's, ``course_image_size()``);
    ``transform`` defaults to ``eval_transform(S)``; ``cache`` (default on) reads through the
    decode-once cache.
    """

    def _index_samples(self) -> None:
        self.targets = self.frame["label"].astype(int).tolist()

    def __len__(self) -> int:
        return len(self.frame)

    def raw(self, i: int) -> np.ndarray:
        """Image ``i`` as decoded, before the transform: uint8 (S, S, 3), for display."""
        return self._image(i)

    def __getitem__(self, i: int):
        image, masks = self._transformed(i)
        if not self.mask_kinds:
            return image, self.targets[i]
        return image, self.targets[i], masks


class MultiViewDataset(_ImageFiles):
    """One sample per fish, with all its views.

    Returns ``((views, present), label)``: views (V, 3, S, S) float normalised in
    ``index.views`` order, present (V,) bool (a missing view is all zeros and False).
    With ``masks=[...]`` a third item maps each kind to (V, S, S) bool masks.
    Fish with a missing view exist only if the index was scanned with ``missing_views="keep"``.
    """

    def _index_samples(self) -> None:
        self.views = list(self.index.views)
        self.fish = group_by_fish(self.index)
        self.targets = self.fish["label"].astype(int).tolist()
        # Row of each (fish, view) in the index; -1 where the view is missing.
        row_of = {(f, v): r for r, (f, v) in enumerate(zip(self.frame["fish_id"], self.frame["view"]))}
        self._rows = np.array([[row_of.get((f, v), -1) for v in self.views] for f in self.fish["fish_id"]])

    def __len__(self) -> int:
        return len(self.fish)

    def raw(self, i: int) -> dict[str, np.ndarray | None]:
        """The decoded views of fish ``i``, uint8 (S, S, 3) each, None where missing."""
        return {v: (self._image(r) if r >= 0 else None) for v, r in zip(self.views, self._rows[i])}

    def __getitem__(self, i: int):
        size = self.image_size
        views, present = [], []
        masks: dict[str, list[torch.Tensor]] = {k: [] for k in self.mask_kinds}
        for row in self._rows[i]:
            if row < 0:
                image = torch.zeros(3, size, size)
                view_masks = {k: torch.zeros(size, size, dtype=torch.bool) for k in masks}
            else:
                image, view_masks = self._transformed(row)
            views.append(image)
            present.append(row >= 0)
            for k in masks:
                masks[k].append(view_masks[k])
        inputs = (torch.stack(views), torch.tensor(present))
        if not self.mask_kinds:
            return inputs, self.targets[i]
        return inputs, self.targets[i], {k: torch.stack(v) for k, v in masks.items()}


class WithoutViews(Dataset):
    """A multi-view dataset with some views removed from every fish, as if never photographed:
    their images become zeros and their ``present`` flags False. For testing a model with a view
    missing: ``predict(model, WithoutViews(splits.test, ["side"]))``.

    Keeps ``classes``, ``views``, ``fish`` and ``raw`` of the wrapped dataset. A fish left with no
    view raises ``ValueError`` when read.
    """

    def __init__(self, dataset: MultiViewDataset, removed: Sequence[str]) -> None:
        views = list(getattr(dataset, "views", []) or [])
        removed = [removed] if isinstance(removed, str) else list(removed)
        unknown = [v for v in removed if v not in views]
        if not views or unknown:
            raise ValueError(f"cannot remove {unknown or removed}: the dataset's views are {views or 'none'} "
                             "(WithoutViews needs a MultiViewDataset)")
        self.dataset, self.removed = dataset, removed
        self.keep = torch.tensor([v not in removed for v in views])
        self.views, self.classes = views, dataset.classes
        self.fish, self.targets = dataset.fish, dataset.targets

    def __len__(self) -> int:
        return len(self.dataset)

    def raw(self, i: int) -> dict[str, np.ndarray | None]:
        return {v: (None if v in self.removed else image) for v, image in self.dataset.raw(i).items()}

    def __getitem__(self, i: int):
        (images, present), *rest = self.dataset[i]
        present = present & self.keep
        if not present.any():
            raise ValueError(f"fish {self.fish['fish_id'].iloc[i]} has no view left after removing {self.removed}")
        return (images * present[:, None, None, None], present), *rest
