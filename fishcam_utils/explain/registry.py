"""The explanation methods, each declared once.

A method is a class whose attributes say what it is: ``name`` (what the CLI, ``make_cam`` and the
notebooks call it), ``label`` (what menus and plots show), ``family`` (``"gradient"``,
``"gradient-free"`` or ``"guided"``), ``needs_gradients``, ``uses_capture`` (its maps can be made from
one capture of activations and every class's gradients, so switching to it costs no pass through
the network; default: ``needs_gradients``) and ``any_layer`` (False for CAM, which works only at the
layer before the head).
``@register`` puts it here; the CLI choices, the explorer's menu and capture cache, the methods x
layers table and ``make_cam`` all read this registry, so a new method is one class.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FAMILIES = ("gradient", "gradient-free", "guided")


@dataclass(frozen=True)
class Method:
    """What the registry knows of one method (read from its class)."""

    name: str
    label: str
    family: str
    needs_gradients: bool
    from_capture: bool
    any_layer: bool
    cls: type


_METHODS: dict[str, Method] = {}


def canonical(name: str) -> str:
    """The spelling-free form of a method name: ``"Grad-CAM++"``, ``"gradcam_plusplus"`` and
    ``"gradcam++"`` are one method."""
    return str(name).lower().replace("-", "").replace("_", "").replace(" ", "").replace("plusplus", "++")


def register(cls: type) -> type:
    """Class decorator: add a method to the registry (its attributes as above). A name or label
    already taken by another class raises ``ValueError``."""
    needs = bool(getattr(cls, "needs_gradients", True))
    method = Method(name=cls.name, label=getattr(cls, "label", cls.name), family=getattr(cls, "family", "gradient"),
                    needs_gradients=needs, from_capture=bool(getattr(cls, "uses_capture", needs)),
                    any_layer=bool(getattr(cls, "any_layer", True)), cls=cls)
    if method.family not in FAMILIES:
        raise ValueError(f"{cls.__name__}.family must be one of {FAMILIES}, got {method.family!r}")
    for other in _METHODS.values():
        if other.cls is not cls and {canonical(method.name), canonical(method.label)} & {canonical(other.name),
                                                                                          canonical(other.label)}:
            raise ValueError(f"{cls.__name__}'s name {method.name!r} or label {method.label!r} is taken by "
                             f"{other.cls.__name__} ({other.name!r}, {other.label!r})")
    _METHODS[method.name] = method
    return cls


def unregister(name: str) -> None:
    """Remove a method (for tests and experiments that registered a toy one)."""
    _METHODS.pop(lookup(name).name)


def lookup(name: str) -> Method:
    """The method called ``name`` (its name or label, in any spelling ``canonical`` forgives);
    an unknown one raises ``ValueError`` listing the names."""
    key = canonical(name)
    for method in _METHODS.values():
        if key in (canonical(method.name), canonical(method.label)):
            return method
    raise ValueError(f"unknown explanation method {name!r}; choose one of {', '.join(_METHODS)}")


def methods(any_layer: bool | None = None, family: str | None = None) -> Iterator[Method]:
    """Registered methods in declaration order, optionally only those usable at any layer, or of a family."""
    for method in _METHODS.values():
        if (any_layer is None or method.any_layer == any_layer) and (family is None or method.family == family):
            yield method


def method_names(**filters: Any) -> list[str]:
    """Names of ``methods(**filters)``: the CLI's choices."""
    return [m.name for m in methods(**filters)]
