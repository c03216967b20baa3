"""Every notebook reads as a textbook chapter: objectives, prerequisites and run time at the top, a
summary, and exercises each with a difficulty, a hint and a worked solution (blank in the student copy)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fishcam_utils.student import ANSWER, student_notebook

ROOT = Path(__file__).resolve().parents[2]
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
    for part in ("**You will learn to**", "**Prerequisites", "**Student time", "**Machine time"):
        assert part in top, f"{path.name}: the first markdown cell lacks {part}"
    assert "quick mode" in top.lower() and "full mode" in top.lower(), f"{path.name}: run time for both modes"
    # A lab is about 60 minutes of a student's time: a longer notebook marks a core and an extension.
    minutes = re.search(r"\*\*Student time[.:]\*\* about (\d+) minutes", top)
    assert minutes and int(minutes[1]) <= 60, (f"{path.name}: the student time (of the core) "
                                                "must be at most about 60 minutes")
    marked = sum(text.count("> **Extension.**") for text in cells)
    if "extension" in top.split("**Student time", 1)[1].split("**Machine time", 1)[0]:
        assert marked >= 1, f"{path.name}: the header names an extension, but no section is marked '> **Extension.**'"
    else:
        assert marked == 0, f"{path.name}: sections are marked as extension, but the header's student time names none"
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


QUESTION = re.compile(r"^\*\*(\d+)\.\*\* (.+?)\n\n### BEGIN SOLUTION\n(.+?)\n### END SOLUTION\n?\Z", re.DOTALL)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_notebook_ends_with_a_questionnaire_answered_only_in_the_instructor_copy(path):
    notebook = json.loads(path.read_text())
    sources = ["".join(c["source"]) for c in notebook["cells"]]
    starts = [i for i, text in enumerate(sources) if text.startswith("## Questionnaire\n")]
    assert len(starts) == 1, f"{path.name}: one cell must open with '## Questionnaire', found {len(starts)}"
    # After it, only its questions; then, in a notebook with tasks, the two cells that sum them up.
    end = len(sources) - 2 if sources[-2].startswith("## Your task") else len(sources)
    questions = [QUESTION.match(text) for text in sources[starts[0] + 1:end]]
    assert all(questions), f"{path.name}: every cell after the questionnaire's heading is one question, " \
                           "'**N.** question', then its answer between the solution markers"
    assert 8 <= len(questions) <= 12, f"{path.name}: {len(questions)} questions (8-12 wanted)"
    assert [int(q[1]) for q in questions] == list(range(1, len(questions) + 1))
    assert all(len(q[3].split()) >= 12 for q in questions), f"{path.name}: an answer, not a word"
    student = ["".join(c["source"]) for c in student_notebook(notebook, path.name)["cells"]][starts[0] + 1:end]
    assert len(student) == len(questions)
    for question, copy in zip(questions, student):
        assert copy == f"**{question[1]}.** {question[2]}\n\n{ANSWER}", copy


def test_the_cheat_sheet_page_is_docs_cheat_sheet_and_up_to_date():
    from fishcam_utils.cheat_sheet import PAGE, SECTIONS, SOURCE, cheat_sheet_is_stale, source_section

    assert SOURCE == "docs/cheat_sheet.md"
    assert not cheat_sheet_is_stale(ROOT), f"notebooks/{PAGE} is stale against {SOURCE}: run `make student`"
    page = "".join("".join(c["source"]) for c in json.loads((ROOT / "notebooks" / PAGE).read_text())["cells"])
    source = (ROOT / SOURCE).read_text()
    for heading in SECTIONS:
        assert source_section(source, heading) in page
    assert "| you want | use |" in page and "Selvaraju" in page  # the table and the papers, not headings alone
    assert f"`{SOURCE}`" in page  # the page says where it is copied from
    with pytest.raises(ValueError, match="no section '## Glossary'"):
        source_section(source.replace("## Glossary", "## Words"), "Glossary")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_every_notebook_names_its_papers_and_the_references_list_them(path):
    summary = section(markdown(json.loads(path.read_text())), "Summary")
    papers = re.search(r"^\*\*Papers\.\*\* (.+?)(?:\n\n|\Z)", summary, re.MULTILINE | re.DOTALL)
    assert papers, f"{path.name}: the summary has no '**Papers.**' paragraph"
    cited = " ".join(papers[1].split())
    references = section([(ROOT / "docs" / "cheat_sheet.md").read_text()], "References")
    # The first author of each work cited, as "Name et al.", "Name & Other" or "Name, Other, ...".
    firsts = re.findall(r"(?:^|; |,? and )([A-Z][\w'-]+)(?:,| &| et al\.?| \d{4})", cited)
    assert len(firsts) >= 2, cited
    missing = [name for name in firsts if f"- {name}," not in references and f"- {name} " not in references]
    assert not missing, f"{path.name} cites {missing}, whom the references of docs/cheat_sheet.md do not list"


def test_the_readmes_lab_table_states_each_notebooks_own_student_time():
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| (\d\d) \| about (\d+) min \|", readme, re.MULTILINE))
    headers = {path.name[:2]: re.search(r"\*\*Student time[.:]\*\* about (\d+) minutes",
                                        markdown(json.loads(path.read_text()))[0])[1]
               for path in SOURCES}
    assert rows == headers, "the README's table of labs and the notebooks' headers disagree on student time"
