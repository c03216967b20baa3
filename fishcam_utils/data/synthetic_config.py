"""How a synthetic dataset is made: ``SyntheticConfig``, and the course's settings of it.

A config says everything the generator draws from: size, fish per species, seed, views, split
shares, the shortcut sticker, the species table, and the nuisances (degraded photos, distractors,
zoom). It is saved in the dataset's ``dataset.json`` (``to_dict``) and read back (``from_dict``).
"""

from __future__ import annotations

import dataclasses
import numbers
from typing import Any

from ..errors import option
from .fish_drawing import MARKER_COLOURS
from .photo_params import largest_zoom
from .species import SPECIES_TABLES, VIEWS, species_table

DISTRACTOR_VERSION = 2  # how distractors are drawn; recorded in dataset.json only for a dataset that has them
SPLITS = ("train", "val", "test")
OUTPUT_LAYOUTS = ("multiview", "kaggle")  # what the generator writes; layouts.LAYOUTS is what loaders read


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
    fish or glare over the trait, murky water, motion blur: ``photo_params.DEGRADATIONS``), and each photo has
    0 to ``distractors`` objects with trait-like textures in the water away from the fish, with masks of their
    own. Both are 0 here; the course's datasets turn them on (``NUISANCES``, ``course_config``). ``zoom`` draws
    every fish that much larger, as in a close-up, up to where the largest still fits the photo whole
    (``photo_params.largest_zoom``: 1.12 for a square photo, 1.40 for a 4:3 one).
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
            raise ValueError(f"fish_per_class={self.fish_per_class} is too few to put a fish of each class in every "
                             "split")
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
            raise ValueError("distractors must be a whole number from 0 to 8 (the most per photo), "
                             f"got {self.distractors!r}")
        most = largest_zoom(self.width / self.height)
        if not (isinstance(self.zoom, numbers.Real) and not isinstance(self.zoom, bool) and 0.5 <= self.zoom <= most):
            raise ValueError(f"zoom must be a number from 0.5 to {most:.2f} (how much larger the fish is drawn; above "
                             f"{most:.2f} the largest fish would not fit a {self.width}x{self.height} photo), "
                             f"got {self.zoom!r}")
        if self.species not in SPECIES_TABLES:
            raise ValueError(f"species must be one of {', '.join(SPECIES_TABLES)}, got {self.species!r}")
        if self.shortcut and len(self.table) > len(MARKER_COLOURS):
            raise ValueError(f"{option('shortcut')} gives each class a sticker colour, and there are "
                             f"{len(MARKER_COLOURS)} colours for the {len(self.table)} species of {self.species!r}: "
                             "use the course's table")

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

