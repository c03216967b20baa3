"""`fishcam course` where it cannot run: outside a checkout of the course, or without the
notebooks extra, it says what to do (exit code 2) instead of crashing or running nothing;
`--list` names the notebooks."""

from __future__ import annotations

import importlib.util

import pytest

from fishcam_utils import COURSE_REPOSITORY
from fishcam_utils.cli import main
from fishcam_utils.course import check_course_runnable
from fishcam_utils.errors import FishCAMError


def test_outside_a_checkout_it_says_to_clone_the_course(tmp_path, capsys):
    with pytest.raises(FishCAMError, match="no course notebooks in") as caught:
        check_course_runnable(tmp_path)
    assert f"git clone {COURSE_REPOSITORY}" in str(caught.value)
    assert main(["course", "--quick", "--notebooks", str(tmp_path), "--build", str(tmp_path / "build")]) == 2
    err = capsys.readouterr().err
    assert "fishcam course: error: no course notebooks" in err and "--notebooks" in err
    assert not (tmp_path / "build" / "summary.txt").exists()  # nothing ran, nothing summarised


def test_without_the_notebooks_extra_it_names_the_install_command(tmp_path, monkeypatch, capsys):
    (tmp_path / "01_first.ipynb").write_text("{}")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "nbclient" else real(name, *a))
    with pytest.raises(FishCAMError, match=r"needs nbclient.*pip install 'fishcam-utils\[notebooks\]'"):
        check_course_runnable(tmp_path)
    assert main(["course", "--notebooks", str(tmp_path), "--build", str(tmp_path / "build")]) == 2
    assert "pip install 'fishcam-utils[notebooks]'" in capsys.readouterr().err


def test_in_a_checkout_it_finds_the_notebooks_in_order():
    found = check_course_runnable()
    assert [p.name[:2] for p in found] == sorted(p.name[:2] for p in found) and len(found) >= 8


def test_the_list_names_every_notebook_with_its_title_the_capstone_included(capsys):
    assert main(["course", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    numbers = [line[:2] for line in lines]
    assert numbers == [f"{n:02d}" for n in range(1, len(lines) + 1)] and len(lines) >= 9
    assert lines[8] == "09  Capstone: your own photos, from a folder to an explanation audit and a model card"
    assert lines[0].startswith("01  ") and "·" not in lines[0]
