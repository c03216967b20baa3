"""Writing an evaluation to a run folder: metrics, tables and figures, each file atomically.

Atomic writes (``files.atomic_path``: a temporary file in the same folder, then a rename) mean a
crash or an interrupted notebook never leaves a half-written file that a later cell would read as valid.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from ..data.introspection import data_record
from ..errors import option
from ..files import atomic_path
from .metrics import (
    classification_report_text,
    confusion_matrix,
    normalize_rows,
    per_class_metrics,
    roc_pr_curves,
    summary_metrics,
)
from .plots import plot_confusion_matrix, plot_history, plot_misclassified, plot_roc_pr
from .predict import Predictions


def _text(content: str) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_text(content, encoding="utf-8")


def _csv(frame: pd.DataFrame, index: bool) -> Callable[[Path], None]:
    return lambda tmp: frame.to_csv(tmp, index=index)


def _png(fig: Figure) -> Callable[[Path], None]:
    # The temporary name ends in .tmp, so the format must be named.
    return lambda tmp: fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _finite(value):
    """NaN → None, so metrics.json stays valid JSON (json.dumps would write a bare NaN)."""
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def evaluation_metrics(predictions: Predictions, curves: dict | None = None, data: dict | None = None) -> dict:
    """The content of metrics.json: accuracy, macro_f1, weighted_f1, macro ROC AUC and AP,
    n, classes, and per class precision, recall, f1, support, roc_auc, average_precision
    (null where undefined), and the ``data`` measured (``data_record``). ``curves``:
    ``roc_pr_curves`` of the predictions, if already made."""
    p = predictions
    table = per_class_metrics(p.targets, p.preds, p.classes)
    summary = summary_metrics(p.targets, p.preds, p.classes)
    if curves is None:
        curves = roc_pr_curves(p.targets, p.probs, p.classes)
    scores = curves["summary"].set_index("class")
    per_class = {
        name: {
            "precision": float(row["precision"]),
            "recall": float(row["recall"]),
            "f1": float(row["f1"]),
            "support": int(row["support"]),
            "roc_auc": _finite(float(scores.at[name, "roc_auc"])),
            "average_precision": _finite(float(scores.at[name, "average_precision"])),
        }
        for name, row in table.iterrows()
    }
    return {
        "accuracy": _finite(summary["accuracy"]),
        "macro_f1": _finite(summary["macro_f1"]),
        "weighted_f1": _finite(summary["weighted_f1"]),
        "macro_roc_auc": _finite(curves["macro_roc_auc"]),
        "macro_average_precision": _finite(curves["macro_average_precision"]),
        "n": len(p),
        "classes": list(p.classes),
        "per_class": per_class,
        "data": data,
    }


def check_report_folder(run_dir: str | os.PathLike, dataset=None, *, data: dict | None = None, prefix: str = "",
                        overwrite: bool = False) -> dict | None:
    """Before the work: the record of the data to be reported (``data``, else ``data_record(dataset)``),
    after checking that ``run_dir`` holds no report of other data (unless ``overwrite``)."""
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise FileExistsError(f"{run_dir} is a file, not a folder for the report: choose another folder")
    if data is None and dataset is not None:
        data = data_record(dataset)
    if not overwrite:
        _refuse_other_data(Path(run_dir) / f"{prefix}metrics.json", data)
    return data


def _refuse_other_data(metrics: Path, data: dict | None) -> None:
    """A report already at ``metrics`` of other data than ``data`` (or of data it does not record)
    is not replaced silently."""
    if not metrics.is_file():
        return
    try:
        old = json.loads(metrics.read_text(encoding="utf-8")).get("data")
    except (ValueError, OSError, AttributeError):
        old = "unreadable"
    if old is None or old == data:  # (a report that records no data is an older version's: replaced as before)
        return
    if isinstance(old, dict) and isinstance(data, dict):
        # What the older report recorded is compared; a key added to the record since is not held against it.
        recorded = [k for k in data if k in old]
        if all(old[k] == data[k] for k in recorded):
            return
        changed = [k for k in recorded if old[k] != data[k] and k != "sample_hash"]
        what = "; ".join(f"{k}: {old.get(k)!r} → {data[k]!r}" for k in changed) or "other samples"
    else:
        what = "data the report does not record"
    raise FileExistsError(f"{metrics.parent} already holds a report of other data ({what}); pass {option('overwrite')} "
                          f"to replace it, or write the report to another folder")


def write_evaluation(
    run_dir: str | os.PathLike,
    predictions: Predictions,
    *,
    history: pd.DataFrame | None = None,
    dataset=None,
    prefix: str = "",
    data: dict | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write the evaluation of ``predictions`` into ``run_dir`` (created if needed).

    Files (each name preceded by ``prefix``, e.g. "test_"): metrics.json,
    classification_report.txt, per_class.csv, confusion_matrix.csv,
    confusion_matrix_normalized.csv, predictions.csv, roc_pr.csv, confusion_matrix.png,
    roc_pr.png, curves.png (with ``history``), misclassified.png (with ``dataset``, the
    one the predictions were made on) and, for a multi-view model, the view-weight files of
    ``write_attention``. Returns file name (without prefix) → path written.

    metrics.json records the data measured: ``data``, else ``data_record(dataset)``. A report of
    other data already in ``run_dir`` raises ``FileExistsError`` unless ``overwrite``.
    """
    if not isinstance(predictions, Predictions):
        raise ValueError(f"predictions must be a Predictions (from predict(model, data)), "
                         f"got {type(predictions).__name__}.")
    run_dir = Path(run_dir)
    data = check_report_folder(run_dir, dataset, data=data, prefix=prefix, overwrite=overwrite)
    run_dir.mkdir(parents=True, exist_ok=True)
    p = predictions
    written: dict[str, Path] = {}

    def put(name: str, write: Callable[[Path], None]) -> None:
        with atomic_path(run_dir / f"{prefix}{name}") as tmp:
            write(tmp)
        written[name] = run_dir / f"{prefix}{name}"

    def put_figure(name: str, fig: Figure) -> None:
        try:
            put(name, _png(fig))
        finally:
            plt.close(fig)  # figures are kept by pyplot until closed; a loop over runs would leak

    cm = confusion_matrix(p.targets, p.preds, p.num_classes)
    labels = pd.Index(p.classes, name="true")
    columns = pd.Index(p.classes, name="predicted")
    curves = roc_pr_curves(p.targets, p.probs, p.classes)

    put("metrics.json", _text(json.dumps(evaluation_metrics(p, curves, data), indent=2) + "\n"))
    put("classification_report.txt", _text(classification_report_text(p.targets, p.preds, p.classes)))
    put("per_class.csv", _csv(per_class_metrics(p.targets, p.preds, p.classes), index=True))
    put("confusion_matrix.csv", _csv(pd.DataFrame(cm, index=labels, columns=columns), index=True))
    put("confusion_matrix_normalized.csv",
        _csv(pd.DataFrame(normalize_rows(cm), index=labels, columns=columns), index=True))
    put("predictions.csv", _csv(p.frame(), index=False))
    put("roc_pr.csv", _csv(curves["summary"], index=False))
    put_figure("confusion_matrix.png", plot_confusion_matrix(cm, p.classes))
    put_figure("roc_pr.png", plot_roc_pr(curves))
    if history is not None:
        put_figure("curves.png", plot_history(history))
    if dataset is not None:
        put_figure("misclassified.png", plot_misclassified(dataset, p))
    if p.view_weights is not None:
        from .attention import write_attention

        written.update(write_attention(run_dir, p, prefix=prefix))
    return written
