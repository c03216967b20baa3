"""Drawing the fish itself: its body, tail and fins, shading, eyes and the trait that tells its species.

Everything is drawn with numpy in the fish's own frame: ``u`` runs along the body from the
tail (-1) to the head (+1), ``v`` across it (dorsal side positive). A pixel is mapped into
that frame by undoing the photo's shift, scale, rotation and flip (``PhotoParams``), and each
body part is a simple inequality in ``(u, v)``; where the trait lies is ``fish_traits``'s.
"""

from __future__ import annotations

import numpy as np

from .fish_traits import trait_region
from .photo_params import FISH_REACH, U_CENTRE, PhotoParams, fish_box
from .species import SOURCE_HUES, SOURCE_TRAITS

# Half-height (side) or half-width (back, belly) of the body at its widest, in body units.
_BODY_HALF = {"side": 0.36, "back": 0.27, "belly": 0.30}
_RED = np.array([0.86, 0.16, 0.12], dtype=np.float32)
_YELLOW = np.array([0.95, 0.80, 0.10], dtype=np.float32)
_EYESPOT_CENTRE = np.array([0.95, 0.88, 0.45], dtype=np.float32)


def _profile(view: str, u: np.ndarray) -> np.ndarray:
    """Half-height (side) or half-width (back, belly) of the body at ``u``; 0 outside it."""
    inside = np.clip(1.0 - u * u, 0.0, None)
    return _BODY_HALF[view] * np.sqrt(inside) * (1.0 + 0.12 * u)


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


def paint(img: np.ndarray, where: np.ndarray, colour: np.ndarray | float) -> np.ndarray:
    """``img`` with ``colour`` (an RGB triple or an image) wherever ``where`` is true."""
    return np.where(where[..., None], colour, img).astype(np.float32, copy=False)


def fish_window(params: PhotoParams, xs: np.ndarray, ys: np.ndarray, view: str) -> tuple[slice, slice]:
    """Rows and columns of the fine grid that can hold any part of the fish."""
    (lo, hi), _ = fish_box(params)
    reach = FISH_REACH[view]
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


def draw_fish(view: str, trait: str, params: PhotoParams, x: np.ndarray, y: np.ndarray,
              img: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Paint the fish over ``img`` (a window of the canvas at points ``x``, ``y``).

    Returns the painted window and three boolean coverages of it: body, whole fish, evidence.
    """
    # Into the fish's frame: undo shift, scale, rotation and flip.
    dx, dy = (x - params.cx) / params.scale, (y - params.cy) / params.scale
    cos, sin = np.float32(np.cos(params.angle)), np.float32(np.sin(params.angle))
    a = cos * dx + sin * dy
    v = -sin * dx + cos * dy
    u = (-a if params.flipped else a) + np.float32(U_CENTRE)

    half = _profile(view, u)
    body = (np.abs(u) < 1.0) & (np.abs(v) < half)
    fins = _fins(view, u, v) & ~body
    colour = np.asarray(params.body_colour, np.float32)

    img = paint(img, fins, 0.55 * img + 0.45 * (colour * 0.9))
    if view == "side":
        # Countershading: darker back, pale belly.
        t = np.clip(v / np.maximum(half, 1e-6), -1, 1)[..., None]
        shade = colour * (0.85 + 0.1 * t) + (1 - colour) * np.clip(-t, 0, 1) * 0.45
    elif view == "back":
        shade = colour * (0.78 + 0.12 * (1 - np.abs(v) / np.maximum(half, 1e-6)))[..., None]
    else:
        shade = colour * 0.45 + 0.55 * 0.92
    img = paint(img, body, shade)

    evidence = trait_region(view, trait, u, v, half) & body
    if trait in SOURCE_TRAITS:  # a coloured pattern: the hue, with a little of the shading beneath
        hue = np.asarray(SOURCE_HUES[trait.split("_", 1)[0]], np.float32)
        img = paint(img, evidence, 0.8 * hue + 0.2 * img)
    elif trait == "red_belly":
        img = paint(img, evidence, _RED)
    elif trait == "yellow_belly":
        img = paint(img, evidence, _YELLOW)
    elif trait == "eyespot":
        img = paint(img, evidence, colour * params.pattern_darkness)
        img = paint(img, evidence & (np.hypot(u + 0.55, v) < 0.09), _EYESPOT_CENTRE)
    else:
        img = paint(img, evidence, img * params.pattern_darkness)

    # Eyes and mouth: features every fish has, so they carry no class evidence.
    if view == "side":
        img = paint(img, np.hypot(u - 0.72, v - 0.08) < 0.075, 0.05)
        img = paint(img, np.hypot(u - 0.74, v - 0.1) < 0.025, 0.9)
        gill = (np.abs(np.hypot(u - 0.9, v) - 0.4) < 0.02) & body & (u < 0.6)
        img = paint(img, gill, img * 0.6)
    elif view == "back":
        for sign in (1.0, -1.0):
            img = paint(img, np.hypot(u - 0.75, v - sign * 0.16) < 0.05, 0.05)
    else:
        img = paint(img, np.hypot((u - 0.93) * 2.0, v) < 0.08, 0.1)
    return img, body, body | fins, evidence
