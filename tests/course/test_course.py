"""Running the course headless: executed copies, HTML, reports and a summary."""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nbformat
import pytest

from fishcam_utils.course import Report, course_notebooks, read_report, run_course


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nbformat.write(nb, path)
    return path


def test_a_report_keeps_values_and_figures(tmp_path):
    report = Report("07_demo", build=tmp_path)
    assert report.record("test accuracy", 0.875) == 0.875
    fig = plt.figure()
    plt.plot([0, 1])
    report.figure(fig, "line")
    stored = read_report("07_demo", tmp_path)
    assert stored["values"] == {"test accuracy": 0.875}
    assert stored["figures"] == ["figures/07_demo/line.png"]
    assert (tmp_path / "figures" / "07_demo" / "line.png").read_bytes()[:4] == b"\x89PNG"
    Report("07_demo", build=tmp_path)  # a new run starts from nothing
    assert read_report("07_demo", tmp_path)["values"] == {}

@pytest.mark.slow

def test_run_course_executes_in_order_and_summarises(tmp_path, capsys):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    _notebook(
        folder / "01_ok.ipynb",
        "import os\nfrom fishcam_utils.course import Report\nreport = Report('01_ok')",
        "report.record('answer', 42)\nassert os.environ['FISHCAM_QUICK'] == '1'",
        "import matplotlib.pyplot as plt\nreport.figure(plt.figure(), 'blank')\nprint('hello from the kernel')",
        "import sys\nreport.record('kernel', [sys.executable, os.getpid()])",
    )
    _notebook(folder / "02_broken.ipynb", "assert 1 == 2, 'deliberately broken'")
    _notebook(folder / "notes.ipynb", "raise SystemExit('not a course notebook')")
    assert [p.name for p in course_notebooks(folder)] == ["01_ok.ipynb", "02_broken.ipynb"]

    build = tmp_path / "build"
    runs = run_course(quick=True, build=build, notebooks=folder)
    assert [r.name for r in runs] == ["01_ok", "02_broken"]
    ok, broken = runs
    python, pid = ok.values.pop("kernel")
    assert python == sys.executable  # the kernel runs this very Python, not some other installed kernel
    assert not Path(f"/proc/{pid}").exists() or not Path("/proc/self").exists()  # and it was shut down
    assert ok.ok and ok.values == {"answer": 42} and ok.figures == ["figures/01_ok/blank.png"]
    assert not broken.ok and "deliberately broken" in broken.error
    executed = nbformat.read(build / "notebooks" / "01_ok.ipynb", as_version=4)
    assert "hello from the kernel" in json.dumps(executed.cells[2].outputs)
    assert "hello from the kernel" in (build / "html" / "01_ok.html").read_text()
    assert (build / "html" / "02_broken.html").is_file()  # failures are rendered too
    summary = capsys.readouterr().out
    assert "01_ok: cell 4 of 4" in summary and "01_ok: 4 of 4 cells ran" in summary  # progress while it ran
    assert "02_broken: cell 1 of 1" in summary and "02_broken: 1 of 1 cells ran" in summary  # a failed cell ran
    assert "1/2 notebooks ran" in summary
    table = summary[summary.index("Time per notebook:"):].splitlines()
    assert table[1] == "| notebook | ran | minutes |" and table[3].startswith("| (the dataset) | ok | ")
    assert table[4].startswith("| 01_ok | ok | ") and table[5].startswith("| 02_broken | FAILED | ")
    assert table[6].startswith("| **total** | 1/2 | **")
    total, dataset = float(table[6].split("**")[-2]), float(table[3].split("|")[3])
    assert (total == pytest.approx(dataset + sum(r.seconds for r in runs) / 60, abs=0.11)
            and "answer: 42" in summary and "FAILED" in summary)
    assert summary.rstrip().endswith((build / "summary.txt").read_text().rstrip())  # the printed summary, kept


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_quick_mode_switch(monkeypatch, value):
    from fishcam_utils.settings import quick_mode

    monkeypatch.setenv("FISHCAM_QUICK", value)
    assert quick_mode()
    monkeypatch.setenv("FISHCAM_QUICK", "0")
    assert not quick_mode()


def test_a_report_shows_the_figures_it_recorded(tmp_path):
    from fishcam_utils.course import Report

    report = Report("00_demo", build=tmp_path)
    report.record("test accuracy", 0.5)
    report.record("by class", {"a": 1})
    table = report.table()
    assert table.loc["test accuracy", "value"] == 0.5 and table.loc["by class", "value"] == '{"a": 1}'


def test_cell_progress_counts_the_cells_nbclient_runs():
    from fishcam_utils.course import CellProgress

    nb = nbformat.v4.new_notebook()
    skipped = nbformat.v4.new_code_cell("print(1)")
    skipped.metadata["tags"] = ["skip-execution"]
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("  \n"), skipped,
                nbformat.v4.new_markdown_cell("# text"), nbformat.v4.new_code_cell("y = 2")]
    assert CellProgress.runnable(nb) == 2


def test_cell_progress_counts_cells_and_keeps_the_clock_moving(capsys):
    import io
    import time

    from fishcam_utils.course import CellProgress

    out = io.StringIO()
    bar = CellProgress("08_demo", 2, every=0.02, file=out)
    bar.started(cell=nbformat.v4.new_code_cell("\n# train for a while\nfit(model)"))
    time.sleep(0.5)  # no cell finishes, yet the bar is redrawn
    bar.executed(cell=nbformat.v4.new_code_cell("fit(model)"))
    note = nbformat.v4.new_markdown_cell("## A heading")
    bar.started(cell=note)
    bar.executed(cell=note)  # markdown cells neither count nor show
    bar.close()
    text = out.getvalue()
    assert "08_demo: cell 1 of 2" in text and "# train for a while" in text and "08_demo: 1 of 2 cells ran" in text
    assert text.count("08_demo: cell 1 of 2") >= 3  # redrawn while the cell ran
    assert "A heading" not in text and "cell 2 of 2" not in text


@pytest.mark.parametrize("curve", [True, False])
def test_course_kernels_talk_encrypted_or_over_local_sockets_so_ipykernel_does_not_warn(tmp_path, capfd, monkeypatch,
                                                                                        curve):
    import zmq

    from fishcam_utils.course.runner import execute_notebook

    if not curve:  # a libzmq without CurveZMQ: local IPC sockets instead
        monkeypatch.setattr(zmq, "has", lambda capability: False if capability == "curve" else zmq.has(capability))
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print(6 * 7)")]
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    run = execute_notebook(tmp_path / "tiny.ipynb", tmp_path / "out.ipynb", None, progress=False)
    assert run.ok and nbformat.read(tmp_path / "out.ipynb", 4).cells[0].outputs[0]["text"] == "42\n"
    out, err = capfd.readouterr()
    assert "without encryption" not in out + err
