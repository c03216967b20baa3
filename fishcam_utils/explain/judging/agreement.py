"""Do the measures agree? Rank the methods by each measure, and compare the rankings with Kendall's tau.

A table of methods (rows) by measures (columns) says which way each measure points (``BETTER``: higher is
better, or lower for deletion, Average Drop, complexity...). ``rankings`` gives each measure's order of the
methods; ``kendall_tau`` the tau-b of every pair of measures over the methods (ties counted, as scipy's
``kendalltau``): 1 when two measures order the methods alike, -1 when one reverses the other.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

# Which way each measure of the package points: +1 higher is better, -1 lower is better.
BETTER: dict[str, int] = {
    "pointing": 1, "pointing_tol": 1, "energy": 1, "deletion_auc": -1, "insertion_auc": 1,
    "average_drop": -1, "increase_in_confidence": 1, "confidence_change": 1, "road_most": -1, "road_least": 1,
    "road_combined": 1, "arcc": 1, "random_logit": -1, "sparseness": 1, "complexity": -1,
}


def rankings(table: pd.DataFrame, better: Mapping[str, int] | None = None) -> pd.DataFrame:
    """(methods x measures) ranks, 1 the best under each measure (ties share their mean rank), for the columns
    of ``table`` that ``better`` (default ``BETTER``) knows."""
    better = dict(BETTER if better is None else better)
    known = [c for c in table.columns if c in better]
    if not known:
        raise ValueError(f"no column of the table is a known measure; known: {', '.join(better)}")
    return pd.DataFrame({c: (-better[c] * table[c]).rank(method="average") for c in known}, index=table.index)


def kendall_tau(table: pd.DataFrame, better: Mapping[str, int] | None = None) -> pd.DataFrame:
    """(measures x measures) Kendall's tau-b between the rankings of the methods by each pair of measures; NaN
    for a measure that ranks every method alike (a constant column: no order to compare), its diagonal too."""
    ranks = rankings(table, better)
    names = list(ranks.columns)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for i, a in enumerate(names):
        out.loc[a, a] = _tau_b(ranks[a].to_numpy(), ranks[a].to_numpy())
        for b in names[i + 1:]:
            out.loc[a, b] = out.loc[b, a] = _tau_b(ranks[a].to_numpy(), ranks[b].to_numpy())
    return out


def _tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b: (concordant - discordant) / sqrt((n0 - ties in x) (n0 - ties in y)) over all pairs."""
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    upper = np.triu_indices(len(x), 1)
    s = float((dx * dy)[upper].sum())
    nx, ny = float(np.abs(dx[upper]).sum()), float(np.abs(dy[upper]).sum())
    return s / np.sqrt(nx * ny) if nx > 0 and ny > 0 else float("nan")
