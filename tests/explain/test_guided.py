"""Guided Backpropagation, deconvnet and plain gradients (fishcam_utils.explain.guided).

Checked against captum on a torchvision ResNet-18, against explicit mask formulas on tiny networks,
and for leaving the caller's model exactly as it was.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from numerics import assert_float32_close, assert_float64_close, float64, network_terms
from torch import nn
from torchvision.models import resnet18

from fishcam_utils.explain.guided import (
    GuidedBackprop,
    GuidedResult,
    gradient_to_image,
    guided_gradcam,
    saliency,
)

pytestmark = pytest.mark.numeric

TARGETS = [1, 4, 1]  # distinct classes, one repeated


@pytest.fixture(scope="module")
def resnet() -> nn.Module:
    torch.manual_seed(0)
    return resnet18(weights=None, num_classes=6).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))


# --- tiny networks whose gradients can be written down ------------------------------------------

class TwoLayer(nn.Module):
    """Flatten → Linear → ReLU → Linear: the gradient is W2[t] masked at the ReLU, then W1ᵀ."""

    def __init__(self, inplace: bool) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.relu = nn.ReLU(inplace=inplace)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.relu(self.fc1(x.flatten(1))))


class ReusedRelu(nn.Module):
    """One in-place ReLU module called twice, as in torchvision's BasicBlock."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(12, 8)
        self.fc2 = nn.Linear(8, 8)
        self.fc3 = nn.Linear(8, 4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.relu(self.fc2(self.relu(self.fc1(x.flatten(1))))))


def _rule(grad: torch.Tensor, pre: torch.Tensor, rule: str) -> torch.Tensor:
    """What each rule lets through a ReLU whose forward input was ``pre``."""
    if rule == "backprop":
        return grad * (pre > 0)
    if rule == "deconvnet":
        return grad * (grad > 0)
    return grad * (pre > 0) * (grad > 0)


def _tiny_inputs(seed: int = 0, n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, 2, 2, generator=torch.Generator().manual_seed(seed))


def _seeded(module_cls, *args) -> nn.Module:
    torch.manual_seed(3)
    return module_cls(*args).eval()


@pytest.mark.parametrize("inplace", [False, True])
@pytest.mark.parametrize("rule", ["guided", "deconvnet", "backprop"])
def test_rules_match_explicit_masks_on_a_two_layer_net(rule, inplace):
    net = _seeded(TwoLayer, inplace)
    x, targets = _tiny_inputs(), torch.tensor([0, 3, 2, 0])
    result = GuidedBackprop(net, rule)(x, targets)

    with torch.no_grad():
        pre = net.fc1(x.flatten(1))                      # (N, 8)
        grad_a = net.fc2.weight[targets]                  # d logit_t / d relu output, (N, 8)
        expected = (_rule(grad_a, pre, rule) @ net.fc1.weight).reshape(x.shape)
        sizes = (_rule(grad_a, pre, rule).abs() @ net.fc1.weight.abs()).reshape(x.shape)
    assert isinstance(result, GuidedResult)
    # The masks are exact; autograd's product with fc1's weights sums 8 terms its own way.
    assert_float32_close(result.gradients, expected, terms=8, scale=sizes)
    torch.testing.assert_close(result.logits, net(x).detach(), rtol=0, atol=0)  # the same forward
    assert result.explained.dtype == torch.long and result.explained.tolist() == targets.tolist()


def test_the_rules_actually_differ_on_the_tiny_net():
    # Guards the explicit-mask tests against a degenerate net where every mask is all ones.
    net, x = _seeded(TwoLayer, False), _tiny_inputs()
    grads = {rule: GuidedBackprop(net, rule)(x, 1).gradients for rule in ("guided", "deconvnet", "backprop")}
    assert not torch.allclose(grads["guided"], grads["backprop"])
    assert not torch.allclose(grads["guided"], grads["deconvnet"])


