"""Checkers for notebook 05: Grad-CAM from hooks, and LayerCAM from its formula."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..explain.cam import GradCAM, LayerCAM
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check


TARGET = 3  # the layer the checks explain: the second ReLU of the tiny network, at half the input's resolution


def _tiny_net() -> nn.Module:
    """A small CNN whose head is not GAP → linear, so its gradients vary over space (as in most
    networks), seeded so every check sees the same weights. Its target layer is coarser than the
    input (4 × 5 for 8 × 10 images), so a map that was never upsampled cannot pass. Returns it in eval mode."""
    with torch.random.fork_rng():
        torch.manual_seed(5)
        # The ReLU after the last convolution makes the gradient at the target layer differ from image to
        # image (after a purely linear rest it would be one per class), so a batch-wide alpha shows.
        net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2, padding=1),
                            nn.ReLU(), nn.Conv2d(8, 4, 3, padding=1), nn.ReLU(), nn.Flatten(),
                            nn.Linear(4 * 4 * 5, 5, bias=False))
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


def grad_cam(student: Callable) -> Verdict:
    """Check ``student(model, layer, x, targets=None) -> (raw (N, h, w), maps (N, H, W) in [0, 1])``
    against the package's ``GradCAM`` on a small network; name the mistake if there is one."""
    task = "Grad-CAM from hooks"

    def body() -> None:
        net, x = _tiny_net(), _images()
        reference = GradCAM(net, net[TARGET])(x, normalize=None)
        raw_want, maps_want = reference.raw, GradCAM(net, net[TARGET])(x).maps
        result = call(student, net, net[TARGET], x)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise WrongAnswer("return two things: raw (the signed maps) and maps (the display maps)")
        raw, maps = result
        if net[TARGET]._forward_hooks:
            raise WrongAnswer("a forward hook is still on the layer: remove it (handle.remove()) in a finally block")
        if net.training:
            raise WrongAnswer("the model was left in training mode: explaining must not change the model")
        check_shape(raw, raw_want, "raw")
        diagnose(raw, raw_want, _raw_mistakes(), lambda: (net, x), "raw")
        if isinstance(maps, torch.Tensor) and maps.shape == raw_want.shape:
            raise WrongAnswer(f"maps are at the layer's resolution {tuple(raw_want.shape[-2:])}, not the image's "
                              f"{tuple(x.shape[-2:])}: upsample cam with F.interpolate(cam[:, None], size=x.shape[-2:], "
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

    return run_check(task, student, reference_grad_cam, body, "correct: the same maps as the package's GradCAM")


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


def layercam(student: Callable) -> Verdict:
    """Check ``student(activations (N, K, h, w), gradients (N, K, h, w)) -> (N, h, w)``, LayerCAM's
    map before display (the package's ``LayerCAM.combine``)."""
    task = "LayerCAM from its formula"

    def case() -> tuple[torch.Tensor, torch.Tensor]:
        generator = torch.Generator().manual_seed(11)
        activations = torch.randn(2, 5, 4, 6, generator=generator)
        activations[0] = activations[0].relu()  # image 0 after a ReLU; image 1 signed (a layer before its ReLU),
        return activations, torch.randn(2, 5, 4, 6, generator=generator)  # so where the ReLU goes matters

    mistakes = [
        Mistake("you kept the negative gradients too (that is HiResCAM): LayerCAM weights each position by "
                "ReLU(gradient)", lambda a, g: (g * a).sum(1)),
        Mistake("you averaged the gradient over space first, as Grad-CAM does: LayerCAM keeps one weight per "
                "position", lambda a, g: (g.mean((2, 3), keepdim=True) * a).sum(1)),
        Mistake("you averaged the positive gradients over space: LayerCAM keeps ReLU(gradient) at each position",
                lambda a, g: (g.relu().mean((2, 3), keepdim=True) * a).sum(1)),
        Mistake("you averaged over the channels: LayerCAM *sums* the weighted channels",
                lambda a, g: (g.relu() * a).mean(1)),
        Mistake("you applied the ReLU to the product: LayerCAM clips only the gradient, ReLU(gradients) * activations",
                lambda a, g: (g * a).relu().sum(1)),
        Mistake("return the map before the final ReLU: the package applies it for display",
                lambda a, g: (g.relu() * a).sum(1).relu()),
        Mistake("the ReLU goes on the gradients, not on the activations", lambda a, g: (g * a.relu()).sum(1)),
    ]

    def body() -> None:
        activations, gradients = case()
        want = LayerCAM.combine(activations, gradients)
        got = call(student, *case())
        if isinstance(got, torch.Tensor) and got.shape == activations.shape:
            raise WrongAnswer("you returned one map per channel: sum them over the channel dimension (dim=1)")
        check_shape(got, want, "the map")
        diagnose(got, want, mistakes, case, "the map")

    return run_check(task, student, LayerCAM.combine, body, "correct: the same map as the package's LayerCAM")
