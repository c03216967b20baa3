"""Models: every architecture builds, heads, weights (ImageNet cached / offline / file), CAM layers."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from fishcam_utils.errors import OfflineError
from fishcam_utils.models import (
    FishResNet,
    MLPHead,
    ResidualBlock,
    backbone_names,
    backbone_parameters,
    build_model,
    cam_layers,
    head_parameters,
    model_config,
    pretrained,
    rebuild_model,
)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network and an empty torch cache, whatever the machine has."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(pretrained, "_reachable", lambda host, port, timeout: False)
    return tmp_path / "torch" / "hub" / "checkpoints"


@pytest.mark.parametrize("name", backbone_names())
@pytest.mark.parametrize("head", ["linear", "mlp"])
def test_every_model_builds_with_either_head_and_predicts_any_class_count(name, head):
    model = build_model(name, 5, head=head, weights=None).eval()
    out = model(torch.randn(2, 3, 64, 64))
    assert out.shape == (2, 5)
    config = model_config(model)
    assert config["name"] == name and config["num_classes"] == 5 and config["head"] == head
    # The head and the backbone split the parameters between them, with nothing left over.
    n_head, n_backbone = (sum(p.numel() for p in head_parameters(model)),
                          sum(p.numel() for p in backbone_parameters(model)))
    assert n_head > 0 and n_backbone > 0 and n_head + n_backbone == sum(p.numel() for p in model.parameters())


def test_mlp_head_is_linear_bn_relu_dropout_twice_then_linear():
    head = MLPHead(64, 9, hidden=(32, 16), dropout=0.25)
    kinds = [type(m) for m in head]
    assert kinds == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Dropout] * 2 + [nn.Linear]
    assert [head[0].in_features, head[4].in_features, head[8].in_features, head[8].out_features] == [64, 32, 16, 9]
    assert head[3].p == 0.25


@pytest.mark.parametrize("name", backbone_names())
def test_cam_layers_exist_and_come_in_network_order(name):
    model = build_model(name, 3, weights=None)
    order = [n for n, _ in model.named_modules()]
    layers = cam_layers(model)
    assert len(layers) >= 2 and all(layer in order for layer in layers)
    assert [order.index(layer) for layer in layers] == sorted(order.index(layer) for layer in layers)
    # Each listed layer yields a spatial map (what Grad-CAM needs).
    shapes = {}
    hooks = [model.get_submodule(layer).register_forward_hook(lambda m, i, o, k=layer: shapes.__setitem__(k, o.shape))
             for layer in layers]
    model.eval()(torch.randn(1, 3, 64, 64))
    for hook in hooks:
        hook.remove()
    assert all(len(shapes[layer]) == 4 and shapes[layer][-1] >= 1 for layer in layers)


def test_fishresnet_accepts_any_image_size_and_its_width_sets_the_channels():
    model = FishResNet(9, width=8).eval()
    for size in (32, 64, 97):
        assert model(torch.randn(1, 3, size, size)).shape == (1, 9)
    assert model.features(torch.randn(1, 3, 64, 64)).shape == (1, 16, 16, 16)
    small, wide = FishResNet(9, width=8), FishResNet(9, width=16)
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in small.parameters())


def test_residual_block_adds_its_input_to_the_convolution_branch():
    torch.manual_seed(0)
    block = ResidualBlock(4, 4).eval()
    x = torch.randn(2, 4, 8, 8)
    branch = block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(x)))))
    torch.testing.assert_close(block(x), torch.relu(branch + x), rtol=0, atol=0)  # the block's own steps, in its order
    down = ResidualBlock(4, 8, stride=2).eval()
    branch = down.bn2(down.conv2(torch.relu(down.bn1(down.conv1(x)))))
    torch.testing.assert_close(down(x), torch.relu(branch + down.shortcut(x)), rtol=0, atol=0)


def test_rebuilding_from_the_config_gives_the_same_architecture():
    model = build_model("fishresnet", 7, head="mlp", hidden=(24,), dropout=0.1, width=6, blocks=(1, 3), weights=None)
    again = rebuild_model(model_config(model))
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*fishresnet.*convnext_tiny"):
        build_model("resnet9", 9)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet18", 1, weights=None)
    with pytest.raises(ValueError, match="unknown head .deep.; choose one of linear, mlp"):
        build_model("resnet18", 9, head="deep", weights=None)
    with pytest.raises(ValueError, match="no ImageNet weights"):
        build_model("fishresnet", 9, weights="imagenet")


def test_imagenet_offline_fails_fast_and_says_where_to_put_the_file(offline):
    start = time.perf_counter()
    with pytest.raises(OfflineError) as error:
        build_model("resnet18", 9, weights="imagenet")
    assert time.perf_counter() - start < 5
    message = str(error.value)
    assert "resnet18-f37072fd.pth" in message and str(offline) in message and "weights=None" in message


def test_auto_falls_back_to_random_initialisation_in_one_visible_line(offline, capsys):
    model = build_model("convnext_tiny", 9, weights="auto")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and "convnext_tiny" in lines[0] and "random initialisation" in lines[0]
    assert model.fishcam_weights == "random"


def test_imagenet_weights_are_taken_from_the_torch_cache(offline, capsys):
    torch.manual_seed(1)
    reference = tvm.resnet18(weights=None)
    offline.mkdir(parents=True)
    torch.save(reference.state_dict(), offline / "resnet18-f37072fd.pth")
    model = build_model("resnet18", 4, weights="imagenet")
    assert model.fishcam_weights == "imagenet" and capsys.readouterr().out == ""
    torch.testing.assert_close(model.conv1.weight, reference.conv1.weight, rtol=0, atol=0)  # copied, not computed
    torch.testing.assert_close(model.layer4[1].bn2.running_var, reference.layer4[1].bn2.running_var, rtol=0, atol=0)
    assert model.fc.out_features == 4  # the ImageNet head is replaced


def test_weights_from_a_file_saved_by_data_parallel_load(tmp_path):
    torch.manual_seed(2)
    source = build_model("fishresnet", 9, width=4, weights=None)
    path = tmp_path / "w.pth"
    torch.save(nn.DataParallel(source).state_dict(), path)  # keys start with "module."
    model = build_model("fishresnet", 3, width=4, weights=path)  # another class count: the head is new
    torch.testing.assert_close(model.layer2[0].conv1.weight, source.layer2[0].conv1.weight, rtol=0, atol=0)  # loaded
    assert model.fc.out_features == 3 and model.fishcam_weights == f"file:{path}"


def test_weights_from_another_architecture_are_refused_clearly(tmp_path):
    path = tmp_path / "w.pth"
    torch.save(build_model("fishresnet", 9, width=4, weights=None).state_dict(), path)
    with pytest.raises(ValueError, match="do not fit.*missing"):
        build_model("fishresnet", 9, width=8, weights=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model("fishresnet", 9, weights=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read weights from .*junk.pth"):
        build_model("fishresnet", 9, weights=tmp_path / "junk.pth")
