"""XGrad-CAM, Eigen-CAM, Eigen-Grad-CAM and Ablation-CAM against pytorch-grad-cam and explicit
computations; targets as score functions; the method registry (a toy method added in one place)."""

from __future__ import annotations

import copy

import numpy as np
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
from fishcam_utils.explain.cam import (
    AblationCAM,
    BaseCAM,
    EigenCAM,
    GradCAM,
    XGradCAM,
    make_cam,
    normalize_maps,
    principal_projection,
    upsample,
)

pytestmark = pytest.mark.numeric

SIZE = 64


def pgc_maps(cls, model, layer, x, targets, **options):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = copy.deepcopy(model)
    with cls(model=model, target_layers=[model.get_submodule(layer)], **options) as reference:
        theirs = reference(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return torch.from_numpy(theirs).float()


@pytest.mark.parametrize("layer", ["layer3", "layer4"])
def test_xgradcam_equals_pytorch_grad_cam_and_its_formula(resnet, batch, layer):
    import pytorch_grad_cam as pgc

    # In float64: pytorch-grad-cam and the formula each run the network their own way.
    x, targets = batch
    model, x = float64(resnet), x.double()
    ours = XGradCAM(model, layer)(x, targets)
    a, g, _ = activations_and_gradients(copy.deepcopy(model), layer, x, targets)
    # alpha_c = sum_ij A G / sum_ij A (0 for a dead channel)
    weights = torch.nan_to_num((a * g).sum((2, 3)) / a.sum((2, 3)))
    expected = torch.einsum("nc,nchw->nhw", weights, a)
    # pytorch-grad-cam divides by sum_ij A + 1e-7: what that moves each map by, besides its float32 resizing.
    theirs_weights = (a * g).sum((2, 3)) / (a.sum((2, 3)) + 1e-7)
    bias = channel_sum_scale(weights - theirs_weights, a) * 2 / torch.relu(expected).flatten(1).amax(1)[:, None, None]
    assert_within(ours.maps, pgc_maps(pgc.XGradCAM, model, layer, x, targets), pytorch_grad_cam_atol(bias),
                  "XGrad-CAM against pytorch-grad-cam")
    # The weights' terms are A G over the pixels, then the map sums C channels: sizes before cancelling.
    weight_terms = torch.nan_to_num((a * g).abs().sum((2, 3)) / a.sum((2, 3)))
    assert_float64_close(ours.raw, expected, terms=network_terms(model) + a[0, 0].numel() + a.shape[1],
                         scale=channel_sum_scale(weight_terms, a), what="XGrad-CAM against its formula")


def test_eigen_methods_equal_pytorch_grad_cams_projection_up_to_its_sign(resnet, batch):
    """pytorch-grad-cam leaves the principal component's sign to the SVD routine; ours points it
    along the summed channels. So |projections| agree, and the maps agree where the signs do."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    # In float64: pytorch-grad-cam's projection is float64 up to its closing np.float32.
    x, targets = batch
    model, x = float64(resnet), x.double()
    a, g, _ = activations_and_gradients(copy.deepcopy(model), "layer3", x, targets)
    for cls, ours_cls, features in ((pgc.EigenCAM, EigenCAM, a), (pgc.EigenGradCAM, "eigengradcam", a * g)):
        cam = make_cam(ours_cls, model, "layer3") if isinstance(ours_cls, str) else ours_cls(model, "layer3")
        ours = cam(x, targets)
        theirs_raw = torch.from_numpy(get_2d_projection(features.numpy()))
        # Its float32 rounding, and two float64 SVDs (of features from two passes through the network).
        raw_atol = (float32_atol(theirs_raw.abs().flatten(1).amax(1)[:, None, None], terms=1)
                    + float64_atol(projection_scale(features), terms=network_terms(model) + features[0].numel()))
        assert_within(ours.raw.abs(), theirs_raw.abs(), raw_atol,
                      f"{cam.label}'s projection against pytorch-grad-cam's")
        summed = features.sum(1).flatten(1)
        agreement = (ours.raw.flatten(1) * (summed - summed.mean(1, keepdim=True))).sum(1)
        assert (agreement >= 0).all(), "the component points along the summed channels"
        theirs = pgc_maps(cls, model, "layer3", x, targets)
        same_sign = (ours.raw * theirs_raw).flatten(1).sum(1) > 0
        expected = torch.where(same_sign[:, None, None], theirs.double(),
                               normalize_maps(upsample(torch.relu(-theirs_raw.double()), (SIZE, SIZE))))
        assert_within(ours.maps, expected, pytorch_grad_cam_atol() + map_atol(raw_atol, ours.raw, torch.float64),
                      f"{cam.label}'s maps against pytorch-grad-cam's")


def test_eigen_cam_is_the_same_for_every_class_and_needs_no_gradients(resnet, batch):
    x, _ = batch
    every = EigenCAM(resnet, "layer3").all_classes(x)
    assert every.maps.shape == (3, 9, SIZE, SIZE)
    assert torch.equal(every.maps, every.maps[:, :1].expand_as(every.maps))
    assert registry.lookup("Eigen-CAM").needs_gradients is False


def projection_scale(features: torch.Tensor) -> torch.Tensor:
    """(N, 1, 1): s1 (1 + s1 / (s1 - s2)) of each image's centred (pixels, channels) matrix. A backward-stable
    SVD is exact for a matrix off by eps s1 (times a modest multiple of its size), which moves u1 s1 by
    that, and turns u1 by that over the gap s1 - s2."""
    pixels = features.flatten(2).transpose(1, 2).double()
    s = torch.linalg.svdvals(pixels - pixels.mean(1, keepdim=True))
    return (s[:, 0] * (1 + s[:, 0] / (s[:, 0] - s[:, 1])))[:, None, None]


def test_principal_projection_is_a_batched_svd(resnet):
    torch.manual_seed(3)
    features = torch.randn(2, 5, 3, 4)
    ours = principal_projection(features)
    scales = projection_scale(features)
    for i in range(2):
        pixels = features[i].flatten(1).T
        centred = pixels - pixels.mean(0)
        u, s, _ = np.linalg.svd(centred.numpy().astype(np.float64), full_matrices=False)
        # Ours in float32 against NumPy's float64 SVD: float32 rounding of a 12 x 5 SVD.
        assert_float32_close(ours[i].abs().flatten(), torch.from_numpy(np.abs(u[:, 0] * s[0])),
                             terms=centred.numel(), scale=scales[i], what="the projection against NumPy's SVD")

@pytest.mark.slow

def test_ablation_cam_equals_pytorch_grad_cam_at_relu_layers(resnet, batch):
    import pytorch_grad_cam as pgc

    # In float64. Both round y and y_c to float32 (its np.float32, our logits' .float()): the same float32
    # numbers, unless a float64 pass's last bits cross a float32 tie; allowed below.
    x, targets = batch
    x, targets = x[:2].double(), targets[:2]
    model = float64(resnet)
    with torch.no_grad():  # positive target logits: the paper's 1/y and our 1/|y| agree
        model.fc.bias[targets] += 10
    ours = AblationCAM(model, "layer4", batch_size=100)(x, targets)
    theirs = pgc_maps(pgc.AblationCAM, model, "layer4", x, targets, batch_size=100)
    # After the last stage come GAP and the linear head, so y_c = y - w_tc mean(A_c): each weight's terms.
    a, _, logits = activations_and_gradients(copy.deepcopy(model), "layer4", x, targets)
    y = logits.gather(1, targets[:, None])
    y_c = y - model.fc.weight[targets] * a.mean((2, 3))
    raw = torch.einsum("nc,nchw->nhw", (y - y_c) / y.abs(), a)
    raw_atol = float32_atol(channel_sum_scale(torch.maximum(y.abs(), y_c.abs()) / y.abs(), a), terms=2)
    assert_within(ours.maps, theirs, pytorch_grad_cam_atol() + map_atol(raw_atol, raw, torch.float64),
                  "Ablation-CAM against pytorch-grad-cam")

@pytest.mark.slow

def test_ablation_cam_is_the_score_drop_of_each_zeroed_channel(resnet, batch):
    # In float64: ours runs the last block on a batch of 200 ablated copies, this loop on one at a time,
    # and each weight (y - y_c) / |y| cancels, so float32 rounding of the block would dominate the test.
    x, targets = batch
    x, targets = x[:2].double(), targets[:2]
    model = float64(resnet)
    layer = "layer4.0"  # inside a stage: the rest of the network has another residual block
    ours = AblationCAM(model, layer, batch_size=200)(x, targets, normalize=None)
    a, _, logits = activations_and_gradients(copy.deepcopy(model), layer, x, targets)
    rest, fc = model.layer4[1], model.fc
    weights = torch.zeros(2, a.shape[1], dtype=torch.float64)
    rounded, summed = torch.zeros_like(weights), torch.zeros_like(weights)  # the sizes of each weight's terms
    with torch.no_grad():
        for i in range(2):
            t = targets[i]
            y = logits[i, t]
            y_terms = (fc.weight[t].abs() * torch.flatten(model.avgpool(rest(a[i:i + 1])), 1).abs()).sum()
            for c in range(a.shape[1]):
                ablated = a[i:i + 1].clone()
                ablated[:, c] = 0
                pooled = torch.flatten(model.avgpool(rest(ablated)), 1)
                out = fc(pooled)[0, t]
                weights[i, c] = (y - out) / y.abs()
                rounded[i, c] = torch.maximum(y.abs(), out.abs()) / y.abs()
                summed[i, c] = (torch.maximum(y_terms, (fc.weight[t].abs() * pooled.abs()).sum())
                                + fc.bias[t].abs()) / y.abs()
    expected = torch.einsum("nc,nchw->nhw", weights, a)
    # AblationCAM rounds y and y_c to float32 (its logits' .float()): 2 roundings of each weight, of sizes
    # max(|y|, |y_c|) / |y|; the float64 passes round terms of the logits' size, along the whole network.
    tolerance = (float32_atol(channel_sum_scale(rounded, a), terms=2)
                 + float64_atol(channel_sum_scale(summed, a), terms=network_terms(model) + a.shape[1]))
    margin = assert_within(ours.raw, expected, tolerance, "Ablation-CAM against the per-channel loop")
    print(f"Ablation-CAM: largest difference {float((ours.raw - expected).abs().max()):.3g}, "
          f"tolerance {float(tolerance.min()):.3g} to {float(tolerance.max()):.3g}, margin {margin:.3g}x")


class _Bookkeeping(nn.Module):
    """A network that reshapes with the batch size of its input: the ablated copies cannot enter
    after the layer alone, so Ablation-CAM must run them through the whole network."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.features = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU())
        self.fc = nn.Linear(6 * 8 * 8, 4)

    def forward(self, x):
        n = x.shape[0]
        return self.fc(self.features(x).reshape(n, -1))


def test_ablation_cam_falls_back_to_whole_network_copies_where_shapes_clash():
    # In float64: ours runs copies of the image through the whole network, this loop the head alone.
    model = _Bookkeeping().eval().double()
    x = torch.randn(2, 3, 8, 8).double()
    ours = AblationCAM(model, "features", batch_size=4)(x, [1, 3], normalize=None)
    with torch.no_grad():
        a = model.features(x)
        logits = model.fc(a.reshape(2, -1))
        expected, rounded = [], []
        for i, t in enumerate([1, 3]):
            drops, sizes = [], []
            for c in range(6):
                ablated = a[i:i + 1].clone()
                ablated[:, c] = 0
                y_c = model.fc(ablated.reshape(1, -1))[0, t]
                drops.append((logits[i, t] - y_c) / logits[i, t].abs())
                sizes.append(torch.maximum(logits[i, t].abs(), y_c.abs()) / logits[i, t].abs())
            expected.append(torch.einsum("c,chw->hw", torch.stack(drops), a[i]))
            rounded.append(torch.stack(sizes))
        # The head's terms, sum_j |w_tj a_j| + |b_t|, over |y|: the float64 passes' rounding of each weight.
        summed = ((model.fc.weight.abs() @ a.abs().reshape(2, -1).T).T + model.fc.bias.abs())[torch.arange(2), [1, 3]]
        summed = (summed / logits[torch.arange(2), [1, 3]].abs())[:, None].expand(2, 6)
    # As in the test above: AblationCAM rounds y and y_c to float32, 2 roundings of each weight.
    tolerance = (float32_atol(channel_sum_scale(torch.stack(rounded), a), terms=2)
                 + float64_atol(channel_sum_scale(summed, a), terms=network_terms(model) + 6))
    assert_within(ours.raw, torch.stack(expected), tolerance, "the whole-network fallback against the loop")


def test_score_functions_as_targets(resnet, batch):
    x, targets = batch
    cam = GradCAM(resnet, "layer3")
    by_index = cam(x, targets, normalize=None)
    by_function = cam(x, [lambda logits, t=int(t): logits[t] for t in targets], normalize=None)
    torch.testing.assert_close(by_function.raw, by_index.raw, rtol=0, atol=0)  # the same one-hot backward
    assert by_function.explained.tolist() == [-1, -1, -1]  # a function decided, not a class index
    # The softmax probability of class 4, for every image: d p_4 / dA explicitly, in float64 (the explicit
    # backward starts from a softmax over the batch's rows, ours from one image's).
    model, x = float64(resnet), x.double()
    softmax = GradCAM(model, "layer3")(x, lambda logits: torch.softmax(logits, 0)[4], normalize=None)
    a = {}

    def keep(module, inputs, output):
        output.retain_grad()
        a["a"] = output

    model.layer3.register_forward_hook(keep)
    torch.softmax(model(x), 1)[:, 4].sum().backward()
    g = a["a"].grad
    explicit = (g.mean((2, 3), keepdim=True) * a["a"]).sum(1).detach()
    assert_float64_close(softmax.raw, explicit, terms=network_terms(model) + g[0, 0].numel() + g.shape[1],
                         scale=channel_sum_scale(g.abs().mean((2, 3)), a["a"].detach()), what="d p_4 / dA")
    # Mixed: a class for the first image, a function for the others; Score-CAM takes functions too.
    x = batch[0]
    mixed = cam(x, [2, lambda logits: logits[5], lambda logits: logits[7]], normalize=None)
    torch.testing.assert_close(mixed.raw, by_index.raw, rtol=0, atol=0)  # the same one-hot backward
    assert mixed.explained.tolist() == [2, -1, -1]
    score = make_cam("scorecam", resnet, "layer4")
    # The same masked passes either way, and a function picking a logit picks the same number.
    torch.testing.assert_close(score(x[:1], lambda logits: logits[2]).maps, score(x[:1], 2).maps, rtol=0, atol=0)
    with pytest.raises(ValueError, match="must return one score"):
        cam(x, lambda logits: logits[:2])
    with pytest.raises(ValueError, match="CAM reads one class's row"):
        make_cam("cam", resnet, "layer4", fc="fc")(x, lambda logits: logits[1])


# -- the registry ---------------------------------------------------------------------------------

class ToyCAM(BaseCAM):
    """Activations weighted by the gradient's sign: a toy gradient method, declared in one place."""

    name, label = "toycam", "Toy-CAM"

    @staticmethod
    def combine(activations, gradients):
        return (torch.sign(gradients.mean((2, 3), keepdim=True)) * activations).sum(1)


class BrightestChannel(BaseCAM):
    """A toy gradient-free method through the public hook: the channel whose removal (by
    ``logits_with``) costs the class most is the map."""

    name, label, family, needs_gradients, multi_activation = "brightest", "Brightest", "gradient-free", False, False

    def class_maps(self, activations, inputs, logits, targets):
        drops = []
        for c in range(activations.shape[1]):
            copies = activations.clone()
            copies[:, c] = 0
            drops.append(targets.scores(logits) - targets.scores(self.logits_with(inputs, copies)))
        best = torch.stack(drops, 1).argmax(1)  # (N, J)
        return torch.stack([activations[i, best[i]] for i in range(len(best))])


@pytest.fixture
def toy_methods():
    registry.register(ToyCAM)
    registry.register(BrightestChannel)
    try:
        yield
    finally:
        registry.unregister("toycam")
        registry.unregister("brightest")

@pytest.mark.slow

def test_a_method_added_in_one_place_is_everywhere(toy_methods, resnet, batch, tmp_path, capsys):
    from fishcam_utils.explain.judging.experiments import explanation_maps, table_methods
    from fishcam_utils.widgets.maps import menu, method_key

    x, targets = batch
    # In float64: the explicit pass is another path, and a gradient's sign turns with its last bits near 0.
    model, x64 = float64(resnet), x.double()
    maps = make_cam("Toy-CAM", model, "layer3")(x64, targets, normalize=None).raw
    a, g, _ = activations_and_gradients(copy.deepcopy(model), "layer3", x64, targets)
    raw_atol = float64_atol(a.abs().sum(1).flatten(1).amax(1)[:, None, None], terms=network_terms(model) + a.shape[1])
    assert_within(maps, (torch.sign(g.mean((2, 3), keepdim=True)) * a).sum(1), raw_atol, "Toy-CAM against its formula")
    assert "toycam" in registry.method_names() and "toycam" in table_methods()
    assert menu()["Toy-CAM"] == "toycam" and method_key("Toy-CAM") == "toycam"
    assert registry.lookup("toycam").from_capture and not registry.lookup("brightest").from_capture
    from fishcam_utils.cli import main

    code = main(["gradcam", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"),
                 "--method", "toycam"])
    # Accepted; the checkpoint is missing.
    assert code == 2 and "unknown explanation method" not in capsys.readouterr().err
    assert main(["gradcam", "--checkpoint", "c.pt", "--out", "o", "--method", "nocam"]) == 2
    assert "--method nocam: unknown explanation method 'nocam'; choose one of gradcam" in capsys.readouterr().err
    torch.testing.assert_close(explanation_maps(resnet, x, targets, "toycam", "layer3"),
                               make_cam("toycam", resnet, "layer3")(x, targets).maps, rtol=0, atol=0)  # one call
    every = make_cam("toycam", model, "layer3").all_classes(x64)  # one batched backward against one per call
    assert_within(every.maps[torch.arange(3), targets], make_cam("toycam", model, "layer3")(x64, targets).maps,
                  map_atol(raw_atol, maps, torch.float64), "Toy-CAM's maps, all classes against one call")
    # The gradient-free toy goes through the public hook, in a call and for all classes.
    brightest = make_cam("brightest", resnet, "layer4")
    one = brightest(x[:1], 2, normalize=None).raw
    assert one.shape == (1, 2, 2)
    assert torch.equal(brightest.all_classes(x[:1], normalize=None).raw[:, 2], one)
    with pytest.raises(RuntimeError, match="inside class_maps"):
        brightest.logits_with(x, torch.zeros(1))
    with pytest.raises(ValueError, match="taken by"):
        registry.register(type("Again", (ToyCAM,), {"name": "toy-cam", "label": "another"}))


def test_the_explorer_store_makes_a_new_method_from_the_cached_capture(toy_methods, tiny_synth):
    from fishcam_utils.data import make_datasets
    from fishcam_utils.models import build_model
    from fishcam_utils.widgets import MapStore

    splits = make_datasets(tiny_synth, image_size=32, cache=False, progress=False)
    torch.manual_seed(0)
    model = build_model("fishresnet", len(splits.classes), width=8, weights=None, verbose=False).eval()
    store = MapStore(model, splits.test)
    layer = store.layers[-1]
    store.maps(0, layer, "gradcam")
    store.maps(0, layer, "Toy-CAM")
    assert store.counts["capture"] == 1  # the toy method reused Grad-CAM's capture
    x = store.sample(0).inputs
    expected = make_cam("toycam", model, layer).all_classes(x).maps[0]
    np.testing.assert_array_equal(store.maps(0, layer, "toycam").maps[:, 0], expected.numpy())  # the same capture
