"""Tolerances of the tests' numeric comparisons, by one rule (``fishcam_utils.numerics`` states it):

    two results reached along different paths differ by at most SAFETY * terms * eps * scale,

``terms`` being the length of the reductions behind them (``network_terms(model)`` when each side runs
a network its own way), ``scale`` the size of the terms summed before any cancellation (by default the
reference's largest |value|), eps that of the less precise dtype. So a tolerance says where it comes
from, and holds on any CPU, thread count or kernel set.

Two kinds of comparison stay outside this rule: results of one path computed twice (bit-equal:
``torch.equal``, or ``assert_close`` with ``rtol=0, atol=0``), and float64 NumPy comparisons of
short formulas (NumPy's defaults, 1e-7 relative, are far above their rounding).

``FISHCAM_TEST_MARGINS=1`` (with ``-s``) prints each comparison's margin: its tolerance over the largest
difference seen.

Whole-network comparisons (a CAM method against a per-channel loop or another library, a batch
against one image at a time) run both sides in float64 where the package allows it (``float64``):
then the test checks the maths, and the float32 rounding of deep networks, which no useful bound
covers, stays out of it.
"""

from __future__ import annotations

import copy
import os

import torch
from torch import nn

from fishcam_utils.numerics import (  # noqa: F401 - re-exported for the tests
    EPS32,
    EPS64,
    MAP_TERMS,
    SAFETY,
    channel_sum_scale,
    float32_atol,
    float64_atol,
    map_atol,
    network_terms,
    rounding_atol,
)


def assert_rounding_close(actual, reference, *, terms: int, scale=None, dtype: torch.dtype | None = None,
                          what: str = "") -> float:
    """Assert that ``actual`` and ``reference`` (same shape) differ by at most ``rounding_atol(scale,
    terms, dtype)`` everywhere. ``scale`` (a number, or a tensor broadcasting against the results, one
    per map say) defaults to the reference's largest |value|; ``dtype`` to the less precise of the two.
    Returns the margin: the tolerance over the largest difference (inf when they are equal)."""
    actual, reference = torch.as_tensor(actual).detach(), torch.as_tensor(reference).detach()
    if dtype is None:
        dtype = torch.float64 if actual.dtype == reference.dtype == torch.float64 else torch.float32
    if scale is None:
        scale = reference.abs().amax() if reference.numel() else torch.zeros(())
    return assert_within(actual, reference, rounding_atol(scale, terms, dtype),
                         what=f"{what} ({terms} terms of {dtype})".strip())


def assert_within(actual, reference, atol, what: str = "") -> float:
    """Assert ``|actual - reference| <= atol`` everywhere (``atol`` a number or a tensor that broadcasts;
    compared in float64, so the comparison adds no rounding of its own), same shapes, NaN nowhere.
    Returns the margin: ``atol`` over the largest difference, the smallest ratio (inf when equal)."""
    actual, reference = torch.as_tensor(actual).detach(), torch.as_tensor(reference).detach()
    assert actual.shape == reference.shape, f"{what}: shapes differ, {tuple(actual.shape)} and {tuple(reference.shape)}"
    tolerance = torch.as_tensor(atol, dtype=torch.float64)
    difference = (actual.double() - reference.double()).abs()
    assert not difference.isnan().any(), f"{what}: NaN where the other has a number"
    excess = difference / tolerance.clamp_min(torch.finfo(torch.float64).tiny)
    worst = float(excess.max()) if excess.numel() else 0.0
    assert worst <= 1.0, (f"{what}: differs by up to {float(difference.max()):.3g}, {worst:.3g} times the rounding "
                          f"tolerance (up to {float(tolerance.max()):.3g})")
    margin = float("inf") if worst == 0 else 1.0 / worst
    if os.environ.get("FISHCAM_TEST_MARGINS"):  # to see how much room each tolerance leaves on this machine
        print(f"\n[margin] {what}: largest difference {float(difference.max()):.3g}, tolerance {margin:.3g} times it")
    return margin


def assert_float32_close(actual, reference, *, terms: int, scale=None, what: str = "") -> float:
    """``assert_rounding_close`` for results of which at least one was computed in float32."""
    return assert_rounding_close(actual, reference, terms=terms, scale=scale, dtype=torch.float32, what=what)


def assert_float64_close(actual, reference, *, terms: int, scale=None, what: str = "") -> float:
    """``assert_rounding_close`` for results both computed in float64."""
    return assert_rounding_close(actual, reference, terms=terms, scale=scale, dtype=torch.float64, what=what)


def float64(model: nn.Module) -> nn.Module:
    """A float64 copy of ``model`` (the caller's stays as it is)."""
    return copy.deepcopy(model).double()


# pytorch-grad-cam scales each map by img / (1e-7 + max) (scale_cam_image), after the layer and again
# after combining layers; the two together move a map by about 1e-7 of its peak, allowed twice here.
PGC_EPSILON = 1e-7
# Then its float32 round trip: the np.float32 cast, cv2.resize's bilinear sum (whichever way cv2 forms
# it: two passes of 2 products and a sum, or 4 products and 3 sums), the second scaling's shift and
# division: at most 10 roundings of eps / 2 of values in [0, 1], 5 eps, counted as 6 terms.
PGC_TERMS = 6


def pytorch_grad_cam_atol(bias=0.0):
    """How far pytorch-grad-cam's maps (in [0, 1]) may be from ours when both come from the same float64
    raw maps: its float32 resizing and rescaling, its 1e-7s, and ``bias`` (a number or (N, 1, 1), in map
    units): what the method's own epsilon, or float32 weights, move the map by."""
    return float32_atol(1.0, PGC_TERMS) + 2 * PGC_EPSILON + torch.as_tensor(bias, dtype=torch.float64)
