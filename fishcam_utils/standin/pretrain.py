"""Making the course's pretrained stand-in: a backbone trained on the *source* task (species table
``"source"``: twelve other invented fish, all three views mixed), saved small in
``checkpoints/standin`` with its manifest (``standin.weights``). ``fishcam pretrain`` runs it.

The recipe is declared once, in ``STANDIN_RECIPES``; the manifest records it with the data seed and
the source task's test accuracy, so the shipped weights can be made again and checked.
"""

from __future__ import annotations

import hashlib
import json
import platform
from pathlib import Path
from typing import Any

from .recipes import STANDIN_RECIPES


def pretrain(name: str, folder: Path | None = None, recipe: dict[str, Any] | None = None, device: str | None = None,
             progress: bool = True) -> dict[str, Any]:
    """Pretrain backbone ``name`` on the source task with ``recipe`` (default ``STANDIN_RECIPES[name]``)
    on ``device`` (None: the best available) and save it as the course stand-in in ``folder`` (default
    ``checkpoints/standin``). Returns the manifest entry written (recipe, data seed, sha256,
    ``source_test_accuracy`` in [0, 1])."""
    import torch

    from ..data.synthetic import SyntheticConfig, generate_dataset
    from ..data.train_val_test import make_datasets
    from ..evaluation.predict import predict
    from ..models.backbones import get_backbone
    from ..models.factory import build_model
    from ..runtime import pick_device
    from ..settings import data_dir
    from ..training.engine import fit
    from ..training.seeding import seed_everything
    from .weights import read_manifest, save_standin, shippable, unshipped

    if recipe is None:
        if name not in STANDIN_RECIPES:
            raise ValueError(f"no stand-in recipe for {name!r}; recipes exist for {', '.join(STANDIN_RECIPES)}")
        recipe = STANDIN_RECIPES[name]
    device = pick_device(device)  # before minutes of data generation: a wrong device fails at once
    config = SyntheticConfig(species="source", **recipe["data"])
    # The folder is named by the whole data config, so two recipes never overwrite each other's photos.
    tag = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    root = generate_dataset(data_dir() / f"synthetic-source-{tag}", config, overwrite=True, progress=progress)
    splits = make_datasets(root, view=None, image_size=config.width, augment=recipe.get("augment", 1.0),
                           progress=progress)
    options = {"seed": config.seed, **recipe["fit"]}  # fit reseeds with its own seed: recorded, not left at 0
    seed_everything(options["seed"])
    model = build_model(name, len(splits.classes), weights=None, verbose=progress, **recipe["build"])
    fit(model, splits.train, splits.val, device=device, progress=progress, **options)
    head = get_backbone(name).head
    model = model.cpu()
    model.load_state_dict({**model.state_dict(), **unshipped(shippable(model.state_dict(), head))})
    # Measured on the weights as shipped (rounded to fp16), under the source task's trained head.
    accuracy = predict(model.eval(), splits.test, device="cpu", progress=progress).accuracy
    record = {"recipe": recipe, "build": recipe["build"], "fit": options, "data": config.to_dict(),
              "source_task": f"species table 'source': {len(splits.classes)} invented species, all views mixed",
              "source_classes": list(splits.classes), "source_test_accuracy": round(float(accuracy), 4),
              "image_size": config.width, "torch": torch.__version__, "python": platform.python_version(),
              "reproduce": f"fishcam pretrain --backbone {name}: the same accuracy within noise (not the same "
                           "bytes: training is not bit-deterministic across machines)"}
    path = save_standin(model, name, head, record, folder)
    if progress:
        print(f"{name}: source-task test accuracy {accuracy:.1%} (weights as shipped); stand-in written to {path}")
    return {**read_manifest(path.parent)[name], "path": str(path)}
