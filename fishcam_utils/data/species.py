"""The invented species of the synthetic dataset and the traits that tell them apart.

Every species wears one trait in each of the three views. In each view, three traits are
unique to one species (that view is the species' *deciding view*) and three are shared by a
pair of species. So:

- any one view identifies 3 species for sure and narrows the other 6 down to pairs, which
  caps a single-view classifier at 6/9 = 66.7 % accuracy;
- any two views tell every species apart (every two species differ in at least two views),
  so a model that fuses views can reach 100 %, and still does with one view missing.

The table is data, not code: change it here to make the task easier or harder.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

VIEWS: tuple[str, ...] = ("side", "back", "belly")

# Traits each view can show. Dark patterns are drawn in a darker shade of the body colour;
# the belly colours are fixed hues.
TRAITS: dict[str, tuple[str, ...]] = {
    "side": ("bars", "eyespot", "spots", "stripes", "band", "chevrons"),
    "back": ("saddle", "twin_spots", "head_cap", "dorsal_line", "speckles", "ladder"),
    "belly": ("red_belly", "yellow_belly", "pearl_row", "belly_bars", "dark_throat", "midline"),
}


@dataclass(frozen=True)
class Species:
    """One invented species: its name, the trait it shows in each view, and its deciding view."""

    name: str
    traits: dict[str, str]
    deciding_view: str

    @property
    def deciding_trait(self) -> str:
        return self.traits[self.deciding_view]


def _species(name: str, side: str, back: str, belly: str, deciding: str) -> Species:
    return Species(name, {"side": side, "back": back, "belly": belly}, deciding)


# Built from a 3x3 pattern: S_k decides by its side, B_k by its back, L_k by its belly;
# B_k and L_k share a side trait, S_k and L_k share a back trait, S_k and B_k share a belly.
SPECIES: tuple[Species, ...] = (
    _species("Zebra Darter", "bars", "dorsal_line", "belly_bars", "side"),
    _species("Ocellated Snapper", "eyespot", "speckles", "dark_throat", "side"),
    _species("Leopard Minnow", "spots", "ladder", "midline", "side"),
    _species("Saddleback Grunt", "stripes", "saddle", "belly_bars", "back"),
    _species("Twinspot Perch", "band", "twin_spots", "dark_throat", "back"),
    _species("Capped Goby", "chevrons", "head_cap", "midline", "back"),
    _species("Ruby Bream", "stripes", "dorsal_line", "red_belly", "belly"),
    _species("Sunbelly Dace", "band", "speckles", "yellow_belly", "belly"),
    _species("Pearlrow Chub", "chevrons", "ladder", "pearl_row", "belly"),
)


# The source task of the course's pretrained stand-in (notebook 03): other invented fish, marked by a
# coloured pattern that shows in every view, so any one view names the species. Nothing here is a
# trait of the course's species: a network pretrained on them has to *transfer* what it learned
# (edges, colours, shapes, where a fish is), not recognise the course's marks.
SOURCE_PATTERNS: tuple[str, ...] = ("rings", "zigzag", "checker", "blotches")
SOURCE_HUES: dict[str, tuple[float, float, float]] = {
    "blue": (0.15, 0.35, 0.85), "orange": (0.95, 0.50, 0.10), "green": (0.15, 0.70, 0.30)}
SOURCE_TRAITS: tuple[str, ...] = tuple(f"{hue}_{pattern}" for pattern in SOURCE_PATTERNS for hue in SOURCE_HUES)
_SOURCE_NAMES = ("Azure Ringfin", "Amber Ringfin", "Jade Ringfin", "Azure Zigzag Eelpout", "Amber Zigzag Eelpout",
                 "Jade Zigzag Eelpout", "Azure Checker Wrasse", "Amber Checker Wrasse", "Jade Checker Wrasse",
                 "Azure Blotched Loach", "Amber Blotched Loach", "Jade Blotched Loach")
SOURCE_SPECIES: tuple[Species, ...] = tuple(
    Species(name, {view: trait for view in VIEWS}, "side") for name, trait in zip(_SOURCE_NAMES, SOURCE_TRAITS))
SPECIES_TABLES: dict[str, tuple[Species, ...]] = {"course": SPECIES, "source": SOURCE_SPECIES}


def species_table(name: str) -> tuple[Species, ...]:
    """A species table by name: ``"course"`` (the course's nine species) or ``"source"`` (the
    pretraining task of the stand-in weights)."""
    if name not in SPECIES_TABLES:
        raise ValueError(f"unknown species table {name!r}; choose one of {', '.join(SPECIES_TABLES)}")
    return SPECIES_TABLES[name]


def class_names(species: tuple[Species, ...] = SPECIES) -> list[str]:
    """The species names in label order (label i is ``class_names()[i]``); ``species`` is a table of
    ``Species`` (default: the course's), or the name of one of ``SPECIES_TABLES``."""
    if isinstance(species, str):
        if species not in SPECIES_TABLES:
            raise ValueError(f"no species table {species!r}; the tables are {', '.join(SPECIES_TABLES)}")
        species = SPECIES_TABLES[species]
    return [s.name for s in species]


def single_view_ceiling(view: str, species: tuple[Species, ...] = SPECIES) -> float:
    """Best accuracy any classifier can reach from ``view`` alone, with balanced classes.

    Species that show the same trait in that view look alike there, so at best one of each
    look-alike group is guessed right: the ceiling is (number of distinct traits) / (species).
    """
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    return len({s.traits[view] for s in species}) / len(species)


def seen_ceiling(view: str, labels, hidden, species: tuple[Species, ...] = SPECIES) -> float:
    """Best expected accuracy from ``view`` alone on these photos: ``labels`` (N,) species indices and ``hidden``
    (N,) bool, True where the photo's trait is wholly hidden. A photo whose trait is seen is worth what
    ``single_view_ceiling`` counts (1 for a trait of its own, 1/k in a group of k look-alikes); one whose trait
    is hidden tells nothing of its species from that view: at best a guess among all of them. In [0, 1]."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, got {view!r}")
    group = {trait: sum(s.traits[view] == trait for s in species) for trait in {s.traits[view] for s in species}}
    worth = [1 / len(species) if gone else 1 / group[species[int(k)].traits[view]] for k, gone in zip(labels, hidden)]
    if not worth:
        raise ValueError("seen_ceiling needs at least one photo")
    return float(sum(worth) / len(worth))


def validate_species(species: tuple[Species, ...] = SPECIES, traits: dict[str, tuple[str, ...]] | None = None) -> None:
    """Check a species table: known traits (``traits``, default the course's ``TRAITS``), unique
    names, and no two species alike in two views."""
    traits = TRAITS if traits is None else traits
    names = [s.name for s in species]
    if len(set(names)) != len(names):
        raise ValueError(f"species names must be unique, got {names}")
    for s in species:
        if set(s.traits) != set(VIEWS):
            raise ValueError(f"{s.name}: traits must name exactly the views {VIEWS}")
        for view, trait in s.traits.items():
            if trait not in traits[view]:
                raise ValueError(f"{s.name}: {trait!r} is not a {view} trait; choose from {traits[view]}")
        if s.deciding_view not in VIEWS:
            raise ValueError(f"{s.name}: deciding view {s.deciding_view!r} is not one of {VIEWS}")
        shared = [o.name for o in species if o is not s and o.traits[s.deciding_view] == s.deciding_trait]
        if shared:
            raise ValueError(f"{s.name}: its deciding trait {s.deciding_trait!r} is shared with {shared}")
    for a, b in combinations(species, 2):
        same = [v for v in VIEWS if a.traits[v] == b.traits[v]]
        if len(same) > 1:
            raise ValueError(f"{a.name} and {b.name} look alike in {same}: no view pair could tell them apart")


validate_species()
validate_species(SOURCE_SPECIES, {view: SOURCE_TRAITS for view in VIEWS})
