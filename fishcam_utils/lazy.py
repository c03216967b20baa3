"""Names of a package that load their module on first use, so that importing the package stays
cheap (torch takes seconds): ``fishcam --help`` and a kernel's first cell must not wait for it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_names(package: str, homes: Mapping[str, Sequence[str]], eager: Sequence[str] = ()) -> tuple[
        list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``(__all__, __getattr__, __dir__)`` for ``package``, whose names listed in ``homes`` (module →
    names) are imported from ``package.<module>`` when first asked for; ``eager`` names are already there."""
    module_of = {name: module for module, names in homes.items() for name in names}
    names = sorted([*eager, *module_of])
    namespace = importlib.import_module(package).__dict__

    def getattr_(name: str) -> Any:
        if name not in module_of:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module_of[name]}", package), name)
        namespace[name] = value  # found at once next time
        return value

    return names, getattr_, lambda: names
