"""Heatmaps as pictures: a colormap, an overlay on the image, a three-panel figure, files.

Everything is RGB (a public seed wrote OpenCV's BGR colormap into RGB images, turning hot regions
blue). Heatmaps are float (H, W) in [0, 1]; images uint8 or float (H, W, 3) RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image

from ..files import atomic_path
from ..viz import as_float_image

COLORMAPS = ("jet", "turbo", "inferno", "viridis", "magma")


def _array(heatmap) -> np.ndarray:
    if isinstance(heatmap, torch.Tensor):
        heatmap = heatmap.detach().cpu().float().numpy()
    heatmap = np.asarray(heatmap, dtype=np.float32)
    if heatmap.ndim != 2:
        raise ValueError(f"heatmap must be (H, W), got shape {heatmap.shape}")
    return heatmap


def heatmap_to_rgb(heatmap, cmap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] (clipped) → (H, W, 3) float RGB in [0, 1] through ``cmap``."""
    values = np.clip(_array(heatmap), 0.0, 1.0)
    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError:
        raise ValueError(f"unknown colormap {cmap!r}; try one of {', '.join(COLORMAPS)}") from None
    return colormap(values)[..., :3].astype(np.float32)


def overlay_heatmap(image, heatmap, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """``(1 - alpha) * image + alpha * colour(heatmap)``: float (H, W, 3) RGB in [0, 1].

    ``alpha`` (the heatmap's opacity) in [0, 1]; heatmap and image must have the same size.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (opacity) must lie in [0, 1], got {alpha}")
    base = as_float_image(image)
    colours = heatmap_to_rgb(heatmap, cmap)
    if colours.shape != base.shape:
        raise ValueError(f"heatmap {colours.shape[:2]} and image {base.shape[:2]} differ in size; "
                         f"make the CAM at the image's size")
    return (1 - alpha) * base + alpha * colours


def plot_cam(image, heatmap, title: str | None = None, alpha: float = 0.5, cmap: str = "jet",
             size: float = 2.6) -> Figure:
    """Original, heatmap and overlay side by side; returns the figure."""
    fig, axes = plt.subplots(1, 3, figsize=(3 * size, size + 0.4))
    panels = [(as_float_image(image), "image"), (heatmap_to_rgb(heatmap, cmap), "heatmap"),
              (overlay_heatmap(image, heatmap, alpha, cmap), "overlay")]
    for ax, (picture, label) in zip(axes, panels):
        ax.imshow(picture)
        ax.set_title(label, fontsize=9)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def to_uint8(picture: np.ndarray) -> np.ndarray:
    """(H, W, 3) float in [0, 1] (clipped) → (H, W, 3) uint8, rounded to nearest."""
    return (np.clip(picture, 0.0, 1.0) * 255 + 0.5).astype(np.uint8)


def save_cam_images(folder: str | os.PathLike, stem: str, image, heatmap, alpha: float = 0.5,
                    cmap: str = "jet") -> dict[str, Path]:
    """Write ``<stem>_original.png``, ``<stem>_heatmap.png`` and ``<stem>_overlay.png`` (RGB) into
    ``folder``; returns kind → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pictures = {"original": as_float_image(image), "heatmap": heatmap_to_rgb(heatmap, cmap),
                "overlay": overlay_heatmap(image, heatmap, alpha, cmap)}
    return {kind: save_picture(folder / f"{stem}_{kind}.png", picture) for kind, picture in pictures.items()}


def save_picture(path: str | os.PathLike, picture: np.ndarray) -> Path:
    """Write an (H, W, 3) float RGB picture in [0, 1] as a PNG, atomically (a temporary file, then
    a rename); returns the path."""
    with atomic_path(path, durable=False) as tmp:  # made again in seconds; no sync per picture
        Image.fromarray(to_uint8(picture), mode="RGB").save(tmp, format="PNG")
    return Path(path)
