"""The CAM explorer, driven as a student drives it: set a control's value, then check what the panels
show against maps computed directly, and how much work the change cost.

These tests run twice in ``make test``: with JupyterLab's ipywidgets 8, and with Colab's ipywidgets
7.7.1 (``FISHCAM_EXPECT_IPYWIDGETS=7``; see the Makefile).
"""

from __future__ import annotations

import os

import ipywidgets
import numpy as np
import pytest
import torch
from numerics import float32_atol, network_terms
from torch import nn
from torch.utils.data import Subset

from fishcam_utils.data import WithoutViews, make_datasets
from fishcam_utils.explain import GuidedBackprop, gradient_to_image, guided_gradcam, make_cam, registry, saliency
from fishcam_utils.explain.augment import DEFAULT_TTA
from fishcam_utils.explain.overlay import heatmap_to_rgb, overlay_heatmap, to_uint8
from fishcam_utils.models import MultiViewNet, build_model
from fishcam_utils.widgets import CamExplorer, MapStore, explore, read_png

SIZE = 32


def test_the_expected_ipywidgets_is_the_one_tested():
    expected = os.environ.get("FISHCAM_EXPECT_IPYWIDGETS")
    if expected is None:
        pytest.skip("FISHCAM_EXPECT_IPYWIDGETS not set: testing whichever ipywidgets is installed")
    assert ipywidgets.__version__.split(".")[0] == expected, ipywidgets.__version__


@pytest.fixture(scope="module")
def splits(tiny_synth):
    return make_datasets(tiny_synth, image_size=SIZE, cache=False, progress=False)


@pytest.fixture(scope="module")
def fish_splits(tiny_synth):
    return make_datasets(tiny_synth, image_size=SIZE, cache=False, progress=False, multiview=True)


@pytest.fixture(scope="module")
def model(splits):
    torch.manual_seed(0)
    return build_model("fishresnet", len(splits.test.classes), weights=None, width=8, verbose=False).eval()


@pytest.fixture(scope="module")
def fusion_model(fish_splits):
    torch.manual_seed(0)
    return MultiViewNet(len(fish_splits.test.classes), width=4, blocks=(1, 1), weights=None, verbose=False).eval()


class Forwards:
    """Counts the model's forward passes (a hook on the whole model, so every pass is seen)."""

    def __init__(self, model: nn.Module) -> None:
        self.count = 0
        self.handle = model.register_forward_hook(self._seen)

    def _seen(self, *args) -> None:
        self.count += 1


@pytest.fixture
def forwards(model):
    counter = Forwards(model)
    yield counter
    counter.handle.remove()


def shown(panel) -> np.ndarray:
    return read_png(panel.value).astype(int)


def expected(picture) -> np.ndarray:
    return to_uint8(picture).astype(int)


def input_of(dataset, index):
    x = dataset[index][0]
    return (x[0][None], x[1][None]) if isinstance(x, (tuple, list)) else x[None]


def display_image(dataset, index, view=0) -> np.ndarray:
    from fishcam_utils.data.transforms import to_display

    x = dataset[index][0]
    return to_display(x[0][view] if isinstance(x, (tuple, list)) else x)


def check_panels(explorer: CamExplorer, dataset, method="gradcam", heat=None):
    """The heatmap and overlay panels equal a direct computation of what the controls ask for (``heat``:
    the map, computed by the caller, of a smoothed explorer)."""
    state = explorer.shown
    x = input_of(dataset, state["index"])
    v = explorer.store.views.index(state["view"])
    if heat is None:
        # Every class's maps, as the explorer makes them (one capture, or one call for all classes): the same
        # numbers; one call per class would take another backward, rounding otherwise.
        maps = make_cam(method, explorer.store.model, state["layer"]).all_classes(x).maps[0, state["target"]]
        heat = maps[v] if maps.ndim == 3 else maps
    image = display_image(dataset, state["index"], v)
    np.testing.assert_array_equal(state["map"], heat.numpy())
    assert np.abs(shown(explorer.heatmap_panel) - expected(heatmap_to_rgb(heat, state["cmap"]))).max() <= 1
    overlay = overlay_heatmap(image, heat, state["alpha"], state["cmap"])
    assert np.abs(shown(explorer.overlay_panel) - expected(overlay)).max() <= 1
    assert np.abs(shown(explorer.image_panel) - expected(image)).max() <= 1


