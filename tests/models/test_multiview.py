"""Multi-view fusion: the fusions' maths, missing views, view dropout, the auxiliary loss,
training and reloading, starting from single-view experts, and CAMs of the fused logit."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from numerics import assert_float32_close, assert_within, float32_atol, network_terms

from fishcam_utils.cli import FUSION_CHOICES
from fishcam_utils.data import WithoutViews, make_datasets
from fishcam_utils.models import FUSIONS, MultiViewNet, build_model, make_fusion, rebuild_model
from fishcam_utils.training import fit, load_checkpoint

V, FEAT = 3, 5


def small_net(fusion="attention", **options) -> MultiViewNet:
    torch.manual_seed(0)
    return MultiViewNet(9, fusion=fusion, width=4, blocks=(1, 1), weights=None, **options)


def fish(n=4, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    views = torch.randn(n, V, 3, size, size, generator=g)
    present = torch.ones(n, V, dtype=torch.bool)
    present[1, 0] = False
    present[2, 1:] = False
    return views, present


def test_cli_offers_exactly_the_fusions():
    assert FUSION_CHOICES == list(FUSIONS)


# ---------------------------------------------------------------------------------------
# The fusions


def features_and_mask():
    torch.manual_seed(3)
    features = torch.randn(4, V, FEAT)
    present = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0], [1, 1, 0]], dtype=torch.bool)
    return features, present


@pytest.mark.numeric
def test_mean_fusion_is_the_average_of_the_present_views():
    features, present = features_and_mask()
    fused, weights = make_fusion("mean", V, FEAT)(features, present)
    for i in range(4):  # a weighted sum against a mean: V terms and a division, each its own way
        assert_float32_close(fused[i], features[i][present[i]].mean(0), terms=V + 1, scale=features[i].abs().max())
    assert torch.equal(weights, present.float() / present.sum(1, keepdim=True))  # the same division


@pytest.mark.numeric
def test_attention_is_a_softmax_over_the_present_views_of_the_mlp_scores():
    features, present = features_and_mask()
    fusion = make_fusion("attention", V, FEAT)
    fused, weights = fusion(features, present)
    zeroed = features * present[..., None]
    scores = fusion.score(zeroed.flatten(1))
    for i in range(4):
        expected = torch.zeros(V)
        expected[present[i]] = torch.softmax(scores[i][present[i]], 0)
        # Softmaxes over V scores (masked, or of the present ones): V + 2 roundings of weights up to 1.
        assert_float32_close(weights[i], expected, terms=V + 2, scale=1.0)
        # Then V weighted terms, whose weights carry that error too.
        assert_float32_close(fused[i], (expected[:, None] * features[i]).sum(0), terms=2 * V + 2,
                             scale=features[i].abs().max())
    assert_float32_close(weights.sum(1), torch.ones(4), terms=2 * V + 2, scale=1.0)
    assert (weights[~present] == 0).all()


@pytest.mark.numeric
def test_gates_are_each_views_own_sigmoid_renormalised():
    features, present = features_and_mask()
    fusion = make_fusion("gated", V, FEAT)
    _, weights = fusion(features, present)
    gates = torch.stack([torch.sigmoid(features[:, v] @ fusion.gates[v].weight[0] + fusion.gates[v].bias[0])
                         for v in range(V)], 1) * present
    # Each gate's logit sums FEAT + 1 terms its own way; a sigmoid passes on at most its logit's absolute
    # error as relative error, and renormalising doubles relative errors (numerator and sum), weights <= 1.
    logit_terms = max(float((features[:, v].abs() @ fusion.gates[v].weight[0].abs()
                             + fusion.gates[v].bias[0].abs()).detach().max())
                      for v in range(V))
    assert_float32_close(weights, gates / gates.sum(1, keepdim=True), terms=2 * (FEAT + 3) + V + 1,
                         scale=max(1.0, logit_terms))


@pytest.mark.numeric
def test_concat_puts_views_side_by_side_with_zeros_for_missing_ones():
    features, present = features_and_mask()
    fused, weights = make_fusion("concat", V, FEAT)(features, present)
    assert fused.shape == (4, V * FEAT)
    assert torch.equal(fused[1, :FEAT], torch.zeros(FEAT)) and torch.equal(fused[0, FEAT:2 * FEAT], features[0, 1])
    assert_float32_close(weights.sum(1), torch.ones(4), terms=V + 1, scale=1.0)  # 1 / present, summed


@pytest.mark.parametrize("name", FUSIONS)
def test_a_fish_without_any_view_is_refused(name):
    features, present = features_and_mask()
    present[2] = False
    with pytest.raises(ValueError, match="at least one present view"):
        make_fusion(name, V, FEAT)(features, present)


def test_unknown_fusion_names_the_choices():
    with pytest.raises(ValueError, match="attention, mean, concat, gated"):
        make_fusion("max", V, FEAT)


# ---------------------------------------------------------------------------------------
# The network


@pytest.mark.numeric
@pytest.mark.parametrize("name", FUSIONS)
def test_logits_decompose_into_the_views_own_logits(name):
    model = small_net(name).eval()
    views, present = fish()
    seen = {}
    model.head.register_forward_pre_hook(lambda module, args: seen.update(features=args[0].detach()))
    out = model(views, present)
    assert out.logits.shape == (4, 9) and out.view_logits.shape == (4, V, 9)
    bias = model.head.classifier.bias
    if name == "concat":
        # A linear layer over concatenated blocks is the sum of the blocks' parts (plus one bias).
        rebuilt = (out.view_logits * present[..., None]).sum(1) - (present.sum(1, keepdim=True) - 1) * bias
    else:
        rebuilt = (out.weights[..., None] * out.view_logits).sum(1)
    # The classifier over the fused vector against one per view then V weighted terms: sums of F and V terms
    # in another order, of the sizes sum_v w_v sum_f |W_kf n_vf| + |b_k| (n the layer-normed features).
    normed = model.head.norm(seen["features"]).detach()
    classifier = model.head.classifier
    weight = classifier.weight.detach().abs().reshape(9, *(normed.shape[1:] if name == "concat" else normed.shape[2:]))
    if name == "concat":
        sizes = torch.einsum("nvf,kvf->nk", normed.abs(), weight) + V * classifier.bias.detach().abs()
    else:
        sizes = (torch.einsum("nv,nvf,kf->nk", out.weights.detach(), normed.abs(), weight)
                 + classifier.bias.detach().abs())
    assert_float32_close(out.logits, rebuilt, terms=normed.shape[-1] + 2 * V + 2, scale=sizes)
    assert_float32_close(out.weights.sum(1), torch.ones(4), terms=2 * V + 2, scale=1.0)  # softmax, gates or 1 / present
    assert (out.weights[~present] == 0).all()


@pytest.mark.parametrize("shared", [False, True])
def test_a_missing_views_pixels_change_nothing(shared):
    model = small_net(shared=shared).eval()
    views, present = fish()
    other = views.clone()
    other[~present] = torch.randn_like(other[~present]) * 5
    a, b = model(views, present), model(other, present)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.weights, b.weights)


def test_view_dropout_drops_views_in_training_only_and_keeps_one_per_fish():
    model = small_net(view_dropout=0.5)
    views = torch.zeros(400, V, 3, 16, 16)
    torch.manual_seed(0)
    kept = model.train()(views).present
    assert kept.any(1).all()
    # Each view is kept with probability 0.5, and fish left with none get one back: 0.5 + 0.5**3 / 3.
    assert abs(kept.float().mean().item() - (0.5 + 0.125 / 3)) < 0.05
    assert model.eval()(views).present.all()


@pytest.mark.numeric
def test_auxiliary_loss_is_the_weighted_loss_of_every_present_views_logits():
    model = small_net(aux_weight=0.7).train()
    views, present = fish()
    labels = torch.tensor([0, 3, 5, 8])
    out = model(views, present)
    rows = [(i, v) for i in range(4) for v in range(V) if present[i, v]]
    expected = 0.7 * torch.stack([F.cross_entropy(out.view_logits[i, v][None], labels[i][None])
                                  for i, v in rows]).mean()
    # One cross-entropy over the rows against a mean of one per row: log-sum-exps of 9 logits, then a mean
    # of the rows, each its own way; a row's terms are as large as its largest logit and log 9.
    sizes = 0.7 * (out.view_logits.detach().abs().max() + math.log(9))
    assert_float32_close(model.auxiliary_loss(out, labels, torch.nn.CrossEntropyLoss()), expected,
                         terms=9 + len(rows) + 2, scale=sizes)


@pytest.mark.numeric
def test_entropy_penalty_adds_the_mean_entropy_of_learned_weights_only():
    views, present = fish()
    labels = torch.tensor([0, 3, 5, 8])
    criterion = torch.nn.CrossEntropyLoss()
    for fusion in ("attention", "mean"):
        plain = small_net(fusion, aux_weight=0.7).train()
        torch.manual_seed(1)
        out = plain(views, present)
        base = plain.auxiliary_loss(out, labels, criterion)
        plain.entropy_weight = 0.2
        w = out.weights
        entropy = -(w * w.clamp_min(1e-12).log()).sum(1).mean()
        expected = base + (0.2 * entropy if fusion == "attention" else 0)
        # The entropy's V terms per fish and its mean over the fish, each its own way, beside the same loss.
        sizes = base.detach().abs() + 0.2 * (w * w.clamp_min(1e-12).log()).detach().abs().sum(1).max()
        assert_float32_close(plain.auxiliary_loss(out, labels, criterion), expected, terms=V + len(w) + 2, scale=sizes)


@pytest.mark.numeric
def test_a_branch_cannot_win_the_vote_by_scaling_its_features():
    """With the shared layer norm, multiplying one view's features by 50 changes nothing; without
    it, that view's share of the logits grows although its weight is the same."""
    torch.manual_seed(0)
    features, present = torch.randn(4, V, 8), torch.ones(4, V, dtype=torch.bool)
    louder = features.clone()
    louder[:, 0] *= 50
    from fishcam_utils.models import FusionHead

    normed = FusionHead("mean", V, 8, 9).eval()
    # Up to LayerNorm's epsilon: it divides by sqrt(var + eps), so view 0's normed features move by eps / (2 var)
    # of themselves; and rounding: the x50, the norm's mean and variance of 8 (of terms |f| + |mean|, over the
    # std), the mean of V views, the classifier's 8 terms.
    n = normed.norm(features).detach()
    sizes = (features.abs() + features.mean(-1, keepdim=True).abs()) / features.std(-1, unbiased=False, keepdim=True)
    weight, bias = normed.classifier.weight.detach().abs(), normed.classifier.bias.detach().abs()
    moved = n[:, 0].abs() * (normed.norm.eps / (2 * features[:, 0].var(-1, unbiased=False)))[:, None] / V
    tolerance = moved @ weight.T + float32_atol(torch.maximum(sizes, n.abs()).mean(1) @ weight.T + bias,
                                                terms=2 * 8 + 3 + 1 + V + 8 + 1)
    assert_within(normed(features, present).logits, normed(louder, present).logits, tolerance, "50 times louder")
    raw = FusionHead("mean", V, 8, 9, view_norm=False).eval()
    a, b = raw(features, present), raw(louder, present)
    assert torch.equal(a.weights, b.weights) and not torch.allclose(a.logits, b.logits, atol=1e-2)


