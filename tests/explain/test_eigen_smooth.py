"""Eigen-smoothing: the first principal component of a CAM method's weighted activations w_c A_c."""

from __future__ import annotations

import copy

import pytest
import torch
from helpers import activations_and_gradients
from numerics import assert_within, float32_atol, float64, float64_atol, network_terms

from fishcam_utils.explain import BaseCAM, GradCAM, ScoreCAM, make_cam


@pytest.mark.numeric
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "xgradcam", "hirescam", "layercam"])
def test_eigen_smoothing_is_pytorch_grad_cams_projection_of_the_weighted_activations(resnet, batch, method):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection

    x, targets = batch
    model, x = float64(resnet), x.double()
    cam = make_cam(method, model, "layer4")
    raw = cam(x, targets, eigen_smooth=True).raw
    a, g, _ = activations_and_gradients(model, "layer4", x, targets)
    theirs = torch.from_numpy(get_2d_projection(cam.weigh(a, g).numpy())).double()
    # The component's sign is the SVD routine's choice there; ours points it along the summed channels.
    sign = torch.sign((raw * theirs).flatten(1).sum(1))[:, None, None]
    # float64 SVDs of the same matrix (4 x 4 pixels x 512 channels), their result rounded to float32.
    torch.testing.assert_close(raw, sign * theirs, rtol=0, atol=4 * torch.finfo(torch.float32).eps * theirs.abs().max())


def projection_atol(weighted: torch.Tensor, error: torch.Tensor) -> torch.Tensor:
    """(N,): how far the first-component projections of two weighted activations (N, C, h, w) may be apart
    when they differ by a matrix of Frobenius norm at most ``error`` (N,): the projection M v moves by at most
    |E| + sigma_1 |dv|, with |dv| <= 2 |E| / (sigma_1 - sigma_2 - |E|) (Wedin); |E|_2 <= |E|_F, and the
    centring over pixels, a projection, does not enlarge it."""
    pixels = weighted.flatten(2).transpose(1, 2)
    sigma = torch.linalg.svdvals(pixels - pixels.mean(1, keepdim=True))
    gap = sigma[:, 0] - sigma[:, 1] - error
    assert (gap > 0).all(), "no spectral gap: the first component is not defined well enough to compare"
    return error + sigma[:, 0] * 2 * error / gap


def test_eigen_smoothing_for_every_class_equals_one_call(resnet, batch):
    x, targets = batch
    model, x = float64(resnet), x.double()
    cam = GradCAM(model, "layer3")
    every = cam.all_classes(x, eigen_smooth=True)
    one = cam(x, targets, eigen_smooth=True)
    # The weighted activations of the two paths differ by float64 rounding within the network's and the
    # gradient's sums, entry by entry; over the hw x C matrix in Frobenius norm.
    a, g, _ = activations_and_gradients(copy.deepcopy(model), "layer3", x, targets)
    h, w = a.shape[2:]
    entry = float64_atol((g.abs().sum((2, 3))[:, :, None, None] * a.abs()).flatten(1).amax(1),
                         terms=network_terms(model) + h * w + a.shape[1])
    atol = projection_atol(cam.weigh(a, g), entry * (h * w * a.shape[1]) ** 0.5)
    assert_within(every.raw[torch.arange(len(x)), targets], one.raw, atol[:, None, None],
                  "eigen-smoothing, every class against one call")


def test_eigen_smoothed_cam_is_eigen_smoothed_grad_cam_times_hw(resnet, batch):
    # For a GAP-linear head Grad-CAM's weights are CAM's over h w, and the projection is linear in its matrix.
    x, targets = batch
    model, x = float64(resnet), x.double()
    cam = make_cam("cam", model, "layer4", fc="fc")(x, targets, eigen_smooth=True).raw
    grad_cam = GradCAM(model, "layer4")(x, targets, eigen_smooth=True).raw
    a, g, _ = activations_and_gradients(copy.deepcopy(model), "layer4", x, targets)
    h, w = a.shape[2:]
    weights = model.fc.weight.detach()[targets][:, :, None, None]
    # Grad-CAM's weights: the backward's float64 rounding through avgpool and fc, of terms |w_kc| / hw.
    entry = float64_atol((weights.abs() * a.abs()).flatten(1).amax(1), terms=network_terms(model) + h * w)
    atol = projection_atol(weights * a, entry * (h * w * a.shape[1]) ** 0.5)
    assert_within(grad_cam * (h * w), cam, atol[:, None, None], "eigen CAM against eigen Grad-CAM x hw")


def test_eigen_cam_is_already_a_first_component_and_a_method_without_weights_says_so(resnet, batch):
    x, targets = batch
    eigen = make_cam("eigencam", resnet, "layer4")
    assert torch.equal(eigen(x, targets, eigen_smooth=True).raw, eigen(x, targets).raw)

    class Centre(BaseCAM):  # a user's gradient-free method that gives maps but no channel weights
        name, label, needs_gradients, multi_activation = "centre-test", "Centre", False, False

        def class_maps(self, activations, inputs, logits, targets):
            return activations.mean(1, keepdim=True).expand(-1, targets.classes.shape[1], -1, -1)

    assert Centre(resnet, "layer4")(x[:1]).raw.shape == (1, 2, 2)
    with pytest.raises(ValueError, match="Centre does not say its channel weights .channel_weights., so it cannot"):
        Centre(resnet, "layer4")(x[:1], eigen_smooth=True)


