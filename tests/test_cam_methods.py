"""XGrad-CAM, Eigen-CAM, Eigen-Grad-CAM and Ablation-CAM against pytorch-grad-cam and explicit
computations; targets as score functions; the method registry (a toy method added in one place)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
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

SIZE = 64


def pgc_maps(cls, model, layer, x, targets, **options):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = copy.deepcopy(model)
    with cls(model=model, target_layers=[model.get_submodule(layer)], **options) as reference:
        theirs = reference(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets])
    return torch.from_numpy(theirs).float()


def activations_and_gradients(model, layer, x, targets):
    """Explicitly: the layer's output and d(sum of target logits)/d(output), by a plain hook."""
    seen = {}

    def keep(module, inputs, output):
        output.retain_grad()
        seen["a"] = output

    handle = model.get_submodule(layer).register_forward_hook(keep)
    try:
        logits = model(x)
        logits.gather(1, targets[:, None]).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    return seen["a"].detach(), seen["a"].grad.detach(), logits.detach()


@pytest.mark.parametrize("layer", ["layer3", "layer4"])
def test_xgradcam_equals_pytorch_grad_cam_and_its_formula(resnet, batch, layer):
    import pytorch_grad_cam as pgc

    x, targets = batch
    ours = XGradCAM(resnet, layer)(x, targets)
    torch.testing.assert_close(ours.maps, pgc_maps(pgc.XGradCAM, resnet, layer, x, targets), atol=1e-4, rtol=0)
    a, g, _ = activations_and_gradients(copy.deepcopy(resnet), layer, x, targets)
    weights = torch.nan_to_num((a * g).sum((2, 3)) / a.sum((2, 3)))  # alpha_c = sum_ij A G / sum_ij A (0 for a dead channel)
    torch.testing.assert_close(ours.raw, torch.einsum("nc,nchw->nhw", weights, a), atol=1e-5, rtol=1e-4)


def test_eigen_methods_equal_pytorch_grad_cams_projection_up_to_its_sign(resnet, batch):
    """pytorch-grad-cam leaves the principal component's sign to the SVD routine; ours points it
    along the summed channels. So |projections| agree, and the maps agree where the signs do."""
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    x, targets = batch
    a, g, _ = activations_and_gradients(copy.deepcopy(resnet), "layer3", x, targets)
    for cls, ours_cls, features in ((pgc.EigenCAM, EigenCAM, a), (pgc.EigenGradCAM, "eigengradcam", a * g)):
        cam = make_cam(ours_cls, resnet, "layer3") if isinstance(ours_cls, str) else ours_cls(resnet, "layer3")
        ours = cam(x, targets)
        theirs_raw = torch.from_numpy(get_2d_projection(features.numpy()))
        torch.testing.assert_close(ours.raw.abs(), theirs_raw.abs(), atol=1e-4, rtol=1e-4)
        summed = features.sum(1).flatten(1)
        agreement = (ours.raw.flatten(1) * (summed - summed.mean(1, keepdim=True))).sum(1)
        assert (agreement >= 0).all(), "the component points along the summed channels"
        theirs = pgc_maps(cls, resnet, "layer3", x, targets)
        same_sign = (ours.raw * theirs_raw).flatten(1).sum(1) > 0
        expected = torch.where(same_sign[:, None, None], theirs,
                               normalize_maps(upsample(torch.relu(-theirs_raw), (SIZE, SIZE))))
        torch.testing.assert_close(ours.maps, expected, atol=1e-4, rtol=0)


def test_eigen_cam_is_the_same_for_every_class_and_needs_no_gradients(resnet, batch):
    x, _ = batch
    every = EigenCAM(resnet, "layer3").all_classes(x)
    assert every.maps.shape == (3, 9, SIZE, SIZE)
    assert torch.equal(every.maps, every.maps[:, :1].expand_as(every.maps))
    assert registry.lookup("Eigen-CAM").needs_gradients is False


def test_principal_projection_is_a_batched_svd(resnet):
    torch.manual_seed(3)
    features = torch.randn(2, 5, 3, 4)
    ours = principal_projection(features)
    for i in range(2):
        pixels = features[i].flatten(1).T
        centred = pixels - pixels.mean(0)
        u, s, _ = np.linalg.svd(centred.numpy().astype(np.float64), full_matrices=False)
        torch.testing.assert_close(ours[i].abs().flatten(), torch.from_numpy(np.abs(u[:, 0] * s[0])).float(),
                                   atol=1e-5, rtol=1e-5)


def test_ablation_cam_equals_pytorch_grad_cam_at_relu_layers(resnet, batch):
    import pytorch_grad_cam as pgc

    x, targets = batch
    x, targets = x[:2], targets[:2]
    model = copy.deepcopy(resnet)
    with torch.no_grad():  # positive target logits: the paper's 1/y and our 1/|y| agree
        model.fc.bias[targets] += 10
    ours = AblationCAM(model, "layer4", batch_size=100)(x, targets)
    theirs = pgc_maps(pgc.AblationCAM, model, "layer4", x, targets, batch_size=100)
    torch.testing.assert_close(ours.maps, theirs, atol=1e-4, rtol=0)


