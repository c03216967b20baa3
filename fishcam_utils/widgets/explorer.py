"""The CAM explorer: pick an image, a view, a layer, a class, a method, a smoothing, an opacity, and see the map.

``explore(model, dataset)`` builds it; the last line of a cell shows it. Only core ipywidgets
(sliders, dropdowns, toggle buttons, HTML, Image, HBox/VBox), so it runs in JupyterLab
(ipywidgets 8) and Colab (ipywidgets 7.7). The three pictures are ``Image`` widgets whose bytes are
replaced in place: nothing is rebuilt, so nothing flickers.

What a change costs (maps come from ``MapStore``, which keeps them):

* image, layer or method: the maps of every class, once per (image, layer, method);
* class, view, opacity, colormap: a re-render only, a few milliseconds;
* smoothing: eigen-smoothing makes every class's maps again (from the same capture for a gradient
  method); test-time augmentation makes only the shown class's map (one call on its augmented copies),
  and then each new class asks for another. A smoothing that does not apply to the method is refused
  with a message (the menu goes back), or, when the method changes, set back to "none".

A failure inside a callback (a layer whose maps cannot be computed, say) is shown in the explorer
as a short message, kept in ``errors``; the explorer goes on working.
"""

from __future__ import annotations

import contextlib
import html
import numbers
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ipywidgets as widgets
import numpy as np
from torch import nn

from ..explain.overlay import COLORMAPS, heatmap_to_rgb, overlay_heatmap
from .maps import SMOOTHINGS, ClassMaps, MapStore, menu, method_key, smoothing_problem
from .pictures import placeholder, png_bytes

_DESCRIPTION = {"description_width": "60px"}


