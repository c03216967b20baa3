"""Checker for notebook 07: guided backpropagation with backward hooks on every ReLU."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from ..explain.guided import GuidedBackprop
from .cams import check_mode_and_failure, check_untouched
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check, same


class _GuidedNet(nn.Module):
    """A small seeded CNN whose ReLUs are ``nn.ReLU`` modules, not in place, one of them called twice
    (as in a torchvision BasicBlock), with dropout before the classifier (so explaining in training
    mode shows). Eval mode."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():
            torch.manual_seed(7)
            self.conv1, self.conv2 = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(6, 6, 3, padding=1)
            self.conv3 = nn.Conv2d(6, 4, 3, stride=2, padding=1)
            self.relu, self.relu2 = nn.ReLU(), nn.ReLU()
            self.dropout, self.fc = nn.Dropout(0.5), nn.Linear(4 * 4 * 5, 5)
        self.eval()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv2(self.relu(self.conv1(x))))  # the same ReLU module, twice
        return self.fc(self.dropout(self.relu2(self.conv3(x)).flatten(1)))


def _images() -> torch.Tensor:
    return torch.randn(3, 3, 8, 10, generator=torch.Generator().manual_seed(4))


def _hooked(net: nn.Module, x: torch.Tensor, targets=None, rule: str = "guided", which: str = "every",
            score: str = "logit") -> torch.Tensor:
    """The input gradient with backward hooks on ``which`` ReLUs applying ``rule``: the typical slips."""
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    relus = {"every": relus, "first": relus[:1], "last": relus[-1:], "none": []}[which]

    def hook(module, grad_input, grad_output):
        if rule == "guided":
            return (grad_input[0].clamp(min=0),)
        return (grad_output[0].clamp(min=0),)  # deconvnet: the ReLU's own mask (f > 0) skipped

    handles = [m.register_full_backward_hook(hook) for m in relus]
    try:
        x = x.detach().clone().requires_grad_(True)
        logits = net(x)
        scores = logits.softmax(1) if score == "probability" else logits
        chosen = logits.argmax(1) if targets is None else torch.as_tensor(targets)
        (gradient,) = torch.autograd.grad(scores.gather(1, chosen[:, None]).sum(), x)
    finally:
        for handle in handles:
            handle.remove()
    return gradient


def reference_guided_backprop(model: nn.Module, x: torch.Tensor, targets=None) -> torch.Tensor:
    """The package's guided backpropagation with the student's signature: (N, 3, H, W)."""
    return GuidedBackprop(model)(x, targets).gradients


def guided_backprop(student: Callable) -> Verdict:
    """Check ``student(model, x, targets=None) -> (N, C, H, W)``: the input gradient of each image's class
    score, every ``nn.ReLU`` passing it back by the guided rule, with every hook removed (even when the
    forward pass fails) and the model's mode restored."""
    mistakes = [
        Mistake("that is the plain input gradient: your hooks changed nothing. A full backward hook changes the "
                "gradient only by *returning* the new grad_input, as a tuple: return (grad_input[0].clamp(min=0),)",
                lambda net, x: _hooked(net, x, which="none")),
        Mistake("you clamped grad_output, the signal from above, and returned it: that skips the ReLU's own mask "
                "(f > 0) and is the deconvnet rule. Clamp grad_input, which already carries (f > 0)",
                lambda net, x: _hooked(net, x, rule="deconvnet")),
        Mistake("you hooked only the first ReLU: every nn.ReLU in model.modules() needs the hook",
                lambda net, x: _hooked(net, x, which="first")),
        Mistake("you hooked only the last ReLU: every nn.ReLU in model.modules() needs the hook",
                lambda net, x: _hooked(net, x, which="last")),
        Mistake("you differentiated the softmax probability: guided backprop, like Grad-CAM, explains the logit y^c",
                lambda net, x: _hooked(net, x, score="probability")),
        Mistake("you returned |gradient|: return the signed gradient (a saliency map takes |.| later, for display)",
                lambda net, x: _hooked(net, x).abs()),
        Mistake("you multiplied the gradient by the image (that is gradient x input): return the gradient itself",
                lambda net, x: _hooked(net, x) * x),
    ]

    def body() -> None:
        net, x = _GuidedNet(), _images()
        want = reference_guided_backprop(net, x)
        got = call(student, net, x)
        check_untouched(net)
        if x.requires_grad or x.grad is not None:
            raise WrongAnswer("you changed the images you were given (requires_grad or .grad): work on a copy, "
                              "x = x.detach().clone().requires_grad_(True)")
        if isinstance(got, torch.Tensor) and got.shape == (x.shape[0], *x.shape[2:]):
            raise WrongAnswer("you returned one map per image (N, H, W): return the gradient for every colour "
                              "channel, (N, C, H, W), as x is")
        check_shape(got, want, "the gradient")
        if got.requires_grad:
            raise WrongAnswer("the gradient still carries an autograd graph: return what torch.autograd.grad(score, x) "
                              "gives (create_graph=False, the default), or .detach() it")
        diagnose(got, want, mistakes, lambda: (net, x), "the gradient")
        predicted = net(x).argmax(1)
        targets = [(int(p) + 1 + i) % 5 for i, p in enumerate(predicted)]  # never the predicted class
        ignored = [
            Mistake("you explained the predicted class although targets was given: explain targets[i] for image i",
                    lambda: want),
            Mistake("you explained targets[0] for every image: image i's class is targets[i]",
                    lambda: reference_guided_backprop(net, x, [targets[0]] * len(targets))),
        ]
        diagnose(call(student, net, x, targets), reference_guided_backprop(net, x, targets), ignored, lambda: (),
                 "the gradient, for the classes in targets,")
        check_mode_and_failure(lambda images: call(student, net, images), net, x, lambda result: same(result, want))

    return run_check("guided_backprop", "guided backpropagation with hooks", student, reference_guided_backprop,
                     body, "correct: the same gradients as the package's GuidedBackprop, every hook removed")
