"""Running a model over a dataset and keeping what it said: class probabilities per sample.

``predict`` never shuffles and never trains; ``Predictions`` holds the result in numpy, with
the class names and (when the dataset has them) the id of each sample, so that every
metric, plot and report downstream works without the model or the GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, Dataset, SequentialSampler
from tqdm.auto import tqdm

from ..data.introspection import dataset_facts
from ..models.inspection import (
    check_finite,
    check_images,
    check_model,
    eval_mode,
    logits_of,
    model_device,
    view_weights_of,
)
from ..runtime import call_model, move_to, pick_device


@dataclass
class Predictions:
    """What a classifier said about N samples of C classes.

    ``probs``: (N, C) float32 in [0, 1], rows summing to 1; ``targets``: (N,) int64 in [0, C);
    ``classes``: C names; ``ids``: N sample ids (image path relative to the dataset root, or
    fish id for multi-view data), or None when unknown. For a multi-view model that returns view
    weights: ``view_weights`` (N, V) float in [0, 1] (0 on missing views, rows summing to 1) and
    ``views``, the V view names; else both None.
    """

    probs: np.ndarray
    targets: np.ndarray
    classes: list[str]
    ids: list[str] | None = field(default=None)
    view_weights: np.ndarray | None = field(default=None)
    views: list[str] | None = field(default=None)

    def __post_init__(self) -> None:
        self.probs = np.asarray(self.probs, dtype=np.float32)
        self.targets = np.asarray(self.targets).astype(np.int64, copy=False)
        self.classes = [str(c) for c in self.classes]
        if self.probs.ndim != 2:
            raise ValueError(f"probs must be (N, C), got shape {self.probs.shape}; "
                             "pass one row of class probabilities per sample.")
        n, c = self.probs.shape
        if self.targets.shape != (n,):
            raise ValueError(f"targets must be (N,) = ({n},) to match probs, got shape {self.targets.shape}.")
        if len(self.classes) != c:
            raise ValueError(f"classes has {len(self.classes)} names but probs has {c} columns; "
                             "pass one name per column of probs.")
        if n and (self.targets.min() < 0 or self.targets.max() >= c):
            raise ValueError(f"targets must lie in [0, {c}), got values from {self.targets.min()} to "
                             f"{self.targets.max()}; check that classes matches the labels of the data.")
        if self.ids is not None:
            self.ids = [str(i) for i in self.ids]
            if len(self.ids) != n:
                raise ValueError(f"ids has {len(self.ids)} entries but there are {n} samples; "
                                 "pass one id per sample, or ids=None.")
        if self.view_weights is not None:
            self.view_weights = np.asarray(self.view_weights, dtype=np.float32)
            if self.views is None:
                self.views = [f"view{v}" for v in range(self.view_weights.shape[-1])]
            self.views = [str(v) for v in self.views]
            if self.view_weights.shape != (n, len(self.views)):
                raise ValueError(f"view_weights must be (N, V) = ({n}, {len(self.views)}), got shape "
                                 f"{self.view_weights.shape}; pass one weight per sample and view.")

    def __len__(self) -> int:
        return len(self.targets)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def preds(self) -> np.ndarray:
        """Predicted class per sample: (N,) int64 in [0, C)."""
        return self.probs.argmax(axis=1).astype(np.int64)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class: (N,) float32 in [1/C, 1]."""
        if len(self) == 0:
            return np.zeros(0, np.float32)
        return self.probs.max(axis=1)

    @property
    def accuracy(self) -> float:
        """Share of samples predicted right, in [0, 1]; NaN when there are no samples."""
        if len(self) == 0:
            return float("nan")
        return float((self.preds == self.targets).mean())

    def frame(self) -> pd.DataFrame:
        """One row per sample: id, true, pred, true_name, pred_name, confidence, correct, p_<class>...
        and, for a multi-view model, w_<view>... (its view weights).

        ``id`` is the sample's position when ``ids`` is None.
        """
        preds, names = self.preds, np.asarray(self.classes, dtype=object)
        table = pd.DataFrame(
            {
                "id": self.ids if self.ids is not None else np.arange(len(self)),
                "true": self.targets,
                "pred": preds,
                "true_name": names[self.targets] if len(self) else np.array([], dtype=object),
                "pred_name": names[preds] if len(self) else np.array([], dtype=object),
                "confidence": self.confidence,
                "correct": preds == self.targets,
            }
        )
        probs = pd.DataFrame(self.probs, columns=[f"p_{c}" for c in self.classes])
        parts = [table, probs]
        if self.view_weights is not None:
            parts.append(pd.DataFrame(self.view_weights, columns=[f"w_{v}" for v in self.views]))
        return pd.concat(parts, axis=1)

    def misclassified(self) -> np.ndarray:
        """Indices of the wrong predictions, most confident first: (M,) int64."""
        wrong = np.flatnonzero(self.preds != self.targets)
        # Stable sort, so equally confident mistakes keep dataset order (reproducible galleries).
        order = np.argsort(-self.confidence[wrong], kind="stable")
        return wrong[order].astype(np.int64)


# ---------------------------------------------------------------------------------------
# Finding the classes and ids of whatever was passed in


def dataset_classes(dataset) -> list[str] | None:
    """``dataset``'s class names (looking through ``Subset``, ``ConcatDataset`` and wrappers), or None."""
    return dataset_facts(dataset).classes


