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
    classification_report_text,
    confusion_matrix,
    normalize_rows,
    per_class_metrics,
    roc_pr_curves,
    summary_metrics,
)
from .plots import plot_confusion_matrix, plot_history, plot_misclassified, plot_roc_pr
from .predict import Predictions, dataset_classes, dataset_ids, predict
from .report import atomic_write, evaluation_metrics, write_evaluation

__all__ = [
    "Predictions", "attention_frame", "atomic_write", "class_view_weights", "deciding_view_report",
    "plot_class_view_weights", "plot_view_weights", "synthetic_deciding_views", "write_attention", "classification_report_text", "confusion_matrix", "dataset_classes",
    "dataset_ids", "evaluation_metrics", "normalize_rows", "per_class_metrics", "plot_confusion_matrix",
    "plot_history", "plot_misclassified", "plot_roc_pr", "predict", "roc_pr_curves", "summary_metrics",
    "write_evaluation",
]
