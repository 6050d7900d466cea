"""Residual networks for small images (He et al. 2016, section 4.2: ResNet-20/32/56 on CIFAR-10).

Three stages at full, half and quarter resolution, `blocks` basic blocks each
(two 3x3 convs with batch norm), a parameter-free shortcut when the shape changes
(stride-2 subsampling, zero channels appended), global average pooling and one
linear layer. ResNet-20 is widths (16, 32, 64) with 3 blocks: 272,474 parameters,
41 M multiply-adds per 32x32 image. Depth at full resolution costs compute but
few parameters, which is where a small parameter budget buys the most accuracy.
"""
from __future__ import annotations

from typing import Annotated

import torch
from torch import nn

from ..config.schema import Range
from ..core.errors import ConfigError
from .registry import MODELS


class BasicBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.stride, self.extra = stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra > 0:  # zero channels appended: no parameters ("option A")
            x = nn.functional.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


@MODELS.register("resnet-cifar")
def resnet_cifar(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    widths: list[int] = (16, 32, 64),  # channels of each stage; each later stage halves the resolution
    blocks: Annotated[int, Range(ge=1, le=50)] = 3,  # basic blocks per stage: depth = 6 * blocks + 2
) -> nn.Module:
    """ResNet-(6n+2) for small images: `blocks`=3 is ResNet-20, 5 ResNet-32, 9 ResNet-56."""
    widths = [int(w) for w in widths]
    if not widths or any(w < 1 for w in widths):
        raise ConfigError(f"model.widths must be a non-empty list of positive channel counts, got {widths}")
    if any(b < a for a, b in zip(widths, widths[1:])):
        raise ConfigError(f"model.widths must not decrease from stage to stage (the shortcut pads), got {widths}")
    layers: list[nn.Module] = [nn.Conv2d(in_shape[0], widths[0], 3, padding=1, bias=False),
                               nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True)]
    c = widths[0]
    for s, w in enumerate(widths):
        for b in range(blocks):
            layers.append(BasicBlock(c, w, 2 if s > 0 and b == 0 else 1))
            c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    for m in model.modules():
        if isinstance(m, BasicBlock):
            # Each block starts as the identity (zero last BN scale): a deep net trains like a shallow one
            # at first, which tolerates the high peak rates of short schedules (Goyal et al. 2017).
            nn.init.zeros_(m.bn2.weight)
    return model