def test_first_view_shows_the_predicted_class_at_the_last_layer(model, splits):
    explorer = explore(model, splits.test, start=2)
    with torch.no_grad():
        predicted = int(model(input_of(splits.test, 2)).argmax(1))
    assert explorer.shown["index"] == 2 and explorer.shown["target"] == predicted
    assert explorer.target.value == splits.test.classes[predicted]
    assert explorer.layer.value == explorer.store.layers[-1] == "layer2"
    assert explorer.status.value == "" and not explorer.errors
    check_panels(explorer, splits.test)
    assert f"{splits.test.classes[predicted]}</b>" in explorer.info.value  # the prediction is named


def test_a_class_change_only_rerenders(model, splits, forwards):
    explorer = explore(model, splits.test)
    before = explorer.overlay_panel.value
    for name in splits.test.classes[:4]:
        passes = forwards.count
        explorer.target.value = name
        assert forwards.count == passes, "changing class must not run the model"
        assert explorer.shown["target"] == splits.test.classes.index(name)
        check_panels(explorer, splits.test)
    assert explorer.overlay_panel.value != before


def test_opacity_and_colormap_only_rerender(model, splits, forwards):
    explorer = explore(model, splits.test)
    passes, heatmap = forwards.count, explorer.heatmap_panel.value
    explorer.opacity.value = 0.9
    explorer.colormap.value = "viridis"
    assert forwards.count == passes, "opacity and colours must not run the model"
    assert explorer.shown["alpha"] == 0.9 and explorer.shown["cmap"] == "viridis"
    assert explorer.heatmap_panel.value != heatmap
    check_panels(explorer, splits.test)
    heatmap = explorer.heatmap_panel.value
    explorer.opacity.value = 0.2
    assert explorer.heatmap_panel.value == heatmap  # the heatmap does not depend on the opacity
    check_panels(explorer, splits.test)


def test_a_layer_change_captures_that_layer_once(model, splits, forwards):
    passes = forwards.count
    explorer = explore(model, splits.test)
    assert forwards.count == passes + 2  # predicting the split (one batch), then layer2 of the first image
    for layer, new_passes in (("layer1", 1), ("stem", 1), ("layer1", 0)):
        passes = forwards.count
        explorer.layer.value = layer
        assert forwards.count == passes + new_passes  # a layer seen before is kept
        assert explorer.shown["layer"] == layer
        check_panels(explorer, splits.test)
    assert explorer.store.counts["capture"] == 3


@pytest.mark.parametrize("method", ["Grad-CAM++", "XGrad-CAM", "HiResCAM", "LayerCAM", "Eigen-Grad-CAM"])
def test_gradient_methods_reuse_the_captured_activations(model, splits, forwards, method):
    explorer = explore(model, splits.test)
    passes = forwards.count
    explorer.method.value = method
    assert forwards.count == passes, "a gradient method reuses the capture of this image and layer"
    assert explorer.shown["method"] == registry.lookup(method).name
    check_panels(explorer, splits.test, explorer.shown["method"])


@pytest.mark.parametrize("method", ["Ablation-CAM", "Eigen-CAM"])
def test_gradient_free_methods_show_their_own_maps(model, splits, method):
    explorer = explore(model, splits.test, start=2)
    explorer.method.value = method
    assert explorer.store.counts[registry.lookup(method).name] == 1  # their own passes, once
    check_panels(explorer, splits.test, registry.lookup(method).name)


