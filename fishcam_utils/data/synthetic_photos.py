"""Drawing every photo of a synthetic dataset: which fish goes to which split, the random stream of
each photo, where its files go, and its row of ``metadata.csv``.

Everything is drawn from the seed: the same seed gives byte-identical files. Each photo has its
own random stream, so the same fish looks the same with or without the shortcut marker, and in
the multi-view and the Kaggle layout.
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from .fish_drawing import RenderedPhoto, render_photo
from .photo_params import (
    PhotoParams,
    sample_body_colour,
    sample_degradation,
    sample_distractors,
    sample_marker,
    sample_photo_params,
)
from .species import SPECIES_TABLES, VIEWS
from .synthetic_config import SyntheticConfig

# Separate random streams, so that changing one option never reshuffles the others.
_STREAM_SPLIT, _STREAM_FISH, _STREAM_MARKER, _STREAM_QUALITY, _STREAM_DISTRACTOR = 1, 2, 3, 4, 5


def _table_stream(config: SyntheticConfig) -> list[int]:
    """Another table draws other poses and backgrounds from the same seed (the course's draws stay as they were)."""
    return [] if config.species == "course" else [1000 + sorted(SPECIES_TABLES).index(config.species)]


def _stream(config: SyntheticConfig, stream: int, *ids: int) -> np.random.Generator:
    """The random stream ``stream`` (one of ``_STREAM_*``) of the thing numbered ``ids`` (a species, a fish, a view)."""
    return np.random.default_rng([config.seed, *_table_stream(config), stream, *ids])


def split_of_each_fish(config: SyntheticConfig) -> list[list[str]]:
    """For each species, the split of each of its fish: stratified, seeded, whole fish at a time."""
    n = config.fish_per_class
    _, f_val, f_test = config.split_fractions
    n_val = max(1, round(n * f_val)) if f_val > 0 else 0
    n_test = max(1, round(n * f_test)) if f_test > 0 else 0
    splits = []
    for species_index in range(len(config.table)):
        order = _stream(config, _STREAM_SPLIT, species_index).permutation(n)
        names = np.empty(n, dtype=object)
        names[order[:n_val]] = "val"
        names[order[n_val : n_val + n_test]] = "test"
        names[order[n_val + n_test :]] = "train"
        splits.append(list(names))
    return splits


def _relative_paths(config: SyntheticConfig, species: str, split: str, fish_id: str, number: int, view: str):
    """Where one photo and its masks go, relative to the dataset root."""
    if config.layout == "kaggle":
        # As the real set: images and their "GT" body masks, nothing else.
        name = f"{number:05d}.png"
        return {"image": f"{species}/{species}/{name}", "body_mask": f"{species}/{species} GT/{name}"}
    name = f"{split}/{species}/{fish_id}_{view}.png"
    return {
        "image": name,
        "body_mask": f"masks/body/{name}",
        "evidence_mask": f"masks/evidence/{name}",
        "marker_mask": f"masks/marker/{name}",
        "distractor_mask": f"masks/distractor/{name}",
    }


# Photo-sized pictures (notebook 09's 590 x 445) are compressed less: at level 6 writing one took as long as drawing
# it (0.14 s), at level 3 0.04 s for a file 15 % larger. The course's small photos keep level 6 (and their bytes).
_LARGE_PICTURE = 100_000  # pixels


def _save_png(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    level = 3 if array.shape[0] * array.shape[1] > _LARGE_PICTURE else 6
    Image.fromarray(array).save(path, format="PNG", compress_level=level)


def _render_fish(job: tuple[SyntheticConfig, str, int, int, str]) -> list[dict[str, Any]]:
    """Render and write every view of one fish; returns its metadata rows."""
    config, root, species_index, number, split = job
    species = config.table[species_index]
    fish_index = species_index * config.fish_per_class + number
    fish_id = f"F{fish_index + 1:05d}"
    aspect = config.width / config.height
    colour = sample_body_colour(_stream(config, _STREAM_FISH, fish_index))
    rows = []
    for view in config.image_views:
        view_index = VIEWS.index(view)
        params = sample_photo_params(_stream(config, _STREAM_FISH, fish_index, view_index), colour, aspect, config.zoom)
        marker_rng = _stream(config, _STREAM_MARKER, fish_index, view_index)
        has_marker = (
            config.shortcut and split in config.shortcut_splits and marker_rng.random() < config.shortcut_rate
        )
        if has_marker:
            params = dataclasses.replace(params, marker=sample_marker(marker_rng, species_index, aspect),
                                         marker_size=config.marker_size)
        if config.degraded_share:
            quality_rng = _stream(config, _STREAM_QUALITY, fish_index, view_index)
            params = dataclasses.replace(params, degradation=sample_degradation(quality_rng, config.degraded_share))
        if config.distractors:
            distractor_rng = _stream(config, _STREAM_DISTRACTOR, fish_index, view_index)
            distractors = sample_distractors(distractor_rng, params, config.distractors, aspect)
            params = dataclasses.replace(params, distractors=distractors)
        trait = species.traits[view]
        photo = render_photo(view, trait, params, config.width, config.height)
        paths = _relative_paths(config, species.name, split, fish_id, number + 1, view)
        if not config.shortcut:
            paths.pop("marker_mask", None)
        if not config.distractors:
            paths.pop("distractor_mask", None)
        written = {"image": photo.image, "body_mask": photo.body, "evidence_mask": photo.evidence,
                   "marker_mask": photo.marker, "distractor_mask": photo.distractor}
        for key, relative in paths.items():
            _save_png(written[key], Path(root) / relative)
        rows.append(
            {
                **paths,
                "fish_id": fish_id,
                "species": species.name,
                "label": species_index,
                "view": view,
                "split": split if config.layout == "multiview" else "",
                "trait": trait,
                "deciding_view": species.deciding_view,
                "is_deciding_view": view == species.deciding_view,
                "shortcut_marker": bool(has_marker),
                "width": config.width,
                "height": config.height,
                "evidence_pixels": int(photo.evidence.sum()),
                "scale": round(params.scale, 4),
                "angle_deg": round(float(np.rad2deg(params.angle)), 2),
                "flipped": params.flipped,
                "gain": round(params.gain, 4),
                "blur": round(params.blur, 4),
                "noise": round(params.noise, 4),
                **_nuisance_columns(config, params, photo),
            }
        )
    return rows


def _nuisance_columns(config: SyntheticConfig, params: PhotoParams, photo: RenderedPhoto) -> dict[str, Any]:
    """The metadata of a photo's degradation and distractors: only for a dataset that has them."""
    columns = {}
    if config.degraded_share:
        strength = params.degradation[1] if photo.degradation else 0.0
        columns.update(degradation=photo.degradation, degradation_strength=round(strength, 4),
                       trait_pixels=photo.trait_pixels, visible_evidence=round(photo.visible_evidence, 4))
    if config.distractors:
        columns.update(distractors=len(params.distractors), distractor_pixels=int(photo.distractor.sum()))
    return columns


def draw_all(config: SyntheticConfig, tmp: Path, name: str, workers: int | None,
             progress: bool) -> list[dict[str, Any]]:
    """Draw every fish into ``tmp`` (in ``workers`` processes when there are many, default: the CPU cores, at
    most 8; ``name`` for the progress bar); returns their metadata rows, in order."""
    splits = split_of_each_fish(config)
    jobs = [(config, str(tmp), s, n, splits[s][n])
            for s in range(len(config.table)) for n in range(config.fish_per_class)]
    workers = workers if workers is not None else min(os.cpu_count() or 1, 8)
    rows: list[dict[str, Any]] = []
    with tqdm(total=len(jobs), desc=f"Drawing fish into {name}", unit="fish", disable=not progress) as bar:
        if workers > 1 and len(jobs) >= 64:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                for fish_rows in pool.map(_render_fish, jobs, chunksize=16):
                    rows.extend(fish_rows)
                    bar.update()
        else:
            for job in jobs:
                rows.extend(_render_fish(job))
                bar.update()
    return rows
