"""How far apart two floating-point results may be when they are computed along different paths.

A value reached by reductions of n terms in all (sums, means, dot products, convolutions, chained
through the layers behind it) carries a rounding error of at most gamma_n * S, where S is the sum of
the |terms| summed and gamma_n = n u / (1 - n u), u = eps / 2 (Higham, *Accuracy and Stability of
Numerical Algorithms*, 2nd ed., section 3.1). The same value computed along another path (another
summation order, an einsum against a loop, another library, another CPU's vector kernels, a batch of
another size) carries its own such error, so the two differ by at most about n * eps * S.

So a comparison of float32 results computed along different paths allows

    atol = SAFETY * terms * eps32 * scale

where ``terms`` is n and ``scale`` is S: the reference's largest |value| when the terms share a sign,
and the size of the terms *before* they cancel otherwise (Grad-CAM's sum_c alpha_c A_c is as uncertain
as sum_c |alpha_c A_c|, however small the map; Ablation-CAM's (y - y_c) / |y| as max(|y|, |y_c|) / |y|).
Results computed in float64 use eps64 instead. Results computed along the same path are bit-equal and
compared exactly; none of this applies to them.

The notebooks and the checkers of students' answers use these functions; the tests use them through
``tests/numerics.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

EPS32 = torch.finfo(torch.float32).eps  # 2**-23, about 1.19e-7
EPS64 = torch.finfo(torch.float64).eps  # 2**-52, about 2.22e-16

# n * eps * S bounds the reduction itself; the factor 2 covers the few roundings a site does not count
# (the product making each term, a final division, a cast), each at most eps / 2 of the result.
SAFETY = 2.0


def rounding_atol(scale: float | torch.Tensor, terms: int, dtype: torch.dtype = torch.float32) -> float | torch.Tensor:
    """The largest difference rounding explains between two results of ``dtype`` reached along
    different paths: ``SAFETY * terms * eps(dtype) * scale`` (see the module's docstring). A tensor
    ``scale`` (one per map, say) gives a tensor of tolerances that broadcasts against the results."""
    if terms < 1:
        raise ValueError(f"terms counts the terms summed, at least 1; got {terms}")
    bound = SAFETY * terms * torch.finfo(dtype).eps
    if isinstance(scale, torch.Tensor):
        return bound * scale.detach().abs().to(torch.float64)
    return bound * abs(float(scale))


def float32_atol(scale: float | torch.Tensor, terms: int) -> float | torch.Tensor:
    """``rounding_atol`` for float32 results: ``SAFETY * terms * eps32 * scale``."""
    return rounding_atol(scale, terms, torch.float32)


def float64_atol(scale: float | torch.Tensor, terms: int) -> float | torch.Tensor:
    """``rounding_atol`` for float64 results: ``SAFETY * terms * eps64 * scale``."""
    return rounding_atol(scale, terms, torch.float64)


def network_terms(model: nn.Module | Iterable[nn.Module]) -> int:
    """How many terms the reductions of a forward *and* a backward pass through ``model`` chain at most:
    twice the summed reduction lengths of its convolutions (input channels per group times the kernel;
    the output channels for the backward, whichever is more) and linear layers (their inputs or outputs).
    The ``terms`` of a comparison whose two sides each run the network, in their own way."""
    modules = model.modules() if isinstance(model, nn.Module) else (m for part in model for m in part.modules())
    total = 0
    for module in modules:
        if isinstance(module, nn.modules.conv._ConvNd):
            kernel = 1
            for k in module.kernel_size:
                kernel *= k
            total += max(module.in_channels, module.out_channels) // module.groups * kernel
        elif isinstance(module, nn.Linear):
            total += max(module.in_features, module.out_features)
    return 2 * max(total, 1)


def channel_sum_scale(weights: torch.Tensor, activations: torch.Tensor) -> torch.Tensor:
    """The size of the terms of sum_c w_c A_c before they cancel: max over pixels of sum_c |w_c| |A_c|,
    per map, shaped to broadcast against (N, h, w) maps. ``weights`` (N, C) or (N, C, 1, 1) or
    (N, C, h, w), ``activations`` (N, C, h, w)."""
    if weights.ndim == 2:
        weights = weights[:, :, None, None]
    return (weights.detach().abs() * activations.detach().abs()).sum(1).flatten(1).amax(1)[:, None, None]


# Bilinear upsampling (4 products and 3 sums) and min-max scaling (a shift and a division) round 9 times,
# each by at most eps / 2 of a value no larger than the map's peak: 4.5 eps of the peak, counted as 5 terms.
MAP_TERMS = 5


def map_atol(raw_atol, raw: torch.Tensor, dtype: torch.dtype = torch.float32, dims: int = 2) -> torch.Tensor:
    """How far apart two of our display maps (ReLU, bilinear upsampling, min-max to [0, 1] over the last
    ``dims`` dimensions: 3 for the views of a fish, scaled together) may be when their raw maps differ by
    up to ``raw_atol`` (a number, or a tensor shaped like ``raw`` but 1 in the last ``dims``) and each
    side upsamples and scales in ``dtype`` its own way. ``raw``: the reference's raw maps. Min-max moves
    both the value and the span, so a raw error counts twice, over the span; each side's own rounding
    (``MAP_TERMS``, of values up to the peak) too. Shaped like ``raw`` but 1 in the last ``dims``."""
    lead = raw.shape[:-dims]
    positive = torch.relu(raw.detach()).reshape(*lead, -1).double()
    peak = positive.amax(-1)
    span = (peak - positive.amin(-1)).clamp_min(torch.finfo(torch.float64).tiny)
    own = 2 * torch.as_tensor(rounding_atol(peak, MAP_TERMS, dtype), dtype=torch.float64)
    error = torch.as_tensor(raw_atol, dtype=torch.float64)
    if error.ndim:
        error = error.reshape(*lead, -1).amax(-1)
    return ((2 * error + own) / span).reshape(*lead, *(1,) * dims)


def allclose_by_rounding(actual: torch.Tensor, reference: torch.Tensor, terms: int,
                         scale: float | torch.Tensor | None = None, dtype: torch.dtype | None = None) -> bool:
    """Whether ``actual`` and ``reference`` (same shape) differ by no more than ``rounding_atol(scale,
    terms, dtype)`` everywhere, NaN equal to NaN. ``scale`` defaults to the reference's largest |value|,
    ``dtype`` to the less precise of the two."""
    actual, reference = torch.as_tensor(actual).detach(), torch.as_tensor(reference).detach()
    if dtype is None:
        dtype = torch.float64 if actual.dtype == reference.dtype == torch.float64 else torch.float32
    if scale is None:
        scale = float(reference.abs().nan_to_num(0.0).amax()) if reference.numel() else 0.0
    tolerance = rounding_atol(scale, terms, dtype)
    a, b = actual.double(), reference.double()
    both_nan = a.isnan() & b.isnan()
    return bool(((a - b).abs() <= tolerance).logical_or(both_nan).all())
