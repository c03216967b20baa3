"""The nuisance variables of one synthetic photo, and how they are drawn at random.

A ``PhotoParams`` says where the fish lies on the canvas (shift, scale, rotation, flip), its
colours, the water's background, the light and the camera, and what spoils the photo (a
degradation of its evidence, distractors in the water, a shortcut sticker). The canvas's shorter
side spans [-1, 1]; the fish is measured in body units, ``u`` along it and ``v`` across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Tail tip at u = -1.4, head at +1: the centre of the fish's extent along u.
U_CENTRE = -0.2

FISH_COLOURS = np.array(
    [
        [0.62, 0.66, 0.70],  # silver
        [0.45, 0.52, 0.40],  # olive
        [0.50, 0.42, 0.34],  # brown
        [0.40, 0.50, 0.62],  # blue-grey
        [0.58, 0.56, 0.46],  # khaki
        [0.36, 0.40, 0.44],  # slate
    ],
    dtype=np.float32,
)
BACKGROUND_COLOURS = np.array(
    [
        [0.20, 0.40, 0.55],  # open water
        [0.16, 0.45, 0.42],  # green water
        [0.70, 0.64, 0.50],  # sand
        [0.55, 0.58, 0.60],  # concrete tank
        [0.12, 0.22, 0.32],  # deep water
    ],
    dtype=np.float32,
)


@dataclass(frozen=True)
class PhotoParams:
    """The nuisance variables of one photo: where the fish is, how it looks, how it was shot."""

    cx: float  # fish centre, canvas units (the shorter side spans [-1, 1])
    cy: float
    scale: float  # canvas units per body unit
    angle: float  # radians, counter-clockwise
    flipped: bool  # head on the left
    body_colour: tuple[float, float, float]
    pattern_darkness: float  # dark traits are the body colour times this
    background: tuple[float, float, float]
    waves: tuple[tuple[float, float, float, float], ...]  # (freq, direction, phase, amplitude)
    bubbles: tuple[tuple[float, float, float], ...]  # (x, y, radius) in canvas units
    gain: float
    light_direction: float
    light_slope: float
    cast: tuple[float, float, float]  # per-channel colour cast
    blur: float  # Gaussian sigma in output pixels
    noise: float  # standard deviation of additive noise, in [0, 1] intensity
    noise_seed: int
    marker: tuple[float, float, int] | None  # (x, y, class index) of a shortcut sticker
    marker_size: float = 0.08  # half the sticker's side, in canvas units
    # (kind, strength in (0, 1], pick in [0, 1): which evidence pixel an occluder covers, angle): DEGRADATIONS
    degradation: tuple[str, float, float, float] | None = None
    # Objects in the water away from the fish: (x, y, radius, pattern index, (r, g, b), angle) each
    distractors: tuple[tuple[float, float, float, int, tuple[float, float, float], float], ...] = ()


# What can spoil a view's evidence in one photo. The first three hide part of the fish behind something
# (a strand of weed, another fish passing in front, glare on the water); murk takes the contrast of the whole
# photo, motion blur smears it along the image's rows. Murk and motion blur change no mask.
DEGRADATIONS = ("weed", "fish", "glare", "murk", "motion_blur")
OCCLUSIONS = DEGRADATIONS[:3]
# The textures distractors wear: a trait's kind of texture, away from the fish.
DISTRACTOR_PATTERNS = ("stripes", "spots", "rings")
# A distractor's radius (its ellipse's longer half-axis), canvas units: about as large as a fish's trait
# region, so that a detector of textures finds as much on it as on the fish.
DISTRACTOR_RADIUS = (0.2, 0.32)
_DISTRACTOR_MARGIN = 0.03  # canvas units between a distractor and the fish's box: anti-aliasing and blur
# How far the fish reaches across its body in each view (fins included), body units.
FISH_REACH = {"side": 0.62, "back": 0.5, "belly": 0.5}


def sample_degradation(rng: np.random.Generator, share: float) -> tuple[str, float, float, float] | None:
    """With probability ``share``, one degradation of a photo: (kind, strength, pick, angle); else None."""
    if rng.random() >= share:
        return None
    kind = DEGRADATIONS[int(rng.integers(len(DEGRADATIONS)))]
    return kind, float(rng.uniform(0.4, 1.0)), float(rng.random()), float(rng.uniform(0, np.pi))


def sample_distractors(rng: np.random.Generator, params: PhotoParams, most: int, aspect: float = 1.0) -> tuple:
    """0 to ``most`` objects in the water, each wearing a trait-like texture (``DISTRACTOR_PATTERNS``) in a dark
    colour. Each lies wholly on the canvas and clear of the box that holds the fish (tail and fins included),
    checked at the size it is drawn; one that finds no such place in a few draws is left out."""
    half_w, half_h = _canvas_half_extent(aspect)
    found = []
    for _ in range(int(rng.integers(0, most + 1))):
        radius = float(rng.uniform(*DISTRACTOR_RADIUS))  # below 1: it fits the canvas, whose shorter side is 2
        for _try in range(30):
            x = float(rng.uniform(-half_w + radius, half_w - radius))
            y = float(rng.uniform(-half_h + radius, half_h - radius))
            if _clearance(params, x, y) > radius + _DISTRACTOR_MARGIN:
                colour = FISH_COLOURS[rng.integers(len(FISH_COLOURS))] * float(rng.uniform(0.3, 0.5))
                found.append((x, y, radius, int(rng.integers(len(DISTRACTOR_PATTERNS))),
                              tuple(float(c) for c in colour), float(rng.uniform(0, np.pi))))
                break
    return tuple(found)


def fish_box(params: PhotoParams) -> tuple[tuple[float, float], float]:
    """The box that holds the fish in any view, in its own frame (along the body, head positive after
    the flip; across it): (along-range, half-height), body units."""
    along = (-1.55 - U_CENTRE, 1.05 - U_CENTRE)
    if params.flipped:
        along = (-along[1], -along[0])
    return along, max(FISH_REACH.values())


def _clearance(params: PhotoParams, x: float, y: float) -> float:
    """Distance, in canvas units, from the point (x, y) to the box that holds the fish (0 inside it)."""
    dx, dy = x - params.cx, y - params.cy
    cos, sin = np.cos(params.angle), np.sin(params.angle)
    a, v = (cos * dx + sin * dy) / params.scale, (-sin * dx + cos * dy) / params.scale
    (lo, hi), reach = fish_box(params)
    outside_a, outside_v = max(lo - a, 0.0, a - hi), max(abs(v) - reach, 0.0)
    return float(np.hypot(outside_a, outside_v)) * params.scale


def _canvas_half_extent(aspect: float) -> tuple[float, float]:
    """Half width and half height of a canvas whose shorter side spans [-1, 1]."""
    return max(aspect, 1.0), max(1.0 / aspect, 1.0)


def sample_marker(rng: np.random.Generator, class_index: int, aspect: float = 1.0) -> tuple[float, float, int]:
    """Where a class's shortcut sticker goes: near a random corner of the canvas."""
    half_w, half_h = _canvas_half_extent(aspect)
    corner_x, corner_y = rng.choice([-1.0, 1.0], size=2)
    return (
        float(corner_x * (half_w - rng.uniform(0.12, 0.3))),
        float(corner_y * (half_h - rng.uniform(0.12, 0.3))),
        int(class_index),
    )


