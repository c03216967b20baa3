"""The source task of the course's pretrained stand-in: other fish, other marks, any view names them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fishcam_utils.data.fish_drawing import render_photo, sample_body_colour, sample_photo_params
from fishcam_utils.data.species import (
    SOURCE_HUES, SOURCE_PATTERNS, SOURCE_SPECIES, SOURCE_TRAITS, SPECIES, TRAITS, VIEWS, single_view_ceiling,
    species_table)
from fishcam_utils.data.synthetic import SyntheticConfig, dataset_info, generate_dataset


def test_the_source_table_shares_nothing_with_the_course_and_any_view_names_a_species():
    assert len(SOURCE_SPECIES) == len(SOURCE_PATTERNS) * len(SOURCE_HUES) == 12
    course_traits = {t for traits in TRAITS.values() for t in traits}
    assert not set(SOURCE_TRAITS) & course_traits
    assert not {s.name for s in SOURCE_SPECIES} & {s.name for s in SPECIES}
    assert all(single_view_ceiling(view, SOURCE_SPECIES) == 1.0 for view in VIEWS)
    assert species_table("source") is SOURCE_SPECIES and species_table("course") is SPECIES
    with pytest.raises(ValueError, match="unknown species table 'reef'; choose one of course, source"):
        species_table("reef")


def test_the_four_patterns_cover_different_pixels():
    rng = np.random.default_rng(3)
    params = sample_photo_params(rng, sample_body_colour(rng))
    masks = {p: render_photo("side", f"blue_{p}", params, 64, 64).evidence for p in SOURCE_PATTERNS}
    for p, mask in masks.items():
        assert mask.sum() > 20, p
    for a in SOURCE_PATTERNS:
        for b in SOURCE_PATTERNS:
            if a < b:
                iou = (masks[a] & masks[b]).sum() / (masks[a] | masks[b]).sum()
                assert iou < 0.5, (a, b, iou)


def test_a_source_dataset_is_drawn_with_its_own_classes_and_coloured_marks(tmp_path):
    config = SyntheticConfig(species="source", fish_per_class=3, size=48)
    root = generate_dataset(tmp_path / "source", config, progress=False, workers=1)
    meta = pd.read_csv(root / "metadata.csv", keep_default_na=False)
    info = dataset_info(root)
    assert sorted(meta["species"].unique()) == sorted(s.name for s in SOURCE_SPECIES)
    assert len(meta) == 12 * 3 * len(VIEWS)
    assert info["classes"] == [s.name for s in SOURCE_SPECIES] and info["config"]["species"] == "source"
    from PIL import Image

    dominant = {int(np.argmax(rgb)): name for name, rgb in SOURCE_HUES.items()}  # orange: red, green: green, blue: blue
    assert len(dominant) == len(SOURCE_HUES)
    for _, row in meta.iterrows():
        image = np.asarray(Image.open(root / row["image"]).convert("RGB"), dtype=np.float32) / 255
        evidence = np.asarray(Image.open(root / row["evidence_mask"])) > 0
        assert evidence.any(), row["image"]
        mean = image[evidence].mean(0)  # the mark's colour, dimmed or hazed by the photo's lighting
        hue = dominant[int(np.argmax(mean - mean.mean()))]  # its strongest channel names the hue
        assert hue == SOURCE_SPECIES[int(row["label"])].traits[row["view"]].split("_")[0], row["image"]


def test_the_course_config_keeps_its_old_description_and_unknown_tables_are_refused():
    assert "species" not in SyntheticConfig().to_dict()  # datasets drawn before the option stay current
    assert SyntheticConfig(species="source").to_dict()["species"] == "source"
    with pytest.raises(ValueError, match="species must be one of course, source"):
        SyntheticConfig(species="reef")


def test_the_source_table_draws_other_fish_and_refuses_stickers_it_cannot_colour():
    from fishcam_utils.data.synthetic import _table_stream

    assert _table_stream(SyntheticConfig()) == [] and _table_stream(SyntheticConfig(species="source")) != []
    with pytest.raises(ValueError, match="sticker colour"):
        SyntheticConfig(species="source", shortcut=True)
