"""The teaching versions of the classification metrics (evaluation/metrics.py, a few lines of
NumPy each) give scikit-learn's numbers, edge cases included: a class never predicted, a class
with no sample, one class only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from fishcam_utils.evaluation.metrics import (
    classification_report_text,
    confusion_matrix,
    normalize_rows,
    per_class_metrics,
    summary_metrics,
)

CASES = {
    "random": (np.random.default_rng(0).integers(0, 5, 200), np.random.default_rng(1).integers(0, 5, 200), 5),
    "class 3 never predicted": (np.array([0, 1, 2, 3, 3, 1, 0]), np.array([0, 1, 2, 2, 1, 1, 0]), 4),
    "class 4 has no sample": (np.array([0, 1, 2, 3, 3, 1, 0]), np.array([0, 4, 2, 3, 1, 1, 0]), 5),
    "one class": (np.zeros(6, int), np.zeros(6, int), 1),
    "all wrong": (np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0]), 2),
}


@pytest.mark.filterwarnings("ignore:A single label was found")
@pytest.mark.parametrize("case", list(CASES))
def test_the_confusion_matrix_and_its_rows_match_sklearn(case):
    targets, preds, c = CASES[case]
    labels = list(range(c))
    np.testing.assert_array_equal(confusion_matrix(targets, preds, c),
                                  sk.confusion_matrix(targets, preds, labels=labels))
    with np.errstate(invalid="ignore"):
        theirs = np.nan_to_num(sk.confusion_matrix(targets, preds, labels=labels, normalize="true"))
    np.testing.assert_allclose(normalize_rows(confusion_matrix(targets, preds, c)), theirs)


@pytest.mark.parametrize("case", list(CASES))
def test_precision_recall_f1_and_summaries_match_sklearn(case):
    targets, preds, c = CASES[case]
    labels, classes = list(range(c)), [f"species {i}" for i in range(c)]
    ours = per_class_metrics(targets, preds, classes)
    p, r, f, s = sk.precision_recall_fscore_support(targets, preds, labels=labels, zero_division=0)
    np.testing.assert_allclose(ours["precision"], p)
    np.testing.assert_allclose(ours["recall"], r)
    np.testing.assert_allclose(ours["f1"], f)
    np.testing.assert_array_equal(ours["support"], s)
    summary = summary_metrics(targets, preds, classes)
    assert summary["accuracy"] == pytest.approx(sk.accuracy_score(targets, preds))
    for average in ("macro", "weighted"):
        expected = sk.f1_score(targets, preds, labels=labels, average=average, zero_division=0)
        assert summary[f"{average}_f1"] == pytest.approx(expected)


@pytest.mark.parametrize("case", list(CASES))
def test_the_report_reads_as_sklearns(case):
    targets, preds, c = CASES[case]
    classes = [f"species {i}" for i in range(c)]
    expected = sk.classification_report(targets, preds, labels=list(range(c)), target_names=classes, digits=3,
                                        zero_division=0)
    # Compared token by token as numbers: sklearn writes a support of 2 as "2.0" when no sample is right.
    assert _tokens(classification_report_text(targets, preds, classes, digits=3)) == _tokens(expected)


def _tokens(report: str) -> list:
    def read(token: str):
        try:
            return float(token)
        except ValueError:
            return token

    return [read(t) for t in report.split()]
