"""One function builds every model of the course: ``build_model(name, num_classes, ...)``.

Each model it returns carries what is needed to rebuild it (``model_config(model)``, saved in
checkpoints), which submodule is its head (for freezing the backbone) and the names of its
sensible Grad-CAM target layers in network order (``cam_layers(model)``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any, Callable

import torch
from torch import nn

from ..registry import Registry
from ..runtime import unwrap
from .backbones import BACKBONES, get_backbone
from .heads import make_head
from .weights import Request, load_weights


def _set_submodule(model: nn.Module, dotted: str, module: nn.Module) -> None:
    parent_name, _, child = dotted.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, module)


def build_model(
    name: str,
    num_classes: int,
    *,
    weights: str | os.PathLike | None = "auto",
    head: str = "linear",
    hidden: Sequence[int] = (512, 256),
    dropout: float = 0.3,
    timeout: float = 5.0,
    verbose: bool = True,
    **options: Any,
) -> nn.Module:
    """A classifier ``name`` (one of ``backbone_names()``) for ``num_classes`` classes.

    ``weights``: ``"imagenet"`` (torchvision's, from the torch cache or downloaded; offline it
    raises ``OfflineError`` within ``timeout`` s), ``"auto"`` (ImageNet when available, else random
    initialisation, printed in one line), ``"course"`` (the course's stand-in, pretrained on another
    synthetic task and shipped in ``checkpoints/standin``: see ``fishcam_utils.standin``), ``"pretrained"``
    (ImageNet when available, else the course's stand-in, printed in one line; an error when neither
    exists), ``None`` (random) or a path to a state dict.
    ``head``: ``"linear"`` or ``"mlp"`` (``hidden`` sizes, ``dropout``). ``options``: the network's own
    build options (FishResNet's ``width`` and ``blocks``). Input (B, 3, H, W) normalised images →
    (B, num_classes) logits.
    """
    arch = get_backbone(name)
    if not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
    built = arch.build_options(name, options)
    config: dict[str, Any] = {"name": name, "num_classes": num_classes, "head": head, **built}
    if head == "mlp":
        config.update(hidden=[int(h) for h in hidden], dropout=float(dropout))
    model = arch.build(num_classes, **built)
    in_features = model.get_submodule(arch.head).in_features
    loaded = load_weights(weights, Request(name, arch, config, timeout, verbose))
    if loaded.state is not None:
        _load_backbone(model, arch.head, loaded.state, loaded.description)
    # The head is replaced after loading, so it starts fresh whatever the weights held.
    _set_submodule(model, arch.head, make_head(head, in_features, num_classes, hidden, dropout))
    model.fishcam = config
    model.fishcam_weights = loaded.description
    model.fishcam_pretrained_size = loaded.pretrained_size  # fit warns when it trains at another size
    return model


def _load_backbone(model: nn.Module, head: str, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``: every backbone tensor must match; head tensors may be absent
    or of another shape (another class count), since the head is replaced anyway."""
    own = model.state_dict()
    is_head = lambda k: k.startswith(head + ".")  # noqa: E731
    wrong_shape = [k for k, v in state.items() if k in own and own[k].shape != v.shape and not is_head(k)]
    missing = [k for k in own if k not in state and not is_head(k)]
    unexpected = [k for k in state if k not in own]
    if wrong_shape or missing or unexpected:
        raise ValueError(
            f"the weights ({source}) do not fit {type(model).__name__}: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}), "
            f"{len(wrong_shape)} of another shape (e.g. {wrong_shape[:3]}). "
            f"Pass weights saved from the same architecture."
        )
    model.load_state_dict({k: v for k, v in state.items() if not is_head(k) or own[k].shape == v.shape}, strict=False)


def model_config(model: nn.Module) -> dict[str, Any]:
    """The build arguments of a model made by ``build_model`` (plain JSON types, no weights)."""
    model = unwrap(model)
    config = getattr(model, "fishcam", None)
    if config is None:
        raise ValueError(f"{type(model).__name__} was not built by fishcam_utils.models.build_model, so it has no "
                         f"build arguments; build it with build_model(...) to save and reload it by name")
    return dict(config)


def rebuild_model(config: dict[str, Any]) -> nn.Module:
    """An untrained model with the architecture ``config`` describes (see ``model_config``)."""
    config = dict(config)
    try:
        name, num_classes = config.pop("name"), config.pop("num_classes")
    except KeyError as missing:
        raise ValueError(f"model config {config} lacks {missing}") from None
    if name not in BACKBONES and name in EXTRA_BUILDERS:
        return EXTRA_BUILDERS[name](num_classes=num_classes, **config)
    return build_model(name, num_classes, weights=None, verbose=False, **config)


# Other model families (the multi-view networks) register their builders here.
EXTRA_BUILDERS: Registry[Callable[..., nn.Module]] = Registry("model family")


def register_builder(name: str, builder: Callable[..., nn.Module]) -> None:
    """Let ``rebuild_model`` rebuild models named ``name`` with ``builder(num_classes=..., **config)``."""
    EXTRA_BUILDERS.unregister(name)  # registered again (its module reloaded): the new builder replaces the old
    EXTRA_BUILDERS.register(name, builder)


def head_name(model: nn.Module) -> str:
    """Dotted name of the classifier head: everything else is the backbone."""
    config = model_config(model)
    if config["name"] in BACKBONES:
        return BACKBONES[config["name"]].head
    return getattr(unwrap(model), "head_name", "head")


def head_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """The head's parameters."""
    return unwrap(model).get_submodule(head_name(model)).parameters()


def backbone_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Every parameter not in the head."""
    prefix = head_name(model) + "."
    return (p for n, p in unwrap(model).named_parameters() if not n.startswith(prefix))


def cam_layers(model: nn.Module) -> list[str]:
    """Names of the model's sensible Grad-CAM target layers, from input to output (the last is
    usually the best first choice). Works for any module that lists them in ``cam_layer_names``."""
    model = unwrap(model)
    config = getattr(model, "fishcam", None)
    if config is not None and config["name"] in BACKBONES:
        return list(BACKBONES[config["name"]].cam_layers)
    names = getattr(model, "cam_layer_names", None)
    if names is None:
        raise ValueError(f"{type(model).__name__} does not list its CAM layers; build it with build_model(...) "
                         f"or give a target layer by name")
    return list(names)
