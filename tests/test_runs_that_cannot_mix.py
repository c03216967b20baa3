"""Runs that cannot mix and inputs that cannot pass for data: a folder being written has one writer,
a run resumes only on its own data, a report is not replaced by another data's, and bad arguments
(an empty validation set, NaN images, a tensor for a dataset, a float image size, a checkpoint
without its fields) are refused by name."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from helpers import run_cli as cli_result
from torch.utils.data import Subset

from fishcam_utils import explain
from fishcam_utils.cli import main
from fishcam_utils.data import make_datasets
from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset
from fishcam_utils.errors import ArgumentError
from fishcam_utils.explain import EigenCAM, GradCAM, GuidedBackprop, make_cam
from fishcam_utils.files import FolderBusyError, hold_folder, lock_path
from fishcam_utils.models import build_model
from fishcam_utils.training import fit, load_checkpoint, save_checkpoint

TINY_TRAIN = ["--model", "fishresnet", "--width", "4", "--image-size", "32", "--batch-size", "8", "--no-progress"]


def run_cli(capsys, *args) -> tuple[int, str]:
    """Exit code and stderr of one command (never a traceback)."""
    code, _, err = cli_result(capsys, *args)
    return code, err


class Holder:
    """Another process that holds ``folder`` (as ``hold_folder`` does) until stopped."""

    def __init__(self, folder: Path, what: str) -> None:
        code = textwrap.dedent(f"""
            import sys, time
            from fishcam_utils.files import hold_folder
            with hold_folder({str(folder)!r}, {what!r}):
                print("held", flush=True)
                time.sleep(120)
        """)
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()


@pytest.fixture(scope="module")
def tiny_run(tiny_synth, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--data", str(tiny_synth), "--epochs", "1", "--run-dir", str(run), *TINY_TRAIN]) == 0
    return run


# ------------------------------------------------------------------ one writer per folder


def test_a_second_training_run_into_a_folder_in_use_is_refused_by_name(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    holder = Holder(run, "fishcam train")
    try:
        code, err = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run, *TINY_TRAIN)
        assert code == 2 and str(run) in err and f"process {holder.process.pid}" in err and "fishcam train" in err
        assert not (run / "last.pt").exists()  # nothing of the second run was written
        with pytest.raises(FolderBusyError, match="being written by process"):
            fit(build_model("fishresnet", 9, width=4, weights=None, verbose=False),
                make_datasets(tiny_synth, image_size=32, progress=False).train, run_dir=run, epochs=1, progress=False)
    finally:
        holder.kill()
    # A killed holder leaves no lock behind: the folder is free at once.
    code, _ = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run, "--no-eval",
                      *TINY_TRAIN)
    assert code == 0 and (run / "last.pt").is_file() and not lock_path(run).exists()


def test_two_make_data_runs_into_one_folder_refuse_another_dataset_and_wait_for_the_same(tmp_path):
    out = tmp_path / "data"
    holder = Holder(out, "the synthetic dataset 0123456789ab")
    try:
        with pytest.raises(FolderBusyError, match="the synthetic dataset 0123456789ab"):
            generate_dataset(out, SyntheticConfig(size=20, fish_per_class=3), progress=False, workers=1)
    finally:
        holder.kill()
    code = textwrap.dedent(f"""
        from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset
        generate_dataset({str(out)!r}, SyntheticConfig(size=20, fish_per_class=6), progress=False, workers=1)
        print("done", flush=True)
    """)
    first = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    # The same dataset asked for meanwhile: waited for, then found made (not drawn twice, not refused).
    again = generate_dataset(out, SyntheticConfig(size=20, fish_per_class=6), progress=False, workers=1)
    assert first.wait(timeout=120) == 0 and first.stdout.read().strip() == "done"
    assert (again / "dataset.json").is_file() and not lock_path(out).exists()


def test_a_process_may_hold_its_own_folder_again(tmp_path):
    with hold_folder(tmp_path / "run", "outer"):
        with hold_folder(tmp_path / "run", "inner"):
            assert lock_path(tmp_path / "run").exists()
    assert not lock_path(tmp_path / "run").exists()


# ------------------------------------------------------------------ a run resumes on its own data only


def test_resume_with_other_data_is_refused(tiny_synth, synth_copy, tmp_path, capsys):
    run = tmp_path / "run"
    assert run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run, "--no-eval",
                   *TINY_TRAIN)[0] == 0
    code, err = run_cli(capsys, "train", "--data", synth_copy, "--epochs", "1", "--run-dir", run, "--resume",
                        "--no-eval", *TINY_TRAIN)
    assert code == 2 and "other data" in err and f"(--data {tiny_synth})" in err
    code, err = run_cli(capsys, "train", "--data", tiny_synth, "--view", "back", "--epochs", "1", "--run-dir", run,
                        "--resume", "--no-eval", *TINY_TRAIN)
    assert code == 2 and "view: 'side' → 'back'" in err
    # Its own data resumes (a finished run: nothing left to do).
    assert run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run, "--resume", "--no-eval",
                   *TINY_TRAIN)[0] == 0


def test_an_empty_validation_set_is_refused(tiny_synth):
    splits = make_datasets(tiny_synth, image_size=32, progress=False)
    with pytest.raises(ValueError, match="val_data is empty.*val_data=None"):
        fit(build_model("fishresnet", 9, width=4, weights=None, verbose=False), splits.train, Subset(splits.val, []),
            epochs=1, progress=False)


# ------------------------------------------------------------------ a report says which data it measured


def test_evaluate_on_other_data_does_not_replace_the_report_silently(tiny_run, tiny_synth, synth_copy, capsys):
    report = tiny_run / "eval-test" / "metrics.json"
    first = json.loads(report.read_text())
    assert first["data"]["data_root"] == str(tiny_synth) and first["data"]["split"] == "test"
    code, err = run_cli(capsys, "evaluate", "--checkpoint", tiny_run / "best.pt", "--data", synth_copy, "--no-progress")
    assert code == 2 and "other data" in err and "--overwrite" in err
    assert json.loads(report.read_text()) == first
    assert run_cli(capsys, "evaluate", "--checkpoint", tiny_run / "best.pt", "--no-progress")[0] == 0  # the same data
    assert run_cli(capsys, "evaluate", "--checkpoint", tiny_run / "best.pt", "--data", synth_copy, "--overwrite",
                   "--no-progress")[0] == 0
    assert json.loads(report.read_text())["data"]["data_root"] == str(synth_copy)


# ------------------------------------------------------------------ inputs that cannot pass for images


@pytest.fixture(scope="module")
def model_and_images(tiny_run):
    model, _ = load_checkpoint(tiny_run / "best.pt")
    return model, torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("method", ["gradcam", "eigencam", "scorecam", "guided"])
def test_nan_images_are_refused_by_index_not_explained(model_and_images, method):
    model, x = model_and_images
    x = x.clone()
    x[1, 0, 3, 3] = float("nan")
    explainer = GuidedBackprop(model) if method == "guided" else make_cam(method, model, "layer2")
    # Before: Grad-CAM "explained" class 0 with a zero map, Eigen-CAM raised a bare LinAlgError.
    with pytest.raises(ArgumentError, match=r"image\(s\) \[1\] hold NaN or inf"):
        explainer(x)


def test_broken_weights_are_refused_by_the_images_they_break(model_and_images):
    model, x = model_and_images
    broken = build_model("fishresnet", 9, width=4, weights=None, verbose=False).eval()
    with torch.no_grad():
        broken.fc.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match=r"outputs for image\(s\) \[0, 1, 2\] are NaN or inf"):
        GradCAM(broken, "layer2")(x)


@pytest.mark.parametrize("bad, says", [
    (lambda x: x[0], r"batch \(N, C, H, W\).*image\[None\]"),
    (lambda x: x[:, :1], "1 channels.*takes 3.*repeat it 3 times"),
    (lambda x: (x * 255).to(torch.uint8), "hold floats.*uint8"),
    (lambda x: x.numpy(), "float image tensor.*ndarray"),
])
def test_images_of_the_wrong_rank_channels_or_type_are_refused_by_name(model_and_images, bad, says):
    model, x = model_and_images
    with pytest.raises(ArgumentError, match=says):
        EigenCAM(model, "layer2")(bad(x))


def test_fit_and_make_datasets_name_an_argument_of_the_wrong_type(tiny_synth):
    model = build_model("fishresnet", 9, width=4, weights=None, verbose=False)
    with pytest.raises(ArgumentError, match=r"train_data must be a Dataset.*tensor \(3, 3, 32, 32\).*TensorDataset"):
        fit(model, torch.zeros(3, 3, 32, 32))
    with pytest.raises(ArgumentError, match="model must be a torch nn.Module, got str"):
        fit("checkpoints/run/best.pt", make_datasets(tiny_synth, image_size=32, progress=False).train)
    with pytest.raises(ArgumentError, match="image_size must be a whole number of pixels.*got 33.5"):
        make_datasets(tiny_synth, image_size=33.5, progress=False)


# ------------------------------------------------------------------ what the docs say exists, and checkpoints


def test_the_docs_export_cams_call_works_on_a_subset(tiny_run, tiny_synth, tmp_path):
    docs = " ".join((Path(__file__).resolve().parent.parent / "docs" / "explanations.md").read_text().split())
    assert 'explain.export_cams(make_cam("gradcam", model, "layer2"), splits.test, "build/gradcam", limit=50)' in docs
    model, checkpoint = load_checkpoint(tiny_run / "best.pt")
    splits = make_datasets(tiny_synth, image_size=32, progress=False, classes=checkpoint["classes"])
    summary = explain.export_cams(make_cam("gradcam", model, "layer2"), Subset(splits.test, [0, 3]), tmp_path / "cams",
                                  progress=False)
    assert summary["id"].tolist() == [splits.test.frame["relpath"].iat[i] for i in (0, 3)]
    assert all((tmp_path / "cams" / path).is_file() for path in summary["overlay"])


def test_a_checkpoint_without_its_fields_is_one_line_naming_them(tiny_run, tmp_path, capsys):
    state = torch.load(tiny_run / "best.pt", weights_only=True)
    del state["model_config"]
    torch.save(state, tmp_path / "odd.pt")
    with pytest.raises(ValueError, match="has no 'model_config'"):
        load_checkpoint(tmp_path / "odd.pt")
    code, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "odd.pt", "--no-progress")
    assert code == 2 and "has no 'model_config'" in err and "internal error" not in err
    code, err = run_cli(capsys, "evaluate", "--checkpoint", tiny_run, "--no-progress")
    assert code == 2 and "is a folder" in err and "best.pt" in err


def test_a_checkpoint_saved_by_save_checkpoint_still_reads(tmp_path):
    model = build_model("fishresnet", 3, width=4, weights=None, verbose=False)
    save_checkpoint(tmp_path / "m.pt", model, classes=["a", "b", "c"])
    again, checkpoint = load_checkpoint(tmp_path / "m.pt")
    assert checkpoint["classes"] == ["a", "b", "c"] and os.path.getsize(tmp_path / "m.pt") > 0


# ------------------------------------------------------------------ more inputs a new user meets, each named


def test_data_arguments_of_the_wrong_kind_are_named(tiny_synth, tmp_path):
    from fishcam_utils.data import FishImageDataset
    from fishcam_utils.data.species import class_names

    with pytest.raises(ArgumentError, match="augment must be a number >= 0"):
        make_datasets(tiny_synth, image_size=32, augment=-1, progress=False)
    with pytest.raises(ArgumentError, match="root must be the path of a dataset folder.*ConcatDataset"):
        make_datasets([tiny_synth, tiny_synth], image_size=32, progress=False)
    with pytest.raises(ArgumentError, match="index must be a DatasetIndex.*make_datasets"):
        FishImageDataset(str(tiny_synth))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match="is a file, not a folder"):
        generate_dataset(tmp_path / "afile", SyntheticConfig(size=20, fish_per_class=3), progress=False, workers=1)
    assert class_names("source") != class_names() and len(class_names("course")) == 9
    with pytest.raises(ValueError, match="no species table 'kaggle'"):
        class_names("kaggle")


def test_a_one_class_folder_is_refused_by_make_datasets_and_check_data(tmp_path, capsys):
    one = generate_dataset(tmp_path / "d", SyntheticConfig(size=20, fish_per_class=3), progress=False, workers=1)
    for extra in (one / "train", one / "val", one / "test"):
        for folder in sorted(extra.iterdir())[1:]:
            shutil.rmtree(folder)
    with pytest.raises(ValueError, match="one class only.*at least two"):
        make_datasets(one, image_size=20, progress=False)
    code, err = run_cli(capsys, "check-data", one, "--no-decode")
    assert code == 2 and "one class only" in err


@pytest.mark.parametrize("options, says", [
    ({"epochs": "2"}, "epochs must be a whole number, got '2'"),
    ({"lr": "fast"}, "lr must be a number, got 'fast'"),
    ({"seed": None}, "seed must be a whole number, got None"),
    ({"epochs": 2.5}, "epochs must be a whole number"),
])
def test_training_options_of_the_wrong_kind_are_named(tiny_synth, options, says):
    model = build_model("fishresnet", 9, width=4, weights=None, verbose=False)
    with pytest.raises(ValueError, match=says):
        fit(model, make_datasets(tiny_synth, image_size=32, progress=False).train, progress=False, **options)


def test_run_folder_mistakes_are_said_before_any_training(tiny_synth, tmp_path, capsys):
    model = build_model("fishresnet", 9, width=4, weights=None, verbose=False)
    train = make_datasets(tiny_synth, image_size=32, progress=False).train
    with pytest.raises(ValueError, match="resume=True continues the run saved in a run folder: pass its run_dir"):
        fit(model, train, resume=True, epochs=1, progress=False)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a run folder"):
        fit(model, train, run_dir=tmp_path / "afile", epochs=1, progress=False)
    fit(model, train, run_dir=tmp_path / "new", resume=True, epochs=1, progress=False)
    assert "nothing to resume in" in capsys.readouterr().out  # said with progress bars off too
    fit(build_model("resnet18", 9, weights=None, verbose=False), train, freeze_epochs=1, epochs=1, batch_size=8)
    assert "freeze_epochs=1 >= epochs=1: only the head trains" in capsys.readouterr().out


def test_checkpoint_paths_and_fields_of_the_wrong_kind_are_named(tiny_run, tmp_path):
    from fishcam_utils.training import load_model_state, read_checkpoint

    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="cannot read .*notes.txt as a checkpoint") as info:
        load_checkpoint(tmp_path / "notes.txt")
    assert "weights_only=False" not in str(info.value)  # never the advice to load unsafely
    model = build_model("fishresnet", 9, width=4, weights=None, verbose=False)
    with pytest.raises(ArgumentError, match="path must be the file name of a checkpoint"):
        load_checkpoint(model)
    with pytest.raises(ValueError, match="device .gpu. is not a device"):
        load_checkpoint(tiny_run / "best.pt", device="gpu")  # before: a bare torch error
    with pytest.raises(ArgumentError, match="path must be a file name.*takes the path first"):
        save_checkpoint(model, tmp_path / "x.pt")
    with pytest.raises(IsADirectoryError, match="is a folder: give the checkpoint a file name"):
        save_checkpoint(tmp_path, model)
    with pytest.raises(NotADirectoryError, match="notes.txt is a file"):
        save_checkpoint(tmp_path / "notes.txt" / "x.pt", model)
    state = read_checkpoint(tiny_run / "best.pt")
    rebuilt = load_model_state(build_model("fishresnet", 9, width=4, weights=None, verbose=False), tiny_run / "best.pt")
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.state_dict().values(), state["model_state"].values()))


def test_prediction_and_explanation_inputs_of_the_wrong_kind_are_named(tiny_run, tiny_synth, model_and_images):
    from fishcam_utils.evaluation import predict
    from fishcam_utils.explain.judging.metrics import deletion_curve, energy_in_mask
    from fishcam_utils.explain.overlay import overlay_heatmap
    from fishcam_utils.training.engine import evaluate

    model, x = model_and_images
    splits = make_datasets(tiny_synth, image_size=32, progress=False)
    with pytest.raises(ArgumentError, match="model must be a torch nn.Module, got str"):
        predict(str(tiny_run / "best.pt"), splits.test)
    with pytest.raises(ArgumentError, match=r"image\(s\) \[2\] hold NaN"):
        nan = x.clone()
        nan[2] = float("nan")
        predict(model, torch.utils.data.TensorDataset(nan, torch.zeros(3, dtype=torch.long)), progress=False)
    with pytest.raises(ArgumentError, match="float64 but the model's weights are torch.float32"):
        GradCAM(model, "layer2")(x.double())
    with pytest.raises(ArgumentError, match="empty batch"):
        GradCAM(model, "layer2")(x[:0])
    with pytest.raises(ArgumentError, match="model must be a torch nn.Module"):
        GradCAM("checkpoints/run/best.pt", "layer2")
    with pytest.raises(ValueError, match="not a name.*classes.index"):
        GradCAM(model, "layer2")(x, targets="Zebra Darter")
    with pytest.raises(TypeError, match="GradCAM takes no option batch_size; its options are progress"):
        make_cam("gradcam", model, "layer2", batch_size=4)
    with pytest.raises(ArgumentError, match="loader must be a DataLoader"):
        evaluate(model, splits.test, torch.device("cpu"))
    maps = torch.rand(3, 32, 32)
    with pytest.raises(ValueError, match="masks must be True/False.*masks > 0"):
        energy_in_mask(maps, (torch.rand(3, 32, 32) > 0.5).to(torch.uint8) * 255)
    with pytest.raises(ValueError, match=r"maps \[1\] hold NaN"):
        energy_in_mask(torch.stack([maps[0], torch.full((32, 32), float("nan")), maps[2]]),
                       torch.ones(3, 32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="targets must be classes of the model, 0 to 8; got"):
        deletion_curve(model, x, maps, 99, steps=2)
    with pytest.raises(ValueError, match=r"\(3, H, W\).*to_display"):
        overlay_heatmap(x[0], maps[0])


def test_export_and_explorer_arguments_are_checked_before_any_work(tiny_run, tiny_synth, model_and_images, tmp_path):
    from fishcam_utils.widgets import CamExplorer

    model, _ = model_and_images
    test = make_datasets(tiny_synth, image_size=32, progress=False).test
    cam = make_cam("gradcam", model, "layer2")
    with pytest.raises(ArgumentError, match="cam must be an explainer, e.g. make_cam"):
        explain.export_cams("gradcam", test, tmp_path / "a")
    with pytest.raises(ArgumentError, match="dataset must be a Dataset"):
        explain.export_cams(cam, torch.zeros(2, 3, 32, 32), tmp_path / "a")
    with pytest.raises(ArgumentError, match="limit must be a whole number >= 1"):
        explain.export_cams(cam, test, tmp_path / "a", limit=-1)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(FileExistsError, match="is a file, not a folder for the maps"):
        explain.export_cams(cam, test, tmp_path / "afile")
    for options, says in (({"start": 999}, "start must be the position of an image"), ({"alpha": 2}, "alpha"),
                          ({"size": -10}, "size")):
        with pytest.raises(ValueError, match=says):
            CamExplorer(model, test, **options)
    with pytest.raises(ValueError, match="classes names 2 classes but the model predicts 9"):
        CamExplorer(model, test, classes=["a", "b"])
    with pytest.raises(ArgumentError, match="model must be a torch nn.Module"):
        CamExplorer("best.pt", test)


def test_a_learning_rate_that_diverges_with_finite_numbers_is_warned_of(tiny_synth):
    train = make_datasets(tiny_synth, image_size=32, progress=False).train
    model = build_model("fishresnet", 9, width=4, weights=None, verbose=False)
    # Adam's steps are bounded by the rate: the weights grow huge, BatchNorm keeps the numbers finite.
    with pytest.warns(UserWarning, match="the weights are diverging.*lr=1000.0"):
        fit(model, train, lr=1e3, optimizer="adam", schedule="none", epochs=3, batch_size=8, progress=False)


def test_a_folder_named_two_ways_is_one_folder_to_its_holder(tmp_path, monkeypatch):
    (tmp_path / "a").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    with hold_folder("../runs/x", "fishcam train"):  # its parent does not exist yet
        with hold_folder(tmp_path / "runs" / "x", "a training run"):
            assert lock_path(tmp_path / "runs" / "x").exists()


def test_a_wrapper_that_relabels_keeps_its_own_labels_and_the_wrapped_ids(tiny_synth):
    from fishcam_utils.data.introspection import dataset_facts

    class Binary(torch.utils.data.Dataset):
        """Zebra Darter or not: the wrapped samples with labels of its own."""

        def __init__(self, dataset) -> None:
            self.dataset = dataset

        def __len__(self) -> int:
            return len(self.dataset)

        def __getitem__(self, i):
            image, label = self.dataset[i]
            return image, int(label == 0)

    train = make_datasets(tiny_synth, image_size=32, progress=False).train
    facts = dataset_facts(Binary(train))
    assert facts.classes is None and facts.targets is None  # not the wrapped dataset's nine
    assert facts.ids == dataset_facts(train).ids and facts.image_size == 32
    result = fit(build_model("fishresnet", 2, width=4, weights=None, verbose=False), Binary(train), epochs=1,
                 class_weights="balanced", batch_size=8, progress=False)
    assert result.history["train_loss"].notna().all()


def test_a_report_of_an_older_version_is_replaced_and_train_checks_its_report_first(tiny_run, tiny_synth, synth_copy,
                                                                                    tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    report = run / "eval-test" / "metrics.json"
    older = json.loads(report.read_text())
    del older["data"]  # as written before reports recorded their data
    report.write_text(json.dumps(older))
    assert run_cli(capsys, "evaluate", "--checkpoint", run / "best.pt", "--no-progress")[0] == 0
    assert json.loads(report.read_text())["data"]["data_root"] == str(tiny_synth)
    # A run whose test report is of other data is refused before it trains, with a fix that keeps the run.
    shutil.copytree(run, tmp_path / "other")
    assert run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "other" / "best.pt", "--data", synth_copy,
                   "--overwrite", "--no-progress")[0] == 0
    code, err = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", tmp_path / "other",
                        "--resume", *TINY_TRAIN)
    assert code == 2 and "--no-eval" in err and "other data" in err


def test_a_report_of_the_same_data_that_records_less_is_replaced(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    # The run's own test data (another test evaluates the shared run on a copy of it).
    assert run_cli(capsys, "evaluate", "--checkpoint", run / "best.pt", "--overwrite", "--no-progress")[0] == 0
    report = run / "eval-test" / "metrics.json"
    older = json.loads(report.read_text())
    assert "dataset_json" in older["data"]
    del older["data"]["dataset_json"]  # as written before the record held the digest of dataset.json
    report.write_text(json.dumps(older))
    assert run_cli(capsys, "evaluate", "--checkpoint", run / "best.pt", "--no-progress")[0] == 0
    assert "dataset_json" in json.loads(report.read_text())["data"]


@pytest.mark.parametrize("bad, says", [
    (lambda x: (x * 255).to(torch.uint8), "hold floats"),
    (lambda x: x[:, :1], "1 channels.*takes 3"),
    (lambda x: x.double(), "float64 but the model's weights are torch.float32"),
])
def test_predict_names_batches_the_model_cannot_take(model_and_images, bad, says):
    from fishcam_utils.evaluation import predict

    model, x = model_and_images
    with pytest.raises(ArgumentError, match=says):
        predict(model, torch.utils.data.TensorDataset(bad(x), torch.zeros(3, dtype=torch.long)), progress=False)


def test_one_class_of_training_data_and_one_image_for_guided_backprop_are_named(model_and_images):
    model, x = model_and_images
    one_class = torch.utils.data.TensorDataset(torch.randn(4, 3, 32, 32), torch.zeros(4, dtype=torch.long))
    one_class.classes = ["Zebra Darter"]
    with pytest.raises(ValueError, match="one class only"):
        fit(build_model("fishresnet", 9, width=4, weights=None, verbose=False), one_class, epochs=1, progress=False)
    with pytest.raises(ArgumentError, match=r"batch of images \(N, C, H, W\).*image\[None\]"):
        GuidedBackprop(model)(x[0])