@pytest.mark.parametrize("rule", ["guided", "deconvnet", "backprop"])
def test_reused_inplace_relu_matches_explicit_computation(rule):
    net, x = _seeded(ReusedRelu), _tiny_inputs(seed=5)
    result = GuidedBackprop(net, rule)(x, 2)

    with torch.no_grad():
        h1 = net.fc1(x.flatten(1))
        h2 = net.fc2(h1.clamp(min=0))
        g2 = _rule(net.fc3.weight[2].expand_as(h2), h2, rule)
        g1 = _rule(g2 @ net.fc2.weight, h1, rule)
        expected = (g1 @ net.fc1.weight).reshape(x.shape)
        sizes = ((g2.abs() @ net.fc2.weight.abs()) @ net.fc1.weight.abs()).reshape(x.shape)
    # Two products of 8 terms, each summed its own way by autograd; the masks are exact.
    assert_float32_close(result.gradients, expected, terms=16, scale=sizes)
    assert net.relu.inplace is True


# --- ResNet-18 against captum ----------------------------------------------------------------------

def _captum(cls_name: str, model: nn.Module, x: torch.Tensor, targets) -> torch.Tensor:
    import captum.attr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # captum warns that it sets (and removes) hooks
        return getattr(captum.attr, cls_name)(model).attribute(x.clone(), target=targets).detach()


@pytest.mark.parametrize("rule, reference", [("guided", "GuidedBackprop"), ("deconvnet", "Deconvolution")])
def test_resnet18_matches_captum(resnet, images, rule, reference):
    # In float64: captum hooks the network its own way. Scale: each image's largest gradient, and float64
    # leaves room for what cancels inside the network.
    model, images = float64(resnet), images.double()
    ours = GuidedBackprop(copy.deepcopy(model), rule)(images, TARGETS)
    theirs = _captum(reference, copy.deepcopy(model), images, TARGETS)
    assert ours.gradients.shape == images.shape
    assert theirs.abs().max() > 0
    assert_float64_close(ours.gradients, theirs, terms=network_terms(model),
                         scale=theirs.abs().flatten(1).amax(1)[:, None, None, None], what=f"{rule} against captum")


def test_resnet18_backprop_is_the_plain_gradient(resnet, images):
    model, images = float64(resnet), images.double()  # our hooked ReLUs against autograd's: in float64
    ours = GuidedBackprop(model, "backprop")(images, TARGETS)
    x = images.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(x).gather(1, torch.tensor(TARGETS)[:, None]).sum(), x)
    assert_float64_close(ours.gradients, expected, terms=network_terms(model),
                         scale=expected.abs().flatten(1).amax(1)[:, None, None, None], what="the plain gradient")


def test_default_targets_are_the_predictions_and_no_grad_is_fine(resnet, images):
    explain = GuidedBackprop(resnet)
    plain = explain(images)
    assert plain.explained.tolist() == resnet(images).argmax(1).tolist()
    with torch.no_grad():
        inside = explain(images)
    assert torch.is_grad_enabled()  # our enable_grad() did not leak out
    torch.testing.assert_close(inside.gradients, plain.gradients, rtol=0, atol=0)  # the same computation
    assert not inside.gradients.requires_grad and not inside.logits.requires_grad
    with torch.inference_mode():
        frozen = explain(images[:1].clone())
    # Against the same one image outside inference mode: a batch of 3 would round otherwise.
    torch.testing.assert_close(frozen.gradients, explain(images[:1]).gradients, rtol=0, atol=0)


# --- the caller's model is left as it was ----------------------------------------------------------

def _state(model: nn.Module) -> dict:
    return {
        "modes": [(name, m.training) for name, m in model.named_modules()],
        "flags": [(name, p.requires_grad) for name, p in model.named_parameters()],
        "relus": [(name, m, m.inplace) for name, m in model.named_modules() if isinstance(m, nn.ReLU)],
        "bn": [b.clone() for name, b in model.named_buffers()],
    }


