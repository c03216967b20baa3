"""Overlays keep RGB order and touch only the masked pixels."""

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from fishcam_utils import viz
from fishcam_utils.data.layouts import scan_dataset


def test_overlay_tints_only_the_mask_in_rgb_order():
    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 2] = 255  # pure blue
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = viz.overlay_mask(image, mask, "red", alpha=0.5)
    np.testing.assert_allclose(out[1, 2], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(out[~mask], np.tile([0.0, 0.0, 1.0], ((~mask).sum(), 1)))
    with pytest.raises(ValueError, match="does not match"):
        viz.overlay_mask(image, np.zeros((3, 4), bool))


def test_outline_draws_the_boundary_and_spares_the_inside():
    mask = np.zeros((7, 7), bool)
    mask[1:6, 1:6] = True
    boundary = viz.mask_boundary(mask)
    assert boundary.sum() == 16 and not boundary[2:5, 2:5].any() and boundary[1, 1:6].all()
    image = np.full((7, 7, 3), 0.2)
    out = viz.outline_mask(image, mask, "yellow")
    np.testing.assert_allclose(out[3, 3], [0.2, 0.2, 0.2])
    np.testing.assert_allclose(out[1, 3], [1.0, 1.0, 0.0])


def test_grids_have_one_row_per_class_and_one_column_per_view(tiny_synth):
    index = scan_dataset(tiny_synth)
    fig = viz.show_species_grid(index, split="train", mask="evidence")
    images = [ax for ax in fig.axes if ax.get_images()]
    assert len(images) == len(index.classes) * len(index.views)
    assert images[0].get_title().startswith(index.classes[0])
