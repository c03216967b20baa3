"""The CAM family against captum and pytorch-grad-cam, against explicit computations, and clean."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import activations_and_gradients
from numerics import (
    assert_float32_close,
    assert_float64_close,
    assert_within,
    channel_sum_scale,
    float32_atol,
    float64,
    float64_atol,
    map_atol,
    network_terms,
    pytorch_grad_cam_atol,
)
from torch import nn

from fishcam_utils.explain import registry
from fishcam_utils.explain.cam import CAM, GradCAM, HiResCAM, make_cam, normalize_maps

pytestmark = pytest.mark.numeric

SIZE = 64


def no_hooks(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules())


@pytest.mark.parametrize("layer", ["layer3", "layer4"])
def test_raw_grad_cam_equals_captum(resnet, batch, layer):
    from captum.attr import LayerGradCam

    x, targets = batch
    reference = LayerGradCam(copy.deepcopy(resnet), getattr(copy.deepcopy(resnet), layer))
    # In float64 (captum runs the network its own way): the same formula, mean over pixels, sum over channels.
    model, x = float64(resnet), x.double()
    ours = GradCAM(model, layer)(x, targets)
    reference = LayerGradCam(model, getattr(model, layer)).attribute(x, target=targets, relu_attributions=True)
    a, g, _ = activations_and_gradients(copy.deepcopy(model), layer, x, targets)
    assert_float64_close(torch.relu(ours.raw), reference[:, 0],
                         terms=network_terms(model) + a[0, 0].numel() + a.shape[1],
                         scale=channel_sum_scale(g.abs().mean((2, 3)), a), what="Grad-CAM against captum")


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam",
                                    pytest.param("scorecam", marks=pytest.mark.slow)])
def test_upsampled_maps_equal_pytorch_grad_cam(resnet, batch, method):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, targets = batch
    layer = "layer3" if method == "scorecam" else "layer4"  # fewer channels keep Score-CAM quick
    if method == "scorecam":
        x, targets = x[:2], targets[:2]
    # In float64: pytorch-grad-cam runs the network its own way, and is float64 up to its resizing.
    resnet, x = float64(resnet), x.double()
    if method == "gradcam++":
        # pytorch-grad-cam adds 1e-6 to each coefficient's denominator; we use the paper's formula.
        # Larger logits make its epsilon small; what it still moves the maps by is allowed below.
        with torch.no_grad():
            resnet.fc.weight.mul_(1000)
    cam = make_cam(method, resnet, layer)
    scores = recorded_logits(cam)
    result = cam(x, targets)
    ours = result.maps
    classes = {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "hirescam": pgc.HiResCAM,
               "layercam": pgc.LayerCAM, "scorecam": pgc.ScoreCAM}
    model = copy.deepcopy(resnet)
    with classes[method](model=model, target_layers=[getattr(model, layer)]) as reference:
        theirs = reference(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    raw_atol = 0.0
    if method == "gradcam++":  # the map's terms, as ours and as pytorch-grad-cam weighs them
        a, g, _ = activations_and_gradients(copy.deepcopy(resnet), layer, x, targets)
        denominator = 2 * g**2 + a.sum((2, 3), keepdim=True) * g**3
        ours_alpha = torch.where((g != 0) & (denominator != 0), g**2 / denominator, 0)
        theirs_alpha = torch.where(g != 0, g**2 / (denominator + 1e-6), 0)
        raw_atol = channel_sum_scale((torch.relu(g) * (ours_alpha - theirs_alpha)).sum((2, 3)), a)
    if method == "scorecam":
        raw_atol = score_cam_atol(result.raw, scores)
    assert_within(ours, torch.from_numpy(theirs),
                  pytorch_grad_cam_atol() + map_atol(raw_atol, result.raw, torch.float64),
                  f"{method} against pytorch-grad-cam")


def recorded_logits(cam) -> list:
    """The logits of every extra pass a gradient-free ``cam`` makes (Score-CAM's masked images), kept as
    the passes run."""
    seen: list = []
    logits_for = cam.logits_for
    cam.logits_for = lambda inputs: seen.append(logits_for(inputs)) or seen[-1]
    return seen


def score_cam_atol(raw: torch.Tensor, scores: list) -> torch.Tensor:
    """(N, 1, 1): how far two Score-CAM raw maps (N, h, w) of float64 passes may be apart. Both round the
    channels' scores to float32 (ours: logits' .float(); pytorch-grad-cam: torch.Tensor(scores)), alike
    but for a score whose float64 value lies within its last bits of a float32 tie (2 eps |s|), then
    softmax them in float32 over C channels their own way ((C + 2) eps); relative errors of weights w_c,
    and sum_c w_c A_c has no cancellation (w, A >= 0), so of the map's peak."""
    largest = max(float(s.abs().max()) for s in scores)
    channels = sum(len(s) for s in scores) // raw.shape[0]
    peak = raw.abs().flatten(1).amax(1)[:, None, None]
    return float32_atol(peak, terms=channels + 2) + float32_atol(peak * largest, terms=2)


