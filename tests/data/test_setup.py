"""make_datasets: the three splits of an experiment from a folder, in one call."""

from __future__ import annotations

import pytest
import torch

from fishcam_utils.data import FishImageDataset, MultiViewDataset, few_per_class, make_datasets, scan_dataset
from fishcam_utils.data.splits import leaked_groups
from fishcam_utils.data.synthetic import load_metadata


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


def test_train_and_test_folders_without_val_get_a_val_split_from_train(tmp_path):
    from conftest import write_image

    root = tmp_path / "ds"
    for split, n in (("train", 10), ("test", 3)):
        for name in ("bass", "trout"):
            for i in range(n):
                write_image(root / split / name / f"{i}.png")
    splits = make_datasets(root, image_size=8, progress=False)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (16, 4, 6)
    assert set(splits.val.frame["relpath"]) <= {f"train/{c}/{i}.png" for c in ("bass", "trout") for i in range(10)}
    assert any("no val folder" in note for note in splits.index.notes)


def test_split_folders_lacking_test_say_so(tmp_path):
    from conftest import write_image

    for split in ("train", "val"):
        for name in ("bass", "trout"):
            write_image(tmp_path / "ds" / split / name / "0.png")
    with pytest.raises(ValueError, match=r"has split folders \(train, val\) but no test folder"):
        make_datasets(tmp_path / "ds", image_size=8, progress=False)


@pytest.mark.filterwarnings("ignore::fishcam_utils.errors.DataWarning")  # the renamed view is missing at first
def test_make_datasets_takes_every_fix_its_messages_suggest(synth_copy):
    meta = load_metadata(synth_copy)
    (synth_copy / "train" / meta["species"][0] / "notes.txt").write_text("fed on Tuesday")
    for path in synth_copy.rglob("*_belly.png"):
        path.rename(path.with_name(path.name.replace("_belly", "_bottom")))
    with pytest.raises(ValueError) as info:
        make_datasets(synth_copy, image_size=8, progress=False)
    assert "unknown_files='skip'" in str(info.value) and "views=[" in str(info.value)
    splits = make_datasets(synth_copy, image_size=8, multiview=True, unknown_files="skip",
                           views=["side", "back", "bottom"], progress=False)
    assert splits.train.views == ["side", "back", "bottom"]


def test_val_carved_from_two_training_images_per_class_takes_one_of_each(tmp_path):
    from conftest import write_image

    for split, n in (("train", 2), ("test", 1)):
        for name in ("bass", "trout"):
            for i in range(n):
                write_image(tmp_path / "ds" / split / name / f"{i}.png")
    splits = make_datasets(tmp_path / "ds", image_size=8, progress=False)
    assert sorted(splits.val.frame["class_name"]) == ["bass", "trout"] and len(splits.train) == 2


def test_few_per_class_keeps_n_whole_fish_of_each_class_and_the_transform(tiny_synth):
    side = make_datasets(tiny_synth, view="side", image_size=32, progress=False)
    fish = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    for dataset in (side.train, fish.train):
        few = few_per_class(dataset, 1, seed=3)
        assert type(few) is type(dataset) and few.transform is dataset.transform and few.image_size == 32
        assert sorted(few.targets) == list(range(len(dataset.classes)))  # one of each class
        assert set(few.frame["fish_id"]) <= set(dataset.frame["fish_id"])
        if isinstance(few, MultiViewDataset):  # all three views of each kept fish, none of the others
            assert len(few.frame) == 3 * len(few) and few.frame.groupby("fish_id").size().eq(3).all()
        assert few_per_class(dataset, 1, seed=3).frame.equals(few.frame)  # seeded
    smallest = side.train.frame.groupby("class_name").size().min()
    with pytest.raises(ValueError, match=r"n must be between 1 and the smallest class's"):
        few_per_class(side.train, smallest + 1)
