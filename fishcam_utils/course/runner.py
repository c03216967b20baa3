"""Running the course headless, and what each notebook leaves behind.

A notebook keeps a ``Report``: the figures it saves and the figures it measures (accuracies,
counts, times) go to ``build/``. ``run_course`` executes every notebook in order in a fresh
kernel of this Python, writes executed copies and HTML renderings under ``build/``, and
prints a summary of what each notebook produced.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..files import atomic_path, atomic_write
from ..settings import QUICK_ENV, build_dir, course_data, course_image_size, course_root


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy and torch scalars
        return value.item()
    return value


class Report:
    """What one notebook produced: named values, outcome sentences and saved figures, kept in
    ``build/results/<name>.json``.

    ``report.record("test accuracy", 0.93)`` stores a value; ``report.say("which layer", text)`` prints
    a sentence about an outcome, worded from this run's values, and keeps it (``bench/seeds_bench.py``
    compares the wording across seeds); ``report.figure(fig, "curves")`` saves
    ``build/figures/<name>/curves.png`` and lists it. Each returns what it was given, so a notebook
    can record and display in one line.
    """

    def __init__(self, notebook: str, build: str | os.PathLike | None = None) -> None:
        self.notebook = notebook
        self.build = Path(build) if build is not None else build_dir()
        self.path = self.build / "results" / f"{notebook}.json"
        self.values: dict[str, Any] = {}
        self.outcomes: dict[str, str] = {}
        self.figures: list[str] = []
        self._write()  # start afresh: a re-run must not show an old run's values

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(self.path, "w") as out:
            out.write(json.dumps({"notebook": self.notebook, "values": self.values, "outcomes": self.outcomes,
                                  "figures": self.figures}, indent=2))

    def record(self, name: str, value: Any) -> Any:
        self.values[name] = _jsonable(value)
        self._write()
        return value

    def say(self, key: str, text: str) -> str:
        """Print ``text``, a sentence about this run's outcome whose words were chosen from its values
        (which fish, which layer wins, by how much), and keep it under ``key``; returns ``text``.
        Prose in Markdown never states such an outcome: it is said here, or asserted."""
        if not isinstance(key, str) or not key:
            raise ValueError(f"say(key, text): key must be a non-empty string naming the outcome, not {key!r}")
        self.outcomes[key] = str(text)
        self._write()
        print(text)
        return text

    def table(self):
        """The values recorded so far, one row each (name, value): this run's figures, to show."""
        import pandas as pd

        rows = [(name, json.dumps(value) if isinstance(value, (dict, list)) else value)
                for name, value in self.values.items()]
        return pd.DataFrame(rows, columns=["figure of this run", "value"]).set_index("figure of this run")

    def figure(self, fig, name: str, dpi: int = 110):
        """Save ``fig`` as ``build/figures/<notebook>/<name>.png``; returns the figure."""
        path = self.build / "figures" / self.notebook / f"{name}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
        relative = path.relative_to(self.build).as_posix()
        if relative not in self.figures:
            self.figures.append(relative)
        self._write()
        return fig


def read_report(notebook: str, build: str | os.PathLike | None = None) -> dict[str, Any]:
    """What ``Report(notebook)`` stored; empty values, outcomes and figures if it never ran."""
    path = (Path(build) if build is not None else build_dir()) / "results" / f"{notebook}.json"
    if not path.is_file():
        return {"notebook": notebook, "values": {}, "outcomes": {}, "figures": []}
    return {"outcomes": {}, **json.loads(path.read_text())}


# ---------------------------------------------------------------------------------------
# The runner


@dataclass
class NotebookRun:
    name: str
    seconds: float
    ok: bool
    error: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    outcomes: dict[str, str] = field(default_factory=dict)
    # With allow_errors: every cell that failed, as "cell N: ErrorName: message" (cells count from 0).
    failures: list[str] = field(default_factory=list)
    # What stopped the run before its end: a failing cell (without allow_errors), a timeout, a dead kernel.
    stopped_by: str = ""


