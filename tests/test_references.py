"""Reference maps that ignore the model: uniform noise and the image's Sobel edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from fishcam_utils.explain.experiments import explanation_maps
from fishcam_utils.explain.metrics import energy_in_mask, pointing_game
from fishcam_utils.explain.references import REFERENCE_MAPS, edge_maps, random_maps, reference_maps
from numerics import float32_atol


@pytest.mark.numeric
def test_edge_maps_are_scipys_sobel_magnitude_of_the_channel_mean():
    images = torch.randn(3, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    for image, edges in zip(images.numpy(), edge_maps(images).numpy()):
        grey = image.mean(0).astype(np.float64)
        magnitude = np.hypot(ndimage.sobel(grey, axis=1, mode="nearest"), ndimage.sobel(grey, axis=0, mode="nearest"))
        expected = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
        # float32: a mean of 3 channels, 9 taps, hypot, min-max (which counts an error twice, over the span);
        # the taps' terms are at most 4 |grey| each way, so sqrt(2) 8 max|grey| in all.
        sizes = math.sqrt(2) * 8 * np.abs(grey).max() / (magnitude.max() - magnitude.min())
        np.testing.assert_allclose(edges, expected, rtol=0, atol=2 * float32_atol(sizes, terms=3 + 9 + 3 + 2))


def test_edges_find_a_painted_square_and_a_flat_image_has_none():
    images = torch.zeros(2, 3, 16, 16)
    images[0, :, 4:10, 5:11] = 1.0
    edges = edge_maps(images)
    square = torch.zeros(16, 16, dtype=torch.bool)
    square[3:11, 4:12] = True  # the square's border, one pixel either side
    assert pointing_game(edges[:1], square[None]).item()
    assert energy_in_mask(edges[:1], square[None]).item() == pytest.approx(1.0)
    assert torch.equal(edges[1], torch.zeros(16, 16))  # no edge: zeros, not NaN


def test_random_maps_are_seeded_uniform_and_leave_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = random_maps((4, 8, 8), seed=3), random_maps((4, 8, 8), seed=3)
    assert torch.equal(a, b) and not torch.equal(a, random_maps((4, 8, 8), seed=4))
    assert 0 <= a.min() and a.max() < 1 and a.unique().numel() == a.numel()
    assert torch.equal(torch.random.get_rng_state(), state)


def test_reference_maps_need_no_model_and_refuse_unknown_kinds():
    images = torch.rand(2, 3, 8, 8)
    for kind in REFERENCE_MAPS:
        maps = explanation_maps(None, images, torch.tensor([0, 1]), kind)
        assert maps.shape == (2, 8, 8) and torch.equal(maps, reference_maps(kind, images))
    with pytest.raises(ValueError, match="unknown reference map 'noise'; choose one of random, edges"):
        reference_maps("noise", images)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        edge_maps(torch.rand(8, 8))
