"""`fishcam train` and `fishcam evaluate`, and training under torchrun with DDP (gloo, 2 CPU processes)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from fishcam_utils.cli import MODEL_CHOICES, main
from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset
from fishcam_utils.models import backbone_names
from fishcam_utils.training import load_checkpoint, read_checkpoint

TINY_TRAIN = ["--model", "fishresnet", "--width", "4", "--image-size", "32", "--batch-size", "8", "--no-progress"]


def test_the_cli_offers_every_model():
    assert list(MODEL_CHOICES) == backbone_names()


def test_train_writes_a_run_folder_and_evaluate_reproduces_its_test_accuracy(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_synth), "--epochs", "2", "--run-dir", str(run), *TINY_TRAIN]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and str(run) in out
    for name in ("best.pt", "last.pt", "history.csv", "eval-test/metrics.json", "eval-test/confusion_matrix.csv",
                 "eval-test/classification_report.txt", "eval-test/roc_pr.png", "eval-test/misclassified.png"):
        assert (run / name).is_file(), name
    trained = json.loads((run / "eval-test" / "metrics.json").read_text())["accuracy"]

    out_dir = tmp_path / "again"
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--out", str(out_dir), "--no-progress"]) == 0
    again = json.loads((out_dir / "metrics.json").read_text())
    assert again["accuracy"] == pytest.approx(trained)
    predictions = pd.read_csv(out_dir / "predictions.csv")
    assert (len(predictions) == again["n"]
            and (predictions["true"] == predictions["pred"]).mean() == pytest.approx(trained))
    # The confusion matrix's diagonal holds the correct predictions.
    matrix = pd.read_csv(out_dir / "confusion_matrix.csv", index_col=0)
    assert matrix.to_numpy().trace() == (predictions["true"] == predictions["pred"]).sum()


def test_train_refuses_to_replace_a_run_and_resumes_it(tiny_synth, tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--data", str(tiny_synth), "--run-dir", str(run), "--no-eval", *TINY_TRAIN]
    assert main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "1"]) == 2
    assert "resume" in capsys.readouterr().err
    assert main([*args, "--epochs", "1", "--resume"]) == 0  # already finished: nothing more to do
    assert read_checkpoint(run / "last.pt")["epoch"] == 1


def test_bad_arguments_get_one_line_errors(tiny_synth, tmp_path, capsys):
    assert main(["train", "--data", str(tiny_synth), "--view", "top", *TINY_TRAIN]) == 2
    assert "view 'top' is not in" in capsys.readouterr().err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DRIVER = textwrap.dedent("""
    # Runs `fishcam train`, logging which process writes each checkpoint.
    import os, sys
    from fishcam_utils.training import run_dir as engine
    from fishcam_utils.cli import main

    original = engine.save_checkpoint
    def logged(path, *args, **kwargs):
        with open(os.environ["SAVE_LOG"], "a") as log:
            log.write(f"{os.environ.get('RANK', '-')} {path}\\n")
        return original(path, *args, **kwargs)
    engine.save_checkpoint = logged
    sys.exit(main(sys.argv[1:]))
""")

@pytest.mark.slow

def test_training_under_torchrun_with_two_processes(tmp_path):
    data = generate_dataset(tmp_path / "data", SyntheticConfig(size=32, fish_per_class=40), progress=False, workers=1)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    common = ["train", "--data", str(data), "--model", "fishresnet", "--width", "8", "--image-size", "32",
              "--epochs", "20", "--lr", "0.01", "--no-progress", "--no-eval"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    accuracy = {}
    for processes in (1, 2):
        run, log = tmp_path / f"run{processes}", tmp_path / f"saves{processes}.log"
        command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(processes),
                   "--master-port", str(_free_port()), str(driver), *common,
                   "--batch-size", str(32 // processes), "--run-dir", str(run)]
        done = subprocess.run(command, env={**env, "SAVE_LOG": str(log)}, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        checkpoint = read_checkpoint(run / "last.pt")
        assert checkpoint["world_size"] == processes and checkpoint["epoch"] == 20
        writers = {line.split()[0] for line in log.read_text().splitlines()}
        assert writers == {"0"}  # rank 0 alone writes checkpoints
        assert sorted(p.name for p in run.iterdir()) == ["best.pt", "history.csv", "last.pt"]
        accuracy[processes] = (checkpoint["best"]["value"], checkpoint["history"][-1]["train_acc"])
        model, _ = load_checkpoint(run / "best.pt")  # loads anywhere, no "module." prefix
        assert not any(k.startswith("module.") for k in checkpoint["model_state"])
    # Both learn (at least twice chance, 1/9, on validation and training data) and land in the same range.
    (val1, train1), (val2, train2) = accuracy[1], accuracy[2]
    assert min(val1, val2, train1, train2) > 2 / 9 and abs(val1 - val2) <= 0.15, accuracy

@pytest.mark.slow

def test_multiview_training_under_torchrun(tiny_synth, tmp_path):
    """The fusion model's tuple output, its auxiliary loss and view dropout all work under DDP."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    run, log = tmp_path / "run", tmp_path / "saves.log"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port",
               str(_free_port()), str(driver), "train", "--data", str(tiny_synth), "--fusion", "attention",
               "--view-dropout", "0.3", *TINY_TRAIN, "--epochs", "2", "--batch-size", "4", "--no-eval",
               "--run-dir", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SAVE_LOG": str(log)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = read_checkpoint(run / "last.pt")
    assert checkpoint["world_size"] == 2 and checkpoint["epoch"] == 2
    assert checkpoint["model_config"]["fusion"] == "attention" and checkpoint["model_config"]["view_dropout"] == 0.3
    assert {line.split()[0] for line in log.read_text().splitlines()} == {"0"}
    model, _ = load_checkpoint(run / "best.pt")
    assert type(model).__name__ == "MultiViewNet"
