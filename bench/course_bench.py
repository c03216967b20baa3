"""Where the course's time goes: every notebook run headless, one after another, timed.

By default from nothing, as a student's first run: empty scratch folders for the dataset, the
checkpoints and the decode cache (``--keep`` uses the checkout's own, so trained models are reused).
The table is rewritten after every notebook, so a stopped run keeps what it measured, in
``bench/out/course.md``; ``--results`` also puts it into ``bench/RESULTS.md``.

    python bench/course_bench.py                # full mode, from empty folders
    python bench/course_bench.py --quick --only 01 02
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import tempfile
import time
from pathlib import Path

import torch

from fishcam_utils.course import course_notebooks, run_course, time_table
from fishcam_utils.data import ensure_synthetic

HERE = Path(__file__).resolve().parent
HEADING = "## The whole course (bench/course_bench.py)"


def section(runs, quick: bool, fresh: bool, started: str, planned: int, dataset_seconds: float) -> str:
    state = "from empty data, checkpoint and cache folders" if fresh else "with the checkout's data and checkpoints"
    return (f"{HEADING}\n\n{'Quick' if quick else 'Full'} mode, {state}; {platform.machine()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads; started {started}; {len(runs)} of {planned} notebooks done.\n\n"
            f"{time_table(runs, dataset_seconds)}\n")


def put_in_results(text: str, results: Path, heading: str = HEADING) -> None:
    """Replace the section ``heading`` of RESULTS.md with ``text`` (or append it)."""
    old = results.read_text() if results.is_file() else "# Benchmark results\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    new = pattern.sub(lambda _: text + "\n", old) if pattern.search(old) else old.rstrip("\n") + "\n\n" + text
    results.write_text(new)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="quick mode (what CI runs)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="these notebooks only (by number)")
    parser.add_argument("--keep", action="store_true", help="use the checkout's data and checkpoints (no fresh start)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--results", action="store_true", help="also write the table into bench/RESULTS.md")
    args = parser.parse_args()
    notebooks = [p.stem for p in course_notebooks()]
    chosen = [n for n in notebooks if not args.only or any(n.startswith(o) for o in args.only)]
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    scratch = None
    if not args.keep:
        scratch = tempfile.TemporaryDirectory(prefix="fishcam-course-bench-")
        for name in ("DATA", "CHECKPOINTS", "CACHE"):
            os.environ[f"FISHCAM_{name}_DIR"] = str(Path(scratch.name) / name.lower())
    if not chosen:
        parser.error(f"--only {' '.join(args.only)} matches no notebook; they are {', '.join(notebooks)}")
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    try:
        start = time.perf_counter()  # a student's first run draws the dataset before any notebook
        ensure_synthetic(args.quick, progress=False)
        dataset_seconds = time.perf_counter() - start
        for name in chosen:  # one at a time, so that the table survives a stopped run
            runs += run_course(quick=args.quick, only=[name], build=args.out / "course-build", html=False)
            text = section(runs, args.quick, scratch is not None, started, len(chosen), dataset_seconds)
            (args.out / "course.md").write_text(text)
            if args.results:
                put_in_results(text, HERE / "RESULTS.md")
    finally:
        if scratch is not None:
            scratch.cleanup()
    print(text)


if __name__ == "__main__":
    main()
