"""The errors the course raises on bad input. Each message names the file or argument and the fix.

A fix is said the way the user can apply it where she is: ``option("unknown_files", "skip")``
reads ``unknown_files='skip'`` in Python and ``--unknown-files skip`` under the ``fishcam``
command, which sets ``on_command_line()`` while it runs.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Sequence
from typing import Any


class FishCAMError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(FishCAMError, ValueError):
    """A dataset on disk cannot be read as it is: the message says which file and what to do."""


class OfflineError(FishCAMError, RuntimeError):
    """Something must be downloaded and the network is not reachable."""


class NoSpaceError(FishCAMError, OSError):
    """A disk is too full, or a folder cannot be written, for what must be saved there; the message says where
    and what to do."""


class ArgumentError(FishCAMError, TypeError, ValueError):
    """An argument of the wrong type, shape or value: the message names it and says what to pass.
    Both a ``TypeError`` and a ``ValueError``, so that either ``except`` catches it."""


class TrainingDiverged(FishCAMError, FloatingPointError):
    """The training loss stopped being a finite number: the message names the epoch, the batch and the likely cause."""


class DataWarning(UserWarning):
    """Something in a dataset was kept or left out by choice, or looks wrong; the message says what."""


_COMMAND_LINE = contextvars.ContextVar("fishcam_command_line", default=False)


@contextlib.contextmanager
def on_command_line() -> Iterator[None]:
    """While active, ``option`` names command-line flags instead of keyword arguments."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def option(name: str, value: Any = True) -> str:
    """How to pass option ``name`` with ``value``, as the user would type it where she is.

    ``option("views", ["side", "top"])`` is ``views=['side', 'top']`` in Python and
    ``--views side,top`` on the command line; ``option("resume")`` is ``resume=True`` or ``--resume``;
    ``None`` reads ``none`` and ``False`` reads ``--no-<name>`` on the command line. ``...``
    stands for a list to fill in: ``views=[...]``, ``--views A,B,...``.
    """
    if not _COMMAND_LINE.get():
        return f"{name}=[...]" if value is Ellipsis else f"{name}={value!r}"
    flag = "--" + name.replace("_", "-")
    if value is True:
        return flag
    if value is False:
        return "--no-" + name.replace("_", "-")
    if value is Ellipsis:
        return f"{flag} A,B,..."
    if value is None:
        return f"{flag} none"
    if isinstance(value, Sequence) and not isinstance(value, str):
        value = ",".join(map(str, value))
    text = str(value)
    return f"{flag} {repr(text) if ' ' in text else text}"


def listing(items: Sequence[object], limit: int = 10) -> str:
    """Items for a message, one an indented line, the first ``limit`` of them: ``"\n  a\n  b\n  ... and 3 more"``."""
    lines = [f"\n  {item}" for item in items[:limit]]
    return "".join(lines) + (f"\n  ... and {len(items) - limit} more" if len(items) > limit else "")


def option_name(name: str) -> str:
    """An option's name where the user is: ``run_dir`` in Python, ``--run-dir`` on the command line."""
    return "--" + name.replace("_", "-") if _COMMAND_LINE.get() else name


class Problems:
    """Problems of one dataset folder, gathered in one pass and raised together.

    Readers call ``add`` for each problem they can step over and go on, or ``add_file`` for a
    file with a problem many files may share (one entry then lists them all); ``raise_if_any``
    raises one ``DataError`` listing every problem (one problem reads as its own message).
    """

    def __init__(self) -> None:
        self._messages: list[str] = []
        self._files: dict[str, list[str]] = {}

    def add(self, message: str) -> None:
        if message not in self._messages:
            self._messages.append(message)

    def add_file(self, path: object, reason: str) -> None:
        """``path`` has the problem ``reason`` (which names no file: it is said once for all of them)."""
        self._files.setdefault(reason, []).append(str(path))

    @property
    def messages(self) -> list[str]:
        grouped = [f"{len(paths)} file(s): {reason}:{listing(paths, 5)}" for reason, paths in self._files.items()]
        return self._messages + grouped

    def __bool__(self) -> bool:
        return bool(self._messages or self._files)

    def __len__(self) -> int:
        return len(self.messages)

    def text(self, where: object) -> str:
        messages = self.messages
        if len(messages) == 1:
            return messages[0]
        listed = "\n".join(f"{i}. {m}" for i, m in enumerate(messages, 1))
        return f"{len(messages)} problems in {where}:\n{listed}"

    def raise_if_any(self, where: object) -> None:
        if self:
            raise DataError(self.text(where))
