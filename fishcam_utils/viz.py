"""Pictures for the notebooks: image grids and masks laid over images.

Images are RGB throughout (never BGR): uint8 (H, W, 3) or float (H, W, 3) in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

from .data.images import read_image, read_mask
from .data.layouts import DatasetIndex


def as_float_image(image: np.ndarray) -> np.ndarray:
    """RGB uint8 or float image → float (H, W, 3) in [0, 1]. A (3, H, W) tensor (the model's input)
    is refused with the function that makes a picture of it."""
    if hasattr(image, "detach"):
        image = image.detach().cpu().numpy()
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        raise ValueError(f"a picture is (H, W, 3); this is (3, H, W) {image.shape}, a model's input: show it with "
                         f"fishcam_utils.data.transforms.to_display(x), which also undoes the normalisation")
    if image.dtype == np.uint8:
        return image.astype(np.float32) / 255.0
    return np.clip(image.astype(np.float32), 0.0, 1.0)


def overlay_mask(image: np.ndarray, mask: np.ndarray, colour: str | Sequence[float] = "red",
                 alpha: float = 0.5) -> np.ndarray:
    """Tint the pixels of ``mask`` (H, W) bool in ``image`` with ``colour``.

    Returns float (H, W, 3) in [0, 1]; pixels outside the mask are unchanged.
    """
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    base = as_float_image(image)
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != base.shape[:2]:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {base.shape[:2]}")
    tint = np.asarray(to_rgb(colour), dtype=np.float32)
    out = base.copy()
    out[mask] = (1 - alpha) * base[mask] + alpha * tint
    return out


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` (H, W) bool that touch a pixel outside it (4-neighbours, or the border)."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    return mask & ~interior


def outline_mask(image: np.ndarray, mask: np.ndarray, colour: str | Sequence[float] = "yellow") -> np.ndarray:
    """Draw the boundary of ``mask`` on ``image`` in ``colour``, leaving the inside untouched,
    so the colours under the mask stay readable. Returns float (H, W, 3) in [0, 1]."""
    return overlay_mask(image, mask_boundary(mask), colour, alpha=1.0)


def show_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    size: float = 1.8,
    suptitle: str | None = None,
) -> Figure:
    """A grid of images with optional titles; returns the figure."""
    n = len(images)
    if n == 0:
        raise ValueError("no images to show")
    ncols = min(ncols, n)
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, image in enumerate(images):
        ax = axes.flat[i]
        ax.imshow(as_float_image(image), interpolation="nearest")
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_species_grid(
    index: DatasetIndex,
    split: str | None = "train",
    per_class: int = 1,
    seed: int = 0,
    mask: str | None = None,
    size: float = 1.5,
) -> Figure:
    """One row per class, one column per view (times ``per_class`` fish), drawn at random.

    With ``mask="evidence"`` (or "body") the mask is tinted over each image. Works for
    single-view layouts too (one column per example).
    """
    frame = index.frame if split is None else index.subset(split=split).frame
    rng = np.random.default_rng(seed)
    views = list(index.views) or [""]
    images, titles = [], []
    for label, name in enumerate(index.classes):
        fish_ids = frame.loc[frame["label"] == label, "fish_id"].unique()
        chosen = rng.choice(fish_ids, size=min(per_class, len(fish_ids)), replace=False)
        for fish in chosen:
            for view in views:
                row = frame[(frame["fish_id"] == fish) & (frame["view"] == view)]
                if row.empty:
                    images.append(np.ones((8, 8, 3)))
                    titles.append(f"{name}\n{view}: missing")
                    continue
                image = read_image(row["path"].iloc[0])
                if mask is not None:
                    image = overlay_mask(image, read_mask(row[f"mask_{mask}"].iloc[0], image.shape[:2]), "red", 0.6)
                images.append(image)
                titles.append(f"{name}\n{view}" if view else name)
    return show_images(images, titles, ncols=len(views) * per_class, size=size)
