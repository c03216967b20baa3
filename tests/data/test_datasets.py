"""Datasets: samples, masks and batches, for single images and for whole fish."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from fishcam_utils.data.datasets import FishImageDataset, MultiViewDataset
from fishcam_utils.data.images import read_image, read_mask
from fishcam_utils.data.layouts import DataWarning, scan_dataset
from fishcam_utils.data.synthetic import load_metadata
from fishcam_utils.data.transforms import eval_transform, train_transform


def test_single_images_with_labels_masks_and_batches(tiny_synth):
    index = scan_dataset(tiny_synth).subset(split="train", view="side")
    data = FishImageDataset(index, image_size=32, masks=["body", "evidence"])
    assert len(data) == len(index.frame) and data.classes == index.classes
    image, label, masks = data[3]
    row = index.frame.iloc[3]
    assert image.shape == (3, 32, 32) and type(image) is torch.Tensor
    assert label == row["label"]
    assert torch.equal(image, eval_transform(32)(read_image(row["path"])))
    np.testing.assert_array_equal(masks["evidence"].numpy(), read_mask(row["mask_evidence"]))
    np.testing.assert_array_equal(data.raw(3), read_image(row["path"]))
    images, labels, batch_masks = next(iter(DataLoader(data, batch_size=5)))
    assert images.shape == (5, 3, 32, 32) and labels.tolist() == data.targets[:5]
    assert batch_masks["body"].shape == (5, 32, 32) and batch_masks["body"].dtype == torch.bool


def test_training_augmentation_applies_to_the_masks_too(tiny_synth):
    index = scan_dataset(tiny_synth).subset(split="train", view="back")
    data = FishImageDataset(index, transform=train_transform(32), image_size=32, masks=["body"])
    torch.manual_seed(1)
    _, _, masks = data[0]
    plain = read_mask(index.frame["mask_body"][0])
    assert masks["body"].shape == (32, 32) and masks["body"].any()
    assert not np.array_equal(masks["body"].numpy(), plain)  # the crop moved it


def test_asking_for_masks_that_do_not_exist_is_explained(tiny_synth):
    index = scan_dataset(tiny_synth)
    with pytest.raises(ValueError, match="no 'marker' masks.*body.*evidence"):
        FishImageDataset(index, masks=["marker"])


def test_multiview_samples_hold_each_fish_in_view_order(tiny_synth):
    index = scan_dataset(tiny_synth).subset(split="test")
    data = MultiViewDataset(index, image_size=32, masks=["evidence"])
    meta = load_metadata(tiny_synth)
    assert len(data) == meta.loc[meta["split"] == "test", "fish_id"].nunique()
    (views, present), label, masks = data[2]
    assert views.shape == (3, 3, 32, 32) and present.tolist() == [True, True, True]
    assert masks["evidence"].shape == (3, 32, 32)
    fish = data.fish.iloc[2]
    assert label == fish["label"]
    for v, view in enumerate(data.views):
        assert torch.equal(views[v], eval_transform(32)(read_image(fish[view])))
    (batch_views, batch_present), labels, _ = next(iter(DataLoader(data, batch_size=4)))
    assert batch_views.shape == (4, 3, 3, 32, 32) and batch_present.shape == (4, 3)


def test_a_kept_missing_view_is_blank_and_marked(synth_copy):
    meta = load_metadata(synth_copy)
    row = meta[(meta["split"] == "val") & (meta["view"] == "belly")].iloc[0]
    (synth_copy / row["image"]).unlink()
    with pytest.warns(DataWarning):
        index = scan_dataset(synth_copy, missing_views="keep").subset(split="val")
    data = MultiViewDataset(index, image_size=32)
    i = data.fish.index[data.fish["fish_id"] == row["fish_id"]][0]
    (views, present), _ = data[i]
    assert present.tolist() == [True, True, False]
    assert (views[2] == 0).all() and views[0].abs().sum() > 0
    assert data.raw(i)["belly"] is None


def test_multiview_needs_a_multiview_index(tiny_kaggle):
    with pytest.raises(ValueError, match="needs a multi-view dataset"):
        MultiViewDataset(scan_dataset(tiny_kaggle))
