"""Drawing one synthetic fish photo, with its body, evidence and marker masks.

Everything is drawn with numpy in the fish's own frame: ``u`` runs along the body from the
tail (-1) to the head (+1), ``v`` across it (dorsal side positive). A pixel is mapped into
that frame by undoing the photo's shift, scale, rotation and flip, and each body part and
trait is a simple inequality in ``(u, v)``. Drawing on a finer grid and averaging gives
anti-aliased edges, and the same coverage gives exact masks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .species import SOURCE_HUES, SOURCE_PATTERNS, SOURCE_TRAITS, TRAITS, VIEWS

# Half-height (side) or half-width (back, belly) of the body at its widest, in body units.
_BODY_HALF = {"side": 0.36, "back": 0.27, "belly": 0.30}
# Tail tip at u = -1.4, head at +1: the centre of the fish's extent along u.
_U_CENTRE = -0.2

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
# One colour per class for the optional shortcut marker (a sticker in a corner).
MARKER_COLOURS = np.array(
    [
        [0.90, 0.10, 0.10],
        [0.10, 0.70, 0.10],
        [0.10, 0.20, 0.90],
        [0.95, 0.85, 0.05],
        [0.85, 0.10, 0.85],
        [0.05, 0.85, 0.85],
        [1.00, 0.50, 0.00],
        [1.00, 1.00, 1.00],
        [0.05, 0.05, 0.05],
    ],
    dtype=np.float32,
)
_RED = np.array([0.86, 0.16, 0.12], dtype=np.float32)
_YELLOW = np.array([0.95, 0.80, 0.10], dtype=np.float32)
_EYESPOT_CENTRE = np.array([0.95, 0.88, 0.45], dtype=np.float32)


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
_FISH_REACH = {"side": 0.62, "back": 0.5, "belly": 0.5}
_WEED = np.array([0.18, 0.42, 0.16], dtype=np.float32)
_PEBBLE = np.array([0.62, 0.58, 0.52], dtype=np.float32)


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
            x, y = float(rng.uniform(-half_w + radius, half_w - radius)), float(rng.uniform(-half_h + radius, half_h - radius))
            if _clearance(params, x, y) > radius + _DISTRACTOR_MARGIN:
                colour = FISH_COLOURS[rng.integers(len(FISH_COLOURS))] * float(rng.uniform(0.3, 0.5))
                found.append((x, y, radius, int(rng.integers(len(DISTRACTOR_PATTERNS))),
                              tuple(float(c) for c in colour), float(rng.uniform(0, np.pi))))
                break
    return tuple(found)


def _fish_box(params: PhotoParams) -> tuple[tuple[float, float], float]:
    """The box that holds the fish in any view, in its own frame (along the body, head positive after
    the flip; across it): (along-range, half-height), body units."""
    along = (-1.55 - _U_CENTRE, 1.05 - _U_CENTRE)
    if params.flipped:
        along = (-along[1], -along[0])
    return along, max(_FISH_REACH.values())


def _clearance(params: PhotoParams, x: float, y: float) -> float:
    """Distance, in canvas units, from the point (x, y) to the box that holds the fish (0 inside it)."""
    dx, dy = x - params.cx, y - params.cy
    cos, sin = np.cos(params.angle), np.sin(params.angle)
    a, v = (cos * dx + sin * dy) / params.scale, (-sin * dx + cos * dy) / params.scale
    (lo, hi), reach = _fish_box(params)
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


@dataclass
class RenderedPhoto:
    """One photo: ``image`` (H, W, 3) uint8 and boolean (H, W) masks. ``body`` and ``evidence`` hold what
    can be seen of the fish and its trait; ``trait_pixels`` counts the trait's pixels before an occluder hid
    some (``visible_evidence`` is the share still seen); ``occluder`` and ``distractor`` mark those objects."""

    image: np.ndarray
    body: np.ndarray
    evidence: np.ndarray
    marker: np.ndarray
    occluder: np.ndarray | None = None
    distractor: np.ndarray | None = None
    trait_pixels: int = 0
    degradation: str = ""  # the degradation applied ("" if none, or an occluder that found no trait to cover)

    @property
    def visible_evidence(self) -> float:
        """The share of the trait's pixels still seen; NaN for a photo whose trait covers no pixel."""
        return float(self.evidence.sum()) / self.trait_pixels if self.trait_pixels else float("nan")


