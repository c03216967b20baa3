"""The random-logit test (Sixt et al. 2020, as Quantus's ``RandomLogit`` runs it): explain each image for a
class drawn at random among the others, and measure how similar that map is to the map of the class asked for.
A map that barely changes with the class (similarity near 1) does not explain the class; lower is better.

``off_classes`` draws the other class as Quantus does (NumPy's legacy generator seeded with ``seed``: one
integer below K - 1 per image, indexing the classes other than its own), so the same seed picks the same
classes. The similarity is the structural similarity (SSIM, Wang et al. 2004) of the two maps, by scikit-image,
over 7 x 7 windows of the 2-D maps with the data range of the pair. Quantus flattens each map to one row
first (its windows run along the rows and across from one row into the next); ``flat=True`` measures so.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


def off_classes(targets: torch.Tensor, num_classes: int, seed: int = 42) -> torch.Tensor:
    """(N,) long: for each target, a class drawn uniformly among the ``num_classes - 1`` others, as Quantus
    draws them (``numpy.random.seed(seed)``, then ``randint(0, K - 1, N)``), without touching NumPy's global
    generator."""
    targets = torch.as_tensor(targets).long().cpu()
    if num_classes < 2:
        raise ValueError(f"the random-logit test needs at least 2 classes, got num_classes={num_classes}")
    if len(targets) and not (0 <= int(targets.min()) and int(targets.max()) < num_classes):
        raise ValueError(f"targets must be classes 0..{num_classes - 1}; got {targets.tolist()}")
    draw = torch.as_tensor(np.random.RandomState(seed).randint(0, num_classes - 1, len(targets)))
    return draw + (draw >= targets).long()  # the draw-th class, skipping the image's own


def ssim(a: torch.Tensor, b: torch.Tensor, flat: bool = False) -> torch.Tensor:
    """(N,) the structural similarity of maps ``a`` and ``b`` (N, H, W), each pair with the data range of both
    (max - min over the two), 7 x 7 windows (7-long along a row of H W values with ``flat``), in [-1, 1];
    computed in the maps' dtype (float32 maps: as Quantus does, in float32), returned as float64. Two maps of
    one constant value: 1."""
    from skimage.metrics import structural_similarity  # scikit-image: only this measure needs it

    if a.shape != b.shape or a.ndim != 3:
        raise ValueError(f"ssim compares two batches of maps (N, H, W) of one shape; got {tuple(a.shape)} and "
                         f"{tuple(b.shape)}")
    if not flat and min(a.shape[1:]) < 7:
        raise ValueError(f"ssim's 7 x 7 windows need maps of at least 7 x 7 pixels, got {tuple(a.shape[1:])}; "
                         f"measure the flattened maps instead (flat=True)")
    out = []
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    for x, y in zip(a.detach().to(dtype).cpu().numpy(), b.detach().to(dtype).cpu().numpy()):
        if flat:
            x, y = x.reshape(-1), y.reshape(-1)
        both = np.concatenate([x.reshape(-1), y.reshape(-1)])
        span = float(both.max() - both.min())
        # Two maps of one constant value are the same map (scikit-image would divide by a zero range).
        out.append(structural_similarity(x, y, data_range=span) if span > 0 else 1.0)
    return torch.tensor(out, dtype=torch.float64)


def random_logit(explain: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], images: torch.Tensor,
                 targets: torch.Tensor, num_classes: int, seed: int = 42, flat: bool = False,
                 maps: torch.Tensor | None = None) -> torch.Tensor:
    """(N,) the similarity (``ssim``) of each image's map for its target and for a random other class
    (``off_classes``). ``explain(images, classes)`` returns maps (N, H, W), e.g. ``lambda x, t:
    explanation_maps(model, x, t, "gradcam", "layer4")``; ``maps`` may pass the targets' maps already made."""
    targets = torch.as_tensor(targets).long()
    if maps is None:
        maps = explain(images, targets)
    return ssim(maps, explain(images, off_classes(targets, num_classes, seed)), flat=flat)