class CamExplorer:
    """The explorer's widgets and callbacks; ``widget`` is the whole thing (a ``VBox``).

    Controls (set their ``.value`` to drive it from code): ``filter``, ``index``, ``view``,
    ``layer``, ``method``, ``smoothing`` (a key of ``SMOOTHINGS``), ``target`` (the class), ``opacity``,
    ``colormap``. Pictures:
    ``image_panel``, ``heatmap_panel``, ``overlay_panel`` (PNG bytes in ``.value``). ``info`` holds
    the true and predicted class and the top-k probabilities, ``status`` any error (``message``: the
    same as plain text; ``errors``: every exception caught, ``error_trace``: the last traceback).
    ``shown`` says what the panels show now (``map``: the (H, W) map in [0, 1]);
    ``render_seconds`` how long the last re-render took.
    """

    def __init__(self, model: nn.Module, dataset, *, layers: Sequence[str] | None = None,
                 methods: Sequence[str] | None = None, classes: Sequence[str] | None = None, top_k: int = 3,
                 alpha: float = 0.5, cmap: str = "jet", size: int = 220, start: int = 0,
                 store: MapStore | None = None) -> None:
        if cmap not in COLORMAPS:  # bad options fail before any work
            raise ValueError(f"cmap must be one of {', '.join(COLORMAPS)}, got {cmap!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha (the heatmap's opacity) must lie in [0, 1], got {alpha}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 32:
            raise ValueError(f"size (pixels a side of each picture) must be a whole number >= 32, got {size!r}")
        if len(dataset) and (isinstance(start, bool) or not isinstance(start, numbers.Integral)
                             or not 0 <= start < len(dataset)):
            raise ValueError(f"start must be the position of an image, 0 to {len(dataset) - 1}, got {start!r}")
        methods = list(menu()) if methods is None else [_label(m) for m in methods]
        self.store = store if store is not None else MapStore(model, dataset, layers, classes)
        predictions = self.store.predictions  # for the filter's counts and the default class
        self.classes = self.store.classes
        self.top_k = max(1, min(int(top_k), len(self.classes)))
        self.errors: list[BaseException] = []
        self.message = ""  # the status line as plain text
        self.error_trace = ""
        self.maps: ClassMaps | None = None
        self.shown: dict[str, Any] = {}
        self.render_seconds = float("nan")
        self._quiet = False
        self._heatmap_key: tuple | None = None

        self._make_controls(predictions, start, methods, alpha, cmap)
        self._make_panels(size)
        self.widget = self._arrange()
        self._fit_controls()  # a first method that takes no smoothing (guided Grad-CAM) greys the menu out
        self._watch_controls()
        self._run(self._show_image)

    # -- building it --------------------------------------------------------------------------
    def _make_controls(self, predictions, start: int, methods: list[str], alpha: float, cmap: str) -> None:
        """The sliders and menus, set to the first image, the last layer, the first method."""
        self.filter = widgets.Dropdown(options=self._filter_options(predictions), value="all",
                                       description="show", style=_DESCRIPTION)
        self._positions, self._filter_shown = self.store.select("all"), "all"
        start = min(max(int(start), 0), len(self._positions) - 1)
        self.current = self._positions[start]
        self.index = widgets.IntSlider(value=start, min=0, max=len(self._positions) - 1, description="image",
                                       continuous_update=False, style=_DESCRIPTION)
        views = self.store.views
        self.view = widgets.ToggleButtons(options=views, value=views[0], description="view", style=_DESCRIPTION)
        if not self.store.multiview:
            self.view.layout.display = "none"
        self.layer = widgets.Dropdown(options=self.store.layers, value=self.store.layers[-1], description="layer",
                                      style=_DESCRIPTION)
        self.method = widgets.Dropdown(options=methods, value=methods[0], description="method", style=_DESCRIPTION)
        # (label, key) pairs: the menu says "test-time augmentation", the code reads "tta".
        self.smoothing = widgets.Dropdown(options=[(label, key) for key, label in SMOOTHINGS.items()], value="none",
                                          description="smoothing", style={"description_width": "70px"})
        self._smoothing_shown = "none"  # what the maps shown were made with (a refused choice goes back to it)
        self.target = widgets.SelectionSlider(options=self.classes, value=self.classes[0], description="class",
                                              continuous_update=True, style=_DESCRIPTION,
                                              layout=widgets.Layout(width="420px"))
        self.probability = widgets.HTML(layout=widgets.Layout(margin="0 0 0 16px"))
        self.opacity = widgets.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="opacity",
                                           continuous_update=True, style=_DESCRIPTION)
        self.colormap = widgets.Dropdown(options=list(COLORMAPS), value=cmap, description="colours",
                                         style=_DESCRIPTION)

    def _make_panels(self, size: int) -> None:
        """The three pictures with their captions, the info and status lines, and CSS handles."""
        self.image_panel, self.heatmap_panel, self.overlay_panel = (
            widgets.Image(format="png", layout=widgets.Layout(width=f"{size}px", height=f"{size}px"))
            for _ in range(3))
        self.captions = [widgets.HTML(layout=widgets.Layout(width=f"{size}px")) for _ in range(3)]
        self.info = widgets.HTML()
        self.status = widgets.HTML()
        for name in ("filter", "index", "view", "layer", "method", "smoothing", "target", "opacity", "colormap",
                     "image_panel", "heatmap_panel", "overlay_panel", "info", "status"):
            getattr(self, name).add_class(f"fishcam-{name.replace('_', '-')}")  # handles for browser tests

    def _arrange(self) -> widgets.VBox:
        panels = [widgets.VBox([caption, panel], layout=widgets.Layout(margin="0 12px 0 0")) for caption, panel in
                  zip(self.captions, (self.image_panel, self.heatmap_panel, self.overlay_panel))]
        box = widgets.VBox([
            widgets.HBox([self.filter, self.index]),
            self.view,
            widgets.HBox([self.layer, self.method, self.smoothing]),
            widgets.HBox([self.target, self.probability]),
            widgets.HBox([self.opacity, self.colormap]),
            widgets.HBox(panels),
            self.status,
            self.info,
        ])
        box.add_class("fishcam-explorer")
        return box

    def _watch_controls(self) -> None:
        """Image and view changes show a new picture; layer, method and smoothing recompute; the class
        redraws (or, with test-time augmentation, makes that class's map); the rest only redraw."""
        self._watch(self.filter, self._change_filter)
        self._watch(self.index, self._show_image)
        self._watch(self.view, self._show_view)
        self._watch(self.layer, self._compute)
        self._watch(self.method, self._change_method)
        self._watch(self.smoothing, self._change_smoothing)
        self._watch(self.target, self._change_target)
        for control in (self.opacity, self.colormap):
            self._watch(control, self._render)

    # -- showing it ---------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    # -- callbacks -----------------------------------------------------------------------------
    def _watch(self, control: widgets.Widget, action: Callable[[], None]) -> None:
        def handler(change: dict) -> None:
            if not self._quiet:
                self._run(action)

        control.observe(handler, names="value")

    def _run(self, action: Callable[[], None]) -> None:
        """Run a callback; an error becomes a message in the explorer instead of a lost traceback."""
        try:
            action()
        except Exception as error:  # noqa: BLE001 - every failure must reach the student, not the log
            self.errors.append(error)
            self.error_trace = traceback.format_exc()
            message = str(error).strip().splitlines()[0] if str(error).strip() else "(no message)"
            if len(message) > 300:
                message = message[:297] + "..."
            self._say(f"{type(error).__name__}: {message}", error=True)

    def _say(self, text: str, error: bool = False) -> None:
        """Show ``text`` in the status line ("" clears it); ``message`` keeps it as plain text."""
        self.message = text
        if not error:
            self.status.value = f"<i>{html.escape(text)}</i>" if text else ""
            return
        name, _, rest = text.partition(": ")
        self.status.value = (f'<div class="fishcam-error" style="color:#a40000;background:#fff0f0;'
                             f'padding:4px 8px;border-left:3px solid #a40000">'
                             f'<b>{html.escape(name)}</b>: {html.escape(rest)}'
                             f'<br><small>The explorer still works: choose another setting. The full '
                             f'traceback is in <code>explorer.error_trace</code>.</small></div>')

    @contextlib.contextmanager
    def _hold(self) -> Iterator[None]:
        """Set several controls without each one firing its callback."""
        self._quiet, before = True, self._quiet
        try:
            yield
        finally:
            self._quiet = before

    def _change_filter(self) -> None:
        positions = self.store.select(self.filter.value)
        if not positions:
            empty = self.filter.label
            with self._hold():  # the menu goes back to the filter whose images are still shown
                self.filter.value = self._filter_shown
            raise ValueError(f"no image matches '{empty}'; still showing '{self.filter.label}'. "
                             f"Choose another filter")
        self._positions, self._filter_shown = positions, self.filter.value
        with self._hold():
            self.index.value = 0
            self.index.max = len(positions) - 1
        self._show_image()

    def _show_image(self) -> None:
        index = self._positions[self.index.value]
        sample = self.store.sample(index)
        self.current = index
        predicted = int(self.store.predictions.preds[index])
        with self._hold():
            self.target.value = self.classes[predicted]  # a new image starts on its predicted class
            if not sample.present[self.store.views.index(self.view.value)]:
                self.view.value = self.store.views[int(np.flatnonzero(sample.present)[0])]
        self._paint_image()
        self._compute()

    def _smoothing_problem(self) -> str | None:
        return smoothing_problem(self.method.value, self.smoothing.value, self.store.multiview)

    def _change_smoothing(self) -> None:
        """A smoothing that applies recomputes; one that does not is refused and the menu goes back."""
        problem = self._smoothing_problem()
        if problem:
            with self._hold():
                self.smoothing.value = self._smoothing_shown
            raise ValueError(f"{problem}. Still showing '{self.smoothing.label}'; choose {_either(self._applicable())}")
        self._smoothing_shown = self.smoothing.value
        self._fit_controls()
        self._compute()

    def _change_method(self) -> None:
        """A new method; a smoothing that does not apply to it goes back to "none", and the status says so."""
        problem = self._smoothing_problem()
        if problem:
            with self._hold():
                self.smoothing.value = self._smoothing_shown = "none"
        self._fit_controls()
        self._compute()
        if problem:  # after _compute, which clears the status line
            self._say(f"{self.method.value} is shown without smoothing: {problem}")

    def _change_target(self) -> None:
        """A class whose map is kept re-renders; with test-time augmentation a new class's map is made."""
        if self.maps is not None and self.maps.row(self.classes.index(self.target.value)) is None:
            self._compute()
        else:
            self._render()

    def _applicable(self) -> list[str]:
        """The labels of the smoothings that apply to the method shown."""
        multiview = self.store.multiview
        return [label for key, label in SMOOTHINGS.items()
                if smoothing_problem(self.method.value, key, multiview) is None]

    def _fit_controls(self) -> None:
        """The smoothing menu is greyed out for a method that takes none (guided Grad-CAM); with test-time
        augmentation the class slider moves without computing every class it passes, only the one let go."""
        self.smoothing.disabled = self._applicable() == [SMOOTHINGS["none"]]
        self.target.continuous_update = self.smoothing.value != "tta"

    def _show_view(self) -> None:
        self._paint_image()
        self._render()

    def _paint_image(self) -> None:
        sample = self.store.sample(self.current)
        v = self.store.views.index(self.view.value)
        picture = sample.images[v] if sample.present[v] else placeholder(sample.images.shape[1:3])
        self.image_panel.value = png_bytes(picture)
        title = "image" if not self.store.multiview else f"{self.view.value} view" + (
            "" if sample.present[v] else " (missing)")
        self.captions[0].value = _caption(f"<b>{html.escape(title)}</b>")

    def _compute(self) -> None:
        self.maps = None
        self._heatmap_key = None
        smoothing = self.smoothing.value
        # Test-time augmentation makes the shown class's map alone (each class is a call on all the copies).
        target = self.classes.index(self.target.value) if smoothing == "tta" else None
        request = (self.current, self.layer.value, method_key(self.method.value), smoothing, target)
        try:
            if not self.store.has_maps(*request):
                what = "for every class" if target is None else f"for {self.target.value}"
                how = "" if smoothing == "none" else f", {self.smoothing.label},"
                self._say(f"computing {self.method.value}{how} at {self.layer.value} {what}…")
            self.maps = self.store.maps(*request)
        except Exception:
            blank = png_bytes(placeholder(self.store.sample(self.current).images.shape[1:3]))
            self.heatmap_panel.value = self.overlay_panel.value = blank
            self.captions[1].value = self.captions[2].value = _caption("<b>no map</b>")
            self.info.value = self._info_html(None)
            raise
        self._say("")
        self._render()

    def _render(self) -> None:
        """Re-colour and re-encode the heatmap and overlay from maps already computed."""
        if self.maps is None:
            return  # the last computation failed; its message is in the status line
        start = time.perf_counter()
        sample = self.store.sample(self.current)
        c = self.classes.index(self.target.value)
        v = self.store.views.index(self.view.value)
        row = self.maps.row(c)  # c itself, unless only some classes' maps were made (test-time augmentation)
        if row is None:
            return  # that class's map is being made (_change_target)
        heat = self.maps.maps[row, v]
        # A map with no spatial information (constant, or rounding noise) is grey, not a colour scale.
        flat = bool(self.maps.flat is not None and self.maps.flat[row, v] and sample.present[v])
        key = (self.current, self.layer.value, self.method.value, self.smoothing.value, c, v, self.colormap.value)
        if key != self._heatmap_key:  # the heatmap does not depend on the opacity
            if flat:
                picture = placeholder(heat.shape, grey=0.5)
            elif self.maps.pictures is not None:
                picture = self.maps.pictures[row, v]
            else:
                picture = heatmap_to_rgb(heat, self.colormap.value)
            self.heatmap_panel.value = png_bytes(picture)
            self._heatmap_key = key
        image = sample.images[v] if sample.present[v] else placeholder(sample.images.shape[1:3])
        opacity = 0.0 if flat else self.opacity.value
        self.overlay_panel.value = png_bytes(overlay_heatmap(image, heat, opacity, self.colormap.value))
        name = html.escape(self.target.value)
        note = " · <i>flat: no spatial information</i>" if flat else ""
        smoothed = "" if self.smoothing.value == "none" else f" · {html.escape(self.smoothing.label)}"
        self.captions[1].value = _caption(f"<b>{html.escape(self.method.value)}</b> "
                                          f"at {html.escape(self.layer.value)}{smoothed}{note}")
        self.captions[2].value = _caption(f"<b>overlay</b> · {name}")
        self.probability.value = f"p({name}) = {self.maps.probs[c]:.3f}"
        self.info.value = self._info_html(self.maps)
        self.shown = {"index": self.current, "view": self.view.value, "layer": self.layer.value,
                      "method": method_key(self.method.value), "smoothing": self.smoothing.value, "target": c,
                      "alpha": self.opacity.value, "cmap": self.colormap.value, "map": heat, "flat": flat}
        self.render_seconds = time.perf_counter() - start

    def _info_html(self, maps: ClassMaps | None) -> str:
        sample = self.store.sample(self.current)
        probs = self.store.predictions.probs[self.current] if maps is None else maps.probs
        predicted = int(np.argmax(probs))
        right = predicted == sample.label
        verdict = ('<span style="color:#1a7f37">correct</span>' if right
                   else '<span style="color:#a40000">misclassified</span>')
        rows = "".join(
            f"<tr><td>{html.escape(self.classes[k])}{' (true)' if k == sample.label else ''}</td>"
            f"<td style='text-align:right'>{probs[k]:.3f}</td>"
            f"<td><div style='background:#4c72b0;height:9px;width:{int(120 * probs[k])}px'></div></td></tr>"
            for k in np.argsort(-probs)[: self.top_k])
        text = (f"<b>{html.escape(str(sample.id))}</b> · true <b>{html.escape(self.classes[sample.label])}</b> · "
                f"predicted <b>{html.escape(self.classes[predicted])}</b> ({verdict}) · "
                f"image {self.index.value + 1} of {len(self._positions)} shown by '{html.escape(self.filter.label)}'"
                f"<table style='font-size:90%'><tr><th>top {self.top_k}</th><th>p</th><th></th></tr>{rows}</table>")
        if maps is not None and maps.view_weights is not None:
            weights = " · ".join(f"{html.escape(view)} {w:.2f}" for view, w in zip(self.store.views, maps.view_weights))
            text += f"view weights: {weights}"
        return text

    def _filter_options(self, predictions) -> list[tuple[str, str]]:
        right = predictions.preds == predictions.targets
        options = [(f"all ({len(right)})", "all"), (f"correct ({int(right.sum())})", "correct"),
                   (f"misclassified ({int((~right).sum())})", "misclassified")]
        for k, name in enumerate(self.classes):
            options.append((f"class {name} ({int((predictions.targets == k).sum())})", name))
        return options


def _caption(text: str) -> str:
    """One line above a panel, cut with an ellipsis rather than wrapped, so the panels stay aligned."""
    return f'<div style="white-space:nowrap;overflow:hidden;text-overflow:ellipsis">{text}</div>'


def _either(words: list[str]) -> str:
    """["a", "b", "c"] → "a, b or c"."""
    return " or ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} or {words[-1]}"


def _label(method: str) -> str:
    key = method_key(method)
    return next(label for label, value in menu().items() if value == key)


def explore(model: nn.Module, dataset, **options: Any) -> CamExplorer:
    """A CAM explorer of ``model`` on ``dataset`` (single-view, or a ``MultiViewDataset``).

    Options: ``layers`` (default ``cam_layers(model)``), ``methods`` (default every method of ``menu()``),
    ``classes``, ``top_k=3``, ``alpha=0.5`` (opacity), ``cmap="jet"``, ``size=220`` (panel pixels),
    ``start=0`` (first image). Show it by making it the last expression of a cell. Its ``smoothing`` menu
    (``SMOOTHINGS``) starts at "none".
    """
    return CamExplorer(model, dataset, **options)
