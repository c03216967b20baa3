"""ScanOptions: how a dataset folder is read, as one value that the readers, the CLI and checkpoints share."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from fishcam_utils import settings
from fishcam_utils.data import DatasetIndex, DataWarning, ScanOptions, check_dataset, make_datasets, scan_dataset
from fishcam_utils.data.introspection import data_record
from fishcam_utils.data.layouts import survey
from fishcam_utils.data.species import VIEWS
from fishcam_utils.data.synthetic import load_metadata


@pytest.mark.parametrize("argument, value, allowed", [
    ("layout", "coco", "'auto' or one of kaggle, multiview, class_folders, filename"),
    ("missing_views", "ignore", "'error', 'keep' or 'drop'"),
    ("unknown_files", "delete", "'error' or 'skip'"),
    ("views", [], "a non-empty list of view names"),
])
def test_a_bad_option_is_refused_naming_the_argument_and_what_it_may_be(argument, value, allowed):
    with pytest.raises(ValueError) as info:
        ScanOptions(**{argument: value})
    message = str(info.value)
    assert message.startswith(f"{argument} must be") and allowed in message and f"got {value!r}" in message


def test_views_from_a_list_or_a_comma_separated_string_are_one_tuple():
    assert ScanOptions(views=["side", "top"]) == ScanOptions(views="side, top") == ScanOptions(views=("side", "top"))
    assert ScanOptions(views=["side", "top"]).views == ("side", "top")
    assert len({ScanOptions(), ScanOptions(views=list(VIEWS))}) == 1  # frozen and hashable
    with pytest.raises(dataclasses.FrozenInstanceError):
        ScanOptions().layout = "kaggle"


def test_to_dict_is_plain_json_and_from_dict_reads_it_back():
    scan = ScanOptions(layout="multiview", views=("side", "back"), unknown_files="skip", missing_views="keep")
    record = scan.to_dict()
    assert record == {"layout": "multiview", "views": ["side", "back"], "unknown_files": "skip",
                      "missing_views": "keep"}  # the keys and values checkpoints have always recorded
    assert json.loads(json.dumps(record)) == record
    assert ScanOptions.from_dict(record) == scan
    assert dict(scan) == record  # as code written for the plain dict that index.options was reads it


def test_from_dict_gives_an_old_record_the_defaults_for_what_it_lacks():
    assert ScanOptions.from_dict(None) == ScanOptions.from_dict({}) == ScanOptions()
    old = ScanOptions.from_dict({"layout": "multiview", "views": None, "an_option_of_later": 1})
    assert old == ScanOptions(layout="multiview") and old.views == VIEWS
    assert old.missing_views == settings.MISSING_VIEWS and old.unknown_files == settings.UNKNOWN_FILES
    with pytest.raises(ValueError, match="missing_views must be"):
        ScanOptions.from_dict({"missing_views": "ignore"})  # a bad value is still named


def test_merge_puts_in_every_keyword_given_even_a_default():
    base = ScanOptions(layout="multiview", missing_views="keep")
    assert ScanOptions.merge(base) is base and ScanOptions.merge(None) == ScanOptions()
    assert ScanOptions.merge(base, unknown_files="skip", views=None) == dataclasses.replace(base, unknown_files="skip")
    # A keyword given is meant, even at its default: scan= of another folder, layout="auto" to detect again.
    assert ScanOptions.merge(base, layout="auto", missing_views="error") == ScanOptions()
    assert ScanOptions.merge(base, layout=None, views=None) == base  # None: not given
    assert ScanOptions.merge(None, views="side,back") == ScanOptions(views=("side", "back"))
    assert ScanOptions.merge(base.to_dict()) == base
    with pytest.raises(TypeError, match="colour is not a scan option"):
        ScanOptions.merge(base, colour="red")
    with pytest.raises(TypeError, match="scan must be a ScanOptions"):
        ScanOptions.merge("multiview")


def _untidy(root):
    """A note in a class folder (refused unless skipped) and a fish without its back view."""
    meta = load_metadata(root)
    (root / "train" / meta["species"][0] / "notes.txt").write_text("fed on Tuesday")
    (root / meta[(meta["fish_id"] == "F00005") & (meta["view"] == "back")]["image"].item()).unlink()
    return root


@pytest.mark.filterwarnings("ignore::fishcam_utils.errors.DataWarning")  # the fish dropped is said
def test_every_reader_reads_with_scan_as_with_the_keywords(synth_copy):
    root = _untidy(synth_copy)
    keywords = {"unknown_files": "skip", "missing_views": "drop"}
    scan = ScanOptions(**keywords)
    by_keywords, by_scan = scan_dataset(root, **keywords), scan_dataset(root, scan=scan)
    pd.testing.assert_frame_equal(by_scan.frame, by_keywords.frame)
    assert by_scan.notes == by_keywords.notes and by_scan.views == by_keywords.views
    assert by_scan.options == by_keywords.options == dataclasses.replace(scan, layout="multiview")  # as read
    assert "F00005" not in set(by_scan.frame["fish_id"])
    assert survey(root, scan=scan)[0].options == by_scan.options
    report = check_dataset(root, scan=scan, decode=False, progress=False)
    assert report.ok and report.index.options == by_scan.options
    data = make_datasets(root, image_size=32, cache=False, progress=False, scan=scan)
    assert data.index.options == by_scan.options
    with pytest.raises(Exception, match="notes.txt"):
        scan_dataset(root, scan=dataclasses.replace(scan, unknown_files="error"))


def test_a_keyword_beside_scan_replaces_its_field(synth_copy):
    root = _untidy(synth_copy)
    with pytest.warns(DataWarning, match="F00005.*Kept"):
        index = scan_dataset(root, scan=ScanOptions(unknown_files="skip", missing_views="drop"), missing_views="keep")
    assert index.options.missing_views == "keep" and "F00005" in set(index.frame["fish_id"])


def test_an_index_keeps_its_options_and_reads_an_older_dict(tiny_synth):
    index = scan_dataset(tiny_synth, views="side,back,belly")
    assert isinstance(index.options, ScanOptions) and index.options == ScanOptions(layout="multiview")
    assert index.subset(split="train", view="side").options == index.options
    older = DatasetIndex(index.root, index.layout, index.classes, index.frame, options={"layout": "multiview"})
    assert older.options == ScanOptions(layout="multiview")


def test_a_checkpoint_records_the_scan_as_to_dict(tiny_synth, tmp_path):
    from fishcam_utils.models import build_model
    from fishcam_utils.training import fit, read_checkpoint

    splits = make_datasets(tiny_synth, image_size=32, cache=False, progress=False, scan=ScanOptions(layout="multiview"))
    assert data_record(splits.train)["scan"] == splits.index.options.to_dict()
    model = build_model("fishresnet", len(splits.classes), width=4, weights=None, verbose=False)
    fit(model, splits.train, run_dir=tmp_path / "run", epochs=1, batch_size=8, progress=False)
    record = read_checkpoint(tmp_path / "run" / "last.pt")["preprocessing"]["scan"]
    assert record == splits.index.options.to_dict() and ScanOptions.from_dict(record) == splits.index.options
