"""Checkers for notebook 08: the pointing game and the energy share."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..explain.judging.metrics import deletion_curve, energy_in_mask
from ..explain.judging.metrics import pointing_game as package_pointing_game
from .core import Accepted, Mistake, Verdict, WrongAnswer, call, check_shape, diagnose, run_check, same


def _pointing_case() -> tuple[torch.Tensor, torch.Tensor]:
    """Seven 4x5 maps and masks: a hit, a miss, a plateau whose first top pixel is in and last out, a
    flat map whose mask covers everything (still a miss), a peak whose mirror position (rows and columns
    swapped) lies outside the mask, the plateau mirrored (first out, last in), and a signed map whose
    deepest trough, outside, is larger than its peak, inside."""
    maps = torch.zeros(7, 4, 5)
    masks = torch.zeros(7, 4, 5, dtype=torch.bool)
    maps[0, 1, 2], masks[0, 1:3, 1:4] = 1.0, True  # hit
    maps[1, 3, 4], masks[1, 0:2, 0:2] = 1.0, True  # miss
    maps[2, 0, 0], maps[2, 3, 3], masks[2, 0, 0] = 0.9, 0.9, True  # plateau: one top pixel in, one out
    maps[3] += 0.5
    masks[3] = True  # flat map: points nowhere, even with the whole image as its mask
    maps[4, 2, 3], masks[4, 2, 3] = 1.0, True  # (2, 3) inside; (3, 2) is not
    maps[5, 0, 0], maps[5, 3, 3], masks[5, 3, 3] = 0.9, 0.9, True  # the plateau mirrored
    maps[6, 1, 1], masks[6, 1, 1], maps[6, 3, 0] = 1.0, True, -2.0  # signed: peak inside, deeper trough outside
    return maps, masks


def _top_pixels(maps: torch.Tensor, masks: torch.Tensor, rule: str, flat_is_miss: bool = True) -> torch.Tensor:
    """Hits by the top pixels: ``rule`` "all" (every one inside) or "any" (one inside)."""
    flat, inside = maps.flatten(1), masks.flatten(1)
    at_max = flat >= flat.max(1, keepdim=True).values
    hits = ~(at_max & ~inside).any(1) if rule == "all" else (at_max & inside).any(1)
    return hits & (flat.min(1).values < flat.max(1).values) if flat_is_miss else hits


def _unravelled(rows_cols: Callable, bounds: bool, flat_is_miss: bool) -> Callable:
    """Hits by the first top pixel, its flat index unravelled by ``rows_cols(index, h, w)`` (a wrong
    way round), clamped into the map or (``bounds``) a miss outside it, with or without the flat-map rule."""
    def hits(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        n, h, w = maps.shape
        flat = maps.flatten(1)
        rows, cols = rows_cols(flat.argmax(1), h, w)
        hit = masks[torch.arange(n), rows.clamp(0, h - 1), cols.clamp(0, w - 1)]
        hit = hit & (rows < h) & (cols < w) if bounds else hit
        return hit & (flat.min(1).values < flat.max(1).values) if flat_is_miss else hit
    return hits


_SWAPPED = (lambda i, h, w: (i % h, i // h), lambda i, h, w: (i // h, i % h), lambda i, h, w: (i % w, i // w))


def _last_argmax_hits(maps: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    flat = maps.flatten(1)
    top = flat.shape[1] - 1 - flat.flip(1).argmax(1)
    return masks.flatten(1)[torch.arange(len(maps)), top] & (flat.min(1).values < flat.max(1).values)


def _first_argmax_hits(maps: torch.Tensor, masks: torch.Tensor, flat_is_miss: bool = False) -> torch.Tensor:
    """The pointing game as most code plays it: a hit when the first maximum found (torch's argmax) is inside."""
    flat = maps.flatten(1)
    hits = masks.flatten(1).gather(1, flat.argmax(1)[:, None])[:, 0]
    return hits & (flat.min(1).values < flat.max(1).values) if flat_is_miss else hits


def pointing_game(student: Callable) -> Verdict:
    """Check ``student(maps (N, H, W), masks (N, H, W) bool) -> (N,) bool`` against the package's
    ``pointing_game`` (tolerance 0): a hit when every maximal pixel lies in the mask, a flat map a miss.
    The common convention, a hit when the first maximum found lies in the mask, is accepted as such: the
    verdict says where the two conventions part."""
    lowest = "you looked for the minimum: the game asks where the map is *highest*"
    one_pixel = ("a map with several top pixels (a plateau) is a hit only if *every* one of them lies in the mask, and "
                 "a flat map points nowhere (a miss); yours takes one top pixel")
    swapped = "you unravelled the flat index with rows and columns swapped: row = index // W, column = index % W"
    mistakes = [
        Mistake("you took one maximum over the whole batch: every image has its own peak",
                lambda m, k: k.flatten(1)[:, int(m.flatten().argmax()) % (m.shape[1] * m.shape[2])]),
        Mistake(lowest, lambda m, k: package_pointing_game(-m, k)),
        Mistake(lowest, lambda m, k: _first_argmax_hits(-m, k)),
        Mistake(one_pixel, _last_argmax_hits),
        Mistake("on a plateau (several pixels at the maximum) you counted a hit when *one* top pixel lies in the mask: "
                "every one of them must", lambda m, k: _top_pixels(m, k, "any")),
        Mistake("on a plateau you counted a hit when *one* top pixel lies in the mask (every one must), and a flat map "
                "(every pixel equal) points nowhere: it is a miss",
                lambda m, k: _top_pixels(m, k, "any", flat_is_miss=False)),
        Mistake("a flat map points nowhere: it is a miss even when its mask covers the whole image",
                lambda m, k: _top_pixels(m, k, "all", flat_is_miss=False)),
        *(Mistake(swapped, _unravelled(form, bounds, flat_is_miss)) for form in _SWAPPED
          for bounds in (True, False) for flat_is_miss in (True, False)),
        Mistake("you compared |map|: the game points at the *highest* value, and a negative one is evidence against",
                lambda m, k: package_pointing_game(m.abs(), k)),
        Mistake("a hit is a top pixel *inside* the mask; you tested outside it",
                lambda m, k: package_pointing_game(m, ~k)),
    ]

    def body() -> None:
        want = package_pointing_game(*_pointing_case())
        got = call(student, *_pointing_case())
        check_shape(got, want, "hits")
        got = torch.as_tensor(got).bool()
        for flat_is_miss in (False, True):
            common = _first_argmax_hits(*_pointing_case(), flat_is_miss=flat_is_miss)
            if torch.equal(got, common) and not torch.equal(got, want):
                parted = (common != want).nonzero()[:, 0].tolist()
                raise Accepted(
                    "first maximum",
                    "under the convention most code uses: a hit when the first maximum found (argmax) lies in the mask"
                    + (", a flat map a miss" if flat_is_miss else "") + ". This course's pointing_game is stricter: "
                    "on a plateau *every* top pixel must lie in the mask (a coarse map gets no benefit of the doubt, "
                    "and the answer does not hang on the order the pixels are scanned)"
                    + ("" if flat_is_miss else ", and a flat map is a miss")
                    + f". On the checker's {len(want)} maps the two conventions part on images {parted}; "
                    "the notebook keeps yours and counts where they part on the fish")
        diagnose(got, want, mistakes, _pointing_case, "hits")

    return run_check("pointing_game", "the pointing game", student, lambda m, k: package_pointing_game(m, k), body,
                     "correct: the same hits as the package's pointing_game")


def _energy_case() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    maps = torch.rand(4, 5, 6, generator=generator) - 0.2  # some negative values, as a signed map has
    maps[2] -= 0.6  # mostly negative: its plain sum is below 0, its positive mass is not 0
    maps[3] = 0.0  # an empty map
    masks = torch.rand(4, 5, 6, generator=generator) > 0.6
    return maps, masks


def energy_share(student: Callable) -> Verdict:
    """Check ``student(maps (N, H, W), masks (N, H, W) bool) -> (N,)``: the share of each map's
    positive mass inside its mask (the package's ``energy_in_mask``)."""
    def inside(m, k):
        return (m.clamp(min=0) * k).sum((1, 2))

    def share(part, total, empty=0.0):
        return torch.where(total > 0, part / total.clamp_min(1e-12), torch.full_like(total, empty))

    positive = lambda m: m.clamp(min=0)  # noqa: E731
    mistakes = [
        Mistake("divide by each map's total: the energy is a *share* of the map, between 0 and 1",
                lambda m, k: inside(m, k)),
        Mistake("clip negative values to 0 first: a signed map's negative part is no energy, and with it the share "
                "can leave [0, 1]", lambda m, k: torch.nan_to_num((m * k).sum((1, 2)) / m.sum((1, 2)))),
        Mistake("that is the mean heat *inside* the mask; the energy is the share of the whole map's heat that lies "
                "inside", lambda m, k: inside(m, k) / k.sum((1, 2)).clamp_min(1)),
        Mistake("one share per image: divide each image's inside sum by that image's own total, not the batch's",
                lambda m, k: inside(m, k) / m.clamp(min=0).sum()),
        Mistake("clip negative values to 0 first: a signed map's negative part is no energy",
                lambda m, k: share((m * k).sum((1, 2)), m.sum((1, 2)))),
        *(Mistake("clip the map once, before both sums: the inside part and the total", form) for form in (
            lambda m, k: share(inside(m, k), m.sum((1, 2))),  # guarded by total > 0, or by nan_to_num:
            lambda m, k: torch.nan_to_num(inside(m, k) / m.sum((1, 2))),
            lambda m, k: share((m * k).sum((1, 2)), positive(m).sum((1, 2))),
            lambda m, k: torch.nan_to_num((m * k).sum((1, 2)) / positive(m).sum((1, 2))))),
        Mistake("negative values are no energy: clamp(min=0), not abs()",
                lambda m, k: share((m.abs() * k).sum((1, 2)), m.abs().sum((1, 2)))),
        Mistake("an all-zero map has no energy anywhere: give it 0, not 1",
                lambda m, k: share(inside(m, k), positive(m).sum((1, 2)), empty=1.0)),
        Mistake("test the *clipped* total: a map whose plain sum is negative can still have positive energy",
                lambda m, k: torch.where(m.sum((1, 2)) > 0, share(inside(m, k), positive(m).sum((1, 2))),
                                         torch.zeros(len(m)))),
        Mistake("that is the share *outside* the mask", lambda m, k: share(inside(m, ~k), positive(m).sum((1, 2)))),
    ]

    def body() -> None:
        want = energy_in_mask(*_energy_case())
        got = call(student, *_energy_case())
        check_shape(got, want, "the shares")
        if torch.isnan(torch.as_tensor(got, dtype=torch.float32)).any():
            raise WrongAnswer("an all-zero map gives NaN (0 / 0): it has no energy anywhere, so give it 0")
        diagnose(got, want, mistakes, _energy_case, "the shares")

    return run_check("energy_share", "the energy share", student, energy_in_mask, body,
                     "correct: the same shares as the package's energy_in_mask")


def _ranks(maps: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W): each pixel's place in its map's order, 0 for the hottest (ties by position)."""
    n, h, w = maps.shape
    order = maps.flatten(1).argsort(dim=1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(h * w).expand(n, -1))
    return rank.view(n, 1, h, w)


def _deletion_case(ties: bool = False):
    """The tiny network with a sharper head (so that one pixel more or less moves the probability
    visibly), three steps of 80 / 3 pixels (so rounding, truncating and rounding up differ), the blurred
    images as the baseline (not zeros, so that a baseline ignored shows) and a target per image that is
    neither its predicted class nor the others' target. Maps of distinct values, or (``ties``) of four
    values only, as a coarse or ReLU'd map has, where the order of tied pixels matters."""
    from ..explain.judging.metrics import make_baseline
    from .cams import _images, _tiny_net

    net, images = _tiny_net(), _images()
    with torch.no_grad():
        net[-1].weight.mul_(8.0)
        predicted = net(images).argmax(1)
    maps = torch.rand(images.shape[0], *images.shape[-2:], generator=torch.Generator().manual_seed(9))
    maps = (maps * 4).floor() / 3 if ties else maps
    targets = torch.tensor([(int(p) + 1 + i) % 5 for i, p in enumerate(predicted)])
    return net, images, maps, targets, make_baseline(images, "blur"), 3


def _curve_variant(order: str = "hottest", replace: str = "hottest", score: str = "probability",
                   which: str = "target", counts: str = "round", compare: str = "<", fill: str = "baseline",
                   model_on: str = "removed", ranks: str = "inverted") -> Callable:
    """The reference deletion loop with one step done another way (the typical slips)."""
    def curve(model, images, maps, targets, baseline, steps):
        n, _, h, w = images.shape
        rank = _ranks(maps if order == "hottest" else -maps)
        if ranks == "order":  # the argsort itself: the index of the k-th hottest pixel, not pixel p's place
            rank = maps.flatten(1).argsort(dim=1, descending=True, stable=True).view(n, 1, h, w)
        chosen = {"target": targets, "first target": targets[:1].expand(n)}.get(which)
        shares = torch.linspace(0, 1, steps + 1) * h * w
        ks = {"round": torch.round(shares), "floor": torch.floor(shares + 1e-6),
              "ceil": torch.ceil(shares - 1e-6)}[counts]
        fill_with = baseline if fill == "baseline" else torch.zeros_like(images)
        probs = []
        with torch.no_grad():
            original = model(images)
            for k in ks.long().tolist():
                removed = rank < k if compare == "<" else rank <= k
                x = (torch.where(removed, fill_with, images) if replace == "hottest"
                     else torch.where(removed, images, fill_with))
                out = model(x) if model_on == "removed" else original
                scores = {"probability": out.softmax(1), "over the batch": out.softmax(0), "logit": out}[score]
                classes = chosen if chosen is not None else (original if which == "predicted" else out).argmax(1)
                probs.append(scores.gather(1, classes[:, None])[:, 0])
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
        Mistake("you followed the class each step's batch is predicted as: follow targets, the class whose map it is",
                _curve_variant(which="predicted per step")),
        Mistake("you followed targets[0] for every image: image i's class is targets[i]",
                _curve_variant(which="first target")),
        Mistake("k = round(s / steps * H * W): you truncated (floor, int() or .long()) instead of rounding",
                _curve_variant(counts="floor")),
        Mistake("k = round(s / steps * H * W): you rounded up", _curve_variant(counts="ceil")),
        Mistake("the k hottest pixels are those of rank < k (rank 0 is the hottest); rank <= k removes one too many",
                _curve_variant(compare="<=")),
        Mistake("you replaced the pixels by 0: use the baseline you are given, torch.where(rank < k, baseline, images)",
                _curve_variant(fill="zero")),
        Mistake("take the softmax over the classes (dim=1), not over the batch",
                _curve_variant(score="over the batch")),
        Mistake("you ran the model on the original images at every step: run it on the images with the pixels removed",
                _curve_variant(model_on="original")),
        Mistake("you used the argsort itself as the ranks: order[i] is the *index* of the i-th hottest pixel, not "
                "pixel i's place. Invert it: rank.scatter_(1, order, torch.arange(h * w).expand(n, -1))",
                _curve_variant(ranks="order")),
    ]

    def body() -> None:
        net, images, maps, targets, baseline, steps = _deletion_case()
        want = deletion_curve(net, images, maps, targets, steps, baseline).probs
        got = call(student, *_deletion_case())
        if isinstance(got, torch.Tensor) and got.shape == (len(images), steps):
            raise WrongAnswer(f"{steps} steps give {steps + 1} points: record the probability before anything is "
                              "removed (k = 0) too")
        check_shape(got, want, "the curves")
        if got.requires_grad:
            raise WrongAnswer("your curves carry a gradient graph: run the loop under torch.no_grad(), as it only "
                              "measures (it would keep every step's activations in memory)")
        diagnose(got, want, mistakes, _deletion_case, "the curves")
        net, images, maps, targets, baseline, steps = _deletion_case(ties=True)
        tied = call(student, *_deletion_case(ties=True))
        if not same(tied, deletion_curve(net, images, maps, targets, steps, baseline).probs):
            raise WrongAnswer("right on maps of distinct values, wrong on maps with ties (a ReLU'd or upsampled map "
                              "has many): break ties by position, argsort(dim=1, descending=True, stable=True), not "
                              "topk or an unstable sort, whose order among equal values is anyone's guess")

    def reference(model, images, maps, targets, baseline, steps):
        return deletion_curve(model, images, maps, targets, steps, baseline).probs

    return run_check("deletion_loop", "the deletion loop", student, reference, body,
                     "correct: the same curves as the package's deletion_curve")
