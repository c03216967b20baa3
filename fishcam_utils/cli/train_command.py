"""``fishcam train``: a model on a dataset folder, with checkpoints and a test report in a run folder.

The training flags are ``fit``'s options, made from ``TrainConfig``: the same defaults and checks
as in a notebook.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from typing import Any

from ..settings import MISSING_VIEWS, UNKNOWN_FILES
from ..training.config import command_line_options, flag_of
from .messages import say_notes
from .options import (
    FRACTION,
    FUSION_CHOICES,
    IMAGE_SIZE,
    LAYOUT_CHOICES,
    MODEL_CHOICES,
    NONNEGATIVE,
    POSITIVE_INT,
    Help,
    config_options,
    device,
    names,
    progress_option,
    reading_options,
    weights,
    wrap,
)

_EXAMPLES = """examples:
  fishcam make-data && fishcam train --data data/synthetic --model fishresnet --epochs 20
  fishcam train --data data/synthetic --model resnet18 --head mlp --freeze-epochs 2 --backbone-lr-scale 0.1 --lr 1e-3
  fishcam train --data data/synthetic --run-dir checkpoints/fishresnet-side --resume   # after Ctrl-C
  fishcam train --data data/synthetic --fusion attention --view-dropout 0.3   # all three views, one model
  fishcam evaluate --checkpoint checkpoints/fishresnet-side/best.pt"""


def add_train(commands) -> None:
    train = commands.add_parser(
        "train", formatter_class=Help, epilog=_EXAMPLES,
        help="train a classifier on a dataset folder; checkpoints and a test report in a run folder",
        description=wrap("Train a model on one view of a dataset (any layout fishcam check-data reads). Splits come "
        "from the dataset's folders, or a seeded fish-grouped split. Each epoch writes best.pt, last.pt and "
        "history.csv to the run folder (atomically, so Ctrl-C loses nothing: --resume continues). At the end the "
        "best model is evaluated on the test split (eval-test/ in the run folder). Under torchrun it trains with "
        "DistributedDataParallel: torchrun --nproc-per-node 2 $(which fishcam) train ..."),
    )
    _data_group(train.add_argument_group("data"))
    _model_group(train.add_argument_group("model"))
    _multiview_group(train.add_argument_group("multi-view (a model that fuses every view of a fish)"))
    config_options(train.add_argument_group("training (the options of fit, fishcam_utils.training.TrainConfig)"),
                   command_line_options(), flag_of)
    group = train.add_argument_group("running")
    group.add_argument("--run-dir", help="run folder (default: checkpoints/<model>-<view>)")
    group.add_argument("--resume", action="store_true", help="continue the run in --run-dir from last.pt")
    group.add_argument("--overwrite", action="store_true", help="start the run in --run-dir again from scratch")
    group.add_argument("--device", type=device, help="cpu, cuda, cuda:1 or mps (default: the best available)")
    group.add_argument("--no-eval", action="store_true", help="skip the test-split report at the end")
    progress_option(group)
    train.set_defaults(run=train_command, output_flag="--run-dir", uses_cache=True)


def _data_group(group) -> None:
    group.add_argument("--data", required=True,
                       help="dataset folder, e.g. data/synthetic (make it with fishcam make-data)")
    group.add_argument("--view", default="side",
                       help="the view to train on, for multi-view datasets (side, back, belly)")
    group.add_argument("--image-size", type=IMAGE_SIZE, default=None,
                       help="images are resized to this many pixels a side (default: $FISHCAM_IMAGE_SIZE, else 224 "
                            "with a CUDA GPU and 64 without)")
    group.add_argument("--augment", type=NONNEGATIVE, default=1.0, help="augmentation strength (0 turns it off)")
    group.add_argument("--layout", default="auto", choices=LAYOUT_CHOICES, metavar="LAYOUT",
                       help="dataset layout: %(choices)s (auto detects it)")
    group.add_argument("--split-seed", type=int, default=0,
                       help="seed of the split, for datasets without split folders")
    group.add_argument("--no-cache", action="store_true", help="decode the files every epoch instead of once")
    reading_options(group, missing_views=MISSING_VIEWS, unknown_files=UNKNOWN_FILES)
    group.add_argument("--classes", type=names, help="class names in label order, separated by commas (default: "
                       "the dataset's order, else alphabetical)")


def _model_group(group) -> None:
    group.add_argument("--model", default="fishresnet", choices=MODEL_CHOICES, metavar="MODEL",
                       help="architecture: %(choices)s (fishcam_utils.models.BACKBONES)")
    group.add_argument("--head", default="linear", choices=["linear", "mlp"], help="classifier head")
    group.add_argument("--weights", type=weights, default="auto",
                       help="auto (ImageNet if available, else random, said plainly), imagenet, course (the "
                       "stand-in of `fishcam pretrain`), pretrained (ImageNet if available, else the stand-in), "
                       "none, or a .pth file")
    group.add_argument("--width", type=POSITIVE_INT, default=32,
                       help="channels, for a model that takes a width (FishResNet)")


def _multiview_group(group) -> None:
    group.add_argument("--fusion", choices=FUSION_CHOICES, metavar="FUSION",
                       help="%(choices)s: train a multi-view model with this fusion and --model branches "
                       "(default: single view)")
    group.add_argument("--shared", action="store_true",
                       help="one backbone shared by all views instead of one per view")
    group.add_argument("--view-dropout", type=FRACTION, default=0.0,
                       help="while training, drop each view with this probability (at least one is kept)")
    group.add_argument("--aux-weight", type=NONNEGATIVE, default=0.5, help="weight of the per-view auxiliary losses")


def train_command(args: argparse.Namespace) -> int:
    from ..files import hold_folder
    from ..training import check_run_dir, distributed, fit, pick_device, seed_everything

    pick_device(args.device)  # an unavailable device, or a run folder in use, is said before the data is read
    if args.run_dir:
        check_run_dir(args.run_dir, args.resume, args.overwrite)
    is_distributed = distributed.init_distributed()
    main_process = distributed.is_main_process()
    try:
        data = _datasets(args, main_process)
        seed_everything(args.seed)  # the initial weights too
        model, name, described = _model(args, data, main_process)
        run_dir = Path(args.run_dir) if args.run_dir else _default_run_dir(name)
        if main_process:
            say_notes(data.index.notes)
            print(f"{data}\nmodel {args.model} ({described}, "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters) → {run_dir}"
                  + (f"\ndistributed: {distributed.world_size()} processes" if is_distributed else ""))
        options = {spec.name: getattr(args, spec.name) for spec in command_line_options()}
        if main_process and not args.no_eval and not args.overwrite:
            _check_test_report(run_dir / "eval-test", data.test)  # before the training, not after it
        # Held from training to report, so that a second run into the folder cannot mix its files in.
        with hold_folder(run_dir, "fishcam train") if main_process else contextlib.nullcontext():
            result = fit(model, data.train, data.val, run_dir=run_dir, resume=args.resume, overwrite=args.overwrite,
                         device=args.device, progress=not args.no_progress, **options)
            if result.interrupted:
                return 130
            if main_process:
                print(f"best {result.monitor} {result.best_value:.4f} at epoch {result.best_epoch}; "
                      f"checkpoints {result.best_path} and {result.last_path} [{result.seconds:.0f} s]")
                if not args.no_eval:
                    write_test_report(model, data.test, result, run_dir / "eval-test", not args.no_progress)
        return 0
    finally:
        distributed.cleanup_distributed()


def _check_test_report(out: Path, test) -> None:
    from ..evaluation.report import check_report_folder

    try:
        check_report_folder(out, test)
    except FileExistsError as error:
        detail = str(error).split(";")[0]
        raise ValueError(f"{detail}; its test report would be replaced at the end: remove {out}, or train with "
                         f"--no-eval") from None


def _default_run_dir(name: str) -> Path:
    from ..settings import checkpoints_dir

    return checkpoints_dir() / name


def _datasets(args: argparse.Namespace, main_process: bool):
    from ..data.train_val_test import make_datasets
    from .options import scan_options

    return make_datasets(args.data, view=args.view, image_size=args.image_size, augment=args.augment,
                         cache=not args.no_cache, split_seed=args.split_seed, scan=scan_options(args),
                         multiview=args.fusion is not None, classes=args.classes,
                         progress=main_process and not args.no_progress)


def _build_options(args: argparse.Namespace) -> dict[str, Any]:
    """The network's own build options among the flags (``--width``), for a network that takes them."""
    from ..models import get_backbone

    return {"width": args.width} if "width" in get_backbone(args.model).options else {}


