"""Expected calibration error and the reliability diagram."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from fishcam_utils.evaluation import calibration_bins, expected_calibration_error, plot_reliability


def test_ece_by_hand_on_four_images():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.45, 0.55]])
    targets = np.array([0, 1, 1, 1])
    # Bins of 0.5: (0.5, 1.0] holds every image (confidences 0.9, 0.8, 0.7, 0.55), 3 of 4 right.
    assert expected_calibration_error(targets, probs, bins=2) == pytest.approx(
        abs(np.mean([0.9, 0.8, 0.7, 0.55]) - 0.75))
    # Bins of 0.1: 0.9 right | 0.8 wrong | 0.7 right | 0.55 right: |0.9-1| + |0.8-0| + |0.7-1| + |0.55-1|, over 4.
    assert expected_calibration_error(targets, probs, bins=10) == pytest.approx((0.1 + 0.8 + 0.3 + 0.45) / 4)
    table = calibration_bins(targets, probs, bins=10)
    assert table["images"].sum() == 4 and table.loc[8, "images"] == 1 and table.loc[8, "accuracy"] == 1.0
    assert table.loc[0, "images"] == 0 and np.isnan(table.loc[0, "accuracy"])


def test_a_calibrated_model_scores_near_zero_and_an_overconfident_one_does_not():
    rng = np.random.default_rng(0)
    n, k = 20000, 3
    confidence = rng.uniform(0.5, 1.0, n)  # the predicted class is the top one
    right = rng.uniform(size=n) < confidence  # right exactly as often as confident
    targets = rng.integers(0, k, n)
    preds = np.where(right, targets, (targets + 1) % k)
    probs = np.full((n, k), 0.0)
    probs[np.arange(n), preds] = confidence
    probs[np.arange(n), (preds + 1) % k] = 1 - confidence
    assert expected_calibration_error(targets, probs) < 0.02
    sharp = probs ** 4 / (probs ** 4).sum(1, keepdims=True)  # the same ranking, overconfident
    assert expected_calibration_error(targets, sharp) > 0.1
    fig = plot_reliability({"calibrated": (targets, probs), "overconfident": (targets, sharp)})
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0] == "calibrated" and labels[2].startswith("overconfident (ECE 0.")
    plt.close(fig)


def test_bins_inside_and_at_the_top_edge():
    probs = np.array([[0.62, 0.38], [1.0, 0.0], [0.0, 1.0], [0.33, 0.67]])
    targets = np.array([0, 0, 0, 1])
    table = calibration_bins(targets, probs, bins=4)  # (0, .25], (.25, .5], (.5, .75], (.75, 1]
    assert table["images"].tolist() == [0, 0, 2, 2]  # 0.62 and 0.67; 1.0 and 1.0 (one-hot rows, the top bin)
    assert table.loc[2, "accuracy"] == 1.0 and table.loc[3, "accuracy"] == 0.5
    expected = (2 * abs((0.62 + 0.67) / 2 - 1.0) + 2 * abs(1.0 - 0.5)) / 4
    assert expected_calibration_error(targets, probs, bins=4) == pytest.approx(expected)


def test_bad_probabilities_are_refused():
    with pytest.raises(ValueError, match="pass softmax outputs"):
        expected_calibration_error([0, 1], np.array([[5.0, -2.0], [3.0, 1.0]]))
    with pytest.raises(ValueError, match="no images"):
        expected_calibration_error([], np.zeros((0, 3)))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 2\)"):
        expected_calibration_error([0, 2], np.array([[0.5, 0.5], [0.5, 0.5]]))
    with pytest.raises(ValueError, match="probs must be"):
        expected_calibration_error([0, 1], np.array([0.2, 0.8]))
    with pytest.raises(ValueError, match="bins must be at least 1"):
        calibration_bins([0], np.array([[1.0, 0.0]]), bins=0)