def test_an_activation_changed_in_place_later_is_explained_as_it_was_produced(resnet, batch):
    """layer4.1.bn2's output is changed in place by `out += identity; out = relu(out)`."""
    x, targets = batch
    resnet, x = float64(resnet), x.double()  # the explicit block and head are another path: in float64
    ours = GradCAM(resnet, "layer4.1.bn2")(x, targets, normalize=None)
    # Explicit: recompute the last block from its input, with the bn2 output as a leaf.
    block = resnet.layer4[1]
    seen = {}
    handle = block.register_forward_hook(lambda m, i, o: seen.setdefault("input", i[0].detach().clone()))
    with torch.no_grad():
        resnet(x)
    handle.remove()
    identity = seen["input"]
    with torch.no_grad():
        a = block.bn2(block.conv2(block.relu(block.bn1(block.conv1(identity)))))
    a.requires_grad_(True)
    pooled = torch.flatten(resnet.avgpool(torch.relu(a + identity)), 1)
    logits = resnet.fc(pooled)
    (g,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), a)
    explicit = (g.mean((2, 3), keepdim=True) * a).sum(1).detach()
    terms = network_terms(resnet)
    assert_float64_close(ours.raw, explicit.detach(), terms=terms + a[0, 0].numel() + a.shape[1],
                         scale=channel_sum_scale(g.abs().mean((2, 3)), a.detach()), what="Grad-CAM at bn2")
    logit_terms = pooled.detach().abs() @ resnet.fc.weight.detach().abs().T + resnet.fc.bias.detach().abs()
    assert_float64_close(ours.logits, logits.detach(), terms=terms, scale=logit_terms, what="the logits")


def test_grad_cam_is_cam_up_to_a_positive_scale_for_a_gap_linear_head(resnet, batch):
    x, targets = batch
    grad_cam = GradCAM(resnet, "layer4")(x, targets, normalize=None).raw
    cam = CAM(resnet, "layer4", fc="fc")(x, targets, normalize=None).raw
    h, w = cam.shape[-2:]
    # dS/dA_cij = w_kc / (h w) for every pixel, so Grad-CAM's weights are CAM's divided by h w.
    # float32, one forward pass's activations either way: Grad-CAM's mean over h w pixels and the two
    # ways of summing C channels round differently, by terms of size |w_kc| |A_c|.
    a, _, _ = activations_and_gradients(copy.deepcopy(resnet), "layer4", x, targets)
    raw_atol = float32_atol(channel_sum_scale(resnet.fc.weight.detach()[targets], a), terms=h * w + a.shape[1] + 2)
    assert_within(grad_cam * (h * w), cam, raw_atol, "Grad-CAM times h w against CAM")
    assert_within(GradCAM(resnet, "layer4")(x, targets).maps, CAM(resnet, "layer4", fc="fc")(x, targets).maps,
                  map_atol(raw_atol, cam), "Grad-CAM's maps against CAM's")


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam",
                                    pytest.param("scorecam", marks=pytest.mark.slow)])
def test_all_classes_at_once_equal_one_call_per_class(resnet, batch, method):
    x, _ = batch
    x = x[:2]
    if method != "scorecam":  # one batched backward (vmap) against one of its own: in float64
        resnet, x = float64(resnet), x.double()
    cam = make_cam(method, resnet, "layer4")
    together = cam.all_classes(x)
    assert together.maps.shape == (2, 9, SIZE, SIZE) and together.raw.shape[:2] == (2, 9)
    for k in (0, 4, 8):
        alone = cam(x, targets=k)
        if method == "scorecam":
            # The same masked passes, then float32 softmaxes over C channels of (N, C, K) and (N, C, 1) scores;
            # relative errors of weights w_c >= 0 of A_c >= 0: of the map's peak.
            raw_atol = float32_atol(alone.raw.abs().flatten(1).amax(1)[:, None, None], terms=512 + 2)  # C = 512
            dtype = torch.float32
        else:
            # Every method's terms are no larger than sum_ij |G| |A_c| (Grad-CAM++'s alpha is at most 1/2).
            a, g, _ = activations_and_gradients(copy.deepcopy(resnet), "layer4", x, torch.full((2,), k))
            raw_atol = float64_atol(channel_sum_scale(g.abs().sum((2, 3)), a), terms=network_terms(resnet) + 4 + 512)
            dtype = torch.float64
        assert_within(together.raw[:, k], alone.raw, raw_atol, f"{method}, all classes against class {k}")
        assert_within(together.maps[:, k], alone.maps, map_atol(raw_atol, alone.raw, dtype),
                      f"{method}'s maps, all classes against class {k}")