def test_bad_inputs_get_clear_errors():
    model = small_net()
    with pytest.raises(ValueError, match=r"\(batch, 3, 3, H, W\)"):
        model(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="fusion"):
        MultiViewNet(9, fusion="sum", weights=None)
    with pytest.raises(ValueError, match="backbone"):
        MultiViewNet(9, backbone="vgg", weights=None)
    with pytest.raises(ValueError, match="no branch layer 'layer9'; sensible ones: stem, layer1, layer2"):
        from fishcam_utils.explain import GradCAM

        GradCAM(model, "layer9")
    assert model.cam_target("layer1.0.conv2") == [f"branches.{v}.layer1.0.conv2" for v in ("side", "back", "belly")]


def test_branches_start_from_single_view_experts():
    model = small_net()
    torch.manual_seed(5)
    expert = build_model("fishresnet", 9, weights=None, width=4, blocks=(1, 1), verbose=False)
    model.init_branches({"back": expert})
    for name, tensor in expert.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(model.branches["back"].state_dict()[name], tensor), name
    assert not torch.equal(model.branches["side"].stem[0][0].weight, expert.stem[0][0].weight)
    with pytest.raises(ValueError, match="no branch for view"):
        model.init_branches({"top": expert})
    with pytest.raises(ValueError, match="resnet18"):
        model.init_branches({"side": build_model("resnet18", 9, weights=None, verbose=False)})


# ---------------------------------------------------------------------------------------
# Data, training and reloading


def test_without_views_blanks_the_removed_views(tiny_synth):
    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    (images, present), label = WithoutViews(splits.test, ["side"])[0]
    (full, _), same_label = splits.test[0]
    assert present.tolist() == [False, True, True] and label == same_label
    assert images[0].abs().sum() == 0 and torch.equal(images[1:], full[1:])
    assert WithoutViews(splits.test, "back").raw(0)["back"] is None
    with pytest.raises(ValueError, match="views are"):
        WithoutViews(splits.test, ["top"])


def test_fit_trains_saves_and_resumes_a_multiview_model(tiny_synth, tmp_path):
    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    options = dict(epochs=2, batch_size=8, lr=3e-3, progress=False, deterministic=True)
    straight = fit(small_net(view_dropout=0.3), splits.train, splits.val, run_dir=tmp_path / "straight", **options)

    def stop_after_first(row):
        if row["epoch"] == 1:
            raise KeyboardInterrupt

    broken = fit(small_net(view_dropout=0.3), splits.train, splits.val, run_dir=tmp_path / "broken",
                 callback=stop_after_first, **options)
    assert broken.interrupted
    resumed = fit(small_net(view_dropout=0.3), splits.train, splits.val, run_dir=tmp_path / "broken", resume=True,
                  **options)
    a = torch.load(straight.last_path, weights_only=True)["model_state"]
    b = torch.load(resumed.last_path, weights_only=True)["model_state"]
    assert all(torch.equal(a[k], b[k]) for k in a)

    model, checkpoint = load_checkpoint(straight.best_path)
    assert isinstance(model, MultiViewNet) and model.fusion == "attention" and model.view_dropout == 0.3
    assert checkpoint["preprocessing"]["views"] == ["side", "back", "belly"]
    (views, present), _ = splits.test[0]
    again = rebuild_model(checkpoint["model_config"])
    again.load_state_dict(checkpoint["model_state"])
    assert torch.equal(model(views[None], present[None]).logits, again.eval()(views[None], present[None]).logits)


# ---------------------------------------------------------------------------------------
# Explaining the fused logit


def gradcam_by_hand(model: MultiViewNet, views, present, target: int, layer: str = "layer2"):
    """Grad-CAM of the fused logit at ``layer`` of every branch, computed without hooks: run each
    branch up to the layer, differentiate the fused score with respect to those activations."""
    model.eval()
    acts, feats = [], []
    for v, view in enumerate(model.views):
        branch = model.branch(view)
        x = views[:, v] * present[:, v, None, None, None]
        a = branch.layer2(branch.layer1(branch.stem(x)))
        a = a.detach().requires_grad_(True)
        acts.append(a)
        feats.append(branch.fc(branch.dropout(branch.flatten(branch.pool(a)))))
    logits = model.head(torch.stack(feats, 1), present).logits
    grads = torch.autograd.grad(logits[:, target].sum(), acts)
    maps = torch.stack([(g.mean((2, 3), keepdim=True) * a).sum(1) for a, g in zip(acts, grads)], 1).detach()
    # sum_c |alpha_c| |A_c| at each view's largest: the sizes of the terms each map sums, (N, V, 1, 1).
    sizes = torch.stack([(g.abs().mean((2, 3), keepdim=True) * a.abs()).sum(1).flatten(1).amax(1)
                         for a, g in zip(acts, grads)], 1)
    return maps, sizes.detach()[..., None, None]


