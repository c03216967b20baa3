"""The course's pretrained stand-in: pretrained on the source task, saved small with a manifest,
loaded by build_model(weights="course") with its hash checked."""

from __future__ import annotations

import json

import pytest
import torch

from fishcam_utils.models import build_model
from fishcam_utils.models.standin import MANIFEST, read_manifest, sha256_of, standin_state_dict
from fishcam_utils.training.pretrain import STANDIN_RECIPES, pretrain

TINY = {"build": {"width": 4, "blocks": [1, 1]}, "data": {"fish_per_class": 3, "seed": 5, "size": 32},
        "fit": {"epochs": 1, "batch_size": 16, "lr": 3e-3, "schedule": "none"}, "augment": 0.0}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standin")
    mp = pytest.MonkeyPatch()
    mp.setenv("FISHCAM_DATA_DIR", str(folder / "data"))
    mp.setenv("FISHCAM_CACHE_DIR", str(folder / "cache"))
    try:
        entry = pretrain("fishresnet", folder, recipe=TINY, device="cpu", progress=False)
    finally:
        mp.undo()
    return folder, entry


def test_pretraining_writes_small_fp16_weights_and_a_manifest_that_can_remake_them(standin):
    folder, entry = standin
    weights = folder / "standin-fishresnet.pt"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest == read_manifest(folder) and set(manifest) == {"fishresnet"}
    saved = manifest["fishresnet"]
    assert saved["sha256"] == sha256_of(weights) and saved["bytes"] == weights.stat().st_size
    assert saved["recipe"] == TINY and saved["data"]["species"] == "source" and saved["data"]["seed"] == 5
    assert len(saved["source_classes"]) == 12 and 0 <= saved["source_test_accuracy"] <= 1
    state = torch.load(weights, weights_only=True)
    assert not any(k.startswith("fc.") for k in state)  # the source task's head is not shipped
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


def test_build_model_course_loads_the_backbone_and_a_fresh_head(standin, monkeypatch):
    folder, _ = standin
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(folder))
    model = build_model("fishresnet", 9, weights="course", width=4, blocks=(1, 1), verbose=False)
    assert model.fishcam_weights == "course" and model.fc.out_features == 9
    saved = torch.load(folder / "standin-fishresnet.pt", weights_only=True)
    for name, value in model.state_dict().items():
        if not name.startswith("fc."):
            torch.testing.assert_close(value, saved[name].to(value.dtype), rtol=0, atol=0)
    assert all(v.dtype == torch.float32 for v in standin_state_dict("fishresnet", folder).values() if v.is_floating_point())
    with pytest.raises(ValueError, match=r"pretrained with blocks=\[1, 1\], width=4, not blocks=\[2, 2\], width=32"):
        build_model("fishresnet", 9, weights="course", verbose=False)


def test_a_damaged_or_missing_stand_in_is_refused_with_the_fix(standin, tmp_path, monkeypatch):
    folder, _ = standin
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (MANIFEST, "standin-fishresnet.pt"):
        (copy / name).write_bytes((folder / name).read_bytes())
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(copy))
    with open(copy / "standin-fishresnet.pt", "r+b") as handle:  # one byte changed
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="does not match its manifest.*fishcam pretrain --backbone fishresnet"):
        build_model("fishresnet", 9, weights="course", width=4, blocks=(1, 1), verbose=False)
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError, match="no course stand-in weights for resnet18.*fishcam pretrain --backbone resnet18"):
        build_model("resnet18", 9, weights="course", verbose=False)
    with pytest.raises(ValueError, match="no stand-in recipe for 'vgg'"):
        pretrain("vgg", tmp_path)
    assert set(STANDIN_RECIPES) >= {"resnet18", "fishresnet"}


def test_fishcam_pretrain_writes_the_stand_in_and_says_where(tmp_path, monkeypatch, capsys):
    from fishcam_utils import cli
    from fishcam_utils.training import pretrain as pretraining

    monkeypatch.setitem(pretraining.STANDIN_RECIPES, "fishresnet", TINY)  # the command's recipe, made tiny
    assert cli.main(["pretrain", "--backbone", "fishresnet", "--out", str(tmp_path / "w"), "--device", "cpu",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    entry = read_manifest(tmp_path / "w")["fishresnet"]
    assert f"sha256 {entry['sha256'][:12]}" in out and str(tmp_path / "w" / "standin-fishresnet.pt") in out
    assert entry["recipe"] == TINY


def test_view_none_mixes_every_view_each_photo_a_sample(tiny_synth):
    from fishcam_utils.data import make_datasets

    side = make_datasets(tiny_synth, view="side", image_size=32, cache=False, progress=False)
    mixed = make_datasets(tiny_synth, view=None, image_size=32, cache=False, progress=False)
    for split in ("train", "val", "test"):
        one, every = getattr(side, split), getattr(mixed, split)
        assert len(every) == 3 * len(one)
        assert sorted(every.index.frame["view"].unique()) == ["back", "belly", "side"]
        assert set(every.index.frame["fish_id"]) == set(one.index.frame["fish_id"])  # the same fish, leak-free
    with pytest.raises(ValueError, match="or view=None for all of them mixed"):
        make_datasets(tiny_synth, view="top", image_size=32, cache=False, progress=False)
