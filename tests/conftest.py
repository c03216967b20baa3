"""Shared fixtures: isolated folders, and small datasets generated once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset

TINY = SyntheticConfig(size=32, fish_per_class=4)


def pytest_configure(config):
    # FISHCAM_TEST_NO_MKLDNN=1 switches oneDNN off for the session, so convolutions and matrix products take
    # PyTorch's own kernels: other roundings than the default ones, a stand-in for another CPU's kernels when
    # checking that the numeric tests' tolerances do not depend on this machine's.
    if os.environ.get("FISHCAM_TEST_NO_MKLDNN") == "1":
        import torch

        torch.backends.mkldnn.enabled = False


@pytest.fixture(autouse=True)
def isolated_folders(tmp_path, monkeypatch):
    """Every test gets its own cache, build and data folders, so nothing touches the checkout."""
    for name in ("CACHE", "BUILD", "DATA", "CHECKPOINTS"):
        folder = tmp_path / f"_{name.lower()}"
        monkeypatch.setenv(f"FISHCAM_{name}_DIR", str(folder))
    monkeypatch.delenv("FISHCAM_QUICK", raising=False)
    monkeypatch.delenv("FISHCAM_SEED", raising=False)  # the course's seed 0 (bench/seeds_bench.py sets others)
    monkeypatch.delenv("FISHCAM_DATA", raising=False)  # the course's own photos, whatever a developer exported
    monkeypatch.delenv("FISHCAM_CAPSTONE_DATA", raising=False)  # notebook 09's stand-in
    # The course's image size is 224 px on a CUDA machine: tests see the CPU's 64 px everywhere.
    monkeypatch.setenv("FISHCAM_IMAGE_SIZE", "64")


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """A 32 px multi-view dataset, 4 fish per class. Read-only: copy it before changing it."""
    return generate_dataset(tmp_path_factory.mktemp("synth") / "tiny", TINY, progress=False, workers=1)


@pytest.fixture(scope="session")
def tiny_kaggle(tmp_path_factory) -> Path:
    """The same fish in the Kaggle layout, nested as in the Kaggle archive. Read-only."""
    outer = tmp_path_factory.mktemp("kaggle") / "Fish_Dataset"
    generate_dataset(outer / "Fish_Dataset", SyntheticConfig(size=32, fish_per_class=4, layout="kaggle"),
                     progress=False, workers=1)
    return outer


@pytest.fixture
def synth_copy(tiny_synth, tmp_path) -> Path:
    """A private, writable copy of the tiny dataset."""
    return Path(shutil.copytree(tiny_synth, tmp_path / "copy"))


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk("64k")``: an empty folder on a tmpfs of that size (``readonly=True`` for a
    read-only one), to meet a full or read-only disk for real. Needs root (CI and the dev
    machines run as root); skipped where mounting is not allowed."""
    mounts: list[Path] = []

    def make(size: str = "64k", readonly: bool = False) -> Path:
        where = tmp_path / f"disk{len(mounts)}"
        where.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip()}); this test needs root")
        mounts.append(where)
        return where

    yield make
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def write_image(path: Path, size=(20, 16), colour=(200, 30, 40), mode="RGB") -> Path:
    """A small solid image file (parent folders created); format from the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((size[1], size[0], 3), np.uint8) + np.array(colour, np.uint8)
    image = Image.fromarray(array)
    if mode != "RGB":
        image = image.convert(mode)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}.get(path.suffix.lower(), "PNG")
    image.save(path, format=fmt)
    return path


@pytest.fixture(scope="module")
def resnet():
    """A seeded torchvision ResNet-18 with 9 classes, in eval mode, whose BatchNorm layers have the
    non-trivial statistics of a trained model (for the CAM tests; copy it before changing it)."""
    import torch
    import torchvision
    from torch import nn

    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=9)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def batch():
    """Three 64 px random images and their target classes, for the CAM tests."""
    import torch

    torch.manual_seed(1)
    return torch.randn(3, 3, 64, 64), torch.tensor([2, 5, 7])
