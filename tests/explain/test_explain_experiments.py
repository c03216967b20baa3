"""Notebook 08's experiments and ``fishcam evaluate-cam``, on tiny models and data, each number
checked against the metric computed directly."""

from __future__ import annotations

import copy
import dataclasses

import pandas as pd
import pytest
import torch
from helpers import activations_and_gradients
from numerics import assert_within, channel_sum_scale, float32_atol, float64, float64_atol, map_atol, network_terms

from fishcam_utils.cli import main
from fishcam_utils.course import kaggle_pointing
from fishcam_utils.data import make_datasets
from fishcam_utils.data.synthetic import SyntheticConfig, generate_dataset
from fishcam_utils.explain import GuidedBackprop, guided_gradcam, make_cam, saliency
from fishcam_utils.explain.judging import (
    average_drop,
    complexity,
    confidence_change,
    every_measure,
    increase_in_confidence,
    map_maker,
    random_logit,
    road_changes,
    sparseness,
)
from fishcam_utils.explain.judging.experiments import (
    explanation_maps,
    load_evidence,
    map_scores,
    methods_by_layers,
    randomized_copies,
    sanity_check,
    shortcut_energy,
)
from fishcam_utils.explain.judging.metrics import deletion_curve, energy_in_mask, pointing_game, spearman
from fishcam_utils.explain.judging.references import edge_maps
from fishcam_utils.models import build_model
from fishcam_utils.training import fit, load_checkpoint

SIZE = 32


@pytest.fixture(scope="module")
def splits(tiny_synth):
    return make_datasets(tiny_synth, image_size=SIZE, cache=False, augment=0, masks=["evidence", "body"],
                         progress=False)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("fishresnet", 9, width=4, blocks=(1, 1), weights=None, verbose=False).eval()


def test_load_evidence_takes_each_class_in_turn(splits, tiny_synth):
    batch = load_evidence(splits.train, per_class=1)
    assert batch.labels.tolist() == list(range(9)) and len(batch) == 9
    assert batch.masks["evidence"].shape == (9, SIZE, SIZE) and batch.masks["evidence"].dtype == torch.bool
    whole = load_evidence(splits.train)
    assert len(whole) == len(splits.train) and whole.labels[:9].tolist() == list(range(9))
    x, y, masks = splits.train[whole.indices[4]]
    assert torch.equal(whole.images[4], x) and torch.equal(whole.masks["body"][4], masks["body"])
    assert whole.head(3).labels.tolist() == [0, 1, 2]
    without_masks = make_datasets(tiny_synth, image_size=SIZE, cache=False, progress=False)
    with pytest.raises(ValueError, match="no masks"):
        load_evidence(without_masks.test)


class _SomeTraitsHidden(torch.utils.data.Dataset):
    """A dataset whose evidence masks are emptied at the positions ``hidden``, as when weed covers a whole trait."""

    def __init__(self, dataset, hidden):
        self.dataset, self.hidden = dataset, set(hidden)
        self.targets, self.classes = dataset.targets, dataset.classes

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y, masks = self.dataset[i]
        return x, y, {**masks, "evidence": masks["evidence"] & (i not in self.hidden)}


def test_load_evidence_can_leave_out_the_images_with_nothing_to_point_at(splits):
    first_of_class = {int(t): i for i, t in reversed(list(enumerate(splits.train.targets)))}
    hidden = [first_of_class[0], first_of_class[4]]
    dataset = _SomeTraitsHidden(splits.train, hidden)
    batch = load_evidence(dataset, per_class=2, require="evidence")
    assert not set(hidden) & set(batch.indices) and batch.masks["evidence"].flatten(1).any(1).all()
    members = [sum(int(t) == k for t in splits.train.targets) for k in range(9)]
    left = [m - sum(int(splits.train.targets[i]) == k for i in hidden) for k, m in enumerate(members)]
    assert [batch.labels.tolist().count(k) for k in range(9)] == [min(2, n) for n in left]  # the next ones taken
    everything = load_evidence(dataset, per_class=2)
    assert set(hidden) <= set(everything.indices)
    with pytest.raises(ValueError, match="require='trait'.*no such mask"):
        load_evidence(dataset, per_class=1, require="trait")


