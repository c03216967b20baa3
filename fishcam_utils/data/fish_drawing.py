"""Drawing one synthetic fish photo, with its body, evidence and marker masks.

``render_photo`` draws the water (background, ripples, bubbles and distractors), the fish
(``fish_body``), a shortcut sticker and whatever spoils the trait (weed, another fish, glare,
murk, motion blur), then the camera (light, lens blur, noise). It draws on a finer grid and
averages: anti-aliased edges, and the same coverage gives exact masks. What varies from photo
to photo is a ``PhotoParams`` (``photo_params``, whose names can be imported from here too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fish_body import draw_fish, fish_window, paint
from .fish_traits import periodic
from .photo_params import (
    BACKGROUND_COLOURS,
    DEGRADATIONS,
    DISTRACTOR_PATTERNS,
    DISTRACTOR_RADIUS,
    FISH_COLOURS,
    OCCLUSIONS,
    PhotoParams,
    largest_zoom,
    sample_body_colour,
    sample_degradation,
    sample_distractors,
    sample_marker,
    sample_photo_params,
)
from .species import VIEWS

__all__ = [
    "BACKGROUND_COLOURS", "DEGRADATIONS", "DISTRACTOR_PATTERNS", "DISTRACTOR_RADIUS", "FISH_COLOURS",
    "MARKER_COLOURS", "OCCLUSIONS", "PhotoParams", "RenderedPhoto", "largest_zoom", "render_photo",
    "sample_body_colour", "sample_degradation", "sample_distractors", "sample_marker", "sample_photo_params",
    "supersampling_for",
]

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
_WEED = np.array([0.18, 0.42, 0.16], dtype=np.float32)
_PEBBLE = np.array([0.62, 0.58, 0.52], dtype=np.float32)


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
    rows, cols = fish_window(params, xs, ys, view)
    body = np.zeros(x.shape, bool)
    fish = np.zeros(x.shape, bool)
    evidence = np.zeros(x.shape, bool)
    img[rows, cols], body[rows, cols], fish[rows, cols], evidence[rows, cols] = draw_fish(
        view, trait, params, x[rows, cols], y[rows, cols], img[rows, cols]
    )

    marker = np.zeros_like(body)
    if params.marker is not None:
        mx, my, cls = params.marker
        marker = (np.abs(x - mx) < params.marker_size) & (np.abs(y - my) < params.marker_size)
        img = paint(img, marker, MARKER_COLOURS[cls % len(MARKER_COLOURS)])

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
    distractor_mask = ((_box_downsample(distractor & ~fish & ~hidden, ss) >= 0.5) & ~body_mask & ~occluder_mask
                       & ~marker_mask)

    if kind == "murk":  # the water between camera and fish takes the contrast
        share = 0.45 + 0.4 * strength
        img = img * (1 - share) + np.asarray(params.background, np.float32) * 0.85 * share
    elif kind == "motion_blur":  # the fish (and camera) moved along the image's rows while the shutter was open
        img = _smear(img, max(2, int(round((2 + 6 * strength) * width / 64))))  # as long at any size
    image = _camera(img, params, xs, ys, ss, width, height)
    return RenderedPhoto(image=image, body=body_mask, evidence=evidence_mask, marker=marker_mask,
                         occluder=occluder_mask, distractor=distractor_mask, trait_pixels=trait_pixels,
                         degradation=kind)


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
        texture = periodic(u, 0.09) < 0.022
    elif name == "spots":
        texture = np.hypot(periodic(u, 0.1), periodic(v, 0.1)) < 0.028
    else:
        texture = periodic(np.hypot(u, v), 0.07) < 0.016
    img = paint(img, shape, _PEBBLE)
    return paint(img, shape & texture, np.asarray(colour, np.float32)), shape


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
        return paint(img, hidden, _WEED * (0.85 + 0.15 * np.sin(25 * v))[..., None]), hidden
    if kind == "fish":  # a dark fish passing in front, side on
        hidden = (u / size) ** 2 + (v / (0.45 * size)) ** 2 < 1
        return paint(img, hidden, FISH_COLOURS[2] * 0.6), hidden
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
        img = paint(img, ring, img * 0.5 + 0.5)
    return img


def _camera(img: np.ndarray, params: PhotoParams, xs: np.ndarray, ys: np.ndarray, ss: int, width: int,
            height: int) -> np.ndarray:
    """The camera on the output-size picture: lighting with a colour cast, lens blur, sensor noise;
    returns (height, width, 3) uint8."""
    lx = xs.reshape(-1, ss).mean(1)[None, :]
    ly = ys.reshape(-1, ss).mean(1)[:, None]
    light = params.gain * (1.0 + params.light_slope * (lx * np.cos(params.light_direction)
                                                        + ly * np.sin(params.light_direction)))
    img = img * light[..., None] * np.asarray(params.cast, np.float32)
    if params.blur > 0.05:
        blur_h, blur_w = _gaussian_matrix(height, params.blur), _gaussian_matrix(width, params.blur)
        img = np.einsum("ij,jkc,lk->ilc", blur_h, img, blur_w, optimize=True)
    noise_rng = np.random.default_rng(params.noise_seed)
    img = img + noise_rng.normal(0.0, params.noise, img.shape).astype(np.float32)
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
