"""Notebook 09's judging and write-up: how good the explanations are, whether the background gives the
class away, and the model card and audit template written from the run's values.

``judge`` scores Grad-CAM at each layer against a random map and an edge detector: pointing and energy
against the body masks where there are masks, deletion and insertion always. ``heat_off_fish`` and
``background_only`` are the shortcut hunt. ``model_card`` and ``audit_template`` turn a dict of the run's
facts into Markdown.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from ..explain.judging.experiments import EvidenceBatch, explanation_maps, interleaved
from ..explain.judging.metrics import deletion_curve, dilate, energy_in_mask, insertion_curve, pointing_game
from ..explain.judging.references import reference_names
from ..files import atomic_write

MASK = "body"


def photo_batch(dataset, limit: int | None = None) -> EvidenceBatch:
    """Up to ``limit`` photos of ``dataset`` (all by default), interleaved class by class, as one batch with
    their body masks when the dataset has them (``masks`` is then ``{"body": (N, H, W) bool}``, else empty)."""
    targets = [int(t) for t in dataset.targets]
    by_class: dict[int, list[int]] = {}
    for i, t in enumerate(targets):
        by_class.setdefault(t, []).append(i)
    order = interleaved([members for _, members in sorted(by_class.items())])[:limit]
    if not order:
        raise ValueError("the dataset is empty: there is no photo to explain")
    items = [dataset[i] for i in order]
    masks = {}
    if len(items[0]) > 2 and MASK in items[0][2]:
        masks = {MASK: torch.stack([item[2][MASK] for item in items]).bool()}
    return EvidenceBatch(torch.stack([item[0] for item in items]), torch.tensor([int(item[1]) for item in items]),
                         masks, order, list(dataset.classes))


def judge(model: nn.Module, batch: EvidenceBatch, layers: Sequence[str], tolerance: float = 4, steps: int = 30,
          curve_images: int = 64, baseline: str = "blur") -> pd.DataFrame:
    """One row per Grad-CAM layer, then the random and the edge map (layer "-"): ``deletion_auc`` (lower is
    better) and ``insertion_auc`` (higher is better) over the first ``curve_images`` photos; with body masks
    also ``pointing`` (the map's peak within ``tolerance`` px of the fish), ``on_fish`` (share of the map's
    energy on the fish) and ``off_fish`` (1 - on_fish). Maps explain the true class."""
    rows = []
    curve = batch.head(curve_images)
    for method, layer in [("gradcam", layer) for layer in layers] + [(r, "-") for r in reference_names()]:
        maps = explanation_maps(model, batch.images, batch.labels, method, None if layer == "-" else layer)
        row = {"method": method, "layer": layer}
        if MASK in batch.masks:
            on_fish = energy_in_mask(maps, batch.masks[MASK])
            row.update(pointing=pointing_game(maps, batch.masks[MASK], tolerance).float().mean().item(),
                       on_fish=on_fish.mean().item(), off_fish=1 - on_fish.mean().item())
        for name, measure in (("deletion_auc", deletion_curve), ("insertion_auc", insertion_curve)):
            row[name] = measure(model, curve.images, maps[:len(curve)], curve.labels, steps=steps,
                                baseline=baseline).auc.mean().item()
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(images=len(batch), curve_images=len(curve), tolerance=tolerance, steps=steps, baseline=baseline)
    return table


def heat_off_fish(maps: torch.Tensor, batch: EvidenceBatch) -> pd.DataFrame:
    """Per class: ``heat_off_fish``, the mean share of the maps' (N, H, W) energy off the body mask, beside
    ``area_off_fish``, the mean share of the photo off the fish (what a map blind to the photo would put
    there), and ``photos``. A class whose heat off the fish nears its area is explained by its background."""
    if MASK not in batch.masks:
        raise ValueError("heat_off_fish needs body masks: judge a folder with masks (e.g. the Kaggle 'GT' folders)")
    fish = batch.masks[MASK]
    frame = pd.DataFrame({"class": [batch.classes[i] for i in batch.labels.tolist()],
                          "heat_off_fish": (1 - energy_in_mask(maps, fish)).numpy(),
                          "area_off_fish": (1 - fish.flatten(1).float().mean(1)).numpy()})
    table = frame.groupby("class", sort=False).agg(heat_off_fish=("heat_off_fish", "mean"),
                                                   area_off_fish=("area_off_fish", "mean"),
                                                   photos=("heat_off_fish", "size"))
    return table.reindex([c for c in batch.classes if c in table.index])


def without_fish(batch: EvidenceBatch, grow: int = 2) -> torch.Tensor:
    """The batch's (N, 3, H, W) images with the fish (its body mask grown by ``grow`` px) painted over with each
    photo's mean background colour: what is left is the setting alone."""
    if MASK not in batch.masks:
        raise ValueError("without_fish needs body masks")
    fish = dilate(batch.masks[MASK], grow).unsqueeze(1)
    background = (~fish).float()
    mean = (batch.images * background).sum((2, 3), keepdim=True) / background.sum((2, 3), keepdim=True).clamp_min(1)
    return torch.where(fish, mean.expand_as(batch.images), batch.images)


