"""The ``fishcam`` command: make data, check a dataset, fetch the Kaggle set, run the course.

Run ``fishcam --help`` or ``fishcam <command> --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import FishCAMError


def _size(text: str) -> int | tuple[int, int]:
    """``64`` → 64; ``590x445`` → (590, 445) as (width, height)."""
    try:
        if "x" in text.lower():
            width, height = text.lower().split("x")
            return int(width), int(height)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WIDTHxHEIGHT (e.g. 64 or 590x445), got {text!r}") from None


def _make_data(args: argparse.Namespace) -> int:
    from .data.synthetic import (
        DEFAULT_CONFIG,
        QUICK_CONFIG,
        SyntheticConfig,
        default_dataset_dir,
        generate_dataset,
        load_metadata,
    )

    base = QUICK_CONFIG if args.quick else DEFAULT_CONFIG
    config = SyntheticConfig(
        size=args.size if args.size is not None else base.size,
        fish_per_class=args.fish_per_class if args.fish_per_class is not None else base.fish_per_class,
        seed=args.seed,
        shortcut=args.shortcut,
        shortcut_rate=args.shortcut_rate,
        layout=args.layout,
    )
    out = Path(args.out) if args.out else default_dataset_dir(args.quick)
    start = time.perf_counter()
    root = generate_dataset(out, config, overwrite=args.force, workers=args.workers)
    n_images = len(load_metadata(root))
    print(f"{n_images} images ({config.fish_per_class} fish per class, {config.width}x{config.height} px, "
          f"{config.layout} layout) in {root} [{time.perf_counter() - start:.1f} s]")
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from .data.cache import DecodedCache
    from .data.layouts import scan_dataset

    index = scan_dataset(args.root, args.layout, missing_views=args.missing_views, unknown_files=args.unknown_files)
    print(index)
    for note in index.notes:
        print("note:", note)
    print(index.counts().to_string())
    if index.mask_kinds:
        print("masks:", ", ".join(f"{k} ({(index.frame['mask_' + k] != '').sum()} images)" for k in index.mask_kinds))
    if not args.no_decode:
        # Decoding every file (at a tiny size, into a throwaway cache) finds every bad one at once.
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            DecodedCache(index.frame["path"], 8, cache_dir=tmp).build()
        print(f"all {len(index)} images decode")
    return 0


def _download_kaggle(args: argparse.Namespace) -> int:
    from .data.kaggle import download_kaggle_fish

    print(download_kaggle_fish(timeout=args.timeout))
    return 0


def _course(args: argparse.Namespace) -> int:
    from .course import run_course

    runs = run_course(quick=args.quick, only=args.only, build=args.build, html=not args.no_html)
    return 0 if runs and all(r.ok for r in runs) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fishcam",
        description="FishCAM: seeing what a fish classifier sees. Tools for the course's data and notebooks.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    make = commands.add_parser(
        "make-data",
        help="generate the synthetic multi-view fish dataset (seconds, offline)",
        description="Draw the synthetic fish dataset: PNG images of 9 invented species from three views "
        "(side, back, belly), with body and evidence masks, metadata.csv and dataset.json. "
        "The same seed always gives the same files.",
    )
    make.add_argument("--out", help="folder to write (default: data/synthetic, or data/synthetic-quick with --quick)")
    make.add_argument("--size", type=_size, help="image size: N for NxN, or WIDTHxHEIGHT (default 64)")
    make.add_argument("--fish-per-class", type=int, help="fish per species (default 150; 30 with --quick)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument("--shortcut", action="store_true", help="put a class-coloured sticker on training photos only")
    make.add_argument("--shortcut-rate", type=float, default=1.0, help="share of training photos with the sticker (default 1)")
    make.add_argument("--layout", choices=["multiview", "kaggle"], default="multiview",
                      help="multiview: <split>/<class>/<fish>_<view>.png; kaggle: <Species>/<Species>/NNNNN.png side views")
    make.add_argument("--workers", type=int, help="processes to draw with (default: the number of CPU cores)")
    make.add_argument("--quick", action="store_true", help="the small dataset quick mode uses")
    make.add_argument("--force", action="store_true", help="replace a dataset made with other settings")
    make.set_defaults(run=_make_data)

    check = commands.add_parser(
        "check-data",
        help="scan a dataset folder, count its images and decode every one",
        description="Detect the layout of a dataset folder, check it (empty classes, stray files, missing "
        "views, mismatched splits), print counts per class and split, and decode every image to find "
        "corrupt files. Exits with an error message naming the file and the fix if something is wrong.",
    )
    check.add_argument("root", help="the dataset folder")
    check.add_argument("--layout", default="auto", choices=["auto", "class_folders", "kaggle", "multiview", "filename"])
    check.add_argument("--missing-views", default="error", choices=["error", "keep", "drop"],
                       help="what to do with a multi-view fish that lacks a view (default: error)")
    check.add_argument("--unknown-files", default="error", choices=["error", "skip"],
                       help="what to do with non-image files in class folders (default: error)")
    check.add_argument("--no-decode", action="store_true", help="only scan; do not decode the images")
    check.set_defaults(run=_check_data)

    kaggle = commands.add_parser(
        "download-kaggle",
        help="fetch the Kaggle 'A Large Scale Fish Dataset' (needs internet and kagglehub)",
        description="Find the Kaggle fish dataset on disk, or download it with kagglehub. Offline, it "
        "fails within seconds and says where to put a copy downloaded on another machine.",
    )
    kaggle.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the network (default 5)")
    kaggle.set_defaults(run=_download_kaggle)

    course = commands.add_parser(
        "course",
        help="run every notebook headless and summarise what they produced",
        description="Generate the dataset, execute the notebooks in order in a fresh kernel, write executed "
        "copies and HTML to build/, and print accuracies, figures and time per notebook.",
    )
    course.add_argument("--quick", action="store_true", help="quick mode: small data, few epochs (what CI runs)")
    course.add_argument("--only", nargs="+", metavar="NN", help="run only these notebooks (by number, e.g. 01 03)")
    course.add_argument("--build", help="output folder (default: build/)")
    course.add_argument("--no-html", action="store_true", help="skip the HTML renderings")
    course.set_defaults(run=_course)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (FishCAMError, ValueError) as error:
        print(f"fishcam {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
