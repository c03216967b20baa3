"""ROAD's noisy linear imputation and its order of removal, against pytorch-grad-cam's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fishcam_utils.explain.judging.road import NEIGHBOURS, linear_impute, removed_pixels, road


@pytest.mark.numeric
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context")  # inside pytorch-grad-cam, with numpy 2
def test_linear_imputation_equals_pytorch_grad_cams_without_noise():
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    generator = torch.Generator().manual_seed(0)
    image = torch.rand(3, 14, 11, generator=generator)
    removed = torch.rand(14, 11, generator=generator) > 0.6
    removed[0, :4] = True  # a hole at the border, where some neighbours are outside
    ours = linear_impute(image, removed)
    theirs = NoisyLinearImputer(noise=0.0)(image, (~removed).float())  # theirs: 1 marks a pixel kept
    # The same sparse system solved in float64 each side, then rounded to float32.
    torch.testing.assert_close(ours, theirs, rtol=0, atol=2 * torch.finfo(torch.float32).eps)
    assert torch.equal(ours[:, ~removed], image[:, ~removed])  # kept pixels untouched


def test_each_filled_pixel_is_the_weighted_mean_of_its_neighbours():
    image = torch.rand(2, 9, 9, generator=torch.Generator().manual_seed(1)).double()
    removed = torch.zeros(9, 9, dtype=torch.bool)
    removed[3:6, 2:7] = True
    filled = linear_impute(image, removed)
    for y, x in removed.nonzero().tolist():
        mean = sum(w * filled[:, y + dy, x + dx] for (dy, dx), w in NEIGHBOURS.items()) / sum(NEIGHBOURS.values())
        torch.testing.assert_close(filled[:, y, x], mean, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="nothing to impute from"):
        linear_impute(image, torch.ones(9, 9, dtype=torch.bool))


def test_removal_follows_pytorch_grad_cams_percentile_threshold():
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    for fraction in (0.2, 0.5, 0.8):
        most = removed_pixels(maps, fraction, "most")
        least = removed_pixels(maps, fraction, "least")
        for m, r_most, r_least in zip(maps.numpy(), most, least):
            assert np.array_equal(r_most.numpy(), m >= np.percentile(m, 100 * (1 - fraction)))
            assert np.array_equal(r_least.numpy(), (1 - m) >= np.percentile(1 - m, 100 * (1 - fraction)))
        assert int(most.sum()) == pytest.approx(fraction * maps.numel(), abs=3)
    with pytest.raises(ValueError, match="order must be one of"):
        removed_pixels(maps, 0.5, "random")


def test_road_removes_the_evidence_a_model_reads_most_relevant_first():
    """A model that reads only the top-left square: removing a map's top pixels there lowers its probability."""

    class Corner(torch.nn.Module):
        def forward(self, x):
            corner = x[:, :, :4, :4].mean((1, 2, 3))
            return torch.stack([4 * corner, torch.zeros_like(corner)], 1)

    images = torch.zeros(2, 3, 8, 8)
    images[:, :, :4, :4] = 1.0
    maps = torch.zeros(2, 8, 8)
    maps[:, :4, :4] = 1.0
    maps += torch.rand(2, 8, 8, generator=torch.Generator().manual_seed(3)) * 0.01
    targets = torch.tensor([0, 0])
    most = road(Corner(), images, maps, targets, fractions=[0.25], order="most", noise=0.0)
    least = road(Corner(), images, maps, targets, fractions=[0.25], order="least", noise=0.0)
    assert most["change"].iloc[0] < -0.3 and abs(least["change"].iloc[0]) < 1e-6
