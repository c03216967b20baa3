"""Does the prose hold for other runs? The whole course under seeds other than the default.

Every sentence in the notebooks that states an outcome (which fish, which layer or method wins, by
how much) is either printed from the run (``Report.say``) or guarded by an assert. This script runs
every notebook under each seed, from empty data, checkpoint and cache folders (``FISHCAM_SEED``
draws the dataset and starts every training run), with every cell run even after one fails, and lists:

- every cell that failed (an assert that does not hold for that seed is prose that described one run);
- every printed outcome whose *wording* differs between the seeds (numbers masked as ``#``): the
  sentences a student's run may word differently from yours. That is allowed, the words follow the
  numbers, but it says which claims are seed-dependent, and the Markdown around them must not
  assume one wording.

Full mode by default (what students get); it takes the whole course's time per seed (32 to 39 minutes
on 2 CPU cores, 2026-12-07). Not part of CI. The report goes to ``bench/out/seeds.md``; ``--results`` also puts it
into ``bench/RESULTS.md``.

    python bench/seeds_bench.py                    # seeds 1 and 2, full mode
    python bench/seeds_bench.py --seeds 0 3 --only 05 08
    python bench/seeds_bench.py --quick --seeds 1  # a smoke test of this script
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import tempfile
import time
from pathlib import Path

from fishcam_utils.course import course_notebooks, read_report
from fishcam_utils.course.runner import execute_notebook
from fishcam_utils.data import ensure_synthetic
from fishcam_utils.settings import QUICK_ENV, SEED_ENV

HERE = Path(__file__).resolve().parent
HEADING = "## Prose against other seeds (bench/seeds_bench.py)"
# A number standing free (digits inside a name, layer1, are words), or a list of them: [2, 3, 6].
_NUMBER = re.compile(r"\[[^\]]*\d[^\]]*\]|(?<![\w.])[-+−]?\d+(?:[.,]\d+)*(?![\w])")


def wording(sentence: str) -> str:
    """A sentence with its numbers masked: two runs word an outcome alike when these are equal."""
    return _NUMBER.sub("#", sentence)


def run_seed(seed: int, notebooks: list[Path], quick: bool, out: Path) -> dict:
    """Every notebook under ``seed`` from empty folders; returns {notebook: {minutes, failures, outcomes}}."""
    found = {}
    with tempfile.TemporaryDirectory(prefix=f"fishcam-seed{seed}-") as scratch:
        for name in ("DATA", "CHECKPOINTS", "CACHE"):
            os.environ[f"FISHCAM_{name}_DIR"] = str(Path(scratch) / name.lower())
        build = out / f"seed{seed}"
        os.environ.update({SEED_ENV: str(seed), QUICK_ENV: "1" if quick else "0", "FISHCAM_BUILD_DIR": str(build)})
        ensure_synthetic(quick, progress=False)
        for source in notebooks:
            print(f"seed {seed}: {source.stem} ...", flush=True)
            (build / "results" / f"{source.stem}.json").unlink(missing_ok=True)
            run = execute_notebook(source, build / "notebooks" / source.name, None, allow_errors=True)
            report = read_report(source.stem, build)
            found[source.stem] = {"minutes": round(run.seconds / 60, 1), "failures": run.failures,
                                  "error": run.stopped_by, "outcomes": report["outcomes"]}
            print(f"  {run.seconds / 60:.1f} min, {len(run.failures)} failing cell(s)", flush=True)
            (out / f"seed{seed}.json").write_text(json.dumps(found, indent=1, ensure_ascii=False))
    return found


def report_text(runs: dict[int, dict], quick: bool, started: str) -> str:
    seeds = sorted(runs)
    notebooks = sorted({name for found in runs.values() for name in found})
    lines = [HEADING, "",
             f"{'Quick' if quick else 'Full'} mode, seeds {', '.join(map(str, seeds))}, "
             f"each from empty data, checkpoint "
             f"and cache folders; {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
             f"started {started}.", "",
             "| notebook | " + " | ".join(f"seed {s}: failing cells | seed {s}: minutes" for s in seeds)
             + " | outcomes worded differently |",
             "|---|" + "---:|---:|" * len(seeds) + "---:|"]
    changed = []
    for name in notebooks:
        cells = []
        for s in seeds:
            got = runs[s].get(name)
            cells += (["not run", ""] if got is None
                      else [str(len(got["failures"]) + bool(got["error"])), str(got["minutes"])])
        # Wordings are compared where every seed ran the notebook (a stopped bench leaves some unrun).
        ran_all = all(name in runs[s] for s in seeds)
        keys = sorted({k for s in seeds for k in runs[s].get(name, {}).get("outcomes", {})}) if ran_all else []
        differing = []
        for key in keys:
            said = {s: runs[s].get(name, {}).get("outcomes", {}).get(key) for s in seeds}
            if len({wording(v) if v is not None else None for v in said.values()}) > 1:
                differing.append(key)
                changed.append((name, key, said))
        lines.append(f"| {name} | " + " | ".join(cells)
                     + (f" | {len(differing)} of {len(keys)} |" if ran_all else " | |"))
    lines += ["", "**Failing cells** (an assert that fails under a seed is a claim that holds for some runs only):", ""]
    failing = [(s, name, " ".join(f.split())) for s in seeds for name, got in runs[s].items()
               for f in got["failures"] + [got["error"]] if f]
    lines += [f"- seed {s}, {name}, {f}" for s, name, f in failing] or ["- none"]
    lines += ["", "**Outcomes worded differently** (numbers aside; the words follow each run's values):", ""]
    for name, key, said in changed:
        lines.append(f"- {name}, *{key}*:")
        lines += [f"  - seed {s}: {text if text is not None else '(not said)'}" for s, text in said.items()]
    if not changed:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="course seeds to run (default: 1 2)")
    parser.add_argument("--quick", action="store_true",
                        help="quick mode (a smoke test; the prose is read in full mode)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="these notebooks only (by number)")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--results", action="store_true", help="also write the report into bench/RESULTS.md")
    args = parser.parse_args()
    if any(seed < 0 for seed in args.seeds):
        parser.error(f"--seeds takes whole numbers >= 0, not {args.seeds}")
    notebooks = [p for p in course_notebooks() if not args.only or any(p.stem.startswith(o) for o in args.only)]
    if not notebooks:
        parser.error(f"--only {' '.join(args.only)} matches no notebook")
    args.out.mkdir(parents=True, exist_ok=True)
    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    runs, start = {}, time.perf_counter()
    for seed in args.seeds:
        runs[seed] = run_seed(seed, notebooks, args.quick, args.out)
        text = report_text(runs, args.quick, started)
        (args.out / "seeds.md").write_text(text)
    print(text)
    print(f"{(time.perf_counter() - start) / 60:.1f} min in all")
    if args.results:
        from course_bench import put_in_results

        put_in_results(text, HERE / "RESULTS.md", HEADING)


if __name__ == "__main__":
    main()
