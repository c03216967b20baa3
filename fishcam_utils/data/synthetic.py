"""The course's default dataset: invented fish species photographed from three views.

``generate_dataset`` writes real PNG files, with a body mask and an evidence mask for every
photo, a ``metadata.csv`` listing them, and a ``dataset.json`` recording how they were made.
Everything is drawn from the seed: the same seed gives byte-identical files. Each photo has
its own random stream, so the same fish looks the same with or without the shortcut marker,
and in the multi-view and the Kaggle layout.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from ..errors import DataError, listing, option
from ..files import hold_folder
from ..settings import course_data, course_image_size, course_seed, data_dir, quick_mode, run_folder, size_folder
from .images import JUNK_FILES
from .fish_drawing import (MARKER_COLOURS, largest_zoom, render_photo, sample_body_colour, sample_degradation,
                           sample_distractors, sample_marker, sample_photo_params)
from .species import SPECIES_TABLES, VIEWS, class_names, seen_ceiling, species_table

FORMAT = "fishcam-synthetic"
FORMAT_VERSION = 1
DISTRACTOR_VERSION = 2  # how distractors are drawn; recorded in dataset.json only for a dataset that has them
SPLITS = ("train", "val", "test")
OUTPUT_LAYOUTS = ("multiview", "kaggle")  # what the generator writes; layouts.LAYOUTS is what loaders read

# Separate random streams, so that changing one option never reshuffles the others.
_STREAM_SPLIT, _STREAM_FISH, _STREAM_MARKER, _STREAM_QUALITY, _STREAM_DISTRACTOR = 1, 2, 3, 4, 5


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How to make a synthetic dataset.

    ``size`` is the image side in pixels, or ``(width, height)``. ``shortcut`` puts a sticker
    whose colour gives away the class on a ``shortcut_rate`` share of the photos in the
    ``shortcut_splits`` (the training split by default), and on no other photo.
    ``layout="kaggle"`` writes the side views only, with body masks only, as the Kaggle fish
    dataset has them. ``species`` names the species table: ``"course"`` (the course's nine) or
    ``"source"`` (the pretraining task of the course's stand-in weights, ``species.SOURCE_SPECIES``).
    ``degraded_share`` of the photos, drawn view by view, have their evidence hidden or degraded (weed, another
    fish or glare over the trait, murky water, motion blur: ``fish_drawing.DEGRADATIONS``), and each photo has
    0 to ``distractors`` objects with trait-like textures in the water away from the fish, with masks of their
    own. Both are 0 here; the course's datasets turn them on (``NUISANCES``, ``course_config``). ``zoom`` draws
    every fish that much larger, as in a close-up, up to where the largest still fits the photo whole
    (``fish_drawing.largest_zoom``: 1.12 for a square photo, 1.40 for a 4:3 one).
    """

    size: int | tuple[int, int] = 64
    fish_per_class: int = 150
    seed: int = 0
    views: tuple[str, ...] = VIEWS
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    shortcut: bool = False
    shortcut_rate: float = 1.0
    shortcut_splits: tuple[str, ...] = ("train",)
    layout: str = "multiview"
    marker_size: float = 0.08  # half the sticker's side, in canvas units (the shorter side is 2): 0.08 is 5 px at 64 px
    species: str = "course"
    degraded_share: float = 0.0
    distractors: int = 0
    zoom: float = 1.0

    @property
    def table(self):
        """The species drawn, in label order."""
        return species_table(self.species)

    def __post_init__(self) -> None:
        # JSON and the CLI hand over lists; keep tuples so that configs compare equal.
        for name in ("views", "split_fractions", "shortcut_splits"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if isinstance(self.size, list):
            object.__setattr__(self, "size", tuple(self.size))
        self.validate()
        object.__setattr__(self, "distractors", int(self.distractors))  # a numpy integer, written as JSON

    @property
    def width(self) -> int:
        return self.size if isinstance(self.size, int) else self.size[0]

    @property
    def height(self) -> int:
        return self.size if isinstance(self.size, int) else self.size[1]

    @property
    def image_views(self) -> tuple[str, ...]:
        """The views written: all of ``views``, or only the side for the Kaggle layout."""
        return ("side",) if self.layout == "kaggle" else self.views

    def validate(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ValueError(f"size must be at least 16 pixels a side, got {self.size!r}")
        if self.fish_per_class < 1:
            raise ValueError(f"fish_per_class must be at least 1, got {self.fish_per_class}")
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown or not self.views:
            raise ValueError(f"views must be a non-empty subset of {VIEWS}, got {self.views!r}")
        fractions = self.split_fractions
        if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6 or fractions[0] <= 0:
            raise ValueError(f"split_fractions must be three shares (train, val, test) summing to 1, got {fractions!r}")
        if self.fish_per_class < sum(f > 0 for f in fractions):
            raise ValueError(f"fish_per_class={self.fish_per_class} is too few to put a fish of each class in every split")
        if not 0 <= self.shortcut_rate <= 1:
            raise ValueError(f"shortcut_rate must lie in [0, 1], got {self.shortcut_rate}")
        if not 0 < self.marker_size <= 0.25:
            raise ValueError(f"marker_size must lie in (0, 0.25] (half the sticker's side in canvas units), "
                             f"got {self.marker_size}")
        if any(s not in SPLITS for s in self.shortcut_splits):
            raise ValueError(f"shortcut_splits must be among {SPLITS}, got {self.shortcut_splits!r}")
        if self.layout not in OUTPUT_LAYOUTS:
            raise ValueError(f"layout must be one of {OUTPUT_LAYOUTS}, got {self.layout!r}")
        if not 0 <= self.degraded_share <= 1:
            raise ValueError(f"degraded_share must lie in [0, 1] (a share of the photos), got {self.degraded_share}")
        if not (isinstance(self.distractors, numbers.Integral) and not isinstance(self.distractors, bool)
                and 0 <= self.distractors <= 8):
            raise ValueError(f"distractors must be a whole number from 0 to 8 (the most per photo), got {self.distractors!r}")
        most = largest_zoom(self.width / self.height)
        if not (isinstance(self.zoom, numbers.Real) and not isinstance(self.zoom, bool) and 0.5 <= self.zoom <= most):
            raise ValueError(f"zoom must be a number from 0.5 to {most:.2f} (how much larger the fish is drawn; above "
                             f"{most:.2f} the largest fish would not fit a {self.width}x{self.height} photo), "
                             f"got {self.zoom!r}")
        if self.species not in SPECIES_TABLES:
            raise ValueError(f"species must be one of {', '.join(SPECIES_TABLES)}, got {self.species!r}")
        if self.shortcut and len(self.table) > len(MARKER_COLOURS):
            raise ValueError(f"{option('shortcut')} gives each class a sticker colour, and there are {len(MARKER_COLOURS)} "
                             f"colours for the {len(self.table)} species of {self.species!r}: use the course's table")

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        if not self.shortcut:
            del values["marker_size"]  # meaningless without stickers: datasets made before it stay current
        if self.species == "course":
            del values["species"]  # the course's table: datasets made before the option stay current
        if values["zoom"] == 1:
            del values["zoom"]  # datasets made before the option stay current
        for name in ("degraded_share", "distractors"):
            if not values[name]:
                del values[name]  # off: datasets made before the options stay current
        if self.distractors:
            # Drawn larger and placed at their drawn size since version 2: a folder of version 1 is drawn again.
            values["distractor_version"] = DISTRACTOR_VERSION
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> SyntheticConfig:
        values = dict(values)
        values.pop("distractor_version", None)  # how they were drawn, not a setting
        return cls(**values)


# The course's photographs are of uneven quality: a quarter of the photos, view by view, have their trait hidden
# or spoilt, so that a fusion which weighs each fish's views has something to do (notebook 04); and up to four
# objects with trait-like textures lie in the water, so that a detector of edges is no explanation (08).
# ``FISHCAM_DATA=clean`` (``settings.course_data``) gives the clean photos the course used before.
NUISANCES = {"degraded_share": 0.25, "distractors": 4}
# The course's two default datasets: what students get, and what quick mode (CI) uses.
DEFAULT_CONFIG = SyntheticConfig(**NUISANCES)
QUICK_CONFIG = SyntheticConfig(fish_per_class=30, **NUISANCES)
# Notebook 08's shortcut sticker: about 9 px wide at 64 px, so that it is as easy to see as a trait.
SHORTCUT_MARKER_SIZE = 0.14


def _table_stream(config: SyntheticConfig) -> list[int]:
    """Another table draws other poses and backgrounds from the same seed (the course's draws stay as they were)."""
    return [] if config.species == "course" else [1000 + sorted(SPECIES_TABLES).index(config.species)]


def split_of_each_fish(config: SyntheticConfig) -> list[list[str]]:
    """For each species, the split of each of its fish: stratified, seeded, whole fish at a time."""
    n = config.fish_per_class
    _, f_val, f_test = config.split_fractions
    n_val = max(1, round(n * f_val)) if f_val > 0 else 0
    n_test = max(1, round(n * f_test)) if f_test > 0 else 0
    splits = []
    for species_index in range(len(config.table)):
        order = np.random.default_rng([config.seed, *_table_stream(config), _STREAM_SPLIT, species_index]).permutation(n)
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
    colour = sample_body_colour(np.random.default_rng([config.seed, *_table_stream(config), _STREAM_FISH, fish_index]))
    rows = []
    for view in config.image_views:
        view_index = VIEWS.index(view)
        params = sample_photo_params(
            np.random.default_rng([config.seed, *_table_stream(config), _STREAM_FISH, fish_index, view_index]), colour, aspect,
            config.zoom)
        marker_rng = np.random.default_rng([config.seed, *_table_stream(config), _STREAM_MARKER, fish_index, view_index])
        has_marker = (
            config.shortcut and split in config.shortcut_splits and marker_rng.random() < config.shortcut_rate
        )
        if has_marker:
            params = dataclasses.replace(params, marker=sample_marker(marker_rng, species_index, aspect),
                                         marker_size=config.marker_size)
        if config.degraded_share:
            quality_rng = np.random.default_rng([config.seed, *_table_stream(config), _STREAM_QUALITY, fish_index, view_index])
            params = dataclasses.replace(params, degradation=sample_degradation(quality_rng, config.degraded_share))
        if config.distractors:
            distractor_rng = np.random.default_rng(
                [config.seed, *_table_stream(config), _STREAM_DISTRACTOR, fish_index, view_index])
            params = dataclasses.replace(params, distractors=sample_distractors(distractor_rng, params, config.distractors,
                                                                                aspect))
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


def _nuisance_columns(config: SyntheticConfig, params, photo) -> dict[str, Any]:
    """The metadata of a photo's degradation and distractors: only for a dataset that has them."""
    columns = {}
    if config.degraded_share:
        strength = params.degradation[1] if photo.degradation else 0.0
        columns.update(degradation=photo.degradation, degradation_strength=round(strength, 4),
                       trait_pixels=photo.trait_pixels, visible_evidence=round(photo.visible_evidence, 4))
    if config.distractors:
        columns.update(distractors=len(params.distractors), distractor_pixels=int(photo.distractor.sum()))
    return columns


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
        raise DataError(f"{root} has no readable dataset.json: it is not a synthetic dataset made by `fishcam make-data`.")
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
        rows = _draw_all(config, tmp, out_dir.name, workers, progress)
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


def _draw_all(config: SyntheticConfig, tmp: Path, name: str, workers: int | None, progress: bool) -> list[dict[str, Any]]:
    """Draw every fish into ``tmp`` (in ``workers`` processes when there are many); their metadata rows, in order."""
    splits = split_of_each_fish(config)
    jobs = [(config, str(tmp), s, n, splits[s][n]) for s in range(len(config.table)) for n in range(config.fish_per_class)]
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
            f"delete them:{listing(theirs)}\nMove them out of {out_dir} first, or write the new dataset to another folder."
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


def default_dataset_dir(quick: bool | None = None, size: int | None = None) -> Path:
    """Where the course keeps its default dataset: quick mode has its own, smaller one, each image
    size its own folder (``synthetic`` at 64 px, ``synthetic-224px`` at 224), each course seed
    other than 0 (``FISHCAM_SEED``) too (``synthetic-seed7``), and the clean photos of ``FISHCAM_DATA=clean``
    (``synthetic-clean``): ``settings.run_folder``."""
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    return data_dir() / (("synthetic-quick" if quick else "synthetic") + size_folder(size) + run_folder())


def course_config(quick: bool | None = None, size: int | None = None, kind: str | None = None) -> SyntheticConfig:
    """The settings of the course's dataset: quick mode's or the full one, at ``size`` pixels (default
    ``course_image_size()``), from the course seed, with the nuisances of ``NUISANCES`` unless ``kind``
    (default ``settings.course_data()``) is "clean"."""
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    config = dataclasses.replace(QUICK_CONFIG if quick else DEFAULT_CONFIG, size=size, seed=course_seed())
    if (course_data() if kind is None else kind) == "clean":
        config = dataclasses.replace(config, **{name: 0 for name in NUISANCES})
    return config


def ensure_synthetic(quick: bool | None = None, progress: bool = True, shortcut: tuple[str, ...] = (),
                     size: int | None = None) -> Path:
    """The course's default dataset, generated on first use (seconds). Returns its root folder.

    In quick mode (``FISHCAM_QUICK=1``) it is a smaller copy with 30 fish per class. Its photos are of uneven
    quality, with distractors in the water (``course_config``; clean with ``FISHCAM_DATA=clean``). It is drawn from
    the course seed (``settings.course_seed()``: 0 unless ``FISHCAM_SEED`` says otherwise). Its photos are
    ``size`` pixels a side (default ``settings.course_image_size()``: 64 on a CPU, 224 on a CUDA GPU).
    ``shortcut=("train", "test")`` gives the same photos with the class-coloured marker (of
    ``SHORTCUT_MARKER_SIZE``) on every photo of those splits (notebook 08), in a folder of its own
    (``synthetic-marker-train-test``).
    """
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    config = course_config(quick, size)
    folder = default_dataset_dir(quick, size)
    if shortcut:
        config = dataclasses.replace(config, shortcut=True, shortcut_splits=tuple(shortcut),
                                     marker_size=SHORTCUT_MARKER_SIZE)
        folder = folder.with_name(folder.name.replace("synthetic", "synthetic-marker-" + "-".join(shortcut), 1))
    return generate_dataset(folder, config, overwrite=True, progress=progress)


def load_metadata(root: str | Path) -> pd.DataFrame:
    """The ``metadata.csv`` of a synthetic dataset: one row per image, paths relative to ``root``."""
    path = Path(root) / "metadata.csv"
    if not path.is_file():
        raise DataError(f"{path} not found: {root} is not a synthetic dataset; make one with `fishcam make-data`.")
    return pd.read_csv(path, keep_default_na=False)


def split_ceiling(root: str | Path, view: str, split: str | None = "test") -> float:
    """The best expected accuracy from ``view`` alone on the photos of ``split`` (None: every photo, as in the
    Kaggle layout, which has no splits) of a synthetic dataset, in [0, 1]: ``species.seen_ceiling``, a photo whose
    trait is wholly hidden (``visible_evidence`` 0, or empty for a trait of no pixel) counted as a guess among all
    species. On clean photos, ``single_view_ceiling`` for balanced splits."""
    meta = load_metadata(root)
    photos = meta[(meta["view"] == view) & ((meta["split"] == split) if split is not None else True)]
    if photos.empty:
        raise DataError(f"{root} has no {view} photo in the {split!r} split; splits: {sorted(set(meta['split']))}")
    if "visible_evidence" in photos:
        hidden = pd.to_numeric(photos["visible_evidence"], errors="coerce").fillna(0) == 0
    else:
        hidden = pd.Series(False, index=photos.index)
    table = species_table(dataset_config(root).species)
    return seen_ceiling(view, photos["label"].to_numpy(), hidden.to_numpy(), table)