@pytest.mark.numeric
def test_explanation_maps_are_the_methods_maps(model, splits):
    batch = load_evidence(splits.test)
    x, t = batch.images, batch.labels
    # Batches of 4 against one batch take other kernels: in float64, but explanation_maps returns float32.
    model64, x64 = float64(model), x.double()
    ours = make_cam("hirescam", model64, "layer1")(x64, t)
    a, g, _ = activations_and_gradients(copy.deepcopy(model64), "layer1", x64, t)
    raw_atol = float64_atol(channel_sum_scale(g, a), terms=network_terms(model64) + a.shape[1])
    assert_within(explanation_maps(model64, x64, t, "hirescam", "layer1", batch_size=4), ours.maps,
                  float32_atol(1.0, terms=1) + map_atol(raw_atol, ours.raw, torch.float64), "batches of 4")
    # One batch: the same calls, the same numbers.
    guided = GuidedBackprop(model)(x, t).gradients
    expected = saliency(guided_gradcam(guided, make_cam("gradcam", model, "layer2")(x, t, normalize=None).maps))
    torch.testing.assert_close(explanation_maps(model, x, t, "guided-gradcam", "layer2"), expected, rtol=0, atol=0)
    plain = saliency(GuidedBackprop(model, "backprop")(x, t).gradients)
    torch.testing.assert_close(explanation_maps(model, x, t, "gradient"), plain, rtol=0, atol=0)


def test_the_methods_by_layers_table_holds_the_metrics_of_each_pair(model, splits):
    batch = load_evidence(splits.test)
    table = methods_by_layers(model, batch, ["layer1", "layer2"], ["gradcam", "layercam"], tolerance=3,
                              curve_images=5, steps=4, progress=False)
    assert list(zip(table["method"], table["layer"])) == [("gradcam", "layer1"), ("gradcam", "layer2"),
                                                           ("layercam", "layer1"), ("layercam", "layer2"),
                                                           ("random", "-"), ("edges", "-")]
    edges = table.iloc[5]  # a reference map: the image's Sobel edges, whatever the model
    assert edges["energy"] == pytest.approx(
        energy_in_mask(edge_maps(batch.images), batch.masks["evidence"]).mean().item(), abs=1e-6)
    row = table.iloc[3]
    maps = make_cam("layercam", model, "layer2")(batch.images, batch.labels).maps
    evidence = batch.masks["evidence"]
    assert row["pointing"] == pytest.approx(pointing_game(maps, evidence).float().mean().item())
    assert row["pointing_tol"] == pytest.approx(pointing_game(maps, evidence, 3).float().mean().item())
    assert row["pointing_tol"] >= row["pointing"]
    assert row["energy"] == pytest.approx(energy_in_mask(maps, evidence).mean().item(), abs=1e-6)
    curve = deletion_curve(model, batch.images[:5], maps[:5], batch.labels[:5], steps=4)
    assert row["deletion_auc"] == pytest.approx(curve.auc.mean().item(), abs=1e-6)
    assert table.attrs["curve_images"] == 5 and table.attrs["tolerance"] == 3
    # The measures papers report, on the whole batch: the same forward passes computed here.
    change = confidence_change(model, batch.images, maps, batch.labels)
    assert row["average_drop"] == average_drop(change)
    assert row["increase_in_confidence"] == increase_in_confidence(change)
    assert row["sparseness"] == sparseness(maps).mean().item() and row["complexity"] == complexity(maps).mean().item()


def test_every_measure_adds_road_and_the_random_logit_and_reuses_a_known_tables_rows(model, splits):
    batch = load_evidence(splits.test)
    makers = {"gradcam": map_maker(model, "gradcam", "layer2"),
              "ones": lambda images, classes: torch.ones(images.shape[0], *images.shape[2:])}
    table = every_measure(model, batch, makers, 9, tolerance=3, curve_images=4, steps=3, road_fractions=(0.3, 0.6),
                          progress=False)
    assert list(table.index) == ["gradcam", "ones"]
    maps = explanation_maps(model, batch.images, batch.labels, "gradcam", "layer2")
    expected = map_scores(model, batch, maps, tolerance=3, curve_images=4, steps=3)
    assert {k: table.loc["gradcam", k] for k in expected} == expected  # the same computation
    most = road_changes(model, batch.images[:4], maps[:4], batch.labels[:4], (0.3, 0.6), "most")
    assert table.loc["gradcam", "road_most"] == most.change.mean().item()  # the same maps, the same passes
    logit = random_logit(makers["gradcam"], batch.images[:4], batch.labels[:4], 9, seed=0, maps=maps[:4])
    assert table.loc["gradcam", "random_logit"] == logit.mean().item()
    ones = table.loc["ones"]  # keeps the image: nothing dropped; a flat map points nowhere, the same for any class
    assert ones["average_drop"] == 0 and ones["pointing_tol"] == 0 and ones["random_logit"] == 1
    # A known row keeps its scores; only ROAD and the random logit are measured again.
    known = pd.DataFrame({"pointing": [0.5], "energy": [0.25]}, index=["gradcam"])
    again = every_measure(model, batch, {"gradcam": makers["gradcam"]}, 9, curve_images=4, steps=3,
                          road_fractions=(0.3, 0.6), known=known, progress=False)
    assert again.loc["gradcam", "pointing"] == 0.5 and again.loc["gradcam", "energy"] == 0.25
    assert "deletion_auc" not in again
    # A known row's maps are made again for the first 4 images alone, in a batch of 4: ROAD on exactly those maps.
    first = makers["gradcam"](batch.images[:4], batch.labels[:4])
    again_most = road_changes(model, batch.images[:4], first, batch.labels[:4], (0.3, 0.6), "most")
    assert again.loc["gradcam", "road_most"] == again_most.change.mean().item()


