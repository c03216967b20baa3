"""Reading image and mask files as they come from cameras, phones and the web.

Every image becomes RGB uint8 (H, W, 3), whatever its mode: grayscale, RGBA, palette, 16-bit,
CMYK. Masks become boolean (H, W). A file that cannot be read raises a ``DataError`` that
names it and says what to do, instead of a bare PIL traceback.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF
from tqdm.auto import tqdm

from ..errors import DataError, listing

# As torchvision's ImageFolder; compared in lower case, so ".JPG" counts.
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp"})
# Files operating systems leave in folders: skipped without a word.
JUNK_FILES = frozenset({".ds_store", "thumbs.db", "desktop.ini", ".directory", ".gitkeep", ".gitignore"})

# An image with a side shorter than this carries almost nothing once resized for training.
TINY_SIDE = 16

# Transparent pixels are shown over white, as image viewers do.
_BACKGROUND = (255, 255, 255)


def is_image_file(path: str | Path) -> bool:
    """True for a file whose extension is an image's, in any case (``.JPG`` too)."""
    path = Path(path)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith("._")


def is_junk_file(path: str | Path) -> bool:
    """True for system clutter (``.DS_Store``, ``Thumbs.db``, macOS ``._`` files, hidden files)."""
    name = Path(path).name
    return name.lower() in JUNK_FILES or name.startswith(".")


def _sixteen_bit_to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Convert a PIL image of any mode to RGB uint8 (H, W, 3).

    16-bit grayscale is scaled to 8 bits (not clipped), transparency is composited over white,
    palette images are expanded, and CMYK/YCbCr/LAB are converted by PIL.
    """
    mode = image.mode
    if mode == "RGB":
        return np.asarray(image, dtype=np.uint8).copy()
    if mode.startswith("I;16") or mode == "I":
        values = np.asarray(image)
        # Mode "I" also holds 8-bit data widened to 32 bits: scale only what is really 16-bit.
        if mode.startswith("I;16") or values.max(initial=0) > 255:
            gray = _sixteen_bit_to_uint8(values)
        else:
            gray = np.clip(values, 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if values.max(initial=0.0) <= 1.0 else 1.0
        gray = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, _BACKGROUND + (255,))
        return np.asarray(Image.alpha_composite(canvas, rgba).convert("RGB"), dtype=np.uint8).copy()
    return np.asarray(image.convert("RGB"), dtype=np.uint8).copy()


def _open_failure(path: Path, error: Exception) -> DataError:
    if isinstance(error, FileNotFoundError):
        return DataError(f"{path} does not exist: was it moved or deleted after the dataset was scanned? "
                         "Scan it again.")
    return DataError(
        f"cannot read {path} as an image ({type(error).__name__}: {error}). The file is corrupt, truncated "
        "or not an image: download or export it again, or delete it from the dataset "
        "(`fishcam check-data DIR` lists every such file at once)."
    )


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 (H, W, 3), turned upright by its EXIF orientation."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()  # decode now, so that truncated files fail here and not later
            return to_rgb_array(ImageOps.exif_transpose(image))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise _open_failure(path, error) from error


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask file as boolean (H, W): True where the mask is on.

    Works for 0/255 and 0/1 masks, grayscale or RGB: a pixel is on when its brightest channel
    is above half the mask's maximum.
    """
    path = Path(path)
    try:
        with Image.open(path) as image:
            image.load()
            values = np.asarray(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise _open_failure(path, error) from error
    if values.ndim == 3:
        values = values[..., :3].max(axis=2)
    top = float(values.max(initial=0))
    return values > (top / 2 if top > 1 else 0.5)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) of an image file, read from its header without decoding the pixels."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise _open_failure(path, error) from error


def _as_size(size: int | tuple[int, int]) -> list[int]:
    """A size as torchvision wants it: [height, width]. An int means a square."""
    return [size, size] if isinstance(size, int) else [int(size[0]), int(size[1])]


