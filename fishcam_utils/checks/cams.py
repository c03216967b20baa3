"""Checkers for notebook 05: Grad-CAM from hooks, and Grad-CAM++ from its formula."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..explain.cam import GradCAM, GradCAMPlusPlus
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check, same

TARGET = 3  # the layer the checks explain: the second ReLU of the tiny network, at half the input's resolution


def _tiny_net() -> nn.Module:
    """A small CNN whose head is not GAP → linear, so its gradients vary over space (as in most
    networks), seeded so every check sees the same weights. Its target layer is coarser than the
    input (4 × 5 for 8 × 10 images), so a map that was never upsampled cannot pass; its dropout makes a map
    taken in training mode differ. Returns it in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(5)
        # The ReLU after the last convolution makes the gradient at the target layer differ from image to
        # image (after a purely linear rest it would be one per class), so a batch-wide alpha shows.
        net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1),
                            nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                            nn.Dropout(0.5), nn.Linear(4 * 4 * 5, 5, bias=False))
    return net.eval()


def _images() -> torch.Tensor:
    return torch.randn(3, 3, 8, 10, generator=torch.Generator().manual_seed(8))


def _capture(net: nn.Module, x: torch.Tensor, targets=None, probability: bool = False):
    """(A, dscore/dA) at the net's target layer, by the book, for the mistakes to build on."""
    store = {}
    handle = net[TARGET].register_forward_hook(lambda m, i, o: store.update(A=o))
    try:
        logits = net(x)
    finally:
        handle.remove()
    scores = logits.softmax(1) if probability else logits
    chosen = logits.argmax(1) if targets is None else torch.as_tensor(targets)
    (grads,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), store["A"])
    return store["A"].detach(), grads


def _raw_mistakes() -> list[Mistake]:
    def with_capture(combine: Callable, probability: bool = False) -> Callable:
        return lambda net, x: combine(*_capture(net, x, probability=probability))

    return [
        Mistake("your raw map is hw times too large: you summed the gradient over the positions; alpha is their "
                "mean (gradients.mean(dim=(2, 3)))",
                with_capture(lambda a, g: (g.sum((2, 3), keepdim=True) * a).sum(1))),
        Mistake("you multiplied gradients and activations position by position (that is HiResCAM): Grad-CAM first "
                "averages the gradient over space, one alpha per channel",
                with_capture(lambda a, g: (g * a).sum(1))),
        Mistake("you differentiated the softmax probability; Grad-CAM explains the logit y^c, the score before the "
                "softmax (section 1 says why)",
                with_capture(lambda a, g: (g.mean((2, 3), keepdim=True) * a).sum(1), probability=True)),
        Mistake("raw should be the signed map, before the ReLU: apply the ReLU to cam, not to raw",
                with_capture(lambda a, g: (g.mean((2, 3), keepdim=True) * a).sum(1).relu())),
        Mistake("you averaged over the channels: the map is the *sum* over k of alpha_k A^k",
                with_capture(lambda a, g: (g.mean((2, 3), keepdim=True) * a).mean(1))),
        Mistake("you averaged the gradient over the whole batch too: each image has its own alpha, the mean over "
                "dims (2, 3) only", with_capture(lambda a, g: (g.mean((0, 2, 3), keepdim=True) * a).sum(1))),
    ]


def _hooks_left(net: nn.Module) -> bool:
    return any(m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
               for m in net.modules())


def check_untouched(net: nn.Module) -> None:
    """``WrongAnswer`` if the student's call (made in eval mode) left a hook, training mode or a ``.grad``."""
    if _hooks_left(net):
        raise WrongAnswer("a hook is still on the model after your function returned: keep each handle and call "
                          "handle.remove() in a finally block")
    if net.training:
        raise WrongAnswer("the model was left in training mode: explaining must not change the model")
    if any(p.grad is not None for p in net.parameters()):
        raise WrongAnswer("the parameters' .grad were filled: you called .backward(), which computes a gradient for "
                          "every weight; torch.autograd.grad(score, wrt) computes only the one you need and leaves the "
                          "model untouched")


