"""Sparseness, complexity and the random-logit test against Quantus 0.6.0, the library that defines them.

Quantus pins the full OpenCV (``opencv-python``), which would clash with the course's headless one in one
environment, so ``make test`` installs it alone, without its dependencies (the rest are the course's), into
``.venv/quantus`` and names that folder in ``FISHCAM_QUANTUS``. Run without it, these tests skip and say why.
"""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch
from numerics import assert_within, float32_atol, float64_atol

from fishcam_utils.explain import make_cam
from fishcam_utils.explain.judging import complexity, off_classes, random_logit, sparseness, ssim


@pytest.fixture(scope="module")
def quantus():
    folder = os.environ.get("FISHCAM_QUANTUS")
    if not folder:
        pytest.skip("FISHCAM_QUANTUS not set: make test installs Quantus into .venv/quantus and sets it")
    if not os.path.isdir(folder):
        pytest.fail(f"FISHCAM_QUANTUS={folder} is not a folder; make test installs Quantus there")
    sys.path.insert(0, folder)
    try:
        import quantus
    finally:
        sys.path.remove(folder)
    assert quantus.__version__ == "0.6.0", f"written for Quantus 0.6.0, not {quantus.__version__}"
    return quantus


def maps_to_judge() -> torch.Tensor:
    """Three 16 x 16 maps: uniform noise, a sparse one (mostly zero), one bright square."""
    generator = torch.Generator().manual_seed(5)
    sparse = torch.relu(torch.randn(16, 16, generator=generator) - 1)
    square = torch.full((16, 16), 0.01)
    square[4:8, 4:8] = 1.0
    return torch.stack([torch.rand(16, 16, generator=generator), sparse, square])


def run_quantus(metric, maps, model=None, **call):
    x = np.zeros((len(maps), 3, *maps.shape[1:]), dtype=np.float32)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.LazyLinear(9)) if model is None else model
    return np.asarray(metric(model=model, x_batch=x if "x_batch" not in call else call.pop("x_batch"),
                             y_batch=np.zeros(len(maps), dtype=int) if "y_batch" not in call else call.pop("y_batch"),
                             a_batch=maps.numpy()[:, None], device="cpu", **call), dtype=np.float64)


@pytest.mark.numeric
def test_sparseness_and_complexity_equal_quantus(quantus):
    maps = maps_to_judge()
    pixels = maps[0].numel()
    # Quantus's Sparseness (Gini) and Complexity (entropy), on |map| and not rescaled first: as ours.
    theirs_gini = run_quantus(quantus.Sparseness(abs=True, normalise=False, disable_warnings=True), maps)
    theirs_entropy = run_quantus(quantus.Complexity(abs=True, normalise=False, disable_warnings=True), maps)
    # Quantus adds 1e-7 to every value before its Gini (a convention: ours takes the map as it is), so ours is
    # measured on the map so moved; its float32 maps become float64 when 1e-7 is added, so both sides sum H W
    # terms of at most 1 in float64; ours is returned in float32 (half an eps of a value up to 1).
    assert_within(sparseness(maps.double() + 1e-7), torch.from_numpy(theirs_gini),
                  float64_atol(1.0, pixels + 2) + float32_atol(1.0, 1), "Gini")
    assert_within(complexity(maps), torch.from_numpy(theirs_entropy),
                  float32_atol(math.log(pixels) + 1, pixels + 2), "entropy")
    # One convention differs: a map of zeros is NaN there (0 / 0); ours says what a flat map says.
    # (Quantus refuses a batch of zeros only: the zero map goes beside another.)
    zero = torch.stack([torch.zeros(16, 16), maps[2]])
    with np.errstate(invalid="ignore"):
        assert np.isnan(run_quantus(quantus.Complexity(abs=True, normalise=False, disable_warnings=True), zero)[0])
    assert complexity(zero)[0].item() == pytest.approx(math.log(pixels)) and sparseness(zero)[0].item() == 0.0


@pytest.mark.numeric
def test_random_logit_equals_quantus(quantus, resnet, batch):
    x, targets = batch
    cam = make_cam("gradcam", resnet, "layer4")

    def explain(images, classes):
        return cam(images, classes).maps

    def quantus_explain(model, inputs, targets, **kwargs):
        return explain(torch.as_tensor(inputs), torch.as_tensor(targets)).numpy()[:, None]

    maps = explain(x, targets)
    metric = quantus.RandomLogit(num_classes=9, seed=42, disable_warnings=True)  # its defaults: SSIM, normalised
    theirs = run_quantus(metric, maps, model=resnet, x_batch=x.numpy(), y_batch=targets.numpy(),
                         explain_func=quantus_explain)
    # The same other classes (their draw, without their global generator) and the same float32 maps: Quantus
    # divides a map by its largest |value|, 1 for our min-max maps, and measures SSIM of the flattened maps
    # by scikit-image, as ours with flat=True: the same computation.
    ours = random_logit(explain, x, targets, num_classes=9, seed=42, flat=True, maps=maps)
    assert torch.equal(ours, torch.from_numpy(theirs)), (ours, theirs)
    assert not torch.equal(random_logit(explain, x, targets, num_classes=9, seed=42, maps=maps), ours)  # 2-D windows


def test_off_classes_are_quantus_draw_and_never_the_target():
    targets = torch.tensor([0, 3, 8, 3, 5] * 20)
    drawn = off_classes(targets, 9, seed=7)
    state = np.random.get_state()
    np.random.seed(7)  # Quantus's way, written out: an index into the classes other than the target's
    index = np.random.randint(0, 8, len(targets))
    np.random.set_state(state)
    others = [[k for k in range(9) if k != t] for t in targets.tolist()]
    assert drawn.tolist() == [o[i] for o, i in zip(others, index)]
    assert (drawn != targets).all() and set(drawn.tolist()) == set(range(9))
    with pytest.raises(ValueError, match="targets must be classes 0..8"):
        off_classes(torch.tensor([9]), 9)


def test_ssim_is_scikit_images_with_the_pairs_data_range():
    from skimage.metrics import structural_similarity

    a = maps_to_judge()
    b = a.flip(-1)
    ours = ssim(a, b)
    for k in range(len(a)):
        both = torch.cat([a[k].flatten(), b[k].flatten()])
        expected = structural_similarity(a[k].numpy(), b[k].numpy(), data_range=float(both.max() - both.min()))
        assert float(ours[k]) == expected  # the same call on the same float32 arrays
    assert torch.equal(ssim(a, a), torch.ones(len(a), dtype=torch.float64))
    with pytest.raises(ValueError, match="ssim compares two batches of maps"):
        ssim(a, a[:, :8])
    with pytest.raises(ValueError, match="7 x 7 windows need maps of at least 7 x 7 pixels"):
        ssim(a[:, :5, :5], a[:, :5, :5])
    assert ssim(a[:, :5, :5], a[:, :5, :5], flat=True).tolist() == [1.0] * len(a)
