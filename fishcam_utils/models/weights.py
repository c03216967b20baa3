"""Where a model's starting weights come from: one table, ``WEIGHT_SOURCES``, read by ``build_model``
(as timm's pretrained configs are). Each source says in one function what it loads:

* ``"imagenet"``: torchvision's, from the torch cache or downloaded; offline an ``OfflineError`` within
  ``timeout`` seconds;
* ``"auto"``: ImageNet when available, else random initialisation, said in one line;
* ``"course"``: the course's stand-in, pretrained on another synthetic task (``fishcam_utils.standin``);
* ``"pretrained"``: ImageNet when available, else the course's stand-in, said in one line;
* ``"random"`` (or ``None``): random initialisation; and any other string or path: a state-dict file.

A source returns ``Loaded(description, state dict or None, the photo size it was pretrained at or None)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

import torch

from ..errors import OfflineError, option
from ..registry import Registry
from ..standin.recipes import STANDIN_RECIPES
from ..standin.weights import standin_entry, standin_state_dict
from .backbones import Backbone
from .pretrained import imagenet_state_dict, read_state_dict


@dataclass(frozen=True)
class Request:
    """What a source is asked for: backbone ``name`` and its table entry, the build ``config``, how long
    a download may wait and whether to say what happened."""

    name: str
    arch: Backbone
    config: dict[str, Any]
    timeout: float = 5.0
    verbose: bool = True


@dataclass(frozen=True)
class Loaded:
    """What a source gave: ``description`` (recorded on the model as ``fishcam_weights``), the state
    dict (None: random initialisation) and the photo size the weights were pretrained at (None: unknown)."""

    description: str
    state: dict[str, torch.Tensor] | None = None
    pretrained_size: int | None = None


def _random(request: Request) -> Loaded:
    return Loaded("random")


def _imagenet(request: Request) -> Loaded:
    if request.arch.weights_url is None:
        raise ValueError(f"{request.name} has no ImageNet weights (it is one of the course's own networks); use "
                         f"{option('weights', 'course')} for the course's pretrained stand-in, "
                         f"or {option('weights', None)}")
    return Loaded("imagenet", imagenet_state_dict(request.name, request.arch.weights_url, timeout=request.timeout,
                                                  progress=request.verbose))


def _auto(request: Request) -> Loaded:
    """ImageNet when it can be had, else random initialisation, said in one line."""
    if request.arch.weights_url is None:
        if request.verbose and not request.arch.from_scratch:
            print(f"{request.name}: no ImageNet weights exist for it; starting from random initialisation "
                  f"({option('weights', 'course')} loads the course's pretrained stand-in).")
        return Loaded("random")
    try:
        return _imagenet(request)
    except Exception as error:
        if request.verbose:
            print(f"{request.name}: ImageNet weights unavailable ({_unavailable(error)}); starting from random "
                  f"initialisation ({option('weights', 'imagenet')} explains how to add them).")
        return Loaded("random")


def _course(request: Request) -> Loaded:
    """The course's stand-in, after checking it was pretrained with the build arguments asked for."""
    entry = standin_entry(request.name)
    built = entry.get("build", {})
    differ = {k: v for k, v in built.items() if k in request.config and request.config[k] != v}
    if differ:
        asked = ", ".join(f"{k}={request.config[k]!r}" for k in differ)
        needed = ", ".join(f"{k}={v!r}" for k, v in differ.items())
        raise ValueError(f"the course stand-in for {request.name} was pretrained with {needed}, not {asked}: build it "
                         f"with {needed}, or pass {option('weights', None)} to start from random initialisation")
    size = entry.get("image_size")
    return Loaded("course", standin_state_dict(request.name), int(size) if size else None)


def _pretrained(request: Request) -> Loaded:
    """ImageNet weights when they can be had, else the course's stand-in: the same notebook cell
    transfers online and offline, and says which it used."""
    reason = "it has none"
    if request.arch.weights_url is not None:
        try:
            return _imagenet(request)
        except Exception as error:
            if request.name not in STANDIN_RECIPES:
                raise
            reason = _unavailable(error)
    if request.name not in STANDIN_RECIPES:
        raise ValueError(f"{request.name} has neither ImageNet weights nor a course stand-in; use "
                         f"{option('weights', None)} to train it from scratch")
    loaded = _course(request)
    if request.verbose:
        print(f"{request.name}: ImageNet weights unavailable ({reason}); using the course's pretrained stand-in "
              f"(another synthetic task, checkpoints/standin).")
    return loaded


def _unavailable(error: Exception) -> str:
    """Why ImageNet weights could not be had, in a few words for a one-line message."""
    return "offline and not in the torch cache" if isinstance(error, OfflineError) else str(error)[:120]


WEIGHT_SOURCES: Registry[Callable[[Request], Loaded]] = Registry(
    "weight source", {"auto": _auto, "imagenet": _imagenet, "course": _course, "pretrained": _pretrained,
                      "random": _random}, hint="or a path to a state-dict file")


def load_weights(weights: str | os.PathLike | None, request: Request) -> Loaded:
    """What ``weights`` (a name of ``WEIGHT_SOURCES``, None for random, or a state-dict file) gives for ``request``."""
    if weights is None:
        return _random(request)
    if isinstance(weights, str) and weights in WEIGHT_SOURCES:
        return WEIGHT_SOURCES[weights](request)
    if isinstance(weights, (str, os.PathLike)):
        return Loaded(f"file:{os.fspath(weights)}", read_state_dict(weights))
    raise ValueError(f"weights must be one of {', '.join(map(repr, WEIGHT_SOURCES))}, None or a file path, "
                     f"got {weights!r}")
