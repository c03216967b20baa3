"""The gradient methods: each says how the target layer's activations ``A`` (N, C, h, w) and the
gradients ``G = d score / d A`` weight the channels, ``weigh(A, G)`` (N, C, h, w), whose channel sum is the
map (its first principal component, eigen-smoothed); ``BaseCAM`` does the rest."""

from __future__ import annotations

import torch

from ..maps import principal_projection
from ..registry import register
from .core import BaseCAM


@register
class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weights are the spatially averaged gradients,
    alpha_c = mean_ij dS/dA_cij; map = sum_c alpha_c A_c."""

    name, label = "gradcam", "Grad-CAM"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients.mean(dim=(2, 3), keepdim=True) * activations


@register
class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhay et al. 2018): pixel-weighted positive gradients, with the
    closed-form coefficients a = g^2 / (2 g^2 + sum_ij A g^3) (exponential-score assumption)."""

    name, label = "gradcam++", "Grad-CAM++"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        g2, g3 = gradients.pow(2), gradients.pow(3)
        total = activations.sum(dim=(2, 3), keepdim=True)
        denominator = 2 * g2 + total * g3
        # The paper's formula, exactly: a zero denominator (zero gradient) gives a zero coefficient.
        # (pytorch-grad-cam adds 1e-6 to every denominator instead, which distorts the weights of
        # models whose gradients are small, since g^2 is then comparable to 1e-6.)
        safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
        alpha = torch.where((gradients != 0) & (denominator != 0), g2 / safe, torch.zeros_like(g2))
        weights = (torch.relu(gradients) * alpha).sum(dim=(2, 3), keepdim=True)
        return weights * activations


@register
class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al. 2020): each channel's weight is its gradient averaged over the pixels
    weighted by the channel's own activation, alpha_c = sum_ij A_cij G_cij / sum_ij A_cij."""

    name, label = "xgradcam", "XGrad-CAM"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        total = activations.sum(dim=(2, 3), keepdim=True)
        # The formula exactly; a channel that is zero everywhere weighs nothing (pytorch-grad-cam adds
        # 1e-7 to every denominator, which matters only when the activations sum to about that).
        safe = torch.where(total != 0, total, torch.ones_like(total))
        weights = torch.where(total != 0, (activations * gradients).sum(dim=(2, 3), keepdim=True) / safe,
                              torch.zeros_like(total))
        return weights * activations


@register
class HiResCAM(BaseCAM):
    """HiResCAM (Draelos & Carin 2020): gradients times activations, summed over channels, with no
    spatial averaging, so the map is faithful to what the score actually used."""

    name, label = "hirescam", "HiResCAM"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients * activations


@register
class LayerCAM(BaseCAM):
    """LayerCAM (Jiang et al. 2021): positive gradients weight each activation pixel; useful at
    earlier, finer layers."""

    name, label = "layercam", "LayerCAM"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return torch.relu(gradients) * activations


@register
class EigenGradCAM(BaseCAM):
    """Eigen-Grad-CAM (as pytorch-grad-cam defines it, after Muhammad & Yeasin 2020): the first
    principal component of gradients times activations, G * A, over the layer's pixels."""

    name, label = "eigengradcam", "Eigen-Grad-CAM"

    @staticmethod
    def weigh(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradients * activations

    def combine(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return principal_projection(self.weigh(activations, gradients))

