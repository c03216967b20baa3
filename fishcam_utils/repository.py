"""Where the course lives on GitHub, and everything that points there: the first cell of every
notebook (Colab's installer) and the "Open in Colab" badges of the README.

``COURSE_REPOSITORY`` (in ``fishcam_utils/__init__.py``) is the one place the address is written;
the cell and the badges are made from it. A fork re-points them all with one command::

    make repoint REPO=https://github.com/you/fishcam      # or: python -m fishcam_utils.repository URL

Torch-free: the cell and the badges are text.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from . import COURSE_REPOSITORY, __version__

_CELL = '''# Running in Google Colab? This cell fetches the course at this notebook's version and installs its
# helper package. Anywhere else (JupyterLab, VS Code, `make course`, CI) it does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    REPOSITORY, VERSION, COURSE = "{repository}", "v{version}", "/content/fishcam"
    git = ["git", "-c", "advice.detachedHead=false"]
    if not os.path.isdir(os.path.join(COURSE, ".git")):
        cloned = subprocess.run(git + ["clone", "-q", "--depth", "1", "--branch", VERSION, REPOSITORY, COURSE])
        if cloned.returncode != 0:  # no such tag (a fork, or a course between releases): its newest version
            print(f"could not clone {{REPOSITORY}} at tag {{VERSION}} (a fork without it?); taking its default branch")
            subprocess.run(git + ["clone", "-q", "--depth", "1", REPOSITORY, COURSE], check=True)
    else:  # a clone from earlier in this session: brought to this notebook's version, your changes kept
        fetched = subprocess.run(git + ["-C", COURSE, "fetch", "-q", "--depth", "1", "origin", "tag", VERSION])
        moved = (fetched.returncode == 0
                 and subprocess.run(git + ["-C", COURSE, "checkout", "-q", VERSION]).returncode == 0)
        if not moved:
            print(f"kept {{COURSE}} as it is (no tag {{VERSION}}, or files you changed there); "
                  f"`git -C {{COURSE}} status` shows what")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", COURSE], check=True)
    sys.path.insert(0, COURSE)
    os.chdir(os.path.join(COURSE, "notebooks"))
    # Colab deletes /content when the session ends. To keep trained models, mount Google Drive first
    # (from google.colab import drive; drive.mount("/content/drive")) and set, before training:
    # os.environ["FISHCAM_CHECKPOINTS_DIR"] = "/content/drive/MyDrive/fishcam/checkpoints"
    if "FISHCAM_CHECKPOINTS_DIR" not in os.environ:
        print(f"Trained models go to {{COURSE}}/checkpoints, which ends with this session; "
              "the last lines of this cell say how to keep them on Google Drive.")
'''


def colab_cell(repository: str = COURSE_REPOSITORY, version: str = __version__) -> str:
    """The source of every notebook's first cell: in Colab, clone ``repository`` at tag
    ``v<version>`` (or update an earlier clone to it), install the package, enter ``notebooks/``."""
    return _CELL.format(repository=repository, version=version).rstrip("\n")


def colab_link(notebook: str, repository: str = COURSE_REPOSITORY) -> str:
    """The "Open in Colab" address of ``notebook`` (a path inside the repository) on its main branch."""
    return (repository.replace("https://github.com/", "https://colab.research.google.com/github/")
            + f"/blob/main/{notebook}")


def _github(url: str) -> str:
    url = url.rstrip("/").removesuffix(".git")
    if not re.fullmatch(r"https://github\.com/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", url):
        raise ValueError(f"expected a GitHub repository address like https://github.com/you/fishcam, got {url!r}")
    return url


def repoint(new: str, root: str | Path | None = None) -> list[Path]:
    """Point the course at the repository ``new``: ``COURSE_REPOSITORY``, the first cell of every
    notebook (student copies included) and the README's badges. Returns the files changed."""
    new = _github(new)
    root = Path(root) if root is not None else Path(__file__).resolve().parent.parent
    package = root / "fishcam_utils" / "__init__.py"
    text = package.read_text()
    old = re.search(r'^COURSE_REPOSITORY = "([^"]+)"', text, re.MULTILINE).group(1)
    changed = []
    if old != new:
        package.write_text(text.replace(f'COURSE_REPOSITORY = "{old}"', f'COURSE_REPOSITORY = "{new}"'))
        readme = root / "README.md"
        readme.write_text(readme.read_text().replace(colab_link("", old), colab_link("", new)))
        changed += [package, readme]
    for path in sorted((root / "notebooks").glob("**/[0-9][0-9]_*.ipynb")):
        if _set_first_cell(path, colab_cell(new)):
            changed.append(path)
    return changed


def _set_first_cell(path: Path, source: str) -> bool:
    """Write ``source`` into the notebook's first cell (as Jupyter stores it); True if it changed."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    lines = source.splitlines(keepends=True)
    if notebook["cells"][0]["source"] == lines:
        return False
    notebook["cells"][0]["source"] = lines
    path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m fishcam_utils.repository https://github.com/<you>/<fork>", file=sys.stderr)
        return 2
    try:
        changed = repoint(args[0])
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"re-pointed {len(changed)} files at {_github(args[0])}" + "".join(f"\n  {p}" for p in changed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
