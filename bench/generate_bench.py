"""How long the course's default dataset takes to draw (goal: under 30 s on 2 cores).

Generates the default dataset (64x64 px, 150 fish per species, three views: 4050 images and
8100 masks) into a scratch folder several times and reports the median.

    python bench/generate_bench.py --repeats 3
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import time
from pathlib import Path

from fishcam_utils.data import DEFAULT_CONFIG, generate_dataset

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="processes (default: one per core)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    args = parser.parse_args()
    times = []
    for r in range(args.repeats):
        target = args.out / "generate-default"
        shutil.rmtree(target, ignore_errors=True)
        start = time.perf_counter()
        generate_dataset(target, DEFAULT_CONFIG, workers=args.workers, progress=False)
        times.append(time.perf_counter() - start)
        print(f"run {r + 1}: {times[-1]:.1f} s")
    shutil.rmtree(args.out / "generate-default", ignore_errors=True)
    report = f"""## Generating the default dataset (bench/generate_bench.py)

64x64 px, 150 fish per species, 3 views: 4050 PNG images and 8100 PNG masks, on {os.cpu_count()} cores
({platform.machine()}, Python {platform.python_version()}), {args.repeats} runs.

**Median {statistics.median(times):.1f} s** (runs: {", ".join(f"{t:.1f}" for t in times)}); goal: under 30 s.
"""
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "generate_bench.md").write_text(report)


if __name__ == "__main__":
    main()
