"""Reading the view weights of a multi-view model: tables, files and two plots.

``predict`` keeps a multi-view model's per-fish view weights (``Predictions.view_weights``,
(N, V), summing to 1 over the views present). From them:

- ``class_view_weights``: the mean weight of each view per true class (a classes x views table);
- ``deciding_view_report``: per class, the view with the largest mean weight next to the view
  that really decides the class (the synthetic species know it), and whether they agree;
- ``plot_view_weights`` (a box per view) and ``plot_class_view_weights`` (bars per class);
- ``write_attention``: all of it as CSV, an Excel workbook and PNGs, each file atomically.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from ..data.species import SPECIES
from ..files import atomic_path
from .predict import Predictions


def _weights(predictions: Predictions) -> np.ndarray:
    if not isinstance(predictions, Predictions) or predictions.view_weights is None:
        raise ValueError("these predictions hold no view weights: predict with a multi-view model "
                         "(one whose output is (logits, view_weights, ...)) on a MultiViewDataset")
    return predictions.view_weights


def attention_frame(predictions: Predictions) -> pd.DataFrame:
    """One row per fish: id, true_name, pred_name, correct, confidence and w_<view> per view."""
    _weights(predictions)
    frame = predictions.frame()
    return frame[["id", "true_name", "pred_name", "correct", "confidence"] + [f"w_{v}" for v in predictions.views]]


def class_view_weights(predictions: Predictions) -> pd.DataFrame:
    """Mean view weight per true class: classes (rows, in class order) x views, each row summing
    to 1 when every fish has every view. A class with no fish gets NaN."""
    weights = _weights(predictions)
    rows = [weights[predictions.targets == k].mean(0) if (predictions.targets == k).any()
            else np.full(len(predictions.views), np.nan) for k in range(predictions.num_classes)]
    return pd.DataFrame(np.array(rows).reshape(-1, len(predictions.views)),
                        index=pd.Index(predictions.classes, name="class"), columns=predictions.views)


def synthetic_deciding_views() -> dict[str, str]:
    """Species name -> the view that carries its deciding trait, for the synthetic species."""
    return {s.name: s.deciding_view for s in SPECIES}


def top_view(weights: pd.Series) -> str | None:
    """The view with the largest weight; None if there is none or it is tied (a fixed-weight fusion)."""
    values = weights.dropna().sort_values(ascending=False)
    if values.empty or (len(values) > 1 and values.iloc[0] - values.iloc[1] < 1e-6):
        return None
    return str(values.index[0])


def deciding_view_report(predictions: Predictions, deciding: Mapping[str, str] | None = None) -> pd.DataFrame:
    """Per class: mean weight of each view, ``top_view`` (largest mean weight), ``deciding_view``
    (from ``deciding``, default the synthetic species') and ``match`` (True/False; NaN where the
    class's deciding view is unknown, or no view's weight is the largest, as with a mean fusion).
    ``report["match"].mean()`` is the share of classes whose top view is the deciding one."""
    means = class_view_weights(predictions)
    deciding = synthetic_deciding_views() if deciding is None else dict(deciding)
    report = means.copy()
    report["top_view"] = [top_view(row) for _, row in means.iterrows()]
    report["deciding_view"] = [deciding.get(c) for c in means.index]
    report["match"] = pd.Series([top == want if pd.notna(top) and pd.notna(want) else np.nan
                                 for top, want in zip(report["top_view"], report["deciding_view"])],
                                index=report.index, dtype=object)
    return report


def plot_view_weights(predictions: Predictions, title: str | None = None) -> Figure:
    """A box plot of the per-fish weight of each view (missing views left out), with chance 1/V."""
    weights = _weights(predictions)
    views = predictions.views
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(views), 3.4))
    # A missing view's weight is 0 by construction, not a choice of the model: leave it out.
    present = [weights[weights[:, v] > 0, v] for v in range(len(views))]
    ax.boxplot(present, showmeans=True)
    ax.set_xticks(range(1, len(views) + 1), views)
    ax.axhline(1 / len(views), color="grey", lw=1, ls="--", label=f"uniform 1/{len(views)}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("view weight")
    ax.legend(loc="upper right", fontsize=8)
    ax.set_title(title or f"View weights of {len(weights)} fish")
    fig.tight_layout()
    return fig


def plot_class_view_weights(predictions: Predictions, deciding: Mapping[str, str] | None = None,
                            title: str | None = None) -> Figure:
    """Bars of the mean weight of each view, per class; the deciding view of each class (when
    known, default the synthetic species') is outlined in black."""
    means = class_view_weights(predictions)
    deciding = synthetic_deciding_views() if deciding is None else dict(deciding)
    views, classes = list(means.columns), list(means.index)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(classes) + 2), 3.8))
    width = 0.8 / len(views)
    colors = plt.get_cmap("tab10").colors
    x = np.arange(len(classes))
    for v, view in enumerate(views):
        edges = ["black" if deciding.get(c) == view else "none" for c in classes]
        ax.bar(x + (v - (len(views) - 1) / 2) * width, means[view].to_numpy(), width, label=view,
               color=colors[v % len(colors)], edgecolor=edges, linewidth=1.8)
    ax.axhline(1 / len(views), color="grey", lw=1, ls="--")
    ax.set_xticks(x, classes, rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("mean view weight")
    ax.legend(title="view", fontsize=8, ncols=len(views))
    ax.set_title(title or "Mean view weight per class (black edge: the class's deciding view)")
    fig.tight_layout()
    return fig


def write_attention(folder: str | os.PathLike, predictions: Predictions, *, prefix: str = "",
                    deciding: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Write the view weights into ``folder``: attention.csv (per fish), attention.xlsx (sheets
    "per fish", "per class", "deciding view"), attention_by_class.csv, attention_deciding.csv,
    attention_boxplot.png and attention_by_class.png, each name after ``prefix``.
    Returns file name (without prefix) -> path."""
    folder = Path(folder)
    per_fish, per_class = attention_frame(predictions), class_view_weights(predictions)
    report = deciding_view_report(predictions, deciding)
    written: dict[str, Path] = {}

    def put(name: str, write: Callable[[Path], None]) -> None:
        with atomic_path(folder / f"{prefix}{name}") as tmp:
            write(tmp)
        written[name] = folder / f"{prefix}{name}"

    def excel(tmp: Path) -> None:
        with pd.ExcelWriter(tmp, engine="openpyxl") as book:
            per_fish.to_excel(book, sheet_name="per fish", index=False)
            per_class.to_excel(book, sheet_name="per class")
            report.to_excel(book, sheet_name="deciding view")

    put("attention.csv", lambda tmp: per_fish.to_csv(tmp, index=False))
    put("attention_by_class.csv", lambda tmp: per_class.to_csv(tmp))
    put("attention_deciding.csv", lambda tmp: report.to_csv(tmp))
    put("attention.xlsx", excel)
    for name, fig in (("attention_boxplot.png", plot_view_weights(predictions)),
                      ("attention_by_class.png", plot_class_view_weights(predictions, deciding))):
        try:
            put(name, lambda tmp, fig=fig: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight"))
        finally:
            plt.close(fig)
    return written
