"""Outcome sentences worded from a run's values (Report.say, course.wording), the course seed
(FISHCAM_SEED: data and checkpoint folders of its own), and the seeds bench's report."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from fishcam_utils.course import Report, read_report
from fishcam_utils.course.runner import execute_notebook
from fishcam_utils.course.wording import ranking, versus
from fishcam_utils.settings import SEED_ENV, course_seed, seed_folder

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_say_prints_the_sentence_and_keeps_it_under_its_key(tmp_path, capsys):
    report = Report("05_demo", build=tmp_path)
    text = "layer1 beats layer2 on energy (0.31 against 0.25)"
    assert report.say("layers: energy", text) == text
    assert capsys.readouterr().out == text + "\n"
    assert read_report("05_demo", tmp_path)["outcomes"] == {"layers: energy": text}
    with pytest.raises(ValueError, match="key must be a non-empty string"):
        report.say("", "a sentence")
    Report("05_demo", build=tmp_path)  # a new run starts without the old run's sentences
    assert read_report("05_demo", tmp_path)["outcomes"] == {}
    assert read_report("never_ran", tmp_path)["outcomes"] == {}


def test_versus_words_the_winner_from_the_values():
    assert versus("A", 0.52, "B", 0.47, "pointing") == "A beats B on pointing (0.52 against 0.47)"
    assert versus("A", 0.40, "B", 0.47, "pointing") == "B beats A on pointing (0.47 against 0.40)"
    assert versus("A", 0.470, "B", 0.465, "energy", tie=0.01) == "A and B tie on energy (0.47 against 0.47)"
    # Values that print alike tie, whatever tie says: "0.47 beats 0.47" would read as a mistake.
    assert versus("A", 0.4712, "B", 0.4698, "energy") == "A and B tie on energy (0.47 against 0.47)"
    assert ranking({"A": 0.4712, "B": 0.4698}) == "A (0.47) ≈ B (0.47)"
    # Lower is better (a deletion AUC): the smaller value wins.
    assert versus("A", 0.2, "B", 0.3, "deletion AUC", higher_is_better=False).startswith("A beats B")
    with pytest.raises(ValueError, match="tie must be a number >= 0"):
        versus("A", 1, "B", 2, "x", tie=-0.1)
    with pytest.raises(ValueError, match="fmt must be a format for one number"):
        versus("A", 1, "B", 2, "x", fmt="{:.2f} {}")


def test_ranking_orders_best_first_and_marks_ties():
    scores = {"Grad-CAM": 0.47, "LayerCAM": 0.46, "Eigen-CAM": 0.52}
    assert ranking(scores) == "Eigen-CAM (0.52) > Grad-CAM (0.47) > LayerCAM (0.46)"
    assert ranking(scores, tie=0.015) == "Eigen-CAM (0.52) > Grad-CAM (0.47) ≈ LayerCAM (0.46)"
    assert ranking(scores, higher_is_better=False).startswith("LayerCAM (0.46) > Grad-CAM")
    with pytest.raises(ValueError, match="at least one score"):
        ranking({})


def test_the_course_seed_is_zero_unless_set_and_must_be_a_whole_number(monkeypatch):
    monkeypatch.delenv(SEED_ENV, raising=False)
    assert course_seed() == 0 and seed_folder() == ""
    monkeypatch.setenv(SEED_ENV, " 7 ")
    assert course_seed() == 7 and seed_folder() == "-seed7"
    monkeypatch.setenv(SEED_ENV, "")
    assert course_seed() == 0
    for bad in ("-1", "one", "1.5"):
        monkeypatch.setenv(SEED_ENV, bad)
        with pytest.raises(ValueError, match=rf"FISHCAM_SEED='{bad}' is not a seed: give a whole number >= 0"):
            course_seed()


def test_another_seed_draws_other_data_into_folders_of_its_own(monkeypatch, tmp_path):
    from fishcam_utils.course import course_run_dir
    from fishcam_utils.data.synthetic import default_dataset_dir, ensure_synthetic

    monkeypatch.setenv("FISHCAM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FISHCAM_CHECKPOINTS_DIR", str(tmp_path / "checkpoints"))
    monkeypatch.delenv(SEED_ENV, raising=False)
    plain = ensure_synthetic(quick=True, progress=False, size=32)
    plain_run = course_run_dir("fishresnet-side", quick=True, size=32)
    monkeypatch.setenv(SEED_ENV, "3")
    seeded = ensure_synthetic(quick=True, progress=False, size=32)
    assert seeded == default_dataset_dir(quick=True, size=32) == plain.with_name(plain.name + "-seed3")
    assert course_run_dir("fishresnet-side", quick=True, size=32) == plain_run.with_name(plain_run.name + "-seed3")
    assert json.loads((seeded / "dataset.json").read_text())["config"]["seed"] == 3
    assert json.loads((plain / "dataset.json").read_text())["config"]["seed"] == 0
    # The same fish IDs and species, drawn otherwise: the splits and the photos differ.
    assert (plain / "metadata.csv").read_text() != (seeded / "metadata.csv").read_text()


def test_with_allow_errors_every_failing_cell_is_listed(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in
                ("x = 1", "assert x == 2, 'a claim for one run only'", "print('still running')", "assert x > 5")]
    source = tmp_path / "01_claims.ipynb"
    nbformat.write(nb, source)
    run = execute_notebook(source, tmp_path / "out.ipynb", None, progress=False, allow_errors=True)
    assert not run.ok and run.failures == ["cell 1: AssertionError: a claim for one run only",
                                           "cell 3: AssertionError: "]
    assert "still running" in json.dumps(nbformat.read(tmp_path / "out.ipynb", as_version=4).cells[2].outputs)
    stopped = execute_notebook(source, tmp_path / "out2.ipynb", None, progress=False)
    assert not stopped.ok and "a claim for one run only" in stopped.error
    assert nbformat.read(tmp_path / "out2.ipynb", as_version=4).cells[2].outputs == []  # it stopped at cell 1


def test_the_seeds_report_lists_failing_cells_and_outcomes_worded_differently(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    from seeds_bench import report_text, wording

    assert wording("Grad-CAM beats LayerCAM on energy (0.52 against 0.47), 3 of 9") == \
        "Grad-CAM beats LayerCAM on energy (# against #), # of #"
    # Digits inside a name are words: a flipped winner is a new wording.
    assert wording("layer1 beats layer2 (0.3 against 0.2)") != wording("layer2 beats layer1 (0.3 against 0.2)")
    assert wording("rose at epoch(s) [2, 3, 6]") == wording("rose at epoch(s) [5]")  # a list of numbers is one number
    runs = {
        1: {"05_gradcam_maths": {"minutes": 2.0, "failures": [], "error": "",
                                 "outcomes": {"layers": "layer1 beats layer2 on energy (0.31 against 0.25)",
                                              "flipped": "layer1 beats layer2 on pointing (0.50 against 0.22)",
                                              "first wrong": "a Zebra Darter taken for a Pearlrow Chub"}}},
        2: {"05_gradcam_maths": {"minutes": 2.1, "failures": ["cell 47: AssertionError: 0.8"],
                                 "error": "DeadKernelError: Kernel died",
                                 "outcomes": {"layers": "layer1 beats layer2 on energy (0.35 against 0.21)",
                                              "flipped": "layer2 beats layer1 on pointing (0.41 against 0.38)",
                                              "first wrong": "a Ruby Bream taken for a Capped Goby"}}},
    }
    text = report_text(runs, quick=False, started="today")
    row = next(line for line in text.splitlines() if line.startswith("| 05_gradcam_maths |"))
    assert row == "| 05_gradcam_maths | 0 | 2.0 | 2 | 2.1 | 2 of 3 |"
    assert "- seed 2, 05_gradcam_maths, cell 47: AssertionError: 0.8" in text
    assert "- seed 2, 05_gradcam_maths, DeadKernelError: Kernel died" in text  # a stopped run is said too
    assert "- 05_gradcam_maths, *flipped*:" in text
    assert ("- 05_gradcam_maths, *first wrong*:" in text
            and "  - seed 1: a Zebra Darter taken for a Pearlrow Chub" in text)
    assert "*layers*" not in text  # the same words, other numbers


def test_the_data_setting_picks_the_course_photos_and_their_folders(monkeypatch, tmp_path):
    from fishcam_utils.data.synthetic import NUISANCES, course_config, default_dataset_dir
    from fishcam_utils.settings import DATA_ENV, course_data, run_folder

    monkeypatch.setenv("FISHCAM_DATA_DIR", str(tmp_path))
    monkeypatch.delenv(SEED_ENV, raising=False)
    monkeypatch.delenv(DATA_ENV, raising=False)
    assert course_data() == "uneven" and run_folder() == ""
    uneven = course_config(quick=True, size=64)
    assert (uneven.degraded_share, uneven.distractors) == (NUISANCES["degraded_share"], NUISANCES["distractors"])
    assert default_dataset_dir(quick=True, size=64) == tmp_path / "synthetic-quick"
    monkeypatch.setenv(DATA_ENV, " Clean ")
    assert course_data() == "clean" and run_folder() == "-clean" and run_folder(seed=7) == "-seed7-clean"
    clean = course_config(quick=True, size=64)
    assert (clean.degraded_share, clean.distractors) == (0, 0) and clean.fish_per_class == uneven.fish_per_class
    assert default_dataset_dir(quick=True, size=64) == tmp_path / "synthetic-quick-clean"
    monkeypatch.setenv(DATA_ENV, "muddy")
    with pytest.raises(ValueError,
                       match="FISHCAM_DATA='muddy' is not a kind of course data: set it to uneven or clean"):
        course_data()