def test_a_flat_map_is_shown_grey_not_stretched(model, splits):
    explorer = explore(model, splits.test)
    c = explorer.classes.index(explorer.target.value)
    explorer.maps.flat[c, 0] = True  # as a noise-level HiResCAM map would be marked
    explorer.colormap.value = "viridis"  # re-render
    assert explorer.shown["flat"] and "flat: no spatial information" in explorer.captions[1].value
    assert (shown(explorer.heatmap_panel) == expected(np.full((SIZE, SIZE, 3), 0.5))).all()
    image = display_image(splits.test, explorer.shown["index"])
    assert np.abs(shown(explorer.overlay_panel) - expected(image)).max() <= 1  # the image, no colour laid on it


@pytest.mark.numeric
def test_score_cam_and_guided_grad_cam_match_direct_computations(model, splits):
    explorer = explore(model, splits.test, start=1)
    explorer.method.value = "Score-CAM"
    check_panels(explorer, splits.test, "scorecam")

    explorer.method.value = "guided Grad-CAM"
    explorer.target.value = splits.test.classes[3]
    x = input_of(splits.test, 1)
    # Guided Grad-CAM multiplies by the ReLU'd Grad-CAM map before min-max normalisation (captum's definition).
    cam = make_cam("gradcam", model, explorer.layer.value)(x, targets=3, normalize=None).maps
    guided = GuidedBackprop(model)(x, targets=3).gradients
    product = guided_gradcam(guided, cam)
    # The explorer's capture (one batched backward) and guided pass (a batch of every class's copies) round
    # the small network otherwise than these single calls: each factor by the network's reductions (and the
    # map's h w + C, under H W here), of terms taken as large as its largest value; the saliency's peak too.
    sizes = float(guided.abs().max() * cam.max() / product.abs().amax(1).max())
    atol = 4 * float32_atol(sizes, terms=network_terms(model) + SIZE * SIZE)
    np.testing.assert_allclose(explorer.shown["map"], saliency(product)[0].numpy(), rtol=0, atol=atol)
    assert np.abs(shown(explorer.heatmap_panel) - expected(gradient_to_image(product)[0])).max() <= 1
    assert explorer.store.counts["guided"] == 1
    explorer.target.value = splits.test.classes[5]  # every class's guided pass was one batch
    assert explorer.store.counts["guided"] == 1


@pytest.mark.parametrize("method", ["Grad-CAM", "Ablation-CAM"])
def test_eigen_smoothing_shows_every_class_eigen_smoothed(model, splits, forwards, method):
    explorer = explore(model, splits.test, start=2)
    explorer.method.value = method
    key = registry.lookup(method).name
    plain, passes = explorer.shown["map"], forwards.count
    explorer.smoothing.value = "eigen"
    assert explorer.message == "" and explorer.shown["smoothing"] == "eigen"
    assert "eigen-smoothing" in explorer.captions[1].value
    if key == "gradcam":
        assert forwards.count == passes, "a gradient method is eigen-smoothed from the capture it has"
    x = input_of(splits.test, 2)
    # The same computation as the explorer's (one capture, or one all-classes call): the same numbers.
    every = make_cam(key, model, explorer.layer.value).all_classes(x, eigen_smooth=True).maps[0]
    target = explorer.shown["target"]
    np.testing.assert_array_equal(explorer.shown["map"], every[target].numpy())
    assert not np.array_equal(explorer.shown["map"], plain)  # the smoothing changed what is shown
    check_panels(explorer, splits.test, heat=every[target])
    other = (target + 1) % len(explorer.classes)
    passes = forwards.count
    explorer.target.value = explorer.classes[other]  # every class was made: a class change only re-renders
    assert forwards.count == passes
    np.testing.assert_array_equal(explorer.shown["map"], every[other].numpy())
    made = explorer.store.counts["maps"]
    explorer.target.value = explorer.classes[target]
    explorer.smoothing.value = "none"  # the plain maps are still kept
    assert explorer.store.counts["maps"] == made and forwards.count == passes
    np.testing.assert_array_equal(explorer.shown["map"], plain)


