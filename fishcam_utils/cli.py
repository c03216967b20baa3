"""The ``fishcam`` command: make data, check a dataset, fetch the Kaggle set, train, evaluate, run the course.

Run ``fishcam --help`` or ``fishcam <command> --help`` for the options of each command.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import sys
import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import FishCAMError, on_command_line

# The architectures `fishcam train` offers (kept here so --help needs no torch import).
MODEL_CHOICES = ["fishresnet", "resnet18", "resnet34", "resnet50", "convnext_tiny", "convnext_nano"]
FUSION_CHOICES = ["attention", "mean", "concat", "gated"]  # = models.FUSIONS (a test checks)


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows defaults that say something (not None or False), and keeps the examples' line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "%(default)" not in text:
            text += " (default: %(default)s)"
        return text


def _wrap(text: str) -> str:
    return textwrap.fill(text, 88)


def _size(text: str) -> int | tuple[int, int]:
    """``64`` → 64; ``590x445`` → (590, 445) as (width, height)."""
    try:
        if "x" in text.lower():
            width, height = text.lower().split("x")
            return int(width), int(height)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be N or WIDTHxHEIGHT (e.g. 64 or 590x445), got {text!r}") from None


def _number(kind: type, low: float, *, strict: bool = False, high: float | None = None,
            high_strict: bool = True) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` at least ``low`` (above it when ``strict``) and below ``high``."""
    word = "a whole number" if kind is int else "a number"
    bounds = (f"above {low}" if strict else f"at least {low}") + (
        "" if high is None else f" and {'below' if high_strict else 'at most'} {high}")

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {word}, got {text!r}") from None
        too_low = value <= low if strict else value < low
        too_high = high is not None and (value >= high if high_strict else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"must be {word} {bounds}, got {text}")
        return value

    return parse


POSITIVE_INT = _number(int, 1)
COUNT = _number(int, 0)
POSITIVE = _number(float, 0, strict=True)
NONNEGATIVE = _number(float, 0)
FRACTION = _number(float, 0, high=1)  # [0, 1)
PROBABILITY = _number(float, 0, high=1, high_strict=False)  # [0, 1]
IMAGE_SIZE = _number(int, 16)


def _device(text: str) -> str:
    if not re.fullmatch(r"cpu|cuda(:\d+)?|mps", text):
        raise argparse.ArgumentTypeError(f"expected cpu, cuda, cuda:N or mps, got {text!r}")
    return text


