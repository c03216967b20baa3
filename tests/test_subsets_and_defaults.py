"""Subsets are datasets too (classes, labels, image size and ids read through Subset, random_split,
ConcatDataset and TensorDataset), a loss that stops being a number stops training, and each
reading default is declared once, so that check-data and train agree on a folder."""

from __future__ import annotations

import inspect
import json

import pytest
import torch
from torch.utils.data import ConcatDataset, Dataset, Subset, TensorDataset, random_split

from fishcam_utils import settings
from fishcam_utils.cli import build_parser, main
from fishcam_utils.data import FishImageDataset, check_dataset, make_datasets, scan_dataset
from fishcam_utils.data.introspection import dataset_facts
from fishcam_utils.data.layouts import survey
from fishcam_utils.errors import TrainingDiverged
from fishcam_utils.evaluation import predict
from fishcam_utils.models import build_model
from fishcam_utils.training import fit, load_checkpoint
from fishcam_utils.training.config import TrainConfig
from fishcam_utils.training.optim import class_weights_for

QUIET = {"epochs": 1, "batch_size": 8, "progress": False}


@pytest.fixture(scope="module")
def splits(tiny_synth):
    return make_datasets(tiny_synth, image_size=32, progress=False, cache=False)


def small_model(classes: int = 9):
    return build_model("fishresnet", classes, width=4, weights=None, verbose=False)


def uneven_rows(dataset) -> list[int]:
    """Rows of ``dataset`` with classes 0 and 1 only, three of class 0 to one of class 1, so that
    balanced weights differ from those of the whole (even) dataset."""
    zeros = [i for i, t in enumerate(dataset.targets) if t == 0][:3]
    ones = [i for i, t in enumerate(dataset.targets) if t == 1][:1]
    return zeros + ones


# ------------------------------------------------------------------ what a dataset holds, through wrappers


def test_facts_are_read_through_nested_subsets_random_split_and_concatenation(splits):
    train = splits.train
    rows = [5, 0, 3, 7]
    inner = Subset(Subset(train, list(range(len(train)))[::-1]), rows)  # nested: rows of the reversed order
    expected = [len(train) - 1 - r for r in rows]
    facts = dataset_facts(inner)
    assert facts.classes == splits.classes and facts.image_size == 32 and facts.view == "side"
    assert facts.targets == [train.targets[i] for i in expected]
    assert facts.ids == [train.frame["relpath"].iat[i] for i in expected]
    a, b = random_split(train, [0.5, 0.5], generator=torch.Generator().manual_seed(0))
    joined = dataset_facts(ConcatDataset([a, b]))
    assert joined.targets == [train.targets[i] for i in list(a.indices) + list(b.indices)]
    assert joined.classes == splits.classes and joined.index is not None and joined.length == len(train)
    multiview = make_datasets(splits.index.root, image_size=32, progress=False, cache=False, multiview=True).test
    facts = dataset_facts(Subset(multiview, [1]))
    assert facts.views == ["side", "back", "belly"] and facts.ids == [multiview.fish["fish_id"].iat[1]]


def test_a_concatenation_of_datasets_with_other_classes_is_refused(splits, tiny_synth):
    other = make_datasets(tiny_synth, image_size=32, progress=False, cache=False, classes=splits.classes[::-1])
    with pytest.raises(ValueError, match="different classes"):
        dataset_facts(ConcatDataset([splits.train, other.train]))


def test_a_tensor_dataset_gives_its_labels_and_image_size():
    images, labels = torch.zeros(6, 3, 20, 20), torch.tensor([0, 2, 1, 1, 0, 2])
    facts = dataset_facts(Subset(TensorDataset(images, labels), [1, 2]))
    assert facts.targets == [2, 1] and facts.image_size == 20 and facts.classes is None


# ------------------------------------------------------------------ fit, evaluate and checkpoints on subsets