def test_test_time_augmentation_makes_the_shown_class_on_demand(model, splits, forwards):
    explorer = explore(model, splits.test, start=1)
    assert explorer.target.continuous_update
    x, layer, target = input_of(splits.test, 1), explorer.layer.value, explorer.shown["target"]
    plain, passes = explorer.shown["map"], forwards.count
    explorer.smoothing.value = "tta"
    assert forwards.count == passes + 1  # one forward (and backward) of all six copies together
    assert explorer.store.counts["tta"] == 1 and explorer.message == ""
    # The explorer's call on the same image, class and copies: the same numbers.
    heat = make_cam("gradcam", model, layer)(x, targets=target, augment=DEFAULT_TTA).maps[0]
    np.testing.assert_array_equal(explorer.shown["map"], heat.numpy())
    assert not np.array_equal(explorer.shown["map"], plain)
    check_panels(explorer, splits.test, heat=heat)
    assert not explorer.target.continuous_update  # a dragged slider makes only the class let go
    other = (target + 3) % len(explorer.classes)
    explorer.target.value = explorer.classes[other]
    assert explorer.store.counts["tta"] == 2 and explorer.shown["target"] == other
    heat = make_cam("gradcam", model, layer)(x, targets=other, augment=DEFAULT_TTA).maps[0]
    np.testing.assert_array_equal(explorer.shown["map"], heat.numpy())
    check_panels(explorer, splits.test, heat=heat)
    passes = forwards.count
    explorer.target.value = explorer.classes[target]  # made before: kept
    explorer.opacity.value = 0.8
    assert forwards.count == passes and explorer.store.counts["tta"] == 2
    explorer.smoothing.value = "none"
    assert explorer.target.continuous_update and forwards.count == passes
    np.testing.assert_array_equal(explorer.shown["map"], plain)


def test_a_smoothing_that_does_not_apply_is_refused_or_greyed_out(model, splits):
    explorer = explore(model, splits.test)
    explorer.smoothing.value = "tta"
    assert explorer.message == ""
    explorer.method.value = "guided Grad-CAM"  # takes no smoothing: back to none, said, the menu greyed out
    assert explorer.smoothing.value == "none" and explorer.shown["smoothing"] == "none"
    assert explorer.message.startswith("guided Grad-CAM is shown without smoothing: test-time augmentation")
    assert "fishcam-error" not in explorer.status.value and explorer.smoothing.disabled
    plain = explorer.shown["map"]
    explorer.smoothing.value = "eigen"  # from code, past the greyed-out menu: refused all the same
    assert explorer.message.startswith("ValueError: eigen-smoothing") and explorer.message.endswith("choose none")
    assert "Still showing 'none'" in explorer.message and "fishcam-error" in explorer.status.value
    assert "Traceback" not in explorer.status.value
    assert explorer.smoothing.value == "none" and explorer.shown["smoothing"] == "none"
    np.testing.assert_array_equal(explorer.shown["map"], plain)
    explorer.method.value = "HiResCAM"
    assert not explorer.smoothing.disabled and explorer.message == ""
    check_panels(explorer, splits.test, "hirescam")


def test_test_time_augmentation_of_a_fish_is_refused_and_eigen_smoothing_works(fusion_model, fish_splits):
    dataset = fish_splits.test
    explorer = explore(fusion_model, dataset)
    explorer.smoothing.value = "tta"
    assert explorer.message.startswith("ValueError: test-time augmentation flips and shifts single images")
    assert explorer.smoothing.value == "none"
    explorer.smoothing.value = "eigen"
    assert explorer.message == ""
    x = input_of(dataset, explorer.shown["index"])
    every = make_cam("gradcam", fusion_model, explorer.layer.value).all_classes(x, eigen_smooth=True).maps[0]
    for v, view in enumerate(explorer.store.views):
        explorer.view.value = view
        np.testing.assert_array_equal(explorer.shown["map"], every[explorer.shown["target"], v].numpy())
    check_panels(explorer, dataset, heat=every[explorer.shown["target"], v])


