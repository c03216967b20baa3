"""How the ``fishcam`` command speaks: dataset notes and warnings as plain lines, and an OS error
as one line that names the file, what went wrong and what to do."""

from __future__ import annotations

import contextlib
import errno
import sys
import warnings
from collections.abc import Sequence

# DataWarnings shown on this run, so that the notes that repeat them are not printed twice.
_SHOWN_WARNINGS: set[str] = set()


def say_notes(notes: Sequence[str]) -> None:
    for note in notes:
        if note not in _SHOWN_WARNINGS:
            print("note:", note)


@contextlib.contextmanager
def plain_data_warnings():
    """DataWarnings as ``warning: ...`` lines (no file and line of the package), each remembered."""
    from ..errors import DataWarning

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DataWarning):
                _SHOWN_WARNINGS.add(str(message))
                print(f"warning: {message}", file=sys.stderr)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or write to another disk",
    errno.EFBIG: "the file is too large for where it is written: write to another disk",
    errno.EACCES: "permission denied: choose a folder of your own, or fix its permissions",
    errno.EPERM: "permission denied: choose a folder of your own, or fix its permissions",
    errno.EROFS: "that file system is read-only: choose a folder on a writable disk",
    errno.ENOENT: "it does not exist: check the path",
}


def os_error_line(error: OSError, output_flag: str | None = None, uses_cache: bool = False) -> str:
    """An OS error as one line: the path, what went wrong, and what to do (``output_flag``: the
    flag that chooses where the command writes; ``uses_cache``: it writes the decode cache too)."""
    what = error.strerror or str(error)
    where = error.filename2 or error.filename
    advice = _OS_ADVICE.get(error.errno, "check the path and the disk")
    if output_flag and error.errno != errno.ENOENT:
        cache = "; FISHCAM_CACHE_DIR moves the decode cache" if uses_cache else ""
        advice += f" ({output_flag} chooses the folder{cache})"
    return f"{where}: {what}; {advice}" if where else f"{what}; {advice}"