def test_fit_on_a_subset_with_balanced_weights_trains_on_finite_losses_and_records_the_data(splits, tmp_path):
    rows = uneven_rows(splits.train)
    subset = Subset(splits.train, rows)
    # Before, the weights came from the Subset's (absent) targets: all zero, a 0/0 loss, NaN for every epoch.
    result = fit(small_model(), subset, splits.val, class_weights="balanced", run_dir=tmp_path / "run", **QUIET)
    assert (result.history["train_loss"].notna().all()
            and torch.isfinite(torch.tensor(result.history["train_loss"])).all())
    model, checkpoint = load_checkpoint(result.last_path)
    assert checkpoint["classes"] == splits.classes and checkpoint["preprocessing"]["image_size"] == 32
    assert checkpoint["preprocessing"]["data_root"] == str(splits.index.root)
    assert checkpoint["data_identity"]["samples"] == len(rows)
    # The weights are those of the labels trained on (classes 0 and 1, unevenly): n / (C n_c).
    labels = [splits.train.targets[i] for i in rows]
    n0, n1 = labels.count(0), labels.count(1)
    assert n0 > n1 > 0 and dataset_facts(subset).targets == labels
    weights = class_weights_for(TrainConfig(class_weights="balanced"), dataset_facts(subset).targets, 9)
    assert (weights[0].item() == pytest.approx(len(rows) / (9 * n0))
            and weights[1].item() == pytest.approx(len(rows) / (9 * n1)))
    assert (weights[2:] == 0).all()
    p = predict(model, Subset(splits.test, [0, 2, 4]), progress=False)
    assert p.classes == splits.classes and p.ids == [splits.test.frame["relpath"].iat[i] for i in (0, 2, 4)]


def test_fit_on_random_split_and_concatenation_writes_checkpoints_that_evaluate(splits, tmp_path, capsys):
    a, b = random_split(splits.train, [0.5, 0.5], generator=torch.Generator().manual_seed(1))
    run = tmp_path / "run"
    fit(small_model(), ConcatDataset([a, b]), Subset(splits.val, list(range(len(splits.val)))), run_dir=run, **QUIET)
    _, checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["classes"] == splits.classes and checkpoint["preprocessing"]["image_size"] == 32
    # fishcam evaluate reads the data the checkpoint names, at its size (before: 64 px, a fallback).
    assert main(["evaluate", "--checkpoint", str(run / "last.pt"), "--no-progress"]) == 0
    metrics = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert metrics["data"]["image_size"] == 32 and metrics["n"] == len(splits.test)


def test_a_model_of_ones_own_on_a_tensor_dataset_gets_class_names_and_the_image_size(tmp_path):
    torch.manual_seed(0)
    data = TensorDataset(torch.randn(12, 3, 16, 16), torch.arange(12) % 3)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 3))
    fit(model, data, run_dir=tmp_path / "run", class_weights="balanced", **QUIET)
    checkpoint = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert checkpoint["classes"] == ["0", "1", "2"] and checkpoint["preprocessing"]["image_size"] == 16


def test_labels_beyond_the_models_classes_are_refused_by_name(splits):
    data = TensorDataset(torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 9]))
    with pytest.raises(ValueError, match="labels run from 0 to 9.*num_classes=10"):
        fit(small_model(), data, **QUIET)


# ------------------------------------------------------------------ a loss that is no longer a number


class NaNFromSecondEpoch(Dataset):
    """Finite images for the first pass over it, NaN images after. (A wrapper of the same samples in
    ``.dataset``: fit reads classes and image size through it, without reading a sample.)"""

    def __init__(self, dataset) -> None:
        self.dataset, self.reads = dataset, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i):
        self.reads += 1
        image, label = self.dataset[i]
        return (image if self.reads <= len(self.dataset) else torch.full_like(image, float("nan"))), label


