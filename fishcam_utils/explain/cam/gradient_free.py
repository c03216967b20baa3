"""The gradient-free methods: Score-CAM, Ablation-CAM and Eigen-CAM weight the channels by more passes
through the network or by the activations alone; CAM reads the linear head's weights. Each but Eigen-CAM
implements ``channel_weights(A, inputs, logits, targets)``; the map is sum_c w_c A_c, or with eigen-smoothing
the first principal component of the weighted activations w_c A_c."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...models.factory import head_name
from ..maps import principal_projection
from ..registry import register
from ..targets import Targets
from .core import BaseCAM
from .session import resolve_layer


class _GradientFree(BaseCAM):
    """Methods that need no gradients: one activation per image (no multi-view branches)."""

    needs_gradients = False
    family = "gradient-free"
    multi_activation = False

    def __init__(self, model: nn.Module, layer: str | nn.Module, batch_size: int = 64,
                 progress: bool | None = None) -> None:
        super().__init__(model, layer, progress)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int (network passes per batch); got {batch_size!r}")
        self.batch_size = batch_size

    def _single_images(self, inputs: Any, activations: torch.Tensor) -> None:
        if isinstance(inputs, (tuple, list)):
            raise ValueError(f"{self.label} explains single-image models; use a gradient method for multi-view models")
        if activations.shape[0] != inputs.shape[0]:
            raise ValueError(f"{self.label} needs one activation per image at {self.layer_name!r}; it has "
                             f"{activations.shape[0]} for {inputs.shape[0]} images")

    def channel_weights(self, activations: torch.Tensor, inputs: Any, logits: torch.Tensor,
                        targets: Targets) -> torch.Tensor:
        """(N, J, C): each channel's weight for each of the J columns of ``targets``."""
        raise NotImplementedError

    def class_maps(self, activations, inputs, logits, targets):
        weights = self.channel_weights(activations, inputs, logits, targets).to(activations.dtype)
        return torch.einsum("njc,nchw->njhw", weights, activations)

    def eigen_class_maps(self, activations, inputs, logits, targets):
        weights = self.channel_weights(activations, inputs, logits, targets).to(activations.dtype)
        return torch.stack([principal_projection(weights[:, j, :, None, None] * activations)
                            for j in range(weights.shape[1])], dim=1)


@register
class ScoreCAM(_GradientFree):
    """Score-CAM (Wang et al. 2020): no gradients. Each channel, upsampled and min-max scaled,
    masks the input; the class scores of the masked images, softmaxed over channels, weight the
    channels. Masked images of all the batch's images go through the model ``batch_size`` at a time
    (16 by default, as pytorch-grad-cam: larger batches of 224 px images ran slower on CPUs, bench/cam_bench.py);
    the channels that are zero everywhere share one pass of a black image; on a CPU the masked images go in
    channels-last (faster convolutions)."""

    name, label = "scorecam", "Score-CAM"
    _flat_view = False  # set on an explainer once its model refuses channels-last images (a flat view, say)

    def __init__(self, model: nn.Module, layer: str | nn.Module, batch_size: int = 16,
                 progress: bool | None = None) -> None:
        super().__init__(model, layer, batch_size, progress)

    def channel_weights(self, activations, inputs, logits, targets):
        self._single_images(inputs, activations)
        n, c = activations.shape[:2]
        # Same mask upsampling as pytorch-grad-cam (corners aligned), so results are comparable.
        masks = F.interpolate(activations, size=inputs.shape[-2:], mode="bilinear", align_corners=True)
        flat = masks.flatten(2)
        low, high = flat.min(-1).values[..., None, None], flat.max(-1).values[..., None, None]
        masks = ((masks - low) / (high - low + 1e-8)).reshape(n * c, 1, *inputs.shape[-2:])
        # All (image, channel) pairs in one queue, so that batches stay full across images.
        image_of = torch.arange(n, device=inputs.device).repeat_interleave(c)
        # A channel that is zero everywhere (a dead ReLU) masks its image to zeros, whatever the image: the
        # scores of a black image, computed once for all such channels instead of once per channel.
        dead = (activations.flatten(2) == 0).all(-1).reshape(n * c)
        live = (~dead).nonzero()[:, 0]
        scores = torch.empty(n * c, targets.classes.shape[1], device=inputs.device)
        for start in self._progress(range(0, len(live), self.batch_size), f"Score-CAM, {n} image(s) x {c} channels"):
            pairs = live[start:start + self.batch_size]
            masked = self._masked_logits(inputs[image_of[pairs]] * masks[pairs]).float()
            scores[pairs] = targets.scores(masked, image_of[pairs])
        if dead.any():
            black = self.logits_for(torch.zeros_like(inputs[:1])).float()
            scores[dead] = targets.scores(black.expand(int(dead.sum()), -1), image_of[dead])
        return torch.softmax(scores.reshape(n, c, -1), dim=1).transpose(1, 2)  # over channels

    def _masked_logits(self, images: torch.Tensor) -> torch.Tensor:
        # On a CPU, convolutions ran about a fifth faster on channels-last images (ResNet-18, 224 px). A model
        # that cannot take them (one that views its features flat) gets ordinary ones, from then on; an error
        # that ordinary images raise too is the model's own, and raised.
        if images.device.type == "cpu" and not self._flat_view:
            try:
                return self.logits_for(images.contiguous(memory_format=torch.channels_last))
            except RuntimeError:
                logits = self.logits_for(images)
                self._flat_view = True
                return logits
        return self.logits_for(images)


