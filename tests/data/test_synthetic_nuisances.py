"""Photos of uneven quality and distractors in the water: seeded and byte-reproducible, off unless asked for,
with masks that match what was drawn and metadata that matches the images."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
from PIL import Image

from fishcam_utils.data import make_datasets
from fishcam_utils.data.fish_drawing import (DEGRADATIONS, DISTRACTOR_RADIUS, OCCLUSIONS, render_photo,
                                             sample_body_colour, sample_degradation, sample_distractors,
                                             sample_photo_params)
from fishcam_utils.data.synthetic import DISTRACTOR_VERSION, SyntheticConfig, generate_dataset, load_metadata

NUISANCES = dict(degraded_share=0.5, distractors=3)


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _png(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture(scope="module")
def noisy(tmp_path_factory):
    config = SyntheticConfig(size=32, fish_per_class=4, seed=3, **NUISANCES)
    return generate_dataset(tmp_path_factory.mktemp("noisy") / "data", config, workers=1, progress=False)


def test_the_nuisances_are_seeded_and_byte_reproducible_with_any_number_of_workers(noisy, tmp_path):
    again = generate_dataset(tmp_path / "again", SyntheticConfig(size=32, fish_per_class=4, seed=3, **NUISANCES),
                             workers=2, progress=False)
    a, b = _tree_bytes(noisy), _tree_bytes(again)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a)
    assert any(k.startswith("masks/distractor/") for k in a)


def test_off_by_default_and_the_clean_photos_stay_as_they_were(tmp_path):
    """Without the options nothing changes: no new columns or masks, and each photo's fish, pose and background are
    the same with the options on, where the photo was drawn without a degradation or distractor."""
    clean = generate_dataset(tmp_path / "clean", SyntheticConfig(size=32, fish_per_class=3), workers=1, progress=False)
    meta = load_metadata(clean)
    assert not {"degradation", "visible_evidence", "distractors", "distractor_mask"} & set(meta.columns)
    assert not (clean / "masks" / "distractor").exists()
    assert "degraded_share" not in SyntheticConfig().to_dict() and "distractors" not in SyntheticConfig().to_dict()
    noisy = generate_dataset(tmp_path / "noisy", SyntheticConfig(size=32, fish_per_class=3, **NUISANCES), workers=1,
                             progress=False)
    noisy_meta = load_metadata(noisy).set_index("image")
    untouched = [row.image for row in meta.itertuples()
                 if noisy_meta.loc[row.image, "degradation"] == "" and noisy_meta.loc[row.image, "distractors"] == 0]
    assert untouched, "some photos have neither"
    for image in untouched:
        assert np.array_equal(_png(clean / image), _png(noisy / image))


@pytest.mark.parametrize("kind", DEGRADATIONS)
def test_each_degradation_changes_the_photo_where_and_as_it_says(kind):
    """Drawn without lens blur or noise, so that a change stays where it was made: an occluder changes pixels only
    on (or next to) its mask and hides evidence; murk lowers the contrast; motion blur smears along the rows."""
    rng = np.random.default_rng(11)
    params = dataclasses.replace(sample_photo_params(rng, sample_body_colour(rng)), blur=0.0, noise=0.0)
    plain = render_photo("side", "spots", params, 48, 48)
    spoilt = render_photo("side", "spots", dataclasses.replace(params, degradation=(kind, 0.9, 0.5, 0.6)), 48, 48)
    changed = np.abs(spoilt.image.astype(int) - plain.image.astype(int)).max(-1) > 2
    assert plain.trait_pixels == spoilt.trait_pixels == plain.evidence.sum() > 0
    assert not (spoilt.evidence & ~plain.evidence).any() and not (spoilt.body & ~plain.body).any()
    if kind in OCCLUSIONS:
        near = np.zeros_like(spoilt.occluder)
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                near |= np.roll(spoilt.occluder, (dy, dx), (0, 1))
        assert spoilt.occluder.any() and not (changed & ~near).any()
        assert not (spoilt.evidence & spoilt.occluder).any() and spoilt.visible_evidence < 1
        assert spoilt.visible_evidence == spoilt.evidence.sum() / plain.evidence.sum()
    else:
        assert not spoilt.occluder.any() and spoilt.visible_evidence == 1 and changed.mean() > 0.1
        if kind == "murk":
            assert spoilt.image.astype(float).std() < 0.8 * plain.image.astype(float).std()
        else:  # smeared along the rows: less change from one column to the next, as much from row to row
            along = lambda im: np.abs(np.diff(im.astype(float), axis=1)).mean()  # noqa: E731
            assert along(spoilt.image) < 0.7 * along(plain.image)


def test_an_occluder_over_the_shortcut_sticker_hides_it_from_its_mask_too():
    rng = np.random.default_rng(13)
    params = sample_photo_params(rng, sample_body_colour(rng))
    marked = dataclasses.replace(params, marker=(params.cx, params.cy, 1), marker_size=0.2)  # the sticker on the fish
    photos = [render_photo("side", "band", dataclasses.replace(marked, degradation=("weed", 1.0, pick, 0.0)), 48, 48)
              for pick in np.linspace(0, 0.99, 12)]
    assert any((p.occluder & render_photo("side", "band", marked, 48, 48).marker).any() for p in photos)
    for p in photos:
        assert not (p.marker & p.occluder).any() and not (p.body & p.occluder).any()


def test_distractors_lie_away_from_the_fish_and_their_masks_are_what_was_drawn():
    rng = np.random.default_rng(12)
    params = dataclasses.replace(sample_photo_params(rng, sample_body_colour(rng)), blur=0.0, noise=0.0)
    items = sample_distractors(np.random.default_rng(5), params, 4)
    assert 1 <= len(items) <= 4
    plain = render_photo("back", "saddle", params, 64, 64)
    busy = render_photo("back", "saddle", dataclasses.replace(params, distractors=items), 64, 64)
    changed = np.abs(busy.image.astype(int) - plain.image.astype(int)).max(-1) > 2
    assert busy.distractor.any() and not (busy.distractor & busy.body).any()
    assert np.array_equal(busy.body, plain.body) and np.array_equal(busy.evidence, plain.evidence)
    grown = busy.distractor.copy()
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            grown |= np.roll(busy.distractor, (dy, dx), (0, 1))
    assert not (changed & ~grown).any() and changed[busy.distractor].mean() > 0.5


def _ellipse(item, width: int, height: int) -> np.ndarray:
    """The output pixels whose centres lie in a distractor's ellipse (semi-axes radius and 0.65 radius)."""
    x0, y0, radius, _, _, angle = item
    unit = min(width, height) / 2
    x, y = np.meshgrid((np.arange(width) + 0.5 - width / 2) / unit, -(np.arange(height) + 0.5 - height / 2) / unit)
    u = (x - x0) * np.cos(angle) + (y - y0) * np.sin(angle)
    v = -(x - x0) * np.sin(angle) + (y - y0) * np.cos(angle)
    return (u / radius) ** 2 + (v / (0.65 * radius)) ** 2 < 1


