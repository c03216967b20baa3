"""``fishcam make-data``, ``check-data`` and ``download-kaggle``: the course's datasets."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

from ..settings import MISSING_VIEWS, UNKNOWN_FILES
from .messages import say_notes
from .options import (
    LAYOUT_CHOICES,
    POSITIVE,
    POSITIVE_INT,
    PROBABILITY,
    names,
    number,
    progress_option,
    reading_options,
    scan_options,
    size,
)


def add_make_data(commands) -> None:
    make = commands.add_parser(
        "make-data",
        help="generate the synthetic multi-view fish dataset (seconds, offline)",
        description="Draw the synthetic fish dataset: PNG images of 9 invented species from three views "
        "(side, back, belly), some spoilt by weed, glare, murk or motion blur, with distractors in the water, "
        "with body, evidence and distractor masks, metadata.csv and dataset.json (FISHCAM_DATA=clean: the "
        "earlier clean photos). The same seed always gives the same files.",
    )
    make.add_argument("--out", help="folder to write (default: data/synthetic, or data/synthetic-quick with --quick; "
                      "with -clean at the end for FISHCAM_DATA=clean)")
    make.add_argument("--size", type=size, help="image size: N for NxN, or WIDTHxHEIGHT (default: $FISHCAM_IMAGE_SIZE, "
                      "else 224 with a CUDA GPU and 64 without)")
    make.add_argument("--fish-per-class", type=POSITIVE_INT, help="fish per species (default 150; 30 with --quick)")
    make.add_argument("--seed", type=int, default=None,
                      help="random seed (default: the course seed, $FISHCAM_SEED, else 0)")
    make.add_argument("--shortcut", action="store_true", help="put a class-coloured sticker on training photos only")
    make.add_argument("--shortcut-rate", type=PROBABILITY, default=1.0,
                      help="share of training photos with the sticker (default 1)")
    make.add_argument("--degraded-share", type=PROBABILITY, default=None,
                      help="share of photos whose evidence is hidden or degraded: weed, another fish or glare over the "
                           "trait, murky water, motion blur (default: the course's, 0.25; 0 with FISHCAM_DATA=clean)")
    make.add_argument("--distractors", type=number(int, 0, high=8, high_strict=False), default=None,
                      help="the most objects with trait-like textures in the water per photo, with masks of their own "
                           "(default: the course's, 4; 0 with FISHCAM_DATA=clean)")
    make.add_argument("--layout", choices=["multiview", "kaggle"], default="multiview",
                      help="multiview: <split>/<class>/<fish>_<view>.png; kaggle: <Species>/<Species>/NNNNN.png "
                           "side views")
    make.add_argument("--workers", type=POSITIVE_INT, help="processes to draw with (default: the number of CPU cores)")
    make.add_argument("--quick", action="store_true", help="the small dataset quick mode uses")
    make.add_argument("--force", "--overwrite", dest="force", action="store_true",
                      help="replace a dataset made with other settings (refused if the folder holds files of yours)")
    make.set_defaults(run=make_data, output_flag="--out")


def make_data(args: argparse.Namespace) -> int:
    from ..data.synthetic import course_config, default_dataset_dir, generate_dataset, load_metadata
    from ..settings import course_image_size

    image_size = args.size if args.size is not None else course_image_size()
    config = course_config(args.quick, image_size)  # the course's, then what the flags say
    chosen = {"fish_per_class": args.fish_per_class, "seed": args.seed, "degraded_share": args.degraded_share,
              "distractors": args.distractors}
    config = dataclasses.replace(config, shortcut=args.shortcut, shortcut_rate=args.shortcut_rate, layout=args.layout,
                                 **{name: value for name, value in chosen.items() if value is not None})
    # The course's folder of a square size (synthetic, synthetic-224px); WIDTHxHEIGHT goes to the course size's.
    square = image_size if isinstance(image_size, int) else None
    out = Path(args.out) if args.out else default_dataset_dir(args.quick, square)
    start = time.perf_counter()
    root = generate_dataset(out, config, overwrite=args.force, workers=args.workers)
    n_images = len(load_metadata(root))
    print(f"{n_images} images ({config.fish_per_class} fish per class, {config.width}x{config.height} px, "
          f"{config.layout} layout) in {root} [{time.perf_counter() - start:.1f} s]")
    return 0


def add_check_data(commands) -> None:
    check = commands.add_parser(
        "check-data",
        help="scan a dataset folder, count its images and decode every one",
        description="Detect the layout of a dataset folder, check it (empty classes, stray files, missing "
        "views, mismatched splits), print counts per class and split, and decode every image to find "
        "corrupt files. Every problem of the folder is listed in one pass, each naming its files and the fix.",
    )
    check.add_argument("root", help="the dataset folder")
    check.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES, metavar="LAYOUT",
                       help="dataset layout: %(choices)s (auto detects it)")
    reading_options(check, missing_views=MISSING_VIEWS, unknown_files=UNKNOWN_FILES)
    check.add_argument("--classes", type=names, help="class names in label order, separated by commas "
                       "(labels in file names may be their positions: 0_abc.jpg is the first class)")
    check.add_argument("--no-decode", action="store_true", help="only scan; do not decode the images")
    progress_option(check, "no progress bar")
    check.set_defaults(run=check_data)


def check_data(args: argparse.Namespace) -> int:
    from ..data.check import check_dataset

    report = check_dataset(args.root, classes=args.classes, scan=scan_options(args), decode=not args.no_decode,
                           progress=not args.no_progress)
    index = report.index
    if index is not None:
        print(index)
        say_notes(index.notes)
        print(index.counts().to_string())
        if index.mask_kinds:
            print("masks:", ", ".join(f"{k} ({(index.frame['mask_' + k] != '').sum()} images)"
                                      for k in index.mask_kinds))
    for warning in report.warnings:
        print("warning:", warning, file=sys.stderr)
    if report.decoded and not report.unreadable:
        print(f"all {report.decoded} image and mask files decode")
    report.raise_if_problems()
    return 0


def add_download_kaggle(commands) -> None:
    kaggle = commands.add_parser(
        "download-kaggle",
        help="fetch the Kaggle 'A Large Scale Fish Dataset' (needs internet and kagglehub)",
        description="Find the Kaggle fish dataset on disk, or download it with kagglehub. Offline, it "
        "fails within seconds and says where to put a copy downloaded on another machine.",
    )
    kaggle.add_argument("--timeout", type=POSITIVE, default=5.0, help="seconds to wait for the network (default 5)")
    kaggle.set_defaults(run=download_kaggle)


def download_kaggle(args: argparse.Namespace) -> int:
    from ..data.kaggle import download_kaggle_fish

    print(download_kaggle_fish(timeout=args.timeout))
    return 0