def _profile(view: str, u: np.ndarray) -> np.ndarray:
    """Half-height (side) or half-width (back, belly) of the body at ``u``; 0 outside it."""
    inside = np.clip(1.0 - u * u, 0.0, None)
    return _BODY_HALF[view] * np.sqrt(inside) * (1.0 + 0.12 * u)


def _periodic(x: np.ndarray, period: float) -> np.ndarray:
    """Distance from ``x`` to the nearest multiple of ``period``."""
    return np.abs((x + period / 2) % period - period / 2)


def _source_pattern(pattern: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where a source-task pattern is painted (the same in every view), before clipping to the body."""
    along = (u > -0.85) & (u < 0.6)
    if pattern == "rings":
        return (_periodic(np.hypot(u + 0.15, v), 0.18) < 0.035) & along
    if pattern == "zigzag":
        wave = _periodic(u, 0.3) / 0.15 * 2 - 1  # a triangle wave in [-1, 1]
        return (np.abs(v - 0.09 * wave) < 0.035) & along
    if pattern == "checker":
        return ((np.floor(u / 0.16) + np.floor(v / 0.16)) % 2 == 0) & (u > -0.6) & (u < 0.3)
    if pattern == "blotches":
        return ((np.hypot(u - 0.2, v - 0.08) < 0.12) | (np.hypot(u + 0.3, v + 0.1) < 0.1)
                | (np.hypot(u + 0.65, v - 0.04) < 0.08))
    raise ValueError(f"unknown source pattern {pattern!r}; known: {SOURCE_PATTERNS}")


def _trait_region(view: str, trait: str, u: np.ndarray, v: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Where ``trait`` is painted, before clipping to the body. Boolean, shape of ``u``."""
    if trait in SOURCE_TRAITS:
        return _source_pattern(trait.split("_", 1)[1], u, v)
    if view == "side":
        if trait == "bars":
            return (_periodic(u + 0.55, 0.35) < 0.075) & (u > -0.7) & (u < 0.3)
        if trait == "eyespot":
            return np.hypot(u + 0.55, v) < 0.17
        if trait == "spots":
            row = np.floor(v / 0.2 + 0.5)
            shift = (row % 2) * 0.12
            du = _periodic(u + shift, 0.24)
            dv = v - row * 0.2
            return (du * du + dv * dv < 0.065**2) & (u > -0.85) & (u < 0.5) & (np.abs(v) < 0.85 * half)
        if trait == "stripes":
            return (np.abs(np.abs(v) - 0.13) < 0.045) & (u > -0.85) & (u < 0.5)
        if trait == "band":
            return (np.abs(v) < 0.1) & (u > -0.9) & (u < 0.55)
        if trait == "chevrons":
            return (_periodic(u + 0.9 * np.abs(v), 0.3) < 0.06) & (u > -0.75) & (u < 0.4)
    elif view == "back":
        if trait == "saddle":
            return np.abs(u) < 0.15
        if trait == "twin_spots":
            return np.hypot(u, np.abs(v) - 0.12) < 0.095
        if trait == "head_cap":
            return u > 0.5
        if trait == "dorsal_line":
            return (np.abs(v) < 0.05) & (u > -0.85) & (u < 0.7)
        if trait == "speckles":
            row = np.floor(v / 0.17 + 0.5)
            du = _periodic(u + (row % 2) * 0.095, 0.19)
            dv = v - row * 0.17
            return (du * du + dv * dv < 0.055**2) & (u > -0.8) & (u < 0.55)
        if trait == "ladder":
            return (_periodic(u, 0.3) < 0.05) & (u > -0.7) & (u < 0.4)
    elif view == "belly":
        if trait in ("red_belly", "yellow_belly"):
            return (np.abs(v) < 0.75 * half) & (u > -0.6) & (u < 0.55)
        if trait == "pearl_row":
            return (np.hypot(_periodic(u, 0.3), v) < 0.075) & (u > -0.7) & (u < 0.4)
        if trait == "belly_bars":
            return (_periodic(u + 0.5, 0.35) < 0.06) & (u > -0.6) & (u < 0.3)
        if trait == "dark_throat":
            return (u > 0.45) & (u < 0.85)
        if trait == "midline":
            return (np.abs(v) < 0.05) & (u > -0.85) & (u < 0.65)
    raise ValueError(f"unknown {view} trait {trait!r}; known: {TRAITS.get(view)}")


def _triangle(u: np.ndarray, v: np.ndarray, a, b, c) -> np.ndarray:
    """Points inside the triangle with corners a, b, c (each a (u, v) pair)."""

    def side(p, q):
        return (u - q[0]) * (p[1] - q[1]) - (p[0] - q[0]) * (v - q[1])

    d1, d2, d3 = side(a, b), side(b, c), side(c, a)
    has_neg = (d1 < 0) | (d2 < 0) | (d3 < 0)
    has_pos = (d1 > 0) | (d2 > 0) | (d3 > 0)
    return ~(has_neg & has_pos)


def _fins(view: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The tail and fins: part of the fish (and its body mask), drawn half see-through."""
    tail = _triangle(u, v, (-0.85, 0.0), (-1.42, 0.36), (-1.42, -0.36))
    notch = _triangle(u, v, (-1.2, 0.0), (-1.5, 0.22), (-1.5, -0.22))
    fins = tail & ~notch
    if view == "side":
        top = _profile("side", np.array(0.0))
        fins |= _triangle(u, v, (0.25, 0.8 * top), (-0.4, 0.7 * top), (-0.2, top + 0.2))
        fins |= _triangle(u, v, (-0.15, -0.8 * top), (-0.5, -0.6 * top), (-0.45, -top - 0.14))
        fins |= _triangle(u, v, (0.45, -0.05), (0.2, -0.02), (0.18, -0.16))
    else:
        for sign in (1.0, -1.0):
            # Pectoral fins stick out sideways behind the head; pelvic fins show from below.
            w = _BODY_HALF[view]
            fins |= _triangle(u, sign * v, (0.45, 0.6 * w), (0.2, 0.6 * w), (0.12, w + 0.16))
            if view == "belly":
                fins |= _triangle(u, sign * v, (-0.05, 0.6 * w), (-0.3, 0.6 * w), (-0.35, w + 0.1))
    return fins


def _box_downsample(x: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return x
    h, w = x.shape[0] // factor, x.shape[1] // factor
    # Two single-axis sums are several times faster than one mean over two strided axes.
    summed = x.reshape(h, factor, w, factor, *x.shape[2:]).sum(axis=3, dtype=np.float32).sum(axis=1)
    return summed / np.float32(factor * factor)


def _gaussian_matrix(n: int, sigma: float) -> np.ndarray:
    """An (n, n) matrix that blurs along one axis, renormalised at the borders."""
    idx = np.arange(n, dtype=np.float32)
    weights = np.exp(-0.5 * ((idx[:, None] - idx[None, :]) / sigma) ** 2)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


def _paint(img: np.ndarray, where: np.ndarray, colour) -> np.ndarray:
    """``img`` with ``colour`` (an RGB triple or an image) wherever ``where`` is true."""
    return np.where(where[..., None], colour, img).astype(np.float32, copy=False)


def _fish_window(params: PhotoParams, xs: np.ndarray, ys: np.ndarray, view: str) -> tuple[slice, slice]:
    """Rows and columns of the fine grid that can hold any part of the fish."""
    (lo, hi), _ = _fish_box(params)
    reach = _FISH_REACH[view]
    corners_u = np.array([lo, hi, hi, lo])
    corners_v = np.array([-reach, -reach, reach, reach])
    cos, sin = np.cos(params.angle), np.sin(params.angle)
    cx = params.cx + params.scale * (cos * corners_u - sin * corners_v)
    cy = params.cy + params.scale * (sin * corners_u + cos * corners_v)
    col = np.nonzero((xs >= cx.min()) & (xs <= cx.max()))[0]
    row = np.nonzero((ys >= cy.min()) & (ys <= cy.max()))[0]
    if len(col) == 0 or len(row) == 0:
        return slice(0, 0), slice(0, 0)
    return slice(row[0], row[-1] + 1), slice(col[0], col[-1] + 1)


def _draw_fish(view: str, trait: str, params: PhotoParams, x: np.ndarray, y: np.ndarray, img: np.ndarray):
    """Paint the fish over ``img`` (a window of the canvas at points ``x``, ``y``).

    Returns the painted window and three boolean coverages of it: body, whole fish, evidence.
    """
    # Into the fish's frame: undo shift, scale, rotation and flip.
    dx, dy = (x - params.cx) / params.scale, (y - params.cy) / params.scale
    cos, sin = np.float32(np.cos(params.angle)), np.float32(np.sin(params.angle))
    a = cos * dx + sin * dy
    v = -sin * dx + cos * dy
    u = (-a if params.flipped else a) + np.float32(_U_CENTRE)

    half = _profile(view, u)
    body = (np.abs(u) < 1.0) & (np.abs(v) < half)
    fins = _fins(view, u, v) & ~body
    colour = np.asarray(params.body_colour, np.float32)

    img = _paint(img, fins, 0.55 * img + 0.45 * (colour * 0.9))
    if view == "side":
        # Countershading: darker back, pale belly.
        t = np.clip(v / np.maximum(half, 1e-6), -1, 1)[..., None]
        shade = colour * (0.85 + 0.1 * t) + (1 - colour) * np.clip(-t, 0, 1) * 0.45
    elif view == "back":
        shade = colour * (0.78 + 0.12 * (1 - np.abs(v) / np.maximum(half, 1e-6)))[..., None]
    else:
        shade = colour * 0.45 + 0.55 * 0.92
    img = _paint(img, body, shade)

    evidence = _trait_region(view, trait, u, v, half) & body
    if trait in SOURCE_TRAITS:  # a coloured pattern: the hue, with a little of the shading beneath
        hue = np.asarray(SOURCE_HUES[trait.split("_", 1)[0]], np.float32)
        img = _paint(img, evidence, 0.8 * hue + 0.2 * img)
    elif trait == "red_belly":
        img = _paint(img, evidence, _RED)
    elif trait == "yellow_belly":
        img = _paint(img, evidence, _YELLOW)
    elif trait == "eyespot":
        img = _paint(img, evidence, colour * params.pattern_darkness)
        img = _paint(img, evidence & (np.hypot(u + 0.55, v) < 0.09), _EYESPOT_CENTRE)
    else:
        img = _paint(img, evidence, img * params.pattern_darkness)

    # Eyes and mouth: features every fish has, so they carry no class evidence.
    if view == "side":
        img = _paint(img, np.hypot(u - 0.72, v - 0.08) < 0.075, 0.05)
        img = _paint(img, np.hypot(u - 0.74, v - 0.1) < 0.025, 0.9)
        gill = (np.abs(np.hypot(u - 0.9, v) - 0.4) < 0.02) & body & (u < 0.6)
        img = _paint(img, gill, img * 0.6)
    elif view == "back":
        for sign in (1.0, -1.0):
            img = _paint(img, np.hypot(u - 0.75, v - sign * 0.16) < 0.05, 0.05)
    else:
        img = _paint(img, np.hypot((u - 0.93) * 2.0, v) < 0.08, 0.1)
    return img, body, body | fins, evidence


def supersampling_for(width: int, height: int) -> int:
    """Sub-samples per pixel side: finer for small images, whose edges alias most."""
    side = min(width, height)
    return 2 if side <= 256 else 1


def render_photo(
    view: str,
    trait: str,
    params: PhotoParams,
    width: int = 64,
    height: int = 64,
) -> RenderedPhoto:
    """Draw one photo of a fish seen from ``view`` wearing ``trait``.

    Returns the image (height, width, 3) uint8 and three boolean (height, width) masks: the
    whole fish (body, fins, tail), the trait's pixels (the evidence), and the shortcut marker.
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    ss = supersampling_for(width, height)
    big_w, big_h = width * ss, height * ss
    unit = min(big_w, big_h) / 2.0  # fine-grid pixels per canvas unit
    xs = (np.arange(big_w, dtype=np.float32) + 0.5 - big_w / 2) / unit
    ys = -(np.arange(big_h, dtype=np.float32) + 0.5 - big_h / 2) / unit
    x, y = np.meshgrid(xs, ys)

    img = _background(params, x, y)
    distractor = np.zeros(x.shape, bool)
    for item in params.distractors:  # in the water behind the fish
        img, drawn = _draw_distractor(img, x, y, item)
        distractor |= drawn

    # The fish is drawn only inside its bounding box: most of the canvas is background.
    rows, cols = _fish_window(params, xs, ys, view)
    body = np.zeros(x.shape, bool)
    fish = np.zeros(x.shape, bool)
    evidence = np.zeros(x.shape, bool)
    img[rows, cols], body[rows, cols], fish[rows, cols], evidence[rows, cols] = _draw_fish(
        view, trait, params, x[rows, cols], y[rows, cols], img[rows, cols]
    )

    marker = np.zeros_like(body)
    if params.marker is not None:
        mx, my, cls = params.marker
        marker = (np.abs(x - mx) < params.marker_size) & (np.abs(y - my) < params.marker_size)
        img = _paint(img, marker, MARKER_COLOURS[cls % len(MARKER_COLOURS)])

    kind, strength = (params.degradation or ("", 0.0))[:2]
    occluder = np.zeros_like(body)
    if kind in OCCLUSIONS:
        if (evidence & ~marker).any():
            img, occluder = _occlude(img, x, y, evidence & ~marker, params)
        else:
            kind = ""  # no trait to cover: nothing drawn

    # Back to the output grid: averaging gives anti-aliased edges; a mask keeps a pixel
    # when at least half of it is covered. Body and evidence are what can be seen of them.
    img = _box_downsample(img, ss)
    hidden = marker | occluder
    body_mask = _box_downsample(fish & ~hidden, ss).astype(np.float32) >= 0.5
    evidence_mask = _box_downsample(evidence & ~hidden, ss) >= 0.5
    trait_pixels = int((_box_downsample(evidence & ~marker, ss) >= 0.5).sum())
    occluder_mask = _box_downsample(occluder, ss) >= 0.5
    marker_mask = (_box_downsample(marker & ~occluder, ss) >= 0.5) & ~occluder_mask
    # A pixel half covered by two things goes to the one in front.
    body_mask &= ~occluder_mask
    evidence_mask &= ~occluder_mask
    distractor_mask = (_box_downsample(distractor & ~fish & ~hidden, ss) >= 0.5) & ~body_mask & ~occluder_mask & ~marker_mask

    if kind == "murk":  # the water between camera and fish takes the contrast
        share = 0.45 + 0.4 * strength
        img = img * (1 - share) + np.asarray(params.background, np.float32) * 0.85 * share
    elif kind == "motion_blur":  # the fish (and camera) moved along the image's rows while the shutter was open
        img = _smear(img, max(2, int(round((2 + 6 * strength) * width / 64))))  # as long at any size
    image = _camera(img, params, xs, ys, ss, width, height)
    return RenderedPhoto(image=image, body=body_mask, evidence=evidence_mask, marker=marker_mask, occluder=occluder_mask,
                         distractor=distractor_mask, trait_pixels=trait_pixels, degradation=kind)


def _rotated(x: np.ndarray, y: np.ndarray, ox: float, oy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates about (ox, oy), turned by ``angle``, in the grid's float32 (Python scalars keep it so)."""
    c, s = float(np.cos(angle)), float(np.sin(angle))
    ox, oy = float(ox), float(oy)
    return (x - ox) * c + (y - oy) * s, -(x - ox) * s + (y - oy) * c


def _draw_distractor(img: np.ndarray, x: np.ndarray, y: np.ndarray, item: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A pebble-like ellipse wearing stripes, spots or rings; returns the image and its pixels."""
    ox, oy, radius, pattern, colour, angle = item
    u, v = _rotated(x, y, ox, oy, angle)
    shape = (u / radius) ** 2 + (v / (0.65 * radius)) ** 2 < 1
    name = DISTRACTOR_PATTERNS[pattern]
    if name == "stripes":
        texture = _periodic(u, 0.09) < 0.022
    elif name == "spots":
        texture = np.hypot(_periodic(u, 0.1), _periodic(v, 0.1)) < 0.028
    else:
        texture = _periodic(np.hypot(u, v), 0.07) < 0.016
    img = _paint(img, shape, _PEBBLE)
    return _paint(img, shape & texture, np.asarray(colour, np.float32)), shape


def _occlude(img: np.ndarray, x: np.ndarray, y: np.ndarray, trait: np.ndarray, params: PhotoParams):
    """Weed, another fish or glare over one pixel of the trait (``params.degradation``'s pick), sized by its
    strength; returns the image and the pixels hidden."""
    kind, strength, pick, angle = params.degradation
    rows, cols = np.nonzero(trait)
    k = min(int(pick * len(rows)), len(rows) - 1)
    u, v = _rotated(x, y, float(x[rows[k], cols[k]]), float(y[rows[k], cols[k]]), angle)
    size = params.scale * (0.15 + 0.35 * strength)  # canvas units
    if kind == "weed":  # a strand across the whole photo, swaying
        hidden = np.abs(u + 0.04 * np.sin(18 * v)) < 0.45 * size
        return _paint(img, hidden, _WEED * (0.85 + 0.15 * np.sin(25 * v))[..., None]), hidden
    if kind == "fish":  # a dark fish passing in front, side on
        hidden = (u / size) ** 2 + (v / (0.45 * size)) ** 2 < 1
        return _paint(img, hidden, FISH_COLOURS[2] * 0.6), hidden
    # Glare: a bright disc whose rim fades over the outer sixth of its radius.
    alpha = np.clip(6 * (1 - np.hypot(u, v) / size), 0, 1)[..., None]
    return (img * (1 - alpha) + 0.97 * alpha).astype(np.float32), alpha[..., 0] > 0.5


def _smear(img: np.ndarray, length: int) -> np.ndarray:
    """A box blur ``length`` pixels long along each row (edges repeated): motion blur."""
    pad = np.pad(img, ((0, 0), (length // 2, length - 1 - length // 2), (0, 0)), mode="edge")
    total = np.cumsum(np.pad(pad, ((0, 0), (1, 0), (0, 0))), axis=1, dtype=np.float64)
    return ((total[:, length:] - total[:, :-length]) / length).astype(np.float32)


def _background(params: PhotoParams, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A tinted base colour with gentle ripples and a few bubbles, (H, W, 3) float on the fine grid."""
    ripple = np.zeros_like(x)
    for freq, direction, phase, amp in params.waves:
        ripple += amp * np.sin(freq * np.pi * (x * np.cos(direction) + y * np.sin(direction)) + phase)
    img = np.asarray(params.background, np.float32) * (1.0 + ripple)[..., None]
    for bx, by, br in params.bubbles:
        ring = np.abs(np.hypot(x - bx, y - by) - br) < 0.012 + br * 0.15
        img = _paint(img, ring, img * 0.5 + 0.5)
    return img


def _camera(img: np.ndarray, params: PhotoParams, xs: np.ndarray, ys: np.ndarray, ss: int, width: int,
            height: int) -> np.ndarray:
    """The camera on the output-size picture: lighting with a colour cast, lens blur, sensor noise;
    returns (height, width, 3) uint8."""
    lx = xs.reshape(-1, ss).mean(1)[None, :]
    ly = ys.reshape(-1, ss).mean(1)[:, None]
    light = params.gain * (1.0 + params.light_slope * (lx * np.cos(params.light_direction) + ly * np.sin(params.light_direction)))
    img = img * light[..., None] * np.asarray(params.cast, np.float32)
    if params.blur > 0.05:
        blur_h, blur_w = _gaussian_matrix(height, params.blur), _gaussian_matrix(width, params.blur)
        img = np.einsum("ij,jkc,lk->ilc", blur_h, img, blur_w, optimize=True)
    noise_rng = np.random.default_rng(params.noise_seed)
    img = img + noise_rng.normal(0.0, params.noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