@pytest.mark.parametrize("aspect", [1.0, 590 / 445])
def test_distractors_are_placed_at_the_size_they_are_drawn(aspect):
    """Every distractor, at its drawn size, lies wholly on the canvas and clear of the fish in any view and pose
    (checked on the drawn pixels, not on the placement's arithmetic); most of those asked for find a place."""
    width, height = round(64 * aspect), 64
    placed = asked = 0
    for i in range(40):
        rng = np.random.default_rng([7, i])
        params = dataclasses.replace(sample_photo_params(rng, sample_body_colour(rng), aspect), blur=0.0, noise=0.0)
        items = sample_distractors(np.random.default_rng([8, i]), params, 4, aspect)
        asked += int(np.random.default_rng([8, i]).integers(0, 5))  # the same first draw: how many were asked for
        placed += len(items)
        for x, y, radius, *_ in items:
            assert DISTRACTOR_RADIUS[0] <= radius <= DISTRACTOR_RADIUS[1]
            half_w, half_h = max(aspect, 1.0), max(1 / aspect, 1.0)
            assert abs(x) + radius <= half_w and abs(y) + radius <= half_h
        for view in ("side", "back", "belly"):
            alone = render_photo(view, "bars" if view == "side" else "saddle" if view == "back" else "red_belly",
                                 dataclasses.replace(params, distractors=()), width, height)
            grown = alone.body.copy()
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    grown |= np.roll(alone.body, (dy, dx), (0, 1))
            for item in items:  # the whole ellipse, from its equation: the fish would hide where it overlaps
                ellipse = _ellipse(item, width, height)
                assert ellipse.any() and not (ellipse & grown).any(), "a distractor touches the fish"
    assert placed >= 0.8 * asked > 0


