"""Explanations, written from scratch: the CAM family, guided backpropagation, overlays, and judging them.

Typical use::

    from fishcam_utils.explain import GradCAM, plot_cam
    cam = GradCAM(model, "layer4")
    result = cam(images)                  # maps (N, H, W) in [0, 1], raw (N, h, w), logits, targets
    every = cam.all_classes(images)       # maps (N, K, H, W): every class from one backward pass
    plot_cam(image_rgb, result.maps[0])

Every method, layer-bound or not, follows one protocol (``Explainer``) and is made by name with
``make_cam(name, model, layer)``; ``method_names()`` lists them. For a multi-view model,
``explain_fish(model, dataset, [0, 1, 2], "layer2")`` gives every view's map of the fused logit from one
backward pass. ``fishcam_utils.explain.judging`` measures them (notebook 08).

Floors, each importing only those below: ``maps``, ``targets``, ``augment`` → ``explainer`` → ``registry`` →
``cam`` (``core`` → ``gradient``, ``gradient_free``), ``guided`` → ``overlay``, ``export``, ``multiview`` →
``judging``.
"""

from . import registry
from .cam import (
    CAM,
    AblationCAM,
    BaseCAM,
    EigenCAM,
    EigenGradCAM,
    GradCAM,
    GradCAMPlusPlus,
    HiResCAM,
    LayerCAM,
    LayerCapture,
    ScoreCAM,
    XGradCAM,
    resolve_layer,
)
from .explainer import CAMResult, Explainer, LayerFreeExplainer
from .export import export_cams
from .guided import (
    RULES,
    GradientMap,
    GuidedBackprop,
    GuidedBackpropMap,
    GuidedGradCAM,
    GuidedResult,
    GuidedRuleWarning,
    gradient_to_image,
    guided_gradcam,
    saliency,
)
from .maps import FlatMapWarning, check_normalize, normalize_maps, upsample
from .multiview import FishExplanation, explain_fish, plot_fish_cams
from .overlay import COLORMAPS, heatmap_to_rgb, overlay_heatmap, plot_cam, save_cam_images
from .registry import make_cam, method_names, register
from .targets import Targets, resolve_targets

# isort: split
from . import judging  # noqa: E402  (last: it registers the reference maps, and builds on everything above)
from .judging import EdgeMap, RandomMap

__all__ = [
    "CAM", "COLORMAPS", "RULES", "AblationCAM", "BaseCAM", "CAMResult", "EdgeMap", "EigenCAM", "EigenGradCAM",
    "Explainer", "FishExplanation", "FlatMapWarning", "GradCAM", "GradCAMPlusPlus", "GradientMap", "GuidedBackprop",
    "GuidedBackpropMap", "GuidedGradCAM", "GuidedResult", "GuidedRuleWarning", "HiResCAM", "LayerCAM",
    "LayerCapture", "LayerFreeExplainer", "RandomMap", "ScoreCAM", "Targets", "XGradCAM", "check_normalize",
    "explain_fish", "export_cams", "gradient_to_image", "guided_gradcam", "heatmap_to_rgb", "judging", "make_cam",
    "method_names", "normalize_maps", "overlay_heatmap", "plot_cam", "plot_fish_cams", "register", "registry",
    "resolve_layer", "resolve_targets", "saliency", "save_cam_images", "upsample",
]
