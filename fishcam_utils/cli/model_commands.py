"""``fishcam evaluate``, ``gradcam`` and ``evaluate-cam``: what a trained checkpoint does on a split."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings import SMOOTHGRAD_SIGMA
from .messages import say_notes
from .options import (
    NONNEGATIVE,
    POSITIVE_INT,
    PROBABILITY,
    Help,
    checkpoint_options,
    progress_option,
    scan_options,
    wrap,
)

if TYPE_CHECKING:  # the data package imports torch: the commands import it when they run
    from ..data.dataset_index import ScanOptions
    from ..explain.registry import Method


def checkpoint_split(args: argparse.Namespace, checkpoint: dict, cache: bool, masks: Sequence[str] = ()):
    """The split ``args.split`` of the checkpoint's dataset (or ``--data``), read the way the model
    was trained: same image size, class order and view (or all views, for a multi-view model)."""
    from ..data.train_val_test import make_datasets
    from ..errors import DataError
    from ..settings import check_image_size

    missing = [k for k in ("classes", "preprocessing") if not checkpoint.get(k)]
    if missing:
        raise ValueError(f"{args.checkpoint} does not record its {' and '.join(missing)}, so its data cannot be read "
                         f"the way it was trained: use a best.pt or last.pt written by fishcam train or fit()")
    prep = checkpoint["preprocessing"]
    root = args.data or prep.get("data_root")
    if root is None:
        raise ValueError(f"{args.checkpoint} does not record its dataset; pass --data DIR")
    multiview = bool(prep.get("views"))
    view = None if multiview else (args.view or prep.get("view") or "side")
    saved = dict(prep.get("scan") or {})  # how the training data was read, unless the flags say otherwise
    if args.data:
        saved.pop("layout", None)  # another folder: its layout is detected
    reading = scan_options(args, saved)
    try:
        data = make_datasets(root, view=view, image_size=check_image_size(prep.get("image_size")), augment=0,
                             cache=cache, split_seed=args.split_seed, classes=checkpoint["classes"],
                             multiview=multiview, masks=masks, progress=False, scan=reading)
    except DataError:
        _raise_if_other_classes(args, checkpoint, root, reading)
        raise
    say_notes(data.index.notes)
    return getattr(data, args.split)


def _raise_if_other_classes(args: argparse.Namespace, checkpoint: dict, root, reading: ScanOptions) -> None:
    """The class list is the checkpoint's, not a flag: say so when the data's classes differ."""
    from ..data.layouts import survey
    from ..errors import DataError

    found = survey(root, classes=checkpoint["classes"], scan=reading)[1].classes
    if set(found) != set(checkpoint["classes"]):
        raise DataError(f"{root} has the classes {found}, but {args.checkpoint} was trained on "
                        f"{checkpoint['classes']}: give --data a dataset of the model's classes.") from None


def add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", formatter_class=Help,
        help="evaluate a checkpoint on a split: metrics, confusion matrix, ROC/PR, mistakes",
        description=wrap("Rebuild the model saved in a checkpoint, predict a split of a dataset with the checkpoint's "
        "preprocessing and class order, and write metrics.json, classification_report.txt, per_class.csv, "
        "confusion_matrix(.csv/_normalized.csv/.png), roc_pr(.csv/.png), predictions.csv, curves.png and "
        "misclassified.png to a folder (default: eval-<split>/ beside the checkpoint)."),
    )
    checkpoint_options(evaluate)
    evaluate.add_argument("--out", help="output folder")
    evaluate.add_argument("--overwrite", action="store_true",
                          help="replace a report of other data in the output folder")
    evaluate.add_argument("--batch-size", type=POSITIVE_INT, default=128, help="images per forward pass")
    evaluate.add_argument("--no-cache", action="store_true",
                          help="decode the files instead of using the decode-once cache")
    progress_option(evaluate)
    evaluate.set_defaults(run=evaluate_command, output_flag="--out", uses_cache=True)


def evaluate_command(args: argparse.Namespace) -> int:
    from ..evaluation import predict, write_evaluation
    from ..evaluation.report import check_report_folder
    from ..training import history_frame, load_checkpoint, pick_device

    model, checkpoint = load_checkpoint(args.checkpoint, device=pick_device(args.device))
    dataset = checkpoint_split(args, checkpoint, cache=not args.no_cache)
    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{args.split}"
    record = check_report_folder(out, dataset, overwrite=args.overwrite)  # before the work, not after
    predictions = predict(model, dataset, batch_size=args.batch_size, progress=not args.no_progress)
    history = history_frame(checkpoint["history"]) if checkpoint.get("history") else None
    files = write_evaluation(out, predictions, history=history, dataset=dataset, data=record, overwrite=True)
    print(f"{args.split} accuracy {predictions.accuracy:.4f} on {len(dataset)} images "
          f"({checkpoint['model_config']['name']}, epoch {checkpoint.get('epoch')})")
    print(f"wrote {len(files)} files to {out}: " + ", ".join(sorted(p.name for p in files.values())))
    return 0


def add_gradcam(commands) -> None:
    gradcam = commands.add_parser(
        "gradcam", formatter_class=Help,
        help="class activation maps of a checkpoint on a split: original, heatmap and overlay per image",
        description=wrap("Explain a trained model's predictions: for every image of a split (or the first --limit), "
        "compute a class activation map (Grad-CAM by default, of the predicted class, at the model's last "
        "sensible layer) and write the original image, the heatmap and the overlay as RGB PNGs, sorted into "
        "correct_samples/<true class>/ and incorrect_samples/<true class>/, with summary.csv listing each "
        "image's true and predicted class, confidence and files (fishcam_utils.explain.export_cams does the same "
        "in Python)."),
        epilog="example:\n  fishcam gradcam --checkpoint checkpoints/fishresnet-side/best.pt "
        "--out build/gradcam --limit 50",
    )
    checkpoint_options(gradcam)
    gradcam.add_argument("--out", required=True, help="output folder")
    gradcam.add_argument("--overwrite", action="store_true", help="replace the maps of an earlier run in --out")
    # Checked against the method registry when the command runs (building the parser must not import torch).
    gradcam.add_argument("--method", default="gradcam",
                         help="which map: a name of the method registry (fishcam_utils.explain.method_names()), e.g. "
                         "gradcam, gradcam++, hirescam, scorecam, ablationcam, eigencam, cam; guided-gradcam also "
                         "writes <name>_guided.png, the guided picture; guided-backprop, gradient, random and edges "
                         "need no --layer")
    gradcam.add_argument("--layer", help="target layer by dotted name, or one per branch separated by commas "
                         "(default: the model's last CAM layer)")
    gradcam.add_argument("--explain", default="predicted", choices=["predicted", "true"], help="which class to explain")
    gradcam.add_argument("--limit", type=POSITIVE_INT, help="only the first N images")
    gradcam.add_argument("--alpha", type=PROBABILITY, default=0.5, help="heatmap opacity in the overlay")
    gradcam.add_argument("--cmap", default="jet", help="matplotlib colormap of the heatmap")
    gradcam.add_argument("--batch-size", type=POSITIVE_INT, default=32, help="images per CAM call")
    smoothing = gradcam.add_argument_group("smoothing", "less noisy maps, at a price in time")
    smoothing.add_argument("--augment", action="store_true",
                           help="a CAM method's maps by test-time augmentation: the maps of each image and of its "
                           "flipped and 2 px shifted copies (6 in all, explain.augment.DEFAULT_TTA), moved back and "
                           "averaged; one batched pass over all copies, so about 6 times the time and memory "
                           "(single-view models)")
    smoothing.add_argument("--eigen-smooth", action="store_true",
                           help="a CAM method's maps by eigen-smoothing: the first principal component of the "
                           "weighted activations instead of their channel sum; no extra pass through the network")
    smoothing.add_argument("--smoothgrad", type=POSITIVE_INT, metavar="N",
                           help="guided-backprop's or gradient's maps by SmoothGrad: the mean |gradient| of N noisy "
                           "copies of each image, in backward passes of at most 64 copies")
    smoothing.add_argument("--sigma", type=NONNEGATIVE, metavar="S",
                           help="SmoothGrad's noise: its standard deviation, in the model's input units (the "
                           f"normalised images) (default: {SMOOTHGRAD_SIGMA:g}, 15 %% of a channel's range)")
    progress_option(gradcam, "no progress bar")
    gradcam.set_defaults(run=gradcam_command, output_flag="--out")


def _check_smoothing(args: argparse.Namespace, method: Method) -> None:
    """Refuse, before any work, a smoothing flag that does not apply to ``--method``."""
    from ..explain.registry import methods

    cam = "augment" in method.cls.smoothings  # the CAM methods: augment and eigen_smooth are options of a call
    noisy = [m.name for m in methods() if "smoothgrad" in m.cls.smoothings]  # the input-gradient maps
    for flag, given, what, key in (("--augment", args.augment, "test-time augmentation", "augment"),
                                   ("--eigen-smooth", args.eigen_smooth, "eigen-smoothing", "eigen")):
        if given and key not in method.cls.smoothings:
            fix = ("smooth it with --smoothgrad N instead" if method.name in noisy
                   else f"leave {flag} out, or pick a CAM method such as gradcam")
            raise ValueError(f"{flag}: {what} smooths the CAM methods (maps at a layer), and {method.name} is not "
                             f"one; {fix}")
    if args.smoothgrad is not None and method.name not in noisy:
        fix = ("smooth a CAM method with --augment or --eigen-smooth instead" if cam
               else f"leave --smoothgrad out, or pick --method {' or '.join(noisy)}")
        raise ValueError(f"--smoothgrad {args.smoothgrad}: SmoothGrad averages the input gradients of noisy copies, "
                         f"so it smooths {' and '.join(noisy)}, not {method.name}; {fix}")
    if args.sigma is not None and args.smoothgrad is None:
        raise ValueError(f"--sigma {args.sigma:g}: it is the noise of SmoothGrad, which is off; add --smoothgrad N "
                         f"(e.g. --smoothgrad 25), or leave --sigma out")


def gradcam_command(args: argparse.Namespace) -> int:
    from ..explain import make_cam
    from ..explain.augment import DEFAULT_TTA
    from ..explain.export import earlier_exports, export_cams
    from ..explain.overlay import heatmap_to_rgb
    from ..explain.registry import lookup
    from ..models import cam_layers
    from ..training import load_checkpoint, pick_device

    try:
        method = lookup(args.method)
    except ValueError as error:
        raise ValueError(f"--method {args.method}: {error}") from None
    if args.layer and not method.needs_layer:
        raise ValueError(f"--layer {args.layer}: {method.label} needs no layer (it explains at the input); leave "
                         f"--layer out, or pick a CAM method")
    _check_smoothing(args, method)
    heatmap_to_rgb([[0.0]], args.cmap)  # an unknown method or colormap, or an --out in use, is said before any work
    earlier_exports(args.out, args.overwrite)
    model, checkpoint = load_checkpoint(args.checkpoint, device=pick_device(args.device))
    if args.augment and (checkpoint.get("preprocessing") or {}).get("views"):  # said before the data is read
        raise ValueError("--augment: test-time augmentation flips and shifts single images, and this checkpoint is a "
                         "multi-view model; leave --augment out (--eigen-smooth works for it)")
    dataset = checkpoint_split(args, checkpoint, cache=False)
    layers = args.layer.split(",") if args.layer else [cam_layers(model)[-1]]
    noise: dict[str, Any] = {}  # SmoothGrad is an option of the map's maker; unset, sigma keeps its default
    if args.smoothgrad is not None:
        noise["samples"] = args.smoothgrad
    if args.sigma is not None:
        noise["sigma"] = args.sigma
    cam = make_cam(args.method, model, layers if len(layers) > 1 else layers[0],
                   progress=False if args.no_progress else None, **noise)
    calls: dict[str, Any] = {}  # test-time augmentation and eigen-smoothing are options of each CAM call
    if args.augment:
        calls["augment"] = DEFAULT_TTA
    if args.eigen_smooth:
        calls["eigen_smooth"] = True
    summary = export_cams(cam, dataset, args.out, limit=args.limit, batch_size=args.batch_size, explain=args.explain,
                          alpha=args.alpha, cmap=args.cmap, overwrite=args.overwrite, progress=not args.no_progress,
                          options=calls)
    samples = summary.drop_duplicates("id") if len(summary) else summary
    right = int(samples["correct"].sum()) if len(samples) else 0
    out, kind = Path(args.out), "fish" if getattr(dataset, "views", None) else "images"
    print(f"{cam.name}{_smoothing_words(args)} at {cam.layer_name}: {len(samples)} {args.split} {kind}, {right} "
          f"correct, {len(samples) - right} incorrect; original, heatmap and overlay of each in {out}/correct_samples "
          f"and {out}/incorrect_samples, summary in {out / 'summary.csv'}")
    return 0


def _smoothing_words(args: argparse.Namespace) -> str:
    """What the command's last line says of the smoothing: " with eigen-smoothing", say, or nothing."""
    words = [what for flag, what in ((args.augment, "test-time augmentation"), (args.eigen_smooth, "eigen-smoothing"))
             if flag]
    if args.smoothgrad is not None:
        sigma = SMOOTHGRAD_SIGMA if args.sigma is None else args.sigma
        words.append(f"SmoothGrad ({args.smoothgrad} copies, sigma {sigma:g})")
    return f" with {' and '.join(words)}" if words else ""


