"""What the GPU's 224 px photographs cost and buy, measured on this machine's CPU.

For each image size (64 px, the CPU default, and 224 px, the CUDA default of ``FISHCAM_IMAGE_SIZE``),
from empty scratch folders: draw the course's full dataset, train notebook 03's ResNet-18 with its
recipe (``resnet18-linear-side``: the stand-in offline, ImageNet online), test it, and play notebook
08's pointing game with Grad-CAM at each of its stages against the evidence masks of the side-view
test photos. Writes ``bench/out/size.md`` (``--results``: also into ``bench/RESULTS.md``).

    python bench/size_bench.py                 # 64 and 224 px, the full recipe (about 25 minutes on 2 cores)
    python bench/size_bench.py --sizes 224 --epochs 3
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

HERE = Path(__file__).resolve().parent
HEADING = "## Image size: 64 px against 224 px (bench/size_bench.py)"


def measure(size: int, epochs: int | None) -> dict:
    from fishcam_utils import data
    from fishcam_utils import evaluation as ev
    from fishcam_utils.course import recipes
    from fishcam_utils.explain.judging.experiments import explanation_maps, load_evidence
    from fishcam_utils.explain.judging.metrics import pointing_game
    from fishcam_utils.models import cam_layers

    row: dict = {"size": size}
    start = time.perf_counter()
    root = data.ensure_synthetic(quick=False, size=size, progress=False)
    row["dataset (s)"] = time.perf_counter() - start
    name = "resnet18-linear-side"
    if epochs is not None:  # a shorter run of the same recipe, said in the table
        recipe = recipes.RECIPES[name]
        recipes.RECIPES[name] = dataclasses.replace(recipe, fit={**recipe.fit, "epochs": epochs})
    start = time.perf_counter()
    model, checkpoint = recipes.course_model(name, quick=False, size=size, progress=False)
    row["training (s)"] = time.perf_counter() - start
    history = pd.read_csv(recipes.course_run_dir(name, quick=False, size=size) / "history.csv")
    row["epochs"] = len(history)
    row["s per epoch"] = float(history["seconds"].median())
    splits = data.make_datasets(root, view="side", image_size=size, augment=0, masks=["evidence"],
                                classes=checkpoint["classes"], progress=False)
    row["test accuracy"] = ev.predict(model, splits.test, progress=False).accuracy
    batch = load_evidence(splits.test)
    row["test images"] = len(batch.labels)
    evidence = batch.masks["evidence"]
    start = time.perf_counter()
    for layer in cam_layers(model):
        maps = explanation_maps(model, batch.images, batch.labels, "gradcam", layer)
        row[f"{layer} pointing (±4 px)"] = pointing_game(maps, evidence, 4).float().mean().item()
    row["pointing (s)"] = time.perf_counter() - start
    random = explanation_maps(model, batch.images, batch.labels, "random")
    row["random map pointing (±4 px)"] = pointing_game(random, evidence, 4).float().mean().item()
    row["layer4 grid"] = f"{size // 32}×{size // 32}"
    return row


def table(rows: list[dict]) -> str:
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        cells = []
        for key in keys:
            value = row.get(key, "")
            if isinstance(value, float):
                value = (f"{value:.1%}" if ("pointing" in key and "(s)" not in key) or key == "test accuracy"
                         else f"{value:.0f}")
            cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of the recipe's")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--results", action="store_true", help="also write the table into bench/RESULTS.md")
    args = parser.parse_args()
    from course_bench import put_in_results

    started = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    from fishcam_utils.models import build_model

    weights = build_model("resnet18", 9, weights="pretrained", verbose=False).fishcam_weights
    rows = []
    with tempfile.TemporaryDirectory(prefix="fishcam-size-bench-") as scratch:
        for name in ("DATA", "CHECKPOINTS", "CACHE"):
            os.environ[f"FISHCAM_{name}_DIR"] = str(Path(scratch) / name.lower())
        for size in args.sizes:  # one after the other: two cores, nothing beside it
            rows.append(measure(size, args.epochs))
            text = (f"{HEADING}\n\nFrom empty folders; full dataset (150 fish per species), notebook 03's ResNet-18 "
                    f"(recipe resnet18-linear-side{'' if args.epochs is None else f', {args.epochs} epochs'}, "
                    f"{'ImageNet' if weights == 'imagenet' else 'the course stand-in, pretrained at 64 px'}); "
                    f"Grad-CAM pointing game on every side-view test photo, tolerance 4 px (one FishResNet map "
                    f"cell, as notebook 08). {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, CPU; started {started}.\n\n{table(rows)}\n")
            args.out.mkdir(parents=True, exist_ok=True)
            (args.out / "size.md").write_text(text)
            if args.results:
                put_in_results(text, HERE / "RESULTS.md", HEADING)
            print(text, flush=True)


if __name__ == "__main__":
    main()
