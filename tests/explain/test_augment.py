"""Test-time augmentation smoothing: exact inverses, one call for every copy, and pytorch-grad-cam's aug_smooth."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import activations_and_gradients
from numerics import (
    assert_within,
    channel_sum_scale,
    float64,
    float64_atol,
    map_atol,
    network_terms,
    pytorch_grad_cam_atol,
)

from fishcam_utils.explain import GradCAM
from fishcam_utils.explain.augment import DEFAULT_TTA, PYTORCH_GRAD_CAM_TTA, Augmentation


def test_every_augmentation_maps_back_exactly():
    maps = torch.rand(2, 7, 9)
    for augmentation in DEFAULT_TTA + (Augmentation(flip=True, shift=(3, -1)),):
        assert torch.equal(augmentation.map_back(augmentation.image(maps[:, None])[:, 0]), maps)
    assert torch.equal(Augmentation(factor=0.5).image(maps), maps * 0.5)  # brightness: the map is not moved


def test_smoothing_is_the_mean_of_the_maps_moved_back_from_one_call(resnet, batch):
    x, targets = batch
    model, x = float64(resnet), x.double()
    cam = GradCAM(model, "layer3")
    calls = []
    run = cam._run
    cam._run = lambda *a, **k: calls.append(a[0].shape[0]) or run(*a, **k)
    smoothed = cam(x, targets, augment=DEFAULT_TTA)
    assert calls == [len(DEFAULT_TTA) * len(x)]  # one pass over every copy, not one per augmentation
    cam._run = run
    alone = [cam(a.image(x), targets) for a in DEFAULT_TTA]
    each = torch.stack([a.map_back(r.maps) for a, r in zip(DEFAULT_TTA, alone)]).mean(0)
    # One batch against one augmentation at a time, in float64: each copy's raw map within the network's and
    # the channel sum's terms (as test_cam's all-classes test), carried through its min-max; then the mean of
    # six maps in [0, 1].
    atol = float64_atol(1.0, len(DEFAULT_TTA))
    for a, r in zip(DEFAULT_TTA, alone):
        act, g, _ = activations_and_gradients(copy.deepcopy(model), "layer3", a.image(x), targets)
        raw_atol = float64_atol(channel_sum_scale(g.abs().sum((2, 3)), act),
                                terms=network_terms(model) + act[0, 0].numel() + act.shape[1])
        atol = atol + a.map_back(map_atol(raw_atol, r.raw, torch.float64).expand_as(r.maps)) / len(DEFAULT_TTA)
    assert_within(smoothed.maps, each, atol, "batched TTA against one augmentation at a time")
    assert smoothed.explained.tolist() == targets.tolist() and smoothed.maps.shape == x.shape[:1] + x.shape[2:]
    # No targets: each image's predicted class, for every copy of it (not each copy's own prediction).
    received = []
    cam._run = lambda copies, targets, *a, **k: received.append(targets) or run(copies, targets, *a, **k)
    predicted = cam(x, augment=DEFAULT_TTA)
    cam._run = run
    plain = cam(x).explained
    assert received[0].tolist() == plain.repeat(len(DEFAULT_TTA)).tolist()
    assert predicted.explained.tolist() == plain.tolist()
    # Numpy targets, one per image, are repeated for the copies as a tensor is.
    from_numpy = cam(x, targets.numpy(), augment=DEFAULT_TTA)
    assert torch.equal(from_numpy.maps, smoothed.maps) and from_numpy.explained.tolist() == targets.tolist()


@pytest.mark.numeric
def test_smoothing_equals_pytorch_grad_cams_aug_smooth(resnet, batch):
    import pytorch_grad_cam as pgc
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    x, targets = batch
    model, x = float64(resnet), x.double()
    ours = GradCAM(model, "layer4")(x, targets, augment=PYTORCH_GRAD_CAM_TTA).maps
    reference = copy.deepcopy(model)
    with pgc.GradCAM(model=reference, target_layers=[reference.layer4]) as theirs:
        expected = theirs(input_tensor=x, targets=[ClassifierOutputTarget(int(t)) for t in targets], aug_smooth=True)
    # A mean of six maps, each within pytorch-grad-cam's resizing and rescaling of ours.
    assert_within(ours, torch.from_numpy(expected), pytorch_grad_cam_atol(), "TTA against aug_smooth")


def test_every_method_declares_the_smoothings_its_call_and_constructor_take():
    import inspect

    from fishcam_utils.explain.registry import methods

    for method in methods():
        call = inspect.signature(method.cls.__call__).parameters
        made = inspect.signature(method.cls.__init__).parameters
        declared = method.cls.smoothings
        assert ("augment" in declared) == ("augment" in call), method.name
        assert ("eigen" in declared) == ("eigen_smooth" in call), method.name
        assert ("smoothgrad" in declared) == ("samples" in made), method.name