def add_evaluate_cam(commands) -> None:
    judge = commands.add_parser(
        "evaluate-cam", formatter_class=argparse.RawDescriptionHelpFormatter,
        help="judge CAMs against ground-truth masks: the methods x layers table as CSV",
        description="For every method at every layer: pointing game and energy against the masks "
        "(the synthetic data's evidence masks by default), deletion and insertion areas. Maps explain "
        "each image's true class.",
        epilog="example:\n  fishcam evaluate-cam --checkpoint checkpoints/resnet18-linear-side/best.pt "
        "--out build/cam_table.csv",
    )
    checkpoint_options(judge, "a best.pt or last.pt of a single-view model",
                       "dataset folder with masks (default: the one the model was trained on)")
    judge.add_argument("--out", required=True, help="the CSV file to write")
    judge.add_argument("--mask", default="evidence", help="mask kind to point at (evidence, body, ...)")
    judge.add_argument("--methods", nargs="+", metavar="METHOD",
                       help="methods (default: every registered method that works at any layer)")
    judge.add_argument("--layers", nargs="+", help="layers (default: the model's CAM layers)")
    judge.add_argument("--per-class", type=POSITIVE_INT, help="images per class (default: all of the split)")
    judge.add_argument("--tolerance", type=NONNEGATIVE, default=4, help="pointing-game tolerance in pixels (default 4)")
    judge.add_argument("--steps", type=POSITIVE_INT, default=50, help="deletion/insertion steps (default 50)")
    judge.add_argument("--curve-images", type=POSITIVE_INT, default=64,
                       help="images per deletion/insertion curve (default 64)")
    judge.add_argument("--baseline", default="blur", choices=["blur", "mean", "zero"],
                       help="what deleted pixels become")
    progress_option(judge, "no progress bar")
    judge.set_defaults(run=evaluate_cam_command, output_flag="--out")


