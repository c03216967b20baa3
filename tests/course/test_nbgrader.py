"""nbgrader, for real: its ``generate_assignment`` accepts every notebook and releases what ``make student``
writes, and its ``autograde`` gives the instructor's solution full marks, the blank copy zero (without a
crash), and a submission with one wrong answer every point but that task's, with the checker's words in
the feedback.

Autograding runs notebooks: ``make test`` runs these tests (marker ``nbgrader``) after the notebooks, whose
quick-mode models they reuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fishcam_utils import checks
from fishcam_utils.student import BANNER, STUDENT_DIR

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BIN = Path(sys.executable).parent
CONFIG = '''c = get_config()
c.CourseDirectory.course_id = "fishcam"
# The course's own stub for a written answer, so that nbgrader's release and `make student` agree.
c.ClearSolutions.text_stub = "*Your answer here.*"
# A cell may train a model (a few minutes on 2 cores) if the notebooks have not been run before.
c.Execute.timeout = 900
'''


def nbgrader(course: Path, *args: str, build: Path | None = None) -> subprocess.CompletedProcess:
    """Run the nbgrader command of this environment in ``course``; its notebooks in quick mode, their build
    outputs kept apart from the course's own."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "FISHCAM_QUICK": "1",
           "FISHCAM_BUILD_DIR": str(build or course / "build")}
    done = subprocess.run([str(BIN / "nbgrader"), *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return done


def course_with(tmp_path: Path, assignment: str, notebooks: list[Path]) -> Path:
    """A course folder whose ``assignment`` holds ``notebooks``, released with ``generate_assignment``."""
    course = tmp_path / "course"
    (course / "source" / assignment).mkdir(parents=True)
    (course / "nbgrader_config.py").write_text(CONFIG)
    for path in notebooks:
        (course / "source" / assignment / path.name).write_text(path.read_text())
    nbgrader(course, "generate_assignment", assignment, "--force")
    return course


def cells(path: Path) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"])) for c in json.loads(path.read_text())["cells"]]


@pytest.mark.nbgrader
def test_generate_assignment_accepts_every_notebook_and_releases_the_student_copies(tmp_path):
    course = course_with(tmp_path, "fishcam", NOTEBOOKS)
    for source in NOTEBOOKS:
        released = cells(course / "release" / "fishcam" / source.name)
        ours = cells(ROOT / "notebooks" / STUDENT_DIR / source.name)
        assert [kind for kind, _ in released] == [kind for kind, _ in ours], source.name
        for (_, theirs), (_, mine) in zip(released, ours):
            # The same text, but for the banner ours puts under the title and a final newline.
            assert theirs.rstrip("\n") == mine.replace(BANNER, "").rstrip("\n"), (source.name, theirs[:300])


def submissions(course: Path, assignment: str, notebook: str, wrong: tuple[str, str]) -> None:
    """Three students: the instructor's solution put into the released copy, the blank released copy, and the
    solution with one line made wrong (``wrong``: the line and what replaces it)."""
    released = json.loads((course / "release" / assignment / notebook).read_text())
    source = json.loads((course / "source" / assignment / notebook).read_text())
    solved = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in source["cells"]
              if c["metadata"].get("nbgrader", {}).get("solution")}
    for student in ("solution", "blank", "wrong"):
        submitted = json.loads(json.dumps(released))
        if student != "blank":
            for cell in submitted["cells"]:
                grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
                if grade_id in solved:
                    text = "".join(solved[grade_id])
                    if student == "wrong" and wrong[0] in text:
                        text = text.replace(*wrong)
                    cell["source"] = text
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / notebook).write_text(json.dumps(submitted, indent=1, ensure_ascii=False))


def check_cell_outputs(notebook: Path) -> dict[str, str]:
    """Each check cell's grade id and the text of its outputs (streams and errors)."""
    found = {}
    for cell in json.loads(notebook.read_text())["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id", "")
        if "_check_" in grade_id:
            found[grade_id] = "\n".join("".join(o.get("text", "")) + o.get("evalue", "") for o in cell["outputs"])
    return found


AUTOGRADED = [
    # (notebook, the wrong line, what replaces it, the task it breaks, what its checker then says)
    ("05_gradcam_maths.ipynb", "raw = (alpha * store[\"A\"]).sum(1).detach()",
     "raw = (alpha * store[\"A\"]).mean(1).detach()", "grad_cam", "you averaged over the channels"),
    ("01_data_exploration.ipynb", "per_fish = np.array([split_of[f] for f in fish_ids])",
     "per_fish = rng.choice(names, size=len(fish_ids), p=shares)", "leak_simulation", "per-fish split still leaks"),
]


@pytest.mark.nbgrader
@pytest.mark.parametrize("notebook, line, replacement, task, says", AUTOGRADED, ids=[a[0][:2] for a in AUTOGRADED])
def test_autograde_gives_full_marks_zero_and_all_but_the_wrong_task(tmp_path, notebook, line, replacement, task,
                                                                    says):
    from nbgrader.api import Gradebook

    assignment = f"ps{notebook[:2]}"
    course = course_with(tmp_path, assignment, [ROOT / "notebooks" / notebook])
    submissions(course, assignment, notebook, (line, replacement))
    nbgrader(course, "autograde", assignment, "--create", "--force")
    nbgrader(course, "generate_feedback", assignment, "--force")
    tasks = [checker.__name__ for checker in checks.NOTEBOOK_TASKS[notebook[:2]]]
    full = sum(checks.POINTS[name] for name in tasks)
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {}
        for student in ("solution", "blank", "wrong"):
            grades = gradebook.find_submission(assignment, student).notebooks[0].grades
            autograded = [g for g in grades if "_check_" in g.name]
            assert sorted(g.name for g in autograded) == sorted(f"{notebook[:2]}_check_{name}" for name in tasks)
            scores[student] = sum(g.auto_score for g in autograded)
            assert sum(g.max_score for g in autograded) == full
    assert scores == {"solution": full, "blank": 0, "wrong": full - checks.POINTS[task]}, scores

    graded = {student: course / "autograded" / student / assignment / notebook for student in scores}
    outputs = check_cell_outputs(graded["wrong"])
    assert says in outputs[f"{notebook[:2]}_check_{task}"]
    assert says in (course / "feedback" / "wrong" / assignment / notebook.replace(".ipynb", ".html")).read_text()
    assert all("not done yet" in text for text in check_cell_outputs(graded["blank"]).values())
    # The blank copy ran to its end: no cell failed but the checks' hidden tests.
    for student in ("solution", "blank"):
        failed = [c["metadata"].get("nbgrader", {}).get("grade_id", c.get("id")) for c in
                  json.loads(graded[student].read_text())["cells"]
                  if any(o["output_type"] == "error" for o in c.get("outputs", []))]
        expected = [] if student == "solution" else sorted(outputs)  # blank: every check's hidden test fails
        assert sorted(failed) == expected, (student, failed)
