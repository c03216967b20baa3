"""ARCC and its parts, against pytorch-grad-cam's metrics.arcc and by hand."""

from __future__ import annotations

import pytest
import torch
from numerics import assert_within, float32_atol, float64_atol

from fishcam_utils.explain import GradCAM
from fishcam_utils.explain.judging.arcc import ARCC_FRACTIONS, arcc, coherency, mean_heat


class LinearConvNet(torch.nn.Module):
    """Convolution, global average pooling, a linear head, in float64: the logits are linear in the image, so how
    far float32 roundings of an imputed image move them has a bound (the gradient's L1 norm)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1).double()
        self.fc = torch.nn.Linear(8, 4).double()

    def forward(self, x):
        return self.fc(self.conv(x.double()).mean((2, 3)))


def test_coherency_and_mean_heat_by_hand():
    maps = torch.rand(2, 5, 5, generator=torch.Generator().manual_seed(1))
    # A mean of 25 values in [0, 1] in float64; Pearson's r: sums of 25 products of centred values in [-1, 1],
    # a product of two norms, a division.
    atol = float64_atol(1.0, 25 + 3)
    assert_within(mean_heat(maps), maps.double().mean((1, 2)), atol, "mean heat")
    assert_within(coherency(lambda x, t: maps, torch.ones(2, 3, 5, 5), maps, torch.zeros(2)),
                  torch.ones(2, dtype=torch.float64), atol, "coherency of the same map")
    assert_within(coherency(lambda x, t: 1 - maps, torch.ones(2, 3, 5, 5), maps, torch.zeros(2)),
                  torch.zeros(2, dtype=torch.float64), atol, "coherency of the negated map")
    flat = coherency(lambda x, t: torch.ones(2, 5, 5), torch.ones(2, 3, 5, 5), maps, torch.zeros(2))
    assert flat.tolist() == [0.5, 0.5]


@pytest.mark.numeric
@pytest.mark.filterwarnings("ignore:__array_wrap__ must accept context")
def test_arcc_equals_pytorch_grad_cams(monkeypatch):
    from pytorch_grad_cam.metrics import road as pgc_road
    from pytorch_grad_cam.metrics.arcc import ARCC
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    # Their ROAD draws noise from the global generator: without noise on both sides, the same imputation.
    monkeypatch.setattr(pgc_road.NoisyLinearImputer.__init__, "__defaults__", (0.0, pgc_road.neighbors_weights))
    model = LinearConvNet().eval()
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    targets = torch.tensor([0, 2, 3])
    cam = GradCAM(model, "conv")

    def explain(images, classes):
        # Signed maps min-max scaled (this layer keeps the image's size): no ties, which pytorch-grad-cam's
        # ROAD would remove all at once (a map zero on most pixels can have every pixel removed; see test_road).
        # The images stay float32, as their ROAD wants.
        raw = cam(images.double(), classes, normalize=None).raw
        low, high = raw.amin((1, 2), keepdim=True), raw.amax((1, 2), keepdim=True)
        return ((raw - low) / (high - low)).float()

    def theirs_base(input_tensor, targets):  # the same explainer on their side, so only ARCC's formula differs
        return explain(input_tensor, torch.tensor([t.category for t in targets])).numpy()

    maps = explain(x, targets)
    ours = arcc(model, explain, x, maps, targets, noise=0.0, ties="threshold")
    expected = ARCC(theirs_base, road_percentiles=[round(100 * (1 - f)) for f in ARCC_FRACTIONS])(
        x, maps.numpy(), [ClassifierOutputSoftmaxTarget(int(t)) for t in targets], model)
    # ARCC = 3 / sum_i 1 / p_i moves by at most 3 times the parts' errors (d ARCC / d p_i = ARCC^2 / (3 p_i^2)
    # <= 3, as no part is below a third of their harmonic mean; the clipping does not enlarge an error). Their
    # 1e-8 on each part; their Pearson's 1e-8 / (s_a s_b) of r, halved. ROAD's probabilities: the float32
    # rounding of an imputed value (an eps of max |x|) moves a logit by at most |d logit / dx|_1 eps max |x|;
    # the float32 softmax and casts a few eps more; each combined (halved) and doubled by ARCC's scaling.
    grad = torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x[0].double()).abs().flatten(1).sum(1)
    logits = model(x).detach()
    road_atol = 2 * (float32_atol(float(grad.max() * x.abs().max()), 1)
                     + float32_atol(2 * float(logits.abs().max()) + logits.shape[1] + 3, 1))
    again = explain(x * maps[:, None], targets)
    spread = maps.flatten(1).double().std(1) * again.flatten(1).double().std(1)
    atol = 3 * (road_atol + 1e-8 / spread / 2 + 3 * 1e-8) + float32_atol(1.0, 4)
    assert_within(ours, torch.from_numpy(expected).double(), atol, "ARCC against pytorch-grad-cam")
    assert ((ours >= 0) & (ours <= 1)).all()
