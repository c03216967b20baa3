"""Figures of an evaluation: training curves, confusion matrix, ROC/PR curves, worst mistakes.

Each function returns the matplotlib ``Figure`` and never calls ``plt.show()``: notebooks
display it, reports save and close it.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from ..data.introspection import sample_source
from ..data.transforms import to_display
from ..viz import as_float_image
from .metrics import normalize_rows
from .predict import Predictions, dataset_ids

HISTORY_PANELS = (("loss", "train_loss", "val_loss"), ("accuracy", "train_acc", "val_acc"),
                  ("learning rate", "lr", None))


def _numeric(history: pd.DataFrame, column: str | None) -> pd.Series | None:
    """``column`` as floats, or None when it is absent or holds no number at all."""
    if column is None or column not in history.columns:
        return None
    values = pd.to_numeric(history[column], errors="coerce").astype(float)
    return None if values.isna().all() else values


def _stage_starts(history: pd.DataFrame, epochs: np.ndarray) -> list[tuple[float, str]]:
    """(x, stage name) where a new stage begins, x halfway between its first epoch and the one before."""
    if "stage" not in history.columns or len(history) < 2:
        return []
    stages = history["stage"].astype(str).to_numpy()
    return [((epochs[i - 1] + epochs[i]) / 2, stages[i]) for i in range(1, len(stages)) if stages[i] != stages[i - 1]]


def plot_history(history: pd.DataFrame, title: str | None = None) -> Figure:
    """Training curves: loss, accuracy and learning rate per epoch (three panels).

    history: one row per epoch with ``epoch`` and ``train_loss``; ``train_acc``, ``val_loss``,
    ``val_acc`` (in [0, 1]) and ``lr`` are drawn when present and not all NaN (NaN epochs
    are gaps). A ``stage`` column (e.g. "head", "finetune") gets a dashed line where it changes.
    """
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"history must be a pandas DataFrame, got {type(history).__name__}; "
                         "use pd.DataFrame(list_of_epoch_dicts).")
    missing = [c for c in ("epoch", "train_loss") if c not in history.columns]
    if missing:
        raise ValueError(f"history lacks column(s) {missing}; it has {list(history.columns)}. "
                         "Record one row per epoch with at least epoch and train_loss.")
    epochs = pd.to_numeric(history["epoch"], errors="coerce").to_numpy(dtype=float)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (label, train_col, val_col) in zip(axes, HISTORY_PANELS):
        drawn = False
        for column, style, name in ((train_col, "-o", "train"), (val_col, "-s", "val")):
            values = _numeric(history, column)
            if values is not None:
                ax.plot(epochs, values.to_numpy(), style, markersize=3, label=name if val_col else None)
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, f"no {label} recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
        elif train_col == "lr":
            lr = _numeric(history, "lr")
            if lr is not None and (lr.dropna() > 0).all():
                ax.set_yscale("log")  # schedules span decades; linear hides the warm-up and the tail
        elif ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        for x, stage in _stage_starts(history, epochs):
            ax.axvline(x, color="grey", linestyle="--", linewidth=1)
            ax.text(x, 0.97, f" {stage}", transform=ax.get_xaxis_transform(), fontsize=7, color="grey", va="top")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], normalize: bool = False,
                          title: str | None = None) -> Figure:
    """Heatmap of ``cm`` (C, C) counts, true class on the y axis, predicted on the x axis.

    Cells show the counts, or with ``normalize=True`` the share of each true class (rows
    sum to 1; a class with no sample shows zeros).
    """
    import seaborn as sns  # imported here: it is slow to import and only this figure needs it

    cm = np.asarray(cm)
    names = [str(c) for c in classes]
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] != len(names):
        raise ValueError(f"cm must be (C, C) with C = len(classes) = {len(names)}, got shape {cm.shape}.")
    c = len(names)
    side = max(4.0, 0.6 * c + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    if normalize:
        values, fmt, limits = normalize_rows(cm), ".2f", {"vmin": 0.0, "vmax": 1.0}
    else:
        values, fmt, limits = cm.astype(np.int64), "d", {"vmin": 0}
    sns.heatmap(values, annot=True, fmt=fmt, cmap="Blues", square=True, xticklabels=names, yticklabels=names,
                cbar=True, ax=ax, annot_kws={"fontsize": 8 if c <= 10 else 6}, **limits)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_xticklabels(ax.get_xticklabels(), rotation=45, ha="right")
    ax.set_yticklabels(ax.get_yticklabels(), rotation=0)
    ax.set_title(title or ("confusion matrix (share of each true class)" if normalize else "confusion matrix (counts)"))
    fig.tight_layout()
    return fig


def plot_roc_pr(curves: dict, title: str | None = None) -> Figure:
    """Two panels: one-vs-rest ROC curves with the chance diagonal, and precision-recall curves.

    curves: the result of ``roc_pr_curves``. Legends give each class's AUC and AP; classes
    without positives (NaN scores) are listed but not drawn.
    """
    if not isinstance(curves, dict) or "per_class" not in curves:
        raise ValueError("curves must be the dict returned by roc_pr_curves(targets, probs, classes).")
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.6))
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    colours = plt.get_cmap("tab10" if len(curves["per_class"]) <= 10 else "tab20")
    for k, (name, entry) in enumerate(curves["per_class"].items()):
        colour = colours(k % colours.N)
        auc, ap = entry["roc_auc"], entry["average_precision"]
        auc_text = "n/a" if np.isnan(auc) else f"{auc:.3f}"
        ap_text = "n/a" if np.isnan(ap) else f"{ap:.3f}"
        roc_ax.plot(entry["fpr"], entry["tpr"], color=colour, linewidth=1.3, label=f"{name} (AUC={auc_text})")
        pr_ax.step(entry["recall"], entry["precision"], where="post", color=colour, linewidth=1.3,
                   label=f"{name} (AP={ap_text})")
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (one vs rest)",
               xlim=(-0.01, 1.01), ylim=(-0.01, 1.01))
    pr_ax.set(xlabel="recall", ylabel="precision", title="precision-recall (one vs rest)",
              xlim=(-0.01, 1.01), ylim=(-0.01, 1.05))
    for ax in (roc_ax, pr_ax):
        ax.legend(fontsize=7, loc="lower left" if ax is pr_ax else "lower right")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _display_image(dataset, i: int) -> np.ndarray:
    """Sample ``i`` of ``dataset`` as float (H, W, 3) in [0, 1]; the views of a fish side by side."""
    base, row = sample_source(dataset, i)
    if hasattr(base, "raw"):
        raw = base.raw(row)
        if isinstance(raw, dict):
            present = [as_float_image(v) for v in raw.values() if v is not None]
            return np.concatenate(present, axis=1) if present else np.ones((8, 8, 3), np.float32)
        return as_float_image(raw)
    # No raw(): show what the model saw, with the normalisation undone.
    x = dataset[i][0]
    if isinstance(x, (tuple, list)):  # (views, present)
        views, present = x[0], (x[1] if len(x) > 1 else torch.ones(len(x[0]), dtype=torch.bool))
        shown = [to_display(v) for v, p in zip(views, present) if bool(p)]
        return np.concatenate(shown, axis=1) if shown else np.ones((8, 8, 3), np.float32)
    return to_display(torch.as_tensor(x))


def plot_misclassified(dataset, predictions: Predictions, n: int = 16, ncols: int = 4, size: float = 2.2) -> Figure:
    """Gallery of the ``n`` most confident mistakes, titled "true →" over "pred (p=0.93)".

    ``predictions`` must have been made on ``dataset`` in order (as ``predict`` does). Images
    come from ``dataset.raw(i)`` (the views of a fish side by side). With no mistake, the
    figure says "no misclassified images".
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}.")
    if len(dataset) != len(predictions):
        raise ValueError(f"dataset has {len(dataset)} samples but predictions has {len(predictions)}; "
                         "pass the dataset the predictions were made on.")
    if predictions.ids is not None:
        ids = dataset_ids(dataset)
        if ids is not None and ids != predictions.ids:
            raise ValueError("predictions.ids do not match the dataset's samples; pass the dataset the "
                             "predictions were made on, read in order.")
    wrong = predictions.misclassified()[:n]
    if len(wrong) == 0:
        fig, ax = plt.subplots(figsize=(4, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center", transform=ax.transAxes)
        return fig
    images = [_display_image(dataset, int(i)) for i in wrong]
    aspect = max(image.shape[1] / image.shape[0] for image in images)
    ncols = max(1, min(ncols, len(images)))
    nrows = -(-len(images) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * aspect * ncols, (size + 0.35) * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    classes, preds, confidence = predictions.classes, predictions.preds, predictions.confidence
    for ax, i, image in zip(axes.flat, wrong, images):
        ax.imshow(image, interpolation="nearest")
        # Two lines, so that long species names in narrow columns do not run into each other.
        ax.set_title(f"{classes[predictions.targets[i]]} →\n{classes[preds[i]]} (p={confidence[i]:.2f})", fontsize=8)
    fig.tight_layout()
    return fig


def plot_reliability(runs: dict[str, tuple[np.ndarray, np.ndarray]], bins: int = 15,
                     title: str | None = None) -> Figure:
    """Reliability diagram: accuracy against confidence per bin, a line per run (name → (targets,
    probs)), the diagonal where a model is calibrated; each run's ECE in the legend."""
    from .metrics import calibration_bins, expected_calibration_error

    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="calibrated")
    for name, (targets, probs) in runs.items():
        table = calibration_bins(targets, probs, bins)
        used = table[table["images"] > 0]
        ece = expected_calibration_error(targets, probs, bins)
        ax.plot(used["confidence"], used["accuracy"], marker="o", label=f"{name} (ECE {ece:.3f})")
    ax.set(xlabel="confidence (top probability)", ylabel="accuracy", xlim=(0, 1), ylim=(0, 1),
           title=title or "Reliability diagram")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig
