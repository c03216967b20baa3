"""Reference maps that ignore the model: uniform noise and the image's Sobel edges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numerics import float32_atol
from scipy import ndimage

from fishcam_utils.explain import LayerFreeExplainer, make_cam, normalize_maps, registry
from fishcam_utils.explain.judging.experiments import explanation_maps
from fishcam_utils.explain.judging.metrics import energy_in_mask, pointing_game
from fishcam_utils.explain.judging.references import edge_maps, random_maps, reference_names


@pytest.mark.numeric
def test_edge_maps_are_scipys_sobel_magnitude_of_the_channel_mean():
    images = torch.randn(3, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    for image, edges in zip(images.numpy(), edge_maps(images).numpy()):
        grey = image.mean(0).astype(np.float64)
        magnitude = np.hypot(ndimage.sobel(grey, axis=1, mode="nearest"), ndimage.sobel(grey, axis=0, mode="nearest"))
        expected = (magnitude - magnitude.min()) / (magnitude.max() - magnitude.min())
        # float32: a mean of 3 channels, 9 taps, hypot, min-max (which counts an error twice, over the span);
        # the taps' terms are at most 4 |grey| each way, so sqrt(2) 8 max|grey| in all.
        sizes = math.sqrt(2) * 8 * np.abs(grey).max() / (magnitude.max() - magnitude.min())
        np.testing.assert_allclose(edges, expected, rtol=0, atol=2 * float32_atol(sizes, terms=3 + 9 + 3 + 2))


def test_edges_find_a_painted_square_and_a_flat_image_has_none():
    images = torch.zeros(2, 3, 16, 16)
    images[0, :, 4:10, 5:11] = 1.0
    edges = edge_maps(images)
    square = torch.zeros(16, 16, dtype=torch.bool)
    square[3:11, 4:12] = True  # the square's border, one pixel either side
    assert pointing_game(edges[:1], square[None]).item()
    assert energy_in_mask(edges[:1], square[None]).item() == pytest.approx(1.0)
    assert torch.equal(edges[1], torch.zeros(16, 16))  # no edge: zeros, not NaN


def test_random_maps_are_seeded_uniform_and_leave_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = random_maps((4, 8, 8), seed=3), random_maps((4, 8, 8), seed=3)
    assert torch.equal(a, b) and not torch.equal(a, random_maps((4, 8, 8), seed=4))
    assert 0 <= a.min() and a.max() < 1 and a.unique().numel() == a.numel()
    assert torch.equal(torch.random.get_rng_state(), state)


def _tiny(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                               torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()


def test_reference_maps_ignore_the_model_and_refuse_unknown_kinds():
    images = torch.rand(2, 3, 8, 8)
    assert reference_names() == ["random", "edges"]
    # The explainer's maps are min-max normalised, as every explainer's (edges are already).
    expected = {"random": normalize_maps(random_maps((2, 8, 8), seed=0)), "edges": edge_maps(images)}
    for kind in reference_names():
        for model in (_tiny(0), _tiny(1)):  # other weights, the same maps
            maps = explanation_maps(model, images, torch.tensor([0, 1]), kind)
            assert maps.shape == (2, 8, 8)
            torch.testing.assert_close(maps, expected[kind], rtol=0, atol=float32_atol(1.0, terms=3))
    with pytest.raises(ValueError, match="unknown explanation method 'noise'; choose one of gradcam, .*random, edges"):
        make_cam("noise", _tiny(0))
    with pytest.raises(ValueError, match="edges needs no target layer|Sobel edges needs no target layer"):
        registry.lookup("edges").cls(_tiny(0), "0")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        edge_maps(torch.rand(8, 8))


def test_a_map_that_needs_no_layer_is_one_registered_class():
    """The protocol's promise: one class with one method, and every table of methods takes it."""

    @registry.register
    class CentreMap(LayerFreeExplainer):
        name, label = "centre", "centre prior"

        def image_maps(self, images: torch.Tensor) -> torch.Tensor:
            n, _, h, w = images.shape
            ys, xs = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
            return (-((ys - (h - 1) / 2) ** 2 + (xs - (w - 1) / 2) ** 2)).float().expand(n, h, w)

    try:
        model, images = _tiny(0), torch.rand(3, 3, 9, 9)
        assert "centre" in registry.method_names(needs_layer=False) and "centre" in reference_names()
        maps = explanation_maps(model, images, torch.tensor([0, 1, 2]), "centre", layer="ignored")
        assert maps.shape == (3, 9, 9) and bool((maps.flatten(1).argmax(1) == 4 * 9 + 4).all())
        assert maps.min() == 0 and maps.max() == 1  # min-max normalised by the protocol
        result = make_cam("centre", model)(images, targets=2)
        assert result.explained.tolist() == [2, 2, 2] and result.logits.shape == (3, 3)
        from fishcam_utils.explain.judging import EvidenceBatch, methods_by_layers

        masks = torch.zeros(3, 9, 9, dtype=torch.bool)
        masks[:, 3:6, 3:6] = True
        batch = EvidenceBatch(images, torch.tensor([0, 1, 2]), {"evidence": masks}, [0, 1, 2], ["a", "b", "c"])
        table = methods_by_layers(model, batch, ["0"], methods=["gradcam"], steps=3, progress=False)
        row = table[table["method"] == "centre"]
        assert list(row["layer"]) == ["-"] and float(row["pointing"].iloc[0]) == 1.0
    finally:
        registry.unregister("centre")
    assert "centre" not in registry.method_names()