def evaluate_cam_command(args: argparse.Namespace) -> int:
    from ..explain.judging.experiments import load_evidence, methods_by_layers, table_methods
    from ..explain.registry import method_names
    from ..files import atomic_write
    from ..models import cam_layers
    from ..training import load_checkpoint, pick_device

    if Path(args.out).is_dir():  # said before the table's minutes of work, not after
        raise ValueError(f"--out {args.out} is a folder: give the table a file name, "
                         f"e.g. {Path(args.out) / 'cam_table.csv'}")
    model, checkpoint = load_checkpoint(args.checkpoint, device=pick_device(args.device))
    if checkpoint["preprocessing"].get("views"):
        raise ValueError("evaluate-cam judges single-view models; this checkpoint is a multi-view model")
    dataset = checkpoint_split(args, checkpoint, cache=False, masks=[args.mask])
    if args.mask != "distractor" and "distractor" in dataset.index.mask_kinds:  # the heat in the water, measured too
        dataset = checkpoint_split(args, checkpoint, cache=False, masks=[args.mask, "distractor"])
    # A photo whose mask is empty (a trait wholly hidden by weed) has nothing to point at: left out.
    batch = load_evidence(dataset, per_class=args.per_class, require=args.mask)
    methods = args.methods or table_methods()
    layer_free = method_names(needs_layer=False)  # one row each (layer "-"), as the reference maps
    narrow = [m for m in methods if m not in table_methods() and m not in layer_free]
    if narrow:  # unknown names, or CAM, which works at one layer only
        raise ValueError(f"--methods {' '.join(narrow)}: the table takes methods that work at every layer, "
                         f"{', '.join(table_methods())}, or need none, {', '.join(layer_free)}")
    table = methods_by_layers(model, batch, args.layers or cam_layers(model), methods, mask=args.mask,
                              tolerance=args.tolerance, curve_images=args.curve_images, steps=args.steps,
                              baseline=args.baseline, progress=not args.no_progress)
    out = Path(args.out)
    with atomic_write(out, "w", newline="") as handle:
        table.round(4).to_csv(handle, index=False)
    methods = table[table["layer"] != "-"]  # the maps without a layer (random, edges...) are what a method must beat
    best = methods.sort_values("pointing", ascending=False).iloc[0]
    print(f"{len(methods)} (method, layer) pairs and {len(table) - len(methods)} reference maps on {len(batch)} "
          f"{args.split} images against the {args.mask} masks; best pointing game: {best['method']} at "
          f"{best['layer']}, {best['pointing']:.1%}. Table: {out}")
    return 0
