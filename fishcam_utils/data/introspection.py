"""What a dataset holds, read through the wrappers students put around it.

``torch.utils.data.Subset`` (and so ``random_split``), ``ConcatDataset``, ``TensorDataset``, the
course's own datasets and wrappers (``WithoutViews``) and torchvision's ``ImageFolder`` all answer
the same questions here: which classes, which label each sample has, at what image size, which
views, which ids. ``fit``, ``predict``, the explorer, checkpoints and the command line ask
``dataset_facts`` rather than ``getattr(dataset, "classes", [])``, which a ``Subset`` answers with
nothing.
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset

from .dataset_index import DatasetIndex


@dataclass(frozen=True)
class DatasetFacts:
    """What is known of a dataset; None where it does not say.

    ``targets``: one int label per sample, in the dataset's order. ``image_size``: the side S of
    its (3, S, S) images. ``views``: the view order of a multi-view dataset; ``view``: the one view a
    single-view dataset was cut from multi-view data. ``ids``: one id per sample (fish id or image
    path). ``index``: the scanned folder the samples come from (None when they come from several).
    """

    classes: list[str] | None = None
    targets: list[int] | None = None
    image_size: int | None = None
    views: list[str] | None = None
    view: str | None = None
    ids: list[str] | None = None
    index: DatasetIndex | None = None
    length: int | None = None


def dataset_facts(dataset: Any) -> DatasetFacts:
    """The ``DatasetFacts`` of ``dataset``, looking through ``Subset``, ``ConcatDataset`` and wrappers
    that keep their wrapped dataset in ``.dataset`` with its samples in the same order.

    A wrapper's labels are its own (it may relabel its samples): from the wrapped dataset it takes
    only what a relabelling cannot change (ids, image size, views, the folder). A ``ConcatDataset`` of
    parts with different classes raises ``ValueError``: its labels would mean different species in
    different parts.
    """
    if isinstance(dataset, Subset):
        return _subset(dataset)
    if isinstance(dataset, ConcatDataset):
        return _concatenation(dataset)
    own = _own_facts(dataset)
    inner = getattr(dataset, "dataset", None)
    if isinstance(inner, Dataset) and own.length is not None and _length(inner) == own.length:
        below = dataset_facts(inner)  # a wrapper of the same samples: what it does not say, the wrapped one does
        own = replace(own, **{k: getattr(below, k) for k in _SAME_UNDER_WRAPPERS if getattr(own, k) is None})
    return own


# What a wrapper of the same samples in the same order keeps, whatever labels it gives them.
_SAME_UNDER_WRAPPERS = ("ids", "image_size", "views", "view", "index")


def _length(dataset: Any) -> int | None:
    try:
        return len(dataset)
    except TypeError:
        return None


def _own_facts(dataset: Any) -> DatasetFacts:
    """What ``dataset`` says of itself, through its attributes (or, for a ``TensorDataset``, its tensors)."""
    classes, views = _names(dataset, "classes"), _names(dataset, "views")
    targets = getattr(dataset, "targets", None)
    image_size = getattr(dataset, "image_size", None)
    if isinstance(dataset, TensorDataset):
        targets, image_size = _tensor_facts(dataset)
    index = getattr(dataset, "index", None)
    return DatasetFacts(
        classes=classes,
        targets=_labels(targets),
        image_size=int(image_size) if isinstance(image_size, int) and not isinstance(image_size, bool) else None,
        views=views or None,
        view=_single_view(dataset),
        ids=_ids(dataset),
        index=index if isinstance(index, DatasetIndex) else None,
        length=_length(dataset),
    )


def _names(dataset: Any, attribute: str) -> list[str] | None:
    """A list of names held in ``attribute`` (``classes``, ``views``); None for anything else, such
    as a tensor that a dataset of one's own keeps under that name."""
    value = getattr(dataset, attribute, None)
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) for v in value):
        return [str(v) for v in value]
    return None


def _labels(targets: Any) -> list[int] | None:
    """One whole-number label per sample, from a list, array or 1-D tensor; None for anything else."""
    if isinstance(targets, torch.Tensor):
        whole = not targets.is_floating_point() and targets.dtype != torch.bool
        targets = targets.tolist() if targets.ndim == 1 and whole else None
    elif targets is not None and not isinstance(targets, (list, tuple)):
        targets = list(targets) if hasattr(targets, "__len__") and getattr(targets, "ndim", 1) == 1 else None
    if targets is None:
        return None
    try:
        return [int(t) for t in targets]
    except (TypeError, ValueError):
        return None


def _tensor_facts(dataset: TensorDataset) -> tuple[torch.Tensor | None, int | None]:
    """Labels from a ``TensorDataset``'s second tensor (whole numbers, one per sample) and the side of
    its square (N, C, S, S) images."""
    tensors = dataset.tensors
    targets = tensors[1] if len(tensors) > 1 else None  # _labels keeps a 1-D tensor of whole numbers only
    images = tensors[0]
    size = int(images.shape[-1]) if images.ndim == 4 and images.shape[-1] == images.shape[-2] else None
    return targets, size


def _single_view(dataset: Any) -> str | None:
    frame = getattr(dataset, "frame", None)
    if getattr(dataset, "views", None) is None and isinstance(frame, pd.DataFrame) and "view" in frame.columns:
        if len(frame) and frame["view"].nunique() == 1 and frame["view"].iat[0]:
            return str(frame["view"].iat[0])
    return None


