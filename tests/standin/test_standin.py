"""The course's pretrained stand-in: pretrained on the source task, saved small with a manifest,
loaded by build_model(weights="course") with its hash checked."""

from __future__ import annotations

import json

import pytest
import torch

from fishcam_utils.models import build_model
from fishcam_utils.standin.pretrain import STANDIN_RECIPES, pretrain
from fishcam_utils.standin.weights import MANIFEST, read_manifest, sha256_of, standin_state_dict

TINY = {"build": {"width": 4, "blocks": [1, 1]}, "data": {"fish_per_class": 3, "seed": 5, "size": 32},
        "fit": {"epochs": 1, "batch_size": 16, "lr": 3e-3, "schedule": "none"}, "augment": 0.0}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    folder = tmp_path_factory.mktemp("standin")
    mp = pytest.MonkeyPatch()
    mp.setenv("FISHCAM_DATA_DIR", str(folder / "data"))
    mp.setenv("FISHCAM_CACHE_DIR", str(folder / "cache"))
    try:
        entry = pretrain("fishresnet", folder, recipe=TINY, progress=False)  # the default device, as the CLI passes it
    finally:
        mp.undo()
    return folder, entry


def test_pretraining_writes_small_fp16_weights_and_a_manifest_that_can_remake_them(standin):
    folder, entry = standin
    weights = folder / entry["file"]
    assert weights.name == f"standin-fishresnet-{entry['sha256'][:12]}.pt" and str(weights) == entry["path"]
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest == read_manifest(folder) and set(manifest) == {"fishresnet"}
    saved = manifest["fishresnet"]
    assert saved["sha256"] == sha256_of(weights) and saved["bytes"] == weights.stat().st_size
    assert saved["recipe"] == TINY and saved["data"]["species"] == "source" and saved["data"]["seed"] == 5
    assert saved["fit"]["seed"] == 5  # fit's own seed, recorded
    assert len(saved["source_classes"]) == 12 and 0 <= saved["source_test_accuracy"] <= 1
    state = torch.load(weights, weights_only=True)
    assert not any(k.startswith("fc.") for k in state)  # the source task's head is not shipped
    assert all(v.dtype == torch.float16 for k, v in state.items() if v.is_floating_point() and "running_" not in k)
    assert all(v.dtype == torch.float32 for k, v in state.items() if "running_" in k)  # BatchNorm statistics in fp32
    assert state["layer1.0.bn1.num_batches_tracked"].dtype == torch.int64


def test_build_model_course_loads_the_backbone_and_a_fresh_head(standin, monkeypatch):
    folder, _ = standin
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(folder))
    model = build_model("fishresnet", 9, weights="course", width=4, blocks=(1, 1), verbose=False)
    assert model.fishcam_weights == "course" and model.fc.out_features == 9
    saved = torch.load(folder / read_manifest(folder)["fishresnet"]["file"], weights_only=True)
    for name, value in model.state_dict().items():
        if not name.startswith("fc."):
            torch.testing.assert_close(value, saved[name].to(value.dtype), rtol=0, atol=0)
    assert all(v.dtype == torch.float32 for v in standin_state_dict("fishresnet", folder).values()
               if v.is_floating_point())
    with pytest.raises(ValueError, match=r"pretrained with blocks=\[1, 1\], width=4, not blocks=\[2, 2\], width=32"):
        build_model("fishresnet", 9, weights="course", verbose=False)


def test_a_damaged_or_missing_stand_in_is_refused_with_the_fix(standin, tmp_path, monkeypatch):
    folder, _ = standin
    copy = tmp_path / "copy"
    copy.mkdir()
    weights = read_manifest(folder)["fishresnet"]["file"]
    for name in (MANIFEST, weights):
        (copy / name).write_bytes((folder / name).read_bytes())
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(copy))
    with open(copy / weights, "r+b") as handle:  # one byte changed
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(ValueError, match="does not match its manifest.*fishcam pretrain --backbone fishresnet"):
        build_model("fishresnet", 9, weights="course", width=4, blocks=(1, 1), verbose=False)
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError,
                       match="no course stand-in weights for resnet18.*fishcam pretrain --backbone resnet18"):
        build_model("resnet18", 9, weights="course", verbose=False)
    with pytest.raises(FileNotFoundError,
                       match="the course has no stand-in for resnet34; there are stand-ins for resnet18"):
        build_model("resnet34", 9, weights="course", verbose=False)
    with pytest.raises(ValueError, match="no stand-in recipe for 'vgg'"):
        pretrain("vgg", tmp_path)
    assert set(STANDIN_RECIPES) >= {"resnet18", "fishresnet"}