def course_notebooks(folder: str | os.PathLike | None = None) -> list[Path]:
    """The course's notebooks in order (their names start with their number)."""
    folder = Path(folder) if folder is not None else course_root() / "notebooks"
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def notebook_title(path: Path) -> str:
    """A notebook's title: its first Markdown heading, without the number ("Capstone: your own photos, ...")."""
    for cell in json.loads(Path(path).read_text(encoding="utf-8"))["cells"]:
        text = "".join(cell["source"]).lstrip()
        if cell["cell_type"] == "markdown" and text.startswith("# "):
            return text.splitlines()[0][2:].split("·", 1)[-1].strip()
    return Path(path).stem


# What running the notebooks needs beyond the package: the `notebooks` extra.
_NOTEBOOK_MODULES = ("nbformat", "nbclient", "nbconvert", "ipykernel", "jupyter_client")


def check_course_runnable(notebooks: str | os.PathLike | None = None, html: bool = True) -> list[Path]:
    """The notebooks ``run_course`` would run; a ``FishCAMError`` saying what to do when there are
    none (the package is installed, but this is not a checkout of the course) or when the
    ``notebooks`` extra (Jupyter's kernel and executor) is missing."""
    import importlib.util

    from .. import COURSE_REPOSITORY
    from ..errors import FishCAMError

    folder = Path(notebooks) if notebooks is not None else course_root() / "notebooks"
    found = course_notebooks(folder)
    if not found:
        raise FishCAMError(f"no course notebooks in {folder} (files named NN_*.ipynb): `fishcam course` runs the "
                           f"notebooks of a FishCAM checkout. Clone the course (git clone {COURSE_REPOSITORY}) and "
                           "run `fishcam course` inside it, or point --notebooks at its notebooks folder.")
    needed = [m for m in _NOTEBOOK_MODULES if m != "nbconvert" or html]
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        raise FishCAMError(f"running the notebooks needs {', '.join(missing)}, which are not installed: "
                           "pip install 'fishcam-utils[notebooks]' (or, in a checkout, pip install -e '.[notebooks]')")
    return found


def _this_python_kernel_manager() -> type:
    """A kernel manager class that starts this very Python, whatever kernels the user has installed.

    Handed to nbclient as a class, so that nbclient owns each kernel and shuts it down after its
    notebook (a kernel manager passed as an instance would leave the kernel running).
    """
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPython(KernelSpecManager):
        def get_kernel_spec(self, kernel_name):
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python (FishCAM)",
                language="python",
            )

    class ThisPythonKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            _encrypt_transport(self)

        @default("kernel_spec_manager")
        def _default_spec_manager(self):
            return ThisPython(parent=self)

    return ThisPythonKernelManager


def _encrypt_transport(manager) -> None:
    """Give the kernel a CurveZMQ key pair, as jupyter_client provisions it, so that its sockets are
    encrypted (ipykernel warns of plain TCP otherwise); where this jupyter_client or libzmq has no
    CurveZMQ, talk over local IPC sockets instead, which never leave the machine. (Windows has no
    IPC sockets: there the plain TCP on localhost stays, with ipykernel's warning.)"""
    import zmq

    if manager.has_trait("curve_publickey") and zmq.has("curve"):
        manager.curve_publickey, manager.curve_secretkey = zmq.curve_keypair()
    elif sys.platform != "win32":
        manager.transport = "ipc"
        manager.ip = str(Path(tempfile.mkdtemp(prefix="fishcam-kernel-")) / "kernel")


