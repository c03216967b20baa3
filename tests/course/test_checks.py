"""The you-write-it checkers: each passes a right answer, calls a blank task "not done yet", and names
each typical mistake it diagnoses. The mistakes below are written as a student would write them,
not taken from the checkers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fishcam_utils import checks

pytestmark = pytest.mark.numeric  # the checkers compare students' answers by float32 rounding (checks.core.same)


def blank(*args, **kwargs):
    # YOUR CODE HERE
    raise NotImplementedError()


def verdict_of(checker, fn, capsys):
    verdict = checker(fn)
    assert str(verdict) in capsys.readouterr().out  # printed, for the notebook
    return verdict


@pytest.mark.parametrize("name", sorted(checks.TASKS))
def test_a_blank_task_is_not_done_yet_and_falls_back_to_the_reference(name, capsys):
    verdict = verdict_of(checks.TASKS[name], blank, capsys)
    assert not verdict.done and not verdict.passed and "not done yet" in verdict.message
    assert verdict.function is not blank and callable(verdict.function)


@pytest.mark.parametrize("name", sorted(checks.TASKS))
def test_a_function_that_crashes_is_reported_not_raised(name, capsys):
    def crashes(*args, **kwargs):
        return [][0]

    verdict = verdict_of(checks.TASKS[name], crashes, capsys)
    assert verdict.done and not verdict.passed and "raised IndexError" in verdict.message


# ------------------------------------------------------------------ 02: a training loop


def train_epoch(model, loader, optimizer, loss_fn, zero_grad=True, train=True, step=True, mean="samples"):
    if train:
        model.train()
    losses, sizes = [], []
    for inputs, labels in loader:
        if zero_grad:
            optimizer.zero_grad()
        loss = loss_fn(model(inputs), labels)
        loss.backward()
        if step:
            optimizer.step()
        losses.append(loss.item())
        sizes.append(len(labels))
    if mean == "samples":
        return sum(loss * n for loss, n in zip(losses, sizes)) / sum(sizes)
    if mean == "batches":
        return sum(losses) / len(losses)
    if mean == "sum":
        return sum(loss * n for loss, n in zip(losses, sizes))
    return losses[-1]


@pytest.mark.parametrize("mistake, says", [
    ({"zero_grad": False}, "call optimizer.zero_grad()"),
    ({"train": False}, "call model.train()"),
    ({"step": False}, "call optimizer.step()"),
    ({"mean": "batches"}, "averaged the batch means"),
    ({"mean": "sum"}, "sum of the losses"),
    ({"mean": "last"}, "last batch's loss"),
])
def test_the_training_loop_checker(mistake, says, capsys):
    assert verdict_of(checks.training_loop, train_epoch, capsys).passed
    verdict = verdict_of(checks.training_loop, lambda *a: train_epoch(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


# ------------------------------------------------------------------ 05: Grad-CAM from hooks, Grad-CAM++


def grad_cam(model, layer, x, targets=None, weights="mean", relu_on="cam", score="logit", channels="sum",
             keep_hook=False, upsample="bilinear", scale="each", ignore_targets=False, mode="restore",
             remove="finally", gradient="autograd", detach=True, first_target=False):
    was_training = model.training
    store = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: store.update(A=output))
    try:
        if mode != "as it is":
            model.eval()
        logits = model(x)
        given = targets is not None
        targets = logits.argmax(1) if targets is None or ignore_targets else torch.as_tensor(targets).view(-1)
        targets = targets[:1].expand(len(targets)) if first_target and given else targets
        scores = logits.softmax(1) if score == "probability" else logits
        chosen = scores.gather(1, targets[:, None]).sum()
        if gradient == "backward":
            store["A"].retain_grad()
            chosen.backward()
            gradients = store["A"].grad
        else:
            (gradients,) = torch.autograd.grad(chosen, store["A"])
    finally:
        if remove == "finally" and not keep_hook:
            handle.remove()
        if mode == "restore":
            model.train(was_training)
    if remove == "after":  # skipped when the forward pass raises
        handle.remove()
    alpha = {"mean": gradients.mean((2, 3), keepdim=True), "sum": gradients.sum((2, 3), keepdim=True),
             "none": gradients, "batch": gradients.mean((0, 2, 3), keepdim=True)}[weights]
    weighted = alpha * store["A"]
    raw = weighted.sum(1) if channels == "sum" else weighted.mean(1)
    raw = raw.detach() if detach else raw
    cam = raw.relu() if relu_on == "cam" else raw
    if relu_on == "raw":
        raw = raw.relu()
    if scale == "before":  # scaled at the layer's resolution, then upsampled
        low, high = cam.amin((1, 2), keepdim=True), cam.amax((1, 2), keepdim=True)
        cam = (cam - low) / (high - low).clamp_min(1e-12)
    if upsample == "none":
        up = cam
    elif upsample == "nearest":
        up = F.interpolate(cam[:, None], size=x.shape[-2:], mode="nearest")[:, 0]
    else:
        up = F.interpolate(cam[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    if scale in ("none", "before"):
        return raw, up
    if scale == "max":
        return raw, up / up.amax((1, 2), keepdim=True)
    dims = (0, 1, 2) if scale == "batch" else (1, 2)
    low, high = up.amin(dims, keepdim=True), up.amax(dims, keepdim=True)
    return raw, (up - low) / (high - low).clamp_min(1e-12)


@pytest.mark.parametrize("mistake, says", [
    # The checker's layer is coarser than its images, it has several images, and it asks for classes other
    # than the predicted ones: so each of these slips changes the answer and is named.
    ({"upsample": "none"}, "upsample cam"),
    ({"upsample": "nearest"}, "mode='nearest'"),
    ({"scale": "batch"}, "whole batch by one minimum"),
    ({"scale": "before"}, "before upsampling"),
    ({"scale": "none"}, "forgot the scaling"),
    ({"ignore_targets": True}, "although targets was given"),
    ({"weights": "sum"}, "summed the gradient"),
    ({"weights": "none"}, "HiResCAM"),
    ({"score": "probability"}, "softmax probability"),
    ({"relu_on": "none"}, "cam kept the negative values"),
    ({"relu_on": "raw"}, "apply the ReLU to cam, not to raw"),
    ({"channels": "mean"}, "averaged over the channels"),
    ({"keep_hook": True}, "hook is still on the model"),
    ({"weights": "batch"}, "whole batch too"),
    ({"scale": "max"}, "divided by the maximum only"),
    ({"first_target": True}, "targets[0] for every image"),
    # Its network has dropout, and it calls the function from training mode and with images that fail.
    ({"mode": "as it is"}, "dropout was on"),
    ({"mode": "eval"}, "in eval mode after it"),
    ({"remove": "after"}, "when the forward pass fails"),
    ({"gradient": "backward"}, ".grad were filled"),
    ({"detach": False}, ".detach() it"),
])
def test_the_grad_cam_checker(mistake, says, capsys):
    assert verdict_of(checks.grad_cam, grad_cam, capsys).passed
    verdict = verdict_of(checks.grad_cam, lambda *a, **k: grad_cam(*a, **k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def test_the_grad_cam_checker_sees_a_model_left_in_training_mode(capsys):
    def leaves_train(model, layer, x, targets=None):
        raw, maps = grad_cam(model, layer, x, targets)
        model.train()
        return raw, maps

    assert "left in training mode" in verdict_of(checks.grad_cam, leaves_train, capsys).message


def test_the_grad_cam_checker_wants_the_mode_restored_also_when_the_forward_pass_fails(capsys):
    def restores_after(model, layer, x, targets=None):
        was_training = model.training
        model.eval()
        result = grad_cam(model, layer, x, targets, mode="as it is")
        model.train(was_training)  # not reached when the forward pass raises
        return result

    assert "not put back in training mode" in verdict_of(checks.grad_cam, restores_after, capsys).message


def gradcam_pp(a, g, eps=0.0, guard=True, relu_g=True, total_over=(2, 3), two=2.0, weight="sum", channels="sum",
               final_relu=False, answer="map", in_place=False):
    g2, g3 = g * g, g * g * g
    if in_place:  # ReLU(g) taken in place, after g^2 and g^3: the right numbers, the caller's gradients changed
        relu_g, g = False, g.clamp_(min=0)
    third = ((a * g3).sum((2, 3), keepdim=True) if total_over == "of the product"
             else a.sum(total_over, keepdim=True) * g3)
    denominator = two * g2 + third + eps
    if guard:
        coefficient = torch.where(denominator == 0, torch.zeros_like(g),
                                  g2 / torch.where(denominator == 0, 1.0, denominator))
    else:
        coefficient = g2 / denominator
    w = coefficient * (torch.relu(g) if relu_g else g)
    w = w.sum((2, 3)) if weight == "sum" else w.mean((2, 3))
    if answer == "weights":
        return w
    if answer == "channel maps":
        return w[..., None, None] * a
    result = (torch.einsum("nk,nkhw->nhw", w, a) if channels == "sum"
              else torch.einsum("nk,nkhw->nhw", w, a) / a.shape[1])
    return result.relu() if final_relu else result


@pytest.mark.parametrize("mistake, says", [
    # The case has zero gradients, a zero denominator at a nonzero gradient, gradients near 1e-3, and signed
    # activations: each slip below changes the answer.
    ({"guard": False}, "NaN or inf"),
    ({"eps": 1e-7}, "small number"),
    ({"relu_g": False}, "ReLU(g)"),
    ({"total_over": 1}, "not over the channels"),
    ({"two": 1.0}, "factor 2"),
    ({"weight": "mean"}, "you averaged"),
    ({"channels": "mean"}, "you averaged them"),
    ({"final_relu": True}, "before the final ReLU"),
    ({"answer": "weights"}, "channel weights"),
    ({"answer": "channel maps"}, "one map per channel"),
    ({"total_over": "of the product"}, "you summed A g^3"),
    ({"in_place": True}, "you changed the activations or the gradients"),
])
def test_the_gradcam_pp_checker(mistake, says, capsys):
    assert verdict_of(checks.gradcam_pp, gradcam_pp, capsys).passed
    verdict = verdict_of(checks.gradcam_pp, lambda a, g: gradcam_pp(a, g, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


# ------------------------------------------------------------------ 07: guided backpropagation with hooks


def guided_backprop(model, x, targets=None, clamp="grad_in", relus="all", score="logit", mode="restore",
                    remove="finally", output="signed", copy_input=True, gradient="autograd", first_target=False):
    found = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    found = {"all": found, "first": found[:1], "last": found[-1:]}[relus]

    def rule(module, grad_in, grad_out):
        if clamp == "grad_in":
            return (grad_in[0].clamp(min=0),)
        if clamp == "grad_out":
            return (grad_out[0].clamp(min=0),)
        grad_in[0].clamp(min=0)  # computed and dropped: no return

    handles = [m.register_full_backward_hook(rule) for m in found]
    was_training = model.training
    try:
        if mode != "as it is":
            model.eval()
        x = x.detach().clone().requires_grad_(True) if copy_input else x.requires_grad_(True)
        logits = model(x)
        chosen = logits.argmax(1) if targets is None else torch.as_tensor(targets)
        chosen = chosen[:1].expand(len(chosen)) if first_target else chosen
        scores = logits.softmax(1) if score == "probability" else logits
        if gradient == "backward":
            scores.gather(1, chosen[:, None]).sum().backward()
            gradient = x.grad
        else:
            (gradient,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), x)
    finally:
        if remove == "finally":
            for handle in handles:
                handle.remove()
        if mode == "restore":
            model.train(was_training)
    if remove == "after":
        for handle in handles:
            handle.remove()
    return {"signed": gradient, "abs": gradient.abs(), "saliency": gradient.abs().amax(1),
            "times input": gradient * x.detach()}[output]


@pytest.mark.parametrize("mistake, says", [
    # The checker's network calls one ReLU module twice, has dropout, and is called in training mode and
    # with images that make the forward pass fail.
    ({"clamp": "none"}, "plain input gradient"),
    ({"clamp": "grad_out"}, "deconvnet"),
    ({"relus": "first"}, "only the first ReLU"),
    ({"relus": "last"}, "only the last ReLU"),
    ({"score": "probability"}, "softmax probability"),
    ({"output": "abs"}, "|gradient|"),
    ({"output": "saliency"}, "one map per image"),
    ({"mode": "as it is"}, "dropout was on"),
    ({"mode": "eval"}, "in eval mode after it"),
    ({"remove": "after"}, "when the forward pass fails"),
    ({"remove": "never"}, "hook is still on the model"),
    ({"copy_input": False}, "work on a copy"),
    ({"output": "times input"}, "gradient x input"),
    ({"gradient": "backward"}, ".grad were filled"),
    ({"first_target": True}, "targets[0] for every image"),
])
def test_the_guided_backprop_checker(mistake, says, capsys):
    assert verdict_of(checks.guided_backprop, guided_backprop, capsys).passed
    verdict = verdict_of(checks.guided_backprop, lambda *a, **k: guided_backprop(*a, **k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def test_the_guided_backprop_checker_names_ignored_targets(capsys):
    verdict = verdict_of(checks.guided_backprop, lambda m, x, targets=None: guided_backprop(m, x), capsys)
    assert not verdict.passed and "although targets was given" in verdict.message


# ------------------------------------------------------------------ 08: pointing game and energy


def pointing_game(maps, masks, peak="max", plateau="all", flat_misses=True, unravel="right", per_image=True):
    n, h, w = maps.shape
    if not per_image:
        flat_index = int((maps if peak == "max" else -maps).flatten().argmax()) % (h * w)
        return masks.flatten(1)[:, flat_index]
    values = maps.flatten(1) if peak == "max" else -maps.flatten(1)
    top = values.max(1, keepdim=True).values
    at_top = values >= top
    if plateau == "first":
        first = values.argmax(1)
        if unravel == "swapped":
            rows, cols = first % h, first // h
            return masks[torch.arange(n), rows.clamp(max=h - 1), cols.clamp(max=w - 1)]
        return masks.flatten(1)[torch.arange(n), first]
    hits = (at_top & ~masks.flatten(1)).sum(1) == 0 if plateau == "all" else (at_top & masks.flatten(1)).any(1)
    if flat_misses:
        hits &= values.min(1).values < top[:, 0]
    return hits


@pytest.mark.parametrize("mistake, says", [
    ({"peak": "min"}, "looked for the minimum"),
    ({"plateau": "any"}, "when *one* top pixel lies in the mask: every one"),
    ({"plateau": "first", "unravel": "swapped"}, "swapped"),
    ({"per_image": False}, "whole batch"),
    ({"plateau": "any", "flat_misses": False}, "and a flat map"),
    ({"flat_misses": False}, "covers the whole image"),
])
def test_the_pointing_game_checker(mistake, says, capsys):
    right = verdict_of(checks.pointing_game, pointing_game, capsys)
    assert right.passed and right.convention == ""
    verdict = verdict_of(checks.pointing_game, lambda m, k: pointing_game(m, k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


@pytest.mark.parametrize("flat_misses", [False, True])
def test_the_pointing_game_checker_accepts_the_first_maximum_as_another_convention(flat_misses, capsys):
    """Zhang et al.'s game as most code plays it (torch's argmax: the first maximum found) is not a mistake:
    it passes, and the verdict says where it parts from the course's strict plateau convention."""
    def first_maximum(maps, masks):
        hits = pointing_game(maps, masks, plateau="first")
        values = maps.flatten(1)
        return hits & (values.min(1).values < values.max(1).values) if flat_misses else hits

    verdict = verdict_of(checks.pointing_game, first_maximum, capsys)
    assert verdict.passed and verdict.function is first_maximum and verdict.convention == "first maximum"
    assert "convention most code uses" in verdict.message and "part on images [2" in verdict.message


