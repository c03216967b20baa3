"""The first cell of every notebook, run as Colab runs it: a stand-in ``google.colab`` module, the
course served from a ``file://`` URL, a temporary ``/content``. It clones the tag of its version
(or the default branch when there is none), updates an earlier clone, installs the package so
that a fresh Python imports it from the clone, and starts the notebook in ``notebooks/``.

Each run installs into its own virtual environment (which sees this one's packages), so the
checkout's own installation is never touched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest

from fishcam_utils import COURSE_REPOSITORY, __version__
from fishcam_utils.repository import colab_cell, colab_link, repoint

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("**/[0-9][0-9]_*.ipynb"))
GIT = ["git", "-c", "user.name=FishCAM test", "-c", "user.email=test@fishcam.invalid",
       "-c", "advice.detachedHead=false"]

pytestmark = pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs the course's git repository")


def git(*args, cwd: Path | None = None) -> str:
    return subprocess.run(GIT + list(args), cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def origin(tmp_path_factory) -> Path:
    """A copy of the course repository (its committed state) with two releases: the tag of an older
    version, then a commit and the tag of this version."""
    path = tmp_path_factory.mktemp("github") / "fishcam"
    git("clone", "-q", "--no-hardlinks", str(ROOT), str(path))
    git("tag", "v0.0.9", cwd=path)
    (path / "RELEASED").write_text(f"v{__version__}\n")
    git("add", "RELEASED", cwd=path)
    git("commit", "-q", "-m", "release", cwd=path)
    git("tag", f"v{__version__}", cwd=path)
    return path


@pytest.fixture(scope="module")
def colab_python(tmp_path_factory) -> Path:
    """A virtual environment that sees this environment's packages (torch, ...) but installs into
    its own folder, as Colab's Python has its packages and takes ours on top."""
    venv = tmp_path_factory.mktemp("colab") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    # Our packages come after the new environment's own, like a system site: pip among them.
    Path(site, "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def run_cell(python: Path, content: Path, repository: str, version: str = __version__) -> subprocess.CompletedProcess:
    """The first cell with /content moved to ``content``, run under a stand-in google.colab."""
    cell = colab_cell(repository, version).replace('"/content/fishcam"', repr(str(content / "fishcam")))
    script = textwrap.dedent("""
        import sys, types, os
        sys.modules["google.colab"] = types.ModuleType("google.colab")  # what Colab's Python has loaded
        exec(compile(open(sys.argv[1]).read(), "cell 0", "exec"), {"__name__": "__main__"})
        import fishcam_utils
        print("RESULT", fishcam_utils.__file__, os.getcwd())
    """)
    cell_file = content / "cell0.py"
    content.mkdir(parents=True, exist_ok=True)
    cell_file.write_text(cell)
    env = {**os.environ, "PIP_NO_DEPS": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if _modern_setuptools():  # build with ours, offline (pip reads PIP_NO_BUILD_ISOLATION=0 as "no isolation")
        env.update(PIP_NO_BUILD_ISOLATION="0", PIP_NO_INDEX="1")
    env.pop("FISHCAM_CHECKPOINTS_DIR", None)
    done = subprocess.run([str(python), "-c", script, str(cell_file)], cwd=content, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def _modern_setuptools() -> bool:
    """setuptools new enough for pyproject.toml's SPDX licence (77), here to build without isolation."""
    try:
        import setuptools
    except ImportError:
        return False
    return int(setuptools.__version__.split(".")[0]) >= 77


def imported_from(python: Path) -> Path:
    """Where a fresh Python of the environment imports the package from: the installation, not a path we set."""
    out = subprocess.run([str(python), "-c", "import fishcam_utils; print(fishcam_utils.__file__)"],
                         cwd="/", check=True, capture_output=True, text=True).stdout.strip()
    return Path(out).resolve()


def test_the_cell_clones_its_version_installs_the_package_and_enters_the_notebooks(origin, colab_python, tmp_path):
    content = tmp_path / "content"
    done = run_cell(colab_python, content, f"file://{origin}")
    course = content / "fishcam"
    assert git("rev-parse", "HEAD", cwd=course) == git("rev-parse", f"v{__version__}", cwd=origin)
    assert (course / "RELEASED").read_text() == f"v{__version__}\n"
    result = done.stdout.split("RESULT ")[1].split()
    assert Path(result[0]).resolve() == (course / "fishcam_utils" / "__init__.py").resolve()
    assert Path(result[1]).resolve() == (course / "notebooks").resolve()
    assert imported_from(colab_python) == (course / "fishcam_utils" / "__init__.py").resolve()
    assert "FISHCAM_CHECKPOINTS_DIR" in colab_cell() and "drive.mount" in colab_cell()
    assert "Google Drive" in done.stdout  # said when the checkpoints would go with the session


def test_an_earlier_clone_is_brought_to_the_notebooks_version(origin, colab_python, tmp_path):
    content = tmp_path / "content"
    run_cell(colab_python, content, f"file://{origin}", version="0.0.9")  # a notebook of the older release
    course = content / "fishcam"
    assert git("rev-parse", "HEAD", cwd=course) == git("rev-parse", "v0.0.9", cwd=origin)
    assert not (course / "RELEASED").exists()
    mine = course / "notebooks" / "my_notes.txt"  # a student's own file in the clone stays
    mine.write_text("mine")
    run_cell(colab_python, content, f"file://{origin}")
    assert git("rev-parse", "HEAD", cwd=course) == git("rev-parse", f"v{__version__}", cwd=origin)
    assert (course / "RELEASED").is_file() and mine.read_text() == "mine"


def test_without_its_tag_the_cell_takes_the_default_branch_and_says_so(origin, colab_python, tmp_path):
    content = tmp_path / "content"
    done = run_cell(colab_python, content, f"file://{origin}", version="9.9.9")
    assert "at tag v9.9.9 (a fork without it?); taking its default branch" in done.stdout
    assert git("rev-parse", "HEAD", cwd=content / "fishcam") == git("rev-parse", "HEAD", cwd=origin)


# ---------------------------------------------------------------------------------------
# One address, everything made from it


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "notebooks")))
def test_every_notebook_starts_with_the_cell_made_from_the_course_address(path):
    assert nbformat.read(path, as_version=4).cells[0].source == colab_cell()


