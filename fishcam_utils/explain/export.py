"""Maps of a whole split as files: what ``fishcam gradcam`` writes, and what a notebook can write.

    cam = make_cam("gradcam", model, "layer2")
    summary = export_cams(cam, splits.test, "build/gradcam", limit=50)

For every image (or every view of every fish, for a multi-view model) the original, the heatmap and
the overlay go to ``correct_samples/<true class>/`` or ``incorrect_samples/<true class>/``;
``summary.csv`` lists each picture's true and predicted class, confidence and files.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.introspection import dataset_facts, sample_source
from ..data.transforms import to_display
from ..errors import ArgumentError, option, option_name
from ..files import atomic_write, describe, earlier_outputs, remove_all
from ..models.inspection import model_device
from .guided import gradient_to_image
from .overlay import save_cam_images, save_picture

EXPORT_OUTPUTS = ("correct_samples", "incorrect_samples", "summary.csv")
EXPLAIN_CHOICES = ("predicted", "true")


def earlier_exports(out: str | os.PathLike, overwrite: bool = False) -> list[Path]:
    """Maps of an earlier export in ``out``, which would mix with new ones: a ``FileExistsError``
    unless ``overwrite`` (then they are returned, to remove once the new maps can be made)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder for the maps: choose another {option_name('out')}")
    old = earlier_outputs(out, EXPORT_OUTPUTS)
    if old and not overwrite:
        raise FileExistsError(f"{out} already holds maps of an earlier run ({describe(old)}), which would mix with the "
                              f"new ones; pass {option('overwrite')} to replace them, or another {option_name('out')}")
    return old


