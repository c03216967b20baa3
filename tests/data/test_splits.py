"""Splits: stratified by class, grouped by fish, seeded."""

import numpy as np
import pandas as pd
import pytest

from fishcam_utils.data.layouts import scan_dataset
from fishcam_utils.data.splits import grouped_split, leaked_groups, make_splits
from fishcam_utils.errors import DataError


def _frame(n_fish_per_class=(40, 20, 60), views=3):
    rows = [
        {"label": label, "fish_id": f"c{label}f{i}", "view": v}
        for label, n in enumerate(n_fish_per_class) for i in range(n) for v in range(views)
    ]
    return pd.DataFrame(rows)


def test_every_fish_stays_in_one_split_and_classes_keep_their_shares():
    frame = _frame()
    frame["split"] = grouped_split(frame["label"], frame["fish_id"], (0.7, 0.15, 0.15), seed=3)
    assert leaked_groups(frame) == []
    fish = frame.drop_duplicates("fish_id")
    for label, n in enumerate((40, 20, 60)):
        counts = fish.loc[fish["label"] == label, "split"].value_counts()
        for split, share in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
            assert abs(counts.get(split, 0) - share * n) <= 1, (label, split, counts.to_dict())


def test_the_seed_decides_and_only_the_seed():
    frame = _frame()
    a = grouped_split(frame["label"], frame["fish_id"], seed=1)
    b = grouped_split(frame["label"], frame["fish_id"], seed=1)
    c = grouped_split(frame["label"], frame["fish_id"], seed=2)
    assert a.equals(b) and not a.equals(c)


def test_a_per_image_split_leaks_and_is_caught():
    frame = _frame()
    rng = np.random.default_rng(0)
    frame["split"] = rng.choice(["train", "val", "test"], size=len(frame), p=[0.7, 0.15, 0.15])
    leaked = leaked_groups(frame)
    # Independent count: fish whose three views did not all land in the same split.
    expected = sum(g["split"].nunique() > 1 for _, g in frame.groupby("fish_id"))
    assert len(leaked) == expected > 0.5 * frame["fish_id"].nunique()


def test_small_classes_still_reach_every_split():
    frame = _frame((3, 4, 5), views=1)
    split = grouped_split(frame["label"], frame["fish_id"])
    for label in range(3):
        assert set(split[frame["label"] == label]) == {"train", "val", "test"}


def test_make_splits_on_a_dataset_without_split_folders(tiny_kaggle):
    index = scan_dataset(tiny_kaggle)
    assert index.splits == []
    split = make_splits(index, seed=0)
    assert split.splits == ["train", "val", "test"] and len(split) == len(index)
    assert (index.frame["split"] == "").all()  # the original index is untouched
    with pytest.raises(DataError, match="already has splits"):
        make_splits(split)
    again = make_splits(split, seed=1, overwrite=True)
    assert not again.frame["split"].equals(split.frame["split"])


def test_bad_fractions_and_mixed_groups_are_named():
    frame = _frame()
    with pytest.raises(ValueError, match="fractions"):
        grouped_split(frame["label"], frame["fish_id"], (0.8, 0.3, 0.1))
    frame.loc[0, "label"] = 2
    with pytest.raises(DataError, match="several classes"):
        grouped_split(frame["label"], frame["fish_id"])


def test_classes_too_small_for_three_splits_are_named_with_what_they_need(tmp_path):
    from conftest import write_image

    for name, n in (("bass", 5), ("carp", 2), ("trout", 1)):
        for i in range(n):
            write_image(tmp_path / "ds" / name / f"{i}.png")
    with pytest.raises(DataError) as info:
        make_splits(scan_dataset(tmp_path / "ds"))
    text = str(info.value)
    assert "2 class(es)" in text and "carp has 2; trout has 1" in text
    assert "at least 3 images (one for each of train, val, test)" in text and "split folders" not in text