def test_register_refuses_a_class_that_is_not_an_explainer():
    class Loose:
        name = "loose"

    with pytest.raises(TypeError, match="not an Explainer: derive it from"):
        registry.register(Loose)


def test_a_class_of_ones_own_cannot_take_a_built_in_name_and_a_reload_keeps_the_order():
    from fishcam_utils.explain import GradCAM

    class StudentsGradCAM(GradCAM):
        name, label = "gradcam", "Grad-CAM"

    StudentsGradCAM.__qualname__ = GradCAM.__qualname__  # a student's class called GradCAM, in her own module
    with pytest.raises(ValueError, match="the name 'gradcam' is taken by the explanation method 'gradcam'"):
        registry.register(StudentsGradCAM)
    assert registry.lookup("gradcam").cls is GradCAM
    order = registry.method_names()
    registry.register(GradCAM)  # its module reloaded: the same class again, in its place
    assert registry.method_names() == order


def test_a_map_without_a_layer_refuses_a_multi_view_batch_by_name():
    class TwoViews(torch.nn.Module):
        def forward(self, views, present):
            return views.mean((2, 3, 4))[:, :2]

    views, present = torch.rand(2, 3, 3, 8, 8), torch.ones(2, 3, dtype=torch.bool)
    for name in ("gradient", "guided-backprop", "random", "edges"):
        with pytest.raises(ValueError, match=r"explains a batch of single images \(N, C, H, W\).*explain_fish"):
            make_cam(name, TwoViews())((views, present))


def test_a_reference_listed_among_the_methods_is_one_row():
    from fishcam_utils.explain.judging import EvidenceBatch, methods_by_layers

    images = torch.rand(3, 3, 9, 9)
    masks = torch.zeros(3, 9, 9, dtype=torch.bool)
    masks[:, 3:6, 3:6] = True
    batch = EvidenceBatch(images, torch.tensor([0, 1, 2]), {"evidence": masks}, [0, 1, 2], ["a", "b", "c"])
    table = methods_by_layers(_tiny(0), batch, ["0"], methods=["gradcam", "edges"], steps=2, progress=False)
    assert list(table["method"]) == ["gradcam", "edges", "random"] and list(table["layer"]) == ["0", "-", "-"]