@torch.no_grad()
def background_only(model: nn.Module, batch: EvidenceBatch) -> dict[str, float]:
    """The shortcut test: accuracy on the photos with the fish painted out (``without_fish``) against ``chance``,
    what a model would score whose answers on them had nothing to do with the class (the sum over classes of the
    class's share of the photos times its share of the answers: 1 / classes when both are even, the largest
    class's share for a model that always names it), and against the photos as they are. ``z`` is how many
    standard errors of such a guess over these photos the background-only accuracy lies above chance."""
    model.eval()
    device = next(model.parameters()).device
    predict = lambda x: torch.cat([model(x[i:i + 64].to(device)).argmax(1).cpu() for i in range(0, len(x), 64)])  # noqa: E731
    labels, n, k = batch.labels, len(batch.labels), len(batch.classes)
    answers = predict(without_fish(batch))
    chance = float((torch.bincount(labels, minlength=k).double() * torch.bincount(answers, minlength=k).double()).sum()
                   / (n * n))
    accuracy = int((answers == labels).sum()) / n  # counted, so that a guess at chance gives z = 0 exactly
    se = math.sqrt(chance * (1 - chance) / n)
    return {"photos": n, "chance": chance, "with_fish": int((predict(batch.images) == labels).sum()) / n,
            "background_only": accuracy, "z": (accuracy - chance) / se if se > 0 else 0.0}


@torch.no_grad()
def layer_grids(model: nn.Module, layers: Sequence[str], size: int) -> dict[str, tuple[int, int]]:
    """Each layer's (height, width) of map cells for ``size`` px photos: how fine its CAM can be."""
    from ..models.inspection import eval_mode, model_device

    shapes: dict[str, tuple[int, int]] = {}
    handles = [model.get_submodule(layer).register_forward_hook(
        lambda module, inputs, output, layer=layer: shapes.__setitem__(layer, tuple(output.shape[-2:])))
        for layer in layers]
    try:
        with eval_mode(model):
            model(torch.zeros(1, 3, size, size, device=model_device(model)))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def shortcut_verdict(found: dict[str, float], z: float = 3.0) -> str:
    """A sentence on ``background_only``'s result: does the background alone give the class away (more than
    ``z`` standard errors above chance), and what the student should conclude."""
    line = (f"With the object painted out, the model names the right class for {found['background_only']:.0%} of "
            f"{found['photos']} photos (chance {found['chance']:.0%}; with the object {found['with_fish']:.0%}).")
    if found["z"] > z:
        return line + (" The background alone gives the class away: the model can score without looking at the "
                       "object, and its accuracy does not show that it knows the objects. Conclude that the photos of "
                       "each class share a setting; test on photos of every class taken in the same settings (or in "
                       "new ones) before trusting it, and photograph each class in several settings.")
    return line + (" That is within chance: no sign that the background gives the class away. (A setting shared by "
                   "the photos of a class could still help the model on photos with the object in view.)")


