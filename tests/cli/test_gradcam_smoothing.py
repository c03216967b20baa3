"""``fishcam gradcam --augment / --eigen-smooth / --smoothgrad N --sigma S``: the maps written are the smoothed
maps a direct call makes, and a smoothing that does not apply to the method is refused, naming the flag and
the fix, before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import run_cli
from PIL import Image

import fishcam_utils.explain.export as export
from fishcam_utils.cli import build_parser
from fishcam_utils.cli.model_commands import checkpoint_split
from fishcam_utils.data import FishImageDataset, scan_dataset
from fishcam_utils.explain import make_cam
from fishcam_utils.explain.augment import DEFAULT_TTA
from fishcam_utils.explain.overlay import heatmap_to_rgb, to_uint8
from fishcam_utils.models import build_model, cam_layers
from fishcam_utils.training import fit, load_checkpoint, read_checkpoint

IMAGES = 3  # one batch of the command (--batch-size 32): the direct call below is the same call


@pytest.fixture(scope="module")
def checkpoint(tiny_synth, tmp_path_factory) -> Path:
    """A one-epoch, width-4 FishResNet on the side views of the tiny dataset. Read-only."""
    index = scan_dataset(tiny_synth)
    train = FishImageDataset(index.subset(split="train", view="side"), image_size=32)
    val = FishImageDataset(index.subset(split="val", view="side"), image_size=32)
    torch.manual_seed(0)
    model = build_model("fishresnet", 9, width=4, blocks=(1, 1), weights=None, verbose=False)
    run = tmp_path_factory.mktemp("smoothing") / "run"
    return fit(model, train, val, epochs=1, batch_size=8, progress=False, run_dir=run).best_path


@pytest.fixture
def written(monkeypatch):
    """The heatmaps the command hands to ``save_cam_images``, by file stem, before they become PNGs."""
    maps: dict[str, np.ndarray] = {}
    save = export.save_cam_images

    def keep(folder, stem, image, heatmap, *args, **kwargs):
        maps[stem] = np.array(heatmap)
        return save(folder, stem, image, heatmap, *args, **kwargs)

    monkeypatch.setattr(export, "save_cam_images", keep)
    return maps


def gradcam(capsys, checkpoint, out, *flags) -> tuple[pd.DataFrame, str]:
    """The summary and the printed lines of ``fishcam gradcam`` on the first images, with ``flags``."""
    # On the CPU, as the_images below: the same kernels, so the same computation gives the same numbers.
    code, printed, err = run_cli(capsys, "gradcam", "--checkpoint", checkpoint, "--out", out, "--limit", IMAGES,
                                 "--device", "cpu", "--no-progress", *flags)
    assert code == 0, err
    return pd.read_csv(out / "summary.csv"), printed


def the_images(checkpoint: Path):
    """The model and the first images of the split, read as the command reads them."""
    args = build_parser().parse_args(["gradcam", "--checkpoint", str(checkpoint), "--out", "unused"])
    model, saved = load_checkpoint(checkpoint, device="cpu")
    dataset = checkpoint_split(args, saved, cache=False)
    return model, torch.stack([dataset[i][0] for i in range(IMAGES)])


def check_written(out: Path, summary: pd.DataFrame, written: dict, maps: torch.Tensor) -> None:
    """The maps handed to the writer, and the heatmap PNGs, are exactly ``maps`` (N, H, W), in summary order."""
    assert len(summary) == len(maps) == IMAGES
    for row, expected in zip(summary.itertuples(), maps.numpy()):
        heatmap = out / row.overlay.replace("_overlay.png", "_heatmap.png")
        np.testing.assert_array_equal(written[heatmap.name[: -len("_heatmap.png")]], expected)
        assert np.array_equal(np.asarray(Image.open(heatmap)), to_uint8(heatmap_to_rgb(expected)))


@pytest.mark.parametrize("flag, options, words", [("--eigen-smooth", {"eigen_smooth": True}, "eigen-smoothing"),
                                                  ("--augment", {"augment": DEFAULT_TTA}, "test-time augmentation")])
def test_smoothed_cam_maps_are_the_direct_calls(checkpoint, tmp_path, capsys, written, flag, options, words):
    model, x = the_images(checkpoint)
    layer = cam_layers(model)[-1]
    summary, printed = gradcam(capsys, checkpoint, tmp_path / "smooth", flag)
    assert printed.startswith(f"gradcam with {words} at {layer}: {IMAGES} test images")
    # The command's one call on these three images, made again here: the same computation, the same numbers.
    smoothed = make_cam("gradcam", model, layer)(x, None, **options).maps
    check_written(tmp_path / "smooth", summary, written, smoothed)
    plain = make_cam("gradcam", model, layer)(x).maps
    assert not torch.equal(smoothed, plain)  # the flag changed the maps


def test_both_cam_smoothings_together_and_the_last_line_says_them(checkpoint, tmp_path, capsys, written):
    model, x = the_images(checkpoint)
    summary, printed = gradcam(capsys, checkpoint, tmp_path / "both", "--method", "layercam", "--augment",
                               "--eigen-smooth")
    assert printed.startswith("layercam with test-time augmentation and eigen-smoothing at layer")
    maps = make_cam("layercam", model, cam_layers(model)[-1])(x, augment=DEFAULT_TTA, eigen_smooth=True).maps
    check_written(tmp_path / "both", summary, written, maps)
    assert set(summary["method"]) == {"layercam"}  # the registry's name, as for unsmoothed maps


def test_smoothgrad_maps_are_the_direct_call(checkpoint, tmp_path, capsys, written):
    model, x = the_images(checkpoint)
    summary, printed = gradcam(capsys, checkpoint, tmp_path / "sg", "--method", "gradient", "--smoothgrad", "4",
                               "--sigma", "0.3")
    assert printed.startswith("gradient with SmoothGrad (4 copies, sigma 0.3) at -")
    # The same call (same images, noise seed, samples and sigma): the same numbers.
    smoothed = make_cam("gradient", model, samples=4, sigma=0.3)(x).maps
    check_written(tmp_path / "sg", summary, written, smoothed)
    assert not torch.equal(smoothed, make_cam("gradient", model)(x).maps)
    assert not torch.equal(smoothed, make_cam("gradient", model, samples=4)(x).maps)  # --sigma reached the maps


@pytest.mark.parametrize("flags, says", [
    (["--smoothgrad", "8"], "--smoothgrad 8: SmoothGrad averages the input gradients of noisy copies, so it smooths "
                            "guided-backprop and gradient, not gradcam; smooth a CAM method with --augment or "
                            "--eigen-smooth instead"),
    (["--method", "guided-gradcam", "--smoothgrad", "8"], "not guided-gradcam; leave --smoothgrad out, or pick "
                                                          "--method guided-backprop or gradient"),
    (["--method", "gradient", "--augment"], "--augment: test-time augmentation smooths the CAM methods (maps at a "
                                            "layer), and gradient is not one; smooth it with --smoothgrad N instead"),
    (["--method", "edges", "--eigen-smooth"], "--eigen-smooth: eigen-smoothing smooths the CAM methods (maps at a "
                                              "layer), and edges is not one; leave --eigen-smooth out, or pick a CAM "
                                              "method such as gradcam"),
    (["--method", "guided-gradcam", "--augment"], "guided-gradcam is not one; leave --augment out"),
    (["--method", "gradient", "--sigma", "0.2"], "--sigma 0.2: it is the noise of SmoothGrad, which is off; add "
                                                 "--smoothgrad N"),
    (["--method", "gradient", "--smoothgrad", "-3"],
     "argument --smoothgrad: must be a whole number at least 1, got -3"),
    (["--method", "gradient", "--smoothgrad", "0"], "argument --smoothgrad: must be a whole number at least 1, got 0"),
    (["--method", "gradient", "--smoothgrad", "4", "--sigma", "-1"],
     "argument --sigma: must be a number at least 0, got -1"),
])
def test_a_smoothing_that_does_not_apply_is_refused_before_any_work(tmp_path, capsys, flags, says):
    # A checkpoint that does not exist: the flags are judged before it is read.
    code, printed, err = run_cli(capsys, "gradcam", "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "maps",
                                 *flags)
    assert code == 2 and says in err, err
    assert "none.pt" not in err and not (tmp_path / "maps").exists()


def test_augmenting_a_multi_view_model_is_refused_before_the_data_is_read(checkpoint, tmp_path, capsys):
    saved = read_checkpoint(checkpoint)
    saved["preprocessing"] = {**saved["preprocessing"], "views": ["side", "back", "belly"], "data_root": "nowhere"}
    torch.save(saved, tmp_path / "fusion.pt")
    code, printed, err = run_cli(capsys, "gradcam", "--checkpoint", tmp_path / "fusion.pt", "--out", tmp_path / "maps",
                                 "--augment")
    assert code == 2 and "--augment: test-time augmentation flips and shifts single images" in err
    assert "multi-view model" in err and "--eigen-smooth works for it" in err
    assert "nowhere" not in err and not (tmp_path / "maps").exists()