class CellProgress:
    """A progress bar over a notebook's code cells while it runs headless: "cell k of N", the time
    elapsed and the first line of the cell running. Refreshed every ``every`` seconds, so a cell that
    trains for ten minutes still shows the clock moving. Use as nbclient's cell hooks."""

    def __init__(self, name: str, cells: int, every: float = 5.0, file=None) -> None:
        from tqdm import tqdm

        self.name, self.cells = name, cells
        self.bar = tqdm(total=cells, desc=f"{name}: cell 0 of {cells}", unit="cell", file=file or sys.stdout,
                        dynamic_ncols=True, bar_format="{desc} |{bar:20}| {elapsed}{postfix}")
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(every,), daemon=True)
        self._ticker.start()

    def _tick(self, every: float) -> None:
        while not self._stop.wait(every):
            self.bar.refresh()

    def started(self, cell=None, **_: Any) -> None:
        if getattr(cell, "cell_type", "code") != "code":  # nbclient calls the hooks for markdown cells too
            return
        first = next((line for line in str(getattr(cell, "source", "")).splitlines() if line.strip()), "")
        self.bar.set_description_str(f"{self.name}: cell {min(self.bar.n + 1, self.cells)} of {self.cells}",
                                     refresh=False)
        self.bar.set_postfix_str(first[:48], refresh=True)

    def executed(self, cell=None, **_: Any) -> None:
        if getattr(cell, "cell_type", "code") == "code":
            self.bar.update(1)

    @staticmethod
    def runnable(nb) -> int:
        """The code cells nbclient runs: not empty, not tagged ``skip-execution``."""
        return sum(c.cell_type == "code" and bool(str(c.source).strip())
                   and "skip-execution" not in c.get("metadata", {}).get("tags", []) for c in nb.cells)

    def close(self) -> None:
        self._stop.set()
        self.bar.set_description_str(f"{self.name}: {self.bar.n} of {self.cells} cells ran", refresh=False)
        self.bar.set_postfix_str("", refresh=False)
        self.bar.close()


def execute_notebook(source: Path, executed: Path, html: Path | None, timeout: int = 1800,
                     progress: bool = True, allow_errors: bool = False) -> NotebookRun:
    """Run ``source`` top to bottom in a fresh kernel (working directory: its folder), showing
    ``CellProgress`` unless ``progress`` is False.

    The executed copy (with outputs) goes to ``executed`` and, if given, an HTML rendering
    to ``html``: also when a cell fails, so the error can be read there. A failing cell stops the
    run, unless ``allow_errors``: then every cell runs and ``failures`` lists each one that failed
    (``bench/seeds_bench.py`` wants every failing assert, not the first).
    """
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(source, as_version=4)
    bar = CellProgress(source.stem, CellProgress.runnable(nb)) if progress else None
    client = NotebookClient(
        nb,
        kernel_manager_class=_this_python_kernel_manager(),
        timeout=timeout,
        resources={"metadata": {"path": str(source.parent)}},
        allow_errors=allow_errors,
        **({"on_cell_start": bar.started, "on_cell_executed": bar.executed} if bar else {}),
    )
    start = time.perf_counter()
    error = ""
    try:
        client.execute()
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1] if str(failure).strip() else "a cell failed"
    except Exception as failure:  # a dead kernel, a timeout: report it, keep going
        error = f"{type(failure).__name__}: {failure}"
    finally:
        if bar:
            bar.close()
    seconds = time.perf_counter() - start
    failures = [f"cell {i}: {output.get('ename', 'Error')}: {' '.join(str(output.get('evalue', '')).split())[:300]}"
                for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    stopped_by = error
    if failures and not error:
        error = f"{len(failures)} cell(s) failed; the first: {failures[0]}"
    executed.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, executed)
    if html is not None:
        from nbconvert import HTMLExporter

        body, _ = HTMLExporter().from_notebook_node(nb)
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(body, encoding="utf-8")
    return NotebookRun(name=source.stem, seconds=seconds, ok=not error, error=error, failures=failures,
                       stopped_by=stopped_by)