@pytest.mark.slow
@pytest.mark.numeric
def test_eigen_smoothed_score_cam_is_pytorch_grad_cams_projection_of_its_weighted_activations(resnet, batch):
    from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection
    from test_cam import recorded_logits

    x, targets = batch
    model, x, targets = float64(resnet), x[:2].double(), targets[:2]
    cam = ScoreCAM(model, "layer3")
    scores = recorded_logits(cam)
    raw = cam(x, targets, eigen_smooth=True).raw
    a, _, _ = activations_and_gradients(copy.deepcopy(model), "layer3", x, targets)
    weighted = score_cam_weights(model, x, targets, a) * a
    theirs = torch.from_numpy(get_2d_projection(weighted.numpy())).double()
    sign = torch.sign((raw * theirs).flatten(1).sum(1))[:, None, None]  # the SVD's choice there
    # Our weights round the scores to float32 and softmax them over C channels in float32 (relative errors of
    # (C + 2) eps, and 2 eps |s| at a float32 tie: test_cam.score_cam_atol), these are float64: so the weighted
    # activations differ by |E|_F <= r |w A|_F; and pytorch-grad-cam's projection is rounded to float32.
    largest = max(float(s.abs().max()) for s in scores)
    relative = float32_atol(1.0, a.shape[1] + 2) + float32_atol(largest, 2)
    atol = projection_atol(weighted, relative * weighted.flatten(1).norm(dim=1))[:, None, None]
    assert_within(raw, sign * theirs, atol + float32_atol(theirs.abs().amax((1, 2), keepdim=True), 1),
                  "eigen-smoothed Score-CAM against pytorch-grad-cam's projection")


def masked_scores(model, x, targets, a) -> torch.Tensor:
    """(N, C): Score-CAM's scores, written out: each channel upsampled and min-max scaled masks the image;
    the target's logit of each masked image."""
    masks = torch.nn.functional.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=True)
    low, high = masks.amin((2, 3), keepdim=True), masks.amax((2, 3), keepdim=True)
    masks = (masks - low) / (high - low + 1e-8)
    with torch.no_grad():
        return torch.stack([model(x[i] * masks[i, :, None])[:, targets[i]] for i in range(len(x))])


def score_cam_weights(model, x, targets, a) -> torch.Tensor:
    """Score-CAM's channel weights (N, C, 1, 1): the softmax over channels of ``masked_scores``."""
    return torch.softmax(masked_scores(model, x, targets, a), dim=1)[:, :, None, None]


class HalfDead(torch.nn.Module):
    """A convolution whose odd channels a ReLU zeroes everywhere (bias -100), pooled into 4 classes."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        with torch.no_grad():
            self.conv.bias[1::2] = -100.0
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(8, 4)

    def forward(self, x):
        return self.fc(self.relu(self.conv(x)).mean((2, 3)))


def test_score_cams_dead_channels_share_one_black_pass_and_score_as_a_pass_of_each():
    model = float64(HalfDead()).eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    targets = torch.tensor([1, 3])
    cam = ScoreCAM(model, "relu", batch_size=3)
    seen = recorded_passes(cam)
    raw = cam(x, targets, normalize=None).raw
    # 2 images x 4 live channels in batches of 3, then one black image for all 8 dead pairs.
    assert seen == [3, 3, 2, 1]
    a = model.relu(model.conv(x)).detach()
    scores = masked_scores(model, x, targets, a)  # every channel's masked image through the network
    weights = torch.softmax(scores, dim=1)[:, :, None, None]
    # Both sides: float64 passes (the black image alone or not: sums of exact zeros, then per-channel
    # constants), ours softmaxed from float32 scores: (C + 2) eps relative, and 2 eps |s| at a float32 tie.
    relative = float32_atol(1.0, a.shape[1] + 2) + float32_atol(float(scores.abs().max()), 2)
    expected = (weights * a).sum(1)
    assert_within(raw, expected, relative * expected.abs().amax((1, 2), keepdim=True), "Score-CAM with dead channels")


def recorded_passes(cam) -> list:
    """The batch size of every masked pass a Score-CAM makes."""
    seen: list = []
    logits_for = cam.logits_for
    cam.logits_for = lambda inputs: seen.append(len(inputs)) or logits_for(inputs)
    return seen


class FlatView(HalfDead):
    """HalfDead with a head that views its features flat, which channels-last features cannot be."""

    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(8 * 12 * 12, 4)

    def forward(self, x):
        features = self.relu(self.conv(x))
        return self.fc(features.view(features.shape[0], -1))


def test_score_cam_falls_back_to_ordinary_images_for_a_model_that_views_its_features_flat():
    model = float64(FlatView()).eval()
    x = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    with pytest.raises(RuntimeError, match="view"):  # what the fallback is for
        model(x.contiguous(memory_format=torch.channels_last))
    cam = ScoreCAM(model, "relu", batch_size=3)
    raw = cam(x, torch.tensor([0, 2]), normalize=None).raw
    assert cam._flat_view
    seen = recorded_passes(cam)
    assert torch.equal(cam(x, torch.tensor([0, 2]), normalize=None).raw, raw)  # the same ordinary passes again
    assert seen == [3, 3, 2, 1]  # 2 images x 4 live channels in threes, the black image: no failed try first
    a = model.relu(model.conv(x)).detach()
    scores = masked_scores(model, x, torch.tensor([0, 2]), a)
    expected = (torch.softmax(scores, dim=1)[:, :, None, None] * a).sum(1)
    relative = float32_atol(1.0, a.shape[1] + 2) + float32_atol(float(scores.abs().max()), 2)  # as above
    assert_within(raw, expected, relative * expected.abs().amax((1, 2), keepdim=True), "Score-CAM, flat view")
