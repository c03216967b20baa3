"""Evaluation: predictions from a model whose outputs are known, metrics checked against
hand-computed values and independent formulas, figures and report files."""

import matplotlib

matplotlib.use("Agg")
import json
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from numerics import float32_atol
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset

from fishcam_utils import evaluation as ev
from fishcam_utils.data import MultiViewDataset, scan_dataset


def softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class PointSet(Dataset):
    """2-D points with labels, named like images, as the course's datasets are."""

    def __init__(self, x, y, classes=("a", "b", "c"), masks=False):
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.targets = list(y)
        self.classes = list(classes)
        self.frame = pd.DataFrame({"path": [f"/root/img{i}.png" for i in range(len(y))],
                                   "relpath": [f"img{i}.png" for i in range(len(y))]})
        self.masks = masks

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        if self.masks:
            return self.x[i], self.targets[i], {"body": torch.zeros(2, 2, dtype=torch.bool)}
        return self.x[i], self.targets[i]

    def raw(self, i):
        return np.full((6, 6, 3), 40 * i, np.uint8)


def linear_model():
    """logits = (x0, x1, 0): known outputs, so the softmax can be computed by hand."""
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
        model.bias.zero_()
    return model


X = np.array([[3.0, 0.0], [0.0, 2.0], [-1.0, -1.0], [2.5, 0.0], [0.0, 0.5]])
Y = [0, 1, 2, 1, 0]  # the last two are wrong: predicted 0 (p high) and 1 (p lower)


@pytest.fixture
def points():
    return PointSet(X, Y)


# ---------------------------------------------------------------------------------------
# predict


@pytest.mark.numeric
def test_predict_gives_softmax_of_known_logits(points):
    p = ev.predict(linear_model(), points, batch_size=2, progress=False)
    expected = softmax(np.c_[X, np.zeros(len(X))])
    assert p.probs.dtype == np.float32 and p.probs.shape == (5, 3)
    # The logits are exact; a float32 softmax of 3 rounds its exps (within an ulp), a sum of 3 and a division.
    rtol = float32_atol(1.0, terms=3 + 3)
    np.testing.assert_allclose(p.probs, expected, rtol=rtol)
    assert p.targets.dtype == np.int64 and p.targets.tolist() == Y
    assert p.preds.tolist() == [0, 1, 2, 0, 1]
    np.testing.assert_allclose(p.confidence, expected.max(axis=1), rtol=rtol)
    assert p.accuracy == pytest.approx(3 / 5)
    assert p.classes == ["a", "b", "c"] and p.ids == [f"img{i}.png" for i in range(5)]
    # Sample 3 is wrong with p = softmax(2.5, 0, 0)[0] > sample 4's softmax(0, .5, 0)[1].
    assert p.misclassified().tolist() == [3, 4]

    frame = p.frame()
    assert list(frame.columns) == ["id", "true", "pred", "true_name", "pred_name", "confidence", "correct",
                                   "p_a", "p_b", "p_c"]
    assert frame["pred_name"].tolist() == ["a", "b", "c", "a", "b"]
    assert frame["correct"].tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(frame[["p_a", "p_b", "p_c"]].to_numpy(), expected, rtol=rtol)


def test_predict_accepts_a_loader_and_masks_and_subsets():
    data = PointSet(X, Y, masks=True)
    p = ev.predict(linear_model(), DataLoader(data, batch_size=3), progress=False)
    assert p.preds.tolist() == [0, 1, 2, 0, 1] and p.ids[0] == "img0.png"
    # A shuffled loader still pairs each prediction with its label, but ids cannot be known.
    shuffled = ev.predict(linear_model(), DataLoader(data, batch_size=2, shuffle=True), progress=False)
    assert shuffled.ids is None and shuffled.accuracy == pytest.approx(3 / 5)
    sub = ev.predict(linear_model(), Subset(data, [4, 1]), progress=False)
    assert sub.ids == ["img4.png", "img1.png"] and sub.classes == ["a", "b", "c"] and sub.targets.tolist() == [0, 1]


