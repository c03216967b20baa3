"""Where the course keeps its files, and whether it runs in quick mode.

Quick mode (small data, few epochs) is what CI and ``make test`` use; students get the full
course by default. It is switched by the environment variable ``FISHCAM_QUICK=1``.
One seed draws the dataset and starts every training run: 0, or ``FISHCAM_SEED`` (``course_seed``;
``bench/seeds_bench.py`` runs the whole course under other seeds to find prose that holds for one run only).
The photographs are of uneven quality, with distractors in the water; ``FISHCAM_DATA=clean`` gives the earlier,
clean ones (``course_data``). They are 64 px a side on a CPU and 224 px on a CUDA GPU (``FISHCAM_IMAGE_SIZE``,
``course_image_size``).
Each folder can be moved with an environment variable, and defaults to the course checkout
(or, for a package installed elsewhere, the current directory).
"""

from __future__ import annotations

import numbers
import os
from pathlib import Path

QUICK_ENV = "FISHCAM_QUICK"
_TRUE = {"1", "true", "yes", "on"}

# SmoothGrad's default noise (explain.guided, the CLI's --sigma), in the model's input units: 15 % of the range of
# an ImageNet-normalised channel ((1 - mean) / std - (0 - mean) / std, about 4.4), the middle of the 10-20 %
# Smilkov et al. (2017) recommend. Here, not in explain, so that the CLI can state it without importing torch.
SMOOTHGRAD_SIGMA = 0.65


def quick_mode() -> bool:
    """True when ``FISHCAM_QUICK`` is set to 1/true/yes/on (case-insensitive)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in _TRUE


SEED_ENV = "FISHCAM_SEED"


def course_seed() -> int:
    """The course's seed, an int >= 0: ``FISHCAM_SEED``, or 0 when it is unset or empty. It draws the
    dataset (``ensure_synthetic``) and starts every course training run; a seed other than 0 gets data
    and checkpoint folders of its own (``run_folder``), so runs under two seeds never mix."""
    value = os.environ.get(SEED_ENV, "").strip()
    if not value:
        return 0
    try:
        seed = int(value)
    except ValueError:
        seed = -1
    if seed < 0:
        raise ValueError(f"{SEED_ENV}={value!r} is not a seed: give a whole number >= 0 (0 is the course's own), "
                         f"or unset {SEED_ENV}")
    return seed


def seed_folder(seed: int | None = None) -> str:
    """The suffix of the data and checkpoint folders of a seed: empty for the course's seed 0, ``-seed7`` for 7."""
    seed = course_seed() if seed is None else seed
    return f"-seed{seed}" if seed else ""


def course_root() -> Path:
    """The course checkout this package lives in, or the current directory if it has none."""
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "notebooks").is_dir():
        return here
    return Path.cwd()


def _folder(env: str, default: str) -> Path:
    value = os.environ.get(env)
    return Path(value).expanduser() if value else course_root() / default


def data_dir() -> Path:
    """Datasets: ``$FISHCAM_DATA_DIR`` or ``<course>/data``."""
    return _folder("FISHCAM_DATA_DIR", "data")


def build_dir() -> Path:
    """Executed notebooks, figures and results: ``$FISHCAM_BUILD_DIR`` or ``<course>/build``."""
    return _folder("FISHCAM_BUILD_DIR", "build")


def checkpoints_dir() -> Path:
    """Model checkpoints: ``$FISHCAM_CHECKPOINTS_DIR`` or ``<course>/checkpoints``."""
    return _folder("FISHCAM_CHECKPOINTS_DIR", "checkpoints")


def cache_dir() -> Path:
    """Decoded-image caches: ``$FISHCAM_CACHE_DIR`` or ``~/.cache/fishcam``."""
    value = os.environ.get("FISHCAM_CACHE_DIR")
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME")
    return (Path(base) if base else Path.home() / ".cache") / "fishcam"


