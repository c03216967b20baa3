"""Judging explanations, the upper floor of ``explain``: everything notebook 08 and ``fishcam
evaluate-cam`` measure, importable from here.

* ``metrics``: the pointing game, the energy share, deletion and insertion curves, rank correlation;
* ``references``: maps made without the model (random, Sobel edges), registered as explainers;
* ``experiments``: the methods x layers table, the randomisation test, the shortcut's energy;
* ``view_judging``: a multi-view model's view weights, heat and behaviour, side by side;
* ``confidence``: the confidence change of the map-multiplied image, Average Drop, Increase in Confidence,
  sparseness (Gini) and complexity (entropy);
* ``road``: ROAD, removal by linear imputation, most or least relevant first;
* ``arcc``: ARCC, the harmonic mean of coherency, 1 - mean heat and ROAD combined;
* ``random_logit``: the random-logit test (SSIM of the maps of the class and of a random other);
* ``disagreement``: every measure of named map makers on one table (``every_measure``);
* ``agreement``: each measure's ranking of the methods, and Kendall's tau between the rankings.
"""

from .agreement import BETTER, kendall_tau, rankings
from .arcc import arcc, coherency, mean_heat
from .confidence import (
    ConfidenceChange,
    average_drop,
    complexity,
    confidence_change,
    increase_in_confidence,
    sparseness,
)
from .disagreement import ROAD_FRACTIONS, MapMaker, every_measure, map_maker
from .experiments import (
    SANITY_METHODS,
    EvidenceBatch,
    explanation_maps,
    interleaved,
    load_evidence,
    map_scores,
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
from .random_logit import off_classes, random_logit, ssim
from .references import EdgeMap, RandomMap, edge_maps, random_maps, reference_names
from .road import RoadChanges, linear_impute, removed_pixels, road, road_changes, road_combined
from .view_judging import MEASURES, RANKED, judge_views, views_by_class

__all__ = [
    "BASELINES", "BETTER", "ConfidenceChange", "Curve", "EdgeMap", "EvidenceBatch", "MEASURES", "MapMaker", "RANKED",
    "ROAD_FRACTIONS", "RandomMap", "RoadChanges", "SANITY_METHODS", "arcc", "average_drop", "average_ranks",
    "coherency", "complexity", "confidence_change", "deletion_curve", "dilate", "edge_maps", "energy_in_mask",
    "every_measure", "explanation_maps", "increase_in_confidence", "insertion_curve", "interleaved", "judge_views",
    "kendall_tau", "linear_impute", "load_evidence", "make_baseline", "map_maker", "map_scores", "mean_heat",
    "methods_by_layers", "off_classes", "per_class", "plot_sanity_check", "pointing_by_class", "pointing_game",
    "random_logit", "random_maps", "randomized_copies", "rankings", "reference_names", "removed_pixels", "road",
    "road_changes", "road_combined", "sanity_check", "shortcut_energy", "sparseness", "spearman", "ssim",
    "table_methods", "views_by_class",
]
