"""Explanations, written from scratch: the CAM family, guided backpropagation, overlays.

Typical use::

    from fishcam_utils.explain import GradCAM, plot_cam
    cam = GradCAM(model, "layer4")
    result = cam(images)                  # maps (N, H, W) in [0, 1], raw (N, h, w), logits, targets
    every = cam.all_classes(images)       # maps (N, K, H, W): every class from one backward pass
    plot_cam(image_rgb, result.maps[0])

For a multi-view model, ``explain_fish(model, dataset, [0, 1, 2], "layer2")`` gives every view's
map of the fused logit from one backward pass, and ``plot_fish_cams`` shows them with the view weights.
"""

from . import registry
from .cam import (
    CAM,
    AblationCAM,
    BaseCAM,
    CAMResult,
    EigenCAM,
    EigenGradCAM,
    FlatMapWarning,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCapture,
    LayerCAM,
    ScoreCAM,
    XGradCAM,
    make_cam,
    normalize_maps,
    resolve_layer,
    upsample,
)
from .guided import (
    RULES,
    GuidedBackprop,
    GuidedGradCAM,
    GuidedResult,
    GuidedRuleWarning,
    gradient_to_image,
    guided_gradcam,
    saliency,
)
from .export import export_cams
from .registry import method_names, register
from .targets import Targets, resolve_targets
from .multiview import FishExplanation, explain_fish, plot_fish_cams
from .overlay import COLORMAPS, heatmap_to_rgb, overlay_heatmap, plot_cam, save_cam_images

__all__ = [
    "CAM", "COLORMAPS", "FishExplanation", "explain_fish", "plot_fish_cams", "RULES", "GuidedBackprop", "GuidedGradCAM",
    "GuidedResult", "GuidedRuleWarning", "gradient_to_image", "guided_gradcam", "saliency", "AblationCAM",
    "BaseCAM", "CAMResult", "EigenCAM", "EigenGradCAM", "export_cams", "FlatMapWarning", "GradCAM", "GradCAMPlusPlus", "HiResCAM",
    "LayerCAM", "LayerCapture", "ScoreCAM", "Targets", "XGradCAM", "heatmap_to_rgb", "make_cam", "method_names",
    "normalize_maps", "overlay_heatmap", "plot_cam", "register", "registry", "resolve_layer", "resolve_targets",
    "save_cam_images", "upsample",
]
