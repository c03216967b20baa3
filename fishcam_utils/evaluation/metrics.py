"""Numbers that say how good a classifier is, overall and per class.

Everything takes plain arrays: ``targets`` and ``preds`` (N,) int in [0, C), ``probs`` (N, C)
float in [0, 1]. Undefined values (a class never predicted, a class with no sample) are 0
for precision/recall/F1 and NaN for ROC AUC / average precision, and never print warnings.

The confusion matrix and precision/recall/F1 are written out in NumPy because notebook 02 reads
them as the definitions; tests/evaluation/test_metrics_vs_sklearn.py checks them against scikit-learn's.
ROC and PR curves come from scikit-learn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd


def _labels(values, name: str, num_classes: int) -> np.ndarray:
    """``values`` as (N,) int64, checked to lie in [0, num_classes)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class indices, got shape {array.shape}; "
                         "for probabilities take probs.argmax(axis=1).")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.mod(array, 1) == 0):
            raise ValueError(f"{name} must hold integer class indices, got dtype {array.dtype} with fractions.")
    array = array.astype(np.int64)
    if array.size and (array.min() < 0 or array.max() >= num_classes):
        bad = array[(array < 0) | (array >= num_classes)]
        raise ValueError(f"{name} must lie in [0, {num_classes}), found {bad[:5].tolist()}; "
                         f"check num_classes (or classes) matches the labels.")
    return array


def _pair(targets, preds, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}.")
    t = _labels(targets, "targets", num_classes)
    p = _labels(preds, "preds", num_classes)
    if t.shape != p.shape:
        raise ValueError(f"targets and preds must have the same length, got {len(t)} and {len(p)}.")
    return t, p


def confusion_matrix(targets: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: (C, C) int64, true class on rows, predicted on columns.

    targets, preds: (N,) int in [0, C).
    """
    t, p = _pair(targets, preds, num_classes)
    return (np.bincount(t * num_classes + p, minlength=num_classes * num_classes)
            .reshape(num_classes, num_classes).astype(np.int64))


def normalize_rows(cm: np.ndarray) -> np.ndarray:
    """Each row of ``cm`` (C, C) divided by its sum: float64 in [0, 1], rows summing to 1.

    A row with no samples becomes all zeros (never NaN), so plots and sums stay finite.
    """
    cm = np.asarray(cm, dtype=np.float64)
    if cm.ndim != 2:
        raise ValueError(f"cm must be a 2-D matrix, got shape {cm.shape}.")
    sums = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, sums, out=np.zeros_like(cm), where=sums != 0)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def per_class_metrics(targets: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                      classes: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 (float in [0, 1], 0 where undefined) and support (int) per class.

    targets, preds: (N,) int in [0, C); classes: C names, the index of the result.
    """
    cm = confusion_matrix(targets, preds, len(classes))
    tp = np.diag(cm)
    support = cm.sum(axis=1)
    precision = _safe_ratio(tp, cm.sum(axis=0))
    recall = _safe_ratio(tp, support)
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    table = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)},
        index=pd.Index([str(c) for c in classes], name="class"),
    )
    return table


def summary_metrics(targets: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray,
                    classes: Sequence[str]) -> dict[str, float]:
    """accuracy, macro_f1 and weighted_f1 (floats in [0, 1]; NaN when there are no samples)."""
    table = per_class_metrics(targets, preds, classes)
    t, p = np.asarray(targets), np.asarray(preds)
    n = int(table["support"].sum())
    if n == 0:
        return {"accuracy": float("nan"), "macro_f1": float("nan"), "weighted_f1": float("nan")}
    return {
        "accuracy": float((t == p).mean()),
        "macro_f1": float(table["f1"].mean()),
        "weighted_f1": float((table["f1"] * table["support"]).sum() / n),
    }


def classification_report_text(
    targets: Sequence[int] | np.ndarray, preds: Sequence[int] | np.ndarray, classes: Sequence[str], digits: int = 3
) -> str:
    """A readable table (one line per class: precision, recall, f1-score, support), then
    accuracy, macro avg and weighted avg lines, laid out as scikit-learn's report."""
    table = per_class_metrics(targets, preds, classes)
    n = int(table["support"].sum())
    names = list(table.index) + ["weighted avg"]
    width = max(len(name) for name in names)
    head = ["precision", "recall", "f1-score", "support"]
    col = max(len(h) for h in head[:3]) + 1
    number = f"{{:>{col}.{digits}f}}"

    def line(name: str, p: float | None, r: float | None, f: float, s: int) -> str:
        cells = ["".rjust(col) if v is None else number.format(v) for v in (p, r, f)]
        return f"{name:>{width}} " + "".join(cells) + f"{s:>{col}d}"

    lines = [" " * (width + 1) + "".join(h.rjust(col) for h in head), ""]
    for name, row in table.iterrows():
        lines.append(line(str(name), row["precision"], row["recall"], row["f1"], int(row["support"])))
    lines.append("")
    summary = summary_metrics(targets, preds, classes)
    accuracy = summary["accuracy"] if n else 0.0
    lines.append(line("accuracy", None, None, accuracy, n))
    means = table[["precision", "recall", "f1"]].mean()
    lines.append(line("macro avg", means["precision"], means["recall"], means["f1"], n))
    weights = table["support"] / n if n else table["support"] * 0.0
    weighted = table[["precision", "recall", "f1"]].mul(weights, axis=0).sum()
    lines.append(line("weighted avg", weighted["precision"], weighted["recall"], weighted["f1"], n))
    return "\n".join(lines) + "\n"