def _names(text: str) -> list[str]:
    """``side,back,belly`` → ["side", "back", "belly"]."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected names separated by commas (e.g. side,back,belly), got {text!r}")
    return names


def _make_data(args: argparse.Namespace) -> int:
    from .data.synthetic import (
        DEFAULT_CONFIG,
        QUICK_CONFIG,
        SyntheticConfig,
        default_dataset_dir,
        generate_dataset,
        load_metadata,
    )
    from .settings import course_image_size

    base = QUICK_CONFIG if args.quick else DEFAULT_CONFIG
    size = args.size if args.size is not None else course_image_size()
    config = SyntheticConfig(
        size=size,
        fish_per_class=args.fish_per_class if args.fish_per_class is not None else base.fish_per_class,
        seed=args.seed,
        shortcut=args.shortcut,
        shortcut_rate=args.shortcut_rate,
        layout=args.layout,
    )
    # The course's folder of a square size (synthetic, synthetic-224px); WIDTHxHEIGHT goes to the course size's.
    out = Path(args.out) if args.out else default_dataset_dir(args.quick, size if isinstance(size, int) else None)
    start = time.perf_counter()
    root = generate_dataset(out, config, overwrite=args.force, workers=args.workers)
    n_images = len(load_metadata(root))
    print(f"{n_images} images ({config.fish_per_class} fish per class, {config.width}x{config.height} px, "
          f"{config.layout} layout) in {root} [{time.perf_counter() - start:.1f} s]")
    return 0


def _check_data(args: argparse.Namespace) -> int:
    from .data.check import check_dataset
    from .data.species import VIEWS

    report = check_dataset(args.root, args.layout, classes=args.classes, views=args.views or VIEWS,
                           missing_views=args.missing_views, unknown_files=args.unknown_files,
                           decode=not args.no_decode, progress=not args.no_progress)
    index = report.index
    if index is not None:
        print(index)
        _say_notes(index.notes)
        print(index.counts().to_string())
        if index.mask_kinds:
            print("masks:", ", ".join(f"{k} ({(index.frame['mask_' + k] != '').sum()} images)" for k in index.mask_kinds))
    for warning in report.warnings:
        print("warning:", warning, file=sys.stderr)
    if report.decoded and not report.unreadable:
        print(f"all {report.decoded} image and mask files decode")
    report.raise_if_problems()
    return 0


# DataWarnings shown on this run, so that the notes that repeat them are not printed twice.
_SHOWN_WARNINGS: set[str] = set()


def _say_notes(notes: Sequence[str]) -> None:
    for note in notes:
        if note not in _SHOWN_WARNINGS:
            print("note:", note)


@contextlib.contextmanager
def _plain_data_warnings():
    """DataWarnings as ``warning: ...`` lines (no file and line of the package), each remembered."""
    from .errors import DataWarning

    with warnings.catch_warnings():
        original = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, DataWarning):
                _SHOWN_WARNINGS.add(str(message))
                print(f"warning: {message}", file=sys.stderr)
            else:
                original(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _download_kaggle(args: argparse.Namespace) -> int:
    from .data.kaggle import download_kaggle_fish

    print(download_kaggle_fish(timeout=args.timeout))
    return 0


def _weights(text: str) -> str | None:
    return None if text.lower() in ("none", "random") else text


def _train(args: argparse.Namespace) -> int:
    from .data.setup import make_datasets
    from .data.species import VIEWS
    from .models import MultiViewNet, build_model
    from .settings import checkpoints_dir
    from .training import check_run_dir, distributed, fit, pick_device, seed_everything

    pick_device(args.device)  # an unavailable device, or a run folder in use, is said before the data is read
    if args.run_dir:
        check_run_dir(args.run_dir, args.resume, args.overwrite)
    is_distributed = distributed.init_distributed()
    main_process = distributed.is_main_process()
    try:
        multiview = args.fusion is not None
        data = make_datasets(args.data, view=args.view, image_size=args.image_size, augment=args.augment,
                             cache=not args.no_cache, split_seed=args.split_seed, layout=args.layout,
                             multiview=multiview, classes=args.classes, views=args.views or VIEWS,
                             missing_views=args.missing_views, unknown_files=args.unknown_files,
                             progress=main_process and not args.no_progress)
        seed_everything(args.seed)  # the initial weights too
        if multiview:
            if not data.index.views:
                raise ValueError(f"--fusion needs a multi-view dataset (<split>/<class>/<fish>_<view>.png); "
                                 f"{args.data} has single images. Leave out --fusion to train on them.")
            model = MultiViewNet(len(data.classes), views=data.index.views, backbone=args.model, fusion=args.fusion,
                                 shared=args.shared, view_dropout=args.view_dropout, aux_weight=args.aux_weight,
                                 weights=args.weights, width=args.width, verbose=main_process)
            name, described = f"{args.model}-{args.fusion}", (f"{args.fusion} fusion of {'one shared' if args.shared else 'a'} "
                                                              f"{args.model} {'for' if args.shared else 'per'} view")
        else:
            model = build_model(args.model, len(data.classes), weights=args.weights, head=args.head, width=args.width,
                                verbose=main_process)
            name = args.model + (f"-{args.view}" if data.index.views else "")
            described = f"{args.head} head, {model.fishcam_weights} weights"
        run_dir = Path(args.run_dir) if args.run_dir else checkpoints_dir() / name
        if main_process:
            _say_notes(data.index.notes)
            print(f"{data}\nmodel {args.model} ({described}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters) → {run_dir}"
                  + (f"\ndistributed: {distributed.world_size()} processes" if is_distributed else ""))
        result = fit(
            model, data.train, data.val, run_dir=run_dir, resume=args.resume, overwrite=args.overwrite,
            epochs=args.epochs, batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr,
            weight_decay=args.weight_decay, schedule=args.schedule, label_smoothing=args.label_smoothing,
            class_weights=args.class_weights, grad_clip=args.grad_clip, freeze_epochs=args.freeze_epochs,
            backbone_lr_scale=args.backbone_lr_scale, patience=args.patience, monitor=args.monitor, seed=args.seed,
            deterministic=args.deterministic, device=args.device, num_workers=args.workers,
            tensorboard=args.tensorboard, progress=not args.no_progress,
        )
        if result.interrupted:
            return 130
        if main_process:
            print(f"best {result.monitor} {result.best_value:.4f} at epoch {result.best_epoch}; "
                  f"checkpoints {result.best_path} and {result.last_path} [{result.seconds:.0f} s]")
            if not args.no_eval:
                _write_test_report(model, data.test, result, run_dir / "eval-test", not args.no_progress)
        return 0
    finally:
        distributed.cleanup_distributed()


def _write_test_report(model, dataset, result, out: Path, progress: bool) -> None:
    from .evaluation import predict, write_evaluation

    predictions = predict(model, dataset, progress=progress)
    write_evaluation(out, predictions, history=result.history if result is not None else None, dataset=dataset)
    print(f"test accuracy {predictions.accuracy:.4f} on {len(dataset)} images; report in {out}")


def _checkpoint_split(args: argparse.Namespace, checkpoint: dict, cache: bool, masks: Sequence[str] = ()):
    """The split ``args.split`` of the checkpoint's dataset (or ``--data``), read the way the model
    was trained: same image size, class order and view (or all views, for a multi-view model)."""
    from .data.layouts import survey
    from .data.setup import make_datasets
    from .data.species import VIEWS
    from .errors import DataError

    prep = checkpoint["preprocessing"]
    root = args.data or prep.get("data_root")
    if root is None:
        raise ValueError(f"{args.checkpoint} does not record its dataset; pass --data DIR")
    multiview = bool(prep.get("views"))
    view = None if multiview else (args.view or prep.get("view") or "side")
    scan = prep.get("scan") or {}  # how the training data was read, unless the flags say otherwise
    reading = {"layout": scan.get("layout", "auto") if not args.data else "auto",
               "views": args.views or scan.get("views") or VIEWS,
               "missing_views": args.missing_views or scan.get("missing_views", "keep"),
               "unknown_files": args.unknown_files or scan.get("unknown_files", "error")}
    try:
        data = make_datasets(root, view=view, image_size=prep.get("image_size") or 64, augment=0, cache=cache,
                             split_seed=args.split_seed, classes=checkpoint["classes"], multiview=multiview,
                             masks=masks, progress=False, **reading)
    except DataError:
        # The class list is the checkpoint's, not a flag: say so when the data's classes differ.
        found = survey(root, classes=checkpoint["classes"], **reading)[1].classes
        if set(found) != set(checkpoint["classes"]):
            raise DataError(f"{root} has the classes {found}, but {args.checkpoint} was trained on "
                            f"{checkpoint['classes']}: give --data a dataset of the model's classes.") from None
        raise
    _say_notes(data.index.notes)
    return getattr(data, args.split)


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluation import predict, write_evaluation
    from .training import load_checkpoint, pick_device
    from .training.engine import history_frame

    device = pick_device(args.device)
    model, checkpoint = load_checkpoint(args.checkpoint, device=device)
    dataset = _checkpoint_split(args, checkpoint, cache=not args.no_cache)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{args.split}"
    predictions = predict(model, dataset, batch_size=args.batch_size, progress=not args.no_progress)
    history = history_frame(checkpoint["history"]) if checkpoint.get("history") else None
    files = write_evaluation(out, predictions, history=history, dataset=dataset)
    print(f"{args.split} accuracy {predictions.accuracy:.4f} on {len(dataset)} images "
          f"({checkpoint['model_config']['name']}, epoch {checkpoint.get('epoch')})")
    print(f"wrote {len(files)} files to {out}: " + ", ".join(sorted(p.name for p in files.values())))
    return 0


def _gradcam(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch
    from tqdm.auto import tqdm

    from .explain import gradient_to_image, make_cam, save_cam_images
    from .explain.overlay import heatmap_to_rgb, save_picture
    from .files import atomic_write, describe, remove_all
    from .models import cam_layers
    from .training import load_checkpoint, pick_device

    from .explain.registry import lookup

    try:
        lookup(args.method)
    except ValueError as error:
        raise ValueError(f"--method {args.method}: {error}") from None
    heatmap_to_rgb([[0.0]], args.cmap)  # an unknown method or colormap, or an --out in use, is said before any work
    out = Path(args.out)
    earlier = _earlier_maps(out, args.overwrite)
    device = pick_device(args.device)
    model, checkpoint = load_checkpoint(args.checkpoint, device=device)
    classes = checkpoint["classes"]
    dataset = _checkpoint_split(args, checkpoint, cache=False)
    views = getattr(dataset, "views", None)  # a multi-view model: one map per view from one backward
    layers = args.layer.split(",") if args.layer else [cam_layers(model)[-1]]
    cam = make_cam(args.method, model, layers if len(layers) > 1 else layers[0], progress=False if args.no_progress else None)
    if earlier:  # removed only now that the new maps can be made
        names = describe(earlier)
        remove_all(earlier)
        print(f"--overwrite: removed the earlier maps in {out}: {names}")
    count = len(dataset) if args.limit is None else min(args.limit, len(dataset))
    ids = dataset.fish["fish_id"].tolist() if views else dataset.frame["relpath"].tolist()
    rows = []
    bar = tqdm(total=count, desc=f"{cam.name} maps", unit="image", disable=args.no_progress)
    for start in range(0, count, args.batch_size):
        batch = [dataset[i] for i in range(start, min(start + args.batch_size, count))]
        if views:
            inputs = (torch.stack([b[0][0] for b in batch]).to(device), torch.stack([b[0][1] for b in batch]).to(device))
        else:
            inputs = torch.stack([b[0] for b in batch]).to(device)
        labels = torch.tensor([b[1] for b in batch])
        result = cam(inputs, targets=labels.tolist() if args.explain == "true" else None)
        predicted = result.logits.argmax(1).cpu()
        probs = torch.softmax(result.logits.float(), 1).cpu()
        for j, (label, pred) in enumerate(zip(labels.tolist(), predicted.tolist())):
            i = start + j
            correct = label == pred
            folder = out / ("correct_samples" if correct else "incorrect_samples") / classes[label]
            stem = Path(ids[i]).stem  # unique within a class folder
            pixels = result.pixels  # guided Grad-CAM's product, (N, [V,] 3, H, W); else None
            if views:
                pictures = [(f"{stem}_{v}", image, result.maps[j, k], None if pixels is None else pixels[j, k])
                            for k, (v, image) in enumerate(dataset.raw(i).items())
                            if image is not None]  # a missing view has nothing to show
            else:
                pictures = [(stem, dataset.raw(i), result.maps[j], None if pixels is None else pixels[j])]
            for name, image, heatmap, product in pictures:
                files = save_cam_images(folder, name, image, heatmap.cpu().numpy(), args.alpha, args.cmap)
                if product is not None:
                    save_picture(folder / f"{name}_guided.png", gradient_to_image(product[None].float().cpu())[0])
                rows.append({"id": ids[i], "view": name[len(stem) + 1:] or "", "true": classes[label],
                             "pred": classes[pred], "confidence": float(probs[j, pred]), "correct": correct,
                             "explained": classes[int(result.targets[j])], "method": cam.name, "layer": cam.layer_name,
                             "overlay": files["overlay"].relative_to(out).as_posix()})
        bar.update(len(batch))
    bar.close()
    summary = pd.DataFrame(rows)
    for kind in ("correct_samples", "incorrect_samples"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.csv", "w", newline="") as handle:
        summary.to_csv(handle, index=False)
    samples = summary.drop_duplicates("id") if len(summary) else summary
    right = int(samples["correct"].sum()) if len(samples) else 0
    print(f"{cam.name} at {cam.layer_name}: {len(samples)} {args.split} {'fish' if views else 'images'}, {right} correct, {len(samples) - right} "
          f"incorrect; original, heatmap and overlay of each in {out}/correct_samples and {out}/incorrect_samples, "
          f"summary in {out / 'summary.csv'}")
    return 0


GRADCAM_OUTPUTS = ("correct_samples", "incorrect_samples", "summary.csv")


def _earlier_maps(out: Path, overwrite: bool) -> list[Path]:
    """Maps of an earlier run in ``out``, which would mix with the new ones: refused without --overwrite."""
    from .files import describe, earlier_outputs

    old = earlier_outputs(out, GRADCAM_OUTPUTS)
    if old and not overwrite:
        raise FileExistsError(f"{out} already holds maps of an earlier run ({describe(old)}), which would mix with the "
                              "new ones; pass --overwrite to replace them, or another --out")
    return old


def _evaluate_cam(args: argparse.Namespace) -> int:
    from .explain.experiments import load_evidence, methods_by_layers, table_methods
    from .files import atomic_write
    from .models import cam_layers
    from .training import load_checkpoint, pick_device

    device = pick_device(args.device)
    model, checkpoint = load_checkpoint(args.checkpoint, device=device)
    if checkpoint["preprocessing"].get("views"):
        raise ValueError("evaluate-cam judges single-view models; this checkpoint is a multi-view model")
    dataset = _checkpoint_split(args, checkpoint, cache=False, masks=[args.mask])
    batch = load_evidence(dataset, per_class=args.per_class)
    layers = args.layers or cam_layers(model)
    methods = args.methods or table_methods()
    narrow = [m for m in methods if m not in table_methods()]
    if narrow:  # unknown names, or CAM, which works at one layer only
        raise ValueError(f"--methods {' '.join(narrow)}: the table takes methods that work at every layer, "
                         f"{', '.join(table_methods())}")
    table = methods_by_layers(model, batch, layers, methods, mask=args.mask, tolerance=args.tolerance,
                              curve_images=args.curve_images, steps=args.steps, baseline=args.baseline,
                              progress=not args.no_progress)
    out = Path(args.out)
    with atomic_write(out, "w", newline="") as handle:
        table.round(4).to_csv(handle, index=False)
    methods = table[table["layer"] != "-"]  # the reference maps (random, edges) are what a method must beat
    best = methods.sort_values("pointing", ascending=False).iloc[0]
    print(f"{len(methods)} (method, layer) pairs and {len(table) - len(methods)} reference maps on {len(batch)} {args.split} images against the {args.mask} masks; "
          f"best pointing game: {best['method']} at {best['layer']}, {best['pointing']:.1%}. Table: {out}")
    return 0


def _pretrain(args: argparse.Namespace) -> int:
    from .training.pretrain import pretrain

    entry = pretrain(args.backbone, Path(args.out) if args.out else None, device=args.device,
                     progress=not args.no_progress)
    print(f"{args.backbone}: source-task test accuracy {entry['source_test_accuracy']:.1%}, "
          f"{entry['bytes'] / 1e6:.1f} MB, sha256 {entry['sha256'][:12]}...; written to {entry['path']}")
    return 0


def _course(args: argparse.Namespace) -> int:
    from .course import run_course

    runs = run_course(quick=args.quick, only=args.only, build=args.build, html=not args.no_html)
    return 0 if runs and all(r.ok for r in runs) else 1


LAYOUT_CHOICES = ["auto", "class_folders", "kaggle", "multiview", "filename"]  # = "auto" + data.LAYOUTS (a test checks)


def _reading_options(parser, missing_views: str | None = None, unknown_files: str | None = None) -> None:
    """How a dataset folder is read; without defaults, as the checkpoint's training data was."""
    saved = " (default: as the model's training data was read)"
    parser.add_argument("--views", type=_names, help="view names of a multi-view dataset, separated by commas "
                        "(default: side,back,belly)")
    parser.add_argument("--missing-views", default=missing_views, choices=["error", "keep", "drop"],
                        help="what to do with a multi-view fish that lacks a view" + ("" if missing_views else saved))
    parser.add_argument("--unknown-files", default=unknown_files, choices=["error", "skip"],
                        help="what to do with files that are not images" + ("" if unknown_files else saved))


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
    make.add_argument("--size", type=_size, help="image size: N for NxN, or WIDTHxHEIGHT (default: $FISHCAM_IMAGE_SIZE, "
                      "else 224 with a CUDA GPU and 64 without)")
    make.add_argument("--fish-per-class", type=POSITIVE_INT, help="fish per species (default 150; 30 with --quick)")
    make.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    make.add_argument("--shortcut", action="store_true", help="put a class-coloured sticker on training photos only")
    make.add_argument("--shortcut-rate", type=PROBABILITY, default=1.0,
                      help="share of training photos with the sticker (default 1)")
    make.add_argument("--layout", choices=["multiview", "kaggle"], default="multiview",
                      help="multiview: <split>/<class>/<fish>_<view>.png; kaggle: <Species>/<Species>/NNNNN.png side views")
    make.add_argument("--workers", type=POSITIVE_INT, help="processes to draw with (default: the number of CPU cores)")
    make.add_argument("--quick", action="store_true", help="the small dataset quick mode uses")
    make.add_argument("--force", "--overwrite", dest="force", action="store_true",
                      help="replace a dataset made with other settings (refused if the folder holds files of yours)")
    make.set_defaults(run=_make_data)

    check = commands.add_parser(
        "check-data",
        help="scan a dataset folder, count its images and decode every one",
        description="Detect the layout of a dataset folder, check it (empty classes, stray files, missing "
        "views, mismatched splits), print counts per class and split, and decode every image to find "
        "corrupt files. Exits with an error message naming the file and the fix if something is wrong.",
    )
    check.add_argument("root", help="the dataset folder")
    check.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES)
    _reading_options(check, missing_views="error", unknown_files="error")
    check.add_argument("--classes", type=_names, help="class names in label order, separated by commas "
                       "(labels in file names may be their positions: 0_abc.jpg is the first class)")
    check.add_argument("--no-decode", action="store_true", help="only scan; do not decode the images")
    check.add_argument("--no-progress", action="store_true", help="no progress bar")
    check.set_defaults(run=_check_data)

    kaggle = commands.add_parser(
        "download-kaggle",
        help="fetch the Kaggle 'A Large Scale Fish Dataset' (needs internet and kagglehub)",
        description="Find the Kaggle fish dataset on disk, or download it with kagglehub. Offline, it "
        "fails within seconds and says where to put a copy downloaded on another machine.",
    )
    kaggle.add_argument("--timeout", type=POSITIVE, default=5.0, help="seconds to wait for the network (default 5)")
    kaggle.set_defaults(run=_download_kaggle)

    train = commands.add_parser(
        "train",
        help="train a classifier on a dataset folder; checkpoints and a test report in a run folder",
        description=_wrap("Train a model on one view of a dataset (any layout fishcam check-data reads). Splits come from the "
        "dataset's folders, or a seeded fish-grouped split. Each epoch writes best.pt, last.pt and history.csv to the "
        "run folder (atomically, so Ctrl-C loses nothing: --resume continues). At the end the best model is evaluated "
        "on the test split (eval-test/ in the run folder). Under torchrun it trains with DistributedDataParallel: "
        "torchrun --nproc-per-node 2 $(which fishcam) train ..."),
        formatter_class=_Help,
        epilog="examples:\n"
        "  fishcam make-data && fishcam train --data data/synthetic --model fishresnet --epochs 20\n"
        "  fishcam train --data data/synthetic --model resnet18 --head mlp --freeze-epochs 2 --backbone-lr-scale 0.1 --lr 1e-3\n"
        "  fishcam train --data data/synthetic --run-dir checkpoints/fishresnet-side --resume   # after Ctrl-C\n"
        "  fishcam train --data data/synthetic --fusion attention --view-dropout 0.3   # all three views, one model\n"
        "  fishcam evaluate --checkpoint checkpoints/fishresnet-side/best.pt",
    )
    group = train.add_argument_group("data")
    group.add_argument("--data", required=True, help="dataset folder, e.g. data/synthetic (make it with fishcam make-data)")
    group.add_argument("--view", default="side", help="the view to train on, for multi-view datasets (side, back, belly)")
    group.add_argument("--image-size", type=IMAGE_SIZE, default=None,
                       help="images are resized to this many pixels a side (default: $FISHCAM_IMAGE_SIZE, else 224 "
                            "with a CUDA GPU and 64 without)")
    group.add_argument("--augment", type=NONNEGATIVE, default=1.0, help="augmentation strength (0 turns it off)")
    group.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES, help="dataset layout (auto detects it)")
    group.add_argument("--split-seed", type=int, default=0, help="seed of the split, for datasets without split folders")
    group.add_argument("--no-cache", action="store_true", help="decode the files every epoch instead of once")
    _reading_options(group, missing_views="keep", unknown_files="error")
    group.add_argument("--classes", type=_names, help="class names in label order, separated by commas (default: "
                       "the dataset's order, else alphabetical)")
    group = train.add_argument_group("model")
    group.add_argument("--model", default="fishresnet", choices=MODEL_CHOICES, help="architecture")
    group.add_argument("--head", default="linear", choices=["linear", "mlp"], help="classifier head")
    group.add_argument("--weights", type=_weights, default="auto",
                       help="auto (ImageNet if available, else random, said plainly), imagenet, course (the stand-in of "
                       "`fishcam pretrain`), pretrained (ImageNet if available, else the stand-in), none, or a .pth file")
    group.add_argument("--width", type=POSITIVE_INT, default=32, help="FishResNet channels")
    group = train.add_argument_group("multi-view (a model that fuses every view of a fish)")
    group.add_argument("--fusion", choices=list(FUSION_CHOICES),
                       help="train a multi-view model with this fusion and --model branches (default: single view)")
    group.add_argument("--shared", action="store_true", help="one backbone shared by all views instead of one per view")
    group.add_argument("--view-dropout", type=FRACTION, default=0.0,
                       help="while training, drop each view with this probability (at least one is kept)")
    group.add_argument("--aux-weight", type=NONNEGATIVE, default=0.5, help="weight of the per-view auxiliary losses")
    group = train.add_argument_group("optimisation")
    group.add_argument("--epochs", type=POSITIVE_INT, default=20, help="passes over the training set")
    group.add_argument("--batch-size", type=POSITIVE_INT, default=64, help="per process under torchrun")
    group.add_argument("--optimizer", default="adamw", choices=["sgd", "adam", "adamw"], help="optimiser")
    group.add_argument("--lr", type=POSITIVE, default=3e-3, help="learning rate (of the head, when fine-tuning)")
    group.add_argument("--weight-decay", type=NONNEGATIVE, default=1e-4, help="decoupled weight decay (not on biases and norms)")
    group.add_argument("--schedule", default="onecycle", choices=["none", "cosine", "onecycle", "plateau"],
                       help="learning-rate schedule (cosine and onecycle step every batch)")
    group.add_argument("--label-smoothing", type=FRACTION, default=0.0, help="share of the target spread over all classes")
    group.add_argument("--class-weights", choices=["balanced"], help="weight the loss by inverse class frequency")
    group.add_argument("--grad-clip", type=POSITIVE, help="clip the gradient norm to this")
    group.add_argument("--freeze-epochs", type=COUNT, default=0, help="train only the head for this many epochs first")
    group.add_argument("--backbone-lr-scale", type=NONNEGATIVE, default=1.0, help="backbone LR = lr x this after unfreezing")
    group.add_argument("--patience", type=POSITIVE_INT, help="stop after this many epochs without improvement")
    group.add_argument("--monitor", default="val_acc", choices=["val_acc", "val_loss"], help="what 'best' means")
    group = train.add_argument_group("running")
    group.add_argument("--run-dir", help="run folder (default: checkpoints/<model>-<view>)")
    group.add_argument("--resume", action="store_true", help="continue the run in --run-dir from last.pt")
    group.add_argument("--overwrite", action="store_true", help="start the run in --run-dir again from scratch")
    group.add_argument("--seed", type=int, default=0, help="seed of the initial weights, shuffling and augmentation")
    group.add_argument("--deterministic", action="store_true", help="deterministic algorithms (identical reruns)")
    group.add_argument("--device", type=_device, help="cpu, cuda, cuda:1 or mps (default: the best available)")
    group.add_argument("--workers", type=COUNT, default=0, help="data-loading processes")
    group.add_argument("--tensorboard", action="store_true", help="log to <run-dir>/tensorboard (needs tensorboard)")
    group.add_argument("--no-eval", action="store_true", help="skip the test-split report at the end")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    train.set_defaults(run=_train)

    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a checkpoint on a split: metrics, confusion matrix, ROC/PR, mistakes",
        description=_wrap("Rebuild the model saved in a checkpoint, predict a split of a dataset with the checkpoint's "
        "preprocessing and class order, and write metrics.json, classification_report.txt, per_class.csv, "
        "confusion_matrix(.csv/_normalized.csv/.png), roc_pr(.csv/.png), predictions.csv, curves.png and "
        "misclassified.png to a folder (default: eval-<split>/ beside the checkpoint)."),
        formatter_class=_Help,
    )
    evaluate.add_argument("--checkpoint", required=True, help="a best.pt or last.pt written by fishcam train or fit()")
    evaluate.add_argument("--data", help="dataset folder (default: the one the model was trained on)")
    evaluate.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split to evaluate")
    evaluate.add_argument("--view", help="view to evaluate (default: the training view)")
    evaluate.add_argument("--split-seed", type=int, default=0, help="seed of the split, for datasets without split folders")
    evaluate.add_argument("--out", help="output folder")
    evaluate.add_argument("--batch-size", type=POSITIVE_INT, default=128, help="images per forward pass")
    evaluate.add_argument("--device", type=_device, help="cpu, cuda or mps (default: the best available)")
    _reading_options(evaluate)
    evaluate.add_argument("--no-cache", action="store_true", help="decode the files instead of using the decode-once cache")
    evaluate.add_argument("--no-progress", action="store_true", help="no progress bars")
    evaluate.set_defaults(run=_evaluate)

    gradcam = commands.add_parser(
        "gradcam",
        help="class activation maps of a checkpoint on a split: original, heatmap and overlay per image",
        description=_wrap("Explain a trained model's predictions: for every image of a split (or the first --limit), "
        "compute a class activation map (Grad-CAM by default, of the predicted class, at the model's last "
        "sensible layer) and write the original image, the heatmap and the overlay as RGB PNGs, sorted into "
        "correct_samples/<true class>/ and incorrect_samples/<true class>/, with summary.csv listing each "
        "image's true and predicted class, confidence and files."),
        formatter_class=_Help,
        epilog="example:\n  fishcam gradcam --checkpoint checkpoints/fishresnet-side/best.pt --out build/gradcam --limit 50",
    )
    gradcam.add_argument("--checkpoint", required=True, help="a best.pt or last.pt written by fishcam train or fit()")
    gradcam.add_argument("--data", help="dataset folder (default: the one the model was trained on)")
    gradcam.add_argument("--out", required=True, help="output folder")
    gradcam.add_argument("--overwrite", action="store_true", help="replace the maps of an earlier run in --out")
    # Checked against the method registry when the command runs (building the parser must not import torch).
    gradcam.add_argument("--method", default="gradcam",
                         help="which map: a name of the method registry (fishcam_utils.explain.method_names()), e.g. "
                         "gradcam, gradcam++, hirescam, scorecam, ablationcam, eigencam, cam; guided-gradcam also "
                         "writes <name>_guided.png, the guided picture")
    gradcam.add_argument("--layer", help="target layer by dotted name, or one per branch separated by commas "
                         "(default: the model's last CAM layer)")
    gradcam.add_argument("--explain", default="predicted", choices=["predicted", "true"], help="which class to explain")
    gradcam.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split")
    gradcam.add_argument("--view", help="view, for single-view models (default: the training view)")
    gradcam.add_argument("--split-seed", type=int, default=0, help="seed of the split, for datasets without split folders")
    gradcam.add_argument("--limit", type=POSITIVE_INT, help="only the first N images")
    gradcam.add_argument("--alpha", type=PROBABILITY, default=0.5, help="heatmap opacity in the overlay")
    gradcam.add_argument("--cmap", default="jet", help="matplotlib colormap of the heatmap")
    gradcam.add_argument("--batch-size", type=POSITIVE_INT, default=32, help="images per CAM call")
    gradcam.add_argument("--device", type=_device, help="cpu, cuda or mps (default: the best available)")
    gradcam.add_argument("--no-progress", action="store_true", help="no progress bar")
    _reading_options(gradcam)
    gradcam.set_defaults(run=_gradcam)

    judge = commands.add_parser(
        "evaluate-cam",
        help="judge CAMs against ground-truth masks: the methods x layers table as CSV",
        description="For every method at every layer: pointing game and energy against the masks "
        "(the synthetic data's evidence masks by default), deletion and insertion areas. Maps explain "
        "each image's true class.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  fishcam evaluate-cam --checkpoint checkpoints/resnet18-linear-side/best.pt --out build/cam_table.csv",
    )
    judge.add_argument("--checkpoint", required=True, help="a best.pt or last.pt of a single-view model")
    judge.add_argument("--out", required=True, help="the CSV file to write")
    judge.add_argument("--data", help="dataset folder with masks (default: the one the model was trained on)")
    judge.add_argument("--mask", default="evidence", help="mask kind to point at (evidence, body, ...)")
    judge.add_argument("--methods", nargs="+", metavar="METHOD",
                       help="methods (default: every registered method that works at any layer)")
    judge.add_argument("--layers", nargs="+", help="layers (default: the model's CAM layers)")
    judge.add_argument("--per-class", type=POSITIVE_INT, help="images per class (default: all of the split)")
    judge.add_argument("--tolerance", type=NONNEGATIVE, default=4, help="pointing-game tolerance in pixels (default 4)")
    judge.add_argument("--steps", type=POSITIVE_INT, default=50, help="deletion/insertion steps (default 50)")
    judge.add_argument("--curve-images", type=POSITIVE_INT, default=64,
                       help="images per deletion/insertion curve (default 64)")
    judge.add_argument("--baseline", default="blur", choices=["blur", "mean", "zero"], help="what deleted pixels become")
    judge.add_argument("--split", default="test", choices=["train", "val", "test"], help="which split")
    judge.add_argument("--view", help="view (default: the training view)")
    judge.add_argument("--split-seed", type=int, default=0, help="seed of the split, for datasets without split folders")
    judge.add_argument("--device", type=_device, help="cpu, cuda or mps (default: the best available)")
    _reading_options(judge)
    judge.add_argument("--no-progress", action="store_true", help="no progress bar")
    judge.set_defaults(run=_evaluate_cam)

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

    from .standin_recipes import STANDIN_RECIPES

    pretrain = commands.add_parser(
        "pretrain",
        help="make the course's pretrained stand-in weights (offline transfer learning, notebook 03)",
        description="Pretrain a backbone on the source task (twelve other invented fish, all views mixed) with "
        "the recipe of training/pretrain.py, and write it with its manifest (recipe, data seed, sha256, "
        "source-task accuracy) to checkpoints/standin, where build_model(..., weights='course') finds it.",
    )
    pretrain.add_argument("--backbone", required=True, choices=list(STANDIN_RECIPES), help="the backbone to pretrain")
    pretrain.add_argument("--out", help="folder for the weights and manifest (default: checkpoints/standin)")
    pretrain.add_argument("--device", type=_device, help="cpu, cuda or mps (default: the best available)")
    pretrain.add_argument("--no-progress", action="store_true", help="no progress bars")
    pretrain.set_defaults(run=_pretrain)
    return parser


