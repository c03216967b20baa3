"""The you-write-it checkers: each passes a right answer, calls a blank task "not done yet", and names
each typical mistake it diagnoses. The mistakes below are written as a student would write them,
not taken from the checkers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

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
        return sum(l * n for l, n in zip(losses, sizes)) / sum(sizes)
    if mean == "batches":
        return sum(losses) / len(losses)
    if mean == "sum":
        return sum(l * n for l, n in zip(losses, sizes))
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


# ------------------------------------------------------------------ 05: Grad-CAM from hooks, LayerCAM


def grad_cam(model, layer, x, targets=None, weights="mean", relu_on="cam", score="logit", channels="sum",
             keep_hook=False, upsample="bilinear", scale="each", ignore_targets=False):
    store = {}
    handle = layer.register_forward_hook(lambda module, inputs, output: store.update(A=output))
    try:
        logits = model(x)
    finally:
        if not keep_hook:
            handle.remove()
    targets = logits.argmax(1) if targets is None or ignore_targets else torch.as_tensor(targets).view(-1)
    scores = logits.softmax(1) if score == "probability" else logits
    (gradients,) = torch.autograd.grad(scores.gather(1, targets[:, None]).sum(), store["A"])
    alpha = {"mean": gradients.mean((2, 3), keepdim=True), "sum": gradients.sum((2, 3), keepdim=True),
             "none": gradients}[weights]
    weighted = alpha * store["A"]
    raw = (weighted.sum(1) if channels == "sum" else weighted.mean(1)).detach()
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
    ({"keep_hook": True}, "hook is still on the layer"),
])
def test_the_grad_cam_checker(mistake, says, capsys):
    assert verdict_of(checks.grad_cam, grad_cam, capsys).passed
    verdict = verdict_of(checks.grad_cam, lambda *a, **k: grad_cam(*a, **k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


def test_the_grad_cam_checker_sees_a_model_left_in_training_mode(capsys):
    def leaves_train(model, layer, x, targets=None):
        model.train()
        return grad_cam(model, layer, x, targets)

    assert "left in training mode" in verdict_of(checks.grad_cam, leaves_train, capsys).message


@pytest.mark.parametrize("layercam, says", [
    (lambda a, g: (g * a).sum(1), "HiResCAM"),
    (lambda a, g: (g.mean((2, 3), keepdim=True) * a).sum(1), "as Grad-CAM does"),
    (lambda a, g: (g.clamp(min=0).mean((2, 3), keepdim=True) * a).sum(1), "averaged the positive gradients"),
    (lambda a, g: (g.clamp(min=0) * a).mean(1), "averaged over the channels"),
    (lambda a, g: g.clamp(min=0) * a, "one map per channel"),
    # The second image's activations are signed, so where the ReLU goes shows:
    (lambda a, g: (g * a).relu().sum(1), "ReLU to the product"),
    (lambda a, g: (g.relu() * a).sum(1).relu(), "before the final ReLU"),
    (lambda a, g: (g * a.relu()).sum(1), "not on the activations"),
])
def test_the_layercam_checker(layercam, says, capsys):
    assert verdict_of(checks.layercam, lambda a, g: (torch.relu(g) * a).sum(dim=1), capsys).passed
    verdict = verdict_of(checks.layercam, layercam, capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


# ------------------------------------------------------------------ 07: the guided ReLU rule


@pytest.mark.parametrize("rule, says", [
    (lambda f, r: torch.where(f > 0, r, torch.zeros_like(r)), "ordinary backward rule"),
    (lambda f, r: torch.where(r > 0, r, torch.zeros_like(r)), "deconvnet rule"),
    (lambda f, r: r.clamp(min=0) * f.clamp(min=0), "0/1 mask"),
    (lambda f, r: r * (r > 0) * (f >= 0), "f >= 0"),
    (lambda f, r: r.clone(), "unchanged"),
    (lambda f, r: ((f > 0) & (r > 0)).float(), "the mask itself"),
    (lambda f, r: (f > 0) & (r > 0), "the mask itself"),  # a True/False answer is no value
    (lambda f, r: r * (f * r > 0), "both are negative"),
])
def test_the_guided_rule_checker(rule, says, capsys):
    assert verdict_of(checks.guided_relu, lambda f, r: r * (f > 0).float() * (r > 0).float(), capsys).passed
    verdict = verdict_of(checks.guided_relu, rule, capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


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
    ({"plateau": "first"}, "plateau"),
    ({"plateau": "any"}, "flat map"),
    ({"plateau": "first", "unravel": "swapped"}, "swapped"),
    ({"per_image": False}, "whole batch"),
    ({"plateau": "any", "flat_misses": False}, "plateau"),
    ({"flat_misses": False}, "covers the whole image"),
])
def test_the_pointing_game_checker(mistake, says, capsys):
    assert verdict_of(checks.pointing_game, pointing_game, capsys).passed
    verdict = verdict_of(checks.pointing_game, lambda m, k: pointing_game(m, k, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message


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
             target_class=True, first_point=True):
    n, _, h, w = images.shape
    order = maps.flatten(1).argsort(1, descending=hottest_first)
    probs = []
    classes = targets if target_class else model(images).argmax(1)
    for step in range(0 if first_point else 1, steps + 1):
        k = round(step / steps * h * w)
        chosen = torch.zeros(n, h * w, dtype=torch.bool)
        chosen.scatter_(1, order[:, :k], True)
        chosen = chosen.view(n, 1, h, w)
        x = torch.where(chosen, baseline, images) if delete else torch.where(chosen, images, baseline)
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
])
def test_the_deletion_loop_checker(mistake, says, capsys):
    assert verdict_of(checks.deletion_loop, deletion, capsys).passed
    verdict = verdict_of(checks.deletion_loop, lambda *a: deletion(*a, **mistake), capsys)
    assert verdict.done and not verdict.passed and says in verdict.message