# How a dataset folder is read and decoded, declared once for scan_dataset, check_dataset, make_datasets,
# the dataset classes and every fishcam command, so that a folder check-data rejects is never trained on.
# A fish lacking a view is a question for whoever took the photos: refused, with the flag that keeps
# (the view marked missing) or drops it, rather than trained on unasked.
MISSING_VIEWS = "error"
# A file that is not an image is refused by name rather than skipped unseen.
UNKNOWN_FILES = "error"
# Each photo is decoded and resized once into the decode-once cache: later epochs are bound by compute,
# not by JPEG decoding (``cache=False`` or ``--no-cache`` reads the files every epoch).
USE_CACHE = True
DATA_ENV = "FISHCAM_DATA"
# The course's photographs: "uneven" (the default: some photos have a view's trait hidden or spoilt, and
# objects with trait-like textures lie in the water) or "clean" (every trait in view, nothing else in the
# water: the course's data before those nuisances, kept to compare with and for runs made on it).
DATA_KINDS = ("uneven", "clean")


def course_data() -> str:
    """The course's kind of photographs, one of ``DATA_KINDS``: ``FISHCAM_DATA``, or "uneven" when it is unset
    or empty. A kind other than the default gets data and checkpoint folders of its own (``run_folder``)."""
    value = os.environ.get(DATA_ENV, "").strip().lower() or DATA_KINDS[0]
    if value not in DATA_KINDS:
        raise ValueError(f"{DATA_ENV}={os.environ[DATA_ENV]!r} is not a kind of course data: set it to "
                         f"{' or '.join(DATA_KINDS)} ({DATA_KINDS[0]} is the default), or unset {DATA_ENV}")
    return value


def run_folder(seed: int | None = None, kind: str | None = None) -> str:
    """The suffix of the course's data and checkpoint folders for a seed and a kind of data: empty for the
    course's own (seed 0, uneven photos), ``-seed7`` for seed 7, ``-clean`` for the clean photos, both joined."""
    kind = course_data() if kind is None else kind
    return seed_folder(seed) + ("" if kind == DATA_KINDS[0] else f"-{kind}")


SIZE_ENV = "FISHCAM_IMAGE_SIZE"
CPU_IMAGE_SIZE = 64  # a 2-core lab runs the whole course in 30 minutes at this size
GPU_IMAGE_SIZE = 224  # what ImageNet backbones were built for: a ResNet's layer4 is 7 x 7
_SIZE_RANGE = (32, 1024)  # below 32 a ResNet's stride-32 last stage has no pixel left


def course_image_size(cuda: bool | None = None) -> int:
    """The side, in pixels, of the course's photographs: ``$FISHCAM_IMAGE_SIZE`` (a whole number
    from 32 to 1024) or, when it is unset or ``auto``, 224 with a CUDA GPU and 64 without one.

    ``cuda`` says whether a GPU is there (default: ``torch.cuda.is_available()``). A bad value
    raises ``ValueError`` naming the variable and what it accepts.
    """
    value = os.environ.get(SIZE_ENV, "").strip().lower()
    if value in ("", "auto"):
        if cuda is None:
            import torch

            cuda = torch.cuda.is_available()
        return GPU_IMAGE_SIZE if cuda else CPU_IMAGE_SIZE
    low, high = _SIZE_RANGE
    try:
        size = int(value.removesuffix("px"))
    except ValueError:
        size = None
    if size is None or not low <= size <= high:
        raise ValueError(f"{SIZE_ENV}={os.environ[SIZE_ENV]!r} is not an image size: set it to 'auto' (224 px "
                         f"with a CUDA GPU, 64 px without) or to a whole number of pixels from {low} to {high}, "
                         f"e.g. {SIZE_ENV}=224")
    return size


def check_image_size(image_size: object, name: str = "image_size") -> int:
    """``image_size`` as the side in pixels: None gives the course's (``course_image_size()``); a
    positive whole number is kept; anything else raises an error that names ``name``."""
    from .errors import ArgumentError

    if image_size is None:
        return course_image_size()
    if isinstance(image_size, float) and image_size.is_integer():
        image_size = int(image_size)
    if isinstance(image_size, bool) or not isinstance(image_size, numbers.Integral):
        raise ArgumentError(f"{name} must be a whole number of pixels (one side of the square image), e.g. "
                        f"{name}={CPU_IMAGE_SIZE}; got {image_size!r}")
    if image_size < 1:
        raise ArgumentError(f"{name} must be a positive number of pixels, got {image_size}; the course uses "
                         f"{CPU_IMAGE_SIZE} on a CPU and {GPU_IMAGE_SIZE} on a GPU")
    return int(image_size)


def size_folder(size: int) -> str:
    """The suffix that keeps data and checkpoints of one image size apart: '' at 64 px, '-224px' at 224."""
    return "" if size == CPU_IMAGE_SIZE else f"-{size}px"
