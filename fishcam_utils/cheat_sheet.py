"""The cheat sheet, the glossary and the references as a page in the notebooks' folder.

They are written once, in ``docs/cheat_sheet.md``; a student in Colab has only the notebooks' folder in
front of her, so ``notebooks/cheat_sheet.ipynb`` carries a copy, made from that page by ``make student``
(a test fails when it is stale).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from .files import atomic_write
from .settings import course_root

SOURCE = "docs/cheat_sheet.md"  # relative to the course's root
SECTIONS = ("Cheat sheet: which method when", "Glossary", "References")
PAGE = "cheat_sheet.ipynb"
INTRO = ("# FishCAM · cheat sheet, glossary, papers\n\n"
         "Which explanation method to use when, the words the course uses, and the papers it cites: the same "
         f"text as in the course's `{SOURCE}` (written there, copied here by `make student`). Nothing to run.\n")


def source_section(text: str, heading: str) -> str:
    """The text of ``## heading`` in ``docs/cheat_sheet.md``, heading included, up to the next ``## `` heading."""
    found = re.search(rf"^## {re.escape(heading)}\n.*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if found is None:
        raise ValueError(f"{SOURCE} has no section '## {heading}'; the cheat-sheet page copies it "
                         f"({', '.join(SECTIONS)})")
    return found.group(0).strip() + "\n"


def cheat_sheet_notebook(text: str) -> dict:
    """The page as nbformat JSON: an introduction, then one Markdown cell per section of ``docs/cheat_sheet.md``."""
    cells = [INTRO] + [source_section(text, heading) for heading in SECTIONS]
    return {"cells": [{"cell_type": "markdown", "id": f"page-{i}", "metadata": {},
                       "source": text.splitlines(keepends=True)}
                      for i, text in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                         "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def _expected(root: Path) -> tuple[Path, str]:
    page = cheat_sheet_notebook((root / SOURCE).read_text(encoding="utf-8"))
    return root / "notebooks" / PAGE, json.dumps(page, indent=1, ensure_ascii=False) + "\n"


def cheat_sheet_is_stale(root: Path | None = None) -> bool:
    """True when ``notebooks/cheat_sheet.ipynb`` is missing or differs from what ``docs/cheat_sheet.md`` gives."""
    path, text = _expected(root or course_root())
    return not path.is_file() or path.read_text(encoding="utf-8") != text


def write_cheat_sheet(root: Path | None = None) -> Path | None:
    """Write the page if it is missing or stale; returns its path when written."""
    path, text = _expected(root or course_root())
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return None
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
