"""Checkers for notebook 08: the pointing game and the energy share."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..explain.metrics import deletion_curve, energy_in_mask
from ..explain.metrics import pointing_game as package_pointing_game
from .core import Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check


def _pointing_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Five 4x5 maps and masks: a hit, a miss, a plateau half outside, a flat map, and a peak whose
    mirror position (rows and columns swapped) lies outside the mask."""
    maps = torch.zeros(5, 4, 5)
    masks = torch.zeros(5, 4, 5, dtype=torch.bool)
    maps[0, 1, 2], masks[0, 1:3, 1:4] = 1.0, True  # hit
    maps[1, 3, 4], masks[1, 0:2, 0:2] = 1.0, True  # miss
    maps[2, 0, 0], maps[2, 3, 3], masks[2, 0, 0] = 0.9, 0.9, True  # plateau: one top pixel in, one out
    maps[3] += 0.5
    masks[3, 0, 0] = True  # flat map: points nowhere
    maps[4, 2, 3], masks[4, 2, 3] = 1.0, True  # (2, 3) inside; (3, 2) is not
    return maps, masks


def _first_argmax_hits(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    top = maps.flatten(1).argmax(1)
    return masks.flatten(1).gather(1, top[:, None])[:, 0]


def pointing_game(student: Callable) -> Verdict:
    """Check ``student(maps (N, H, W), masks (N, H, W) bool) -> (N,) bool`` against the package's
    ``pointing_game`` (tolerance 0): a hit when every maximal pixel lies in the mask, a flat map a miss."""
    def swapped(maps, masks):
        n, h, w = maps.shape
        top = maps.flatten(1).argmax(1)
        rows, cols = top % h, top // h  # unravelled with the sides the wrong way round
        inside = (rows < h) & (cols < w)
        return inside & masks[torch.arange(n), rows.clamp(max=h - 1), cols.clamp(max=w - 1)]

    def any_top_inside(maps, masks):
        flat = maps.flatten(1)
        at_max = flat >= flat.max(1, keepdim=True).values
        return (at_max & masks.flatten(1)).any(1) & (flat.min(1).values < flat.max(1).values)

    lowest = "you looked for the minimum: the game asks where the map is *highest*"
    mistakes = [
        Mistake(lowest, lambda m, k: package_pointing_game(-m, k)),
        Mistake(lowest, lambda m, k: _first_argmax_hits(-m, k)),
        Mistake("a map with several top pixels (a plateau) is a hit only if *every* one of them lies in the mask, and "
                "a flat map points nowhere (a miss); yours takes the first top pixel", _first_argmax_hits),
        Mistake("a flat map (every pixel equal) points nowhere: it is a miss", any_top_inside),
        Mistake("you unravelled the flat index with rows and columns swapped: row = index // W, column = index % W",
                swapped),
        Mistake("you took one maximum over the whole batch: every image has its own peak",
                lambda m, k: k.flatten(1)[:, int(m.flatten().argmax()) % (m.shape[1] * m.shape[2])]),
    ]

    def body() -> None:
        want = package_pointing_game(*_pointing_case())
        got = call(student, *_pointing_case())
        check_shape(got, want, "hits")
        diagnose(torch.as_tensor(got).bool(), want, mistakes, _pointing_case, "hits")

    return run_check("the pointing game", student, lambda m, k: package_pointing_game(m, k), body,
                     "correct: the same hits as the package's pointing_game")


def _energy_case() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    maps = torch.rand(4, 5, 6, generator=generator) - 0.2  # some negative values, as a signed map has
    maps[3] = 0.0  # an empty map
    masks = torch.rand(4, 5, 6, generator=generator) > 0.6
    return maps, masks


def energy_share(student: Callable) -> Verdict:
    """Check ``student(maps (N, H, W), masks (N, H, W) bool) -> (N,)``: the share of each map's
    positive mass inside its mask (the package's ``energy_in_mask``)."""
    def inside(m, k):
        return (m.clamp(min=0) * k).sum((1, 2))

    mistakes = [
        Mistake("divide by each map's total: the energy is a *share* of the map, between 0 and 1",
                lambda m, k: inside(m, k)),
        Mistake("clip negative values to 0 first: a signed map's negative part is no energy, and with it the share "
                "can leave [0, 1]", lambda m, k: torch.nan_to_num((m * k).sum((1, 2)) / m.sum((1, 2)))),
        Mistake("that is the mean heat *inside* the mask; the energy is the share of the whole map's heat that lies "
                "inside", lambda m, k: inside(m, k) / k.sum((1, 2)).clamp_min(1)),
        Mistake("one share per image: divide each image's inside sum by that image's own total, not the batch's",
                lambda m, k: inside(m, k) / m.clamp(min=0).sum()),
    ]

    def body() -> None:
        want = energy_in_mask(*_energy_case())
        got = call(student, *_energy_case())
        check_shape(got, want, "the shares")
        if torch.isnan(torch.as_tensor(got, dtype=torch.float32)).any():
            raise WrongAnswer("an all-zero map gives NaN (0 / 0): it has no energy anywhere, so give it 0")
        diagnose(got, want, mistakes, _energy_case, "the shares")

    return run_check("the energy share", student, energy_in_mask, body,
                     "correct: the same shares as the package's energy_in_mask")


def _ranks(maps: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): each pixel's place in its map's order, 0 for the hottest (ties by position)."""
    n, h, w = maps.shape
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w).expand(n, -1))
    return rank.view(n, 1, h, w)


def _deletion_case():
    from .cams import _images, _tiny_net

    net, images = _tiny_net(), _images()
    maps = torch.rand(images.shape[0], *images.shape[-2:], generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        targets = net(images).argmin(1)  # not the predicted classes: the curve follows the class it is asked for
    return net, images, maps, targets, torch.zeros_like(images), 4


def _curve_variant(order: str = "hottest", replace: str = "hottest", score: str = "probability",
                   which: str = "target") -> Callable:
    def curve(model, images, maps, targets, baseline, steps):
        n, _, h, w = images.shape
        rank = _ranks(maps if order == "hottest" else -maps)
        chosen = targets if which == "target" else model(images).argmax(1)
        probs = []
        with torch.no_grad():
            for k in torch.round(torch.linspace(0, 1, steps + 1) * h * w).long().tolist():
                x = torch.where(rank < k, baseline, images) if replace == "hottest" else torch.where(rank < k, images, baseline)
                out = model(x)
                out = out.softmax(1) if score == "probability" else out
                probs.append(out.gather(1, chosen[:, None])[:, 0])
        return torch.stack(probs, 1)
    return curve


def deletion_loop(student: Callable) -> Verdict:
    """Check ``student(model, images, maps, targets, baseline, steps) -> (N, steps + 1)``: the
    probability of each image's target class as its hottest pixels, in ``steps`` equal shares, become
    the baseline (the package's ``deletion_curve``)."""
    mistakes = [
        Mistake("you removed the coldest pixels first: deletion removes the *hottest* first, so that a faithful "
                "map makes the probability fall fast", _curve_variant(order="coldest")),
        Mistake("you kept the hottest pixels and replaced the rest: that is insertion, run backwards; deletion "
                "replaces the hottest k by the baseline", _curve_variant(replace="rest")),
        Mistake("you recorded the logit: the curve is the softmax *probability* of the class, between 0 and 1",
                _curve_variant(score="logit")),
        Mistake("you followed the predicted class: follow targets, the class whose map it is",
                _curve_variant(which="predicted")),
    ]

    def body() -> None:
        net, images, maps, targets, baseline, steps = _deletion_case()
        want = deletion_curve(net, images, maps, targets, steps, baseline).probs
        got = call(student, *_deletion_case())
        if isinstance(got, torch.Tensor) and got.shape == (len(images), steps):
            raise WrongAnswer(f"{steps} steps give {steps + 1} points: record the probability before anything is "
                              "removed (k = 0) too")
        check_shape(got, want, "the curves")
        diagnose(got, want, mistakes, _deletion_case, "the curves")

    def reference(model, images, maps, targets, baseline, steps):
        return deletion_curve(model, images, maps, targets, steps, baseline).probs

    return run_check("the deletion loop", student, reference, body,
                     "correct: the same curves as the package's deletion_curve")
