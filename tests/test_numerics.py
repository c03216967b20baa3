"""The tolerance rule (fishcam_utils.numerics, tests/numerics.py) and the checkers' one count of terms."""

from __future__ import annotations

import pytest
import torch
from numerics import MAP_TERMS, assert_float32_close, assert_within
from torch import nn

from fishcam_utils.numerics import EPS32, EPS64, SAFETY, allclose_by_rounding, float32_atol, float64_atol, network_terms

pytestmark = pytest.mark.numeric


def test_the_rule_is_safety_times_terms_times_eps_times_scale():
    assert float32_atol(3.0, terms=10) == SAFETY * 10 * EPS32 * 3.0
    assert float64_atol(-3.0, terms=10) == SAFETY * 10 * EPS64 * 3.0
    per_map = float32_atol(torch.tensor([1.0, 2.0]), terms=4)
    assert per_map.dtype == torch.float64 and per_map.tolist() == [SAFETY * 4 * EPS32, SAFETY * 8 * EPS32]
    with pytest.raises(ValueError, match="at least 1"):
        float32_atol(1.0, terms=0)


def test_a_sum_in_another_order_stays_within_the_rule_and_a_mistake_does_not():
    torch.manual_seed(0)
    terms = torch.randn(64, 1000)
    forward, backward = terms.sum(1), terms.flip(1).cumsum(1)[:, -1]
    assert_float32_close(forward, backward, terms=1000, scale=terms.abs().sum(1))
    with pytest.raises(AssertionError, match="times the rounding tolerance"):
        assert_within(forward, backward + 1.0, float32_atol(terms.abs().sum(1), 1000))  # a term of size 1 more


def test_network_terms_count_a_forward_and_a_backward():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8), nn.Flatten(), nn.Linear(32, 5))
    # conv: max(3, 8) x 9; depthwise: 1 x 9; linear: max(32, 5); twice.
    assert network_terms(net) == 2 * (8 * 9 + 9 + 32)
    assert network_terms([net[0], net[4]]) == 2 * (8 * 9 + 32)


def test_allclose_by_rounding_defaults_to_the_references_size_and_dtype():
    reference = torch.tensor([1.0, -4.0, float("nan")])
    within = reference + torch.tensor([SAFETY * 3 * EPS32 * 4, 0.0, 0.0]) * 0.99
    assert allclose_by_rounding(within, reference, terms=3)
    assert not allclose_by_rounding(within, reference, terms=2)
    # Both float64: eps64, unless told the numbers went through float32.
    assert not allclose_by_rounding(within.double(), reference.double(), terms=3)
    assert allclose_by_rounding(within.double(), reference.double(), terms=3, dtype=torch.float32)


def test_the_checkers_count_of_terms_covers_their_grad_cam_case():
    """The checkers compare with one count of terms (checks.core.CASE_TERMS): it must cover the Grad-CAM
    case's maps, whose rounding comes from the network, the map's sums, and min-max scaling over the span."""
    from fishcam_utils.checks import cams
    from fishcam_utils.checks.core import CASE_TERMS

    net, x = cams._tiny_net(), cams._images()
    a, g = cams._capture(net, x)
    alpha = g.mean((2, 3), keepdim=True)
    raw = torch.relu((alpha * a).sum(1)).flatten(1)
    span = raw.amax(1) - raw.amin(1)
    sizes = (alpha.abs() * a.abs()).sum(1).flatten(1).amax(1)
    terms = network_terms(net) + a[0, 0].numel() + a.shape[1]
    needed = 2 * terms * float((sizes / span).max()) + 2 * MAP_TERMS * float((raw.amax(1) / span).max())
    assert needed <= CASE_TERMS, f"the Grad-CAM case needs {needed:.0f} terms; CASE_TERMS is {CASE_TERMS}"