def resize_rgb(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize RGB uint8 (H, W, 3) to ``size`` (an int for a square, or (height, width)).

    Antialiased bilinear, as in the course's eval preprocessing, so that a cached image and
    one decoded on the fly are the same bytes.
    """
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
    out = TF.resize(tensor, _as_size(size), interpolation=InterpolationMode.BILINEAR, antialias=True)
    return out.permute(1, 2, 0).contiguous().numpy()


def resize_mask(mask: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize a boolean (H, W) mask with nearest-neighbour sampling, so it stays a mask."""
    tensor = torch.from_numpy(np.ascontiguousarray(mask, dtype=np.uint8))[None]
    out = TF.resize(tensor, _as_size(size), interpolation=InterpolationMode.NEAREST_EXACT)
    return out[0].numpy().astype(bool)


def fit_size(image: np.ndarray, size: int | tuple[int, int] | None) -> np.ndarray:
    """RGB uint8 (H, W, 3) resized to ``size``, unless it has that size already (or ``size`` is None)."""
    if size is not None and list(image.shape[:2]) != _as_size(size):
        image = resize_rgb(image, size)
    return image


def read_image(path: str | Path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as RGB uint8 (H, W, 3), resized to ``size`` if given."""
    return fit_size(load_rgb(path), size)


def is_tiny(image: np.ndarray) -> bool:
    """True for a decoded image with a side shorter than ``TINY_SIDE`` pixels."""
    return min(image.shape[:2]) < TINY_SIDE


def decode_in_threads(count: int, decode: Callable[[int], None], desc: str, progress: bool = True,
                      workers: int | None = None) -> list[str]:
    """Run ``decode(i)`` for every ``i < count`` in threads (decoding releases the GIL), with a
    progress bar. Returns the messages of the ``DataError``s raised, so every bad file is said at once."""
    failures: list[str] = []

    def run(i: int) -> None:
        try:
            decode(i)
        except DataError as error:
            failures.append(str(error))

    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(tqdm(pool.map(run, range(count)), total=count, desc=desc, unit="img", disable=not progress))
    return sorted(failures)


def unreadable_files_message(failures: list[str]) -> str:
    """One message for every file that could not be read (each failure's own message, ten at most)."""
    return f"{len(failures)} file(s) could not be read:{listing(failures)}"


def tiny_images_message(tiny: list[tuple[str, tuple[int, int]]]) -> str:
    """The warning for images (path, (width, height)) too small to learn from."""
    listed = listing([f"{path} ({w}x{h} px)" for path, (w, h) in tiny])
    return (f"{len(tiny)} image(s) have a side under {TINY_SIDE} pixels; resized for training they are a blur or a "
            f"flat colour:{listed}\nCheck whether they are thumbnails or broken exports, and replace or "
            "remove them.")


def read_mask(path: str | Path, size: int | tuple[int, int] | None = None) -> np.ndarray:
    """Read a mask as boolean (H, W), resized (nearest) to ``size`` if given."""
    mask = load_mask(path)
    if size is not None and list(mask.shape) != _as_size(size):
        mask = resize_mask(mask, size)
    return mask


def channel_stats(images: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 images (N, H, W, 3), in [0, 1] units.

    Works through ``chunk`` images at a time, so a memory-mapped cache of any size fits.
    Returns two float64 arrays of shape (3,).
    """
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {images.shape}")
    total = np.zeros(3)
    squares = np.zeros(3)
    count = 0
    for start in range(0, len(images), chunk):
        block = np.asarray(images[start : start + chunk], dtype=np.float64).reshape(-1, 3) / 255.0
        total += block.sum(axis=0)
        squares += (block * block).sum(axis=0)
        count += len(block)
    if count == 0:
        raise ValueError("no images to measure")
    mean = total / count
    return mean, np.sqrt(np.maximum(squares / count - mean * mean, 0.0))