def test_predict_restores_every_module_mode_even_when_the_model_raises(points):
    model = nn.Sequential(linear_model(), nn.BatchNorm1d(3))
    model.train()
    model[1].eval()  # a frozen norm inside a training model must stay frozen
    seen = []
    model.register_forward_hook(lambda m, i, o: seen.append(m.training))
    ev.predict(model, points, progress=False)
    assert seen and not any(seen)
    assert model.training and model[0].training and not model[1].training

    class Broken(nn.Module):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(2, 3)

        def forward(self, x):
            raise RuntimeError("boom")

    broken = Broken().train()
    with pytest.raises(RuntimeError, match="boom"):
        ev.predict(broken, points, progress=False)
    assert broken.training and broken.layer.training
    broken.eval()
    with pytest.raises(RuntimeError):
        ev.predict(broken, points, progress=False)
    assert not broken.training


def test_predict_rejects_bad_outputs(points):
    class Flat(nn.Module):
        def forward(self, x):
            return x.sum(dim=1)

    with pytest.raises(ValueError, match=r"\(batch, classes\) logits"):
        ev.predict(Flat(), points, progress=False)
    with pytest.raises(ValueError, match="num_classes"):
        ev.predict(nn.Linear(2, 4), points, progress=False)


class ViewSet(Dataset):
    """Multi-view style samples: ((views (V, 2), present (V,)), label, masks)."""

    classes = ["x", "y"]

    def __init__(self):
        self.views = torch.tensor([[[1.0, 0.0], [9.0, 9.0]], [[0.0, 2.0], [0.0, 4.0]], [[3.0, 1.0], [1.0, 3.0]]])
        self.present = torch.tensor([[True, False], [True, True], [True, True]])
        self.targets = [0, 1, 1]
        self.fish = pd.DataFrame({"fish_id": ["F1", "F2", "F3"]})

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return (self.views[i], self.present[i]), self.targets[i], {"body": torch.zeros(2, 1, 1, dtype=torch.bool)}


