"""Judging explanations, the upper floor of ``explain``: everything notebook 08 and ``fishcam
evaluate-cam`` measure, importable from here.

* ``metrics``: the pointing game, the energy share, deletion and insertion curves, rank correlation;
* ``references``: maps made without the model (random, Sobel edges), registered as explainers;
* ``experiments``: the methods x layers table, the randomisation test, the shortcut's energy;
* ``view_judging``: a multi-view model's view weights, heat and behaviour, side by side.
"""

from .experiments import (
    SANITY_METHODS,
    EvidenceBatch,
    explanation_maps,
    interleaved,
    load_evidence,
    methods_by_layers,
    plot_sanity_check,
    pointing_by_class,
    randomized_copies,
    sanity_check,
    shortcut_energy,
    table_methods,
)
from .metrics import (
    BASELINES,
    Curve,
    average_ranks,
    deletion_curve,
    dilate,
    energy_in_mask,
    insertion_curve,
    make_baseline,
    per_class,
    pointing_game,
    spearman,
)
from .references import EdgeMap, RandomMap, edge_maps, random_maps, reference_names
from .view_judging import MEASURES, RANKED, judge_views, views_by_class

__all__ = [
    "BASELINES", "MEASURES", "RANKED", "SANITY_METHODS", "Curve", "EdgeMap", "EvidenceBatch", "RandomMap",
    "average_ranks", "deletion_curve", "dilate", "edge_maps", "energy_in_mask", "explanation_maps", "insertion_curve",
    "interleaved", "judge_views", "load_evidence", "make_baseline", "methods_by_layers", "per_class",
    "plot_sanity_check", "pointing_by_class", "pointing_game", "random_maps", "randomized_copies", "reference_names",
    "sanity_check", "shortcut_energy", "spearman", "table_methods", "views_by_class",
]