class _NumpyDouble(torch.autograd.Function):
    """Doubles its input; its backward goes through NumPy, which has no batching rule."""

    @staticmethod
    def forward(ctx, x):
        return 2 * x

    @staticmethod
    def backward(ctx, grad):
        return torch.from_numpy(2 * grad.numpy())


class _NumpyLayer(nn.Module):
    def forward(self, x):
        return _NumpyDouble.apply(x)


def test_all_classes_fall_back_to_one_backward_per_class_without_a_batching_rule(resnet, batch):
    model = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, _NumpyLayer(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(64, 5)).eval()
    x = batch[0][:2].clone().requires_grad_()
    with pytest.raises(RuntimeError, match="(?i)batching rule"):  # the batched backward does fail here
        torch.autograd.grad(model(x), [x], grad_outputs=torch.eye(5)[:, None].expand(5, 2, 5), is_grads_batched=True)
    x = x.detach()
    together = GradCAM(model, "0").all_classes(x, normalize=None)
    for k in range(5):  # one-hot seeds either way: the same numbers through the same backward
        torch.testing.assert_close(together.raw[:, k], GradCAM(model, "0")(x, targets=k, normalize=None).raw,
                                   rtol=0, atol=0)


def test_all_classes_let_other_errors_through(resnet, batch, monkeypatch):
    """An out-of-memory error in the batched backward is not a missing batching rule: no silent retry."""
    real_grad = torch.autograd.grad

    def grad(*args, **kwargs):
        if kwargs.get("is_grads_batched"):
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", grad)
    with pytest.raises(RuntimeError, match="out of memory"):
        GradCAM(resnet, "layer4").all_classes(batch[0][:1])
    assert no_hooks(resnet)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam"])
def test_one_capture_serves_every_gradient_method(resnet, batch, method):
    """The explorer captures activations and all-class gradients once per image and layer; each
    gradient method's maps from that capture equal a call of that method for one class."""
    x = batch[0][:2]
    resnet, x = float64(resnet), x.double()  # the capture's batched backward against a call's own: in float64
    capture = make_cam("gradcam", resnet, "layer3").capture(x)
    assert capture.gradients[0].shape == (9, 2, *capture.activations[0].shape[1:])
    cam = make_cam(method, resnet, "layer3")
    every = cam.from_capture(capture)
    a = capture.activations[0]
    for k in (1, 7):
        alone = cam(x, targets=k)
        # Every method's terms are no larger than sum_ij |G| |A_c| (Grad-CAM++'s alpha is at most 1/2).
        raw_atol = float64_atol(channel_sum_scale(capture.gradients[0][k].abs().sum((2, 3)), a),
                                terms=network_terms(resnet) + a[0, 0].numel() + a.shape[1])
        assert_within(every.maps[:, k], alone.maps, map_atol(raw_atol, alone.raw, torch.float64),
                      f"{method}'s maps from the capture against class {k}")
    with pytest.raises(ValueError, match="capture is of"):
        make_cam(method, resnet, "layer4").from_capture(capture)
    with pytest.raises(ValueError, match="all_classes"):
        make_cam("scorecam", resnet, "layer3").from_capture(capture)


def test_a_call_leaves_the_model_as_it_was_even_when_it_fails(resnet, batch):
    model = copy.deepcopy(resnet).train()
    model.layer1.requires_grad_(False)
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    relus = [(m, m.inplace) for m in model.modules() if isinstance(m, nn.ReLU)]
    x, targets = batch
    cam = HiResCAM(model, "layer4")
    with torch.no_grad():  # works inside no_grad too
        result = cam(x, targets)
    assert result.maps.shape == (3, SIZE, SIZE)
    with pytest.raises(ValueError, match=r"class indices in \[0, 8\]"):
        cam(x, targets=[0, 1, 9])
    with pytest.raises(ValueError, match="one per image"):
        cam(x, targets=[0, 1])
    for _ in range(2):
        assert no_hooks(model)
        assert [m.training for m in model.modules()] == modes
        assert [p.requires_grad for p in model.parameters()] == flags
        assert all(p.grad is None for p in model.parameters())  # no full backward
        assert [(m, m.inplace) for m in model.modules() if isinstance(m, nn.ReLU)] == relus
        cam.all_classes(x[:1])


