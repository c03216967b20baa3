"""The course's models: FishResNet (from scratch), pretrained backbones with a linear or MLP head,
and multi-view networks that fuse a branch per view (``MultiViewNet``).

Typical use::

    from fishcam_utils.models import build_model, cam_layers
    model = build_model("resnet18", num_classes=9, head="mlp", weights="auto")
    cam_layers(model)        # ['layer1', 'layer2', 'layer3', 'layer4']
"""

from .backbones import BACKBONES, Backbone, backbone_names, get_backbone, register_backbone, unregister_backbone
from .factory import (
    backbone_parameters,
    build_model,
    cam_layers,
    head_name,
    head_parameters,
    model_config,
    rebuild_model,
    register_builder,
    unwrap,
)
from .fishresnet import FishResNet, ResidualBlock
from .fusion import FUSIONS, AttentionFusion, ConcatFusion, GatedFusion, MeanFusion, ViewFusion, make_fusion
from .heads import HEADS, MLPHead, make_head
from .inspection import eval_mode, frozen_parameters, logits_of, model_device, view_weights_of
from .multiview import FusionHead, MultiViewNet, build_multiview
from .pretrained import imagenet_state_dict, read_state_dict, weights_cache_dir
from .weights import WEIGHT_SOURCES, load_weights

__all__ = [
    "WEIGHT_SOURCES", "load_weights", "BACKBONES", "Backbone", "backbone_names", "get_backbone", "register_backbone",
    "unregister_backbone", "FUSIONS", "HEADS", "AttentionFusion", "ConcatFusion", "FusionHead", "GatedFusion",
    "MeanFusion", "MultiViewNet", "ViewFusion", "build_multiview", "make_fusion", "FishResNet", "MLPHead",
    "ResidualBlock", "backbone_parameters", "build_model", "cam_layers", "eval_mode", "frozen_parameters", "logits_of",
    "model_device", "view_weights_of", "head_name", "head_parameters", "imagenet_state_dict", "make_head",
    "model_config", "read_state_dict", "rebuild_model", "register_builder", "unwrap", "weights_cache_dir",
]
