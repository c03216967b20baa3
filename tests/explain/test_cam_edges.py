"""Edge cases that gave misleading maps: each test failed before its fix (issue 16, part 3)."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
import torch.nn.functional as F
from helpers import activations_and_gradients
from numerics import assert_within, channel_sum_scale, float32_atol, map_atol
from torch import nn

from fishcam_utils.explain import (
    CAM,
    FlatMapWarning,
    GradCAM,
    GuidedBackprop,
    GuidedRuleWarning,
    guided_gradcam,
    make_cam,
    saliency,
)
from fishcam_utils.explain.judging.metrics import dilate


class _Spread(nn.Module):
    """Spatially constant feature maps: each channel's mean over the image, at 3 x 3."""

    def forward(self, x):
        return x.mean((2, 3), keepdim=True).expand(-1, -1, 3, 3) * 1.0


class FlatNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.spread = _Spread()
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.spread(torch.relu(self.conv(x))).mean((2, 3)))


def test_a_constant_map_stays_zeros_and_is_flagged_flat():
    model = FlatNet().eval()
    torch.manual_seed(1)
    x = torch.randn(4, 3, 61, 61)  # an odd size, whose bilinear weights do not sum exactly
    for method in ("gradcam", "hirescam", "scorecam", "eigencam"):
        result = make_cam(method, model, "spread")(x, targets=[0, 1, 2, 3])
        assert torch.equal(result.maps, torch.zeros_like(result.maps)), method
        assert result.flat.shape == (4,) and bool(result.flat.all()), method
    assert not bool(GradCAM(model, "conv")(x, targets=0).flat.any())  # a real map is not flagged