def _probabilities(probs, num_classes: int, n: int) -> np.ndarray:
    array = np.asarray(probs, dtype=np.float64)
    if array.ndim != 2 or array.shape != (n, num_classes):
        raise ValueError(f"probs must be (N, C) = ({n}, {num_classes}) to match targets and classes, "
                         f"got shape {array.shape}.")
    if not np.all(np.isfinite(array)):
        raise ValueError("probs holds NaN or infinite values; check the model's outputs.")
    return array


def roc_pr_curves(targets: Sequence[int] | np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> dict:
    """One-vs-rest ROC and precision-recall curves of each class.

    targets: (N,) int in [0, C); probs: (N, C) float in [0, 1] (any score works: only the
    order within a column matters); classes: C names.

    Returns a dict:

    - ``"classes"``: the C names;
    - ``"per_class"``: name → dict with ``fpr``, ``tpr``, ``roc_auc``, ``precision``,
      ``recall``, ``average_precision``, ``positives`` (arrays are 1-D float; empty, and the
      score NaN, where undefined: ROC needs positives and negatives, PR needs positives);
    - ``"summary"``: DataFrame with columns class, roc_auc, average_precision, positives;
    - ``"macro_roc_auc"``, ``"macro_average_precision"``: means over the classes where defined
      (NaN if none is).
    """
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

    names = [str(c) for c in classes]
    t = _labels(targets, "targets", len(names))
    scores = _probabilities(probs, len(names), len(t))
    empty = np.zeros(0, np.float64)
    per_class: dict[str, dict] = {}
    rows = []
    for k, name in enumerate(names):
        positive = t == k
        n_pos = int(positive.sum())
        n_neg = int(len(t) - n_pos)
        entry = {"fpr": empty, "tpr": empty, "roc_auc": float("nan"), "precision": empty, "recall": empty,
                 "average_precision": float("nan"), "positives": n_pos}
        # Undefined cases are skipped before sklearn sees them; the filter only guards against
        # warnings from versions that add new ones.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if n_pos and n_neg:
                fpr, tpr, _ = roc_curve(positive, scores[:, k])
                entry.update(fpr=fpr.astype(np.float64), tpr=tpr.astype(np.float64),
                             roc_auc=float(roc_auc_score(positive, scores[:, k])))
            if n_pos:
                precision, recall, _ = precision_recall_curve(positive, scores[:, k])
                entry.update(precision=precision.astype(np.float64), recall=recall.astype(np.float64),
                             average_precision=float(average_precision_score(positive, scores[:, k])))
        per_class[name] = entry
        rows.append({"class": name, "roc_auc": entry["roc_auc"], "average_precision": entry["average_precision"],
                     "positives": n_pos})
    summary = pd.DataFrame(rows, columns=["class", "roc_auc", "average_precision", "positives"])
    summary["positives"] = summary["positives"].astype(np.int64)

    def mean_defined(column: str) -> float:
        values = summary[column].to_numpy(dtype=np.float64)
        values = values[~np.isnan(values)]
        return float(values.mean()) if values.size else float("nan")

    return {
        "classes": names,
        "per_class": per_class,
        "summary": summary,
        "macro_roc_auc": mean_defined("roc_auc"),
        "macro_average_precision": mean_defined("average_precision"),
    }


def calibration_bins(targets: Sequence[int] | np.ndarray, probs: np.ndarray, bins: int = 15) -> pd.DataFrame:
    """The reliability table: images grouped by the confidence of their top class into ``bins`` equal
    intervals of (0, 1]; per bin ``low``, ``high``, ``images``, ``confidence`` (mean top probability)
    and ``accuracy`` (share right). Empty bins have NaN means. targets (N,) int, probs (N, C)."""
    t = np.asarray(targets).astype(int).reshape(-1)
    shape = np.shape(probs)
    p = _probabilities(probs, shape[1] if len(shape) == 2 else 0, len(t))
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    if len(t) == 0:
        raise ValueError("no images: calibration needs at least one (targets and probs are empty)")
    if t.min() < 0 or t.max() >= p.shape[1]:
        raise ValueError(f"targets must lie in [0, {p.shape[1]}), got values from {t.min()} to {t.max()}")
    if p.min() < 0 or p.max() > 1 or np.abs(p.sum(1) - 1).max() > 1e-3:
        raise ValueError("probs must be probabilities (each row in [0, 1], summing to 1): pass softmax outputs, "
                         "such as Predictions.probs, not logits")
    confidence, right = p.max(1), (p.argmax(1) == t)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)  # (low, high]
    rows = []
    for b in range(bins):
        inside = which == b
        rows.append({"low": edges[b], "high": edges[b + 1], "images": int(inside.sum()),
                     "confidence": confidence[inside].mean() if inside.any() else np.nan,
                     "accuracy": right[inside].mean() if inside.any() else np.nan})
    return pd.DataFrame(rows)


def expected_calibration_error(targets: Sequence[int] | np.ndarray, probs: np.ndarray, bins: int = 15) -> float:
    """ECE (Guo et al. 2017) in [0, 1]: the gap between confidence and accuracy, averaged over the
    ``calibration_bins`` weighted by their share of the images; 0 when every bin is as often right as
    it is confident."""
    table = calibration_bins(targets, probs, bins)
    used = table[table["images"] > 0]
    return float((used["images"] * (used["confidence"] - used["accuracy"]).abs()).sum() / used["images"].sum())