def check_mode_and_failure(run: Callable[[torch.Tensor], Any], net: nn.Module, x: torch.Tensor,
                           same_as_in_eval: Callable[[Any], bool]) -> None:
    """``WrongAnswer`` unless ``run(images)`` (the student's function on ``net``), called with ``net`` in
    training mode, gives what it gives in eval mode (dropout off) and leaves training mode on; and,
    when the forward pass fails (images with a channel too many), leaves no hook and the mode as it was."""
    net.train()
    try:
        with torch.random.fork_rng():
            torch.manual_seed(0)
            result = run(x)
        if not net.training:
            raise WrongAnswer("the model was in training mode before your call and in eval mode after it: remember "
                              "model.training at the start and restore it (model.train(was_training)) in finally")
        if not same_as_in_eval(result):
            raise WrongAnswer("called on a model in training mode, your result changes: dropout was on while you "
                              "explained. Call model.eval() before the forward pass (and restore the mode after)")
        bad = torch.zeros(2, x.shape[1] + 1, *x.shape[2:])  # one channel too many: the first convolution fails
        try:
            run(bad)
        except Exception:  # noqa: BLE001 - the forward pass is meant to fail; what matters is what it leaves behind
            pass
        if _hooks_left(net):
            raise WrongAnswer(f"when the forward pass fails (here: images with {bad.shape[1]} channels), your hooks "
                              "stay on the model and run in every later forward pass: remove them in a finally block")
        if not net.training:
            raise WrongAnswer("when the forward pass fails, the model is not put back in training mode: restore the "
                              "mode in the finally block, not after it")
    finally:
        net.eval()


def grad_cam(student: Callable) -> Verdict:
    """Check ``student(model, layer, x, targets=None) -> (raw (N, h, w), maps (N, H, W) in [0, 1])``
    against the package's ``GradCAM`` on a small network; name the mistake if there is one. The
    student's function must also leave the model as it was: no hook, its train/eval mode, no ``.grad``."""
    task = "Grad-CAM from hooks"

    def body() -> None:
        net, x = _tiny_net(), _images()
        reference = GradCAM(net, net[TARGET])(x, normalize=None)
        raw_want, maps_want = reference.raw, GradCAM(net, net[TARGET])(x).maps
        result = call(student, net, net[TARGET], x)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise WrongAnswer("return two things: raw (the signed maps) and maps (the display maps)")
        raw, maps = result
        check_untouched(net)
        check_shape(raw, raw_want, "raw")
        if raw.requires_grad:
            raise WrongAnswer("raw still carries the autograd graph (requires_grad): .detach() it, it is a picture")
        diagnose(raw, raw_want, _raw_mistakes(), lambda: (net, x), "raw")
        if isinstance(maps, torch.Tensor) and maps.shape == raw_want.shape:
            raise WrongAnswer(f"maps are at the layer's resolution {tuple(raw_want.shape[-2:])}, not the image's "
                              f"{tuple(x.shape[-2:])}: upsample cam with "
                              f"F.interpolate(cam[:, None], size=x.shape[-2:], "
                              f"mode='bilinear', align_corners=False)[:, 0]")
        check_shape(maps, maps_want, "maps")
        diagnose(maps, maps_want, _maps_mistakes(raw_want, x), lambda: (), "maps")
        predicted = net(x).argmax(1)
        # Never the predicted class, and another class for each image: an ignored targets, or targets[0]
        # used for every image, shows.
        targets = [(int(p) + 1 + i) % 5 for i, p in enumerate(predicted)]
        chosen = call(student, net, net[TARGET], x, targets)
        ignored = [
            Mistake("you explained the predicted class although targets was given: explain targets[i] for image i, "
                    "and the predicted class only when targets is None", lambda: raw_want),
            Mistake("you explained targets[0] for every image: image i's class is targets[i]",
                    lambda: GradCAM(net, net[TARGET])(x, targets=[targets[0]] * len(targets), normalize=None).raw),
        ]
        diagnose(chosen[0], GradCAM(net, net[TARGET])(x, targets=targets, normalize=None).raw, ignored, lambda: (),
                 "raw, for the classes in targets,")
        check_mode_and_failure(lambda images: call(student, net, net[TARGET], images), net, x,
                               lambda result: same(result[0], raw_want))

    return run_check("grad_cam", task, student, reference_grad_cam, body, "correct: the same maps as the package's "
                     "GradCAM, and the model left as it was")


