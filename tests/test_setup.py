"""make_datasets: the three splits of an experiment from a folder, in one call."""

from __future__ import annotations

import pytest
import torch

from fishcam_utils.data import FishImageDataset, MultiViewDataset, make_datasets, scan_dataset
from fishcam_utils.data.splits import leaked_groups


def test_one_view_of_a_multiview_dataset_keeps_its_split_folders(tiny_synth):
    splits = make_datasets(tiny_synth, view="back", image_size=32, progress=False)
    index = scan_dataset(tiny_synth)
    for name in ("train", "val", "test"):
        part = getattr(splits, name)
        assert isinstance(part, FishImageDataset)
        expected = index.subset(split=name, view="back").frame["relpath"].tolist()
        assert part.frame["relpath"].tolist() == expected
    image, label = splits.train[0]
    assert image.shape == (3, 32, 32) and splits.classes == index.classes


def test_whole_fish_for_multiview_models(tiny_synth):
    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    (views, present), label = splits.val[0]
    assert isinstance(splits.val, MultiViewDataset) and views.shape == (3, 3, 32, 32) and present.all()


def test_a_dataset_without_split_folders_gets_a_seeded_fish_grouped_split(tiny_kaggle):
    a = make_datasets(tiny_kaggle, image_size=32, split_seed=1, progress=False)
    b = make_datasets(tiny_kaggle, image_size=32, split_seed=1, progress=False)
    assert a.test.frame["path"].tolist() == b.test.frame["path"].tolist()
    assert len(a.train) + len(a.val) + len(a.test) == len(a.index)
    assert leaked_groups(a.index.frame) == []
    assert set(a.index.splits) == {"train", "val", "test"}


def test_the_class_order_can_be_fixed_and_bad_views_are_named(tiny_synth):
    classes = sorted(scan_dataset(tiny_synth).classes)
    splits = make_datasets(tiny_synth, image_size=32, classes=classes, augment=0, progress=False)
    assert splits.classes == classes
    _, label = splits.test[0]
    assert classes[label] == splits.test.frame["class_name"].iloc[0]
    with pytest.raises(ValueError, match="view 'top' is not in .*side"):
        make_datasets(tiny_synth, view="top", progress=False)
    # Without augmentation, the training set gives the same tensor every time.
    assert torch.equal(splits.train[0][0], splits.train[0][0])
