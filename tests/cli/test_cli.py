"""The fishcam command."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fishcam_utils.cli import _size, build_parser, main
from fishcam_utils.data.synthetic import NUISANCES, dataset_info, load_metadata


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in ("make-data", "check-data", "download-kaggle", "course"):
        assert command in text
    for command in ("make-data", "check-data", "download-kaggle", "course"):
        assert build_parser().parse_args([command, "x"] if command == "check-data" else [command]).command == command


def test_make_data_then_check_data(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["make-data", "--out", str(out), "--size", "24", "--fish-per-class", "3", "--workers", "1"]) == 0
    assert "81 images" in capsys.readouterr().out
    config = dataset_info(out)["config"]
    assert config["size"] == 24 and len(load_metadata(out)) == 81
    assert config["degraded_share"] == NUISANCES["degraded_share"] and config["distractors"] == NUISANCES["distractors"]
    assert main(["check-data", str(out)]) == 0
    text = capsys.readouterr().out
    # Each photo with its body, evidence and distractor masks: the course's photos have things in the water.
    assert "multiview" in text and "Zebra Darter" in text and f"all {81 * 4} image and mask files decode" in text


@pytest.mark.parametrize("how", ["flags", "setting"])
def test_make_data_makes_the_clean_photos_when_asked(tmp_path, monkeypatch, how):
    out = tmp_path / "clean"
    flags = ["--degraded-share", "0", "--distractors", "0"] if how == "flags" else []
    if how == "setting":
        monkeypatch.setenv("FISHCAM_DATA", "clean")
    assert main(["make-data", "--out", str(out), "--size", "24", "--fish-per-class", "3", "--workers", "1",
                 *flags]) == 0
    config = dataset_info(out)["config"]
    assert "degraded_share" not in config and "distractors" not in config  # as the course's photos were before
    assert not (out / "masks" / "distractor").exists()


def test_check_data_names_a_corrupt_file_and_fails(tiny_synth, tmp_path, capsys):
    copy = Path(shutil.copytree(tiny_synth, tmp_path / "c"))
    bad = copy / load_metadata(copy)["image"][5]
    bad.write_bytes(b"not an image")
    assert main(["check-data", str(copy)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "1 file(s) could not be read" in err


def test_errors_are_one_line_not_a_traceback(tmp_path, capsys):
    assert main(["check-data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fishcam check-data: error:") and "does not exist" in err and "Traceback" not in err


def test_kaggle_layout_and_sizes_from_the_command_line(tmp_path):
    out = tmp_path / "k"
    assert main(["make-data", "--out", str(out), "--size", "40x30", "--fish-per-class", "3", "--layout", "kaggle",
                 "--workers", "1"]) == 0
    assert (out / "Zebra Darter" / "Zebra Darter" / "00001.png").is_file()
    assert (out / "Zebra Darter" / "Zebra Darter GT" / "00003.png").is_file()
    assert _size("590x445") == (590, 445) and _size("64") == 64


def test_the_console_script_is_installed():
    script = Path(sys.executable).with_name("fishcam")
    if not script.exists():
        pytest.skip("the package is not installed with its console script in this environment")
    result = subprocess.run([str(script), "make-data", "--help"], capture_output=True, text=True, check=True)
    assert "--fish-per-class" in result.stdout