@register
class AblationCAM(_GradientFree):
    """Ablation-CAM (Desai & Ramaswamy 2020): a channel weighs what the score loses when that channel
    is set to zero, w_c = (y - y_without_c) / |y|; map = sum_c w_c A_c. No gradients.

    Batched: the layers before the target run once per image per ``batch_size`` channels, and only
    the rest of the network sees the batch of ablated copies (pytorch-grad-cam reruns the whole
    network for every copy). Where the rest of the network does its own batch bookkeeping and
    cannot take the copies so, the copies go through the whole network instead."""

    name, label = "ablationcam", "Ablation-CAM"

    def channel_weights(self, activations, inputs, logits, targets):
        self._single_images(inputs, activations)
        n, c = activations.shape[:2]
        original = targets.scores(logits.float())  # (N, J)
        starts = range(0, c, self.batch_size)
        steps = [(i, start) for i in range(n) for start in starts]
        ablated = torch.empty(n, c, original.shape[1], device=original.device)
        whole_network = False  # until the rest of the network refuses a batch of copies alone
        for i, start in self._progress(steps, f"Ablation-CAM, {n} image(s) x {c} channels"):
            channels = torch.arange(start, min(start + self.batch_size, c), device=activations.device)
            copies = activations[i].expand(len(channels), *activations.shape[1:]).clone()
            copies[torch.arange(len(channels)), channels] = 0
            rows, whole_network = self._ablated_logits(inputs[i:i + 1], copies, whole_network)
            rows = rows.float()
            ablated[i, channels] = targets.scores(rows, torch.full((len(channels),), i, device=rows.device))
        # The paper divides by y; by |y| here, so that a class with a negative score is not flipped.
        size = original.abs()
        weights = (original[:, None] - ablated) / torch.where(size > 0, size, torch.ones_like(size))[:, None]
        return weights.transpose(1, 2)

    def _ablated_logits(self, image: torch.Tensor, copies: torch.Tensor,
                        whole_network: bool) -> tuple[torch.Tensor, bool]:
        """Logits of the ablated copies, and whether they had to go through the whole network."""
        if not whole_network:
            try:
                return self.logits_with(image, copies), False
            except _OUT_OF_MEMORY:
                raise
            except (RuntimeError, ValueError):
                pass  # a shape clash after the layer: run the copies all through, from now on
        return self.logits_with(image.expand(len(copies), *image.shape[1:]), copies), True


