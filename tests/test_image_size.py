"""FISHCAM_IMAGE_SIZE: one setting chooses the photographs' size for data, run folders and models."""

from __future__ import annotations

import dataclasses
import shutil
import warnings

import pytest
import torch
from PIL import Image

from fishcam_utils.cli import main
from fishcam_utils.course.recipes import course_model, course_run_dir, trained_on
from fishcam_utils.data import make_datasets, synthetic
from fishcam_utils.data.introspection import description_digest
from fishcam_utils.data.synthetic import (
    SyntheticConfig,
    default_dataset_dir,
    ensure_synthetic,
    generate_dataset,
    load_metadata,
)
from fishcam_utils.models import build_model
from fishcam_utils.settings import SIZE_ENV, checkpoints_dir, course_image_size, data_dir
from fishcam_utils.standin.weights import read_manifest
from fishcam_utils.training import fit
from fishcam_utils.training.inputs import warn_if_other_scale as warn_if_other_size


@pytest.mark.parametrize("value", [None, "auto", " AUTO "])
def test_auto_is_224_with_cuda_and_64_without(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(SIZE_ENV, raising=False)
    else:
        monkeypatch.setenv(SIZE_ENV, value)
    assert course_image_size(cuda=True) == 224
    assert course_image_size(cuda=False) == 64


@pytest.mark.parametrize("available, expected", [(True, 224), (False, 64)])
def test_auto_asks_torch_whether_cuda_is_there(monkeypatch, available, expected):
    monkeypatch.delenv(SIZE_ENV, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
    assert course_image_size() == expected


@pytest.mark.parametrize("value, expected", [("128", 128), (" 224px ", 224), ("32", 32), ("1024", 1024)])
def test_a_number_wins_over_the_device(monkeypatch, value, expected):
    monkeypatch.setenv(SIZE_ENV, value)
    assert course_image_size(cuda=True) == course_image_size(cuda=False) == expected


@pytest.mark.parametrize("value", ["big", "31", "0", "-64", "2048", "64.5", "224x224"])
def test_a_bad_value_names_the_variable_and_what_it_takes(monkeypatch, value):
    monkeypatch.setenv(SIZE_ENV, value)
    with pytest.raises(ValueError) as caught:
        course_image_size(cuda=False)
    message = str(caught.value)
    assert f"{SIZE_ENV}={value!r}" in message and "'auto'" in message and "from 32 to 1024" in message


def test_each_size_has_its_own_dataset_and_run_folders():
    assert default_dataset_dir(False, 64) == data_dir() / "synthetic"
    assert default_dataset_dir(True, 64) == data_dir() / "synthetic-quick"
    assert default_dataset_dir(False, 224) == data_dir() / "synthetic-224px"
    assert default_dataset_dir(True, 224) == data_dir() / "synthetic-quick-224px"
    assert course_run_dir("fishresnet-side", False, 64) == checkpoints_dir() / "fishresnet-side"
    assert course_run_dir("fishresnet-side", True, 224) == checkpoints_dir() / "quick" / "fishresnet-side-224px"


def test_the_setting_reaches_the_defaults(monkeypatch):
    monkeypatch.setenv(SIZE_ENV, "224")
    assert default_dataset_dir(True).name == "synthetic-quick-224px"
    assert course_run_dir("resnet18-linear-side", True).name == "resnet18-linear-side-224px"


def test_ensure_synthetic_draws_photos_of_the_course_size(monkeypatch):
    monkeypatch.setenv(SIZE_ENV, "40")
    root = ensure_synthetic(quick=True, progress=False)
    assert root.name == "synthetic-quick-40px"
    frame = load_metadata(root)
    with Image.open(root / frame["image"].iat[0]) as image:
        assert image.size == (40, 40)
    splits = make_datasets(root, view="side", augment=0, progress=False)  # image_size from the setting too
    image, _ = splits.train[0]
    assert splits.train.image_size == 40 and image.shape == (3, 40, 40)


def test_make_datasets_default_follows_the_setting(monkeypatch, tiny_synth):
    monkeypatch.setenv(SIZE_ENV, "48")
    image, _ = make_datasets(tiny_synth, view="side", augment=0, progress=False).test[0]
    assert image.shape == (3, 48, 48)
    image, _ = make_datasets(tiny_synth, view="side", image_size=32, augment=0, progress=False).test[0]
    assert image.shape == (3, 32, 32)  # an explicit size wins


def test_course_model_looks_for_the_run_of_its_size(monkeypatch):
    monkeypatch.setenv(SIZE_ENV, "224")
    with pytest.raises(FileNotFoundError, match="fishresnet-side-224px"):
        course_model("fishresnet-side", quick=True, train=False)

@pytest.mark.slow

def test_course_model_trains_at_the_chosen_size_and_again_on_other_photos(monkeypatch, capsys):
    monkeypatch.setenv(SIZE_ENV, "32")
    model, checkpoint = course_model("fishresnet-side", quick=True, progress=False)
    assert checkpoint["preprocessing"]["image_size"] == 32
    best = course_run_dir("fishresnet-side", True, 32) / "best.pt"
    assert best.is_file()
    assert not course_run_dir("fishresnet-side", True, 64).exists()
    root = default_dataset_dir(True, 32)
    assert checkpoint["data_identity"]["dataset_json"] == description_digest(root) is not None
    capsys.readouterr()
    shutil.rmtree(root)  # the photos deleted and drawn again alike (a fresh Colab session): the model is kept
    course_model("fishresnet-side", quick=True, progress=False)
    assert "training" not in capsys.readouterr().out
    # Other photos in the same folder (a course update): trained again on them, and then kept.
    monkeypatch.setattr(synthetic, "QUICK_CONFIG", dataclasses.replace(synthetic.QUICK_CONFIG, distractors=1))
    _, again = course_model("fishresnet-side", quick=True, progress=False)
    assert "was trained on other photos" in capsys.readouterr().out
    assert (again["data_identity"]["dataset_json"] == description_digest(root)
            != checkpoint["data_identity"]["dataset_json"])
    course_model("fishresnet-side", quick=True, progress=False)
    assert "training" not in capsys.readouterr().out


def test_a_checkpoint_from_before_the_record_was_trained_on_the_clean_photos(tmp_path):
    uneven = generate_dataset(tmp_path / "uneven", SyntheticConfig(size=16, fish_per_class=3, degraded_share=0.5),
                              workers=1, progress=False)
    clean = generate_dataset(tmp_path / "clean", SyntheticConfig(size=16, fish_per_class=3), workers=1, progress=False)
    old = {"data_identity": {"data_root": str(clean)}}  # no dataset_json: written before it was recorded
    assert trained_on(old, clean) and not trained_on(old, uneven)
    assert trained_on({"data_identity": {"dataset_json": description_digest(uneven)}}, uneven)
    assert not trained_on({"data_identity": {"dataset_json": description_digest(clean)}}, uneven)


def _standin_size(name: str) -> int:
    return int(read_manifest()[name]["image_size"])


def test_the_stand_in_warns_when_trained_at_another_size():
    model = build_model("convnext_nano", 9, weights="course", verbose=False)
    pretrained = _standin_size("convnext_nano")
    assert model.fishcam_pretrained_size == pretrained  # build_model records what the weights source says
    with pytest.warns(UserWarning,
                      match=rf"course weights pretrained on {pretrained} px photographs.*on {2 * pretrained} px"):
        warn_if_other_size(model, 2 * pretrained)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_if_other_size(model, pretrained)  # its own size: silent
        warn_if_other_size(build_model("convnext_nano", 9, weights=None, verbose=False), 2 * pretrained)


def test_fit_warns_for_a_stand_in_at_another_size(tiny_synth):
    splits = make_datasets(tiny_synth, view="side", image_size=32, augment=0, progress=False)
    model = build_model("convnext_nano", len(splits.classes), weights="course", verbose=False)
    assert _standin_size("convnext_nano") != 32
    with pytest.warns(UserWarning, match="starts from course weights pretrained on"):
        fit(model, splits.train, splits.val, epochs=1, batch_size=16, progress=False)


def test_make_data_and_train_take_the_setting(monkeypatch, tiny_synth, tmp_path, capsys):
    monkeypatch.setenv(SIZE_ENV, "40")
    assert main(["make-data", "--quick", "--workers", "1"]) == 0
    root = data_dir() / "synthetic-quick-40px"
    with Image.open(root / load_metadata(root)["image"].iat[0]) as image:
        assert image.size == (40, 40)
    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_synth), "--model", "fishresnet", "--width", "8", "--epochs", "1",
                 "--run-dir", str(run), "--no-progress"]) == 0
    assert torch.load(run / "best.pt", weights_only=True)["preprocessing"]["image_size"] == 40