class LayerNormNet(nn.Module):
    """conv → LayerNorm over channels → conv → GAP → linear: the gradient at the first conv is
    orthogonal to its output at every pixel (LayerNorm ignores scale), so HiResCAM sums to noise."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.norm = nn.LayerNorm(16, eps=1e-12)
        self.head_conv = nn.Conv2d(16, 8, 1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        a = self.stem(x)
        a = self.norm(a.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.fc(torch.relu(self.head_conv(a)).mean((2, 3)))


def test_hirescam_before_a_layernorm_is_flagged_as_noise_not_shown():
    model = LayerNormNet().eval()
    x = torch.randn(2, 3, 16, 16)
    with pytest.warns(FlatMapWarning, match="HiResCAM at 'stem': 2 of 2 maps vary only at rounding-noise level"):
        result = make_cam("hirescam", model, "stem")(x, targets=1)
    assert bool(result.flat.all()) and torch.equal(result.maps, torch.zeros_like(result.maps))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FlatMapWarning)  # Grad-CAM averages the gradient first: a real map
        assert not bool(make_cam("gradcam", model, "stem")(x, targets=1).flat.any())


def test_guided_grad_cam_keeps_the_weakest_region_of_a_positive_map(resnet):
    """At a 2 x 2 layer Grad-CAM is often positive everywhere; min-max before the product zeroed
    the weakest cell's guided gradients (7 of 16 images), captum's definition keeps them."""
    torch.manual_seed(2)
    x = torch.randn(16, 3, 64, 64)
    cam = GradCAM(resnet, "layer4")(x, normalize=None)
    positive = (cam.raw.flatten(1).amin(1) > 0)
    assert positive.any(), "some maps are positive everywhere"
    ours = make_cam("guided-gradcam", resnet, "layer4")(x)
    guided = GuidedBackprop(resnet)(x).gradients
    torch.testing.assert_close(ours.maps, saliency(guided_gradcam(guided, cam.maps)), rtol=0, atol=0)  # the same steps
    # The outer 16 x 16 corner of each quarter takes its cell's value alone (bilinear, corners not aligned),
    # so there the old min-max factor was exactly 0 for the weakest cell.
    weakest = cam.raw.flatten(1).argmin(1)
    corners = [(slice(0, 16), slice(0, 16)), (slice(0, 16), slice(48, 64)), (slice(48, 64), slice(0, 16)),
               (slice(48, 64), slice(48, 64))]
    for i in positive.nonzero().flatten().tolist():
        rows, cols = corners[int(weakest[i])]
        assert float(ours.maps[i, rows, cols].amax()) > 0, "the weakest cell still shows its guided gradients"
        assert float(cam.maps[i, rows, cols].amin()) > 0  # the factor there is the cell's positive value


@pytest.mark.numeric
def test_cam_refuses_heads_and_layers_it_cannot_explain(resnet):
    from fishcam_utils.models import build_model

    x = torch.randn(1, 3, 64, 64)
    convnext = build_model("convnext_nano", 9, weights=None, verbose=False).eval()
    with pytest.raises(ValueError, match="logits are not classifier.2.*LayerNorm.*use Grad-CAM"):
        CAM(convnext, "features")(x)
    with pytest.raises(ValueError, match="'layer3' has 256 channels and the head takes 512; use Grad-CAM"):
        CAM(resnet, "layer3", fc="fc")(x)
    with pytest.raises(ValueError, match=r"was not built by build_model, so name the head: .*fc='fc'"):
        CAM(resnet, "layer4")
    model = copy.deepcopy(resnet)
    model.fc = nn.Sequential(nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 9))
    with pytest.raises(ValueError, match="logits are not fc.2"):
        CAM(model, "layer4", fc="fc.2")(x)
    # The right head still works: CAM's maps are Grad-CAM's, up to float32 rounding of one forward's
    # activations summed over C channels (and Grad-CAM's mean over h w) two ways, terms |w_kc| |A_c|.
    ours = CAM(resnet, "layer4", fc="fc")(x)
    a, _, _ = activations_and_gradients(copy.deepcopy(resnet), "layer4", x, ours.explained)
    raw_atol = float32_atol(channel_sum_scale(resnet.fc.weight.detach()[ours.explained], a), terms=4 + a.shape[1] + 2)
    assert_within(ours.maps, GradCAM(resnet, "layer4")(x).maps, map_atol(raw_atol, ours.raw), "CAM against Grad-CAM")


def test_guided_backprop_warns_on_a_network_without_relu_modules():
    from fishcam_utils.models import build_model

    convnext = build_model("convnext_nano", 9, weights=None, verbose=False).eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.warns(GuidedRuleWarning, match="no nn.ReLU modules \\(it uses GELU\\).*plain gradients"):
        guided = GuidedBackprop(convnext)(x, 1).gradients
    plain = GuidedBackprop(convnext, "backprop")(x, 1).gradients
    torch.testing.assert_close(guided, plain, rtol=0, atol=0)  # what the warning says: no hook, the same backward
    mixed = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.GELU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 2))
    with pytest.warns(GuidedRuleWarning, match="acts at the 1 nn.ReLU modules.*GELU modules keep the plain gradient"):
        GuidedBackprop(mixed)


def test_a_module_that_runs_twice_in_a_forward_is_refused_by_name(resnet, batch):
    x, targets = batch
    with pytest.raises(ValueError, match=r"'layer4.1.relu' runs twice in one forward.*its block 'layer4.1'"):
        GradCAM(resnet, "layer4.1.relu")(x, targets)
    with pytest.raises(ValueError, match="'layer4' takes what another target layer made"):
        GradCAM(resnet, ["layer4.0", "layer4"])(x, targets)
    assert GradCAM(resnet, "layer4.1")(x, targets).maps.shape == (3, 64, 64)
    with pytest.raises(ValueError, match=r"'layer4.1.relu' runs twice in one forward"):  # without gradients too
        make_cam("eigencam", resnet, "layer4.1.relu")(x, targets)


def test_unnormalised_constant_maps_keep_their_value_and_noise_is_zeros():
    model = FlatNet().eval()
    x = torch.randn(2, 3, 61, 61)
    every = GradCAM(model, "spread").all_classes(x, normalize=None)
    warm = every.raw.flatten(2).amax(-1) > 0  # (image, class) whose constant map survives the ReLU
    assert warm.any() and bool(every.flat.all())
    assert (every.maps.flatten(2).amin(-1)[warm] > 0).all()  # the constant, not zeros
    with pytest.warns(FlatMapWarning):
        noise = make_cam("hirescam", LayerNormNet().eval(), "stem")(torch.randn(2, 3, 16, 16), 1, normalize=None)
    assert torch.equal(noise.maps, torch.zeros_like(noise.maps))


def test_dilate_builds_its_kernel_where_the_masks_are(monkeypatch):
    """On CUDA the CPU kernel failed; a meta tensor carries the device without one."""
    import fishcam_utils.explain.judging.metrics as metrics

    seen = []
    real = F.conv2d

    def recording(inputs, weight, *args, **kwargs):
        seen.append((inputs.device, weight.device))
        return real(inputs, weight, *args, **kwargs)

    monkeypatch.setattr(metrics.F, "conv2d", recording)
    dilate(torch.zeros(1, 5, 5, dtype=torch.bool, device="meta"), 1)
    assert seen == [(torch.device("meta"), torch.device("meta"))]
    grown = dilate(torch.eye(5, dtype=torch.bool)[None], 1)
    assert grown[0, 0, 1] and not grown[0, 0, 2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_dilate_on_cuda_masks():
    masks = torch.zeros(1, 9, 9, dtype=torch.bool, device="cuda")
    masks[0, 4, 4] = True
    grown = dilate(masks, 2)
    assert grown.device.type == "cuda" and int(grown.sum()) == 13


def test_slow_methods_show_progress_when_asked(resnet, batch, capsys):
    """(The bar of ``fishcam gradcam``: tests/cli/test_cli_errors.py.)"""
    x, targets = batch
    make_cam("scorecam", resnet, "layer4", batch_size=64, progress=True)(x[:1], targets[:1])
    assert "Score-CAM, 1 image(s) x 512 channels" in capsys.readouterr().err
    make_cam("ablationcam", resnet, "layer4", batch_size=64, progress=True)(x[:1], targets[:1])
    assert "Ablation-CAM, 1 image(s) x 512 channels" in capsys.readouterr().err
    make_cam("scorecam", resnet, "layer4", progress=False)(x[:1], targets[:1])
    assert "Score-CAM" not in capsys.readouterr().err
