"""Measures of explanations, each on cases whose answer is known by construction."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from numerics import assert_float32_close, float32_atol
from scipy.stats import spearmanr
from torch import nn

from fishcam_utils.explain.judging.metrics import (
    average_ranks,
    deletion_curve,
    dilate,
    energy_in_mask,
    insertion_curve,
    make_baseline,
    per_class,
    pointing_game,
    spearman,
)

pytestmark = pytest.mark.numeric

H = W = 16


def box(top, left, bottom, right, n=1) -> torch.Tensor:
    mask = torch.zeros(n, H, W, dtype=torch.bool)
    mask[:, top:bottom, left:right] = True
    return mask


def test_a_map_that_is_the_mask_scores_a_hit_and_all_its_energy():
    mask = box(4, 4, 8, 10)
    indicator = mask.float()
    assert pointing_game(indicator, mask).tolist() == [True]
    assert energy_in_mask(indicator, mask).item() == pytest.approx(1.0)


def test_a_map_that_points_elsewhere_scores_nothing():
    mask, elsewhere = box(0, 0, 4, 4), box(10, 10, 14, 14).float()
    assert pointing_game(elsewhere, mask).tolist() == [False]
    assert energy_in_mask(elsewhere, mask).item() == 0.0
    uniform = torch.ones(1, H, W)
    assert energy_in_mask(uniform, mask).item() == pytest.approx(16 / (H * W))  # the mask's share of the image
    assert pointing_game(uniform, mask).tolist() == [False]  # a constant map points nowhere
    assert energy_in_mask(torch.zeros(1, H, W), mask).item() == 0.0


def test_the_tolerance_is_a_euclidean_distance_in_pixels():
    mask = box(5, 5, 6, 6)  # one pixel at (5, 5)
    peak = torch.zeros(1, H, W)
    peak[0, 8, 9] = 1.0  # 3 rows and 4 columns away: distance 5
    assert pointing_game(peak, mask, tolerance=4.9).tolist() == [False]
    assert pointing_game(peak, mask, tolerance=5).tolist() == [True]
    # dilate() against a brute-force distance computation
    masks = torch.rand(3, H, W) > 0.93
    rows, cols = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    for radius in (0, 1, 2.5, 4):
        grown = dilate(masks, radius)
        for i in range(3):
            points = masks[i].nonzero().float()
            distance = torch.cdist(torch.stack([rows, cols], -1).view(-1, 2).float(), points).min(1).values
            assert torch.equal(grown[i].flatten(), distance <= radius), radius


def test_a_plateau_hits_only_if_all_of_it_is_inside_and_each_image_is_its_own():
    mask = box(0, 0, 8, 8, n=2)
    maps = torch.zeros(2, H, W)
    maps[0, 2:6, 2:6] = 1.0  # plateau inside the mask
    maps[1, 6:10, 6:10] = 1.0  # plateau straddling the border
    assert pointing_game(maps, mask).tolist() == [True, False]
    energy = energy_in_mask(maps, mask)
    assert energy.tolist() == pytest.approx([1.0, 4 / 16])


def test_shapes_must_agree():
    with pytest.raises(ValueError, match="same shape"):
        pointing_game(torch.zeros(2, H, W), box(0, 0, 2, 2))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        energy_in_mask(torch.zeros(H, W), box(0, 0, 2, 2)[0])
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(torch.zeros(1, H, W), box(0, 0, 2, 2), tolerance=-1)


def test_per_class_rates():
    table = per_class(torch.tensor([1.0, 0.0, 1.0, 1.0]), torch.tensor([0, 0, 1, 1]), ["a", "b", "c"], "hit rate")
    assert table.loc["a", "hit rate"] == 0.5 and table.loc["b", "hit rate"] == 1.0
    assert table.loc["overall", "hit rate"] == 0.75 and table.loc["overall", "images"] == 4
    assert table.loc["c", "images"] == 0 and math.isnan(table.loc["c", "hit rate"])


# ---------------------------------------------------------------------------------------------
# Deletion and insertion


class RegionModel(nn.Module):
    """Logits from the pixels of one region only: deleting anything else changes nothing."""

    def __init__(self, region: torch.Tensor) -> None:
        super().__init__()
        self.region = region
        torch.manual_seed(0)
        self.linear = nn.Linear(3 * H * W, 4)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return self.linear((x * self.region).flatten(1))


def test_a_model_that_ignores_the_deleted_pixels_gives_a_flat_deletion_curve():
    region = box(12, 12, 16, 16)[0]  # the model looks at the bottom-right 4x4 corner only
    model = RegionModel(region)
    torch.manual_seed(1)
    images = torch.randn(5, 3, H, W)
    maps = (~region).float().expand(5, H, W).clone() + torch.rand(5, H, W) * 0.1  # hot everywhere but the corner
    curve = deletion_curve(model, images, maps, targets=[0, 1, 2, 3, 0], steps=16, baseline="zero")
    outside = 1 - 16 / (H * W)  # the share of pixels outside the corner, all deleted first
    flat = curve.fractions <= outside + 1e-6
    # The deleted pixels are multiplied by 0 before the model sees them: the same inputs, the same numbers.
    assert torch.equal(curve.probs[:, flat], curve.probs[:, :1].expand(-1, int(flat.sum())))
    # after that the corner goes too: the curve ends at the probability of the baseline image
    with torch.no_grad():
        blank = model(torch.zeros(5, 3, H, W)).softmax(1).gather(1, torch.tensor([[0], [1], [2], [3], [0]]))[:, 0]
    assert torch.equal(curve.probs[:, -1], blank)  # the same zero images, in one batch of 5 either way
    # one forward pass of the whole batch per step
    assert model.calls == 17 + 1


def test_curves_equal_a_one_image_computation_and_have_the_right_ends_and_area():
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    images, maps, targets = torch.randn(4, 3, H, W), torch.rand(4, H, W), torch.tensor([0, 2, 1, 2])
    steps = 8
    deletion = deletion_curve(model, images, maps, targets, steps=steps, baseline="mean", batch_size=3)
    insertion = insertion_curve(model, images, maps, targets, steps=steps, baseline="mean")
    with torch.no_grad():
        original = model(images).softmax(1).gather(1, targets[:, None])[:, 0]
        base = make_baseline(images, "mean")
        assert torch.equal(base[:, :, 0, 0], images.mean((2, 3)))  # the same mean
        # step 3 of image 1 by hand: the 3/8 hottest pixels replaced
        k = round(3 / steps * H * W)
        hottest = maps[1].flatten().argsort(descending=True, stable=True)[:k]
        x = images[1].clone().view(3, -1)
        x[:, hottest] = base[1].reshape(3, -1)[:, hottest]
        by_hand = model(x.view(1, 3, H, W)).softmax(1)[0, 2]
    # Batches of 3 (deletion), 4 and 1 round the network differently: 27 taps, 256 pixels pooled, 4 inputs
    # and a softmax of 3, of terms no larger than the logits' through |weights| (a probability moves by at
    # most half its logits' error).
    terms = 27 + H * W + 4 + 3 + 2
    sizes = float(max(absolute_logits(model, x.view(1, 3, H, W)).max(), absolute_logits(model, images).max(),
                      absolute_logits(model, base).max()))
    assert_float32_close(deletion.probs[1, 3], by_hand, terms=terms, scale=sizes, what="step 3 of image 1")
    assert_float32_close(deletion.probs[:, 0], original, terms=terms, scale=sizes, what="the first step")
    assert torch.equal(insertion.probs[:, -1], original)  # the images themselves, in one batch of 4 either way
    assert_float32_close(deletion.probs[:, -1], insertion.probs[:, 0], terms=terms, scale=sizes,
                         what="the baseline image")  # both: the baseline image, in batches of 3 and of 4
    p = deletion.probs.numpy()
    expected = ((p[:, :-1] + p[:, 1:]) / 2).sum(1) / steps  # trapezoids of width 1/steps
    # Two ways of summing steps trapezoids, each at most 1 / steps.
    assert_float32_close(deletion.auc, torch.from_numpy(expected), terms=steps + 2, scale=1.0)


def absolute_logits(model: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """The logits of the conv, ReLU, pool, linear model on |x| through |weights| and |biases|: what
    each logit's terms add up to before they cancel."""
    conv, _, pool, flatten, linear = model
    with torch.no_grad():
        a = F.conv2d(x.abs(), conv.weight.abs(), conv.bias.abs(), padding=conv.padding)
        return F.linear(flatten(pool(a)), linear.weight.abs(), linear.bias.abs())


