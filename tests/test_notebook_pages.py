"""Every notebook reads as a textbook chapter: objectives, prerequisites and run time at the top, a
summary, and exercises each with a difficulty, a hint and a worked solution (blank in the student copy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fishcam_utils.student import ANSWER, student_notebook

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISE = re.compile(r"^(\d+)\. \*\*(.+?)\*\* \((★{1,3})\)\.(.*?)(?=^\d+\. \*\*|\Z)", re.MULTILINE | re.DOTALL)
SOLUTION = re.compile(r"^\*\*(\d+)\. (.+?)\*\*\n### BEGIN SOLUTION\n(.*?)^### END SOLUTION$", re.MULTILINE | re.DOTALL)


def markdown(notebook: dict) -> list[str]:
    return ["".join(c["source"]) for c in notebook["cells"] if c["cell_type"] == "markdown"]


def section(cells: list[str], heading: str) -> str:
    found = [c for c in cells if re.search(rf"^## {heading}\s*$", c, re.MULTILINE)]
    assert len(found) == 1, f"expected one cell with '## {heading}', found {len(found)}"
    return found[0].split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def title(text: str) -> str:
    return text.strip().rstrip(".?!").strip()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_a_notebook_opens_with_objectives_prerequisites_and_run_time_and_has_a_summary(path):
    cells = markdown(json.loads(path.read_text()))
    top = cells[0]
    for part in ("**You will learn to**", "**Prerequisites", "**Run time"):
        assert part in top, f"{path.name}: the first markdown cell lacks {part}"
    assert "quick mode" in top.lower() and "full mode" in top.lower(), f"{path.name}: run time for both modes"
    assert section(cells, "Summary").strip()


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_exercise_has_a_difficulty_a_hint_and_a_worked_solution(path):
    notebook = json.loads(path.read_text())
    cells = markdown(notebook)
    exercises = EXERCISE.findall(section(cells, "Exercises"))
    assert len(exercises) >= 4, f"{path.name}: {len(exercises)} exercises found in the form '1. **Title** (★★).'"
    assert [int(n) for n, *_ in exercises] == list(range(1, len(exercises) + 1))
    for number, name, _, body in exercises:
        assert "*Hint:*" in body, f"{path.name}, exercise {number} ({name}) has no *Hint:*"
    solutions = SOLUTION.findall(section(cells, "Solutions"))
    assert [(int(n), title(t)) for n, t, _ in solutions] == [(int(n), title(t)) for n, t, *_ in exercises]
    assert all(len(text.split()) >= 25 for _, _, text in solutions), "a worked solution, not a one-liner"
    # The student copy keeps each heading and blanks each solution.
    student = section(markdown(student_notebook(notebook, path.name)), "Solutions")
    assert student.count(ANSWER.strip()) == len(solutions) and "```" not in student


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_code_of_every_worked_solution_is_python(path):
    solutions = SOLUTION.findall(section(markdown(json.loads(path.read_text())), "Solutions"))
    for number, name, text in solutions:
        for block in re.findall(r"```python\n(.*?)```", text, re.DOTALL):
            try:
                compile(block, f"{path.name}, solution {number}", "exec")
            except SyntaxError as error:
                pytest.fail(f"{path.name}, solution {number} ({name}): {error}")
