"""The course's trained models, by name: loaded from ``checkpoints/`` or trained on the spot.

Notebooks that explain a model (05–08) need one trained in notebook 02 or 03. Each runs on its
own, so ``course_model("fishresnet-side")`` loads that notebook's checkpoint when it exists and
otherwise trains it with the same settings (minutes in full mode, seconds in quick mode).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ..settings import checkpoints_dir, course_image_size, course_seed, quick_mode, run_folder, size_folder


@dataclass(frozen=True)
class Recipe:
    """How a course model is built and trained (full mode; ``quick`` overrides for quick mode)."""

    model: str
    build: dict[str, Any]
    fit: dict[str, Any]
    quick: dict[str, Any] = field(default_factory=dict)
    view: str = "side"
    notebook: str = ""
    # Multi-view recipes (model "multiview"): view -> the course model its branch starts from.
    experts: dict[str, str] = field(default_factory=dict)
    # Splits whose photos carry the class-coloured shortcut marker (``ensure_synthetic(shortcut=...)``).
    shortcut: tuple[str, ...] = ()
    augment: float = 1.0  # strength of the training augmentation (``train_transform``)
    quick_augment: float | None = None  # quick mode's strength; None: the same as ``augment``
    # Multi-view recipes: train the fusion head first on branch features computed once
    # (``fit_fusion_head`` options), then ``fit`` fine-tunes everything.
    head_fit: dict[str, Any] = field(default_factory=dict)


_FISHRESNET_FIT = {"epochs": 20, "batch_size": 64, "lr": 3e-3, "schedule": "onecycle"}
# Quick mode's side model on the uneven photos, seeds 0 and 1 (36 test photos): 22 % and 11 % after 10 epochs (chance:
# 11 %), 28 % and 28 % after 15, 31 % and 25 % after 20; on the clean photos 10 epochs had been enough.
_FISHRESNET_QUICK = {"epochs": 15, "batch_size": 16}
# Quick mode's 198 training photos and 8-10 epochs learn next to nothing under full augmentation: on the
# clean photos of before FISHCAM_DATA (2026-12), the side view's test accuracy was 8-28 % over three seeds
# with it (chance: 11 %), 25-44 % over five without (ResNet-18, four seeds: 14-39 % with, 25-33 % without).
_FISHRESNET_QUICK_AUGMENT = 0.0

RECIPES: dict[str, Recipe] = {
    "fishresnet-side": Recipe("fishresnet", {"width": 32}, _FISHRESNET_FIT, quick=_FISHRESNET_QUICK,
                              quick_augment=_FISHRESNET_QUICK_AUGMENT, notebook="02_residual_cnn"),
    # The other single views, as baselines and as the starting branches of the fusion models, with
    # notebook 02's recipe (with 12 epochs the back view stopped at 55 %, below its 66.7 % ceiling).
    "fishresnet-back": Recipe("fishresnet", {"width": 32}, _FISHRESNET_FIT, quick=_FISHRESNET_QUICK, view="back",
                              quick_augment=_FISHRESNET_QUICK_AUGMENT, notebook="04_multiview_fusion"),
    "fishresnet-belly": Recipe("fishresnet", {"width": 32}, _FISHRESNET_FIT, quick=_FISHRESNET_QUICK, view="belly",
                               quick_augment=_FISHRESNET_QUICK_AUGMENT, notebook="04_multiview_fusion"),
    # Notebook 08's shortcut model: notebook 02's recipe on the same photos, the training ones with a
    # sticker whose colour gives the class away (the test photos carry it too, to measure CAM energy on it),
    # and no augmentation: random crops cut the corner sticker off, which hides the shortcut. Half the
    # epochs: the sticker is the easiest cue there is, and the lesson is that the model takes it.
    "fishresnet-side-marker": Recipe("fishresnet", {"width": 32}, {**_FISHRESNET_FIT, "epochs": 10},
                                     quick=_FISHRESNET_QUICK, notebook="08_judging_explanations",
                                     shortcut=("train", "test"), augment=0.0),
    # Notebook 03's pretrained ResNet-18: ImageNet weights online, the course's stand-in offline.
    "resnet18-linear-side": Recipe(
        "resnet18", {"head": "linear", "weights": "pretrained"},
        {"epochs": 10, "batch_size": 64, "lr": 1e-3, "schedule": "onecycle", "patience": 4},
        quick={"epochs": 8, "batch_size": 16}, quick_augment=0.0, notebook="03_transfer_learning"),
    # Notebook 04's fusion models: each branch starts from its view's single-view model; the fusion head
    # trains alone on branch features computed once (40 epochs in seconds), then one epoch at a small
    # rate fine-tunes everything (on the clean photos, two took twice the time for the same validation
    # accuracy, 99.5-100 %). Against the earlier 1 head-only + 5 end-to-end epochs (about 6 times the
    # time) the attention model's test accuracy stayed at 99-100 % and its favourite view per class the
    # deciding one for 9 of 9 classes. (The head must be kept by validation loss: kept by accuracy, which
    # is 100 % after an epoch, it stopped early and the match fell to 5-7 of 9.)
    **{f"fusion-{fusion}": Recipe(
        "multiview", {"fusion": fusion, "view_dropout": 0.3, "width": 32},
        {"epochs": 1, "batch_size": 64, "lr": 3e-4, "schedule": "onecycle"},
        quick={"epochs": 1, "batch_size": 16}, notebook="04_multiview_fusion",
        experts={view: f"fishresnet-{view}" for view in ("side", "back", "belly")},
        head_fit={"epochs": 40, "lr": 3e-3})
       for fusion in ("attention", "mean", "concat", "gated")},
}


def recipe_augment(recipe: Recipe, quick: bool) -> float:
    """The training augmentation strength ``recipe`` uses in quick or full mode (0 = none)."""
    return recipe.quick_augment if quick and recipe.quick_augment is not None else recipe.augment


def course_run_dir(name: str, quick: bool | None = None, size: int | None = None) -> Path:
    """Where the course keeps the run ``name``: ``checkpoints/[quick/]<name>`` at 64 px and
    ``checkpoints/[quick/]<name>-<size>px`` at any other image size (default ``course_image_size()``);
    under a course seed other than 0 (``FISHCAM_SEED``) with ``-seed<n>`` at the end, and on the clean photos
    (``FISHCAM_DATA=clean``) with ``-clean``: ``settings.run_folder``."""
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    return checkpoints_dir() / ("quick" if quick else "") / (name + size_folder(size) + run_folder())


def trained_on(checkpoint: dict[str, Any], root: Path) -> bool:
    """Whether ``checkpoint`` was trained on the photos now in the synthetic dataset ``root``: the digest of
    their ``dataset.json`` it recorded is theirs. A checkpoint from before the record was trained on the
    course's earlier, clean photos."""
    from ..data.introspection import description_digest
    from ..data.synthetic import NUISANCES, dataset_config

    recorded = (checkpoint.get("data_identity") or {}).get("dataset_json")
    if recorded is None:
        config = dataset_config(root)
        return not any(getattr(config, name) for name in NUISANCES)
    return recorded == description_digest(root)


