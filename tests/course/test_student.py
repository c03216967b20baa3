"""Student copies: up to date, every solution blank and every hidden test gone; each task's check says
"not done yet" on the blank copy and passes on the instructor's solution."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fishcam_utils import checks
from fishcam_utils.student import (
    AUDIT,
    AUDIT_POINTS,
    STUDENT_DIR,
    has_tasks,
    stale_copies,
    student_notebook,
    student_source,
)

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
WITH_TASKS = [p for p in SOURCES if has_tasks(json.loads(p.read_text()))]


def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_the_student_copies_and_the_nbgrader_metadata_are_up_to_date():
    stale = stale_copies(ROOT / "notebooks")
    assert not stale, (f"stale student copies or nbgrader metadata {[str(p.relative_to(ROOT)) for p in stale]}: run "
                       "`make student` and commit them")


def test_solutions_become_placeholders_and_hidden_tests_go():
    source = ("def f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n\n"
              "check(f)\n### BEGIN HIDDEN TESTS\nassert f(1) == 2\n### END HIDDEN TESTS\nprint('done')\n")
    assert student_source(source, "code") == ("def f(x):\n    y = 1\n    # YOUR CODE HERE\n"
                                              "    raise NotImplementedError()\n"
                                              "\ncheck(f)\nprint('done')\n")
    assert student_source("Why?\n### BEGIN SOLUTION\nBecause.\n### END SOLUTION\n", "markdown") == \
        "Why?\n*Your answer here.*\n"
    with pytest.raises(ValueError, match="1 '### BEGIN SOLUTION' but 0"):
        student_source("### BEGIN SOLUTION\nx = 1\n", "code", "cell 3")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_a_student_copy_holds_no_solution(path):
    copy = ROOT / "notebooks" / STUDENT_DIR / path.name
    text = copy.read_text()
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text
    if path in WITH_TASKS:
        solutions_in_code = sum(c.count("### BEGIN SOLUTION") for c in code_cells(path))
        assert text.count("raise NotImplementedError()") == solutions_in_code
    else:  # the same code as its source, which the test run covers already
        assert code_cells(copy) == code_cells(path)


def checker_calls(path: Path) -> list[str]:
    return re.findall(r"= checks\.(\w+)\(", "\n".join(code_cells(path)))


def test_the_course_has_its_you_write_it_tasks():
    assert {p.name[:2] for p in WITH_TASKS} == set(checks.NOTEBOOK_TASKS)
    for path in WITH_TASKS:  # the checkers each notebook calls, in order, are the tasks declared for it
        assert checker_calls(path) == [c.__name__ for c in checks.NOTEBOOK_TASKS[path.name[:2]]], path.name
        assert code_cells(path)[-1].strip() == f'checks.summary("{path.name[:2]}");', "the last cell sums up"
    assert sorted(checks.TASKS) == sorted(checks.POINTS)


@pytest.mark.parametrize("path", WITH_TASKS, ids=lambda p: p.name)
def test_every_task_is_a_whole_function_with_its_contract_and_a_check_cell_of_its_own(path):
    """A task is 8 to 25 lines the student writes, inside functions with docstrings; a hint cell comes
    before it, and its check cell holds nothing else of the task."""
    cells = json.loads(path.read_text())["cells"]
    for i, cell in enumerate(cells):
        text = "".join(cell["source"])
        if cell["cell_type"] != "code" or "### BEGIN SOLUTION" not in text:
            continue
        blocks = re.findall(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", text, re.DOTALL)
        lines = sum(1 for block in blocks for line in block.splitlines() if line.strip())
        assert 8 <= lines <= 25 * len(blocks), (path.name, i, lines)
        assert text.count('"""') >= 2 * text.count("\ndef ") + 2 * text.startswith("def "), (
            "every function has a docstring")
        assert any("<summary><b>Hints</b>" in "".join(c["source"]) for c in cells[max(0, i - 3):i]), (path.name, i)
        assert "checks." not in text, "the check has a cell of its own (an nbgrader test cell)"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_the_nbgrader_metadata_marks_tasks_checks_and_answers(path):
    cells = json.loads(path.read_text())["cells"]
    marked = [(c, c["metadata"]["nbgrader"]) for c in cells if "nbgrader" in c["metadata"]]
    ids = [meta["grade_id"] for _, meta in marked]
    assert len(ids) == len(set(ids)), "grade ids are unique"
    for cell, meta in marked:
        text = "".join(cell["source"])
        if cell["cell_type"] == "code" and meta["solution"]:
            assert "### BEGIN SOLUTION" in text and not meta["grade"] and not meta["locked"]
        elif cell["cell_type"] == "code":
            key = re.search(r"= checks\.(\w+)\(", text)[1]
            assert meta["grade"] and meta["locked"] and meta["points"] == checks.POINTS[key]
            assert "### BEGIN HIDDEN TESTS" in text and "passed" in text
        elif text.startswith(AUDIT):  # notebook 09's audit, graded by hand by its rubric
            assert meta["solution"] and meta["grade"] and meta["points"] == AUDIT_POINTS
            assert meta["grade_id"] == "09_audit" and "| part | points |" in "".join(
                "".join(c["source"]) for c in cells)  # its rubric is in the notebook
        else:  # a written answer: graded by hand
            assert meta["solution"] and meta["grade"] and meta["points"] == text.count("### BEGIN SOLUTION") >= 1
    unmarked = [c for c in cells if "nbgrader" not in c["metadata"]]
    assert not any("### BEGIN SOLUTION" in "".join(c["source"]) or re.search(r"= checks\.\w+\(", "".join(c["source"]))
                   for c in unmarked)


