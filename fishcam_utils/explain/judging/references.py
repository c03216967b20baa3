"""Maps that know nothing about the model, to judge the ones that should.

A measure of explanations means something only where a method beats maps made without the model:

* ``random_maps``: uniform noise, a new value per pixel; its maximum falls anywhere, so it points at
  the evidence as often as the evidence (grown by the tolerance) covers the image, and its deletion
  curve is that of a random order;
* ``edge_maps``: the Sobel gradient magnitude of the image, an edge detector. The traits of our fish
  are painted patterns with sharp borders, so edges find them without any model: a method that does
  no better than edges is showing the image, not the decision.

Both are registered explainers that need no layer (``"random"``, ``"edges"``, family ``"reference"``), so
``make_cam("edges", model)`` and every table of methods take them like any other method.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..explainer import LayerFreeExplainer
from ..maps import normalize_maps
from ..registry import method_names, register

# Sobel's derivative along x (columns); its transpose is the derivative along y.
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])


def random_maps(shape: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    """(N, H, W) float uniform in [0, 1), the same for the same ``seed`` (the global RNG is untouched)."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def edge_maps(images: torch.Tensor) -> torch.Tensor:
    """(N, H, W) float in [0, 1]: the Sobel gradient magnitude of each image's channel mean, borders
    padded by repetition (so the frame is not an edge), min-max normalised per image. ``images`` is
    (N, C, H, W) as the model sees them (normalised images weight each channel by its 1/std)."""
    images = torch.as_tensor(images).detach().float()
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    grey = F.pad(images.mean(1, keepdim=True), (1, 1, 1, 1), mode="replicate")
    kernels = torch.stack([_SOBEL_X, _SOBEL_X.T])[:, None].to(grey)
    gx, gy = F.conv2d(grey, kernels).unbind(1)
    return normalize_maps(torch.hypot(gx, gy))


@register
class RandomMap(LayerFreeExplainer):
    """Uniform noise (``random_maps``), drawn from a generator of its own seeded once: successive calls
    continue the draw, so batches of one explainer are independent, and the same ``seed`` gives the same maps."""

    name, label = "random", "random map"

    def __init__(self, model, layer=None, progress: bool | None = None, seed: int = 0) -> None:
        super().__init__(model, layer, progress)
        self.generator = torch.Generator().manual_seed(seed)

    def image_maps(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        return torch.rand((n, h, w), generator=self.generator).to(images.device)


@register
class EdgeMap(LayerFreeExplainer):
    """The Sobel edges of the image (``edge_maps``): what a method that shows the image, not the decision, draws."""

    name, label = "edges", "Sobel edges"

    def image_maps(self, images: torch.Tensor) -> torch.Tensor:
        return edge_maps(images)


def reference_names() -> list[str]:
    """The registered maps that ignore the model (family ``"reference"``): the scores a method must beat."""
    return method_names(family="reference")
