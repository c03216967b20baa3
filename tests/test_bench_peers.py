"""A bench whose peer library is missing says so in one line, with the pip command that installs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_a_missing_peer_is_one_line_with_the_install_command():
    # torchcam hidden (None in sys.modules makes its import fail), as on a machine without the bench extra.
    code = ("import runpy, sys; sys.modules['torchcam'] = None; sys.argv = ['bench/cam_bench.py', '--quick']; "
            f"sys.path.insert(0, {str(BENCH)!r}); runpy.run_path({str(BENCH / 'cam_bench.py')!r}, run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "torchcam" in lines[0] and 'pip install -e ".[bench]"' in lines[0]


def test_every_peer_the_benches_import_is_in_the_bench_extra():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11 and newer

    project = tomllib.loads((BENCH.parent / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    extras = {"bench"}
    requirements = []
    while extras:  # the bench extra with the extras it names
        for item in project[extras.pop()]:
            if item.startswith("fishcam-utils["):
                extras |= set(item[len("fishcam-utils["):-1].split(","))
            else:
                requirements.append(item.split(">")[0].split("=")[0].strip())
    sys.path.insert(0, str(BENCH))
    from peers import PEERS

    assert set(PEERS.values()) <= set(requirements)
