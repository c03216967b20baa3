"""FishResNet: the small residual CNN of the Kaggle fish notebook, sized for CPU training.

Conv-BN-ReLU stem, two residual stages, global average pooling and a linear head. Pooling
makes it accept any image size; ``width`` sets the channels (stem and stage 1 have ``width``,
stage 2 has ``2 * width``).
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm has one), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


class ResidualBlock(nn.Module):
    """Two 3x3 conv-BN layers whose output is added to the input: ``relu(F(x) + shortcut(x))``.

    When the block changes the channel count or strides, the shortcut is a 1x1 conv-BN so that
    the shapes match. (B, C_in, H, W) → (B, C_out, H / stride, W / stride).
    Each ReLU is its own module and none is in place, so hooks on any layer see clean outputs.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()
        self.relu2 = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class FishResNet(nn.Module):
    """Stem → stage 1 (``blocks[0]`` residual blocks, ``width`` channels) → stage 2
    (``blocks[1]`` blocks, ``2 * width`` channels, stride 2) → global average pool → linear.

    Input (B, 3, H, W) normalised images of any size ≥ 16; output (B, num_classes) logits.
    A 64 px image leaves stage 2 as a 16x16 map: fine enough for Grad-CAM to be readable.
    """

    def __init__(self, num_classes: int, width: int = 32, blocks: tuple[int, int] = (2, 2),
                 dropout: float = 0.0) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {num_classes}")
        if width < 1 or len(blocks) != 2 or min(blocks) < 1:
            raise ValueError(f"width must be >= 1 and blocks two counts >= 1, got width={width}, blocks={blocks}")
        self.stem = nn.Sequential(conv_bn_relu(3, width), nn.MaxPool2d(2))
        self.layer1 = nn.Sequential(*[ResidualBlock(width, width) for _ in range(blocks[0])])
        self.layer2 = nn.Sequential(
            ResidualBlock(width, 2 * width, stride=2),
            *[ResidualBlock(2 * width, 2 * width) for _ in range(blocks[1] - 1)],
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * width, num_classes)
        self.num_features = 2 * width

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map: (B, 2 * width, H / 4, W / 4)."""
        return self.layer2(self.layer1(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.flatten(self.pool(self.features(x)))))
