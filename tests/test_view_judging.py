"""Judging a multi-view explanation: weight, heat and drop per view, energy on the deciding trait."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fishcam_utils.data import make_datasets
from fishcam_utils.evaluation.attention import synthetic_deciding_views
from fishcam_utils.explain import GradCAM
from fishcam_utils.explain.view_judging import judge_views, views_by_class
from fishcam_utils.models import MultiViewNet


@pytest.fixture(scope="module")
def fusion_and_fish(tiny_synth):
    torch.manual_seed(0)
    model = MultiViewNet(9, fusion="attention", width=4, blocks=(1, 1), weights=None).eval()
    fish = make_datasets(tiny_synth, multiview=True, image_size=32, masks=["evidence"], progress=False).test
    return model, fish


def test_judge_views_matches_a_computation_by_hand(fusion_and_fish):
    model, fish = fusion_and_fish
    deciding = synthetic_deciding_views()
    indices = [0, 3, 5, 8]
    frame = judge_views(model, fish, indices, deciding, layer="layer2")
    views = fish.views
    samples = [fish[i] for i in indices]
    x = torch.stack([s[0][0] for s in samples])
    present = torch.stack([s[0][1] for s in samples])
    labels = torch.tensor([s[1] for s in samples])
    with torch.no_grad():
        out = model(x, present)
    p = out.logits.softmax(1)[torch.arange(4), labels]
    raw = GradCAM(model, "layer2")((x, present), labels, normalize=None).maps  # (4, V, 32, 32), ReLU'd
    for row, (sample, label) in enumerate(zip(samples, labels.tolist())):
        d = views.index(deciding[fish.classes[label]])
        total = raw[row].sum()
        assert frame["deciding_view"].iloc[row] == views[d]
        assert frame["energy"].iloc[row] == pytest.approx(((raw[row, d] * sample[2]["evidence"][d]).sum() / total).item(), rel=1e-4)
        assert frame["chance"].iloc[row] == pytest.approx(sample[2]["evidence"][d].float().mean().item() / len(views))
        for v, name in enumerate(views):
            keep = present[row].clone()
            keep[v] = False
            with torch.no_grad():
                alone = model((x[row] * keep[:, None, None, None])[None], keep[None]).logits.softmax(1)[0, label]
            assert frame[f"drop_{name}"].iloc[row] == pytest.approx((p[row] - alone).item(), abs=1e-5)
            assert frame[f"weight_{name}"].iloc[row] == pytest.approx(out.weights[row, v].item(), abs=1e-6)
            assert frame[f"heat_{name}"].iloc[row] == pytest.approx((raw[row, v].sum() / total).item(), rel=1e-4)
    assert frame["fish_id"].tolist() == fish.fish["fish_id"].iloc[indices].tolist()


def test_views_by_class_names_each_measures_top_view(fusion_and_fish):
    model, fish = fusion_and_fish
    frame = judge_views(model, fish, range(len(fish)), synthetic_deciding_views())
    table = views_by_class(frame)
    assert sorted(table.index) == sorted(fish.classes[k] for k in set(frame["label"]))
    for name, row in table.iterrows():
        group = frame[frame["label"] == fish.classes.index(name)]
        for measure in ("weight", "heat", "drop"):
            means = group[[f"{measure}_{v}" for v in fish.views]].mean().to_numpy()
            assert row[f"top_{measure}"] == fish.views[int(np.argmax(means))]
            assert row[measure] == pytest.approx(means[fish.views.index(row["deciding_view"])])
        assert row["agree"] == all(row[f"top_{m}"] == row["deciding_view"] for m in ("weight", "heat", "drop"))


def test_judge_views_says_what_it_needs(fusion_and_fish, tiny_synth):
    model, fish = fusion_and_fish
    plain = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False).test
    with pytest.raises(ValueError, match=r"masks=\['evidence'\]"):
        judge_views(model, plain, [0], synthetic_deciding_views())
    with pytest.raises(ValueError, match="no deciding view for"):
        judge_views(model, fish, [0], {})
