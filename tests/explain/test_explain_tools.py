"""Overlays, `fishcam gradcam`, and the course models the explanation notebooks load or train."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from numerics import float32_atol
from PIL import Image

from fishcam_utils.cli import main
from fishcam_utils.course.recipes import RECIPES, course_model, course_run_dir
from fishcam_utils.data import FishImageDataset, scan_dataset
from fishcam_utils.explain import heatmap_to_rgb, overlay_heatmap, plot_cam, save_cam_images
from fishcam_utils.models import build_model
from fishcam_utils.training import fit


def test_heatmaps_are_rgb_hot_is_red_and_cold_is_blue():
    colours = heatmap_to_rgb(np.array([[0.0, 1.0]]), "jet")
    cold, hot = colours[0, 0], colours[0, 1]
    assert cold[2] > cold[0] and hot[0] > hot[2]  # RGB order, not OpenCV's BGR
    with pytest.raises(ValueError, match="unknown colormap"):
        heatmap_to_rgb(np.zeros((2, 2)), "nope")


@pytest.mark.numeric
def test_overlay_blends_with_the_opacity():
    image = np.full((4, 5, 3), 200, np.uint8)
    heat = np.linspace(0, 1, 20).reshape(4, 5)
    # float32 blends of values in [0, 1]: x / 255, the two weights as float32, two products and a sum.
    atol = float32_atol(1.0, terms=6)
    np.testing.assert_allclose(overlay_heatmap(image, heat, alpha=0), image / 255, rtol=0, atol=atol)
    np.testing.assert_allclose(overlay_heatmap(image, heat, alpha=1), heatmap_to_rgb(heat), rtol=0, atol=atol)
    mixed = overlay_heatmap(image, heat, alpha=0.3, cmap="viridis")
    np.testing.assert_allclose(mixed, 0.7 * image / 255 + 0.3 * heatmap_to_rgb(heat, "viridis"), rtol=0, atol=atol)
    with pytest.raises(ValueError, match="opacity"):
        overlay_heatmap(image, heat, alpha=1.5)
    with pytest.raises(ValueError, match="differ in size"):
        overlay_heatmap(image, np.zeros((3, 3)))
    fig = plot_cam(image, heat, title="t")
    assert len(fig.axes) == 3
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_saved_cam_images_are_rgb_pngs(tmp_path):
    image = np.random.default_rng(0).integers(0, 255, (6, 6, 3), dtype=np.uint8)
    heat = torch.rand(6, 6)
    paths = save_cam_images(tmp_path / "out", "fish", image, heat, alpha=0.4)
    original = np.asarray(Image.open(paths["original"]))
    assert Image.open(paths["overlay"]).mode == "RGB" and np.array_equal(original, image)
    overlay = np.asarray(Image.open(paths["overlay"])).astype(float)
    expected = 0.6 * image + 0.4 * heatmap_to_rgb(heat.numpy()) * 255
    assert np.abs(overlay - expected).max() <= 1.0


@pytest.fixture
def tiny_checkpoint(tiny_synth, tmp_path):
    index = scan_dataset(tiny_synth)
    train = FishImageDataset(index.subset(split="train", view="side"), image_size=32)
    val = FishImageDataset(index.subset(split="val", view="side"), image_size=32)
    torch.manual_seed(0)
    model = build_model("fishresnet", 9, width=4, blocks=(1, 1), weights=None)
    result = fit(model, train, val, epochs=1, batch_size=8, progress=False, run_dir=tmp_path / "run")
    return result.best_path


def test_gradcam_command_sorts_images_into_correct_and_incorrect(tiny_checkpoint, tmp_path, capsys):
    out = tmp_path / "cams"
    assert main(["gradcam", "--checkpoint", str(tiny_checkpoint), "--out", str(out), "--limit", "7",
                 "--method", "hirescam", "--layer", "layer1"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 7 and set(summary["method"]) == {"hirescam"} and set(summary["layer"]) == {"layer1"}
    assert (summary["correct"] == (summary["true"] == summary["pred"])).all()
    for row in summary.itertuples():
        folder = "correct_samples" if row.correct else "incorrect_samples"
        assert row.overlay.startswith(f"{folder}/{row.true}/")
        stem = (out / row.overlay).name.replace("_overlay.png", "")
        for kind in ("original", "heatmap", "overlay"):
            assert Image.open(out / folder / row.true / f"{stem}_{kind}.png").size == (32, 32)
    assert (out / "correct_samples").is_dir() and (out / "incorrect_samples").is_dir()
    assert "7 test images" in capsys.readouterr().out
    assert main(["gradcam", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "other"),
                 "--layer", "layer9"]) == 2
    assert "no layer named 'layer9'" in capsys.readouterr().err


def test_course_models_load_their_checkpoint_or_say_which_notebook_trains_them(tiny_checkpoint):
    with pytest.raises(FileNotFoundError, match="02_residual_cnn"):
        course_model("fishresnet-side", quick=True, train=False)
    with pytest.raises(ValueError, match="unknown course model"):
        course_model("vgg", quick=True)
    run_dir = course_run_dir("fishresnet-side", quick=True)
    run_dir.mkdir(parents=True)
    (run_dir / "best.pt").write_bytes(tiny_checkpoint.read_bytes())
    model, checkpoint = course_model("fishresnet-side", quick=True, train=False)
    assert checkpoint["model_config"]["width"] == 4 and not model.training
    assert set(RECIPES) >= {"fishresnet-side", "resnet18-linear-side"}


class ToyMultiView(torch.nn.Module):
    """A shared branch for every view, mean fusion over the present views, a linear head."""

    cam_layer_names = ["branch.2"]

    def __init__(self, num_classes: int = 9):
        super().__init__()
        self.branch = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(),
                                          torch.nn.Conv2d(4, 8, 3, stride=2, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Linear(8, num_classes)
        self.fishcam = {"name": "toy_multiview", "num_classes": num_classes}

    def forward(self, views, present):
        pooled = torch.stack([self.branch(views[:, v]).mean((2, 3)) for v in range(views.shape[1])], 1)
        weights = present.float() / present.sum(1, keepdim=True)
        return self.head((pooled * weights[..., None]).sum(1)), weights


def test_gradcam_command_writes_every_view_of_a_multiview_fish(tiny_synth, tmp_path, capsys):
    from fishcam_utils.data import make_datasets
    from fishcam_utils.models import register_builder

    register_builder("toy_multiview", lambda num_classes: ToyMultiView(num_classes))
    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    torch.manual_seed(0)
    result = fit(ToyMultiView(), splits.train, splits.val, epochs=1, batch_size=8, progress=False,
                 run_dir=tmp_path / "run")
    out = tmp_path / "cams"
    assert main(["gradcam", "--checkpoint", str(result.best_path), "--out", str(out), "--limit", "4"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert len(summary) == 4 * 3 and sorted(set(summary["view"])) == ["back", "belly", "side"]
    for row in summary.itertuples():
        assert (out / row.overlay).is_file() and row.overlay.endswith(f"_{row.view}_overlay.png")
    assert "4 test fish" in capsys.readouterr().out


def test_gradcam_command_shows_a_progress_bar_unless_asked_not_to(tiny_checkpoint, tmp_path, capsys):
    assert main(["gradcam", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "a"), "--limit", "6",
                 "--batch-size", "2"]) == 0
    assert "gradcam maps" in capsys.readouterr().err and (tmp_path / "a" / "summary.csv").is_file()
    assert main(["gradcam", "--checkpoint", str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--limit", "6",
                 "--batch-size", "2", "--no-progress"]) == 0
    assert "gradcam maps" not in capsys.readouterr().err
