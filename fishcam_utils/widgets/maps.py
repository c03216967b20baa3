"""The explorer's memory: every map it shows, computed once and kept.

``MapStore`` knows nothing of widgets, so the notebook, the tests and ``bench/`` can drive it alone.
What it computes, and how often:

* a **capture** per (image, layer): one forward pass and one batched backward over all classes
  (``BaseCAM.capture``); every method the registry marks ``from_capture`` (the gradient methods,
  and guided Grad-CAM with one guided backward of K copies of the image) turns the same capture
  into its maps, so changing method costs no pass through the network;
* the **maps of all classes** per (image, layer, method), at the input's size, in [0, 1]; the
  gradient-free methods (Score-CAM, Ablation-CAM, Eigen-CAM) make their own passes;
* changing class, view, opacity or colormap then only picks and colours an array already here.

Smoothing (``SMOOTHINGS``) is a part of the key: eigen-smoothed maps of all classes come from the same
capture (gradient methods) or the method's own passes, as the plain ones; test-time augmentation runs one
call on the augmented copies for the one class asked for, so only the classes looked at are paid for.

Old entries are dropped least-recently-used first, so memory stays bounded on a long session.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..data.introspection import dataset_facts
from ..data.transforms import to_display
from ..evaluation.predict import predict
from ..explain import registry
from ..explain.augment import DEFAULT_TTA
from ..explain.cam import BaseCAM, LayerCapture, make_cam
from ..explain.guided import gradient_to_image
from ..models.factory import cam_layers
from ..models.inspection import check_model, model_device

# The smoothing menu: key -> label. Test-time augmentation and eigen-smoothing are options of a CAM call
# (``BaseCAM.__call__``). SmoothGrad, which smooths the input-gradient maps (``make_cam("gradient", model,
# samples=N)``), is not offered: the explorer shows maps made at a layer.
SMOOTHINGS = {"none": "none", "tta": "test-time augmentation", "eigen": "eigen-smoothing"}


def menu() -> dict[str, str]:
    """The method menu: label → name of every registered method that explains at a layer and works at any layer."""
    return {m.label: m.name for m in registry.methods(any_layer=True, needs_layer=True)}


@dataclass
class Sample:
    """One dataset item, ready for the model (a batch of one) and for display.

    ``images`` (V, H, W, 3) float in [0, 1], V = 1 for a single-view dataset; ``present`` (V,) bool;
    ``label`` the true class; ``id`` the file or fish id.
    """

    inputs: Any
    images: np.ndarray
    present: np.ndarray
    label: int
    id: str


@dataclass
class ClassMaps:
    """Every class's maps of one image at one layer by one method (numpy, CPU).

    ``maps`` (K, V, H, W) float in [0, 1] (the views of one fish share a scale; 0 on a missing view);
    ``pictures`` (K, V, H, W, 3) float in [0, 1], the guided Grad-CAM pictures, else None;
    ``flat`` (K, V) bool: maps with no spatial information (shown grey), see ``CAMResult.flat``;
    ``probs`` (K,) the softmax of the logits; ``view_weights`` (V,) or None;
    ``rows``: the class of each row when only some classes' maps are here (test-time augmentation makes
    the one asked for: K is then 1), else None (row k is class k).
    """

    maps: np.ndarray
    pictures: np.ndarray | None
    probs: np.ndarray
    view_weights: np.ndarray | None
    flat: np.ndarray | None = None
    rows: tuple[int, ...] | None = None

    def row(self, c: int) -> int | None:
        """The row of ``maps`` that holds class ``c``, or None when its map was not made."""
        if self.rows is None:
            return c
        return self.rows.index(c) if c in self.rows else None


class _LRU(OrderedDict):
    def __init__(self, capacity: int) -> None:
        super().__init__()
        self.capacity = capacity

    def get_or_make(self, key: Any, make: Callable[[], Any]) -> Any:
        if key in self:
            self.move_to_end(key)
            return self[key]
        value = make()  # nothing is stored if making fails, so a retry recomputes
        self[key] = value
        while len(self) > self.capacity:
            self.popitem(last=False)
        return value


def method_key(method: str) -> str:
    """A method given by its menu label ("Grad-CAM++") or name ("gradcam++") → its name."""
    found = registry.lookup(method)
    if not found.needs_layer:
        raise ValueError(f"{found.label} needs no layer, and the explorer shows maps at a layer; choose one of "
                         f"{', '.join(menu())}")
    if not found.any_layer:
        raise ValueError(f"{found.label} works only at the layer before the head, and the explorer moves across "
                         f"layers; choose one of {', '.join(menu())}")
    return found.name


def smoothing_problem(method: str, smoothing: str, multiview: bool = False) -> str | None:
    """Why ``smoothing`` (a key of ``SMOOTHINGS``) does not apply to ``method`` (name or label) in the
    explorer, as a plain sentence; None when it applies."""
    if smoothing not in SMOOTHINGS:
        raise ValueError(f"unknown smoothing {smoothing!r}; choose one of {', '.join(SMOOTHINGS)}")
    found = registry.lookup(method)
    if smoothing == "tta" and "augment" not in found.cls.smoothings:
        return f"test-time augmentation smooths the CAM methods, and {found.label} is not one"
    if smoothing == "tta" and multiview:
        return "test-time augmentation flips and shifts single images, not the views of a fish"
    if smoothing == "eigen" and "eigen" not in found.cls.smoothings:
        return (f"eigen-smoothing takes the first principal component of a CAM method's weighted activations, "
                f"and {found.label} is not a CAM method")
    return None


class MapStore:
    """Maps of ``model`` for the items of ``dataset`` (single-view or ``MultiViewDataset``), computed
    on demand and cached.

    ``layers`` defaults to ``cam_layers(model)`` (input to output); ``classes`` to the dataset's.
    ``counts`` tells how much work was done: ``"capture"`` (forward + batched backward), one count
    per gradient-free method name (its own passes), ``"guided"``, ``"tta"`` (calls on the augmented
    copies) and ``"maps"`` (maps made).
    """

    def __init__(self, model: nn.Module, dataset, layers: Sequence[str] | None = None,
                 classes: Sequence[str] | None = None, capacity: int = 48, batch_size: int = 64) -> None:
        check_model(model)
        if len(dataset) == 0:
            raise ValueError("the dataset is empty: pass a split with images, e.g. splits.test")
        self.model, self.dataset = model, dataset
        if isinstance(layers, str):  # one layer's name, not its letters
            layers = [layers]
        self.layers = list(layers) if layers is not None else cam_layers(model)
        if not self.layers:
            raise ValueError("no layers to explain: pass layers=[...] with the names of conv layers or stages")
        self._facts = dataset_facts(dataset)  # ids, classes and views, read once (not at every image shown)
        self.classes = [str(c) for c in (classes if classes is not None else self._facts.classes or [])]
        outputs = getattr(model, "fishcam", {}).get("num_classes")
        if self.classes and outputs and len(self.classes) != outputs:
            raise ValueError(f"classes names {len(self.classes)} classes but the model predicts {outputs}: pass one "
                             f"name per output (the checkpoint's: checkpoint['classes'])")
        self.device = model_device(model)
        self.counts: Counter[str] = Counter()
        self._samples = _LRU(capacity)
        self._captures = _LRU(max(4, capacity // 4))  # activations and K gradients: the largest entries
        self._maps = _LRU(capacity)
        self._predictions = None
        self.batch_size = batch_size

    # -- the dataset -------------------------------------------------------------------------
    @property
    def predictions(self):
        """``Predictions`` of the model on the whole dataset (computed once, for the image filter)."""
        if self._predictions is None:
            self._predictions = predict(self.model, self.dataset, batch_size=self.batch_size, progress=False)
            if not self.classes:
                self.classes = list(self._predictions.classes)
        return self._predictions

    @property
    def multiview(self) -> bool:
        return isinstance(self.sample(0).inputs, tuple)

    @property
    def views(self) -> list[str]:
        """The dataset's view names (``["image"]`` for a single-view dataset)."""
        names = self._facts.views
        if names:
            return list(names)
        return [f"view {v}" for v in range(len(self.sample(0).present))] if self.multiview else ["image"]

    def sample(self, index: int) -> Sample:
        """Item ``index`` of the dataset as a ``Sample``."""
        index = self._check_index(index)
        return self._samples.get_or_make(index, lambda: self._load(index))

    def _check_index(self, index: int) -> int:
        if not 0 <= int(index) < len(self.dataset):
            raise IndexError(f"image {index} does not exist: the dataset has {len(self.dataset)} items (0 to "
                             f"{len(self.dataset) - 1})")
        return int(index)

    def _load(self, index: int) -> Sample:
        item = self.dataset[index]
        x, label = item[0], int(item[1])
        ids = self._facts.ids
        ident = ids[index] if ids is not None else str(index)
        if isinstance(x, (tuple, list)):
            views, present = x[0], torch.as_tensor(x[1]).bool()
            inputs = (views[None].to(self.device), present[None].to(self.device))
            return Sample(inputs, to_display(views), present.numpy(), label, ident)
        return Sample(x[None].to(self.device), to_display(x)[None], np.ones(1, bool), label, ident)

    def select(self, which: str) -> list[int]:
        """Positions of the items that pass a filter: ``"all"``, ``"correct"``, ``"misclassified"``
        or a class name (items whose true class it is), in dataset order."""
        if which == "all":
            return list(range(len(self.dataset)))
        p = self.predictions
        if which == "correct":
            return np.flatnonzero(p.preds == p.targets).tolist()
        if which == "misclassified":
            return np.flatnonzero(p.preds != p.targets).tolist()
        if which in self.classes:
            return np.flatnonzero(p.targets == self.classes.index(which)).tolist()
        raise ValueError(f"unknown filter {which!r}: use 'all', 'correct', 'misclassified' or a class name "
                         f"({', '.join(self.classes)})")

    # -- maps --------------------------------------------------------------------------------
    def capture(self, index: int, layer: str) -> LayerCapture:
        """Activations at ``layer`` and every class's gradients for image ``index`` (cached)."""
        self._check_layer(layer)

        def make() -> LayerCapture:
            self.counts["capture"] += 1
            return make_cam("gradcam", self.model, layer).capture(self.sample(index).inputs)

        return self._captures.get_or_make((self._check_index(index), layer), make)

    def maps(self, index: int, layer: str, method: str = "gradcam", smoothing: str = "none",
             target: int | None = None) -> ClassMaps:
        """Every class's maps of image ``index`` at ``layer`` by ``method`` (cached), smoothed by ``smoothing``
        (a key of ``SMOOTHINGS``); with ``"tta"`` (test-time augmentation, ``DEFAULT_TTA``) class ``target``'s
        map alone. A smoothing that does not apply to the method raises ``ValueError`` saying why."""
        key = method_key(method)
        self._check_layer(layer)
        index = self._check_index(index)
        entry = self._entry(index, layer, key, smoothing, target)
        return self._maps.get_or_make(entry, lambda: self._make_maps(index, layer, key, smoothing, target))

    def has_maps(self, index: int, layer: str, method: str, smoothing: str = "none",
                 target: int | None = None) -> bool:
        """Whether ``maps(index, layer, method, smoothing, target)`` is kept already (so costs nothing)."""
        return self._entry(int(index), layer, method_key(method), smoothing, target) in self._maps

    def _entry(self, index: int, layer: str, key: str, smoothing: str, target: int | None) -> tuple:
        """The cache key of a request; a smoothing that does not apply, or TTA without its class, raises."""
        if smoothing == "none":
            return index, layer, key  # the plain maps' key, as before smoothing existed
        problem = smoothing_problem(key, smoothing, self.multiview)
        if problem:
            raise ValueError(problem)
        if smoothing != "tta":
            return index, layer, key, smoothing
        if isinstance(target, bool) or not isinstance(target, (int, np.integer)) or target < 0:
            raise ValueError(f"test-time augmentation makes one class's map: pass target, a class index, "
                             f"got {target!r}")
        return index, layer, key, smoothing, int(target)

    def _check_layer(self, layer: str) -> None:
        if layer not in self.layers:
            raise ValueError(f"layer {layer!r} is not one of the explorer's layers: {', '.join(self.layers)}")

    def _make_maps(self, index: int, layer: str, key: str, smoothing: str = "none",
                   target: int | None = None) -> ClassMaps:
        sample = self.sample(index)
        method = registry.lookup(key)
        explainer = make_cam(key, self.model, layer)
        if smoothing == "tta":
            return self._augmented_maps(sample, explainer, target)
        # Only CAM methods take eigen_smooth (guided Grad-CAM's calls do not), and they are the ones allowed it.
        options = {"eigen_smooth": True} if smoothing == "eigen" else {}
        if method.from_capture:
            result = explainer.from_capture(self.capture(index, layer), inputs=sample.inputs, **options)
        else:
            result = explainer.all_classes(sample.inputs, **options)
        if method.family == "guided" or not method.from_capture:
            self.counts["guided" if method.family == "guided" else key] += 1  # passes beyond the capture
        self.counts["maps"] += 1
        maps = _per_view(result.maps[0].float().cpu())
        flat = None if result.flat is None else _per_view(result.flat[0].cpu(), spatial=False).numpy()
        if maps.shape[1] != len(sample.present):
            raise ValueError(f"{layer!r} gave {maps.shape[1]} maps per item for {len(sample.present)} views; "
                             f"pick a layer of every branch, one of {', '.join(self.layers)}")
        maps = maps * torch.as_tensor(sample.present)[None, :, None, None]
        pictures = None
        if result.pixels is not None:  # guided Grad-CAM: the fine guided gradients where Grad-CAM is warm
            product = result.pixels[0].float().cpu()  # (K, [V,] 3, H, W)
            k, v, h, w = maps.shape
            pictures = gradient_to_image(product.reshape(k * v, *product.shape[-3:])).reshape(k, v, h, w, 3)
            pictures[:, ~sample.present] = 0.5
        probs = torch.softmax(result.logits[0].float(), 0).cpu().numpy()
        weights = None if result.view_weights is None else result.view_weights[0].float().cpu().numpy()
        return ClassMaps(maps.numpy(), pictures, probs, weights, flat)

    def _augmented_maps(self, sample: Sample, explainer: BaseCAM, target: int) -> ClassMaps:
        """Class ``target``'s map smoothed by test-time augmentation: one call on the ``len(DEFAULT_TTA)``
        copies (one class only: every class would cost K such calls, for a slider that shows one)."""
        self.counts["tta"] += 1
        self.counts["maps"] += 1
        result = explainer(sample.inputs, targets=target, augment=DEFAULT_TTA)
        maps = result.maps.float().cpu()[:, None]  # (1, H, W) -> (1, 1, H, W): one row, one view
        flat = result.flat.cpu()[:, None].numpy()
        # The first augmentation's logits; DEFAULT_TTA's first copy is the image itself.
        probs = torch.softmax(result.logits[0].float(), 0).cpu().numpy()
        return ClassMaps(maps.numpy(), None, probs, None, flat, rows=(int(target),))


def _per_view(t: torch.Tensor, spatial: bool = True) -> torch.Tensor:
    """(K, H, W) → (K, 1, H, W) for a single view; (K, V, H, W) as it is (likewise without H, W)."""
    return t[:, None] if t.ndim == (3 if spatial else 1) else t