def course_model(name: str = "fishresnet-side", quick: bool | None = None, train: bool = True,
                 progress: bool = True, size: int | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, checkpoint)`` of the course model ``name`` (one of ``RECIPES``), in eval mode on CPU,
    for photographs ``size`` pixels a side (default ``course_image_size()``: 64 on CPU, 224 on CUDA).

    Loads ``best.pt`` from its run folder; if there is none (or it cannot be read, or it was trained on other
    photos than the course's dataset holds now: ``trained_on``) and ``train``, trains it first on the course
    dataset with the recipe of its notebook, saying so.
    """
    from ..data.synthetic import ensure_synthetic
    from ..data.train_val_test import make_datasets
    from ..models.factory import build_model
    from ..models.multiview import MultiViewNet
    from ..training.checkpoints import load_checkpoint
    from ..training.engine import fit
    from ..training.seeding import seed_everything

    if name not in RECIPES:
        raise ValueError(f"unknown course model {name!r}; choose one of {', '.join(RECIPES)}")
    quick = quick_mode() if quick is None else quick
    size = course_image_size() if size is None else size
    recipe, run_dir = RECIPES[name], course_run_dir(name, quick, size)
    best = run_dir / "best.pt"
    root = None
    if best.is_file():
        try:
            loaded = load_checkpoint(best)
        except (ValueError, FileNotFoundError) as error:
            if not train:
                raise
            print(f"{best} cannot be used ({error}); training it again.")
        else:
            if not train:
                return loaded
            root = ensure_synthetic(quick, progress=progress, shortcut=recipe.shortcut, size=size)
            if trained_on(loaded[1], root):
                return loaded
            # Other photos than it was trained on: a course update, or another FISHCAM_DATA in the same folders.
            print(f"{best} was trained on other photos than those in {root} now: training {name} again on them, "
                  f"as notebook {recipe.notebook} does ({'quick' if quick else 'full'} mode).")
    else:
        if not train:
            raise FileNotFoundError(f"no trained {name} at {best}; run notebook {recipe.notebook} or call "
                                    f"course_model({name!r}, train=True)")
        print(f"No checkpoint at {best}: training {name} as notebook {recipe.notebook} does "
              f"({'quick' if quick else 'full'} mode).")
    multiview = recipe.model == "multiview"
    # The experts first (loaded, or trained as their own recipes say), so that their training
    # does not change the seed this model starts from.
    experts = {view: course_model(expert, quick, train, progress, size)[0] for view, expert in recipe.experts.items()}
    root = root or ensure_synthetic(quick, progress=progress, shortcut=recipe.shortcut, size=size)
    splits = make_datasets(root, view=recipe.view, image_size=size, multiview=multiview,
                           augment=recipe_augment(recipe, quick), progress=progress)
    seed = course_seed()
    seed_everything(seed)
    if multiview:
        model = MultiViewNet(len(splits.classes), verbose=progress, **recipe.build).init_branches(experts)
    else:
        model = build_model(recipe.model, len(splits.classes), verbose=progress, **recipe.build)
    options = {**recipe.fit, **(recipe.quick if quick else {})}
    # Train in a private folder and move it into place at the end: two notebooks run side by side
    # (as CI does) may both find the model missing, and neither may see the other's half-run.
    partial = run_dir.parent / f".{name}-{os.getpid()}.partial"
    if recipe.head_fit:
        from ..training.fusion_head import fit_fusion_head

        fit_fusion_head(model, splits.train, splits.val, progress=progress, seed=seed, **recipe.head_fit)
    fit(model, splits.train, splits.val, run_dir=partial, overwrite=True, progress=progress, seed=seed, **options)
    run_dir.mkdir(parents=True, exist_ok=True)
    for file in partial.iterdir():
        os.replace(file, run_dir / file.name)
    shutil.rmtree(partial, ignore_errors=True)
    return load_checkpoint(best)