def _assert_untouched(model: nn.Module, before: dict) -> None:
    for m in model.modules():
        for hooks in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks"):
            assert not getattr(m, hooks), f"{type(m).__name__}.{hooks} left behind"
    after = _state(model)
    assert after["modes"] == before["modes"]
    assert after["flags"] == before["flags"]
    assert [(n, id(m), i) for n, m, i in after["relus"]] == [(n, id(m), i) for n, m, i in before["relus"]]
    for a, b in zip(after["bn"], before["bn"]):  # eval mode during the call: BN statistics untouched
        assert torch.equal(a, b)
    assert all(p.grad is None for p in model.parameters())


@pytest.fixture
def half_frozen_resnet() -> nn.Module:
    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=5).train()
    for p in [*model.conv1.parameters(), *model.layer1.parameters()]:
        p.requires_grad_(False)
    model.layer3.eval()  # a mixed pattern of modes must come back module by module
    return model


def test_call_leaves_model_untouched(half_frozen_resnet):
    model = half_frozen_resnet
    before = _state(model)
    x = torch.randn(2, 3, 32, 32)
    for rule in ("guided", "deconvnet", "backprop"):
        result = GuidedBackprop(model, rule)(x, [0, 4])
        assert result.gradients.abs().sum() > 0
        _assert_untouched(model, before)


def test_bad_targets_raise_and_leave_model_untouched(half_frozen_resnet):
    model = half_frozen_resnet
    before = _state(model)
    explain, x = GuidedBackprop(model), torch.randn(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"targets.*\[0, 4\]"):
        explain(x, 5)
    _assert_untouched(model, before)
    with pytest.raises(ValueError, match=r"targets.*\[0, 4\]"):
        explain(x, [0, -1])
    _assert_untouched(model, before)
    with pytest.raises(ValueError, match=r"targets.*2 ints"):
        explain(x, [0, 1, 2])
    _assert_untouched(model, before)
    with pytest.raises(ValueError, match="targets"):
        explain(x, torch.tensor([0.0, 1.0]))
    _assert_untouched(model, before)


