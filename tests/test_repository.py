"""Promises the repository makes: clean notebooks, a Colab cell, badges, conda-forge, lower bounds."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path
from unittest import mock

import nbformat
import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "no course notebooks found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stored_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs before committing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_the_first_cell_installs_in_colab_and_does_nothing_elsewhere(path):
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "code" and '"google.colab" in sys.modules' in first.source
    reference = nbformat.read(NOTEBOOKS[0], as_version=4).cells[0].source
    assert first.source == reference, "every notebook starts with the same Colab cell"
    ast.parse(first.source)  # plain Python: no shell magics, so it runs under nbval too
    with mock.patch("subprocess.run") as run, mock.patch("os.chdir") as chdir:
        sys.modules.pop("google.colab", None)
        exec(compile(first.source, path.name, "exec"), {})
    run.assert_not_called()
    chdir.assert_not_called()


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_know_their_quick_mode_and_check_with_asserts(path):
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "quick_mode()" in code
    assert re.search(r"^\s*assert ", code, re.MULTILINE)


def test_the_readme_lists_every_notebook_with_a_colab_badge():
    readme = (ROOT / "README.md").read_text()
    for path in NOTEBOOKS:
        link = f"https://colab.research.google.com/github/fishcam-course/fishcam/blob/main/notebooks/student/{path.name}"
        assert link in readme, path.name  # the badge opens the student copy
        assert (ROOT / "notebooks" / "student" / path.name).is_file(), path.name
        assert f"(notebooks/{path.name})" in readme  # the instructor copy, linked beside it
    assert "make course" in readme and "make test" in readme


def test_the_colab_cell_clones_the_repository_the_badges_point_to():
    from fishcam_utils import COURSE_REPOSITORY

    first = nbformat.read(NOTEBOOKS[0], as_version=4).cells[0].source
    assert COURSE_REPOSITORY in first
    assert (COURSE_REPOSITORY.replace("https://github.com/", "colab.research.google.com/github/")
            in (ROOT / "README.md").read_text())


def test_pyproject_uses_lower_bounds_only_and_declares_the_command():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    for requirement in requirements:
        assert not re.search(r"==|<|~=|!=", requirement), requirement
    assert any(r.startswith("torch>=") for r in project["dependencies"])
    assert project["scripts"]["fishcam"] == "fishcam_utils.cli:main"
    assert {"dev", "test"} <= set(project["optional-dependencies"])
    assert project["requires-python"] == ">=3.10"


def test_environment_yml_uses_conda_forge_only_and_installs_the_package_editable():
    text = (ROOT / "environment.yml").read_text()
    channels = re.search(r"^channels:\n((?:\s+- .+\n)+)", text, re.MULTILINE).group(1)
    assert [c.strip("- ").strip() for c in channels.strip().splitlines()] == ["conda-forge"]
    assert re.search(r"^\s+- pip:\n\s+- -e ", text, re.MULTILINE)
    assert "pytorch" in text and "defaults" not in text


def test_make_targets_and_ci_entry_point():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("course:", "test:", "lab:"):
        assert re.search(rf"^{target}", makefile, re.MULTILINE), target
    assert "-m venv" in makefile and "--nbval-lax" in makefile and "FISHCAM_QUICK=1" in makefile
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test", ci, re.MULTILINE)


def test_every_checkpoint_load_uses_weights_only():
    for path in (ROOT / "fishcam_utils").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"


def test_the_cheat_sheet_cites_the_papers_the_course_teaches():
    cheat_sheet = (ROOT / "docs" / "cheat_sheet.md").read_text()
    references = cheat_sheet[cheat_sheet.index("## References"):]
    for author, year in (("Zhou", 2016), ("Selvaraju", 2017), ("Chattopadhay", 2018), ("Draelos", 2020),
                         ("Jiang", 2021), ("Wang", 2020), ("Springenberg", 2015), ("Adebayo", 2018),
                         ("Zhang", 2018), ("Petsiuk", 2018)):
        assert re.search(rf"^- {author}\b.*\({year}\)", references, re.MULTILINE), author
    assert "## Cheat sheet: which method when" in cheat_sheet and "## Glossary" in cheat_sheet
    assert "(docs/cheat_sheet.md)" in (ROOT / "README.md").read_text()  # and the README leads there