# torch.OutOfMemoryError is new in torch 2.5; before, CUDA's was the only one.
_OUT_OF_MEMORY = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)


@register
class EigenCAM(_GradientFree):
    """Eigen-CAM (Muhammad & Yeasin 2020): the first principal component of the layer's activations
    over its pixels. No gradients, and the same map for every class."""

    name, label = "eigencam", "Eigen-CAM"

    def class_maps(self, activations, inputs, logits, targets):
        return principal_projection(activations)[:, None].expand(-1, targets.classes.shape[1], -1, -1)

    eigen_class_maps = class_maps  # already the first component (pytorch-grad-cam's eigen_smooth changes nothing)


@register
class CAM(_GradientFree):
    """The original CAM (Zhou et al. 2016) for a network whose last conv features are globally
    average-pooled into one linear layer: map = sum_c w_{k,c} A_c with w the linear weights.
    Any other head (a LayerNorm before the linear layer, as ConvNeXt's), or a layer that is not the
    last before the pooling, raises ``ValueError``: Grad-CAM is the general form."""

    name, label = "cam", "CAM"
    any_layer = False  # only the last layer before the pooling

    def __init__(self, model: nn.Module, layer: str | nn.Module, fc: str | nn.Module | None = None,
                 progress: bool | None = None) -> None:
        super().__init__(model, layer, progress=progress)
        if fc is None:
            fc = _head_of(model)
        fc_name, self.fc = resolve_layer(model, fc)
        if not isinstance(self.fc, nn.Linear):
            raise ValueError(f"CAM needs a linear head after global average pooling; {fc_name!r} is a "
                             f"{type(self.fc).__name__}. Use Grad-CAM, which works with any head.")
        self.fc_name = fc_name

    def channel_weights(self, activations, inputs, logits, targets):
        self._check_head(activations, logits)
        if targets.uses_functions:
            raise ValueError("CAM reads one class's row of the linear head, so its targets must be class indices; "
                             "for a score function use Grad-CAM, which equals CAM on this kind of head")
        return self.fc.weight.detach()[targets.classes.to(activations.device)]  # (N, J, C)

    def _check_head(self, activations: torch.Tensor, logits: torch.Tensor) -> None:
        """CAM's map is right only if logits = fc(mean over pixels of the layer): check it."""
        advice = "use Grad-CAM, which works at any layer and with any head"
        if activations.shape[1] != self.fc.in_features:
            raise ValueError(f"CAM works only at the layer whose pooled output the head {self.fc_name!r} reads: "
                             f"{self.layer_name!r} has {activations.shape[1]} channels and the head takes "
                             f"{self.fc.in_features}; {advice}")
        pooled = F.linear(activations.mean(dim=(2, 3)), self.fc.weight, self.fc.bias)
        tolerance = 1e-3 * float(logits.abs().max().clamp_min(1.0))
        if not torch.allclose(pooled.to(logits.dtype), logits, rtol=1e-3, atol=tolerance):
            raise ValueError(f"CAM needs the head to be global average pooling then {self.fc_name!r} straight after "
                             f"{self.layer_name!r}; here the logits are not {self.fc_name}(mean of {self.layer_name}) "
                             f"(ConvNeXt puts a LayerNorm between, and a layer before the last stage has more "
                             f"layers after it); {advice}")


def _head_of(model: nn.Module) -> str:
    """The linear head of a model made by ``build_model``; for any other, a clear request for ``fc=``."""
    try:
        return head_name(model)
    except ValueError:
        linear = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        hint = f"; its last linear layer is {linear[-1]!r}, so try fc={linear[-1]!r}" if linear else ""
        raise ValueError(f"CAM reads the weights of the model's linear head, and {type(model).__name__} was not built "
                         f"by build_model, so name the head: CAM(model, layer, fc=...) (a torchvision ResNet's is "
                         f"'fc'){hint}") from None

