"""SmoothGrad for the input-gradient maps, against captum's NoiseTunnel over Saliency."""

from __future__ import annotations

import pytest
import torch
from numerics import assert_within, float64, float64_atol, network_terms

from fishcam_utils.explain import make_cam


@pytest.mark.numeric
def test_smoothgrad_equals_captums_noise_tunnel_over_saliency(resnet, batch):
    from captum.attr import NoiseTunnel, Saliency

    x, targets = batch
    model, x = float64(resnet), x.double()
    ours = make_cam("gradient", model, samples=5, sigma=0.2, seed=7)(x, targets, normalize=None)
    # captum draws its noise from the global generator, in the same layout, in the default dtype.
    torch.manual_seed(7)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        theirs = NoiseTunnel(Saliency(model)).attribute(x, nt_type="smoothgrad", nt_samples=5, stdevs=0.2,
                                                          target=targets, abs=True)
    finally:
        torch.set_default_dtype(default)
    expected = theirs.amax(1)
    # The same noisy copies (bit-equal) through the network's backward each side, then the mean of five
    # |gradients|; in float64, each gradient's terms no larger than the largest one summed.
    assert_within(ours.maps, expected, float64_atol(expected.abs().amax(), terms=network_terms(model) + 5),
                  "SmoothGrad against captum")
    assert ours.explained.tolist() == targets.tolist()


def test_smoothgrad_refuses_bad_options_and_zero_samples_is_the_plain_map(resnet, batch):
    x, targets = batch
    plain = make_cam("guided-backprop", resnet)(x, targets).maps
    assert torch.equal(make_cam("guided-backprop", resnet, samples=0)(x, targets).maps, plain)
    with pytest.raises(ValueError, match="samples must be a whole number >= 0"):
        make_cam("gradient", resnet, samples=-1)
    with pytest.raises(ValueError, match="sigma must be a standard deviation >= 0"):
        make_cam("gradient", resnet, samples=3, sigma=-0.1)


def test_smoothgrad_in_several_passes_and_with_score_functions_is_the_mean_over_the_copies(resnet, batch, monkeypatch):
    import fishcam_utils.explain.guided as guided

    x, targets = batch
    model, x = float64(resnet), x.double()
    monkeypatch.setattr(guided, "SMOOTHGRAD_COPIES_PER_PASS", 5)  # 12 copies: passes of 5, 5 and 2
    passes = []
    backprop = guided.GuidedBackprop.__call__
    monkeypatch.setattr(guided.GuidedBackprop, "__call__",
                        lambda self, inputs, t=None: passes.append(len(inputs)) or backprop(self, inputs, t))
    chunked = make_cam("gradient", model, samples=4, seed=3)(x, targets, normalize=None)
    assert passes == [5, 5, 2]
    # Each pass's noise drawn in turn from the one seeded generator, written out.
    generator = torch.Generator().manual_seed(3)
    copies = x.repeat_interleave(4, dim=0)
    noisy = torch.cat([c + torch.normal(0.0, torch.full_like(c, guided.SMOOTHGRAD_SIGMA), generator=generator)
                       for c in copies.split(5)])
    g, = torch.autograd.grad(model(noisy.requires_grad_()).gather(1, targets.repeat_interleave(4)[:, None]).sum(),
                             noisy)
    expected = g.abs().unflatten(0, (3, 4)).mean(1).amax(1)
    # float64: each gradient within the network's terms of the largest; a mean of four.
    assert_within(chunked.maps, expected, float64_atol(expected.abs().amax(), terms=network_terms(model) + 4),
                  "SmoothGrad in three passes")
    # Score functions: each copy explains what its image was asked for.
    functions = [lambda logits: logits[2], 5, lambda logits: logits[7]]
    assert torch.equal(make_cam("gradient", model, samples=4, seed=3)(x, functions, normalize=None).maps,
                       chunked.maps)
    with pytest.raises(ValueError, match="SmoothGrad adds noise to a batch of single images"):
        make_cam("gradient", model, samples=2)((x, torch.ones(3, dtype=torch.bool)))