# Where each command writes, for messages about a folder it cannot write.
_OUTPUT_FLAG = {"train": "--run-dir", "gradcam": "--out", "evaluate": "--out", "evaluate-cam": "--out",
                "make-data": "--out", "pretrain": "--out"}
_USES_CACHE = {"train", "evaluate"}
_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free some space, or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or write to another disk",
    errno.EFBIG: "the file is too large for where it is written: write to another disk",
    errno.EACCES: "permission denied: choose a folder of your own, or fix its permissions",
    errno.EPERM: "permission denied: choose a folder of your own, or fix its permissions",
    errno.EROFS: "that file system is read-only: choose a folder on a writable disk",
    errno.ENOENT: "it does not exist: check the path",
}


def _os_error_line(command: str, error: OSError) -> str:
    """An OS error as one line: the path, what went wrong, and what to do."""
    what = error.strerror or str(error)
    where = error.filename2 or error.filename
    advice = _OS_ADVICE.get(error.errno, "check the path and the disk")
    flag = _OUTPUT_FLAG.get(command)
    if flag and error.errno not in (errno.ENOENT,):
        cache = "; FISHCAM_CACHE_DIR moves the decode cache" if command in _USES_CACHE else ""
        advice += f" ({flag} chooses the folder{cache})"
    return f"{where}: {what}; {advice}" if where else f"{what}; {advice}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``fishcam`` command. Every failure ends in one message naming the file or flag and
    the fix (exit code 2), never a traceback; ``FISHCAM_DEBUG=1`` shows the traceback of a bug."""
    args = build_parser().parse_args(argv)
    prefix = f"fishcam {args.command}: error:"
    with on_command_line(), _plain_data_warnings():
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except FishCAMError as error:
            print(prefix, error, file=sys.stderr)
            return 2
        except OSError as error:
            print(prefix, _os_error_line(args.command, error) if error.errno else error, file=sys.stderr)
            return 2
        except ValueError as error:
            print(prefix, error, file=sys.stderr)
            return 2
        except Exception as error:  # a bug: still one line, and the way to see more
            if type(error).__name__ == "OutOfMemoryError":  # torch's, on CUDA
                print(prefix, f"the GPU ran out of memory ({str(error).splitlines()[0][:200]}); use a smaller "
                      "--batch-size (or --image-size), or --device cpu", file=sys.stderr)
                return 2
            if os.environ.get("FISHCAM_DEBUG"):
                raise
            print(f"fishcam {args.command}: internal error: {type(error).__name__}: {error}. This is a bug in FishCAM: "
                  "run the command again with FISHCAM_DEBUG=1 to see the traceback, and report it.", file=sys.stderr)
            return 1


if __name__ == "__main__":
    sys.exit(main())
