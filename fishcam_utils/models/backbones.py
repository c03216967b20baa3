"""The networks ``build_model`` knows, one entry each: how to build it, where its head is, its
sensible Grad-CAM layers, its ImageNet weights and its own build options.

Adding a network is one entry (``BACKBONES.register``, or ``register_backbone``); ``build_model``, ``MultiViewNet``,
``cam_layers``, checkpoints, the stand-in pretraining and ``fishcam train --model`` read this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable

from torch import nn
from torchvision import models as tvm

from ..registry import Registry
from .fishresnet import FishResNet


@dataclass(frozen=True)
class Backbone:
    """One network: ``build(num_classes, **options)`` returns it with a head of its own, whose dotted name
    is ``head`` (``build_model`` replaces it): of ``num_classes`` outputs, or of the network's original
    size where its pretrained weights need it (torchvision's 1000 ImageNet classes)."""

    build: Callable[..., nn.Module]
    head: str  # the final Linear, replaced by the course's head
    cam_layers: tuple[str, ...]  # sensible Grad-CAM targets, input to output
    weights_url: str | None = None  # torchvision's ImageNet weights, if any
    options: Mapping[str, Any] = field(default_factory=dict)  # build options it takes, with their defaults
    from_scratch: bool = False  # meant to train from random initialisation: no remark that ImageNet has none

    def build_options(self, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` over the defaults, as plain JSON values (tuples become lists), to store in a model's config."""
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            takes = ", ".join(self.options) or "none"
            raise ValueError(f"{name} takes no build option {', '.join(unknown)} (its options: {takes})")
        merged = {**self.options, **given}
        return {k: [int(x) for x in v] if isinstance(v, (tuple, list)) else type(self.options[k])(v)
                for k, v in merged.items()}


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    return lambda num_classes: getattr(tvm, name)(weights=None)  # ImageNet's head, as its weights have


def _convnext_nano(num_classes: int) -> nn.Module:
    """ConvNeXt-Tiny's design (torchvision's ``ConvNeXt`` class) with narrow, shallow stages: about
    0.9 M parameters against 28 M, small enough to pretrain on a CPU and to ship as the course
    stand-in's ConvNeXt (1.8 MB in fp16)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    stages = [CNBlockConfig(24, 48, 2), CNBlockConfig(48, 96, 2), CNBlockConfig(96, 192, 2),
              CNBlockConfig(192, None, 2)]
    return ConvNeXt(stages, stochastic_depth_prob=0.05)


def _fishresnet(num_classes: int, width: int, blocks: list[int]) -> nn.Module:
    return FishResNet(num_classes, width=width, blocks=tuple(blocks))


_RESNET_LAYERS = ("layer1", "layer2", "layer3", "layer4")
_CONVNEXT_LAYERS = ("features.1", "features.3", "features.5", "features.7")

BACKBONES: Registry[Backbone] = Registry("model", {
    "fishresnet": Backbone(_fishresnet, "fc", ("stem", "layer1", "layer2"),
                           options=MappingProxyType({"width": 32, "blocks": (2, 2)}), from_scratch=True),
    "resnet18": Backbone(_torchvision("resnet18"), "fc", _RESNET_LAYERS, tvm.ResNet18_Weights.IMAGENET1K_V1.url),
    "resnet34": Backbone(_torchvision("resnet34"), "fc", _RESNET_LAYERS, tvm.ResNet34_Weights.IMAGENET1K_V1.url),
    "resnet50": Backbone(_torchvision("resnet50"), "fc", _RESNET_LAYERS, tvm.ResNet50_Weights.IMAGENET1K_V2.url),
    "convnext_tiny": Backbone(_torchvision("convnext_tiny"), "classifier.2", _CONVNEXT_LAYERS,
                              tvm.ConvNeXt_Tiny_Weights.IMAGENET1K_V1.url),
    "convnext_nano": Backbone(_convnext_nano, "classifier.2", _CONVNEXT_LAYERS),
}, hint="the backbones of fishcam_utils.models.BACKBONES; register_backbone adds one")


def register_backbone(name: str, backbone: Backbone) -> Backbone:
    """Make ``name`` buildable everywhere (``build_model``, ``MultiViewNet``, ``--model``); returns ``backbone``."""
    return BACKBONES.register(name, backbone)


def unregister_backbone(name: str) -> None:
    """Forget a backbone added with ``register_backbone`` (tests, experiments)."""
    BACKBONES.unregister(name)


def backbone_names() -> list[str]:
    """The names ``build_model`` accepts, in table order."""
    return BACKBONES.names()


def get_backbone(name: str) -> Backbone:
    """The entry for ``name``; an unknown name is a ``ValueError`` that lists the known ones."""
    return BACKBONES.lookup(name)
