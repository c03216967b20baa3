"""The training engine: checkpoints, resume bit for bit, early stopping, staged fine-tuning, schedules."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from numerics import float32_atol
from torch import nn

from fishcam_utils.data import FishImageDataset, scan_dataset, train_transform
from fishcam_utils.models import build_model
from fishcam_utils.training import (
    EarlyStopping,
    class_weights_for,
    fit,
    load_checkpoint,
    load_model_state,
    make_config,
    parameter_groups,
    read_checkpoint,
    save_checkpoint,
)
from fishcam_utils.training import checkpoints as checkpoints_module

SIZE = 32


@pytest.fixture(scope="module")
def splits(tiny_synth):
    index = scan_dataset(tiny_synth)
    train = FishImageDataset(index.subset(split="train", view="side"), transform=train_transform(SIZE), image_size=SIZE)
    val = FishImageDataset(index.subset(split="val", view="side"), image_size=SIZE)
    return train, val


def tiny_model(head="linear", seed=0):
    torch.manual_seed(seed)
    return build_model("fishresnet", 9, width=4, blocks=(1, 1), head=head, hidden=(8,), weights=None)


def quiet(**options):
    return {"progress": False, "batch_size": 8, **options}


def states_equal(a: dict, b: dict, atol: float = 0.0) -> bool:
    return a.keys() == b.keys() and all(torch.allclose(a[k].float(), b[k].float(), atol=atol, rtol=0) for k in a)


def test_fit_writes_best_last_and_history_and_the_checkpoint_rebuilds_the_model(splits, tmp_path):
    train, val = splits
    model = tiny_model()
    result = fit(model, train, val, epochs=2, run_dir=tmp_path / "run", **quiet())
    assert list(result.history["epoch"]) == [1, 2] and not model.training
    assert set(result.history.columns) >= {"epoch", "stage", "lr", "train_loss", "train_acc", "val_loss", "val_acc"}
    for name in ("best.pt", "last.pt", "history.csv"):
        assert (tmp_path / "run" / name).is_file()
    assert not list((tmp_path / "run").glob("*.tmp"))
    raw = torch.load(tmp_path / "run" / "last.pt", weights_only=True)  # plain types and tensors only
    assert raw["epoch"] == 2 and raw["classes"] == train.classes and raw["preprocessing"]["image_size"] == SIZE
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "run" / "history.csv"), result.history, check_dtype=False)
    # The returned model holds the best epoch's weights, and load_checkpoint rebuilds exactly it.
    rebuilt, checkpoint = load_checkpoint(result.best_path)
    assert checkpoint["epoch"] == result.best_epoch
    x = torch.randn(3, 3, SIZE, SIZE)
    torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)  # the same weights, the same forward


@pytest.mark.numeric
@pytest.mark.parametrize("stop_after", [1, 3])
def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(splits, tmp_path, stop_after):
    """Augmentation, dropout, a one-cycle schedule and staged fine-tuning all cross the break."""
    train, val = splits
    options = quiet(epochs=4, freeze_epochs=2, backbone_lr_scale=0.1, schedule="onecycle", seed=3)
    fit(tiny_model("mlp"), train, val, run_dir=tmp_path / "whole", **options)

    def ctrl_c(row):
        if row["epoch"] == stop_after:
            raise KeyboardInterrupt

    broken = fit(tiny_model("mlp"), train, val, run_dir=tmp_path / "broken", callback=ctrl_c, **options)
    assert broken.interrupted and len(broken.history) == stop_after
    assert read_checkpoint(tmp_path / "broken" / "last.pt")["epoch"] == stop_after  # kept through Ctrl-C
    resumed = fit(tiny_model("mlp", seed=99), train, val, run_dir=tmp_path / "broken", resume=True, **options)
    assert list(resumed.history["epoch"]) == [1, 2, 3, 4]
    whole_last = read_checkpoint(tmp_path / "whole" / "last.pt")
    broken_last = read_checkpoint(tmp_path / "broken" / "last.pt")
    # Bit for bit: the resumed run replays the same operations from the same restored state.
    assert states_equal(whole_last["model_state"], broken_last["model_state"])
    assert broken_last["history"][-1]["train_loss"] == whole_last["history"][-1]["train_loss"]


def test_an_existing_run_is_not_replaced_and_resume_refuses_other_settings(splits, tmp_path):
    train, val = splits
    fit(tiny_model(), train, val, epochs=1, lr=1e-3, run_dir=tmp_path / "run", **quiet())
    with pytest.raises(FileExistsError, match="resume=True"):
        fit(tiny_model(), train, val, epochs=1, run_dir=tmp_path / "run", **quiet())
    with pytest.raises(ValueError, match="lr: 0.001 → 0.1"):
        fit(tiny_model(), train, val, epochs=1, lr=0.1, run_dir=tmp_path / "run", resume=True, **quiet())
    # overwrite=True starts afresh: without validation there is no best.pt, and the old one is gone.
    again = fit(tiny_model(), train, epochs=1, run_dir=tmp_path / "run", overwrite=True, **quiet())
    assert not (tmp_path / "run" / "best.pt").exists() and again.best_path == tmp_path / "run" / "last.pt"
    other = build_model("fishresnet", 9, width=8, weights=None)
    with pytest.raises(ValueError, match="width: saved 4, model 8"):
        fit(other, train, val, epochs=1, run_dir=tmp_path / "run", resume=True, **quiet())


def test_early_stopping_stops_and_restores_the_best_weights(splits, tmp_path):
    train, val = splits
    model = tiny_model()
    # A learning rate this small cannot move val_acc after the first epoch: patience 2 ends at epoch 3.
    result = fit(model, train, val, epochs=20, lr=1e-12, patience=2, schedule="none", run_dir=tmp_path / "run",
                 **quiet())
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
    best = read_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == 1 and states_equal(best["model_state"], model.state_dict())
    last = read_checkpoint(tmp_path / "run" / "last.pt")
    assert last["stopped_early"] and last["epoch"] == 3
    # Resuming a run that stopped early trains no more.
    again = fit(tiny_model(), train, val, epochs=20, lr=1e-12, patience=2, schedule="none",
                run_dir=tmp_path / "run", resume=True, **quiet())
    assert len(again.history) == 3


def test_early_stopping_rules():
    stopper = EarlyStopping("val_loss", patience=2, min_delta=0.1)
    assert stopper.mode == "min"
    assert [stopper.step(v, e) for e, v in enumerate([1.0, 0.95, 0.8, float("nan")], 1)] == [True, False, True, False]
    assert not stopper.should_stop and stopper.best == 0.8 and stopper.best_epoch == 3
    stopper.step(0.79, 5)
    assert stopper.should_stop
    never = EarlyStopping("val_acc", patience=None)
    for epoch in range(50):
        never.step(0.5, epoch)
    assert not never.should_stop


def test_frozen_backbone_keeps_its_weights_and_batchnorm_statistics(splits):
    train, _ = splits
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit(model, train, epochs=1, freeze_epochs=1, lr=1e-2, **quiet())
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("fc.") for k in changed), changed  # running stats too stayed put
    assert all(p.requires_grad for p in model.parameters())  # the caller's flags are restored


def test_staged_fine_tuning_gives_the_backbone_a_smaller_learning_rate(splits, tmp_path):
    train, _ = splits
    fit(tiny_model(), train, epochs=2, freeze_epochs=1, lr=1e-3, backbone_lr_scale=0.1, schedule="none",
        run_dir=tmp_path / "run", **quiet())
    checkpoint = read_checkpoint(tmp_path / "run" / "last.pt")
    assert checkpoint["stage"] == "all" and [row["stage"] for row in checkpoint["history"]] == ["head", "all"]
    lrs = {g["name"]: g["lr"] for g in checkpoint["optimizer_state"]["param_groups"]}
    assert lrs == {"backbone": pytest.approx(1e-4), "backbone_no_decay": pytest.approx(1e-4),
                   "head": pytest.approx(1e-3), "head_no_decay": pytest.approx(1e-3)}


def test_parameter_groups_leave_out_frozen_parameters_and_decay_only_weights():
    model = tiny_model()
    model.stem[0][0].weight.requires_grad_(False)
    groups = {g["name"]: g for g in parameter_groups(model, 1e-3, 1e-4, weight_decay=0.05)}
    params = [p for g in groups.values() for p in g["params"]]
    assert len(params) == sum(p.requires_grad for p in model.parameters())
    assert all(p.ndim == 1 for p in groups["head_no_decay"]["params"] + groups["backbone_no_decay"]["params"])
    assert groups["backbone"]["weight_decay"] == 0.05 and groups["head_no_decay"]["weight_decay"] == 0.0


@pytest.mark.parametrize("schedule", ["cosine", "onecycle"])
def test_per_batch_schedules_step_once_per_batch(splits, tmp_path, schedule):
    train, _ = splits
    fit(tiny_model(), train, epochs=2, schedule=schedule, run_dir=tmp_path / "run", **quiet())
    checkpoint = read_checkpoint(tmp_path / "run" / "last.pt")
    batches = math.ceil(len(train) / 8)
    assert checkpoint["scheduler_state"]["last_epoch"] == 2 * batches
    if schedule == "cosine":
        assert checkpoint["history"][-1]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_balanced_class_weights_are_n_over_c_times_count():
    config = make_config(class_weights="balanced")
    weights = class_weights_for(config, [0, 0, 0, 1, 2, 2], 4)
    torch.testing.assert_close(weights, torch.tensor([6 / (4 * 3), 6 / 4, 6 / (4 * 2), 0.0]))
    with pytest.raises(ValueError, match="4 non-negative numbers"):
        class_weights_for(make_config(class_weights=[1.0, 2.0]), [0, 1], 4)


def test_class_weights_and_label_smoothing_change_the_loss_the_model_trains_on(splits, tmp_path):
    train, _ = splits
    plain = fit(tiny_model(), train, epochs=1, **quiet())
    smoothed = fit(tiny_model(), train, epochs=1, label_smoothing=0.2, class_weights="balanced", **quiet())
    assert plain.history["train_loss"][0] != pytest.approx(smoothed.history["train_loss"][0], abs=1e-6)


def test_deterministic_runs_are_bit_identical(splits):
    train, val = splits
    a, b = tiny_model(), tiny_model()
    fit(a, train, val, epochs=1, deterministic=True, **quiet())
    fit(b, train, val, epochs=1, deterministic=True, **quiet())
    assert states_equal(a.state_dict(), b.state_dict())
    assert not torch.are_deterministic_algorithms_enabled()  # the global switch is put back


def test_bad_options_are_explained(splits, tmp_path):
    train, val = splits
    with pytest.raises(TypeError, match="unknown training option.*'epoch'.*epochs"):
        fit(tiny_model(), train, val, epoch=3)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        fit(tiny_model(), train, val, optimizer="lbfgs")
    with pytest.raises(ValueError, match="needs validation data"):
        fit(tiny_model(), train, patience=3)
    with pytest.raises(ValueError, match="num_classes=9"):
        fit(build_model("fishresnet", 4, width=4, weights=None), train)
    with pytest.raises(ValueError, match="CUDA is not available"):
        if torch.cuda.is_available():
            raise ValueError("CUDA is not available (skipped: this machine has CUDA)")
        fit(tiny_model(), train, device="cuda")


def test_checkpoints_are_written_atomically(splits, tmp_path, monkeypatch):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "c.pt", model, epoch=1)
    good = path.read_bytes()

    def broken_save(obj, handle):
        handle.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    assert path.read_bytes() == good and [p.name for p in tmp_path.iterdir()] == ["c.pt"]


def test_checkpoints_from_data_parallel_or_of_another_model_load_or_fail_clearly(tmp_path):
    model = tiny_model()
    path = save_checkpoint(tmp_path / "dp.pt", nn.DataParallel(model), epoch=1)
    rebuilt, _ = load_checkpoint(path)
    assert states_equal(rebuilt.state_dict(), model.state_dict())
    # A checkpoint whose keys carry DDP's "module." prefix (as other code writes them) loads too.
    checkpoint = read_checkpoint(path)
    checkpoint["model_state"] = {"module." + k: v for k, v in checkpoint["model_state"].items()}
    fresh = tiny_model(seed=5)
    load_model_state(fresh, checkpoint)
    assert states_equal(fresh.state_dict(), model.state_dict())
    with pytest.raises(ValueError, match="num_classes: saved 9, model 4"):
        load_model_state(build_model("fishresnet", 4, width=4, blocks=(1, 1), weights=None), checkpoint)
    with pytest.raises(ValueError, match="name: saved 'fishresnet', model 'resnet18'"):
        load_model_state(build_model("resnet18", 9, weights=None), checkpoint)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="cannot read .*junk.pt as a checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_tensorboard_logs_the_history(splits, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, val = splits
    result = fit(tiny_model(), train, val, epochs=2, tensorboard=True, run_dir=tmp_path / "run", **quiet())
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    logged = [e.value for e in events.Scalars("val_acc")]
    assert logged == pytest.approx(list(result.history["val_acc"]), abs=float32_atol(1.0, terms=1))  # stored as float32


def test_the_device_is_picked_cuda_then_mps_then_cpu(monkeypatch):
    from fishcam_utils import runtime as devices

    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(devices, "mps_available", lambda: False)
    assert devices.pick_device() == torch.device("cpu")
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    assert devices.pick_device() == torch.device("mps")
    monkeypatch.setattr(devices.torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "1")  # under torchrun, each process takes its own GPU
    assert devices.pick_device() == torch.device("cuda", 1)
    assert devices.pick_device("cpu") == torch.device("cpu")


@pytest.mark.filterwarnings("ignore:CUDA is not available")  # building the CUDA context on a CPU machine
def test_mixed_precision_is_used_on_cuda_only():
    from fishcam_utils.training import autocast

    assert isinstance(autocast(torch.device("cuda"), True), torch.autocast)
    assert not isinstance(autocast(torch.device("cpu"), True), torch.autocast)
    assert not isinstance(autocast(torch.device("cuda"), False), torch.autocast)


def _parameter_change(before: dict, model: nn.Module) -> float:
    return torch.sqrt(sum(((p.detach() - before[n]) ** 2).sum() for n, p in model.named_parameters())).item()


@pytest.mark.numeric
def test_gradient_clipping_bounds_the_update(splits):
    """One plain SGD step (lr 1, no momentum) moves the weights by exactly the clipped gradient."""
    train, _ = splits
    one_step = quiet(epochs=1, optimizer="sgd", momentum=0.0, lr=1.0, weight_decay=0.0, schedule="none",
                     batch_size=len(train))
    moved = {}
    for clip in (None, 1e-3):
        model = tiny_model()
        before = {n: p.detach().clone() for n, p in model.named_parameters()}
        fit(model, train, grad_clip=clip, **one_step)
        moved[clip] = _parameter_change(before, model)
    # Exactly, but for clip_grad_norm_'s 1e-6 beside the gradient's norm; float32 rounding of that norm and
    # of the change's (P terms each); and each weight's rounding, at most eps / 2 of it, so of ||w|| in all.
    count = sum(p.numel() for p in before.values())
    norm = float(torch.sqrt(sum((p.double() ** 2).sum() for p in before.values())))
    tolerance = (1e-3 * (1e-6 / moved[None] + float32_atol(1.0, terms=2 * count + 2))
                 + float32_atol(norm + 1e-3, terms=1))
    assert moved[1e-3] == pytest.approx(1e-3, abs=tolerance)
    assert moved[None] > 10 * moved[1e-3]  # without clipping the step is far larger


def test_optimizers_and_the_plateau_schedule(splits, tmp_path):
    from fishcam_utils.training import make_optimizer

    groups = parameter_groups(tiny_model(), 1e-3)
    kinds = {name: type(make_optimizer(make_config(optimizer=name), groups)) for name in ("sgd", "adam", "adamw")}
    assert kinds == {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
    train, val = splits
    # With a learning rate too small to change val_acc, plateau (patience 2) cuts the rate 10x after epoch 4.
    result = fit(tiny_model(), train, val, epochs=5, lr=1e-12, schedule="plateau", run_dir=tmp_path / "run", **quiet())
    assert list(result.history["lr"]) == pytest.approx([1e-12, 1e-12, 1e-12, 1e-13, 1e-13], rel=1e-6)


def test_a_run_folder_holding_an_earlier_runs_outputs_is_refused_or_cleared_and_named(splits, tmp_path, capsys):
    train, val = splits
    run = tmp_path / "run"
    fit(tiny_model(), train, val, epochs=1, run_dir=run, **quiet())
    (run / "last.pt").unlink()  # best.pt, history.csv and a report remain
    (run / "eval-test").mkdir()
    with pytest.raises(FileExistsError,
                       match=r"holds a training run \(best.pt, eval-test/, history.csv\).*overwrite=True"):
        fit(tiny_model(), train, val, epochs=1, run_dir=run, **quiet())
    with pytest.raises(FileExistsError, match="no last.pt to resume from"):
        fit(tiny_model(), train, val, epochs=1, run_dir=run, resume=True, **quiet())
    capsys.readouterr()
    fit(tiny_model(), train, val, epochs=1, run_dir=run, overwrite=True, **quiet())
    assert "overwrite=True: removed the earlier run's best.pt, eval-test/, history.csv" in capsys.readouterr().out
    assert not (run / "eval-test").exists() and (run / "last.pt").is_file()


def test_an_unknown_device_name_is_a_clear_error():
    from fishcam_utils.runtime import pick_device

    with pytest.raises(ValueError, match="'foo' is not a device; use 'cpu', 'cuda'"):
        pick_device("foo")