def test_wrong_layer_names_list_candidates_and_zero_maps_stay_zero(resnet):
    with pytest.raises(ValueError, match="no layer named 'layer5'.*layer4"):
        GradCAM(resnet, "layer5")
    with pytest.raises(ValueError, match="unknown explanation method 'eigenscorecam'; choose one of gradcam"):
        make_cam("eigenscorecam", resnet, "layer4")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(resnet, nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="CAM needs a linear head"):
        CAM(resnet, "layer4", fc="layer4")
    flat = normalize_maps(torch.zeros(2, 4, 4))
    assert torch.equal(flat, torch.zeros(2, 4, 4))
    model = copy.deepcopy(resnet)
    with torch.no_grad():
        model.fc.weight.zero_()
    maps = GradCAM(model, "layer4")(torch.randn(2, 3, SIZE, SIZE)).maps
    assert torch.equal(maps, torch.zeros_like(maps))


def test_the_package_models_name_their_layers(resnet):
    from fishcam_utils.models import build_model, cam_layers

    model = build_model("fishresnet", 9, width=8, weights=None)
    for layer in cam_layers(model):
        for name in registry.method_names(any_layer=True):  # every method of the registry but CAM
            assert make_cam(name, model, layer)(torch.randn(1, 3, 32, 32)).maps.shape == (1, 32, 32)
    assert CAM(model, "layer2")(torch.randn(1, 3, 32, 32)).maps.shape == (1, 32, 32)  # head found by name


def test_grad_cam_plus_plus_uses_the_papers_coefficients(resnet, batch):
    x, targets = batch
    model = copy.deepcopy(resnet)
    seen = {}
    handle = model.layer4.register_forward_hook(lambda m, i, o: seen.setdefault("a", o))
    logits = model(x)
    handle.remove()
    (g,) = torch.autograd.grad(logits.gather(1, targets[:, None]).sum(), seen["a"])
    a = seen["a"].detach()
    alpha = g**2 / (2 * g**2 + a.sum((2, 3), keepdim=True) * g**3)
    alpha = torch.nan_to_num(alpha, nan=0.0)  # 0/0 where the gradient is zero
    explicit = ((torch.relu(g) * alpha).sum((2, 3), keepdim=True) * a).sum(1)
    ours = make_cam("gradcam++", resnet, "layer4")(x, targets, normalize=None).raw
    torch.testing.assert_close(ours, explicit, atol=1e-6, rtol=1e-4)


class ToyMultiView(nn.Module):
    """Three views through one shared branch (or one branch each), mean-fused, one linear head."""

    def __init__(self, shared: bool = True):
        super().__init__()
        torch.manual_seed(3)
        make = lambda: nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1))  # noqa: E731
        self.branches = nn.ModuleList([make()] if shared else [make() for _ in range(3)])
        self.fc = nn.Linear(8, 4)

    def forward(self, views, present):
        features = [self.branches[0 if len(self.branches) == 1 else v](views[:, v]).relu()
                    for v in range(views.shape[1])]
        pooled = torch.stack([f.mean((2, 3)) for f in features], 1)
        fused = (pooled * present[..., None]).sum(1) / present.sum(1, keepdim=True)
        return self.fc(fused), present.float() / present.sum(1, keepdim=True)


