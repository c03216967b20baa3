"""Data for the course: the synthetic fish generator, loaders for real layouts, splits,
transforms and the decode-once cache.

Typical use::

    from fishcam_utils import data
    root = data.ensure_synthetic()                      # the course's dataset, made on first use
    index = data.scan_dataset(root)                     # every image, checked; layout auto-detected
    train = data.FishImageDataset(index.subset(split="train", view="side"),
                                  transform=data.train_transform(64))
"""

from .cache import DecodedCache
from .check import DataReport, check_dataset
from .dataset_index import DatasetIndex, ScanOptions
from .datasets import FishImageDataset, MultiViewDataset, WithoutViews
from .images import IMAGE_EXTENSIONS, channel_stats, image_size, load_mask, load_rgb, read_image, read_mask
from .kaggle import download_kaggle_fish, kaggle_fish_dir
from .layouts import LAYOUTS, DataWarning, detect_layout, find_kaggle_root, group_by_fish, scan_dataset
from .species import SPECIES, TRAITS, VIEWS, Species, class_names, seen_ceiling, single_view_ceiling, species_table
from .splits import grouped_split, leaked_groups, make_splits
from .synthetic import (
    DEFAULT_CONFIG,
    QUICK_CONFIG,
    SyntheticConfig,
    dataset_config,
    dataset_info,
    ensure_synthetic,
    generate_dataset,
    load_metadata,
    split_ceiling,
)
from .train_val_test import SplitDatasets, few_per_class, make_datasets
from .transforms import IMAGENET_MEAN, IMAGENET_STD, denormalize, eval_transform, to_display, train_transform

__all__ = [
    "DEFAULT_CONFIG", "DataReport", "channel_stats", "check_dataset", "image_size", "IMAGENET_MEAN", "IMAGENET_STD",
    "IMAGE_EXTENSIONS", "LAYOUTS", "QUICK_CONFIG", "SPECIES", "TRAITS", "VIEWS", "DataWarning", "DatasetIndex",
    "DecodedCache", "FishImageDataset", "MultiViewDataset", "WithoutViews", "ScanOptions", "Species",
    "SyntheticConfig", "class_names", "dataset_config", "dataset_info", "denormalize", "detect_layout",
    "download_kaggle_fish", "ensure_synthetic", "eval_transform", "find_kaggle_root", "generate_dataset",
    "group_by_fish", "grouped_split", "kaggle_fish_dir", "leaked_groups", "load_mask", "load_metadata", "load_rgb",
    "SplitDatasets", "few_per_class", "make_datasets", "make_splits", "read_image", "read_mask", "scan_dataset",
    "seen_ceiling", "single_view_ceiling", "split_ceiling", "species_table", "to_display", "train_transform",
]