def time_table(runs: list[NotebookRun], dataset_seconds: float | None = None) -> str:
    """The time per notebook as a Markdown table (minutes), with the total, and first the time spent
    drawing (or finding) the default dataset if given: what ``make course`` prints last and
    ``bench/course_bench.py`` writes to ``bench/RESULTS.md``."""
    rows = ["| notebook | ran | minutes |", "|---|---|---:|"]
    if dataset_seconds is not None:
        rows.append(f"| (the dataset) | ok | {dataset_seconds / 60:.1f} |")
    rows += [f"| {r.name} | {'ok' if r.ok else 'FAILED'} | {r.seconds / 60:.1f} |" for r in runs]
    total = sum(r.seconds for r in runs) + (dataset_seconds or 0.0)
    rows.append(f"| **total** | {sum(r.ok for r in runs)}/{len(runs)} | **{total / 60:.1f}** |")
    return "\n".join(rows)


def format_summary(runs: list[NotebookRun], quick: bool, build: Path,
                   dataset_seconds: float | None = None) -> str:
    lines = [f"FishCAM course ({'quick' if quick else 'full'} mode): "
             f"{sum(r.ok for r in runs)}/{len(runs)} notebooks ran"]
    for run in runs:
        status = "ok" if run.ok else "FAILED"
        lines.append(f"  {run.name:<32} {status:<7} {run.seconds:7.1f} s   {len(run.figures)} figure(s)")
        for key, value in run.values.items():
            shown = f"{value:.4g}" if isinstance(value, float) else value
            lines.append(f"      {key}: {shown}")
        if run.error:
            lines.append(f"      error: {run.error}")
    lines.append(f"  total {sum(r.seconds for r in runs):.1f} s")
    lines.append(f"Executed notebooks: {build / 'notebooks'}   HTML: {build / 'html'}   figures: {build / 'figures'}")
    lines += ["", "Time per notebook:", time_table(runs, dataset_seconds)]
    return "\n".join(lines)


def run_course(
    quick: bool = False,
    only: list[str] | None = None,
    build: str | os.PathLike | None = None,
    html: bool = True,
    notebooks: str | os.PathLike | None = None,
) -> list[NotebookRun]:
    """Make the default dataset, then execute the notebooks in order; print and return a summary.

    ``only`` picks notebooks by number or name prefix (e.g. ``["01", "02"]``).
    """
    from ..data.synthetic import ensure_synthetic

    chosen = check_course_runnable(notebooks, html)  # before anything changes: it may say what is missing
    build = Path(build) if build is not None else build_dir()
    os.environ[QUICK_ENV] = "1" if quick else "0"  # the kernels inherit it
    os.environ["FISHCAM_BUILD_DIR"] = str(build)
    if only:
        unknown = [o for o in only if not any(p.stem.startswith(o) for p in chosen)]
        if unknown:
            raise ValueError(f"no notebook {', '.join(unknown)}; the notebooks are "
                             f"{', '.join(p.stem.split('_')[0] for p in chosen)}")
        chosen = [p for p in chosen if any(p.stem.startswith(o) for o in only)]
    start = time.perf_counter()
    size = course_image_size()  # checked here, before any kernel starts: a bad FISHCAM_IMAGE_SIZE fails at once
    print(f"Dataset: {ensure_synthetic(quick, size=size)} ({size} px photos, {course_data()}; FISHCAM_IMAGE_SIZE "
          f"and FISHCAM_DATA choose)")
    dataset_seconds = time.perf_counter() - start
    runs = []
    for source in chosen:
        print(f"Running {source.name} ...", flush=True)
        (build / "results" / f"{source.stem}.json").unlink(missing_ok=True)  # no stale values
        run = execute_notebook(
            source,
            build / "notebooks" / source.name,
            build / "html" / f"{source.stem}.html" if html else None,
        )
        report = read_report(source.stem, build)
        run.values, run.figures, run.outcomes = report["values"], report["figures"], report["outcomes"]
        runs.append(run)
        print(f"  {'done' if run.ok else 'FAILED'} in {run.seconds:.1f} s" + (f": {run.error}" if run.error else ""),
              flush=True)
    summary = format_summary(runs, quick, build, dataset_seconds)
    (build / "summary.txt").write_text(summary + "\n")
    print(summary)
    return runs