def _maps_mistakes(raw: torch.Tensor, x: torch.Tensor) -> list[Mistake]:
    """The usual slips between the signed map and the display map, each made on the reference's raw map."""
    cam = raw.relu()
    batch_low, batch_high = _up(cam, x).amin(), _up(cam, x).amax()
    nearest = nn.functional.interpolate(cam[:, None], size=x.shape[-2:], mode="nearest")[:, 0]
    return [
        Mistake("cam kept the negative values: cam is ReLU(raw), so that only evidence *for* the class is shown",
                lambda: _minmax(_up(raw, x))),
        Mistake("you scaled the whole batch by one minimum and maximum: each image's map is scaled to [0, 1] on its "
                "own (amin and amax over dims (1, 2), keepdim=True)",
                lambda: (_up(cam, x) - batch_low) / (batch_high - batch_low)),
        Mistake("you upsampled with mode='nearest' (blocks): use mode='bilinear', align_corners=False",
                lambda: _minmax(nearest)),
        Mistake("you scaled to [0, 1] before upsampling: upsample first, then scale, so that each map spans [0, 1]",
                lambda: _up(_minmax(cam), x)),
        Mistake("you divided by the maximum only: subtract each map's minimum first, then divide by its range",
                lambda: _up(cam, x) / _up(cam, x).amax((1, 2), keepdim=True)),
        Mistake("you forgot the scaling to [0, 1]: subtract each map's minimum and divide by its range",
                lambda: _up(cam, x)),
    ]