@pytest.mark.numeric
@pytest.mark.parametrize("fusion", ["attention", "concat"])
def test_every_views_map_of_the_fused_logit_from_one_call(fusion):
    from fishcam_utils.explain import GradCAM

    model = small_net(fusion).eval()
    views, present = fish()
    result = GradCAM(model, "layer2")((views, present), targets=4, normalize=None)
    expected, sizes = gradcam_by_hand(model, views, present, 4)
    assert result.raw.shape == (4, V, 4, 4)
    # float32: the branches and the head by hand against the model's forward, then h w pixels and C channels.
    channels = max(m.out_channels for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert_float32_close(result.raw, expected, terms=network_terms(model) + expected[0, 0].numel() + channels,
                         scale=sizes, what="every view's map against the computation by hand")
    # A missing view takes no part in the score, so its map is empty; the weights are those of the forward.
    assert (result.raw[~present] == 0).all()
    assert torch.equal(result.view_weights, model(views, present).weights)


def test_explain_fish_and_the_row_figure(tiny_synth):
    import matplotlib.pyplot as plt

    from fishcam_utils.explain import explain_fish, plot_fish_cams

    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    model = small_net("gated").eval()
    data = WithoutViews(splits.test, ["belly"])
    e = explain_fish(model, data, [0, 1, 2], layer="layer1", targets=[1, 2, 3])
    assert e.maps.shape == (3, V, 32, 32) and e.images.shape == (3, V, 32, 32, 3)
    assert e.explained.tolist() == [1, 2, 3] and e.ids == splits.test.fish["fish_id"].iloc[:3].tolist()
    assert (e.maps[:, 2] == 0).all() and not e.present[:, 2].any() and (e.weights[:, 2] == 0).all()
    assert e.maps.max() <= 1 and e.maps[:, :2].max() == pytest.approx(1.0)
    fig = plot_fish_cams(e)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0] == f"side: weight {e.weights[0, 0]:.2f}" and titles[2] == "belly: no view"
    plt.close(fig)
    with pytest.raises(ValueError, match="multi-view"):
        explain_fish(model, make_datasets(tiny_synth, image_size=32, progress=False).test, [0])


# ---------------------------------------------------------------------------------------
# The command line: train, evaluate (with the attention files) and gradcam


def test_cli_trains_a_fusion_model_and_writes_its_attention(tiny_synth, tmp_path, capsys):
    import pandas as pd

    from fishcam_utils.cli import main

    run = tmp_path / "run"
    assert main(["train", "--data", str(tiny_synth), "--fusion", "gated", "--model", "fishresnet", "--width", "4",
                 "--image-size", "32", "--batch-size", "8", "--epochs", "1", "--no-progress",
                 "--run-dir", str(run)]) == 0
    assert "gated fusion of a fishresnet per view" in capsys.readouterr().out
    report = run / "eval-test"
    per_fish = pd.read_csv(report / "attention.csv")
    predictions = pd.read_csv(report / "predictions.csv")
    weights = per_fish[["w_side", "w_back", "w_belly"]].to_numpy()
    # Renormalised float32 weights (V terms, a division), each written as the shortest float32 repr.
    assert len(per_fish) == len(predictions) and abs(weights.sum(1) - 1).max() <= float32_atol(1.0, terms=3 * V + 2)
    sheets = pd.read_excel(report / "attention.xlsx", sheet_name=None)
    assert set(sheets) == {"per fish", "per class", "deciding view"}
    by_class = sheets["per class"].set_index("class")
    for name, group in per_fish.groupby("true_name"):
        assert by_class.loc[name, "side"] == pytest.approx(group["w_side"].mean(), abs=1e-6)
    assert (report / "attention_boxplot.png").stat().st_size > 1000 and (report / "attention_by_class.png").is_file()

    out = tmp_path / "cams"
    assert main(["gradcam", "--checkpoint", str(run / "best.pt"), "--out", str(out), "--layer", "layer2",
                 "--limit", "3"]) == 0
    summary = pd.read_csv(out / "summary.csv")
    assert (len(summary) == 3 * V
            and set(summary["layer"]) == {"branches.side.layer2, branches.back.layer2, branches.belly.layer2"})


# ---------------------------------------------------------------------------------------
# Reading the attention


def made_up_predictions():
    import numpy as np

    from fishcam_utils.data import class_names
    from fishcam_utils.evaluation import Predictions

    classes = class_names()
    targets = np.repeat(np.arange(9), 2)
    # Each fish puts 0.6 on a chosen view: the deciding one for the first six classes, else "side".
    deciding = {"side": 0, "back": 1, "belly": 2}
    from fishcam_utils.data import SPECIES

    weights = np.full((18, 3), 0.2, np.float32)
    for i, k in enumerate(targets):
        weights[i, deciding[SPECIES[k].deciding_view] if k < 6 else 0] = 0.6
    probs = np.eye(9, dtype=np.float32)[targets]
    return Predictions(probs, targets, classes, view_weights=weights, views=["side", "back", "belly"])


