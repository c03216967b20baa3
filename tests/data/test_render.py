"""Drawing one photo: masks that match the pixels the trait paints."""

import dataclasses

import numpy as np
import pytest

from fishcam_utils.data.fish_drawing import (
    MARKER_COLOURS,
    render_photo,
    sample_body_colour,
    sample_marker,
    sample_photo_params,
)
from fishcam_utils.data.species import SPECIES, TRAITS, VIEWS


def _params(seed, **changes):
    rng = np.random.default_rng(seed)
    params = sample_photo_params(rng, sample_body_colour(rng))
    return dataclasses.replace(params, **changes)


@pytest.mark.parametrize("view", VIEWS)
def test_every_trait_is_visible_and_inside_the_body(view):
    for trait in TRAITS[view]:
        for seed in range(4):
            photo = render_photo(view, trait, _params(seed), 64, 64)
            assert photo.image.shape == (64, 64, 3) and photo.image.dtype == np.uint8
            assert photo.evidence.sum() >= 6, (view, trait, seed)
            assert not (photo.evidence & ~photo.body).any()
            assert not photo.marker.any()


@pytest.mark.parametrize("view", VIEWS)
def test_the_evidence_mask_covers_every_pixel_the_trait_changes(view):
    # Without blur and noise, two photos that differ only in the trait may differ only
    # where one of the two evidence masks is on (up to the anti-aliased rim of the mask).
    params = _params(7, blur=0.0, noise=0.0)
    traits = TRAITS[view]
    for a, b in zip(traits, traits[1:]):
        pa, pb = render_photo(view, a, params), render_photo(view, b, params)
        changed = np.abs(pa.image.astype(int) - pb.image.astype(int)).max(axis=2) > 0
        covered = pa.evidence | pb.evidence
        grown = covered.copy()  # one pixel of slack for partially covered edge pixels
        grown[1:] |= covered[:-1]
        grown[:-1] |= covered[1:]
        grown[:, 1:] |= grown[:, :-1].copy()
        grown[:, :-1] |= grown[:, 1:].copy()
        assert changed.any()
        assert not (changed & ~grown).any(), (view, a, b)


def test_the_marker_has_its_class_colour_and_its_own_mask():
    rng = np.random.default_rng(3)
    params = _params(3, blur=0.0, noise=0.0, gain=1.0, light_slope=0.0, cast=(1.0, 1.0, 1.0))
    params = dataclasses.replace(params, marker=sample_marker(rng, class_index=2))
    photo = render_photo("side", "bars", params, 64, 64)
    assert photo.marker.sum() >= 16
    inner = photo.marker.copy()  # edge pixels are part background: compare the interior
    inner[1:-1, 1:-1] = photo.marker[1:-1, 1:-1] & photo.marker[:-2, 1:-1] & photo.marker[2:, 1:-1] \
        & photo.marker[1:-1, :-2] & photo.marker[1:-1, 2:]
    assert inner.sum() >= 4
    mean = photo.image[inner].mean(axis=0) / 255
    np.testing.assert_allclose(mean, MARKER_COLOURS[2], atol=0.02)
    assert not (photo.marker & photo.body).any() and not (photo.marker & photo.evidence).any()


def test_non_square_sizes_keep_width_and_height_apart():
    photo = render_photo("side", SPECIES[0].traits["side"], _params(1, blur=0.5), 90, 40)
    assert photo.image.shape == (40, 90, 3)
    assert photo.body.shape == photo.evidence.shape == (40, 90)
    assert photo.body.any()


def test_unknown_view_or_trait_is_a_clear_error():
    with pytest.raises(ValueError, match="view must be one of"):
        render_photo("top", "bars", _params(0))
    with pytest.raises(ValueError, match="unknown side trait 'saddle'"):
        render_photo("side", "saddle", _params(0))