def test_ablation_cam_is_the_score_drop_of_each_zeroed_channel(resnet, batch):
    x, targets = batch
    x, targets = x[:2], targets[:2]
    layer = "layer4.0"  # inside a stage: the rest of the network has another residual block
    ours = AblationCAM(resnet, layer, batch_size=200)(x, targets, normalize=None)
    a, _, logits = activations_and_gradients(copy.deepcopy(resnet), layer, x, targets)
    rest = resnet.layer4[1]
    weights = torch.zeros(2, a.shape[1])
    with torch.no_grad():
        for i in range(2):
            y = logits[i, targets[i]]
            for c in range(a.shape[1]):
                ablated = a[i:i + 1].clone()
                ablated[:, c] = 0
                out = resnet.fc(torch.flatten(resnet.avgpool(rest(ablated)), 1))[0, targets[i]]
                weights[i, c] = (y - out) / y.abs()
    torch.testing.assert_close(ours.raw, torch.einsum("nc,nchw->nhw", weights, a), atol=1e-4, rtol=1e-4)


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
    model = _Bookkeeping().eval()
    x = torch.randn(2, 3, 8, 8)
    ours = AblationCAM(model, "features", batch_size=4)(x, [1, 3], normalize=None)
    with torch.no_grad():
        a = model.features(x)
        logits = model.fc(a.reshape(2, -1))
        expected = []
        for i, t in enumerate([1, 3]):
            drops = []
            for c in range(6):
                ablated = a[i:i + 1].clone()
                ablated[:, c] = 0
                drops.append((logits[i, t] - model.fc(ablated.reshape(1, -1))[0, t]) / logits[i, t].abs())
            expected.append(torch.einsum("c,chw->hw", torch.stack(drops), a[i]))
    torch.testing.assert_close(ours.raw, torch.stack(expected), atol=1e-5, rtol=1e-5)


def test_score_functions_as_targets(resnet, batch):
    x, targets = batch
    cam = GradCAM(resnet, "layer3")
    by_index = cam(x, targets, normalize=None)
    by_function = cam(x, [lambda logits, t=int(t): logits[t] for t in targets], normalize=None)
    torch.testing.assert_close(by_function.raw, by_index.raw)
    assert by_function.explained.tolist() == [-1, -1, -1]  # a function decided, not a class index
    # The softmax probability of class 4, for every image: d p_4 / dA explicitly.
    softmax = cam(x, lambda logits: torch.softmax(logits, 0)[4], normalize=None)
    model = copy.deepcopy(resnet)
    a = {}

    def keep(module, inputs, output):
        output.retain_grad()
        a["a"] = output

    model.layer3.register_forward_hook(keep)
    torch.softmax(model(x), 1)[:, 4].sum().backward()
    g = a["a"].grad
    explicit = (g.mean((2, 3), keepdim=True) * a["a"]).sum(1).detach()
    torch.testing.assert_close(softmax.raw, explicit, atol=1e-6, rtol=1e-4)
    # Mixed: a class for the first image, a function for the others; Score-CAM takes functions too.
    mixed = cam(x, [2, lambda logits: logits[5], lambda logits: logits[7]], normalize=None)
    torch.testing.assert_close(mixed.raw, by_index.raw)
    assert mixed.explained.tolist() == [2, -1, -1]
    score = make_cam("scorecam", resnet, "layer4")
    torch.testing.assert_close(score(x[:1], lambda logits: logits[2]).maps, score(x[:1], 2).maps)
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


def test_a_method_added_in_one_place_is_everywhere(toy_methods, resnet, batch, tmp_path, capsys):
    from fishcam_utils.explain.experiments import explanation_maps, table_methods
    from fishcam_utils.widgets.maps import menu, method_key

    x, targets = batch
    maps = make_cam("Toy-CAM", resnet, "layer3")(x, targets, normalize=None).raw
    a, g, _ = activations_and_gradients(copy.deepcopy(resnet), "layer3", x, targets)
    torch.testing.assert_close(maps, (torch.sign(g.mean((2, 3), keepdim=True)) * a).sum(1), atol=1e-5, rtol=1e-5)
    assert "toycam" in registry.method_names() and "toycam" in table_methods()
    assert menu()["Toy-CAM"] == "toycam" and method_key("Toy-CAM") == "toycam"
    assert registry.lookup("toycam").from_capture and not registry.lookup("brightest").from_capture
    from fishcam_utils.cli import main

    code = main(["gradcam", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o"), "--method", "toycam"])
    assert code == 2 and "unknown explanation method" not in capsys.readouterr().err  # accepted; the checkpoint is missing
    assert main(["gradcam", "--checkpoint", "c.pt", "--out", "o", "--method", "nocam"]) == 2
    assert "--method nocam: unknown explanation method 'nocam'; choose one of gradcam" in capsys.readouterr().err
    torch.testing.assert_close(explanation_maps(resnet, x, targets, "toycam", "layer3"),
                               make_cam("toycam", resnet, "layer3")(x, targets).maps)
    every = make_cam("toycam", resnet, "layer3").all_classes(x)
    torch.testing.assert_close(every.maps[torch.arange(3), targets], make_cam("toycam", resnet, "layer3")(x, targets).maps)
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
    np.testing.assert_allclose(store.maps(0, layer, "toycam").maps[:, 0], expected.numpy(), atol=1e-5)