def test_baselines():
    flat = torch.full((2, 3, H, W), 0.7)
    # Blurring a flat image changes nothing, but rounding: two passes of 13 taps (sigma 2 cut at 3 sigma),
    # whose normalised weights sum to 1 up to their own 13 terms.
    assert_float32_close(make_baseline(flat, "blur"), flat, terms=4 * 13, scale=0.7)
    images = torch.randn(2, 3, H, W)
    blurred = make_baseline(images, "blur")
    assert blurred.shape == images.shape and blurred.std() < images.std() / 2
    assert torch.allclose(blurred.mean((2, 3)), images.mean((2, 3)), atol=0.15)
    assert torch.equal(make_baseline(images, "zero"), torch.zeros_like(images))
    with pytest.raises(ValueError, match="baseline must be one of"):
        make_baseline(images, "noise")
    with pytest.raises(ValueError, match="must agree"):
        deletion_curve(nn.Identity(), images, torch.rand(3, H, W), 0)


# ---------------------------------------------------------------------------------------------
# Rank correlation


def test_spearman_equals_scipy_with_ties():
    torch.manual_seed(3)
    a = torch.relu(torch.randn(6, 8, 8))  # many tied zeros, as ReLU'd maps have
    b = torch.relu(a + 0.5 * torch.randn(6, 8, 8))
    ours = spearman(a, b)
    for i in range(6):
        # Ranks are multiples of 1/2, and their centred products sum exactly in float32 (under 2^24 quarters):
        # only two square roots, a product and a division round.
        assert ours[i].item() == pytest.approx(spearmanr(a[i].flatten(), b[i].flatten()).statistic,
                                               abs=float32_atol(1.0, terms=4))
    ranks = average_ranks(torch.tensor([[3.0, 1.0, 3.0, 0.0]]))
    assert ranks.tolist() == [[2.5, 1.0, 2.5, 0.0]]
    assert spearman(a, a).tolist() == pytest.approx([1.0] * 6)
    assert spearman(a, -a)[0].item() == pytest.approx(-1.0)
    assert math.isnan(spearman(torch.ones(1, 4, 4), a[:1, :4, :4])[0].item())
