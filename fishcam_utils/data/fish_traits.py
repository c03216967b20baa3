"""Where each species' trait lies on a fish, in the fish's own frame.

``u`` runs along the body from the tail (-1) to the head (+1), ``v`` across it (dorsal side
positive); each trait is a simple inequality in ``(u, v)`` (``species.TRAITS`` lists them per view,
and ``species.SOURCE_TRAITS`` the coloured patterns of the stand-in's source task).
"""

from __future__ import annotations

import numpy as np

from .species import SOURCE_PATTERNS, SOURCE_TRAITS, TRAITS


def periodic(x: np.ndarray, period: float) -> np.ndarray:
    """Distance from ``x`` to the nearest multiple of ``period``."""
    return np.abs((x + period / 2) % period - period / 2)


def _source_pattern(pattern: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Where a source-task pattern is painted (the same in every view), before clipping to the body."""
    along = (u > -0.85) & (u < 0.6)
    if pattern == "rings":
        return (periodic(np.hypot(u + 0.15, v), 0.18) < 0.035) & along
    if pattern == "zigzag":
        wave = periodic(u, 0.3) / 0.15 * 2 - 1  # a triangle wave in [-1, 1]
        return (np.abs(v - 0.09 * wave) < 0.035) & along
    if pattern == "checker":
        return ((np.floor(u / 0.16) + np.floor(v / 0.16)) % 2 == 0) & (u > -0.6) & (u < 0.3)
    if pattern == "blotches":
        return ((np.hypot(u - 0.2, v - 0.08) < 0.12) | (np.hypot(u + 0.3, v + 0.1) < 0.1)
                | (np.hypot(u + 0.65, v - 0.04) < 0.08))
    raise ValueError(f"unknown source pattern {pattern!r}; known: {SOURCE_PATTERNS}")


def trait_region(view: str, trait: str, u: np.ndarray, v: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Where ``trait`` is painted, before clipping to the body. Boolean, shape of ``u``."""
    if trait in SOURCE_TRAITS:
        return _source_pattern(trait.split("_", 1)[1], u, v)
    if view == "side":
        if trait == "bars":
            return (periodic(u + 0.55, 0.35) < 0.075) & (u > -0.7) & (u < 0.3)
        if trait == "eyespot":
            return np.hypot(u + 0.55, v) < 0.17
        if trait == "spots":
            row = np.floor(v / 0.2 + 0.5)
            shift = (row % 2) * 0.12
            du = periodic(u + shift, 0.24)
            dv = v - row * 0.2
            return (du * du + dv * dv < 0.065**2) & (u > -0.85) & (u < 0.5) & (np.abs(v) < 0.85 * half)
        if trait == "stripes":
            return (np.abs(np.abs(v) - 0.13) < 0.045) & (u > -0.85) & (u < 0.5)
        if trait == "band":
            return (np.abs(v) < 0.1) & (u > -0.9) & (u < 0.55)
        if trait == "chevrons":
            return (periodic(u + 0.9 * np.abs(v), 0.3) < 0.06) & (u > -0.75) & (u < 0.4)
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
            du = periodic(u + (row % 2) * 0.095, 0.19)
            dv = v - row * 0.17
            return (du * du + dv * dv < 0.055**2) & (u > -0.8) & (u < 0.55)
        if trait == "ladder":
            return (periodic(u, 0.3) < 0.05) & (u > -0.7) & (u < 0.4)
    elif view == "belly":
        if trait in ("red_belly", "yellow_belly"):
            return (np.abs(v) < 0.75 * half) & (u > -0.6) & (u < 0.55)
        if trait == "pearl_row":
            return (np.hypot(periodic(u, 0.3), v) < 0.075) & (u > -0.7) & (u < 0.4)
        if trait == "belly_bars":
            return (periodic(u + 0.5, 0.35) < 0.06) & (u > -0.6) & (u < 0.3)
        if trait == "dark_throat":
            return (u > 0.45) & (u < 0.85)
        if trait == "midline":
            return (np.abs(v) < 0.05) & (u > -0.85) & (u < 0.65)
    raise ValueError(f"unknown {view} trait {trait!r}; known: {TRAITS.get(view)}")
