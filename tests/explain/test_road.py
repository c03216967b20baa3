"""ROAD's noisy linear imputation and its order of removal, against pytorch-grad-cam's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numerics import assert_within, float32_atol

from fishcam_utils.explain.judging.road import NEIGHBOURS, ORDERS, linear_impute, removed_pixels, road


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


def test_removal_follows_pytorch_grad_cams_percentile_threshold():
    maps = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(2))
    for fraction in (0.2, 0.5, 0.8):
        most = removed_pixels(maps, fraction, "most", ties="threshold")
        least = removed_pixels(maps, fraction, "least", ties="threshold")
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


class Float64(torch.nn.Module):
    def forward(self, x):
        return x.double()


@pytest.mark.numeric
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context")
@pytest.mark.parametrize("order", ORDERS)
def test_road_equals_pytorch_grad_cams_without_noise(order):
    from pytorch_grad_cam.metrics.road import ROADLeastRelevantFirst, ROADMostRelevantFirst
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    generator = torch.Generator().manual_seed(4)
    x = torch.randn(3, 3, 16, 16, generator=generator)
    maps = torch.rand(3, 16, 16, generator=generator)
    targets = torch.tensor([2, 5, 7])
    # A float64 linear model, so that how far the two imputations' float32 roundings move the scores has a bound.
    torch.manual_seed(0)
    linear = torch.nn.Linear(3 * 16 * 16, 9).double()
    model = torch.nn.Sequential(torch.nn.Flatten(), Float64(), linear).eval()
    ours = road(model, x, maps, targets, fractions=[0.2, 0.5], order=order, noise=0.0, ties="threshold")
    metric = {"most": ROADMostRelevantFirst, "least": ROADLeastRelevantFirst}[order]
    for fraction, change in zip(ours["fraction"], ours["change"]):
        # pytorch-grad-cam's percentile p keeps the pixels below it: our fraction 1 - p / 100 removed.
        theirs = metric(percentile=100 * (1 - fraction))
        theirs.perturbation.imputer.noise = 0.0
        expected = theirs(x, maps.numpy(), [ClassifierOutputSoftmaxTarget(int(t)) for t in targets], model)
        # Both solve the same float64 system and round it to float32 (an imputed value, a weighted mean of
        # pixels, is within max |x|: an eps of it, for the solvers' last bits), which moves a logit by at most
        # sum_j |W_kj| eps max |x|, and a probability by at most as much; ours takes the softmax of float32
        # logits ((2 |logit| + K + 2) eps), theirs rounds its float64 probabilities to float32.
        weights = linear.weight.detach()
        logits = linear(x.flatten(1).double()).detach()
        atol = (float32_atol(float(weights.abs().sum(1).max() * x.abs().max()), 1)
                + float32_atol(2 * float(logits.abs().max()) + weights.shape[0] + 3, 1))
        assert_within(change, float(expected.mean()), atol, f"ROAD {order} at {fraction}")


def test_ranked_removal_takes_the_share_asked_for_and_the_threshold_takes_every_tie():
    # A map zero on 70 % of the pixels, asked for its most relevant 40 %: ranked, 40 pixels, the 30 warm ones and
    # then the first 10 zeros in position order; pytorch-grad-cam's threshold rule removes every tied zero, all 100.
    maps = torch.zeros(1, 10, 10)
    maps[0, :3] = torch.linspace(0.1, 1, 30).reshape(3, 10)
    ranked = removed_pixels(maps, 0.4, "most")
    assert int(ranked.sum()) == 40 and ranked[0, :4].all() and not ranked[0, 4:].any()
    assert int(removed_pixels(maps, 0.4, "most", ties="threshold").sum()) == 100
    assert int(removed_pixels(maps, 0.2, "most").sum()) == 20
    assert int(removed_pixels(maps, 0.2, "most", ties="threshold").sum()) == 20
    least = removed_pixels(maps, 0.5, "least")  # the 50 coldest: the zeros, by position
    assert int(least.sum()) == 50 and least[0, 3:8].all() and not least[0, :3].any()
    with pytest.raises(ValueError, match="ties must be one of"):
        removed_pixels(maps, 0.5, ties="random")


def test_without_ties_both_rules_remove_the_k_most_or_least_relevant_pixels():
    maps = torch.rand(3, 9, 11, generator=torch.Generator().manual_seed(8), dtype=torch.float64)  # no ties
    for fraction in (0.1, 0.37, 0.8):
        k = round(fraction * 99)
        for order in ORDERS:
            ranked = removed_pixels(maps, fraction, order)
            values = maps.flatten(1)
            chosen = values.topk(k, dim=1, largest=order == "most").indices
            expected = torch.zeros_like(values, dtype=torch.bool).scatter_(1, chosen, True).reshape(maps.shape)
            assert torch.equal(ranked, expected), (fraction, order)
            threshold = removed_pixels(maps, fraction, order, ties="threshold")
            # Without ties the percentile rule removes the floor(1 + f(n - 1)) most (or least) relevant pixels,
            # which is k or k + 1 for these n and f (and can be k - 1 for others: n = 10, f = 0.75 gives 7, k = 8).
            removed = int(1 + fraction * 98)
            assert removed in (k, k + 1) and bool(threshold.sum((1, 2)).eq(removed).all()), (fraction, order)
            assert bool((ranked <= threshold).all())


def test_a_map_that_ties_every_pixel_under_the_threshold_rule_is_filled_with_each_channels_mean():
    maps = torch.full((1, 10, 10), 0.5)
    assert bool(removed_pixels(maps, 0.3, "most", ties="threshold").all())
    image = torch.rand(3, 10, 10, generator=torch.Generator().manual_seed(6))
    filled = linear_impute(image, torch.ones(10, 10, dtype=torch.bool))
    assert torch.equal(filled, image.mean((1, 2), keepdim=True).expand_as(image))
