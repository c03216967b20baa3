"""A synthetic dataset's folder: writing it safely, and reading what it says about itself.

``generate_dataset`` writes real PNG files, with a body mask and an evidence mask for every
photo, a ``metadata.csv`` listing them, and a ``dataset.json`` recording how they were made. It
writes into a temporary folder and moves it into place at the end, waits for another process
making the same dataset, and never deletes a folder that holds files of the user's.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import DataError, listing, option
from ..files import hold_folder
from .images import JUNK_FILES
from .species import class_names
from .synthetic_config import DEFAULT_CONFIG, SyntheticConfig
from .synthetic_photos import draw_all

FORMAT = "fishcam-synthetic"
FORMAT_VERSION = 1


def dataset_info(root: str | Path) -> dict[str, Any] | None:
    """The ``dataset.json`` of a synthetic dataset, or None if ``root`` holds none."""
    path = Path(root) / "dataset.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def dataset_config(root: str | Path) -> SyntheticConfig:
    """The settings a synthetic dataset was made with (from its ``dataset.json``)."""
    info = dataset_info(root)
    if info is None or "config" not in info:
        raise DataError(f"{root} has no readable dataset.json: it is not a synthetic dataset made by "
                        "`fishcam make-data`.")
    return SyntheticConfig.from_dict(info["config"])


def _describe(config: SyntheticConfig) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "config": config.to_dict(),
        "classes": class_names(config.table),
        "views": list(config.image_views),
        "species": [
            {"name": s.name, "label": i, "traits": s.traits, "deciding_view": s.deciding_view}
            for i, s in enumerate(config.table)
        ],
    }


def _is_up_to_date(root: Path, config: SyntheticConfig) -> bool:
    info = dataset_info(root)
    return bool(
        info
        and info.get("format") == FORMAT
        and info.get("version") == FORMAT_VERSION
        and info.get("config") == json.loads(json.dumps(config.to_dict()))
        and (root / "metadata.csv").is_file()
    )


def generate_dataset(
    out_dir: str | Path,
    config: SyntheticConfig | None = None,
    *,
    overwrite: bool = False,
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic dataset to ``out_dir`` and return its path.

    Does nothing if ``out_dir`` already holds this exact dataset. A different FishCAM dataset
    there is replaced only with ``overwrite=True``; a folder that is not one is never touched.
    The files are written to a temporary folder first and moved into place at the end, so an
    interrupted run leaves no half-written dataset behind.
    """
    config = config or DEFAULT_CONFIG
    out_dir = Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} is a file, not a folder: choose a new or empty folder for the dataset")
    if _is_up_to_date(out_dir, config):
        return out_dir
    # One writer at a time: another process making this very dataset is waited for (then it is there);
    # one making another dataset in the same folder is refused by name.
    settings = hashlib.sha1(json.dumps(_describe(config), sort_keys=True).encode()).hexdigest()[:12]
    with hold_folder(out_dir, f"the synthetic dataset {settings}", wait_if_same=True):
        if _is_up_to_date(out_dir, config):
            return out_dir
        return _generate(out_dir, config, overwrite, workers, progress)


def _generate(out_dir: Path, config: SyntheticConfig, overwrite: bool, workers: int | None, progress: bool) -> Path:
    _check_replaceable(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        rows = draw_all(config, tmp, out_dir.name, workers, progress)
        table = pd.DataFrame(rows)
        table.to_csv(tmp / "metadata.csv", index=False, lineterminator="\n")
        (tmp / "dataset.json").write_text(json.dumps(_describe(config), indent=2) + "\n")
        _move_into_place(tmp, out_dir, config)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _check_replaceable(out_dir: Path, overwrite: bool) -> None:
    """Refuse to write over a folder that is not a FishCAM dataset, or over another dataset
    without ``overwrite`` (and never over files a user put in it)."""
    if not out_dir.exists():
        return
    if dataset_info(out_dir) is None and any(out_dir.iterdir()):
        raise DataError(
            f"{out_dir} exists and is not a FishCAM synthetic dataset (it has no dataset.json); "
            "choose an empty or new folder, so that nothing of yours is overwritten."
        )
    if not overwrite and any(out_dir.iterdir()):
        raise DataError(
            f"{out_dir} holds a synthetic dataset made with other settings; "
            f"pass {option('overwrite')} to replace it, or choose another folder."
        )
    _refuse_to_delete_user_files(out_dir)


# The columns of metadata.csv that name files the generator wrote.
_PATH_COLUMNS = ("image", "body_mask", "evidence_mask", "marker_mask", "distractor_mask")


def _refuse_to_delete_user_files(out_dir: Path) -> None:
    """Replacing a dataset deletes its folder: refuse, naming them, if it holds files the generator did not write."""
    try:
        meta = pd.read_csv(out_dir / "metadata.csv", keep_default_na=False)
        written = {p for c in _PATH_COLUMNS if c in meta.columns for p in meta[c] if p}
    except (OSError, ValueError):
        written = set()  # without metadata.csv nothing can be told apart from the user's files
    written |= {"dataset.json", "metadata.csv"}
    theirs = sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*")
                    if p.is_file() and p.relative_to(out_dir).as_posix() not in written and not _is_clutter(p))
    if theirs:
        raise DataError(
            f"{out_dir} holds {len(theirs)} file(s) that the generator did not write, and replacing the dataset would "
            f"delete them:{listing(theirs)}\nMove them out of {out_dir} first, or write the new dataset to another "
            "folder."
        )


def _is_clutter(path: Path) -> bool:
    return path.name.lower() in JUNK_FILES or path.name.startswith("._")


def _move_into_place(tmp: Path, out_dir: Path, config: SyntheticConfig) -> None:
    """Rename the finished ``tmp`` folder to ``out_dir``, replacing an older dataset there."""
    old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
    try:
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
    except OSError:
        if old.exists() and not out_dir.exists():
            old.rename(out_dir)  # put the previous dataset back
        # Another process (a notebook run in parallel, say) may have put this very dataset there first.
        if not _is_up_to_date(out_dir, config):
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def load_metadata(root: str | Path) -> pd.DataFrame:
    """The ``metadata.csv`` of a synthetic dataset: one row per image, paths relative to ``root``."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        raise DataError(f"{path} not found: {root} is not a synthetic dataset; make one with `fishcam make-data`.")
    return pd.read_csv(path, keep_default_na=False)