def dataset_ids(dataset) -> list[str] | None:
    """One id per sample of ``dataset``, in its order: the fish id for multi-view datasets,
    else the image path relative to the root (``relpath``, else ``path``); None if unknown."""
    return dataset_facts(dataset).ids


def _in_order(loader: DataLoader) -> bool:
    """Whether ``loader`` yields every sample of its dataset once, in dataset order."""
    batches = loader.batch_sampler
    if batches is None:  # batch_size=None: samples one by one through loader.sampler
        return isinstance(loader.sampler, SequentialSampler)
    return (isinstance(batches, BatchSampler) and isinstance(batches.sampler, SequentialSampler)
            and not batches.drop_last)


# ---------------------------------------------------------------------------------------
# Running the model


def _image_batch(x) -> bool:
    """Whether a batch's input is images, (N, C, H, W) or the views of fish (N, V, C, H, W)."""
    first = x[0] if isinstance(x, (tuple, list)) and len(x) else x
    return isinstance(first, torch.Tensor) and first.ndim >= 4


def _split_batch(batch) -> tuple[object, object]:
    if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
        raise ValueError(
            "each batch must be (x, y) or (x, y, masks); got "
            + (f"a sequence of {len(batch)} items" if isinstance(batch, (tuple, list)) else type(batch).__name__)
            + ". Wrap the dataset so that its samples are (input, label) pairs."
        )
    return batch[0], batch[1]


def predict(
    model: nn.Module,
    data: Dataset | DataLoader,
    *,
    device: str | torch.device | None = None,
    batch_size: int = 64,
    progress: bool = True,
    num_workers: int = 0,
) -> Predictions:
    """Class probabilities of ``model`` on every sample of ``data``, in order.

    ``data`` is a Dataset (read in order, ``batch_size`` at a time, with ``num_workers``
    workers) or a DataLoader (used as it is). Batches are ``(x, y)`` or ``(x, y, masks)``;
    ``x`` is a tensor (``model(x)``) or a tuple of tensors (``model(*x)``, e.g.
    ``(views, present)``). The model returns (B, C) logits, or a tuple whose first item they
    are. ``device=None`` runs where the model's parameters are. The model's train/eval mode
    (of every submodule) is restored afterwards, even on error.

    Returns ``Predictions`` with probs (N, C) float32 softmax, targets (N,) int64, the classes
    of ``data`` (``str(i)`` if it has none), ids when the dataset has them and the loader
    reads it in order, and the view weights of a multi-view model (its output's second item).
    """
    check_model(model)
    loader = _as_loader(data, batch_size, num_workers)
    device = model_device(model) if device is None else pick_device(device)
    logits, targets, weights = _run(model, loader, device, progress)
    facts = dataset_facts(loader.dataset)  # classes, ids and views, read once
    classes = facts.classes
    probs = torch.softmax(logits, dim=1).numpy() if len(logits) else np.zeros((0, len(classes or [])), np.float32)
    if len(targets) != len(probs):
        raise ValueError(f"the loader gave {len(targets)} labels for {len(probs)} predictions; "
                         "each batch must hold one label per sample.")
    if classes is None:
        classes = [str(i) for i in range(probs.shape[1])]
    elif len(classes) != probs.shape[1]:
        raise ValueError(f"the model outputs {probs.shape[1]} logits but the dataset has {len(classes)} "
                         "classes; build the model with num_classes=len(dataset.classes).")
    ids = facts.ids if _in_order(loader) else None
    if ids is not None and len(ids) != len(targets):
        ids = None
    views = None
    if weights is not None:
        views = facts.views
        if views is None or len(views) != weights.shape[1]:
            views = None
    return Predictions(probs=probs, targets=targets, classes=list(classes), ids=ids,
                       view_weights=weights, views=views)


def _as_loader(data: Dataset | DataLoader, batch_size: int, num_workers: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    if isinstance(data, Dataset):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        return DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    raise ValueError(f"data must be a torch Dataset or DataLoader, got {type(data).__name__}.")


def _run(model: nn.Module, loader: DataLoader, device: torch.device,
         progress: bool) -> tuple[torch.Tensor, np.ndarray, np.ndarray | None]:
    """Logits (N, C) float32, labels (N,) int64 and view weights (N, V), or None when the model
    gives none (or not for every batch), of every batch of ``loader``, in eval mode."""
    all_logits: list[torch.Tensor] = []
    all_targets: list[torch.Tensor] = []
    all_weights: list[torch.Tensor] = []
    with eval_mode(model), torch.inference_mode():
        seen = 0
        for batch in tqdm(loader, desc="predict", disable=not progress, leave=False):
            x, y = _split_batch(batch)
            x = move_to(x, device)
            if seen == 0 and _image_batch(x):  # the model's kind of input: dtype, channels, device, said once
                check_images(x, model, name="the data's images")
            check_finite(x, "data", first=seen)
            seen += len(y)
            output = call_model(model, x)
            all_logits.append(logits_of(output).detach().float().cpu())
            weights = view_weights_of(output)
            if weights is not None:
                all_weights.append(weights.detach().float().cpu())
            all_targets.append(torch.as_tensor(y).reshape(-1).cpu().long())
    if not all_logits:
        return torch.zeros(0, 0), np.zeros(0, np.int64), None
    weights = torch.cat(all_weights).numpy() if all_weights and len(all_weights) == len(all_logits) else None
    return torch.cat(all_logits), torch.cat(all_targets).numpy(), weights
