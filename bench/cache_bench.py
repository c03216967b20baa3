"""Epoch time with plain decoding vs the decode-once cache, on a Kaggle-sized fake dataset.

Generates 590x445 PNGs in the Kaggle layout (the size of the real "A Large Scale Fish
Dataset"), then runs epochs of the same DataLoader pipeline (decode/resize to 224, eval
transform, batches of 32) from files and from the cache, interleaved, and reports the median
of the per-round ratios. Outputs are checked identical first.

    python bench/cache_bench.py            # 40 fish per species (360 images), 5 rounds
    python bench/cache_bench.py --fish 100 --rounds 7
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from fishcam_utils.data import FishImageDataset, SyntheticConfig, generate_dataset, scan_dataset

HERE = Path(__file__).resolve().parent


def epoch_seconds(dataset, batch_size: int) -> float:
    start = time.perf_counter()
    for images, labels in DataLoader(dataset, batch_size=batch_size, num_workers=0):
        images.sum()  # touch the batch, as a training step would
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fish", type=int, default=40, help="fish per species (default 40: 360 images)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved epochs of each (default 5)")
    parser.add_argument("--size", type=int, default=224, help="training image size (default 224)")
    parser.add_argument("--out", type=Path, default=HERE / "out", help="scratch folder (default bench/out)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    root = generate_dataset(args.out / f"kaggle-590x445-{args.fish}",
                            SyntheticConfig(size=(590, 445), fish_per_class=args.fish, layout="kaggle"))
    index = scan_dataset(root)
    cache_dir = args.out / "cache"
    for old in cache_dir.glob("*.npy"):
        old.unlink()  # the first cached epoch must pay for the decoding

    plain = FishImageDataset(index, image_size=args.size)
    start = time.perf_counter()
    cached = FishImageDataset(index, image_size=args.size, cache=True, cache_dir=cache_dir)
    build = time.perf_counter() - start
    for i in range(0, len(index), max(1, len(index) // 20)):
        assert torch.equal(plain[i][0], cached[i][0]), f"cached sample {i} differs"

    first_cached = epoch_seconds(cached, 32)
    rows = []
    for r in range(args.rounds):
        t_plain = epoch_seconds(plain, 32)
        t_cached = epoch_seconds(cached, 32)
        rows.append((t_plain, t_cached, t_plain / t_cached))
        print(f"round {r + 1}: plain {t_plain:.2f} s, cached {t_cached:.3f} s, ratio {t_plain / t_cached:.1f}x")
    ratio = statistics.median(r[2] for r in rows)
    plain_med = statistics.median(r[0] for r in rows)
    cached_med = statistics.median(r[1] for r in rows)

    report = f"""## Decode-once cache (bench/cache_bench.py)

{len(index)} PNG images of 590x445 px (Kaggle layout), resized to {args.size}x{args.size}, eval transform,
DataLoader batches of 32, one process; {args.rounds} interleaved rounds on {platform.machine()},
{torch.get_num_threads()} torch threads, Python {platform.python_version()}, torch {torch.__version__}.

| | seconds per epoch (median) |
|---|---|
| plain decoding (every epoch) | {plain_med:.2f} |
| building the cache (first epoch only, threads) | {build:.2f} |
| first epoch read from the cache | {first_cached:.3f} |
| later epochs from the cache | {cached_med:.3f} |

**Median ratio plain / cached: {ratio:.1f}x** (per round: {", ".join(f"{r[2]:.1f}" for r in rows)}).
Cached samples were checked equal to decoded ones before timing.
"""
    print(report)
    (args.out).mkdir(parents=True, exist_ok=True)
    (args.out / "cache_bench.md").write_text(report)


if __name__ == "__main__":
    main()
