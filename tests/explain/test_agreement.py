"""Rankings of methods by each measure, and Kendall's tau between them, against scipy's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import kendalltau

from fishcam_utils.explain.judging.agreement import kendall_tau, rankings


def test_rankings_follow_each_measures_direction_and_share_ties():
    table = pd.DataFrame({"pointing": [0.9, 0.5, 0.5], "deletion_auc": [0.1, 0.3, 0.2], "other": [1, 2, 3]},
                         index=["gradcam", "random", "edges"])
    ranks = rankings(table)
    assert list(ranks.columns) == ["pointing", "deletion_auc"]  # an unknown column is left out
    assert ranks["pointing"].tolist() == [1.0, 2.5, 2.5] and ranks["deletion_auc"].tolist() == [1.0, 3.0, 2.0]
    with pytest.raises(ValueError, match="no column of the table is a known measure"):
        rankings(table[["other"]])


def test_kendall_tau_is_scipys_tau_b_with_ties():
    rng = np.random.default_rng(0)
    table = pd.DataFrame({"pointing": rng.integers(0, 4, 9) / 4, "energy": rng.random(9),
                          "deletion_auc": rng.random(9), "insertion_auc": rng.integers(0, 3, 9) / 3})
    tau = kendall_tau(table)
    ranks = rankings(table)
    for a in tau.index:
        for b in tau.columns:
            assert tau.loc[a, b] == pytest.approx(kendalltau(ranks[a], ranks[b]).statistic, abs=1e-12)
    assert np.allclose(np.diag(tau), 1)


def test_a_measure_that_ranks_every_method_alike_has_no_tau():
    table = pd.DataFrame({"pointing": [0.5, 0.5, 0.5], "energy": [0.1, 0.3, 0.2], "sparseness": [0.2, 0.1, 0.3]})
    tau = kendall_tau(table)
    assert tau["pointing"].isna().all() and tau.loc["pointing"].isna().all()  # scipy says nan too
    assert np.isnan(kendalltau(table["pointing"], table["energy"]).statistic)
    assert tau.loc["energy", "energy"] == 1 and tau.loc["energy", "sparseness"] == pytest.approx(-1 / 3)
