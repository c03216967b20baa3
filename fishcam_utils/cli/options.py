"""What the commands' flags are made of: value types that say what they expect, choices read from
the package's registries, and the option groups several commands share.

Nothing here imports torch: ``fishcam --help`` answers at once. Choices that live in torch-using
registries (backbones, layouts, fusions) are read when a flag is checked or the help is shown.
"""

from __future__ import annotations

import argparse
import importlib
import re
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import Field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the data package imports torch: read only by type checkers here
    from ..data.dataset_index import ScanOptions


class Help(argparse.RawDescriptionHelpFormatter):
    """Shows defaults that say something (not None or False), and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def wrap(text: str) -> str:
    return textwrap.fill(text, 88)


class Registered(Sequence):
    """The names of a registry, read when asked (``"x" in choices``, ``list(choices)``), so that a
    flag offers exactly what the package holds, entries added at run time included."""

    def __init__(self, module: str, names: Callable[[Any], Sequence[str]], first: Sequence[str] = ()) -> None:
        self._module, self._names, self._first = module, names, list(first)

    def _items(self) -> list[str]:
        return [*self._first, *self._names(importlib.import_module(self._module))]

    def __getitem__(self, index):
        return self._items()[index]

    def __len__(self) -> int:
        return len(self._items())

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __contains__(self, name: object) -> bool:
        return name in self._items()

    def __eq__(self, other: object) -> bool:
        return list(self) == list(other) if isinstance(other, (list, tuple, Registered)) else NotImplemented

    def __repr__(self) -> str:
        return repr(self._items())


MODEL_CHOICES = Registered("fishcam_utils.models.backbones", lambda m: m.backbone_names())
LAYOUT_CHOICES = Registered("fishcam_utils.data.layout_readers", lambda m: m.layout_names(), first=["auto"])
FUSION_CHOICES = Registered("fishcam_utils.models.fusion", lambda m: list(m.FUSIONS))
SPLITS = ["train", "val", "test"]


# ---------------------------------------------------------------------------------------
# Value types: each refuses a bad value with what it expected


def size(text: str) -> int | tuple[int, int]:
    """``64`` → 64; ``590x445`` → (590, 445) as (width, height)."""
    try:
        if "x" in text.lower():
            width, height = text.lower().split("x")
            return int(width), int(height)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WIDTHxHEIGHT (e.g. 64 or 590x445), got {text!r}") from None


def number(kind: type, low: float | None = None, *, strict: bool = False, high: float | None = None,
           high_strict: bool = True) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` at least ``low`` (above it when ``strict``) and below ``high``."""
    word = "a whole number" if kind is int else "a number"
    bounds = [] if low is None else [f"above {low}" if strict else f"at least {low}"]
    bounds += [] if high is None else [f"{'below' if high_strict else 'at most'} {high}"]

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
        too_low = low is not None and (value <= low if strict else value < low)
        too_high = high is not None and (value >= high if high_strict else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {word} {' and '.join(bounds)}, got {text}")
        return value

    return parse


POSITIVE_INT = number(int, 1)
POSITIVE = number(float, 0, strict=True)
NONNEGATIVE = number(float, 0)
FRACTION = number(float, 0, high=1)  # [0, 1)
PROBABILITY = number(float, 0, high=1, high_strict=False)  # [0, 1]
IMAGE_SIZE = number(int, 16)


def device(text: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def names(text: str) -> list[str]:
    """``side,back,belly`` → ["side", "back", "belly"]."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        raise argparse.ArgumentTypeError(f"expected names separated by commas (e.g. side,back,belly), got {text!r}")
    return found


def weights(text: str) -> str | None:
    return None if text.lower() in ("none", "random") else text


# ---------------------------------------------------------------------------------------
# Option groups


def reading_options(parser, missing_views: str | None = None, unknown_files: str | None = None) -> None:
    """How a dataset folder is read; without defaults, as the checkpoint's training data was."""
    saved = " (default: as the model's training data was read)"
    parser.add_argument("--views", type=names, help="view names of a multi-view dataset, separated by commas "
                        "(default: side,back,belly)")
    parser.add_argument("--missing-views", default=missing_views, choices=["error", "keep", "drop"],
                        help="what to do with a multi-view fish that lacks a view" + ("" if missing_views else saved))
    parser.add_argument("--unknown-files", default=unknown_files, choices=["error", "skip"],
                        help="what to do with files that are not images" + ("" if unknown_files else saved))


def scan_options(args: argparse.Namespace, saved: Mapping[str, Any] | None = None) -> ScanOptions:
    """The one ``data.ScanOptions`` that the reading flags say (``--layout`` where the command has it,
    ``--views``, ``--unknown-files``, ``--missing-views``): each flag given replaces the ``saved`` record's
    value (a checkpoint's ``preprocessing["scan"]``); one left out (None) keeps it, or the default."""
    from dataclasses import replace

    from ..data.dataset_index import ScanOptions  # imports torch: only when a command runs

    flags = {name: getattr(args, name, None) for name in ("layout", "views", "unknown_files", "missing_views")}
    return replace(ScanOptions.from_dict(saved), **{name: value for name, value in flags.items() if value is not None})


def checkpoint_options(parser, checkpoint_help: str = "a best.pt or last.pt written by fishcam train or fit()",
                       data_help: str = "dataset folder (default: the one the model was trained on)") -> None:
    """A trained model and the split it reads, the way it was trained (the commands after ``train``)."""
    parser.add_argument("--checkpoint", required=True, help=checkpoint_help)
    parser.add_argument("--data", help=data_help)
    parser.add_argument("--split", default="test", choices=SPLITS, help="which split")
    parser.add_argument("--view", help="view, for single-view models (default: the training view)")
    parser.add_argument("--split-seed", type=int, default=0,
                        help="seed of the split, for datasets without split folders")
    parser.add_argument("--device", type=device, help="cpu, cuda, cuda:N or mps (default: the best available)")
    reading_options(parser)


def progress_option(parser, what: str = "no progress bars") -> None:
    parser.add_argument("--no-progress", action="store_true", help=what)


def config_options(group, fields: Sequence[Field], flag_of: Callable[[Field], str]) -> None:
    """One flag per field of a config dataclass (``fit``'s ``TrainConfig``), with the field's default,
    help, choices and range: the command line and Python share one set of defaults and checks."""
    for spec in fields:
        meta = spec.metadata
        if isinstance(spec.default, bool):  # a switch: off unless given
            group.add_argument(flag_of(spec), dest=spec.name, action="store_true", help=meta["help"])
            continue
        choices = list(meta["choices"]) if meta.get("choices") else None
        flag = flag_of(spec)
        group.add_argument(flag, dest=spec.name, default=spec.default, choices=choices,
                           metavar=None if choices else flag[2:].upper().replace("-", "_"),
                           type=None if choices else _field_type(spec), help=meta["help"])


def _field_type(spec: Field) -> Callable[[str], Any]:
    """The parser of a numeric field, with the field's bounds (``low``, ``above``, ``below``)."""
    meta = spec.metadata
    kind = int if str(spec.type).split(" |")[0] == "int" else float
    if meta.get("above") is not None:
        return number(kind, meta["above"], strict=True, high=meta.get("below"))
    return number(kind, meta.get("low"), high=meta.get("below"))
