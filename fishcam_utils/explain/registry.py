"""The explanation methods, each declared once, and ``make_cam``, which makes one by name.

A method is a class that follows the ``Explainer`` protocol (``explainer.py``); its attributes say
what it is: ``name`` (what the CLI, ``make_cam`` and the notebooks call it), ``label`` (what menus and
plots show), ``family`` (``"gradient"``, ``"gradient-free"``, ``"guided"``, ``"input-gradient"`` or
``"reference"``), ``needs_layer`` (False for the maps made at the input: guided backprop, the plain
gradient, the random and the edge maps), ``needs_gradients``, ``uses_capture`` (its maps can be made
from one capture of activations and every class's gradients, so switching to it costs no pass through
the network; default: ``needs_gradients``) and ``any_layer`` (False for CAM, which works only at the
layer before the head).
``@register`` puts it here; the CLI choices, the explorer's menu and capture cache, the methods x
layers table, the sanity check and ``make_cam`` all read this registry, so a new method is one class.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..registry import Registry
from .explainer import FAMILIES, Explainer


@dataclass(frozen=True)
class Method:
    """What the registry knows of one method (read from its class)."""

    name: str
    label: str
    family: str
    needs_layer: bool
    needs_gradients: bool
    from_capture: bool
    any_layer: bool
    cls: type


def canonical(name: str) -> str:
    """The spelling-free form of a method name: ``"Grad-CAM++"``, ``"gradcam_plusplus"`` and
    ``"gradcam++"`` are one method."""
    return str(name).lower().replace("-", "").replace("_", "").replace(" ", "").replace("plusplus", "++")


METHODS: Registry[Method] = Registry("explanation method", key=canonical, aliases=lambda m: (m.label,),
                                     hint="fishcam_utils.explain.method_names()")


def register(cls: type) -> type:
    """Class decorator: add a method to the registry (its attributes as above). A class that does not
    follow the ``Explainer`` protocol, or a name or label already taken by another class, raises."""
    if not (isinstance(cls, type) and issubclass(cls, Explainer)):
        raise TypeError(f"{getattr(cls, '__name__', cls)!r} is not an Explainer: derive it from "
                        f"fishcam_utils.explain.BaseCAM (a CAM), LayerFreeExplainer (a map that needs no layer) "
                        f"or Explainer")
    needs = bool(cls.needs_gradients)
    method = Method(name=cls.name, label=getattr(cls, "label", cls.name), family=cls.family,
                    needs_layer=bool(cls.needs_layer), needs_gradients=needs,
                    from_capture=bool(getattr(cls, "uses_capture", needs)), any_layer=bool(cls.any_layer), cls=cls)
    if method.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.family must be one of {FAMILIES}, got {method.family!r}")
    before = None
    if method.name in METHODS and _same_class(METHODS[method.name].cls, cls):
        # The same class defined again (its module reloaded): it replaces itself, in its place.
        names = METHODS.names()
        at = names.index(METHODS[method.name].name)
        before = names[at + 1] if at + 1 < len(names) else None
        METHODS.unregister(method.name)
    METHODS.register(method.name, method, before=before)
    return cls


def _same_class(old: type, new: type) -> bool:
    """The same class, or a new definition of it from the same module (a reload): never a user's class
    that happens to share a name with one of the package's."""
    return old is new or (old.__module__, old.__qualname__) == (new.__module__, new.__qualname__)


def unregister(name: str) -> None:
    """Remove a method (for tests and experiments that registered a toy one)."""
    METHODS.unregister(lookup(name).name)


def lookup(name: str) -> Method:
    """The method called ``name`` (its name or label, in any spelling ``canonical`` forgives);
    an unknown one raises ``ValueError`` listing the names."""
    return METHODS.lookup(name)


def methods(any_layer: bool | None = None, family: str | None = None,
            needs_layer: bool | None = None) -> Iterator[Method]:
    """Registered methods in declaration order, optionally only those usable at any layer, of a family,
    or that need (or need no) target layer."""
    for method in METHODS.values():
        if ((any_layer is None or method.any_layer == any_layer) and (family is None or method.family == family)
                and (needs_layer is None or method.needs_layer == needs_layer)):
            yield method


def method_names(**filters: Any) -> list[str]:
    """Names of ``methods(**filters)``: the CLI's choices."""
    return [m.name for m in methods(**filters)]


def make_cam(method: str, model: Any, layer: Any = None, **options: Any) -> Explainer:
    """An explainer by method name or label (any spelling ``canonical`` forgives): one of
    ``method_names()``. ``layer`` is the target layer of a method that needs one, and is not passed to
    one that needs none (guided backprop, the gradient, the random and the edge maps), so one call
    makes any row of a methods table. Unknown ``options`` raise ``TypeError`` naming the ones it takes."""
    entry = lookup(method)
    parameters = inspect.signature(entry.cls.__init__).parameters
    accepted = [name for name in parameters if name not in ("self", "model", "layer")]
    unknown = sorted(set(options) - set(accepted))
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
        raise TypeError(f"{entry.cls.__name__} takes no option {', '.join(unknown)}; its options are "
                        f"{', '.join(accepted) or 'none'}")
    if not entry.needs_layer:
        return entry.cls(model, **options)
    if layer is None:
        raise ValueError(f"{entry.label} explains at a target layer: make_cam({entry.name!r}, model, layer), "
                         f"e.g. layer='layer4' for a ResNet")
    return entry.cls(model, layer, **options)