def test_filters_pick_the_right_images(model, splits):
    explorer = explore(model, splits.test)
    with torch.no_grad():
        logits = torch.cat([model(input_of(splits.test, i)) for i in range(len(splits.test))])
    labels = np.array([splits.test[i][1] for i in range(len(splits.test))])
    wrong = np.flatnonzero(logits.argmax(1).numpy() != labels)
    assert f"misclassified ({len(wrong)})" in [label for label, _ in explorer.filter.options]
    if len(wrong):
        explorer.filter.value = "misclassified"
        assert explorer.index.max == len(wrong) - 1
        shown_images = []
        for position in range(len(wrong)):
            explorer.index.value = position
            shown_images.append(explorer.shown["index"])
        assert shown_images == wrong.tolist()
    name = splits.test.classes[4]
    explorer.filter.value = name
    assert explorer.index.value == 0 and explorer.shown["index"] == int(np.flatnonzero(labels == 4)[0])
    explorer.index.value = explorer.index.max
    assert labels[explorer.shown["index"]] == 4
    # a new image starts on its predicted class
    assert explorer.shown["target"] == int(logits[explorer.shown["index"]].argmax())


def test_an_empty_filter_says_so_and_keeps_the_images(model, splits):
    labels = [splits.test[i][1] for i in range(len(splits.test))]
    only_first_class = Subset(splits.test, [i for i, y in enumerate(labels) if y == 0])
    explorer = explore(model, only_first_class)
    showing = explorer.shown["index"]
    explorer.filter.value = splits.test.classes[1]
    assert explorer.message.startswith("ValueError: no image matches") and splits.test.classes[1] in explorer.message
    assert "fishcam-error" in explorer.status.value  # shown in the widget, styled as an error
    assert explorer.shown["index"] == showing and len(explorer.errors) == 1
    assert explorer.filter.value == "all"  # the menu shows the filter whose images are still shown
    explorer.target.value = splits.test.classes[2]  # still working
    assert explorer.shown["target"] == 2


def test_a_failing_layer_is_reported_in_the_widget_and_the_explorer_recovers(splits):
    torch.manual_seed(0)
    model = build_model("fishresnet", 9, weights=None, width=8, verbose=False).train()
    head = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)][-1]
    explorer = explore(model, splits.test, layers=["layer1", head, "layer2"])
    explorer.layer.value = head  # a linear layer has no feature maps: its maps cannot be computed
    assert explorer.message.startswith("ValueError: ") and "(N, C, h, w)" in explorer.message
    assert "(N, C, h, w)" in explorer.status.value
    assert isinstance(explorer.errors[-1], ValueError) and "Traceback" in explorer.error_trace
    assert explorer.maps is None and "no map" in explorer.captions[1].value
    # the failed call left no hook behind and the model in training mode, as it was
    assert all(not m._forward_hooks for m in model.modules()) and model.training
    explorer.target.value = splits.test.classes[1]  # nothing to render, and no new error
    assert len(explorer.errors) == 1
    explorer.layer.value = "layer1"
    assert explorer.status.value == "" and explorer.shown["layer"] == "layer1"
    check_panels(explorer, splits.test)
    assert model.training