def test_fishcam_pretrain_writes_the_stand_in_and_says_where(tmp_path, monkeypatch, capsys):
    from fishcam_utils import cli
    from fishcam_utils.standin import pretrain as pretraining

    monkeypatch.setitem(pretraining.STANDIN_RECIPES, "fishresnet", TINY)  # the command's recipe, made tiny
    assert cli.main(["pretrain", "--backbone", "fishresnet", "--out", str(tmp_path / "w"), "--device", "cpu",
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    entry = read_manifest(tmp_path / "w")["fishresnet"]
    assert f"sha256 {entry['sha256'][:12]}" in out and str(tmp_path / "w" / entry["file"]) in out
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


def test_shipping_keeps_what_fp16_cannot_hold_and_a_second_save_replaces_only_its_own_entry(tmp_path):
    from torch import nn

    from fishcam_utils.standin.weights import save_standin, shippable, unshipped

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Linear(4, 2))
    with torch.no_grad():
        net[0].bias.fill_(1e-6)  # like ConvNeXt's layer scale: subnormal in fp16
        net[0].weight[0, 0, 0, 0] = 1e-7  # one tiny weight among many: fp16 holds the tensor well
        net[1].running_var.fill_(7e4)  # beyond fp16's range
    state = shippable(net.state_dict(), head="2")
    assert "2.weight" not in state and state["0.weight"].dtype == torch.float16
    assert state["1.running_var"].dtype == torch.float32 and state["0.bias"].dtype == torch.float32
    back = unshipped(state)
    assert torch.isfinite(back["1.running_var"]).all() and back["0.bias"][0].item() == pytest.approx(1e-6)
    # fp16 rounds each weight by at most eps16 / 2 of itself (the tiny one is kept within a subnormal step).
    assert (back["0.weight"] - net[0].weight).norm() <= torch.finfo(torch.float16).eps * net[0].weight.norm()
    first = save_standin(net, "a", "2", {"note": 1}, tmp_path)
    second = save_standin(net, "b", "2", {"note": 2}, tmp_path)
    with torch.no_grad():
        net[0].bias.add_(1.0)
    third = save_standin(net, "a", "2", {"note": 3}, tmp_path)
    manifest = read_manifest(tmp_path)
    assert set(manifest) == {"a", "b"} and manifest["a"]["note"] == 3 and manifest["b"]["file"] == second.name
    assert third != first and not first.exists() and third.exists() and second.exists()  # the old file of a is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([MANIFEST, second.name, third.name])


def test_the_command_line_lists_the_recipes_without_importing_torch():
    import subprocess
    import sys

    code = ("import sys; from fishcam_utils.cli import build_parser; build_parser(); "
            "from fishcam_utils.standin.recipes import STANDIN_RECIPES; "
            "print('torch' in sys.modules, sorted(STANDIN_RECIPES))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.startswith("False") and "resnet18" in out and "convnext_nano" in out


def test_a_course_network_without_imagenet_weights_says_so(capsys):
    build_model("convnext_nano", 9, weights="auto")
    assert "no ImageNet weights exist for it" in capsys.readouterr().out
    with pytest.raises(ValueError, match="weights='course'"):
        build_model("convnext_nano", 9, weights="imagenet", verbose=False)


def test_pretrain_refuses_a_bad_device_before_making_any_data(tmp_path, monkeypatch):
    monkeypatch.setenv("FISHCAM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(ValueError, match="'tpu' is not a device"):
        pretrain("fishresnet", tmp_path / "standin", recipe=TINY, device="tpu", progress=False)
    assert not (tmp_path / "data").exists() and not (tmp_path / "standin").exists()


def test_pretrained_takes_imagenet_when_it_can_else_the_stand_in_and_says_so(standin, monkeypatch, capsys):
    import fishcam_utils.models.weights as sources
    from fishcam_utils.errors import OfflineError

    folder, _ = standin
    monkeypatch.setenv("FISHCAM_STANDIN_DIR", str(folder))
    model = build_model("fishresnet", 9, weights="pretrained", width=4, blocks=(1, 1))  # no ImageNet weights exist
    assert model.fishcam_weights == "course" and "using the course's pretrained stand-in" in capsys.readouterr().out

    reference = build_model("resnet18", 9, weights=None, verbose=False).state_dict()
    marked = {k: v + 1 if v.is_floating_point() else v for k, v in reference.items()}
    monkeypatch.setattr(sources, "imagenet_state_dict", lambda *a, **k: marked)
    online = build_model("resnet18", 9, weights="pretrained", verbose=False)
    assert online.fishcam_weights == "imagenet" and torch.equal(online.conv1.weight, marked["conv1.weight"])

    def offline(*args, **kwargs):
        raise OfflineError("no internet here")

    monkeypatch.setattr(sources, "imagenet_state_dict", offline)
    monkeypatch.setattr(sources, "standin_entry", lambda name, folder=None: {"build": {}})
    monkeypatch.setattr(sources, "standin_state_dict", lambda name, folder=None: reference)
    fallback = build_model("resnet18", 9, weights="pretrained")
    assert fallback.fishcam_weights == "course" and torch.equal(fallback.conv1.weight, reference["conv1.weight"])
    assert "ImageNet weights unavailable (offline" in capsys.readouterr().out
    with pytest.raises(OfflineError):  # no stand-in to fall back on: ImageNet's own error, which says what to do
        build_model("convnext_tiny", 9, weights="pretrained", verbose=False)
