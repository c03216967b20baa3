"""Student copies of the notebooks: every solution replaced by a placeholder, hidden tests removed.

The notebooks in ``notebooks/`` are the instructor copies. They mark solutions with nbgrader's
markers, so an instructor can also grade with nbgrader:

- in a code cell, the lines from ``### BEGIN SOLUTION`` to ``### END SOLUTION`` become
  ``# YOUR CODE HERE`` and ``raise NotImplementedError()`` at the same indentation (inside a
  function, so that the cell still runs and the checker after it says "not done yet");
- in a markdown cell, the text between the same markers becomes *Your answer here.*;
- the lines from ``### BEGIN HIDDEN TESTS`` to ``### END HIDDEN TESTS`` are removed.

Each cell also carries nbgrader's metadata, derived from what it holds (``nbgrader_metadata``): a task
(a code cell with a solution block) is an autograded answer; the cell that calls its checker is a locked
autograder test worth the task's points (``checks.POINTS``), whose hidden tests fail until the task is
right; a questionnaire answer is a manually graded answer worth 1 point, notebook 09's written audit one worth
``AUDIT_POINTS``, and the worked solutions of the exercises one manually graded answer worth a point per exercise.

``python -m fishcam_utils.student`` (``make student``) puts that metadata on the source notebooks and writes
``notebooks/student/<name>.ipynb`` for every notebook; tests fail when either is stale.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path

from .files import atomic_write
from .settings import course_root

STUDENT_DIR = "student"
BANNER = ("> **Your copy.** The you-write-it tasks are blank: fill in each one, run it, then run the check "
          "below it, which says at once whether it is right and, if not, what to look at. Until a task is "
          "right, the rest of the notebook uses the package's version, so every cell still runs.\n\n")
_SOLUTION = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*(\n|$)",
                       re.MULTILINE | re.DOTALL)
_HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS[^\n]*\n.*?^[ \t]*### END HIDDEN TESTS[^\n]*(\n|$)",
                     re.MULTILINE | re.DOTALL)
PLACEHOLDER = "{indent}# YOUR CODE HERE\n{indent}raise NotImplementedError()\n"
ANSWER = "*Your answer here.*\n"


def _check_markers(text: str, where: str) -> None:
    for begin, end in (("### BEGIN SOLUTION", "### END SOLUTION"), ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")):
        if text.count(begin) != text.count(end):
            raise ValueError(f"{where}: {text.count(begin)} '{begin}' but {text.count(end)} '{end}'; every block "
                             "needs both markers, each on a line of its own")


def student_source(text: str, cell_type: str, where: str = "a cell") -> str:
    """A cell's source with its solutions replaced and its hidden tests removed."""
    _check_markers(text, where)
    text = _HIDDEN.sub("", text)
    if cell_type == "code":
        return _SOLUTION.sub(lambda m: PLACEHOLDER.format(indent=m["indent"]), text)
    return _SOLUTION.sub(ANSWER, text)


NBGRADER_SCHEMA = 3
_CHECK = re.compile(r"= checks\.(\w+)\(")
_FUNCTION = re.compile(r"^def (\w+)\(", re.MULTILINE)
_QUESTION = re.compile(r"^\*\*(\d+)\.\*\*")
# Notebook 09's written explanation audit: one manually graded answer, marked by its rubric's total.
AUDIT, AUDIT_POINTS = "**Your audit.**", 10


def nbgrader_metadata(cell: dict, notebook: str) -> dict | None:
    """The nbgrader metadata ``cell`` of ``notebook`` (its file name) should carry, from what it holds; None
    for a cell nbgrader need not know. Grade ids start with the notebook's number ("05_task_my_grad_cam")."""
    from .checks import POINTS

    text, prefix = "".join(cell.get("source", "")), notebook[:2]

    def meta(grade_id: str, solution: bool, grade: bool, points: int | None = None) -> dict:
        found = {"grade": grade, "grade_id": f"{prefix}_{grade_id}", "locked": grade and not solution,
                 "schema_version": NBGRADER_SCHEMA, "solution": solution, "task": False}
        return found if points is None else {**found, "points": points}

    if cell["cell_type"] == "code":
        if "### BEGIN SOLUTION" in text:
            names = _FUNCTION.findall(text)
            return meta(f"task_{names[0] if names else cell.get('id', 'code')}", solution=True, grade=False)
        check = _CHECK.search(text)
        if check:
            return meta(f"check_{check[1]}", solution=False, grade=True, points=POINTS[check[1]])
        return None
    if "### BEGIN SOLUTION" not in text:
        return None
    question = _QUESTION.match(text)
    if question:
        return meta(f"question_{question[1]}", solution=True, grade=True, points=1)
    if text.startswith(AUDIT):
        return meta("audit", solution=True, grade=True, points=AUDIT_POINTS)
    return meta("exercises", solution=True, grade=True, points=text.count("### BEGIN SOLUTION"))