def wilson_interval(hits: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval (95 % for ``z=1.96``) of a proportion of ``hits`` in ``n``, as (low, high) in
    [0, 1]: how far a test accuracy on ``n`` photos could be from the model's accuracy on photos like them."""
    if n < 1 or not 0 <= hits <= n:
        raise ValueError(f"wilson_interval needs 0 <= hits <= n and n >= 1, got hits={hits}, n={n}")
    p, z2 = hits / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def markdown_table(frame: pd.DataFrame, digits: int = 3) -> str:
    """``frame`` as a Markdown table (its index as the first column), numbers rounded to ``digits``."""
    def cell(value) -> str:
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    header = [frame.index.name or ""] + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join([cell(row[0])] + [cell(v) for v in row[1:]]) + " |" for row in frame.itertuples()]
    return "\n".join(lines)


def model_card(facts: dict) -> str:
    """The model card, in Markdown, from the run's ``facts`` (keys as notebook 09 gathers them: ``title``,
    ``data``, ``split``, ``model``, ``metrics``, ``per_class``, ``explanations``, ``shortcuts``, ``limits``)."""
    data, model, metrics = facts["data"], facts["model"], facts["metrics"]
    parts = [
        f"# Model card: {facts['title']}",
        "## Model",
        f"- {model['backbone']} with a {model['head']} head, backbone weights: {model['weights']}.",
        f"- Photos resized to {model['image_size']} x {model['image_size']} px; "
        f"trained {model['epochs_run']} of at most "
        f"{model['epochs']} epochs (early stopping, patience {model['patience']}); kept the weights of epoch "
        f"{model['best_epoch']} (best validation accuracy {model['best_val_acc']:.1%}).",
        "## Data",
        f"- Folder: `{data['folder']}` ({data['layout']} layout), {len(data['classes'])} classes: "
        + ", ".join(data["classes"]) + ".",
        f"- Photos: {data['counts']}; body masks: {'yes' if data['masks'] else 'no'}.",
        f"- Split: {facts['split']}",
        "## Metrics (test photos)",
        f"- Accuracy {metrics['accuracy']:.1%} (95 % interval {metrics['low']:.1%}-{metrics['high']:.1%}), "
        f"macro F1 {metrics['macro_f1']:.3f}; always naming the largest class would score {metrics['chance']:.1%}"
        + (f", best possible from these photos {metrics['ceiling']:.1%}." if metrics.get("ceiling") else "."),
        "", markdown_table(facts["per_class"]),
        "## Explanation quality",
        facts["explanations"]["summary"], "", markdown_table(facts["explanations"]["table"]),
        "## Shortcuts",
        facts["shortcuts"]["verdict"],
    ]
    if facts["shortcuts"].get("by_class") is not None:
        parts += ["", markdown_table(facts["shortcuts"]["by_class"])]
    parts += ["## Limits"] + [f"- {limit}" for limit in facts["limits"]]
    return "\n\n".join(p for p in parts if p is not None) + "\n"


AUDIT_QUESTIONS = {
    "What the model looks at": "Where is the heat, on which part of the fish, and how does Grad-CAM compare with the "
                               "random and edge maps? Cite the numbers.",
    "Where it fails": "Which classes does it confuse, and what do the maps of those photos show? Is the failure in "
                      "the photos (nothing to see) or in the model?",
    "Shortcuts": "Does the background give the class away? What in the photos could the model use besides the fish?",
    "What I would change": "In the data, the model or the training: one change for each failure, and how you would "
                           "measure that it helped.",
}


def audit_template(facts: dict) -> str:
    """The explanation audit to fill in, in Markdown: each question of ``AUDIT_QUESTIONS`` with the run's facts
    that bear on it (from ``facts`` as for ``model_card``) and a place for the student's answer."""
    facts_for = {
        "What the model looks at": [facts["explanations"]["summary"]],
        "Where it fails": [f"Test accuracy {facts['metrics']['accuracy']:.1%}; most confused: {facts['confused']}."],
        "Shortcuts": [facts["shortcuts"]["verdict"]],
        "What I would change": facts["limits"],
    }
    parts = [f"# Explanation audit: {facts['title']}"]
    for heading, question in AUDIT_QUESTIONS.items():
        parts += [f"## {heading}", f"*{question}*", "From the run:\n" + "\n".join(f"- {f}" for f in facts_for[heading]),
                  "Your reading: ..."]
    return "\n\n".join(parts) + "\n"


def write_markdown(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (its folder made if needed); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path
