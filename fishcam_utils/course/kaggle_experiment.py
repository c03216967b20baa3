"""The course's one look at real photos in notebook 08: Grad-CAM's pointing game on the Kaggle fish
set, with a FishResNet trained for it on the spot (a course experiment, not a library function)."""

from __future__ import annotations

import pandas as pd
from torch import nn


def kaggle_pointing(root, image_size: int | None = None, epochs: int = 8, per_class: int = 30, layer: str = "layer2",
                    tolerance: float = 4, progress: bool = True) -> tuple[pd.DataFrame, nn.Module]:
    """The pointing game on the Kaggle fish set (or any dataset with body masks) at ``root``: trains a
    FishResNet (notebook 02's architecture) for ``epochs`` on its training split, then scores Grad-CAM
    at ``layer`` against the body masks of ``per_class`` test images per class. Returns
    (``pointing_by_class`` table, model)."""
    from ..data.train_val_test import make_datasets
    from ..explain.judging.experiments import load_evidence, pointing_by_class
    from ..models import build_model
    from ..training import fit
    from ..training.seeding import seed_everything

    splits = make_datasets(root, image_size=image_size, augment=1.0, masks=["body"], progress=progress)
    seed_everything(0)
    model = build_model("fishresnet", len(splits.classes), width=32, verbose=False)
    fit(model, splits.train, splits.val, epochs=epochs, batch_size=64, lr=3e-3, schedule="onecycle", progress=progress)
    model.eval()
    batch = load_evidence(splits.test, per_class=per_class)
    return pointing_by_class(model, batch, layer, mask="body", tolerance=tolerance), model
