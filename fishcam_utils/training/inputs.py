"""What ``fit`` is given, checked before any work: the model and datasets, the data against the
options, the model's class count against the labels, its pretraining's photo size against the data's (a
warning); and what a checkpoint records of the data
(class names, image size, normalisation, views, how the folder was read).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from ..data.introspection import DatasetFacts, sample_image_size
from ..data.transforms import IMAGENET_MEAN, IMAGENET_STD
from ..errors import ArgumentError, option, option_name
from ..models.inspection import check_model, kind_of
from .config import TrainConfig


def check_arguments(model: Any, train_data: Any, val_data: Any) -> None:
    """``fit``'s model and datasets are what it can train with, or an error that says what to pass."""
    check_model(model)
    for name, data in (("train_data", train_data), ("val_data", val_data)):
        if data is None and name == "val_data":
            continue
        if isinstance(data, torch.Tensor):
            raise ArgumentError(f"{name} must be a Dataset of (input, label) samples, got a tensor "
                                f"{tuple(data.shape)}; wrap images and labels as TensorDataset(images, labels), "
                                f"or use make_datasets(...)")
        if isinstance(data, DataLoader):
            raise ArgumentError(f"{name} must be a Dataset, got a DataLoader; pass its dataset "
                                f"({name}=loader.dataset): fit makes its own loaders (batch_size=..., num_workers=...)")
        if not (hasattr(data, "__getitem__") and hasattr(data, "__len__")) or isinstance(data, (str, bytes, Path)):
            raise ArgumentError(f"{name} must be a Dataset of (input, label) samples, got {kind_of(data)}; "
                                f"for a folder, use make_datasets(folder).train (and .val)")


def check_data(config: TrainConfig, train_data: Dataset, val_data: Dataset | None) -> None:
    if val_data is not None and len(val_data) == 0:
        raise ValueError("val_data is empty, so there is nothing to pick the best epoch or stop early by; pass a "
                         "split with samples, or val_data=None to train without validation (then best.pt is last.pt)")
    if config.patience is not None and val_data is None:
        raise ValueError(f"early stopping ({option_name('patience')}) needs validation data: pass val_data")
    if config.schedule == "plateau" and val_data is None:
        raise ValueError(f"{option('schedule', 'plateau')} follows a validation metric: pass val_data")
    if len(train_data) == 0:
        raise ValueError("train_data is empty; check the split and view you selected")


def num_classes_of(inner: nn.Module, facts: DatasetFacts) -> int:
    """The model's class count (from its build arguments, else its last layer's outputs), after
    checking that the data's classes and labels fit it."""
    declared, classes = getattr(inner, "fishcam", {}).get("num_classes"), facts.classes
    if classes is not None and len(classes) < 2:
        raise ValueError(f"the training data has one class only ({', '.join(classes)}): a classifier needs at least "
                         f"two; add images of another class")
    if classes and declared and len(classes) != declared:
        raise ValueError(f"the model predicts {declared} classes but the training data has {len(classes)} "
                         f"({', '.join(classes)}); build the model with num_classes={len(classes)}")
    known = declared or len(classes or [])
    num_classes = known or _output_width(inner) or 0
    targets = facts.targets or []
    if targets and known and not 0 <= min(targets) <= max(targets) < num_classes:
        raise ValueError(f"the training labels run from {min(targets)} to {max(targets)}, but the model predicts "
                         f"{num_classes} classes (labels 0 to {num_classes - 1}); build the model with "
                         f"num_classes={max(targets) + 1}, or check the labels")
    return num_classes


def _output_width(inner: nn.Module) -> int | None:
    """The out_features of the model's last Linear layer, or None when it has none."""
    linears = [m for m in inner.modules() if isinstance(m, nn.Linear)]
    return linears[-1].out_features if linears else None


def dataset_info(dataset: Dataset, facts: DatasetFacts, num_classes: int,
                  preprocessing: dict | None) -> tuple[list[str], dict]:
    """The class names and preprocessing a checkpoint records, read through ``Subset`` and the like:
    names "0".."K-1" and the first sample's size where the dataset does not say them."""
    classes = facts.classes if facts.classes is not None else [str(k) for k in range(num_classes)]
    image_size = facts.image_size if facts.image_size is not None else sample_image_size(dataset)
    info = {"image_size": image_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    if facts.views is not None:
        info["views"] = list(facts.views)  # a multi-view dataset: whole fish, in this view order
    if facts.view is not None:
        info["view"] = facts.view  # the one view a single-view model was trained on
    if facts.index is not None:
        info["data_root"] = str(facts.index.root)
        info["layout"] = facts.index.layout
        info["scan"] = facts.index.options.to_dict()  # how the folder was read (ScanOptions), to read it alike
    info.update(preprocessing or {})
    return classes, info


def warn_if_other_scale(model: nn.Module, image_size: int | None) -> None:
    """Warn when ``model`` starts from weights pretrained on photos of another size than ``image_size``
    (``build_model`` records it, ``pretrained_size``): its filters learnt fish at another scale."""
    pretrained = getattr(model, "fishcam_pretrained_size", None)
    if pretrained is None or image_size is None or int(pretrained) == int(image_size):
        return
    name = getattr(model, "fishcam", {}).get("name", type(model).__name__)
    warnings.warn(f"{name} starts from {getattr(model, 'fishcam_weights', 'weights')} weights pretrained on "
                  f"{pretrained} px photographs, and is trained here on {image_size} px ones: its filters learnt "
                  f"fish at another scale and transfer less well. At {image_size} px use "
                  f"{option('weights', 'imagenet')} (online); offline, photographs of {pretrained} px "
                  f"(FISHCAM_IMAGE_SIZE={pretrained}) match them.",
                  UserWarning, stacklevel=3)
