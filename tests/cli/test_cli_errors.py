"""The fishcam command on bad input: one line naming the file or flag and the fix, never a traceback;
nothing deleted or mixed without saying."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_image
from helpers import run_cli

from fishcam_utils import files
from fishcam_utils.cli import main
from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset, load_metadata
from fishcam_utils.training import read_checkpoint, save_checkpoint

TINY_TRAIN = ["--model", "fishresnet", "--width", "4", "--image-size", "32", "--batch-size", "8", "--no-progress"]


@pytest.fixture(scope="module")
def tiny_run(tiny_synth, tmp_path_factory) -> Path:
    """A one-epoch run of a width-4 FishResNet on the tiny dataset. Read-only."""
    run = tmp_path_factory.mktemp("run") / "run"
    assert main(["train", "--data", str(tiny_synth), "--epochs", "1", "--run-dir", str(run), "--no-eval",
                 *TINY_TRAIN]) == 0
    return run


# ------------------------------------------------------------------ arguments, checked before any work


@pytest.mark.parametrize("flag, value, says", [
    ("--image-size", "0", "at least 16"), ("--image-size", "-5", "at least 16"), ("--epochs", "0", "at least 1"),
    ("--batch-size", "0", "at least 1"), ("--lr", "-1", "above 0"), ("--workers", "-1", "at least 0"),
    ("--view-dropout", "2", "below 1"), ("--device", "foo", "cpu, cuda, cuda:N or mps"),
    ("--width", "x", "whole number"),
])
def test_bad_training_arguments_are_refused_up_front(tiny_synth, tmp_path, capsys, flag, value, says):
    code, out, err = run_cli(capsys, "train", "--data", tiny_synth, "--run-dir", tmp_path / "run", flag, value)
    assert code == 2 and f"argument {flag}" in err and says in err
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there")
def test_an_unavailable_device_is_said_before_the_data_is_read(tmp_path, capsys):
    code, out, err = run_cli(capsys, "train", "--data", tmp_path / "nowhere", "--device", "cuda")
    assert code == 2 and "CUDA is not available" in err and "does not exist" not in err


def test_weights_that_do_not_fit_their_recorded_architecture_are_one_line(tiny_run, tiny_synth, tmp_path, capsys):
    checkpoint = read_checkpoint(tiny_run / "best.pt")
    checkpoint["model_config"] = {**checkpoint["model_config"], "width": 8}  # edited: config and weights disagree
    torch.save(checkpoint, tmp_path / "edited.pt")
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "edited.pt", "--out", tmp_path / "e")
    assert code == 2 and "weights do not fit the architecture it records" in err and "edited.pt" in err


def test_a_bug_is_one_line_that_says_how_to_see_more(tmp_path, capsys, monkeypatch):
    import fishcam_utils.data.check as check

    def broken(*args, **kwargs):
        raise KeyError("oops")

    monkeypatch.setattr(check, "check_dataset", broken)
    code, out, err = run_cli(capsys, "check-data", tmp_path)
    assert code == 1 and "internal error: KeyError" in err and "FISHCAM_DEBUG=1" in err
    monkeypatch.setenv("FISHCAM_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["check-data", str(tmp_path)])


# ------------------------------------------------------------------ full and read-only disks


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_leaves_no_temp_file(tiny_synth, small_disk, capsys):
    disk = small_disk("64k")
    code, out, err = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", disk / "run",
                             "--no-eval", *TINY_TRAIN)
    assert code == 2 and str(disk / "run") in err and "disk is full" in err and "--run-dir" in err
    assert not [p for p in (disk / "run").iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_output_folder_is_one_line(tiny_synth, small_disk, capsys):
    disk = small_disk(readonly=True)
    code, out, err = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", disk / "run",
                             "--no-eval", *TINY_TRAIN)
    assert code == 2 and str(disk / "run") in err and "read-only" in err


def test_a_decode_cache_on_a_full_disk_is_an_error_not_a_bus_error(tiny_synth, small_disk, tmp_path):
    disk = small_disk("256k")  # the 128 px training images need about 0.9 MB
    env = {**os.environ, "FISHCAM_CACHE_DIR": str(disk / "cache")}
    done = subprocess.run([sys.executable, "-m", "fishcam_utils.cli", "train", "--data", str(tiny_synth), "--epochs",
                           "1", "--run-dir", str(tmp_path / "run"), "--no-eval", "--image-size", "128",
                           "--no-progress"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])  # a bus error is -7
    assert "not enough space" in done.stderr and str(disk / "cache") in done.stderr and "--no-cache" in done.stderr
    assert "Traceback" not in done.stderr
    assert list((disk / "cache").iterdir()) == []  # no half-written cache left


# ------------------------------------------------------------------ check-data: every problem in one run


def test_check_data_lists_every_problem_of_a_folder_in_one_run(tmp_path, capsys):
    root = tmp_path / "ds"
    for species in ("bass", "trout"):
        for i in range(3):
            write_image(root / species / f"{i}.png")
    (root / "bass" / "notes.txt").write_text("fed on Tuesday")
    (root / "trout" / "1.png").write_bytes(b"not a png")
    (root / "carp").mkdir()
    write_image(root / "trout" / "thumb.png", size=(1, 1))
    code, out, err = run_cli(capsys, "check-data", root)
    assert code == 2 and f"3 problems in {root}" in err
    assert "notes.txt" in err and "--unknown-files skip" in err and "unknown_files=" not in err
    assert "carp has no images" in err
    assert "1 file(s) could not be read" in err and str(root / "trout" / "1.png") in err
    assert "thumb.png (1x1 px)" in err  # a warning, not a problem
    assert "bass" in out  # the counts of what could be read are shown too


@pytest.mark.filterwarnings("ignore::fishcam_utils.errors.DataWarning")  # the renamed view is missing at first
def test_every_fix_a_message_suggests_is_a_flag_that_exists(synth_copy, tmp_path, capsys):
    meta = load_metadata(synth_copy)
    (synth_copy / "train" / meta["species"][0] / "notes.txt").write_text("fed on Tuesday")
    for path in synth_copy.rglob("*_belly.png"):
        path.rename(path.with_name(path.name.replace("_belly", "_bottom")))
    args = ["train", "--data", synth_copy, "--epochs", "1", "--run-dir", tmp_path / "run", "--no-eval", *TINY_TRAIN]
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and "--unknown-files skip" in err and "--views" in err and "views=[" not in err
    code, out, err = run_cli(capsys, *args, "--unknown-files", "skip", "--views", "side,back,bottom")
    assert code == 0, err
    assert read_checkpoint(tmp_path / "run" / "last.pt")["preprocessing"]["scan"]["views"] == ["side", "back", "bottom"]
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", tmp_path / "run" / "best.pt", "--no-progress")
    assert code == 0, err  # read again as it was trained: skipping the notes, with its views


# ------------------------------------------------------------------ nothing deleted or mixed without saying


def test_a_run_folder_with_only_best_pt_is_not_replaced_silently(tiny_run, tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_run / "best.pt", run / "best.pt")
    (run / "eval-test").mkdir()
    (run / "eval-test" / "metrics.json").write_text("{}")
    (run / "tensorboard").mkdir()
    (run / "notes.md").write_text("my notes")
    before = (run / "best.pt").read_bytes()
    args = ["train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run, "--no-eval", *TINY_TRAIN]
    for extra in ([], ["--resume"]):
        code, out, err = run_cli(capsys, *args, *extra)
        assert code == 2 and "best.pt" in err and "--overwrite" in err and "overwrite=True" not in err
        assert (run / "best.pt").read_bytes() == before
    code, out, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert "removed the earlier run's best.pt, eval-test/, tensorboard/" in out
    assert not (run / "eval-test").exists() and not (run / "tensorboard").exists()
    assert (run / "notes.md").read_text() == "my notes"  # not the run's: kept
    assert read_checkpoint(run / "last.pt")["epoch"] == 1


def test_temp_files_of_killed_saves_are_cleared_and_checkpoints_keep_the_umask(tiny_run, tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / ".last.pt.k3x9_z.tmp").write_bytes(b"half")  # what the old mkstemp names looked like
    (run / f".best.pt.{files._HOST}-999999999-0a1b2c3d.tmp").write_bytes(b"half")  # a process that is gone
    previous = os.umask(0o027)
    try:
        code, out, err = run_cli(capsys, "train", "--data", tiny_synth, "--epochs", "1", "--run-dir", run,
                                 "--overwrite", "--no-eval", *TINY_TRAIN)
    finally:
        os.umask(previous)
    assert code == 0, err
    assert "removed 2 temporary file(s)" in out and not list(run.glob(".*.tmp"))
    assert (run / "last.pt").stat().st_mode & 0o777 == 0o640


def test_save_checkpoint_keeps_the_umask(tmp_path):
    model = torch.nn.Linear(2, 2)
    previous = os.umask(0o022)
    try:
        path = save_checkpoint(tmp_path / "a.pt", model)
    finally:
        os.umask(previous)
    assert path.stat().st_mode & 0o777 == 0o644  # mkstemp made 0600


def test_make_data_force_refuses_to_delete_files_of_the_user(tmp_path, capsys):
    out = tmp_path / "ds"
    generate_dataset(out, SyntheticConfig(size=24, fish_per_class=3), workers=1, progress=False)
    (out / "notes.txt").write_text("my notes")
    write_image(out / "train" / "My Own Fish" / "a.png")
    base = ["make-data", "--out", out, "--size", "32", "--fish-per-class", "3", "--workers", "1"]
    code, o, err = run_cli(capsys, *base, "--force")
    assert code == 2 and "2 file(s) that the generator did not write" in err
    assert "notes.txt" in err and "train/My Own Fish/a.png" in err
    assert (out / "notes.txt").is_file() and (out / "train" / "My Own Fish" / "a.png").is_file()
    (out / "notes.txt").unlink()
    shutil.rmtree(out / "train" / "My Own Fish")
    (out / ".DS_Store").write_bytes(b"")  # clutter does not count
    code, o, err = run_cli(capsys, *base, "--force")
    assert code == 0, err
    assert load_metadata(out)["width"].iat[0] == 32


def test_gradcam_into_an_earlier_output_refuses_or_replaces_never_mixes(tiny_run, tmp_path, capsys):
    out = tmp_path / "maps"
    args = ["gradcam", "--checkpoint", tiny_run / "best.pt", "--out", out, "--limit", "4"]
    assert run_cli(capsys, *args)[0] == 0
    stale = out / "correct_samples" / "Old Fish" / "stale_overlay.png"
    write_image(stale)
    code, o, err = run_cli(capsys, *args)
    assert code == 2 and "earlier run" in err and "--overwrite" in err and stale.is_file()
    code, o, err = run_cli(capsys, *args, "--overwrite")
    assert code == 0, err
    assert "removed the earlier maps" in o
    import pandas as pd

    listed = {out / p for p in pd.read_csv(out / "summary.csv")["overlay"]}
    overlays = set(out.rglob("*_overlay.png"))
    assert overlays == listed and len(listed) == 4  # nothing stale beside the new maps


def test_a_checkpoint_on_data_of_other_classes_says_the_class_list_is_the_models(tiny_run, tmp_path, capsys):
    for label in ("cat", "dog"):
        for i in range(3):
            write_image(tmp_path / "pets" / label / f"{i}.png")
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", tiny_run / "best.pt", "--data", tmp_path / "pets")
    assert code == 2 and "has the classes ['cat', 'dog']" in err and "was trained on" in err and "--classes" not in err


def test_an_unknown_colormap_or_notebook_is_said_before_anything_is_written(tiny_run, tmp_path, capsys):
    code, out, err = run_cli(capsys, "gradcam", "--checkpoint", tiny_run / "best.pt", "--out", tmp_path / "maps",
                             "--cmap", "nope")
    assert code == 2 and "unknown colormap 'nope'" in err and not (tmp_path / "maps").exists()
    code, out, err = run_cli(capsys, "course", "--only", "99", "--build", tmp_path / "build")
    assert code == 2 and "no notebook 99" in err and "01, 02" in err and not (tmp_path / "build").exists()


def test_train_says_its_notes_and_evaluate_keeps_the_real_error(tmp_path, capsys):
    root = tmp_path / "plants"
    for split, n in (("train", 6), ("test", 2)):
        for label in (0, 1):
            for i in range(n):
                write_image(root / split / f"{label}_{split}{i}.png", size=(32, 32), colour=(40 + 150 * label, 90, 20))
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--data", root, "--classes", "rose,tulip", "--epochs", "1",
                             "--run-dir", run, "--no-eval", *TINY_TRAIN)
    assert code == 0, err
    assert "note:" in out and "no val folder" in out
    (root / "test" / "notes.txt").write_text("watered on Monday")
    code, out, err = run_cli(capsys, "evaluate", "--checkpoint", run / "best.pt", "--no-progress")
    assert code == 2 and "notes.txt" in err and "--unknown-files skip" in err and "was trained on" not in err


def test_gradcam_shows_progress_and_writes_guided_grad_cam_pictures(tiny_run, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "guided"
    code, o, err = run_cli(capsys, "gradcam", "--checkpoint", tiny_run / "best.pt", "--out", out, "--limit", "3",
                           "--method", "guided-gradcam")
    assert code == 0, err
    assert "guided-gradcam maps: 100%" in err and "3/3" in err  # one batch of three images still has a bar
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"guided-gradcam"} and len(summary) == 3
    for overlay in summary["overlay"]:
        assert (out / overlay.replace("_overlay.png", "_guided.png")).is_file()
    code, o, err = run_cli(capsys, "gradcam", "--checkpoint", tiny_run / "best.pt", "--out", tmp_path / "quiet",
                           "--limit", "3", "--method", "ablationcam", "--no-progress")
    assert code == 0 and "maps:" not in err and "Ablation-CAM" not in err


def test_gradcam_writes_maps_that_need_no_layer_and_refuses_a_layer_for_them(tiny_run, tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "edges"
    code, o, err = run_cli(capsys, "gradcam", "--checkpoint", tiny_run / "best.pt", "--out", out, "--limit", "3",
                           "--method", "edges", "--no-progress")
    assert code == 0, err
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"edges"} and set(summary["layer"]) == {"-"} and len(summary) == 3
    assert all((out / overlay).is_file() for overlay in summary["overlay"])
    code, o, err = run_cli(capsys, "gradcam", "--checkpoint", tiny_run / "best.pt", "--out", tmp_path / "no",
                           "--method", "gradient", "--layer", "layer1")
    assert code == 2 and "--layer layer1: gradient needs no layer" in err and not (tmp_path / "no").exists()
