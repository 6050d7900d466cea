"""ResNet-18: torchvision's architecture with the input channels and class count adapted."""
from __future__ import annotations

from torch import nn

from .registry import MODELS


@MODELS.register("resnet18")
def resnet18(in_shape: tuple[int, int, int], num_classes: int, *, small_input: bool = False) -> nn.Module:
    """torchvision's ResNet-18; `small_input` swaps the 7x7/2 stem and max-pool for a 3x3/1 conv (32x32 images)."""
    from torchvision.models import resnet18 as tv_resnet18

    model = tv_resnet18(weights=None, num_classes=num_classes)
    if small_input:
        model.conv1 = nn.Conv2d(in_shape[0], 64, 3, stride=1, padding=1, bias=False)
        model.maxpool = nn.Identity()
    elif in_shape[0] != 3:
        model.conv1 = nn.Conv2d(in_shape[0], 64, 7, stride=2, padding=3, bias=False)
    return model