@pytest.mark.parametrize("shared", [True, False])
def test_every_views_map_comes_from_one_backward_of_the_fused_logit(shared):
    model = ToyMultiView(shared).eval()
    views, present = torch.randn(2, 3, 3, 16, 16), torch.ones(2, 3, dtype=torch.bool)
    layers = "branches.0.2" if shared else [f"branches.{v}.2" for v in range(3)]
    result = GradCAM(model, layers)((views, present), targets=[1, 3], normalize=None)
    assert result.maps.shape == (2, 3, 16, 16) and result.raw.shape == (2, 3, 8, 8)
    # Explicit: each view's activation as a leaf, the fused logit differentiated once.
    activations = [model.branches[0 if shared else v][:3](views[:, v]).detach().requires_grad_() for v in range(3)]
    pooled = torch.stack([a.relu().mean((2, 3)) for a in activations], 1)
    logits = model.fc(pooled.mean(1))
    grads = torch.autograd.grad(logits.gather(1, torch.tensor([[1], [3]])).sum(), activations)
    # float32: the explicit fusion (a mean of the views) is another path than the model's (a masked sum over
    # the count), through the whole small network; then a mean over h w pixels and a sum over C channels.
    terms = network_terms(model) + activations[0][0, 0].numel() + activations[0].shape[1]
    scales = torch.stack([channel_sum_scale(grads[v].abs().mean((2, 3)), activations[v].detach()) for v in range(3)], 1)
    for v in range(3):
        explicit = (grads[v].mean((2, 3), keepdim=True) * activations[v]).sum(1).detach()
        assert_float32_close(result.raw[:, v], explicit, terms=terms, scale=scales[:, v], what=f"view {v}")
    maps = GradCAM(model, layers)((views, present), targets=[1, 3]).maps
    # One scale for the three views of a fish: min-max over all its views together.
    up = torch.nn.functional.interpolate(torch.relu(result.raw), size=(16, 16), mode="bilinear", align_corners=False)
    low, high = up.flatten(1).amin(1)[:, None, None, None], up.flatten(1).amax(1)[:, None, None, None]
    # The same raw maps, upsampled and scaled here and in the package, each its own way.
    assert_within(maps, (up - low) / (high - low), map_atol(0.0, result.raw, dims=3), "the views' joint min-max")
    assert (maps.flatten(2).amax(2) < 1 - 1e-3).any()  # a weaker view stays dimmer than the strongest
    every = GradCAM(model, layers).all_classes((views, present))
    assert every.maps.shape == (2, 4, 3, 16, 16)
    # All classes by one batched backward (vmap) against one backward: the same small network, another path.
    assert_float32_close(every.raw[torch.arange(2), torch.tensor([1, 3])], result.raw, terms=terms, scale=scales,
                         what="all classes against one call")
    with pytest.raises(ValueError, match="use a gradient method"):
        make_cam("scorecam", model, layers)((views, present))


def test_targets_follow_one_rule_and_inference_mode_is_fine(resnet, batch):
    x, _ = batch
    cam = GradCAM(resnet, "layer4")
    for bad in ([1.7, 2.2, 0.0], [True, False, True], torch.tensor([0.5, 1.0, 2.0])):
        with pytest.raises(ValueError, match="targets must be"):
            cam(x, targets=bad)
    import numpy as np

    same = cam(x, targets=np.int64(3))
    assert same.explained.tolist() == [3, 3, 3]
    with torch.inference_mode():
        inside = cam(x, targets=[2, 5, 7])
    torch.testing.assert_close(inside.raw, cam(x, targets=[2, 5, 7]).raw, rtol=0, atol=0)  # the same computation


def test_score_cam_shows_a_progress_bar_only_for_long_work(capsys):
    from fishcam_utils.explain.cam import ScoreCAM
    from fishcam_utils.models import build_model

    torch.manual_seed(0)
    net = build_model("fishresnet", 3, width=4, blocks=(1, 1), weights=None, verbose=False).eval()
    x = torch.rand(2, 3, 16, 16)
    quiet = ScoreCAM(net, "layer2")(x, 0).maps  # 2 x 8 masked images: one batch, no bar
    assert "Score-CAM" not in capsys.readouterr().err
    shown = ScoreCAM(net, "layer2", batch_size=1, progress=True)(x, 0).maps  # 16 batches, asked for a bar
    assert "Score-CAM, 2 image(s) x 8 channels" in capsys.readouterr().err
    # The bar changes nothing. One batch of 16 against 16 of one pass through the network along different
    # paths, so compare in float64: then only the scores' float32 rounding differs.
    net64, x64 = float64(net), x.double()
    quiet = ScoreCAM(net64, "layer2")(x64, 0)
    explainer = ScoreCAM(net64, "layer2", batch_size=1, progress=False)
    scores = recorded_logits(explainer)
    shown = explainer(x64, 0).maps
    assert_within(quiet.maps, shown, map_atol(score_cam_atol(quiet.raw, scores), quiet.raw, torch.float64),
                  "one batch against 16")
    ScoreCAM(net, "layer2", batch_size=1, progress=False)(x, 0)
    assert "Score-CAM" not in capsys.readouterr().err