class Exploding(nn.Module):
    """Runs (and so hooks) a ReLU, then fails mid-forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.relu(self.conv(x))
        raise RuntimeError("boom")


def test_forward_that_raises_leaves_model_untouched():
    model = Exploding().train()
    model.conv.bias.requires_grad_(False)
    before = _state(model)
    with pytest.raises(RuntimeError, match="boom"):
        GuidedBackprop(model)(torch.randn(1, 3, 8, 8))
    _assert_untouched(model, before)


def test_unknown_rule_and_bad_inputs():
    with pytest.raises(ValueError, match="rule"):
        GuidedBackprop(TwoLayer(False), "lrp")
    with pytest.raises(ValueError, match="float"):
        GuidedBackprop(TwoLayer(False))(torch.zeros(1, 3, 2, 2, dtype=torch.long))


# --- batches and multi-view models ---------------------------------------------------------------

class SmallConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1, stride=2), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.head = nn.Linear(8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@pytest.mark.parametrize("rule", ["guided", "deconvnet", "backprop"])
def test_batched_equals_one_by_one(rule):
    torch.manual_seed(2)
    model = SmallConvBN()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
    model.train()  # the call itself must switch to eval, or images would mix through batch statistics
    # In float64: a batch of 4 and a batch of 1 take different kernels. Scale: the largest gradient or logit
    # of the image; float64 leaves room for what cancels inside the network.
    model.double()
    x, targets = torch.randn(4, 3, 32, 32).double(), [0, 3, 3, 1]
    explain = GuidedBackprop(model, rule)
    batched = explain(x, targets)
    for i, t in enumerate(targets):
        alone = explain(x[i:i + 1], t)
        assert_float64_close(batched.gradients[i:i + 1], alone.gradients, terms=network_terms(model),
                             scale=alone.gradients.abs().max(), what=f"image {i}'s gradients")
        assert_float64_close(batched.logits[i:i + 1], alone.logits, terms=network_terms(model),
                             scale=alone.logits.abs().max(), what=f"image {i}'s logits")
    assert model.training


class MultiView(nn.Module):
    """(views (N, V, 3, H, W), present (N, V)) → (logits, view weights), absent views masked out."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = SmallConvBN().features
        self.head = nn.Linear(8, 3)

    def forward(self, views: torch.Tensor, present: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, v = present.shape
        feats = self.backbone(views.flatten(0, 1)).view(n, v, -1)
        weights = present.float() / present.float().sum(1, keepdim=True)
        return self.head((feats * weights[..., None]).sum(1)), weights


def test_multi_view_inputs_and_tuple_outputs():
    torch.manual_seed(4)
    model = MultiView().eval()
    views = torch.randn(2, 3, 3, 32, 32)
    present = torch.tensor([[True, True, False], [True, True, True]])
    result = GuidedBackprop(model, "backprop")((views, present), [2, 0])
    assert result.gradients.shape == views.shape and result.logits.shape == (2, 3)
    assert result.gradients[0, 2].abs().sum() == 0  # the absent view does not count
    x = views.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(model(x, present)[0].gather(1, torch.tensor([[2], [0]])).sum(), x)
    # float32, the same forward; our hooked ReLUs pass the plain rule's exact masks, so the backwards'
    # kernels are the same too: rounding of the network's reductions at most, of the largest gradient.
    assert_float32_close(result.gradients, expected, terms=network_terms(model), scale=expected.abs().max())
    guided = GuidedBackprop(model)([views, present])
    assert guided.gradients.shape == views.shape


# --- pictures -----------------------------------------------------------------------------------

def test_guided_gradcam_is_the_broadcast_product():
    g, cam = torch.randn(2, 3, 8, 8), torch.rand(2, 8, 8)
    out = guided_gradcam(g, cam)
    assert out.shape == (2, 3, 8, 8)
    for c in range(3):  # one product each: exact
        torch.testing.assert_close(out[:, c], g[:, c] * cam, rtol=0, atol=0)
    torch.testing.assert_close(guided_gradcam(g, cam[:, None]), out, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(2, 7, 8\)"):
        guided_gradcam(g, torch.rand(2, 7, 8))
    with pytest.raises(ValueError, match=r"\(2, 3, 8, 8\).*\(3, 8, 8\)"):
        guided_gradcam(g, torch.rand(3, 8, 8))


def test_gradient_to_image():
    g = torch.randn(2, 3, 8, 6) * torch.tensor([1e-4, 10.0])[:, None, None, None]
    g[1, :, 0, 0] = 1e3  # saturates
    images = gradient_to_image(g)
    assert isinstance(images, np.ndarray) and images.shape == (2, 8, 6, 3) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 1 and np.isfinite(images).all()
    assert np.allclose(images[1, 0, 0], 1.0)
    # scale-free per image: the tiny gradient is stretched like a large one. Up to float32 rounding of the
    # x 1e5, the mean and the variance of n = 144 values, and (g - mean) / std, shown x 0.1.
    first = g[:1].double()
    sizes = 0.1 * (first.abs().max() + first.mean().abs()) / first.std(unbiased=False)
    assert_float32_close(gradient_to_image(g[:1] * 1e5), images[:1], terms=2 * first.numel() + 4, scale=sizes)
    flat = gradient_to_image(torch.zeros(1, 3, 4, 4))
    assert np.allclose(flat, 0.5)
    with pytest.raises(ValueError):
        gradient_to_image(torch.zeros(3, 4, 4))


def test_saliency():
    g = torch.randn(3, 3, 8, 8)
    g[2] = 0
    s = saliency(g)
    assert s.shape == (3, 8, 8)
    assert torch.isfinite(s).all() and s.min() >= 0 and s.max() <= 1
    for i in range(2):
        assert s[i].max() == 1
        expected = g[i].abs().amax(0)
        torch.testing.assert_close(s[i], expected / expected.max(), rtol=0, atol=0)  # the same operations
    assert torch.equal(s[2], torch.zeros(8, 8))


def test_guided_gradcam_pipeline_on_resnet(resnet, images):
    grads = GuidedBackprop(resnet)(images[:2], 3).gradients
    cam = torch.rand(2, 64, 64)
    combined = guided_gradcam(grads, cam)
    assert combined.shape == grads.shape
    assert gradient_to_image(combined).shape == (2, 64, 64, 3)
    assert saliency(combined).shape == (2, 64, 64)