def test_the_table_measures_the_heat_on_distractors_where_the_batch_has_their_masks(model, splits):
    batch = load_evidence(splits.test)
    plain = methods_by_layers(model, batch, ["layer2"], ["gradcam"], curve_images=2, steps=2, progress=False)
    assert not [c for c in plain.columns if c.startswith("energy_")]
    elsewhere = torch.zeros_like(batch.masks["evidence"])
    elsewhere[:, :8, :] = True  # a band along the top: any mask the batch holds
    busy = dataclasses.replace(batch, masks={**batch.masks, "distractor": elsewhere})
    table = methods_by_layers(model, busy, ["layer2"], ["gradcam"], curve_images=2, steps=2, progress=False)
    maps = make_cam("gradcam", model, "layer2")(batch.images, batch.labels).maps
    assert table.iloc[0]["energy_distractor"] == pytest.approx(energy_in_mask(maps, elsewhere).mean().item(), abs=1e-6)
    assert table.iloc[-1]["energy_distractor"] == pytest.approx(  # the edge map, a reference: measured alike
        energy_in_mask(edge_maps(batch.images), elsewhere).mean().item(), abs=1e-6)


def test_randomised_copies_change_only_their_stages_and_never_the_model(model):
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    for k, stage, randomized_model in randomized_copies(model, ["fc", "layer2"], seed=1):
        changed = {name.split(".")[0] for name, value in randomized_model.state_dict().items()
                   if value.dtype.is_floating_point and not torch.equal(value, before[name])}
        seen.append((k, stage, changed))
    assert [(k, stage) for k, stage, _ in seen] == [(1, "fc"), (2, "layer2")]
    assert seen[0][2] == {"fc"} and seen[1][2] == {"fc", "layer2"}  # cumulative, top down
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="no stage named 'layer7'"):
        list(randomized_copies(model, ["layer7"]))


def test_the_sanity_check_correlates_trained_and_randomised_maps(model, splits):
    batch = load_evidence(splits.test)
    frame = sanity_check(model, batch.images, batch.labels, ["fc", "layer2"], "layer2",
                         methods=["gradcam", "gradient"], seed=1, progress=False)
    assert len(frame) == 2 * 3 and set(frame.loc[frame["randomized"] == 0, "spearman"]) == {1.0}
    copies = list(randomized_copies(model, ["fc", "layer2"], seed=1))  # the same seed: the same weights
    trained = make_cam("gradcam", model, "layer2")(batch.images, batch.labels).maps
    _, _, second = copies[-1]
    randomized = make_cam("gradcam", second, "layer2")(batch.images, batch.labels).maps
    row = frame[(frame["method"] == "gradcam") & (frame["randomized"] == 2)].iloc[0]
    assert row["stage"] == "layer2"
    assert row["spearman"] == pytest.approx(spearman(trained, randomized).nanmean().item(), abs=1e-6)


def test_shortcut_energy_measures_marker_and_trait(model, tmp_path):
    root = generate_dataset(tmp_path / "marked", SyntheticConfig(size=SIZE, fish_per_class=4, shortcut=True,
                                                               shortcut_splits=("train",)), progress=False, workers=1)
    marked = make_datasets(root, image_size=SIZE, cache=False, augment=0, masks=["evidence", "marker"], progress=False)
    batch = load_evidence(marked.train)
    assert batch.masks["marker"].flatten(1).any(1).all()  # every training photo carries the sticker
    frame = shortcut_energy(model, batch, "layer1")
    maps = make_cam("gradcam", model, "layer1")(batch.images, batch.labels).maps
    assert frame["marker"].tolist() == pytest.approx(energy_in_mask(maps, batch.masks["marker"]).tolist(), abs=1e-6)
    assert frame["evidence"].tolist() == pytest.approx(energy_in_mask(maps, batch.masks["evidence"]).tolist(), abs=1e-6)
    with pytest.raises(ValueError, match="no image of this batch carries a marker"):
        shortcut_energy(model, load_evidence(marked.test), "layer1")


