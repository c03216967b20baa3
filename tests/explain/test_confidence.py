"""Confidence change, Average Drop, Increase in Confidence, sparseness and complexity, each against an
independent computation, and the confidence change against pytorch-grad-cam's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from numerics import float32_atol
from scipy.stats import entropy

from fishcam_utils.explain.judging.confidence import (
    ConfidenceChange,
    average_drop,
    complexity,
    confidence_change,
    increase_in_confidence,
    sparseness,
)


def _tiny(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_average_drop_and_increase_by_hand():
    change = ConfidenceChange(before=torch.tensor([0.5, 0.8, 0.2, 0.0]), after=torch.tensor([0.25, 0.9, 0.1, 0.3]))
    # drops: 0.25/0.5 = 0.5, none, 0.1/0.2 = 0.5, none (score 0): mean 0.25
    assert average_drop(change) == pytest.approx(25.0, abs=float32_atol(100.0, terms=4))
    assert increase_in_confidence(change) == pytest.approx(50.0)  # the second and the fourth rose
    assert torch.allclose(change.change, torch.tensor([-0.25, 0.1, -0.1, 0.3]))
    logits = ConfidenceChange(before=torch.tensor([-2.0, 1.0]), after=torch.tensor([1.0, 0.5]), score="logit")
    with pytest.raises(ValueError, match="Average Drop is a relative drop of probabilities; this change holds logits"):
        average_drop(logits)
    assert increase_in_confidence(logits) == 50.0


@pytest.mark.numeric
def test_confidence_change_equals_pytorch_grad_cams():
    from pytorch_grad_cam.metrics.cam_mult_image import CamMultImageConfidenceChange
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    model, images = _tiny(), torch.randn(4, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    maps, targets = torch.rand(4, 12, 12, generator=torch.Generator().manual_seed(2)), torch.tensor([0, 2, 1, 2])
    for score, target in (("probability", ClassifierOutputSoftmaxTarget), ("logit", ClassifierOutputTarget)):
        ours = confidence_change(model, images, maps, targets, score=score).change.numpy()
        theirs = CamMultImageConfidenceChange()(images, maps.numpy(), [target(int(t)) for t in targets], model)
        theirs = np.asarray(theirs).reshape(-1)
        if score == "logit":  # the same two forward passes of the same batch: the same logits, bit for bit
            np.testing.assert_array_equal(ours, theirs)
        else:  # a softmax over K = 3 classes each side, one row at a time there: exp, a sum of 3, a division
            np.testing.assert_allclose(ours, theirs, rtol=0, atol=2 * float32_atol(1.0, terms=3 + 2))


def test_confidence_change_refuses_maps_of_another_size_and_an_unknown_score():
    model, images = _tiny(), torch.rand(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"maps must be \(N, H, W\) = \(2, 8, 8\)"):
        confidence_change(model, images, torch.rand(2, 4, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="score must be one of"):
        confidence_change(model, images, torch.rand(2, 8, 8), torch.tensor([0, 1]), score="odds")


@pytest.mark.numeric
def test_sparseness_is_the_gini_index_of_the_mean_absolute_difference():
    maps = torch.rand(5, 6, 7, generator=torch.Generator().manual_seed(3)) ** 3
    for value, m in zip(sparseness(maps), maps.double().numpy()):
        x = m.ravel()
        # Gini as half the relative mean absolute difference: another formula than the sorted sum.
        gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
        assert float(value) == pytest.approx(gini, abs=float32_atol(1.0, terms=2))
    one = torch.zeros(1, 4, 4)
    one[0, 1, 2] = 3.0
    assert float(sparseness(one)[0]) == pytest.approx(1 - 1 / 16)  # the most a map of 16 pixels can be
    assert float(sparseness(torch.ones(1, 4, 4))[0]) == 0 and float(sparseness(torch.zeros(1, 4, 4))[0]) == 0


@pytest.mark.numeric
def test_complexity_is_scipys_entropy_of_the_normalised_map():
    maps = torch.rand(4, 5, 5, generator=torch.Generator().manual_seed(4))
    for value, m in zip(complexity(maps), maps.double().numpy()):
        assert float(value) == pytest.approx(entropy(m.ravel()), abs=float32_atol(np.log(25), terms=25))
    one = torch.zeros(1, 5, 5)
    one[0, 0, 0] = 1
    assert float(complexity(one)[0]) == 0
    assert float(complexity(torch.ones(1, 5, 5))[0]) == pytest.approx(np.log(25))
    assert float(complexity(torch.zeros(1, 5, 5))[0]) == pytest.approx(np.log(25))