def _ids(dataset: Any) -> list[str] | None:
    """One id per sample: the fish id of a multi-view dataset, else the image path relative to the
    root (``relpath``, else ``path``); None when the dataset's tables do not describe its samples one to one."""
    ids = None
    fish, frame = getattr(dataset, "fish", None), getattr(dataset, "frame", None)
    if isinstance(fish, pd.DataFrame) and "fish_id" in fish.columns:
        ids = fish["fish_id"].astype(str).tolist()
    elif isinstance(frame, pd.DataFrame):
        column = next((c for c in ("relpath", "path") if c in frame.columns), None)
        ids = frame[column].astype(str).tolist() if column else None
    return ids if ids is not None and len(ids) == _length(dataset) else None


def _subset(subset: Subset) -> DatasetFacts:
    inner = dataset_facts(subset.dataset)
    rows = [int(i) for i in subset.indices]

    def pick(values: list | None) -> list | None:
        return None if values is None else [values[r] for r in rows]

    return replace(inner, targets=pick(inner.targets), ids=pick(inner.ids), length=len(rows))


def _concatenation(dataset: ConcatDataset) -> DatasetFacts:
    parts = [dataset_facts(d) for d in dataset.datasets]
    known = [p.classes for p in parts if p.classes is not None]
    if any(c != known[0] for c in known):
        shown = "; ".join(", ".join(c) for c in dict.fromkeys(tuple(c) for c in known))
        raise ValueError(f"the ConcatDataset joins datasets with different classes ({shown}): label 0 would be "
                         "another species in each part. Build every part with the same classes=[...] "
                         "(make_datasets and scan_dataset take classes=).")

    def joined(name: str) -> list | None:
        values = [getattr(p, name) for p in parts]
        return None if any(v is None for v in values) else [x for v in values for x in v]

    def shared(name: str) -> Any:
        values = [getattr(p, name) for p in parts]
        return values[0] if all(v == values[0] for v in values) else None

    indexes = [p.index for p in parts]
    same_folder = all(i is not None and indexes[0] is not None and i.root == indexes[0].root for i in indexes)
    return DatasetFacts(classes=known[0] if known and len(known) == len(parts) else None, targets=joined("targets"),
                        image_size=shared("image_size"), views=shared("views"), view=shared("view"),
                        ids=joined("ids"), index=indexes[0] if same_folder else None, length=len(dataset))


def description_digest(root: str | Path) -> str | None:
    """A short hash (16 hex digits) of the ``dataset.json`` that describes how a dataset folder was made (the
    synthetic generator writes one), or None where the folder has none: photos drawn again with other settings
    get another digest, the same settings the same one."""
    path = Path(root) / "dataset.json"
    return hashlib.sha1(path.read_bytes()).hexdigest()[:16] if path.is_file() else None


def data_record(dataset: Any, facts: DatasetFacts | None = None, image_size: int | None = None) -> dict:
    """What makes ``dataset`` this data, as plain values for a checkpoint or a report: the folder and
    how it was read (with the digest of its ``dataset.json``, where it has one), the split, view(s), image size
    and classes, and which samples (their number and a hash of their ids, or of their labels). Two runs or
    reports of the same data have equal records."""
    facts = facts if facts is not None else dataset_facts(dataset)
    index = facts.index
    frame = index.frame if index is not None else None
    split = ",".join(sorted(set(frame["split"]) - {""})) if frame is not None and "split" in frame.columns else None
    samples = facts.ids if facts.ids is not None else facts.targets
    digest = hashlib.sha1("\n".join(map(str, samples)).encode()).hexdigest()[:16] if samples is not None else None
    return {"data_root": str(index.root) if index is not None else None,
            "layout": index.layout if index is not None else None,
            "scan": index.options.to_dict() if index is not None else None, "split": split or None,
            "view": facts.view, "views": facts.views, "image_size": image_size or facts.image_size,
            "classes": facts.classes, "samples": facts.length, "sample_hash": digest,
            "dataset_json": description_digest(index.root) if index is not None else None}


def sample_image_size(dataset: Dataset) -> int | None:
    """The side S of the first sample's (3, S, S) image (or (V, 3, S, S) views), for a dataset that
    does not say its image size; None when it is not a square image tensor."""
    if _length(dataset) == 0:
        return None
    x = dataset[0][0]
    x = x[0] if isinstance(x, (tuple, list)) else x
    if isinstance(x, torch.Tensor) and x.ndim >= 3 and x.shape[-1] == x.shape[-2]:
        return int(x.shape[-1])
    return None


def sample_source(dataset: Any, i: int) -> tuple[Any, int]:
    """The dataset under ``Subset``s and ``ConcatDataset``s that holds sample ``i`` of ``dataset``, and
    the sample's row there: where to ask for ``raw(row)``, the image as decoded."""
    while True:
        if isinstance(dataset, Subset):
            dataset, i = dataset.dataset, int(dataset.indices[i])
        elif isinstance(dataset, ConcatDataset):
            part = bisect.bisect_right(dataset.cumulative_sizes, i)
            i -= dataset.cumulative_sizes[part - 1] if part else 0
            dataset = dataset.datasets[part]
        else:
            return dataset, i