def test_evaluate_cam_writes_the_table_as_csv(tiny_synth, tmp_path, capsys):
    train = make_datasets(tiny_synth, image_size=SIZE, cache=False, progress=False)
    torch.manual_seed(0)
    net = build_model("fishresnet", 9, width=4, blocks=(1, 1), weights=None, verbose=False)
    run = fit(net, train.train, train.val, epochs=1, batch_size=8, progress=False, run_dir=tmp_path / "run")
    out = tmp_path / "table" / "cams.csv"
    assert main(["evaluate-cam", "--checkpoint", str(run.best_path), "--out", str(out), "--methods", "gradcam",
                 "hirescam", "--layers", "layer1", "layer2", "--steps", "4", "--curve-images", "9",
                 "--no-progress"]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:7]) == ["method", "layer", "pointing", "pointing_tol", "energy", "deletion_auc",
                                       "insertion_auc"]
    assert len(table) == 6 and list(table["method"].iloc[4:]) == ["random", "edges"]  # 2 x 2 pairs, 2 references
    assert table[["pointing", "energy", "deletion_auc", "insertion_auc"]].stack().between(0, 1).all()
    assert "best pointing game" in capsys.readouterr().out
    assert main(["evaluate-cam", "--checkpoint", str(run.best_path), "--out", str(out),
                 "--methods", "smoothgrad"]) == 2
    assert "--methods smoothgrad: the table takes methods that work at every layer, gradcam" in capsys.readouterr().err
    assert "energy_distractor" not in table.columns  # these photos have nothing in the water


def test_evaluate_cam_measures_the_heat_on_distractors_where_the_photos_have_them(tmp_path):
    noisy = generate_dataset(tmp_path / "noisy",
                             SyntheticConfig(size=SIZE, fish_per_class=4, seed=2, degraded_share=0.5, distractors=3),
                             workers=1, progress=False)
    data = make_datasets(noisy, image_size=SIZE, cache=False, progress=False)
    torch.manual_seed(0)
    net = build_model("fishresnet", 9, width=4, blocks=(1, 1), weights=None, verbose=False)
    run = fit(net, data.train, data.val, epochs=1, batch_size=8, progress=False, run_dir=tmp_path / "run")
    out = tmp_path / "cams.csv"
    assert main(["evaluate-cam", "--checkpoint", str(run.best_path), "--out", str(out), "--methods", "gradcam",
                 "--layers", "layer2", "--steps", "2", "--curve-images", "3", "--no-progress"]) == 0
    table = pd.read_csv(out)
    checked = load_evidence(make_datasets(noisy, image_size=SIZE, cache=False, progress=False,
                                          masks=["evidence", "distractor"]).test, require="evidence")
    model = load_checkpoint(run.best_path)[0]
    maps = make_cam("gradcam", model, "layer2")(checked.images, checked.labels).maps
    # The CSV keeps 4 decimals: half of the last one, and float32 rounding of the mean share.
    assert table.loc[0, "energy_distractor"] == pytest.approx(
        energy_in_mask(maps, checked.masks["distractor"]).mean().item(), abs=5e-5 + 1e-6)


def test_kaggle_pointing_scores_grad_cam_against_the_body_masks(tiny_kaggle):
    table, trained = kaggle_pointing(tiny_kaggle, image_size=SIZE, epochs=1, per_class=2, tolerance=0, progress=False)
    assert list(table.index[-1:]) == ["overall"] and len(table) == 10
    assert table.loc["overall", "images"] == table["images"].iloc[:-1].sum()
    splits = make_datasets(tiny_kaggle, image_size=SIZE, masks=["body"], progress=False)
    batch = load_evidence(splits.test, per_class=2)
    maps = make_cam("gradcam", trained, "layer2")(batch.images, batch.labels).maps
    assert table.loc["overall", "hit rate"] == pytest.approx(
        pointing_game(maps, batch.masks["body"]).float().mean().item())
    assert table.loc["overall", "energy"] == pytest.approx(
        energy_in_mask(maps, batch.masks["body"]).mean().item(), abs=1e-6)
