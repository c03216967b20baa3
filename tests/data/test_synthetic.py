"""The synthetic dataset on disk: deterministic, complete, consistent with its metadata."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fishcam_utils.data.species import SPECIES, VIEWS
from fishcam_utils.data.synthetic import (
    QUICK_CONFIG,
    SyntheticConfig,
    dataset_config,
    dataset_info,
    default_dataset_dir,
    ensure_synthetic,
    generate_dataset,
    load_metadata,
    split_of_each_fish,
)
from fishcam_utils.errors import DataError


def _tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_same_seed_gives_byte_identical_files_with_any_number_of_workers(tmp_path):
    config = SyntheticConfig(size=24, fish_per_class=8, seed=5)  # 72 fish: enough to use the process pool
    one = generate_dataset(tmp_path / "one", config, workers=1, progress=False)
    two = generate_dataset(tmp_path / "two", config, workers=2, progress=False)
    a, b = _tree_bytes(one), _tree_bytes(two)
    assert a.keys() == b.keys() and len(a) == 9 * 8 * 3 * 3 + 2
    assert all(a[k] == b[k] for k in a)
    other = generate_dataset(tmp_path / "other", SyntheticConfig(size=24, fish_per_class=8, seed=6), workers=1,
                             progress=False)
    c = _tree_bytes(other)
    images = [k for k in a if k.startswith("train/")]
    assert sum(a[k] != c.get(k) for k in images) > 0.9 * len(images)


def test_files_metadata_and_species_agree(tiny_synth):
    meta = load_metadata(tiny_synth)
    assert len(meta) == 9 * 4 * 3
    for column in ("image", "fish_id", "species", "view", "split", "body_mask", "evidence_mask", "trait",
                   "deciding_view", "shortcut_marker"):
        assert column in meta.columns
    by_name = {s.name: s for s in SPECIES}
    for row in meta.itertuples():
        assert row.image == f"{row.split}/{row.species}/{row.fish_id}_{row.view}.png"
        assert row.trait == by_name[row.species].traits[row.view]
        assert row.is_deciding_view == (row.view == by_name[row.species].deciding_view)
        assert row.label == [s.name for s in SPECIES].index(row.species)
    # Every view of a fish is in one split, and every fish has all three views.
    per_fish = meta.groupby("fish_id").agg(splits=("split", "nunique"), views=("view", "nunique"))
    assert (per_fish["splits"] == 1).all() and (per_fish["views"] == 3).all()
    assert dataset_info(tiny_synth)["classes"] == [s.name for s in SPECIES]


def test_masks_on_disk_are_binary_and_evidence_lies_on_the_fish(tiny_synth):
    meta = load_metadata(tiny_synth)
    for row in meta.sample(30, random_state=0).itertuples():
        image = _png(tiny_synth / row.image)
        body, evidence = _png(tiny_synth / row.body_mask), _png(tiny_synth / row.evidence_mask)
        assert image.shape == (32, 32, 3)
        assert body.shape == evidence.shape == (32, 32)
        assert set(np.unique(body)) <= {0, 255} and set(np.unique(evidence)) <= {0, 255}
        assert body.any() and not ((evidence > 0) & (body == 0)).any()
        assert int((evidence > 0).sum()) == row.evidence_pixels


def test_splits_are_stratified_by_species_and_follow_the_fractions():
    config = SyntheticConfig(fish_per_class=150)
    splits = split_of_each_fish(config)
    for per_species in splits:
        counts = pd.Series(per_species).value_counts()
        assert counts.to_dict() == {"train": 106, "val": 22, "test": 22}
    assert splits[0] != splits[1]  # each species shuffled on its own


def test_shortcut_marks_training_photos_only_and_changes_nothing_else(tmp_path):
    clean = generate_dataset(tmp_path / "clean", SyntheticConfig(size=32, fish_per_class=3), workers=1, progress=False)
    marked = generate_dataset(tmp_path / "marked", SyntheticConfig(size=32, fish_per_class=3, shortcut=True),
                              workers=1, progress=False)
    meta = load_metadata(marked)
    assert meta.loc[meta["split"] == "train", "shortcut_marker"].all()
    assert not meta.loc[meta["split"] != "train", "shortcut_marker"].any()
    for row in meta.itertuples():
        marker = _png(marked / row.marker_mask) > 0
        assert marker.any() == row.shortcut_marker
        a, b = _png(clean / row.image), _png(marked / row.image)
        # The same photo: identical wherever the sticker (and the blur around it) is not.
        near = marker.copy()
        for _ in range(3):
            near[1:] |= near[:-1].copy(); near[:-1] |= near[1:].copy()
            near[:, 1:] |= near[:, :-1].copy(); near[:, :-1] |= near[:, 1:].copy()
        differs = np.abs(a.astype(int) - b.astype(int)).max(axis=2) > 0
        assert not (differs & ~near).any(), row.image
        if row.shortcut_marker:
            colour = b[marker].mean(axis=0)
            assert np.abs(colour - b[~near].mean(axis=0)).max() > 10  # the sticker stands out


def test_shortcut_rate_controls_the_share_of_marked_photos(tmp_path):
    config = SyntheticConfig(size=20, fish_per_class=20, shortcut=True, shortcut_rate=0.5)
    meta = load_metadata(generate_dataset(tmp_path / "half", config, workers=1, progress=False))
    share = meta.loc[meta["split"] == "train", "shortcut_marker"].mean()
    assert 0.35 < share < 0.65


def test_kaggle_layout_holds_the_side_views_of_the_same_fish(tiny_synth, tiny_kaggle):
    root = tiny_kaggle / "Fish_Dataset"
    for species in SPECIES:
        images = sorted((root / species.name / species.name).glob("*.png"))
        masks = sorted((root / species.name / f"{species.name} GT").glob("*.png"))
        assert [p.name for p in images] == [f"{i:05d}.png" for i in range(1, 5)]
        assert [p.name for p in masks] == [p.name for p in images]
    # Fish number 1 of the first species is fish F00001 of the multi-view dataset.
    kaggle_image = _png(root / SPECIES[0].name / SPECIES[0].name / "00001.png")
    multi = load_metadata(tiny_synth)
    side = multi[(multi["fish_id"] == "F00001") & (multi["view"] == "side")]["image"].item()
    np.testing.assert_array_equal(kaggle_image, _png(tiny_synth / side))


def test_sizes_can_be_large_and_non_square(tmp_path):
    config = SyntheticConfig(size=(120, 90), fish_per_class=1, views=("side",), split_fractions=(1.0, 0.0, 0.0))
    root = generate_dataset(tmp_path / "wide", config, workers=1, progress=False)
    meta = load_metadata(root)
    assert len(meta) == 9 and set(meta["view"]) == {"side"}
    assert _png(root / meta["image"][0]).shape == (90, 120, 3)


def test_existing_folders_are_protected(tmp_path):
    config = SyntheticConfig(size=20, fish_per_class=3)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="not a FishCAM synthetic dataset"):
        generate_dataset(foreign, config, progress=False, workers=1)
    assert (foreign / "thesis.txt").read_text() == "precious"

    root = generate_dataset(tmp_path / "ds", config, progress=False, workers=1)
    stamp = (root / "metadata.csv").stat().st_mtime_ns
    assert generate_dataset(root, config, progress=False) == root  # up to date: untouched
    assert (root / "metadata.csv").stat().st_mtime_ns == stamp
    other = SyntheticConfig(size=20, fish_per_class=3, seed=1)
    with pytest.raises(DataError, match="overwrite=True"):
        generate_dataset(root, other, progress=False, workers=1)
    generate_dataset(root, other, overwrite=True, progress=False, workers=1)
    assert dataset_info(root)["config"]["seed"] == 1
    assert not list(tmp_path.glob(".*tmp*")) and not list(tmp_path.glob(".*old*"))


def _rename_with(monkeypatch, before_moving_tmp):
    """Patch Path.rename so that ``before_moving_tmp(dest)`` runs when a temporary dataset is moved."""
    real = Path.rename

    def rename(self, dest):
        if ".tmp-" in self.name:
            before_moving_tmp(Path(dest))
        return real(self, dest)

    monkeypatch.setattr(Path, "rename", rename)


def test_a_dataset_finished_first_by_another_process_is_accepted(tmp_path, monkeypatch):
    config = SyntheticConfig(size=20, fish_per_class=3)
    theirs = generate_dataset(tmp_path / "theirs", config, workers=1, progress=False)
    target = tmp_path / "shared"
    # The other process wins the race: the folder appears just before ours is moved there.
    _rename_with(monkeypatch, lambda dest: shutil.copytree(theirs, dest))
    assert generate_dataset(target, config, workers=1, progress=False) == target
    assert dataset_config(target) == config and len(load_metadata(target)) == 81
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared", "theirs"]  # nothing half-done left


def test_a_failed_move_puts_the_previous_dataset_back(tmp_path, monkeypatch):
    target = generate_dataset(tmp_path / "ds", SyntheticConfig(size=20, fish_per_class=3), workers=1, progress=False)

    def disk_full(dest):
        raise OSError(28, "No space left on device")

    _rename_with(monkeypatch, disk_full)
    with pytest.raises(OSError, match="No space left"):
        generate_dataset(target, SyntheticConfig(size=20, fish_per_class=3, seed=9), overwrite=True,
                         workers=1, progress=False)
    assert dataset_config(target).seed == 0 and len(load_metadata(target)) == 81
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="split_fractions"):
        SyntheticConfig(split_fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="views must be"):
        SyntheticConfig(views=("top",))
    with pytest.raises(ValueError, match="too few"):
        SyntheticConfig(fish_per_class=2)
    with pytest.raises(ValueError, match="layout"):
        SyntheticConfig(layout="coco")


def test_ensure_synthetic_makes_the_quick_dataset_once(monkeypatch, tmp_path):
    monkeypatch.setenv("FISHCAM_QUICK", "1")
    root = ensure_synthetic(progress=False)
    assert root == default_dataset_dir() and root.name == "synthetic-quick"
    info = json.loads((root / "dataset.json").read_text())
    assert SyntheticConfig.from_dict(info["config"]) == QUICK_CONFIG
    assert len(load_metadata(root)) == 9 * QUICK_CONFIG.fish_per_class * len(VIEWS)
    stamp = (root / "dataset.json").stat().st_mtime_ns
    assert ensure_synthetic(progress=False) == root
    assert (root / "dataset.json").stat().st_mtime_ns == stamp


def test_marker_size_sets_the_sticker_and_matters_only_with_stickers(tmp_path):
    def marker_pixels(size: float) -> int:
        root = generate_dataset(tmp_path / f"m{size}", SyntheticConfig(size=64, fish_per_class=3, shortcut=True,
                                                                       marker_size=size, views=("side",)),
                                progress=False, workers=1)
        meta = load_metadata(root)
        row = meta[(meta["split"] == "train") & meta["shortcut_marker"]].iloc[0]
        return int((np.asarray(Image.open(root / row.marker_mask)) > 0).sum())

    small, big = marker_pixels(0.08), marker_pixels(0.16)
    assert 3 <= big / small <= 5  # twice the side, four times the area (up to the pixel grid)
    assert "marker_size" not in SyntheticConfig().to_dict()  # datasets without stickers keep their config
    assert SyntheticConfig.from_dict(SyntheticConfig(shortcut=True, marker_size=0.2).to_dict()).marker_size == 0.2
    with pytest.raises(ValueError, match="marker_size must lie in"):
        SyntheticConfig(marker_size=0)


def test_ensure_synthetic_keeps_notebook_08s_sticker_copy_apart(monkeypatch):
    from fishcam_utils.data import synthetic

    monkeypatch.setattr(synthetic, "QUICK_CONFIG", SyntheticConfig(size=32, fish_per_class=3))  # small and quick
    root = ensure_synthetic(quick=True, progress=False, shortcut=("train", "test"))
    assert root.name == "synthetic-marker-train-test-quick" and root.parent == default_dataset_dir(True).parent
    meta = load_metadata(root)
    assert meta.groupby("split")["shortcut_marker"].all().to_dict() == {"test": True, "train": True, "val": False}
    assert dataset_config(root).marker_size == synthetic.SHORTCUT_MARKER_SIZE