def export_cams(cam, dataset, out: str | os.PathLike, *, limit: int | None = None, batch_size: int = 32,
                explain: str = "predicted", alpha: float = 0.5, cmap: str = "jet", overwrite: bool = False,
                progress: bool = True, options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Write ``cam``'s maps of the first ``limit`` items of ``dataset`` (all by default) under ``out``,
    explaining each item's ``explain`` class ("predicted" or "true"); returns the summary table, one
    row per picture (``id``, ``view``, ``true``, ``pred``, ``confidence`` in [0, 1], ``correct``,
    ``explained``, ``method``, ``layer``, ``overlay`` path relative to ``out``). ``options`` go to every call
    of ``cam`` (smoothing: ``augment=``, ``eigen_smooth=``)."""
    if explain not in EXPLAIN_CHOICES:
        raise ValueError(f"explain must be one of {EXPLAIN_CHOICES}, got {explain!r}")
    if isinstance(cam, str) or not callable(cam) or not hasattr(cam, "layer_name"):
        raise ArgumentError(f"cam must be an explainer, e.g. make_cam({cam!r}, model, layer), got "
                            f"{type(cam).__name__}" if isinstance(cam, str) else
                            f"cam must be an explainer such as make_cam('gradcam', model, layer), "
                            f"got {type(cam).__name__}")
    if isinstance(dataset, torch.Tensor) or not (hasattr(dataset, "__getitem__") and hasattr(dataset, "__len__")):
        raise ArgumentError(f"dataset must be a Dataset of (image, label) samples, got {type(dataset).__name__}; "
                            f"e.g. splits.test (for bare tensors, TensorDataset(images, labels))")
    if len(dataset) == 0:
        raise ValueError("dataset is empty: there is nothing to explain")
    for name, value in (("batch_size", batch_size), ("limit", limit)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
            raise ArgumentError(f"{name} must be a whole number >= 1"
                                + (" (or None for all)" if name == "limit" else "")
                                + f", got {value!r}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} is a file, not a folder for the maps: choose another {option_name('out')}")
    earlier = earlier_exports(out, overwrite)
    if earlier:
        names = describe(earlier)
        remove_all(earlier)
        print(f"{option('overwrite')}: removed the earlier maps in {out}: {names}")
    count = len(dataset) if limit is None else min(limit, len(dataset))
    facts = dataset_facts(dataset)  # ids and classes, once
    rows: list[dict] = []
    with tqdm(total=count, desc=f"{cam.name} maps", unit="image", disable=not progress) as bar:
        for start in range(0, count, batch_size):
            indices = range(start, min(start + batch_size, count))
            rows += _export_batch(cam, dataset, facts, indices, out, explain, alpha, cmap, dict(options or {}))
            bar.update(len(indices))
    summary = pd.DataFrame(rows)
    for kind in ("correct_samples", "incorrect_samples"):
        (out / kind).mkdir(parents=True, exist_ok=True)
    with atomic_write(out / "summary.csv", "w", newline="") as handle:
        summary.to_csv(handle, index=False)
    return summary


def _export_batch(cam, dataset, facts, indices: range, out: Path, explain: str, alpha: float, cmap: str,
                  options: dict[str, Any]) -> list[dict]:
    """One CAM call on the items ``indices``; their pictures written, their summary rows returned."""
    multiview, classes = facts.views is not None, facts.classes
    items = [dataset[i] for i in indices]
    labels = [int(item[1]) for item in items]
    result = cam(_stack_inputs([item[0] for item in items], multiview, cam),
                 targets=labels if explain == "true" else None, **options)
    predicted = result.logits.argmax(1).cpu().tolist()
    probs = torch.softmax(result.logits.float(), 1).cpu()
    ids = facts.ids if facts.ids is not None else [str(i) for i in range(len(dataset))]
    if classes is None:
        classes = [str(k) for k in range(result.logits.shape[1])]
    rows = []
    for j, i in enumerate(indices):
        label, pred, item_id = labels[j], predicted[j], ids[i]
        folder = out / ("correct_samples" if label == pred else "incorrect_samples") / classes[label]
        stem = Path(item_id).stem  # unique within a class folder
        for name, image, heatmap, product in _pictures(dataset, i, j, stem, result, multiview):
            files = save_cam_images(folder, name, image, heatmap.cpu().numpy(), alpha, cmap)
            if product is not None:
                save_picture(folder / f"{name}_guided.png", gradient_to_image(product[None].float().cpu())[0])
            rows.append({"id": item_id, "view": name[len(stem) + 1:], "true": classes[label],
                         "pred": classes[pred], "confidence": float(probs[j, pred]), "correct": label == pred,
                         "explained": classes[int(result.explained[j])], "method": cam.name,
                         "layer": cam.layer_name, "overlay": files["overlay"].relative_to(out).as_posix()})
    return rows


def _stack_inputs(inputs: list, multiview: bool, cam):
    """A batch on the model's device: images (N, 3, H, W), or (views (N, V, 3, H, W), present (N, V))."""
    device = model_device(cam.model)
    if multiview:
        return (torch.stack([x[0] for x in inputs]).to(device), torch.stack([x[1] for x in inputs]).to(device))
    return torch.stack(inputs).to(device)


def _pictures(dataset, i: int, j: int, stem: str, result, multiview: bool) -> list[tuple]:
    """(file stem, original picture, heatmap, guided product or None) of item ``i``, row ``j`` of
    ``result``: one per present view of a fish (a missing view has nothing to show)."""
    pixels = result.pixels  # guided Grad-CAM's product, (N, [V,] 3, H, W); else None
    raw = _raw(dataset, i)
    if not multiview:
        return [(stem, raw, result.maps[j], None if pixels is None else pixels[j])]
    return [(f"{stem}_{view}", image, result.maps[j, k], None if pixels is None else pixels[j, k])
            for k, (view, image) in enumerate(raw.items()) if image is not None]


def _raw(dataset, i: int):
    """Item ``i`` as decoded (a dict of views for a fish), or, for a dataset without ``raw``, the
    model's input with the normalisation undone."""
    source, row = sample_source(dataset, i)
    if hasattr(source, "raw"):
        return source.raw(row)
    x = dataset[i][0]
    if isinstance(x, (tuple, list)):
        views, present = x[0], x[1]
        names = dataset_facts(dataset).views or [f"view{v}" for v in range(len(views))]
        return {name: to_display(v) if bool(p) else None for name, v, p in zip(names, views, present)}
    return to_display(x)
