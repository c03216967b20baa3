"""Where the course keeps its files, and whether it runs in quick mode.

Quick mode (small data, few epochs) is what CI and ``make test`` use; students get the full
course by default. It is switched by the environment variable ``FISHCAM_QUICK=1``.
Each folder can be moved with an environment variable, and defaults to the course checkout
(or, for a package installed elsewhere, the current directory).
"""

from __future__ import annotations

import os
from pathlib import Path

QUICK_ENV = "FISHCAM_QUICK"
_TRUE = {"1", "true", "yes", "on"}


def quick_mode() -> bool:
    """True when ``FISHCAM_QUICK`` is set to 1/true/yes/on (case-insensitive)."""
    return os.environ.get(QUICK_ENV, "").strip().lower() in _TRUE


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