def test_deciding_view_report_knows_the_answer():
    import numpy as np

    from fishcam_utils.evaluation import deciding_view_report

    report = deciding_view_report(made_up_predictions())
    # Classes 0-5 put most weight on their deciding view; 6-8 decide by the belly but favour the side.
    assert report["match"].tolist() == [True] * 6 + [False] * 3
    assert report["top_view"].iloc[7] == "side" and report["deciding_view"].iloc[7] == "belly"
    assert report.loc[report.index[3], "back"] == pytest.approx(0.6)
    unknown = deciding_view_report(made_up_predictions(), deciding={"Zebra Darter": "back"})
    assert unknown["match"].iloc[0] is False or unknown["match"].iloc[0] is np.False_
    assert unknown["match"].iloc[1:].isna().all()
    # A fusion with fixed, equal weights has no top view, so nothing to match.
    predictions = made_up_predictions()
    predictions.view_weights[:] = 1 / 3
    tied = deciding_view_report(predictions)
    assert tied["top_view"].isna().all() and tied["match"].isna().all()


def test_predict_keeps_the_view_weights(tiny_synth):
    from fishcam_utils.evaluation import predict

    splits = make_datasets(tiny_synth, multiview=True, image_size=32, progress=False)
    model = small_net("attention").eval()
    predictions = predict(model, WithoutViews(splits.test, ["back"]), batch_size=5, progress=False)
    views, present = torch.stack([s[0][0] for s in splits.test]), torch.stack([s[0][1] for s in splits.test])
    present[:, 1] = False
    # In the batches of 5 predict runs: the same kernels, so the same numbers (one batch of all would round otherwise).
    expected = torch.cat([model(views[i:i + 5], present[i:i + 5]).weights for i in range(0, len(views), 5)]).detach()
    assert predictions.views == ["side", "back", "belly"]
    assert torch.equal(torch.from_numpy(predictions.view_weights), expected)
    assert (predictions.frame()["w_back"] == 0).all()


def test_attention_plots_and_a_clear_error_without_weights():
    import matplotlib.pyplot as plt
    import numpy as np

    from fishcam_utils.evaluation import Predictions, plot_class_view_weights, plot_view_weights

    predictions = made_up_predictions()
    fig = plot_view_weights(predictions)
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["side", "back", "belly"]
    plt.close(fig)
    fig = plot_class_view_weights(predictions)
    bars = fig.axes[0].patches
    assert len(bars) == 27 and sum(b.get_linewidth() > 0 and b.get_edgecolor()[3] > 0 for b in bars) == 9
    plt.close(fig)
    with pytest.raises(ValueError, match="multi-view model"):
        plot_view_weights(Predictions(np.eye(2, dtype=np.float32), np.arange(2), ["a", "b"]))


def test_course_fusion_model_starts_from_the_course_single_view_models(tiny_synth, monkeypatch):
    """``course_model("fusion-...")`` trains the missing single-view experts first, then a fusion
    model whose branches start from them (one head-only epoch leaves the branches exactly so)."""
    import fishcam_utils.data.synthetic as synthetic
    from fishcam_utils.course import recipes

    monkeypatch.setattr(synthetic, "ensure_synthetic", lambda quick, progress=True, shortcut=(), size=None: tiny_synth)
    small = {"width": 4, "blocks": [1, 1]}
    for view in ("side", "back", "belly"):
        monkeypatch.setitem(recipes.RECIPES, f"fishresnet-{view}", recipes.Recipe(
            "fishresnet", small, {"epochs": 1, "batch_size": 8}, view=view))
    monkeypatch.setitem(recipes.RECIPES, "fusion-attention", recipes.Recipe(
        "multiview", {"fusion": "attention", **small}, {"epochs": 1, "batch_size": 8, "freeze_epochs": 1},
        experts={view: f"fishresnet-{view}" for view in ("side", "back", "belly")}))
    model, checkpoint = recipes.course_model("fusion-attention", quick=True, progress=False)
    assert isinstance(model, MultiViewNet) and checkpoint["preprocessing"]["views"] == ["side", "back", "belly"]
    for view in ("side", "back", "belly"):
        expert, _ = recipes.course_model(f"fishresnet-{view}", quick=True, train=False)
        branch = model.branches[view].state_dict()
        assert all(torch.equal(branch[k], v) for k, v in expert.state_dict().items() if not k.startswith("fc."))