def test_the_metadata_matches_the_images_and_masks(noisy):
    meta = load_metadata(noisy)
    assert set(meta["degradation"]) <= {"", *DEGRADATIONS}
    for row in meta.itertuples():
        evidence, body = _png(noisy / row.evidence_mask) > 0, _png(noisy / row.body_mask) > 0
        distractor = _png(noisy / row.distractor_mask) > 0
        assert evidence.sum() == row.evidence_pixels and distractor.sum() == row.distractor_pixels
        assert not (evidence & ~body).any() and not (distractor & body).any()
        if row.trait_pixels:
            assert math.isclose(row.visible_evidence, round(row.evidence_pixels / row.trait_pixels, 4), abs_tol=1e-9)
            assert (row.degradation in OCCLUSIONS) or row.visible_evidence == 1
        else:  # a trait too small to cover a pixel: nothing to see, nothing an occluder could cover
            assert math.isnan(row.visible_evidence) and row.degradation not in OCCLUSIONS
        assert (row.degradation == "") == (row.degradation_strength == 0)
    # A share of the photos, view by view, drawn independently: within 4.5 standard errors of it.
    n = len(meta)
    degraded = (meta["degradation"] != "").mean()
    assert abs(degraded - NUISANCES["degraded_share"]) < 4.5 * math.sqrt(0.25 / n)
    assert meta["distractors"].between(0, NUISANCES["distractors"]).all() and meta["distractors"].max() > 0


def test_the_loaders_read_the_distractor_masks(noisy):
    splits = make_datasets(noisy, view="side", image_size=32, augment=0, masks=["evidence", "distractor"],
                           progress=False)
    loaded = [splits.train[i][2]["distractor"] for i in range(len(splits.train))]
    assert all(tuple(m.shape) == (32, 32) and str(m.dtype) == "torch.bool" for m in loaded)
    assert sum(bool(m.any()) for m in loaded) > len(loaded) / 4  # up to 3 per photo: most photos have one


def test_the_options_are_checked():
    with pytest.raises(ValueError, match="degraded_share must lie in"):
        SyntheticConfig(degraded_share=1.5)
    with pytest.raises(ValueError, match="distractors must be a whole number"):
        SyntheticConfig(distractors=-1)
    assert sample_degradation(np.random.default_rng(0), 0.0) is None
    kinds = {sample_degradation(np.random.default_rng(i), 1.0)[0] for i in range(60)}
    assert kinds == set(DEGRADATIONS)


def test_a_dataset_of_the_earlier_distractors_is_drawn_again(tmp_path):
    config = SyntheticConfig(size=16, fish_per_class=3, distractors=2)
    assert config.to_dict()["distractor_version"] == DISTRACTOR_VERSION
    assert SyntheticConfig.from_dict(config.to_dict()) == config
    assert "distractor_version" not in SyntheticConfig(size=16).to_dict()  # clean datasets stay as they were
    root = generate_dataset(tmp_path / "d", config, workers=1, progress=False)
    info = json.loads((root / "dataset.json").read_text())
    del info["config"]["distractor_version"]  # as version 1 wrote it, with smaller distractors placed otherwise
    (root / "dataset.json").write_text(json.dumps(info))
    before = (root / "dataset.json").read_text()
    generate_dataset(root, config, overwrite=True, workers=1, progress=False)
    assert (root / "dataset.json").read_text() != before
    assert json.loads((root / "dataset.json").read_text())["config"]["distractor_version"] == DISTRACTOR_VERSION