def test_nan_images_stop_training_at_once_and_the_last_good_checkpoint_stays(splits, tmp_path):
    run = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"at epoch 2, batch 1 of \d+.*images hold NaN.*epoch 1, the last good"):
        fit(small_model(), NaNFromSecondEpoch(splits.train), run_dir=run, **{**QUIET, "epochs": 3})
    model, checkpoint = load_checkpoint(run / "last.pt")
    assert checkpoint["epoch"] == 1 and all(torch.isfinite(p).all() for p in model.parameters())
    assert len(checkpoint["history"]) == 1


def test_a_diverging_learning_rate_is_named(splits):
    with pytest.raises(TrainingDiverged, match="learning rate is likely too high.*lr=100000000.0"):
        fit(small_model(), splits.train, splits.val, optimizer="sgd", lr=1e8, schedule="none",
            **{**QUIET, "epochs": 3})


def test_zero_class_weights_are_named_as_the_cause(splits):
    with pytest.raises(TrainingDiverged, match="class weights"):
        fit(small_model(), splits.train, class_weights=[0.0] * 9, **QUIET)


# ------------------------------------------------------------------ one default per setting


def test_every_reader_and_command_shares_one_missing_views_unknown_files_and_cache_default():
    from fishcam_utils.data import ScanOptions

    # The reading options' one default is ScanOptions's; a reader's keyword left out (None) takes it.
    defaults = ScanOptions()
    assert defaults.missing_views == settings.MISSING_VIEWS and defaults.unknown_files == settings.UNKNOWN_FILES
    for function in (survey, scan_dataset, check_dataset, make_datasets):
        parameters = inspect.signature(function).parameters
        for name in ("layout", "views", "missing_views", "unknown_files"):
            assert parameters[name].default is None, (function.__name__, name)
    assert inspect.signature(make_datasets).parameters["cache"].default == settings.USE_CACHE
    assert inspect.signature(FishImageDataset).parameters["cache"].default == settings.USE_CACHE
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in ("check-data", "train"):
        defaults = {a.dest: a.default for a in commands[name]._actions}
        assert (defaults["missing_views"] == settings.MISSING_VIEWS
                and defaults["unknown_files"] == settings.UNKNOWN_FILES)


def test_the_image_size_defaults_to_the_courses_everywhere(tiny_synth, monkeypatch):
    monkeypatch.setenv(settings.SIZE_ENV, "40")
    assert make_datasets(tiny_synth, progress=False, cache=False).train.image_size == 40
    assert FishImageDataset(scan_dataset(tiny_synth).subset(view="side"), cache=False).image_size == 40
    with pytest.raises(TypeError, match="image_size must be a whole number of pixels"):
        make_datasets(tiny_synth, image_size=33.5, progress=False)


def test_check_data_and_train_agree_on_a_folder_with_a_fish_missing_a_view(synth_copy, tmp_path, capsys):
    next((synth_copy / "train").rglob("*_back.png")).unlink()
    tiny = ["--model", "fishresnet", "--width", "4", "--image-size", "32", "--epochs", "1", "--batch-size", "8",
            "--no-progress", "--no-eval"]
    assert main(["check-data", str(synth_copy), "--no-decode"]) != 0
    checked = capsys.readouterr().err
    # Before, train kept such fish unasked (its default was "keep") while check-data refused the folder.
    assert main(["train", "--data", str(synth_copy), "--run-dir", str(tmp_path / "a"), *tiny]) == 2
    refused = capsys.readouterr().err
    assert "--missing-views keep" in checked and "--missing-views keep" in refused
    assert main(["check-data", str(synth_copy), "--no-decode", "--missing-views", "keep"]) == 0
    assert main(["train", "--data", str(synth_copy), "--run-dir", str(tmp_path / "b"), "--missing-views", "keep",
                 *tiny]) == 0


def test_the_weight_decay_help_says_what_each_optimiser_does():
    text = TrainConfig.__dataclass_fields__["weight_decay"].metadata["help"]
    assert "decoupled" in text and "adamw" in text and "L2" in text and "adam and sgd" in text

