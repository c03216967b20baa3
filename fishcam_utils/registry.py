"""One small table type for everything the package looks up by name: backbones, layouts, explanation
methods, fusions, heads, weight sources and the builders ``rebuild_model`` knows.

A ``Registry`` reads as a mapping (name → entry, in the order entries were added), and is added to in
one call, ``register``. A name it does not hold is a ``ValueError`` that says what kind of thing was
asked for and lists the names it holds, so every table answers a typo the same way. Plain Python, no
torch: the command line builds its choices from these tables without waiting for torch to import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """Entries of one ``kind`` (say ``"backbone"``) by name.

    ``key`` turns a name into the form that is compared (``str.lower`` forgives case, say), and
    ``aliases(entry)`` gives other names an entry answers to (a method's label). ``hint`` ends the
    message of an unknown name (where the table lives, how to add to it)."""

    def __init__(self, kind: str, entries: Mapping[str, T] | None = None, *, key: Callable[[str], str] = str,
                 aliases: Callable[[T], tuple[str, ...]] = lambda entry: (), hint: str = "") -> None:
        self.kind, self.key, self.aliases, self.hint = kind, key, aliases, hint
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    # -- reading ------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> T:
        return self._entries[self._find(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"

    def names(self) -> list[str]:
        """The names, in order."""
        return list(self._entries)

    def lookup(self, name: str) -> T:
        """The entry called ``name`` (or one of its aliases); unknown, a ``ValueError`` listing the names."""
        found = self._find(name)
        if found not in self._entries:
            hint = f" ({self.hint})" if self.hint else ""
            raise ValueError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self._entries)}{hint}")
        return self._entries[found]

    def _find(self, name: str) -> str:
        """The stored name that ``name`` means, or ``name`` itself when none does."""
        wanted = self.key(str(name))
        for stored, entry in self._entries.items():
            if wanted in {self.key(stored), *map(self.key, self.aliases(entry))}:
                return stored
        return name

    # -- writing ------------------------------------------------------------------------------
    def register(self, name: str, entry: T, *, before: str | None = None) -> T:
        """Add ``entry`` as ``name`` (at the end, or just before ``before``); returns it. A name or alias
        already taken raises ``ValueError``."""
        taken = {self.key(name), *map(self.key, self.aliases(entry))}
        for stored, other in self._entries.items():
            if taken & {self.key(stored), *map(self.key, self.aliases(other))}:
                raise ValueError(f"the name {name!r} is taken by the {self.kind} {stored!r}; choose another name, "
                                 f"or unregister {stored!r} first")
        if before is not None and before not in self._entries:
            raise ValueError(f"before={before!r} is not a {self.kind}; the {self.kind}s are {', '.join(self._entries)}")
        items = list(self._entries.items())
        at = len(items) if before is None else [n for n, _ in items].index(before)
        items.insert(at, (name, entry))
        self._entries = dict(items)
        return entry

    def unregister(self, name: str) -> None:
        """Forget ``name`` (tests and experiments that added a toy entry); unknown names are ignored."""
        self._entries.pop(self._find(name), None)