def energy(maps, masks, clip=True, divide="own", guard=True, inside=True, answer="values"):
    signed = maps
    if clip == "abs":
        maps = maps.abs()
    elif clip is True:
        maps = maps.clamp(min=0)
    part = ((maps.clamp(min=0) if clip == "numerator" else maps) * (masks if inside else ~masks)).sum((1, 2))
    total = {"own": maps.sum((1, 2)), "batch": maps.sum(), "mask": masks.sum((1, 2)).float(),
             "none": torch.ones(len(maps))}[divide]
    share = part / total
    if guard == "one":
        share = torch.where(total > 0, share, torch.ones_like(share))
    elif guard == "plain sum":
        share = torch.where(signed.sum((1, 2)) > 0, share, torch.zeros_like(share))
    elif guard:
        share = torch.nan_to_num(share, nan=0.0)
    return share > 0 if answer == "bool" else share


@pytest.mark.parametrize("mistake, says", [
    ({"divide": "none"}, "divide by each map's total"),
    ({"clip": False}, "clip negative values"),
    ({"divide": "mask"}, "mean heat *inside*"),
    ({"divide": "batch"}, "that image's own total"),
    ({"guard": False}, "NaN"),
    ({"clip": "numerator"}, "clip the map once"),
    ({"clip": "abs"}, "not abs()"),
    ({"guard": "one"}, "give it 0, not 1"),
    ({"guard": "plain sum"}, "the *clipped* total"),
    ({"inside": False}, "*outside* the mask"),
    ({"answer": "bool"}, "differs"),  # a True/False answer is no share
])
def test_the_energy_checker(mistake, says, capsys):
    assert verdict_of(checks.energy_share, energy, capsys).passed
    verdict = verdict_of(checks.energy_share, lambda m, k: energy(m, k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def deletion(model, images, maps, targets, baseline, steps, hottest_first=True, delete=True, softmax=True,
             target_class=True, first_point=True, ranks="scatter", count=round, fill="baseline", one_class=False,
             graph=False, ties="by position"):
    n, _, h, w = images.shape
    order = maps.flatten(1).argsort(dim=1, descending=hottest_first, stable=True)
    if ties == "last first":  # tied pixels taken from the end of the image
        order = h * w - 1 - maps.flatten(1).flip(1).argsort(dim=1, descending=hottest_first, stable=True)
    probs = []
    classes = targets if target_class else model(images).argmax(1)
    classes = classes[:1].expand(n) if one_class else classes
    baseline = torch.zeros_like(images) if fill == "zero" else baseline
    for step in range(0 if first_point else 1, steps + 1):
        k = count(step / steps * h * w)
        if ranks == "scatter":
            chosen = torch.zeros(n, h * w, dtype=torch.bool)
            chosen.scatter_(1, order[:, :k], True)
        else:  # the argsort read as if it were each pixel's rank
            chosen = order < k
        chosen = chosen.view(n, 1, h, w)
        x = torch.where(chosen, baseline, images) if delete else torch.where(chosen, images, baseline)
        if graph:
            scores = model(x)
        else:
            with torch.no_grad():
                scores = model(x)
        scores = scores.softmax(1) if softmax else scores
        probs.append(scores[torch.arange(n), classes])
    return torch.stack(probs, 1)


@pytest.mark.parametrize("mistake, says", [
    ({"hottest_first": False}, "coldest pixels first"),
    ({"delete": False}, "that is insertion"),
    ({"softmax": False}, "recorded the logit"),
    ({"target_class": False}, "predicted class"),
    ({"first_point": False}, "before anything is removed"),
    ({"ranks": "argsort"}, "argsort itself as the ranks"),
    ({"count": int}, "you truncated"),
    ({"fill": "zero"}, "replaced the pixels by 0"),
    ({"one_class": True}, "targets[0] for every image"),
    ({"graph": True}, "carry a gradient graph"),
    ({"ties": "last first"}, "break ties by position"),
])
def test_the_deletion_loop_checker(mistake, says, capsys):
    assert verdict_of(checks.deletion_loop, deletion, capsys).passed
    verdict = verdict_of(checks.deletion_loop, lambda *a: deletion(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


# ------------------------------------------------------------------ 08: Spearman and cascading randomisation


def spearman(a, b, ranks="average", per_map=True, centre=True, formula="pearson", constant="nan", answer="each"):
    from scipy.stats import rankdata

    a, b = a.flatten(1).double(), b.flatten(1).double()
    if ranks == "values":
        ra, rb = a, b
    elif ranks == "ordinal":
        ra, rb = a.argsort(1).argsort(1).double(), b.argsort(1).argsort(1).double()
    elif per_map:
        ra, rb = (torch.from_numpy(rankdata(t.numpy(), axis=1)) for t in (a, b))
    else:
        ra, rb = (torch.from_numpy(rankdata(t.numpy()).reshape(t.shape)) for t in (a, b))
    n = ra.shape[1]
    if formula == "no ties":
        rho = 1 - 6 * ((ra - rb) ** 2).sum(1) / (n * (n * n - 1))
    else:
        if centre:
            ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
        rho = (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))
    if constant != "nan":
        rho = torch.nan_to_num(rho, nan=float(constant))
    return rho.float().nanmean() if answer == "mean" else rho.float()


@pytest.mark.parametrize("mistake, says", [
    # The case has ties (maps after a ReLU, coarse blocks) and a constant map.
    ({"ranks": "values"}, "Pearson's correlation of the values"),
    ({"ranks": "ordinal"}, "tied pixels must share their mean rank"),
    ({"per_map": False}, "whole batch at once"),
    ({"formula": "no ties"}, "holds only when no two pixels tie"),
    ({"centre": False}, "cosine of the ranks"),
    ({"constant": 0}, "NaN (0 / 0), not 0;"),
    ({"constant": 1}, "NaN (0 / 0), not 1;"),
    ({"answer": "mean"}, "not their mean"),
])
def test_the_spearman_checker(mistake, says, capsys):
    assert verdict_of(checks.spearman, spearman, capsys).passed
    verdict = verdict_of(checks.spearman, lambda a, b: spearman(a, b, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def cascade(model, stages, explain, seed=0, on="copy", copies="one", order="top down", seeding="once",
            against="trained", inside=True, average="nanmean"):
    import copy

    trained = explain(model)
    randomized = copy.deepcopy(model) if on == "copy" else model
    if seeding in ("once", "zero"):
        torch.manual_seed(0 if seeding == "zero" else seed)
    correlations, previous = [], trained
    for stage in (stages if order == "top down" else stages[::-1]):
        if copies == "fresh":
            randomized = copy.deepcopy(model)
        if seeding == "each":
            torch.manual_seed(seed)
        part = randomized.get_submodule(stage)
        for module in (part.modules() if inside else [part]):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        maps = explain(randomized)
        rho = spearman(trained if against == "trained" else previous, maps)
        correlations.append(float(rho.nanmean() if average == "nanmean" else rho.mean()))
        previous = maps
    return correlations


@pytest.mark.parametrize("mistake, says", [
    # The case has BatchNorm, stages that are containers, a map of zeros (NaN), and a seed other than 0.
    ({"on": "model"}, "randomised the model you were given"),
    ({"copies": "fresh"}, "*independent*"),
    ({"order": "bottom up"}, "wrong order"),
    ({"seeding": "each"}, "seed once"),
    ({"seeding": "never"}, "same seed gave different"),
    ({"seeding": "zero"}, "you seeded with 0"),
    ({"against": "previous"}, "previous stage's"),
    ({"inside": False}, "is a container"),
    ({"average": "mean"}, "nanmean"),
])
def test_the_cascading_randomisation_checker(mistake, says, capsys):
    assert verdict_of(checks.cascading_randomisation, cascade, capsys).passed
    verdict = verdict_of(checks.cascading_randomisation, lambda *a: cascade(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


# ------------------------------------------------------------------ 01: the leak simulation


def leak_simulation(fish_ids, shares=(0.7, 0.15, 0.15), seed=0, per_photo="photos", per_fish="fish", count="fish",
                    singles=True, probabilities="given", percent=False, rng="seeded"):
    import numpy as np
    import pandas as pd

    generator = np.random.default_rng(seed if rng == "seeded" else None)
    p = shares if probabilities == "given" else None
    names = np.array(["train", "val", "test"])
    fish_ids = np.asarray(fish_ids)
    by_photo = generator.choice(names, size=len(fish_ids), p=p)
    unique = np.unique(fish_ids)
    drawn = dict(zip(unique, generator.choice(names, size=len(unique), p=p)))
    by_fish = (np.array([drawn[f] for f in fish_ids]) if per_fish == "fish"
               else generator.choice(names, len(fish_ids), p=p))
    if per_photo == "fish":
        by_photo = by_fish

    def leak(split):
        frame = pd.DataFrame({"fish": fish_ids, "split": split})
        spread = frame.groupby("fish")["split"].nunique()
        if not singles:
            spread = spread[frame.groupby("fish").size() > 1]
        if count == "photos":
            return float((frame["fish"].map(spread) > 1).mean())
        return float((spread > 1).mean()) * (100 if percent else 1)

    return leak(by_photo), leak(by_fish)


@pytest.mark.parametrize("mistake, says", [
    # 8000 fish of 1 to 4 photos: the mistakes below move the per-photo leak by far more than six standard errors.
    ({"per_fish": "photos"}, "per-fish split still leaks"),
    ({"per_photo": "fish"}, "does not leak"),
    ({"count": "photos"}, "share of *photos*"),
    ({"probabilities": "equal"}, "equal chances"),
    ({"singles": False}, "single photo"),
    ({"percent": True}, "between 0 and 1"),
    ({"rng": "unseeded"}, "the same seed gave another result"),
])
def test_the_leak_simulation_checker(mistake, says, capsys):
    assert verdict_of(checks.leak_simulation, leak_simulation, capsys).passed
    verdict = verdict_of(checks.leak_simulation, lambda *a: leak_simulation(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def test_the_leak_simulation_checker_wants_the_seed_used(capsys):
    verdict = verdict_of(checks.leak_simulation, lambda ids, shares, seed: leak_simulation(ids, shares, 0), capsys)
    assert not verdict.passed and "other seeds gave exactly the same leak" in verdict.message


# ------------------------------------------------------------------ 04: attention pooling


def attention_pool(features, scores, present, mask="-inf", dim=1, shift=True, fused="sum", validate=True):
    if validate and not present.any(1).all():
        raise (ValueError if validate is True else RuntimeError)("a fish with no view present")
    if mask == "-inf":
        scores = scores.masked_fill(~present, float("-inf"))
    elif mask == "zero":
        scores = scores * present
    if shift:
        scores = scores - scores.max(dim, keepdim=True).values
    weights = scores.exp() / scores.exp().sum(dim, keepdim=True)
    if mask == "after":
        weights = weights * present
    pooled = torch.einsum("nv,nvf->nf", weights, torch.where(present[..., None], features, 0.0))
    return (pooled / features.shape[1] if fused == "mean" else pooled), weights


@pytest.mark.parametrize("mistake, says", [
    # A missing view with the largest score, a fish with one view, scores near 1000, a fish with none.
    ({"mask": "none"}, "missing view got a weight"),
    ({"mask": "after"}, "after the softmax"),
    ({"mask": "zero"}, "score of 0"),
    ({"dim": 0}, "over the batch"),
    ({"shift": False}, "exp(1000)"),
    ({"fused": "mean"}, "weighted *sum*"),
    ({"validate": False}, "no view present"),
    ({"validate": "another error"}, "raise ValueError (saying so), not RuntimeError"),
])
def test_the_attention_pooling_checker(mistake, says, capsys):
    assert verdict_of(checks.attention_pooling, attention_pool, capsys).passed
    verdict = verdict_of(checks.attention_pooling, lambda *a: attention_pool(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def test_summary_lists_every_task_of_a_notebook_with_its_latest_verdict(capsys):
    from fishcam_utils.checks.core import LATEST

    LATEST.clear()
    checks.pointing_game(pointing_game)
    checks.energy_share(lambda m, k: energy(m, k, divide="none"))
    capsys.readouterr()
    verdicts = checks.summary("08")
    out = capsys.readouterr().out
    assert len(verdicts) == len(checks.NOTEBOOK_TASKS["08"]) == 5
    assert "1 of 5 right" in out and verdicts[0].passed and not verdicts[1].passed
    assert "divide by each map's total" in out  # what the checker said, repeated
    assert out.count("its check has not run") == 3
