"""The errors the course raises on bad input. Each message names the file or argument and the fix."""

from __future__ import annotations


class FishCAMError(Exception):
    """Base class of every error this package raises on purpose."""


class DataError(FishCAMError, ValueError):
    """A dataset on disk cannot be read as it is: the message says which file and what to do."""


class OfflineError(FishCAMError, RuntimeError):
    """Something must be downloaded and the network is not reachable."""
