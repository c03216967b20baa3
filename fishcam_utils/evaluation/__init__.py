"""Evaluating a trained classifier: predictions, metrics, figures and a written report.

Typical use::

    from fishcam_utils import evaluation as ev
    preds = ev.predict(model, test_set)                 # Predictions: probs (N, C), targets, classes, ids
    print(f"accuracy {preds.accuracy:.3f}")
    print(ev.classification_report_text(preds.targets, preds.preds, preds.classes))
    cm = ev.confusion_matrix(preds.targets, preds.preds, len(preds.classes))
    ev.plot_confusion_matrix(cm, preds.classes, normalize=True)
    ev.plot_roc_pr(ev.roc_pr_curves(preds.targets, preds.probs, preds.classes))
    ev.plot_misclassified(test_set, preds, n=16)        # the most confident mistakes
    ev.write_evaluation(run_dir, preds, history=history, dataset=test_set, prefix="test_")

Modules: ``predict`` (running the model), ``metrics`` (numbers), ``plots`` (figures),
``report`` (files in a run folder), ``attention`` (the view weights of multi-view models).
"""

from .attention import (
    attention_frame,
    class_view_weights,
    deciding_view_report,
    plot_class_view_weights,
    plot_view_weights,
    synthetic_deciding_views,
    write_attention,
)
from .metrics import (
    calibration_bins,
    classification_report_text,
    confusion_matrix,
    expected_calibration_error,
    normalize_rows,
    per_class_metrics,
    roc_pr_curves,
    summary_metrics,
)
from .plots import plot_confusion_matrix, plot_history, plot_misclassified, plot_reliability, plot_roc_pr
from .predict import Predictions, dataset_classes, dataset_ids, predict
from .report import evaluation_metrics, write_evaluation

__all__ = [
    "Predictions",
    "attention_frame",
    "calibration_bins",
    "class_view_weights",
    "classification_report_text",
    "confusion_matrix",
    "dataset_classes",
    "dataset_ids",
    "deciding_view_report",
    "evaluation_metrics",
    "expected_calibration_error",
    "normalize_rows",
    "per_class_metrics",
    "plot_class_view_weights",
    "plot_confusion_matrix",
    "plot_history",
    "plot_misclassified",
    "plot_reliability",
    "plot_roc_pr",
    "plot_view_weights",
    "predict",
    "roc_pr_curves",
    "summary_metrics",
    "synthetic_deciding_views",
    "write_attention",
    "write_evaluation",
]
