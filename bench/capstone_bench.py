"""Notebook 09, the capstone, timed and read: minutes, and the figures its model card is written from.

Runs ``notebooks/09_capstone.ipynb`` headless in full mode (``--quick`` for quick mode) from empty data,
checkpoint and cache folders, so the stand-in photos are drawn inside the timed run, then once more on the
photos now drawn (the time a student's second run takes). Prints one table; ``--results`` also appends it to
``bench/RESULTS.md``. On a GPU machine the course's image size is 224 px by itself; ``--size`` sets another.
Not part of CI.

    python bench/capstone_bench.py                 # full mode, 64 px on a CPU, 224 px on a CUDA GPU
    python bench/capstone_bench.py --quick         # a smoke test of this script
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

from fishcam_utils.course import read_report
from fishcam_utils.course.runner import execute_notebook

HERE = Path(__file__).resolve().parent
NOTEBOOK = HERE.parent / "notebooks" / "09_capstone.ipynb"


def run(out: Path, label: str) -> dict:
    start = time.perf_counter()
    result = execute_notebook(NOTEBOOK, out / f"{label}.ipynb", None, progress=False, timeout=3600)
    minutes = (time.perf_counter() - start) / 60
    return {"label": label, "ok": result.ok, "error": result.error, "minutes": minutes,
            "report": read_report("09_capstone", out)}


def describe(runs: list[dict], quick: bool, device: str) -> str:
    values = runs[0]["report"]["values"]
    judged, best = values.get("judged", {}), values.get("chosen layer")
    lines = [f"Notebook 09, {'quick' if quick else 'full'} mode, {device}; "
             f"{platform.machine()}, {os.cpu_count()} cores; "
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}.", "", "| run | ran | minutes |", "|---|---|---:|"]
    lines += [f"| {r['label']} | {'ok' if r['ok'] else r['error']} | {r['minutes']:.1f} |" for r in runs]
    if values:
        lines += ["", f"Test accuracy {values.get('test accuracy', float('nan')):.1%}; chosen layer {best}; "
                      f"image size {values['configuration']['image size']} px."]
        for name, row in judged.items():
            lines.append(f"- {name}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))
        found = values.get("background only")
        if found:
            lines.append(f"- background only: {found['background_only']:.1%} of {found['photos']} photos "
                         f"(chance {found['chance']:.1%}, z {found['z']:.2f})")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--size", help="FISHCAM_IMAGE_SIZE for the run (default: the course's choice)")
    parser.add_argument("--results", action="store_true", help="append the table to bench/RESULTS.md")
    args = parser.parse_args()
    os.environ["FISHCAM_QUICK"] = "1" if args.quick else "0"
    if args.size:
        os.environ["FISHCAM_IMAGE_SIZE"] = args.size
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    with tempfile.TemporaryDirectory(prefix="fishcam-capstone-") as scratch:
        for name in ("DATA", "CHECKPOINTS", "CACHE", "BUILD"):
            os.environ[f"FISHCAM_{name}_DIR"] = str(Path(scratch) / name.lower())
        out = Path(scratch) / "build"
        runs = [run(out, "from nothing (the stand-in drawn)"), run(out, "again (the stand-in kept)")]
        text = describe(runs, args.quick, device)
    print(text)
    if args.results:
        with open(HERE / "RESULTS.md", "a", encoding="utf-8") as handle:
            handle.write("\n## Notebook 09, the capstone (bench/capstone_bench.py)\n\n" + text)


if __name__ == "__main__":
    main()