def test_course_models_train_with_their_quick_or_full_augmentation(tiny_synth, monkeypatch):
    """Quick mode may train a recipe without augmentation (``quick_augment``); full mode keeps it."""
    import fishcam_utils.data.synthetic as synthetic
    import fishcam_utils.data.train_val_test as setup
    from fishcam_utils.course import recipes

    monkeypatch.setattr(synthetic, "ensure_synthetic", lambda quick, progress=True, shortcut=(), size=None: tiny_synth)
    made = []
    monkeypatch.setattr(setup, "make_datasets", lambda *a, **k: made.append(make_datasets(*a, **k)) or made[-1])
    monkeypatch.setitem(recipes.RECIPES, "fishresnet-side", recipes.Recipe(
        "fishresnet", {"width": 4, "blocks": [1, 1]}, {"epochs": 1, "batch_size": 8}, augment=1.0, quick_augment=0.0))
    for quick in (True, False):
        recipes.course_model("fishresnet-side", quick=quick, progress=False)
    torch.manual_seed(0)
    quick_train, full_train = made[0].train, made[1].train
    # Without augmentation a training photo is the same tensor each time it is read; with it, not.
    assert torch.equal(quick_train[0][0], quick_train[0][0])
    assert not torch.equal(full_train[0][0], full_train[0][0])
    assert recipes.recipe_augment(recipes.RECIPES["fishresnet-side"], quick=False) == 1.0


def test_a_fish_missing_a_view_is_refused_by_default_and_kept_on_request_with_the_view_marked_missing(synth_copy):
    photo = next((synth_copy / "test").rglob("*_back.png"))
    photo.unlink()
    with pytest.raises(Exception, match="missing_views='keep'"):  # as check_dataset refuses it
        make_datasets(synth_copy, multiview=True, image_size=32, progress=False)
    with pytest.warns(Warning, match="missing"):
        splits = make_datasets(synth_copy, multiview=True, image_size=32, progress=False, missing_views="keep")
    fish_id = photo.name.rsplit("_", 1)[0]
    i = splits.test.fish["fish_id"].tolist().index(fish_id)
    (images, present), _ = splits.test[i]
    assert present.tolist() == [True, False, True] and images[1].abs().sum() == 0
    assert splits.test.raw(i)["back"] is None
    with pytest.raises(Exception, match="missing_views"):
        make_datasets(synth_copy, multiview=True, image_size=32, progress=False, missing_views="error")


def test_fusion_head_trains_on_features_computed_once_and_keeps_its_lowest_loss_epoch(tiny_synth):
    from fishcam_utils.training.fusion_head import fit_fusion_head, view_features

    splits = make_datasets(tiny_synth, multiview=True, image_size=32, augment=0.0, progress=False)
    model = small_net(view_dropout=0.3)
    branches = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("head.")}
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    history = fit_fusion_head(model, splits.train, splits.val, epochs=5, lr=1e-2, progress=False)
    assert list(history["epoch"]) == [1, 2, 3, 4, 5] and set(history["stage"]) == {"head"}
    after = model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in branches.items())  # the branches are left as they are
    assert any(not torch.equal(model.head.state_dict()[k], v) for k, v in head_before.items())
    # The kept head is the epoch of lowest validation loss: its accuracy, recomputed through the whole model.
    model.eval()
    correct = 0
    for i in range(len(splits.val)):
        (views, present), label = splits.val[i]
        with torch.no_grad():
            correct += int(model(views[None], present[None]).logits.argmax(1).item() == label)
    assert correct / len(splits.val) == pytest.approx(history.loc[history["val_loss"].idxmin(), "val_acc"])
    # The cached features are the branches' own: one fish's side view through its branch by hand.
    features, present, labels = view_features(model, splits.val, batch_size=1)  # one fish a batch, as by hand
    (views, seen), label = splits.val[0]
    with torch.no_grad():
        by_hand = model.branches["side"](views[None, 0])
    assert torch.equal(features[0, 0], by_hand[0]) and labels[0] == label and present[0].all()
