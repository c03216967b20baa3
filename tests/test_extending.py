"""Extending the package by one entry: a new backbone (``register_backbone``) and a new dataset
layout (``register_layout``) work everywhere the built-in ones do, command line included."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from fishcam_utils.cli import LAYOUT_CHOICES, MODEL_CHOICES, build_parser, main
from fishcam_utils.data import make_datasets, scan_dataset
from fishcam_utils.data.layouts import Layout, detect_layout, register_layout, unregister_layout
from fishcam_utils.explain import make_cam
from fishcam_utils.models import (
    Backbone,
    MultiViewNet,
    build_model,
    cam_layers,
    model_config,
    rebuild_model,
    register_backbone,
    unregister_backbone,
)
from fishcam_utils.training import load_checkpoint, save_checkpoint


class TinyNet(nn.Module):
    """A network no part of the package knows: one conv block, pooled, a Linear head named ``out``."""

    def __init__(self, channels: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1), nn.ReLU())
        self.out = nn.Linear(channels, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.features(x).mean((2, 3)))


@pytest.fixture
def tinynet():
    register_backbone("tinynet", Backbone(lambda num_classes, channels: TinyNet(channels), head="out",
                                          cam_layers=("features",), options={"channels": 4}, from_scratch=True))
    yield "tinynet"
    unregister_backbone("tinynet")


def test_a_registered_backbone_builds_rebuilds_and_explains(tinynet, tmp_path):
    torch.manual_seed(0)
    model = build_model(tinynet, 3, weights=None, channels=6, verbose=False)
    images = torch.randn(2, 3, 16, 16)
    assert model(images).shape == (2, 3) and model.features[0].out_channels == 6
    assert cam_layers(model) == ["features"]
    again = rebuild_model(model_config(model))
    again.load_state_dict(model.state_dict())
    model.eval(), again.eval()
    torch.testing.assert_close(again(images), model(images), rtol=0, atol=0)  # the same weights, the same forward
    path = save_checkpoint(tmp_path / "tiny.pt", model, classes=["a", "b", "c"], preprocessing={"image_size": 16})
    loaded, checkpoint = load_checkpoint(path)
    torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)
    result = make_cam("gradcam", loaded, "features")(images)
    assert result.maps.shape == (2, 16, 16)
    with pytest.raises(ValueError, match="channels"):
        build_model(tinynet, 3, weights=None, width=8)  # FishResNet's option is not TinyNet's


def test_a_registered_backbone_is_a_multiview_branch(tinynet):
    net = MultiViewNet(3, views=("side", "back"), backbone=tinynet, fusion="mean", weights=None, verbose=False)
    views, present = torch.randn(2, 2, 3, 16, 16), torch.ones(2, 2, dtype=torch.bool)
    logits = net(views, present)
    logits = logits[0] if isinstance(logits, tuple) else logits
    assert logits.shape == (2, 3)
    again = rebuild_model(model_config(net))
    again.load_state_dict(net.state_dict())  # the same parameters, by name and shape
    net.eval(), again.eval()
    first, second = net(views, present), again(views, present)
    torch.testing.assert_close(second[0] if isinstance(second, tuple) else second,
                               first[0] if isinstance(first, tuple) else first, rtol=0, atol=0)


def test_the_command_line_trains_a_registered_backbone(tinynet, tiny_synth, tmp_path, capsys):
    assert tinynet in MODEL_CHOICES
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_synth), "--model", tinynet, "--epochs", "1", "--image-size", "32",
                 "--batch-size", "8", "--run-dir", str(run), "--no-eval", "--no-progress"]) == 0
    model, checkpoint = load_checkpoint(run / "best.pt")
    assert checkpoint["model_config"]["name"] == tinynet and isinstance(model.features, nn.Sequential)


def test_an_unregistered_backbone_is_refused_by_the_command_line(capsys):
    assert "tinynet" not in MODEL_CHOICES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--data", "x", "--model", "tinynet"])
    assert "invalid choice: 'tinynet'" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------
# A layout: images anywhere, labels in one labels.csv


def _read_label_list(walk, classes, views):
    with open(walk.root / "labels.csv", newline="") as handle:
        rows = [{"path": walk.root / row["file"], "class_name": row["label"], "split": "", "fish_id": "", "view": ""}
                for row in csv.DictReader(handle)]
    return rows, {}


LABEL_LIST = Layout("a label list", "root/labels.csv (file,label) beside the images",
                    lambda root, views: (root / "labels.csv").is_file(), _read_label_list)


@pytest.fixture
def label_list(tiny_synth, tmp_path):
    """The side views of the tiny dataset in one flat folder named by number, labelled in labels.csv."""
    root = tmp_path / "listed"
    root.mkdir()
    rows = []
    for i, path in enumerate(sorted(tiny_synth.glob("*/*/*_side.png"))):
        shutil.copy(path, root / f"{i:04d}.png")
        rows.append((f"{i:04d}.png", path.parent.name))
    with open(root / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("file", "label"), *rows])
    register_layout("label_list", LABEL_LIST, before="filename")
    yield root, rows
    unregister_layout("label_list")


def test_a_registered_layout_is_detected_read_and_trained_on(label_list):
    root, rows = label_list
    assert detect_layout(root) == "label_list"
    index = scan_dataset(root, unknown_files="skip")  # labels.csv is not an image
    assert index.layout == "label_list" and len(index) == len(rows)
    assert sorted(index.classes) == sorted({label for _, label in rows})
    by_file = {Path(p).name: c for p, c in zip(index.frame["relpath"], index.frame["class_name"])}
    assert by_file == dict(rows)
    data = make_datasets(root, image_size=32, augment=0, cache=False, layout="label_list", unknown_files="skip",
                         progress=False)
    assert len(data.train) + len(data.val) + len(data.test) == len(rows)


def test_the_command_line_offers_a_registered_layout(label_list, capsys):
    root, rows = label_list
    assert "label_list" in LAYOUT_CHOICES
    assert main(["check-data", str(root), "--layout", "label_list", "--unknown-files", "skip", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "label_list" in out and f"all {len(rows)} image" in out


def test_an_unregistered_layout_is_gone_from_detection_and_the_command_line():
    assert "label_list" not in LAYOUT_CHOICES
    with pytest.raises(SystemExit):
        build_parser().parse_args(["check-data", "x", "--layout", "label_list"])