def test_the_map_store_computes_each_entry_once_and_forgets_the_oldest(model, splits):
    store = MapStore(model, splits.test, capacity=4)
    first = store.maps(0, "layer2", "gradcam")
    assert store.maps(0, "layer2", "Grad-CAM") is first  # label or key, the same entry
    assert first.maps.shape == (9, 1, SIZE, SIZE) and 0 <= first.maps.min() and first.maps.max() <= 1
    # A float32 softmax of 9, summed.
    np.testing.assert_allclose(first.probs.sum(), 1, rtol=float32_atol(1.0, terms=2 * 9 + 2))
    for i in range(1, 6):
        store.maps(i, "layer2", "gradcam")
    assert store.counts["maps"] == 6
    assert not store.has_maps(0, "layer2", "gradcam") and store.has_maps(5, "layer2", "Grad-CAM")
    store.maps(0, "layer2", "gradcam")  # four newer entries pushed it out: made again
    assert store.counts["maps"] == 7
    with pytest.raises(ValueError, match="not one of the explorer's layers"):
        store.maps(0, "layer9", "gradcam")
    with pytest.raises(ValueError, match="unknown explanation method"):
        store.maps(0, "layer2", "smoothgrad")
    with pytest.raises(IndexError, match=f"has {len(splits.test)} items"):
        store.sample(len(splits.test))


def test_multi_view_fish_have_a_view_selector_and_fused_maps(fusion_model, fish_splits):
    dataset = fish_splits.test
    explorer = explore(fusion_model, dataset)
    assert explorer.view.layout.display != "none" and list(explorer.view.options) == ["side", "back", "belly"]
    assert list(explorer.layer.options) == fusion_model.cam_layer_names
    passes = explorer.store.counts["capture"]
    for view in ("back", "belly", "side"):
        explorer.view.value = view
        assert explorer.shown["view"] == view
        check_panels(explorer, dataset)
    assert explorer.store.counts["capture"] == passes  # every view's map came from one capture
    assert "view weights: side" in explorer.info.value


def test_a_missing_view_is_shown_as_missing_and_new_fish_start_on_a_present_view(fusion_model, fish_splits):
    dataset = WithoutViews(fish_splits.test, ["belly"])
    explorer = explore(fusion_model, dataset)
    explorer.view.value = "belly"
    assert "missing" in explorer.captions[0].value
    assert explorer.shown["map"].max() == 0  # a missing view contributes nothing
    explorer.index.value = 1
    assert explorer.shown["view"] == "side" and "missing" not in explorer.captions[0].value


def test_score_cam_on_a_multi_view_model_is_a_message_not_a_crash(fusion_model, fish_splits):
    explorer = explore(fusion_model, fish_splits.test)
    explorer.method.value = "Score-CAM"
    assert explorer.message.startswith("ValueError: ") and "use a gradient method" in explorer.message
    explorer.method.value = "Grad-CAM"
    assert explorer.status.value == "" and explorer.message == ""
    check_panels(explorer, fish_splits.test)


def test_bad_options_fail_early_with_the_fix(model, splits):
    with pytest.raises(ValueError, match="cmap must be one of"):
        explore(model, splits.test, cmap="rainbow-ish")
    with pytest.raises(ValueError, match="unknown explanation method"):
        explore(model, splits.test, methods=["Grad-CAM", "FullGrad"])
    with pytest.raises(ValueError, match="dataset is empty"):
        explore(model, Subset(splits.test, []))


def test_the_explorer_displays_as_one_widget(model, splits):
    explorer = explore(model, splits.test, methods=["gradcam", "hirescam"])
    assert isinstance(explorer.widget, ipywidgets.VBox)
    assert list(explorer.method.options) == ["Grad-CAM", "HiResCAM"]
    children, stack = [], [explorer.widget]
    while stack:
        widget = stack.pop()
        children.append(widget)
        stack.extend(getattr(widget, "children", ()))
    for panel in (explorer.image_panel, explorer.heatmap_panel, explorer.overlay_panel, explorer.target,
                  explorer.layer, explorer.smoothing, explorer.status):
        assert panel in children
    assert "fishcam-overlay-panel" in explorer.overlay_panel._dom_classes
    assert "fishcam-smoothing" in explorer.smoothing._dom_classes
    assert [label for label, _ in explorer.smoothing.options] == ["none", "test-time augmentation", "eigen-smoothing"]
