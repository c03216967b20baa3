"""Making the course's pretrained stand-in: a backbone trained on the *source* task (species table
``"source"``: twelve other invented fish, all three views mixed), saved small in
``checkpoints/standin`` with its manifest (``models.standin``). ``fishcam pretrain`` runs it.

The recipe is declared once, in ``STANDIN_RECIPES``; the manifest records it with the data seed and
the source task's test accuracy, so the shipped weights can be made again and checked.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

STANDIN_RECIPES: dict[str, dict[str, Any]] = {
    # ResNet-18 (notebook 03): more photos than the course's, all views mixed, a short one-cycle run.
    "resnet18": {"build": {}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                 "fit": {"epochs": 8, "batch_size": 64, "lr": 2e-3, "schedule": "onecycle"}, "augment": 1.0},
    # The small ConvNeXt (notebook 03's ResNet-vs-ConvNeXt comparison offline): AdamW, as ConvNeXts are trained.
    "convnext_nano": {"build": {}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                      "fit": {"epochs": 8, "batch_size": 64, "optimizer": "adamw", "lr": 2e-3, "weight_decay": 0.05,
                              "schedule": "onecycle"}, "augment": 1.0},
    # The course's FishResNet, for checks and for students without much time.
    "fishresnet": {"build": {"width": 32, "blocks": [2, 2]}, "data": {"fish_per_class": 200, "seed": 101, "size": 64},
                   "fit": {"epochs": 8, "batch_size": 64, "lr": 3e-3, "schedule": "onecycle"}, "augment": 1.0},
}


def pretrain(name: str, folder: Path | None = None, recipe: dict[str, Any] | None = None, device: str = "auto",
             progress: bool = True) -> dict[str, Any]:
    """Pretrain backbone ``name`` on the source task with ``recipe`` (default ``STANDIN_RECIPES[name]``)
    and save it as the course stand-in in ``folder`` (default ``checkpoints/standin``). Returns the
    manifest entry written (recipe, data seed, sha256, ``source_test_accuracy`` in [0, 1])."""
    import torch

    from ..data.setup import make_datasets
    from ..data.synthetic import SyntheticConfig, generate_dataset
    from ..evaluation.predict import predict
    from ..models.factory import ARCHITECTURES, build_model
    from ..models.standin import read_manifest, save_standin
    from ..settings import data_dir
    from .devices import pick_device
    from .engine import fit
    from .seeding import seed_everything

    if recipe is None:
        if name not in STANDIN_RECIPES:
            raise ValueError(f"no stand-in recipe for {name!r}; recipes exist for {', '.join(STANDIN_RECIPES)}")
        recipe = STANDIN_RECIPES[name]
    config = SyntheticConfig(species="source", **recipe["data"])
    root = generate_dataset(data_dir() / f"synthetic-source-{config.seed}-{config.fish_per_class}-{config.width}px",
                            config, overwrite=True, progress=progress)
    splits = make_datasets(root, view=None, image_size=config.width, augment=recipe.get("augment", 1.0),
                           progress=progress)
    seed_everything(config.seed)
    model = build_model(name, len(splits.classes), weights=None, verbose=progress, **recipe["build"])
    device = pick_device(device)
    fit(model, splits.train, splits.val, device=device, progress=progress, **recipe["fit"])
    accuracy = predict(model.eval(), splits.test, device=device, progress=progress).accuracy
    record = {"recipe": recipe, "build": recipe["build"], "data": config.to_dict(),
              "source_task": f"species table 'source': {len(splits.classes)} invented species, all views mixed",
              "source_classes": list(splits.classes), "source_test_accuracy": round(float(accuracy), 4),
              "image_size": config.width, "torch": torch.__version__, "python": platform.python_version()}
    path = save_standin(model.cpu(), name, ARCHITECTURES[name].head, record, folder)
    if progress:
        print(f"{name}: source-task test accuracy {accuracy:.1%}; stand-in written to {path}")
    return {**read_manifest(path.parent)[name], "path": str(path)}