def _up(raw: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return nn.functional.interpolate(raw[:, None], size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


def _minmax(maps: torch.Tensor) -> torch.Tensor:
    low, high = maps.amin((1, 2), keepdim=True), maps.amax((1, 2), keepdim=True)
    return (maps - low) / (high - low).clamp_min(1e-12)


def reference_grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, targets=None):
    """The package's Grad-CAM with the student's signature: (raw (N, h, w), maps (N, H, W) in [0, 1])."""
    result = GradCAM(model, layer)(x, targets=targets)
    return result.raw, result.maps


def _plus_plus_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Activations and gradients (3, 5, 4, 6) where every part of the formula shows: image 0 after a ReLU,
    image 1 signed (a layer before its ReLU), image 2 with gradients near 1e-3 (so g^2 is near 1e-6 and
    an epsilon added to the denominator shows) and activations near 1e3; exact zeros in the gradients, and a
    channel of image 0 whose denominator 2 g^2 + sum(A) g^3 is exactly 0 at a nonzero gradient (sum(A) = 4,
    g = -0.5)."""
    generator = torch.Generator().manual_seed(12)
    activations = torch.randn(3, 5, 4, 6, generator=generator)
    activations[0] = activations[0].relu()
    gradients = torch.randn(3, 5, 4, 6, generator=generator)
    gradients[2] *= 1e-3
    activations[2] *= 1e3  # so that image 2's map is as large as the others' (its weights are near 1e-3)
    gradients[:, :, 0, :2] = 0.0  # zero gradients: 0 / 0 without the guard
    activations[0, 1] = 0.0
    activations[0, 1, 1, 1] = 4.0  # sum(A) = 4 for channel 1 of image 0
    gradients[0, 1, 2, 3] = -0.5  # 2 * 0.25 + 4 * (-0.125) = 0 exactly
    return activations, gradients


def _plus_plus(a: torch.Tensor, g: torch.Tensor, factor: float = 2.0, epsilon: float = 0.0, positive: bool = True,
               total: str = "positions", weights: str = "sum", channels: str = "sum", power: str = "sum A, g^3",
               final_relu: bool = False) -> torch.Tensor:
    """Grad-CAM++'s map written out, with one step done another way (the typical slips)."""
    sums = {"positions": a.sum((2, 3), keepdim=True), "channels": a.sum(1, keepdim=True)}[total]
    third = {"sum A, g^3": sums * g.pow(3), "sum of A g^3": (a * g.pow(3)).sum((2, 3), keepdim=True)}[power]
    denominator = factor * g.pow(2) + third + epsilon
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    coefficient = g.pow(2) / safe if epsilon else torch.where(denominator != 0, g.pow(2) / safe, torch.zeros_like(g))
    w = coefficient * (g.relu() if positive else g)
    w = w.sum((2, 3), keepdim=True) if weights == "sum" else w.mean((2, 3), keepdim=True)
    raw = (w * a).sum(1) if channels == "sum" else (w * a).mean(1)
    return raw.relu() if final_relu else raw


def plus_plus_map(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """The package's Grad-CAM++ map (N, h, w) before the final ReLU: its weighted activations summed over the
    channels."""
    return GradCAMPlusPlus.weigh(activations, gradients).sum(1)


def gradcam_pp(student: Callable) -> Verdict:
    """Check ``student(activations (N, K, h, w), gradients (N, K, h, w)) -> (N, h, w)``: Grad-CAM++'s
    map before the final ReLU (the package's, ``plus_plus_map``), where a zero denominator gives a zero
    coefficient."""
    mistakes = [
        *(Mistake(f"you added a small number ({epsilon:g}) to every denominator, as pytorch-grad-cam does: where "
                  "gradients are small (image 2's are near 1e-3, so g^2 is near 1e-6) it changes the weights. Use the "
                  "formula exactly, and set the coefficient to 0 only where the denominator is 0 (torch.where)",
                  lambda a, g, e=epsilon: _plus_plus(a, g, epsilon=e)) for epsilon in (1e-5, 1e-6, 1e-7, 1e-8)),
        Mistake("the channel weight sums a * ReLU(g): you used the gradient itself, negative values included",
                lambda a, g: _plus_plus(a, g, positive=False)),
        Mistake("the sum of A in the denominator runs over the positions of channel k (dims (2, 3)), not over the "
                "channels", lambda a, g: _plus_plus(a, g, total="channels")),
        Mistake("the denominator is 2 g^2 + (sum over positions of A) * g^3, at each position: you summed A g^3 "
                "over the positions instead", lambda a, g: _plus_plus(a, g, power="sum of A g^3")),
        Mistake("the denominator is 2 g^2 + sum(A) g^3: the factor 2 is missing",
                lambda a, g: _plus_plus(a, g, factor=1.0)),
        Mistake("the channel weight w_k *sums* a * ReLU(g) over the positions; you averaged",
                lambda a, g: _plus_plus(a, g, weights="mean")),
        Mistake("the map *sums* the weighted channels, w_k A^k; you averaged them",
                lambda a, g: _plus_plus(a, g, channels="mean")),
        Mistake("return the map before the final ReLU: the package applies it for display",
                lambda a, g: _plus_plus(a, g, final_relu=True)),
    ]

    def body() -> None:
        activations, gradients = _plus_plus_case()
        want = plus_plus_map(activations, gradients)
        given = _plus_plus_case()
        got = call(student, *given)
        if not (torch.equal(given[0], activations) and torch.equal(given[1], gradients)):
            raise WrongAnswer("you changed the activations or the gradients you were given (an in-place operation, "
                              "such as clamp_ or relu_): compute new tensors and leave the inputs as they were")
        if isinstance(got, torch.Tensor) and got.shape == activations.shape[:2]:
            raise WrongAnswer("you returned the channel weights w_k (N, K): the map is the sum over k of w_k A^k, "
                              "(N, h, w)")
        if isinstance(got, torch.Tensor) and got.shape == activations.shape:
            raise WrongAnswer("you returned one map per channel: sum them over the channel dimension (dim=1)")
        check_shape(got, want, "the map")
        if not torch.isfinite(got).all():
            images = sorted({int(i) for i in (~torch.isfinite(got)).nonzero()[:, 0]})
            raise WrongAnswer(f"your map holds NaN or inf (images {images}): where g = 0, or where 2 g^2 + sum(A) g^3 "
                              "is 0 (image 0, channel 1), the coefficient is 0/0 or g^2/0. Set it to 0 there: "
                              "torch.where(denominator != 0, g2 / safe, 0), with safe a denominator that is never 0")
        diagnose(got, want, mistakes, _plus_plus_case, "the map")

    return run_check("gradcam_pp", "Grad-CAM++ from its formula", student, plus_plus_map, body,
                     "correct: the same map as the package's GradCAMPlusPlus")