def mark_for_nbgrader(notebook: dict, name: str) -> dict:
    """A copy of ``notebook`` whose cells carry the nbgrader metadata ``nbgrader_metadata`` gives (and no other)."""
    marked = copy.deepcopy(notebook)
    for cell in marked["cells"]:
        wanted = nbgrader_metadata(cell, name)
        cell["metadata"].pop("nbgrader", None)
        if wanted is not None:
            cell["metadata"]["nbgrader"] = wanted
    return marked


def has_tasks(notebook: dict) -> bool:
    """True if a code cell holds a solution block: a you-write-it task with its checker (worked
    solutions of the exercises, in markdown, are not tasks)."""
    return any(c["cell_type"] == "code" and "### BEGIN SOLUTION" in "".join(c.get("source", ""))
               for c in notebook["cells"])


def student_notebook(notebook: dict, name: str = "notebook") -> dict:
    """The student copy of a notebook (as nbformat JSON): solutions blanked, outputs cleared, a
    banner on the first markdown cell when there are tasks."""
    student = copy.deepcopy(notebook)
    banner_done = not has_tasks(notebook)
    for i, cell in enumerate(student["cells"]):
        text = student_source("".join(cell.get("source", "")), cell["cell_type"], f"{name}, cell {i}")
        if not banner_done and cell["cell_type"] == "markdown" and text.lstrip().startswith("#"):
            title, _, rest = text.partition("\n")
            text, banner_done = f"{title}\n\n{BANNER}{rest.lstrip(chr(10))}", True
        cell["source"] = text.splitlines(keepends=True)
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return student


def _dump(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def expected_copies(notebooks: Path | None = None) -> dict[Path, str]:
    """Each source notebook's path and each student copy's, with the text it should hold: the source
    marked for nbgrader, the copy made from it."""
    notebooks = notebooks or course_root() / "notebooks"
    copies = {}
    for source in sorted(notebooks.glob("*.ipynb")):
        notebook = mark_for_nbgrader(json.loads(source.read_text()), source.name)
        copies[source] = _dump(notebook)
        copies[notebooks / STUDENT_DIR / source.name] = _dump(student_notebook(notebook, source.name))
    return copies


def write_student_copies(notebooks: Path | None = None) -> list[Path]:
    """Mark every source notebook for nbgrader and write every student copy, where missing or stale; returns
    the files written."""
    written = []
    for path, text in expected_copies(notebooks).items():
        if not path.is_file() or path.read_text() != text:
            with atomic_write(path, "w", encoding="utf-8") as handle:
                handle.write(text)
            written.append(path)
    return written


def stale_copies(notebooks: Path | None = None) -> list[Path]:
    """The sources whose nbgrader metadata is stale, and the student copies that are missing, differ from
    what their sources give, or have no source."""
    notebooks = notebooks or course_root() / "notebooks"
    expected = expected_copies(notebooks)
    orphans = [p for p in sorted((notebooks / STUDENT_DIR).glob("*.ipynb")) if p not in expected]
    return [p for p, text in expected.items() if not p.is_file() or p.read_text() != text] + orphans


def main() -> int:
    from .cheat_sheet import write_cheat_sheet

    page = write_cheat_sheet()  # first: it gets a student copy too
    if page is not None:
        print(f"wrote {page} (from docs/cheat_sheet.md)")
    written = write_student_copies()
    for path in written:
        print(f"wrote {path}")
    print(f"{len(written)} notebooks written" if written
          else "the nbgrader metadata and the student copies are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
