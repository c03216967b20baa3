"""Errors say the fix the way the user passes it: a keyword in Python, a flag on the command line."""

import pytest

from fishcam_utils.cli import LAYOUT_CHOICES
from fishcam_utils.data.layouts import LAYOUTS
from fishcam_utils.errors import DataError, Problems, on_command_line, option, option_name


def test_options_read_as_keywords_in_python_and_as_flags_on_the_command_line():
    cases = [(("unknown_files", "skip"), "unknown_files='skip'", "--unknown-files skip"),
             (("views", ["side", "top"]), "views=['side', 'top']", "--views side,top"),
             (("resume",), "resume=True", "--resume"), (("weights", None), "weights=None", "--weights none"),
             (("cache", False), "cache=False", "--no-cache"), (("classes", ...), "classes=[...]", "--classes A,B,..."),
             (("data", "my fish"), "data='my fish'", "--data 'my fish'")]
    for args, python, command_line in cases:
        assert option(*args) == python
        with on_command_line():
            assert option(*args) == command_line
    assert option_name("run_dir") == "run_dir"
    with on_command_line():
        assert option_name("run_dir") == "--run-dir"
    assert option("resume") == "resume=True"  # the context ends with the block


def test_problems_read_as_one_message_or_a_numbered_list():
    problems = Problems()
    problems.raise_if_any("ds")  # nothing to raise
    problems.add("a.txt is not an image")
    problems.add("a.txt is not an image")  # said once
    with pytest.raises(DataError) as info:
        problems.raise_if_any("ds")
    assert str(info.value) == "a.txt is not an image"
    problems.add("carp has no images")
    with pytest.raises(DataError) as info:
        problems.raise_if_any("ds")
    assert str(info.value) == "2 problems in ds:\n1. a.txt is not an image\n2. carp has no images"


def test_the_cli_offers_every_layout():
    assert LAYOUT_CHOICES == ["auto", *LAYOUTS]