def test_the_readme_badges_are_made_from_the_course_address():
    readme = (ROOT / "README.md").read_text()
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        assert colab_link(f"notebooks/student/{path.name}") in readme
    assert readme.count("colab.research.google.com/github/") == readme.count(colab_link(""))


def test_repoint_rewrites_the_address_the_cells_and_the_badges(tmp_path):
    fork = tmp_path / "fork"
    (fork / "fishcam_utils").mkdir(parents=True)
    (fork / "notebooks" / "student").mkdir(parents=True)
    (fork / "fishcam_utils" / "__init__.py").write_text((ROOT / "fishcam_utils" / "__init__.py").read_text())
    (fork / "README.md").write_text((ROOT / "README.md").read_text())
    for path in NOTEBOOKS[:2] + [p for p in NOTEBOOKS if p.parent.name == "student"][:1]:
        target = fork / path.relative_to(ROOT)
        target.write_text(path.read_text())
    new = "https://github.com/a-teacher/fishcam-fork"
    changed = repoint(new + ".git", fork)
    assert len(changed) == 5
    assert f'COURSE_REPOSITORY = "{new}"' in (fork / "fishcam_utils" / "__init__.py").read_text()
    readme = (fork / "README.md").read_text()
    assert COURSE_REPOSITORY not in readme.replace(new, "") and colab_link("notebooks/student/", new) in readme
    for path in fork.glob("notebooks/**/*.ipynb"):
        notebook = json.loads(path.read_text())
        assert "".join(notebook["cells"][0]["source"]) == colab_cell(new)
        assert nbformat.reads(path.read_text(), as_version=4).cells[1:] == nbformat.read(
            ROOT / path.relative_to(fork), as_version=4).cells[1:]  # nothing else changed
    assert repoint(new, fork) == []  # a second time there is nothing to do
    with pytest.raises(ValueError, match="GitHub repository address"):
        repoint("git@github.com:a-teacher/fishcam.git", fork)