def _model(args: argparse.Namespace, data, main_process: bool):
    """(model, run name, a few words on it) for the flags: one view, or a fusion of every view."""
    from ..models import MultiViewNet, build_model

    if args.fusion is None:
        model = build_model(args.model, len(data.classes), weights=args.weights, head=args.head,
                            verbose=main_process, **_build_options(args))
        name = args.model + (f"-{args.view}" if data.index.views else "")
        return model, name, f"{args.head} head, {model.fishcam_weights} weights"
    if not data.index.views:
        raise ValueError(f"--fusion needs a multi-view dataset (<split>/<class>/<fish>_<view>.png); "
                         f"{args.data} has single images. Leave out --fusion to train on them.")
    model = MultiViewNet(len(data.classes), views=data.index.views, backbone=args.model, fusion=args.fusion,
                         shared=args.shared, view_dropout=args.view_dropout, aux_weight=args.aux_weight,
                         weights=args.weights, verbose=main_process, **_build_options(args))
    per_view = "one shared" if args.shared else "a"
    return model, f"{args.model}-{args.fusion}", (f"{args.fusion} fusion of {per_view} {args.model} "
                                                   f"{'for' if args.shared else 'per'} view")


def write_test_report(model, dataset, result, out: Path, progress: bool) -> None:
    from ..evaluation import predict, write_evaluation

    predictions = predict(model, dataset, progress=progress)
    write_evaluation(out, predictions, history=result.history if result is not None else None, dataset=dataset)
    print(f"test accuracy {predictions.accuracy:.4f} on {len(dataset)} images; report in {out}")