class MeanOfViews(nn.Module):
    """Averages the present views and returns (logits, view_weights), as multi-view models do."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, views, present):
        weights = present.float() / present.float().sum(dim=1, keepdim=True)
        return self.scale * (weights[..., None] * views).sum(dim=1), weights


@pytest.mark.numeric
def test_predict_calls_multi_view_models_with_views_and_present():
    p = ev.predict(MeanOfViews(), ViewSet(), batch_size=2, progress=False)
    # Fish 1 has one view (the 9s are ignored); the others average two.
    logits = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])
    # Exact logits (halves of small integers); a float32 softmax of 2: exps within an ulp, a sum, a division.
    np.testing.assert_allclose(p.probs, softmax(logits), rtol=float32_atol(1.0, terms=2 + 3))
    assert p.ids == ["F1", "F2", "F3"] and p.classes == ["x", "y"]
    assert p.preds.tolist() == [0, 1, 0]


def test_predict_on_the_real_multi_view_dataset_and_its_gallery(tiny_synth):
    data = MultiViewDataset(scan_dataset(tiny_synth).subset(split="test"), image_size=16)
    torch.manual_seed(0)

    class Tiny(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.fc = nn.Linear(3, c)

        def forward(self, views, present):
            return self.fc(views.mean(dim=(1, 3, 4))), present.float()

    p = ev.predict(Tiny(len(data.classes)), data, progress=False)
    assert p.ids == data.fish["fish_id"].tolist() and p.targets.tolist() == data.targets
    fig = ev.plot_misclassified(data, p, n=2)
    images = [ax.get_images()[0].get_array() for ax in fig.axes if ax.get_images()]
    assert len(p.misclassified()) >= 2 and len(images) == 2
    for image in images:  # three 16 px views side by side
        assert image.shape[:2] == (16, 48)
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# metrics


T = [0, 0, 0, 1, 1, 2, 2, 2, 2]
P = [0, 1, 0, 1, 1, 0, 2, 2, 1]


def test_confusion_matrix_by_hand():
    cm = ev.confusion_matrix(T, P, 3)
    expected = np.array([[2, 1, 0],
                         [0, 2, 0],
                         [1, 1, 2]])
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, expected)
    with pytest.raises(ValueError, match=r"preds must lie in \[0, 3\)"):
        ev.confusion_matrix(T, [0] * 8 + [3], 3)
    with pytest.raises(ValueError, match="targets must lie"):
        ev.confusion_matrix([-1], [0], 3)
    with pytest.raises(ValueError, match="same length"):
        ev.confusion_matrix([0, 1], [0], 3)


def test_normalize_rows_leaves_empty_rows_at_zero():
    cm = np.array([[1, 3, 0], [0, 0, 0], [2, 2, 4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = ev.normalize_rows(cm)
    np.testing.assert_allclose(out, [[0.25, 0.75, 0], [0, 0, 0], [0.25, 0.25, 0.5]])
    assert not np.isnan(out).any()


def test_per_class_metrics_by_hand():
    table = ev.per_class_metrics(T, P, ["a", "b", "c"])
    # precision = tp / predicted, recall = tp / true, from the matrix above.
    np.testing.assert_allclose(table["precision"], [2 / 3, 2 / 4, 2 / 2])
    np.testing.assert_allclose(table["recall"], [2 / 3, 2 / 2, 2 / 4])
    np.testing.assert_allclose(table["f1"], [2 / 3, 2 * 0.5 / 1.5, 2 * 0.5 / 1.5])
    assert table["support"].tolist() == [3, 2, 4] and list(table.index) == ["a", "b", "c"]


def test_undefined_precision_and_recall_are_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        table = ev.per_class_metrics([0, 0, 1], [0, 0, 0], ["a", "b", "c"])
        text = ev.classification_report_text([0, 0, 1], [0, 0, 0], ["a", "b", "c"])
    # b is never predicted, c neither predicted nor present.
    assert table.loc["b"].tolist() == [0.0, 0.0, 0.0, 1] and table.loc["c"].tolist() == [0.0, 0.0, 0.0, 0]
    assert table.loc["a", "precision"] == pytest.approx(2 / 3) and table.loc["a", "recall"] == 1.0
    assert "c" in text


def test_classification_report_lines():
    text = ev.classification_report_text(T, P, ["a", "bb", "c"], digits=3)
    lines = {line.split()[0] if line.split()[0] not in ("macro", "weighted") else " ".join(line.split()[:2]):
             line.split() for line in text.splitlines() if line.strip()}
    assert lines["precision"] == ["precision", "recall", "f1-score", "support"]
    assert lines["bb"] == ["bb", "0.500", "1.000", "0.667", "2"]
    assert lines["accuracy"] == ["accuracy", f"{6 / 9:.3f}", "9"]
    macro_p = (2 / 3 + 0.5 + 1) / 3
    assert lines["macro avg"][2] == f"{macro_p:.3f}"
    weighted_r = (3 * 2 / 3 + 2 * 1 + 4 * 0.5) / 9  # equals accuracy, as it always does
    assert lines["weighted avg"][3] == f"{weighted_r:.3f}" == f"{6 / 9:.3f}"


def mann_whitney_auc(positive, scores):
    """AUC as P(score of a positive > score of a negative), ties counting one half."""
    pos, neg = scores[positive], scores[~positive]
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return (greater + 0.5 * ties) / (len(pos) * len(neg))


def ap_by_ranks(positive, scores):
    """Average precision without ties: the mean over positives of the precision at their rank."""
    order = np.argsort(-scores)
    hits = positive[order]
    precision_at_k = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return precision_at_k[hits].mean()


def test_roc_auc_matches_mann_whitney_and_the_trapezoid_of_its_curve():
    rng = np.random.default_rng(0)
    targets = np.repeat([0, 1, 2], 12)
    logits = rng.normal(size=(36, 3)) + 1.2 * np.eye(3)[targets]
    probs = softmax(logits)
    probs[:4, 1] = probs[4:8, 1] = 0.3  # ties in one column, handled by the half counts
    curves = ev.roc_pr_curves(targets, probs, ["a", "b", "c"])
    for k, name in enumerate(["a", "b", "c"]):
        entry = curves["per_class"][name]
        positive = targets == k
        assert entry["roc_auc"] == pytest.approx(mann_whitney_auc(positive, probs[:, k]))
        fpr, tpr = entry["fpr"], entry["tpr"]
        assert entry["roc_auc"] == pytest.approx(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        assert entry["positives"] == 12
        if k != 1:
            assert entry["average_precision"] == pytest.approx(ap_by_ranks(positive, probs[:, k]))
    summary = curves["summary"]
    assert list(summary.columns) == ["class", "roc_auc", "average_precision", "positives"]
    assert curves["macro_roc_auc"] == pytest.approx(summary["roc_auc"].mean())


def test_roc_pr_by_hand_for_two_classes():
    targets = [0, 1, 1, 0, 1]
    p1 = np.array([0.1, 0.9, 0.4, 0.35, 0.8])
    curves = ev.roc_pr_curves(targets, np.c_[1 - p1, p1], ["neg", "pos"])
    # Positives 0.9, 0.8, 0.4 against negatives 0.35, 0.1: every pair ordered right.
    assert curves["per_class"]["pos"]["roc_auc"] == pytest.approx(1.0)
    assert curves["per_class"]["neg"]["roc_auc"] == pytest.approx(1.0)
    assert curves["per_class"]["pos"]["average_precision"] == pytest.approx(1.0)
    # Class "neg" ranked by 1 - p1: 0.9 (neg), 0.65 (neg), 0.6, 0.2, 0.1 → AP = (1 + 1) / 2.
    assert curves["per_class"]["neg"]["average_precision"] == pytest.approx(1.0)
    targets = [0, 1, 0, 1]
    p1 = np.array([0.7, 0.6, 0.2, 0.1])  # positives ranked 2nd and 4th
    curves = ev.roc_pr_curves(targets, np.c_[1 - p1, p1], ["neg", "pos"])
    assert curves["per_class"]["pos"]["roc_auc"] == pytest.approx(1 / 4)  # 1 of 4 pairs right
    assert curves["per_class"]["pos"]["average_precision"] == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_a_class_without_positives_gets_nan_quietly():
    targets = [0, 1, 0, 1]
    probs = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.5, 0.2, 0.3], [0.3, 0.3, 0.4]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves = ev.roc_pr_curves(targets, probs, ["a", "b", "c"])
        fig = ev.plot_roc_pr(curves)
    entry = curves["per_class"]["c"]
    assert np.isnan(entry["roc_auc"]) and np.isnan(entry["average_precision"]) and entry["positives"] == 0
    assert curves["per_class"]["a"]["roc_auc"] == pytest.approx(1.0)
    assert np.isfinite(curves["macro_roc_auc"])
    assert len(fig.axes) == 2
    plt.close(fig)


# ---------------------------------------------------------------------------------------
# plots and report


def history_frame():
    return pd.DataFrame({
        "epoch": [1, 2, 3, 4],
        "train_loss": [1.2, 0.9, 0.7, 0.6],
        "train_acc": [0.4, 0.6, 0.7, 0.75],
        "val_loss": [1.1, np.nan, 0.8, 0.75],
        "val_acc": [0.45, np.nan, 0.65, 0.7],
        "lr": [1e-3, 1e-3, 1e-4, 1e-4],
        "stage": ["head", "head", "finetune", "finetune"],
    })


def test_plots_return_figures_with_the_expected_axes(points):
    fig = ev.plot_history(history_frame())
    assert len(fig.axes) == 3
    stage_lines = [line for line in fig.axes[0].get_lines() if list(line.get_xdata()) == [2.5, 2.5]]
    assert len(stage_lines) == 1
    plt.close(fig)
    fig = ev.plot_history(history_frame().drop(columns=["val_loss", "val_acc", "stage"]))
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="train_loss"):
        ev.plot_history(pd.DataFrame({"epoch": [1]}))

    cm = ev.confusion_matrix(T, P, 3)
    for normalize in (False, True):
        fig = ev.plot_confusion_matrix(cm, ["a", "b", "c"], normalize=normalize)
        heat = fig.axes[0]
        assert len(fig.axes) == 2  # the heatmap and its colour bar
        assert heat.get_xlabel() == "predicted" and heat.get_ylabel() == "true"
        texts = [t.get_text() for t in heat.texts]
        # The first row, read left to right.
        assert texts[:3] == (["0.67", "0.33", "0.00"] if normalize else ["2", "1", "0"])
        plt.close(fig)

    p = ev.predict(linear_model(), points, progress=False)
    fig = ev.plot_misclassified(points, p, n=16)
    titles = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titles == [f"b →\na (p={p.confidence[3]:.2f})", f"a →\nb (p={p.confidence[4]:.2f})"]
    plt.close(fig)
    perfect = ev.Predictions(np.eye(3, dtype=np.float32), [0, 1, 2], ["a", "b", "c"])
    fig = ev.plot_misclassified(PointSet(X[:3], [0, 1, 2]), perfect)
    assert [t.get_text() for t in fig.axes[0].texts] == ["no misclassified images"]
    plt.close(fig)
    with pytest.raises(ValueError, match="do not match"):
        ev.plot_misclassified(Subset(points, [4, 3, 2, 1, 0]), p)


def test_write_evaluation_files(points, tmp_path):
    p = ev.predict(linear_model(), points, progress=False)
    before = plt.get_fignums()
    paths = ev.write_evaluation(tmp_path / "run", p, history=history_frame(), dataset=points, prefix="test_")
    assert plt.get_fignums() == before  # every figure closed
    expected = {"metrics.json", "classification_report.txt", "per_class.csv", "confusion_matrix.csv",
                "confusion_matrix_normalized.csv", "predictions.csv", "roc_pr.csv", "confusion_matrix.png",
                "roc_pr.png", "curves.png", "misclassified.png"}
    assert set(paths) == expected
    # No temp files left.
    assert sorted(f.name for f in (tmp_path / "run").iterdir()) == sorted("test_" + n for n in expected)
    for name in expected:
        assert paths[name].stat().st_size > 0

    metrics = json.loads(paths["metrics.json"].read_text())
    assert metrics["accuracy"] == pytest.approx(p.accuracy) == pytest.approx(0.6)
    assert metrics["n"] == 5 and metrics["classes"] == ["a", "b", "c"]
    table = ev.per_class_metrics(p.targets, p.preds, p.classes)
    assert metrics["macro_f1"] == pytest.approx(table["f1"].mean())
    assert metrics["per_class"]["b"]["support"] == 2

    cm = pd.read_csv(paths["confusion_matrix.csv"], index_col=0)
    np.testing.assert_array_equal(cm.to_numpy(), ev.confusion_matrix(p.targets, p.preds, 3))
    assert list(cm.index) == list(cm.columns) == ["a", "b", "c"]
    normalized = pd.read_csv(paths["confusion_matrix_normalized.csv"], index_col=0).to_numpy()
    np.testing.assert_allclose(normalized.sum(axis=1), [1, 1, 1])
    frame = pd.read_csv(paths["predictions.csv"])
    assert frame["id"].tolist() == p.ids and frame["correct"].sum() == 3
    assert pd.read_csv(paths["roc_pr.csv"])["class"].tolist() == ["a", "b", "c"]
    assert pd.read_csv(paths["per_class.csv"], index_col=0).shape == (3, 4)
    assert "weighted avg" in paths["classification_report.txt"].read_text()

    again = ev.write_evaluation(tmp_path / "run2", p)
    assert "curves.png" not in again and "misclassified.png" not in again


def test_predictions_are_checked():
    with pytest.raises(ValueError, match="classes has 2 names"):
        ev.Predictions(np.ones((2, 3)) / 3, [0, 1], ["a", "b"])
    with pytest.raises(ValueError, match="targets must lie"):
        ev.Predictions(np.ones((2, 3)) / 3, [0, 3], ["a", "b", "c"])
