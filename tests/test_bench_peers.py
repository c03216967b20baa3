"""A bench whose peer library is missing says so in one line, with the pip command that installs it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def test_a_missing_peer_is_one_line_with_the_install_command(capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    monkeypatch.setitem(sys.modules, "torchcam", None)  # as on a machine without the bench extra
    monkeypatch.setattr(sys, "argv", ["bench/cam_bench.py"])
    from peers import require

    with pytest.raises(SystemExit) as stop:
        require("torch", "torchcam")
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1
    assert lines[0].startswith("bench/cam_bench.py: needs torchcam") and 'pip install -e ".[bench]"' in lines[0]
    # and the benches ask for their peers before any work
    assert 'require("pytorch_grad_cam", "captum", "torchcam")' in (BENCH / "cam_bench.py").read_text()
    assert 'require("pytorch_grad_cam")' in (BENCH / "explorer_bench.py").read_text()


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