def _run_tasks(path: Path, blank: bool, capsys) -> list[checks.Verdict]:
    """Execute, in order and in one namespace, the cells of the instructor's (or the student's) copy
    that hold a solution or call a checker; return the verdicts."""
    source = json.loads(path.read_text())
    version = student_notebook(source, path.name) if blank else source
    import copy

    import numpy as np
    import pandas as pd
    from scipy.stats import rankdata

    namespace = {"checks": checks, "torch": torch, "F": F, "nn": nn, "np": np, "pd": pd, "copy": copy,
                 "rankdata": rankdata}
    verdicts: dict[int, checks.Verdict] = {}
    for original, cell in zip(source["cells"], version["cells"]):
        text = "".join(original["source"])
        if original["cell_type"] == "code" and ("BEGIN SOLUTION" in text or re.search(r"= checks\.\w+\(", text)):
            exec(compile("".join(cell["source"]), path.name, "exec"), namespace)  # noqa: S102
            verdicts.update({id(v): v for v in namespace.values() if isinstance(v, checks.Verdict)})
    capsys.readouterr()
    return list(verdicts.values())


@pytest.mark.parametrize("path", WITH_TASKS, ids=lambda p: p.name)
def test_every_task_is_not_done_in_the_student_copy_and_right_in_the_instructors(path, capsys):
    blank = _run_tasks(path, True, capsys)
    assert len(blank) == len(checker_calls(path))  # one verdict a checker
    assert all(not v.done and "not done yet" in v.message for v in blank)
    solved = _run_tasks(path, False, capsys)
    assert len(solved) == len(blank) and all(v.passed for v in solved), [str(v) for v in solved]
    assert sorted(v.task for v in solved) == sorted(v.task for v in blank)


def test_worked_solutions_in_markdown_are_not_tasks():
    from fishcam_utils.student import BANNER

    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# 09 · A title\n"]},
             {"cell_type": "markdown", "metadata": {},
              "source": ["**1. Q.**\n### BEGIN SOLUTION\nA.\n### END SOLUTION\n"]}]
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    assert not has_tasks(notebook)
    copy = student_notebook(notebook)
    assert BANNER not in "".join(copy["cells"][0]["source"])  # no checker to announce
    assert "".join(copy["cells"][1]["source"]) == "**1. Q.**\n*Your answer here.*\n"
    code = {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None,
            "source": ["def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"]}
    assert has_tasks({**notebook, "cells": cells + [code]})
