"""The "blur" baseline of deletion/insertion: properties a Gaussian blur must have, checked on
images whose blur is known without running one."""

from __future__ import annotations

import pytest
import torch
from numerics import assert_float32_close

from fishcam_utils.explain.judging.metrics import make_baseline

pytestmark = pytest.mark.numeric


def _moments(image: torch.Tensor) -> tuple[float, float, float, float]:
    """Mass, then the mean row and the std along rows and columns of a (H, W) non-negative image."""
    h, w = image.shape
    rows, cols = torch.arange(h, dtype=image.dtype), torch.arange(w, dtype=image.dtype)
    mass = image.sum()
    py, px = image.sum(1) / mass, image.sum(0) / mass  # marginal distributions
    my, mx = (py * rows).sum(), (px * cols).sum()
    sy, sx = ((py * (rows - my) ** 2).sum()).sqrt(), ((px * (cols - mx) ** 2).sum()).sqrt()
    return mass.item(), my.item(), sy.item(), sx.item()


@pytest.mark.parametrize("shape", [(2, 3, 16, 16), (1, 3, 9, 20), (1, 1, 1, 7), (1, 2, 3, 3)])
def test_blurring_a_constant_image_returns_it(shape):
    flat = torch.full(shape, -0.4)
    # Up to float32 rounding: a row pass and a column pass of at most 2 W - 1 and 2 H - 1 taps, whose
    # normalised weights sum to 1 up to as many roundings.
    terms = 2 * ((2 * shape[-1] - 1) + (2 * shape[-2] - 1))
    for sigma in (None, 0.5, 2.0, 50.0):  # 50: wider than the image, the kernel is cut to fit
        assert_float32_close(make_baseline(flat, "blur", sigma), flat, terms=terms, what=f"sigma {sigma}")


@pytest.mark.parametrize("sigma", [1.0, 2.5, 4.0])
def test_a_point_spreads_with_std_sigma_and_keeps_its_mass(sigma):
    size = 61
    delta = torch.zeros(1, 1, size, size, dtype=torch.float64)
    delta[..., size // 2, size // 2] = 1.0
    blurred = make_baseline(delta, "blur", sigma)[0, 0]
    mass, centre, sy, sx = _moments(blurred)
    assert mass == pytest.approx(1.0)  # far from the borders nothing is reflected away
    assert centre == pytest.approx(size // 2)
    # A Gaussian cut at 3 sigma has a std about 1.3 % below sigma.
    assert sy == pytest.approx(sigma, rel=0.03) and sx == pytest.approx(sigma, rel=0.03)
    assert torch.allclose(blurred, blurred.T)  # the same blur along rows and columns


def test_blur_keeps_each_images_mean_roughly_and_smooths_it():
    torch.manual_seed(0)
    images = torch.randn(3, 3, 32, 32) + torch.tensor([1.0, -2.0, 0.5])[:, None, None]
    blurred = make_baseline(images, "blur")
    # Reflected borders weigh edge pixels a little more, so the mean moves a little.
    assert torch.allclose(blurred.mean((2, 3)), images.mean((2, 3)), atol=0.05)
    assert blurred.std((2, 3)).max() < images.std((2, 3)).min() / 3


def test_blur_keeps_dtype_and_default_sigma_is_an_eighth_of_the_width():
    torch.manual_seed(1)
    images = torch.rand(2, 3, 24, 40, dtype=torch.float64)
    blurred = make_baseline(images, "blur")
    assert blurred.dtype == torch.float64 and blurred.shape == images.shape
    torch.testing.assert_close(blurred, make_baseline(images, "blur", sigma=40 / 8), rtol=0, atol=0)  # the same sigma
