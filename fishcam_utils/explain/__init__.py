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

from .cam import (
    CAM,
    METHODS,
    BaseCAM,
    CAMResult,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCapture,
    LayerCAM,
    ScoreCAM,
    make_cam,
    normalize_maps,
    resolve_layer,
    resolve_targets,
    upsample,
)
from .guided import RULES, GuidedBackprop, GuidedResult, gradient_to_image, guided_gradcam, saliency
from .multiview import FishExplanation, explain_fish, plot_fish_cams
from .overlay import COLORMAPS, heatmap_to_rgb, overlay_heatmap, plot_cam, save_cam_images

__all__ = [
    "CAM", "COLORMAPS", "FishExplanation", "explain_fish", "plot_fish_cams", "RULES", "GuidedBackprop", "GuidedResult", "gradient_to_image", "guided_gradcam", "saliency", "METHODS", "BaseCAM", "CAMResult", "GradCAM", "GradCAMPlusPlus", "HiResCAM", "LayerCAM", "LayerCapture",
    "ScoreCAM", "heatmap_to_rgb", "make_cam", "normalize_maps", "overlay_heatmap", "plot_cam", "resolve_layer",
    "resolve_targets", "save_cam_images", "upsample",
]
