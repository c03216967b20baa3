"""Class activation maps, written from scratch, in two floors over one core (as torchcam's ``methods``):

* ``core``: ``BaseCAM`` (the hooks and the pipeline every method shares), ``LayerCapture``; beside it
  ``session`` (the hook session, finding the layer, every class's gradients in one backward);
* ``gradient``: Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM, LayerCAM, Eigen-Grad-CAM, each a
  ``combine(A, G)``;
* ``gradient_free``: Score-CAM, Ablation-CAM, Eigen-CAM and the original CAM, each a ``class_maps``.

``CAMResult`` and the ``Explainer`` protocol live one floor down (``explain.explainer``), the map
arithmetic in ``explain.maps``; both are re-exported here.
"""

from ..explainer import CAMResult, Explainer
from ..maps import (
    FLAT_ROUNDING_ERRORS,
    NORMALIZATIONS,
    FlatMapWarning,
    check_normalize,
    flat_maps,
    normalize_maps,
    principal_projection,
    upsample,
)
from ..registry import make_cam
from .core import BaseCAM, LayerCapture
from .gradient import EigenGradCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, XGradCAM
from .gradient_free import CAM, AblationCAM, EigenCAM, ScoreCAM
from .session import resolve_layer

__all__ = [
    "CAM", "FLAT_ROUNDING_ERRORS", "NORMALIZATIONS", "AblationCAM", "BaseCAM", "CAMResult", "EigenCAM", "EigenGradCAM",
    "Explainer", "FlatMapWarning", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "LayerCapture", "ScoreCAM",
    "XGradCAM", "check_normalize", "flat_maps", "make_cam", "normalize_maps", "principal_projection",
    "resolve_layer", "upsample",
]