_SCALES = (0.52, 0.68)  # a fish's size on the canvas at zoom 1: the shorter side spans 2
_PHOTO_REACH = (1.25, 1.0)  # how far the fish (tail and fins, any tilt) reaches from its centre, per unit of scale
_PHOTO_MARGIN = 0.05


def largest_zoom(aspect: float) -> float:
    """The largest ``zoom`` at which the largest fish still fits whole on a canvas of ``aspect`` (width / height):
    1.12 for a square photo, 1.40 for a 4:3 one."""
    half_w, half_h = _canvas_half_extent(aspect)
    return min((half_w - _PHOTO_MARGIN) / (_PHOTO_REACH[0] * _SCALES[1]),
               (half_h - _PHOTO_MARGIN) / (_PHOTO_REACH[1] * _SCALES[1]))


def sample_photo_params(rng: np.random.Generator, body_colour: np.ndarray, aspect: float = 1.0,
                        zoom: float = 1.0) -> PhotoParams:
    """Draw the nuisance variables of one photo (no marker). ``aspect`` is width / height; ``zoom`` scales the
    fish (the same draws, so a photo at zoom 1 is the photo it always was)."""
    scale = float(rng.uniform(*_SCALES)) * zoom
    half_w, half_h = _canvas_half_extent(aspect)
    # Keep the whole fish (about 2.4 body units long, 0.9 high) on the canvas.
    slack_x = max(half_w - _PHOTO_REACH[0] * scale - _PHOTO_MARGIN, 0.0)
    slack_y = max(half_h - _PHOTO_REACH[1] * scale - _PHOTO_MARGIN, 0.0)
    waves = tuple(
        (float(rng.uniform(1.0, 6.0)), float(rng.uniform(0, np.pi)), float(rng.uniform(0, 2 * np.pi)),
         float(rng.uniform(0.01, 0.05)))
        for _ in range(3)
    )
    n_bubbles = int(rng.integers(0, 4))
    bubbles = tuple(
        (float(rng.uniform(-half_w, half_w)), float(rng.uniform(-half_h, half_h)), float(rng.uniform(0.03, 0.07)))
        for _ in range(n_bubbles)
    )
    background = BACKGROUND_COLOURS[rng.integers(len(BACKGROUND_COLOURS))] * rng.uniform(0.85, 1.15, 3)
    return PhotoParams(
        cx=float(rng.uniform(-slack_x, slack_x)),
        cy=float(rng.uniform(-slack_y, slack_y)),
        scale=scale,
        angle=float(np.deg2rad(rng.uniform(-25, 25))),
        flipped=bool(rng.random() < 0.5),
        body_colour=tuple(float(c) for c in np.clip(body_colour, 0, 1)),
        pattern_darkness=float(rng.uniform(0.28, 0.45)),
        background=tuple(float(c) for c in np.clip(background, 0, 1)),
        waves=waves,
        bubbles=bubbles,
        gain=float(rng.uniform(0.8, 1.2)),
        light_direction=float(rng.uniform(0, 2 * np.pi)),
        light_slope=float(rng.uniform(0.0, 0.12)),
        cast=tuple(float(c) for c in rng.uniform(0.94, 1.06, 3)),
        blur=float(rng.uniform(0.0, 0.8)),
        noise=float(rng.uniform(0.0, 0.035)),
        noise_seed=int(rng.integers(2**31)),
        marker=None,
    )


def sample_body_colour(rng: np.random.Generator) -> np.ndarray:
    """A fish's own colour, shared by its three views: a base hue with some individual variation."""
    base = FISH_COLOURS[rng.integers(len(FISH_COLOURS))]
    return np.clip(base * rng.uniform(0.85, 1.15) + rng.normal(0, 0.03, 3), 0.05, 0.95).astype(np.float32)
