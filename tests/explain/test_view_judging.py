"""Judging a multi-view explanation: weight, heat, sufficiency and necessity per view, energy on the
deciding trait; missing views, ties and train mode."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from numerics import float32_atol, network_terms

from fishcam_utils.data import WithoutViews, make_datasets
from fishcam_utils.evaluation.attention import synthetic_deciding_views
from fishcam_utils.explain import GradCAM
from fishcam_utils.explain.judging.view_judging import judge_views, views_by_class
from fishcam_utils.models import MultiViewNet


def small_fusion(fusion="attention", **options) -> MultiViewNet:
    torch.manual_seed(0)
    return MultiViewNet(9, fusion=fusion, width=4, blocks=(1, 1), weights=None, **options).eval()


@pytest.fixture(scope="module")
def fish(tiny_synth):
    return make_datasets(tiny_synth, multiview=True, image_size=32, masks=["evidence"], progress=False).test


def p_true(model, x, keep, label):
    if not keep.any():
        return math.nan
    with torch.no_grad():
        return model((x * keep[:, None, None, None])[None], keep[None]).logits.softmax(1)[0, label].item()


@pytest.mark.numeric
def test_judge_views_matches_a_computation_by_hand(fish):
    model = small_fusion()
    deciding = synthetic_deciding_views()
    indices = [0, 3, 5, 8]
    frame = judge_views(model, fish, iter(indices), deciding, layer="layer2", batch_size=3)  # two chunks
    views = fish.views
    samples = [fish[i] for i in indices]
    x = torch.stack([s[0][0] for s in samples])
    present = torch.stack([s[0][1] for s in samples])
    labels = torch.tensor([s[1] for s in samples])
    weights = model(x, present).weights.detach()
    raw = GradCAM(model, "layer2")((x, present), labels, normalize=None).maps  # (4, V, 32, 32), ReLU'd
    # float32, and judge_views runs its fish in chunks of 3 and 1 where these passes take 4 or 1: the
    # network rounds its own way (its reductions, of terms taken as large as the reference's largest |value|).
    # A probability moves by at most half its logits' error, a softmax weight by twice its scores'; a share
    # of Grad-CAM mass also by the two float32 sums of every view's pixels it divides, and by its maps' own
    # mean over h w and sum over C channels.
    network = network_terms(model)
    logit_size = float(model(x, present).logits.detach().abs().max())
    p_atol = float32_atol(logit_size, terms=network + 2)
    weight_atol = float32_atol(1.0, terms=2 * network + 2)
    share_atol = float32_atol(1.0, terms=2 * (network + 8 * 8 + 8) + 2 * raw[0].numel() + 3)
    for row, (sample, label) in enumerate(zip(samples, labels.tolist())):
        d = views.index(deciding[fish.classes[label]])
        total = raw[row].sum()
        assert frame["deciding_view"].iloc[row] == views[d]
        assert frame["energy"].iloc[row] == pytest.approx(
            ((raw[row, d] * sample[2]["evidence"][d]).sum() / total).item(), abs=share_atol)
        assert frame["chance"].iloc[row] == pytest.approx(sample[2]["evidence"][d].float().mean().item() / len(views))
        # The trait is part of its view, up to the float32 sums of the view's pixels and of the trait's.
        assert (frame["energy"].iloc[row]
                <= frame[f"heat_{views[d]}"].iloc[row] + float32_atol(1.0, 2 * raw[0, 0].numel() + 2))
        everything = p_true(model, x[row], present[row], label)
        for v, name in enumerate(views):
            only = torch.zeros(len(views), dtype=torch.bool)
            only[v] = True
            assert frame[f"alone_{name}"].iloc[row] == pytest.approx(p_true(model, x[row], only, label), abs=p_atol)
            assert frame[f"drop_{name}"].iloc[row] == pytest.approx(everything - p_true(model, x[row], ~only, label),
                                                                    abs=2 * p_atol)
            assert frame[f"weight_{name}"].iloc[row] == pytest.approx(weights[row, v].item(), abs=weight_atol)
            assert frame[f"heat_{name}"].iloc[row] == pytest.approx((raw[row, v].sum() / total).item(), abs=share_atol)
    assert frame["fish_id"].tolist() == fish.fish["fish_id"].iloc[indices].tolist()
    assert frame.attrs["layer"] == "layer2" and frame.attrs["method"] == "gradcam"


def test_missing_views_give_nan_never_zero(fish):
    model = small_fusion()
    deciding = synthetic_deciding_views()
    one_left = judge_views(model, WithoutViews(fish, ["back", "belly"]), range(6), deciding)  # no crash
    assert one_left[["weight_back", "heat_back", "alone_back", "drop_back", "drop_side"]].isna().all().all()
    # One view left: its weight is 1 up to a softmax over V = 3 scores; its heat, its mass over that mass plus zeros.
    np.testing.assert_allclose(one_left[["heat_side", "weight_side"]], 1, rtol=0, atol=float32_atol(1.0, terms=3 + 2))
    assert (one_left["alone_side"].notna()).all()
    side_deciders = one_left["deciding_view"] == "side"
    assert one_left.loc[~side_deciders, ["energy", "chance"]].isna().all().all()  # their trait is not in the picture
    assert one_left.loc[side_deciders, ["energy", "chance"]].notna().all().all()
    table = views_by_class(one_left)
    assert table.loc[table["deciding_view"] != "side", "weight"].isna().all()


def test_a_tie_is_no_ranking_and_the_model_keeps_its_mode(fish):
    model = small_fusion("mean", view_dropout=0.5, dropout=0.3).train()
    frame = judge_views(model, fish, range(len(fish)), synthetic_deciding_views())
    assert model.training and all(m.training for m in model.modules())
    again = judge_views(model, fish, range(len(fish)), synthetic_deciding_views())
    pd.testing.assert_frame_equal(frame, again)  # eval mode inside: no dropout, no view dropout
    # The mean fusion's weights: 1 / 3 in float32, as a float64 number in the frame.
    np.testing.assert_allclose(frame[[f"weight_{v}" for v in fish.views]], 1 / 3, rtol=0,
                               atol=float32_atol(1 / 3, terms=1))
    table = views_by_class(frame)
    assert table["top_weight"].isna().all() and table["agree"].isna().all()  # no view ranks first


def test_views_by_class_on_a_frame_made_by_hand():
    frame = pd.DataFrame({
        "label": [0, 0, 1], "deciding_view": ["back", "back", "side"],
        "energy": [0.2, 0.4, np.nan], "chance": [0.01, 0.03, 0.02],
        "weight_side": [0.2, 0.2, 0.5], "weight_back": [0.8, 0.6, 0.5],
        "heat_side": [0.1, 0.3, 0.7], "heat_back": [0.9, 0.7, 0.3],
        "alone_side": [0.5, 0.5, 0.9], "alone_back": [0.9, 0.7, np.nan],
        "drop_side": [0.0, 0.1, 0.2], "drop_back": [0.05, 0.0, 0.0]})
    frame.attrs.update(views=["side", "back"], classes=["Goby", "Perch"])
    table = views_by_class(frame)
    goby, perch = table.loc["Goby"], table.loc["Perch"]
    assert goby["weight"] == pytest.approx(0.7) and goby["top_weight"] == "back" and goby["top_heat"] == "back"
    assert goby["alone"] == pytest.approx(0.8) and bool(goby["agree"])
    assert goby["top_drop"] == "side" and goby["drop"] == pytest.approx(0.025)  # necessity can disagree
    assert goby["energy"] == pytest.approx(0.3) and goby["chance"] == pytest.approx(0.02)
    assert pd.isna(perch["top_weight"]) and pd.isna(perch["agree"])  # 0.5 / 0.5: a tie
    assert perch["alone"] == pytest.approx(0.9) and perch["top_alone"] == "side"  # NaN left out


def test_judge_views_says_what_it_needs(fish, tiny_synth):
    model = small_fusion()
    plain = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False).test
    with pytest.raises(ValueError, match=r"masks=\['evidence'\]"):
        judge_views(model, plain, [0], synthetic_deciding_views())
    with pytest.raises(ValueError, match="no deciding view for"):
        judge_views(model, fish, [0], {})
