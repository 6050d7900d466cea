"""Backbones by name from torchvision's model registry, for any channel count and class count.

Each builds torchvision's architecture with random weights and a head of the data set's
classes; its first conv takes the data's channels. ImageNet (or any other) weights are loaded
over it afterwards, by name (models/pretrained.py), so a builder never reads a file.
"""
from __future__ import annotations

from torch import nn

from .registry import MODELS

# name -> (what it is, parameters for 3x224x224 images and ImageNet's 1,000 classes)
BACKBONES = {
    "resnet18": ("ResNet-18 (He et al. 2016)", 11_689_512),
    "resnet34": ("ResNet-34", 21_797_672),
    "resnet50": ("ResNet-50", 25_557_032),
    "mobilenet_v3_small": ("MobileNetV3-Small (Howard et al. 2019)", 2_542_856),
    "mobilenet_v3_large": ("MobileNetV3-Large", 5_483_032),
    "efficientnet_b0": ("EfficientNet-B0 (Tan & Le 2019)", 5_288_548),
    "convnext_tiny": ("ConvNeXt-T (Liu et al. 2022)", 28_589_128),
    "regnet_y_400mf": ("RegNetY-400MF (Radosavovic et al. 2020)", 4_344_144),
}

# the smallest image side a backbone takes: ConvNeXt downsamples 32x with 2x2 convs, which a
# 28-pixel image leaves without the last 2x2 map
MIN_SIDE = {"convnext_tiny": 32}


def first_conv(model: nn.Module) -> tuple[nn.Module, str, nn.Conv2d]:
    """The first conv layer of a network: its parent module, its attribute name and the layer."""
    for parent in model.modules():
        for attr, child in parent.named_children():
            if isinstance(child, nn.Conv2d):
                return parent, attr, child
    raise ValueError("the network has no conv layer")


def _with_channels(conv: nn.Conv2d, channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                     conv.groups, conv.bias is not None)


def _register(name: str, doc: str, params: int) -> None:
    doc = f"{doc}, {params / 1e6:.1f} M parameters at 1,000 classes"
    is_resnet = name.startswith("resnet")

    def build(in_shape: tuple[int, int, int], num_classes: int, *, small_input: bool = False) -> nn.Module:
        from torchvision.models import get_model

        if small_input and not is_resnet:
            raise ValueError(f"small_input is for the resnets; {name} takes images of 32 pixels and more as they are")
        model = get_model(name, weights=None, num_classes=num_classes)
        parent, attr, conv = first_conv(model)
        if small_input:  # 28-32 px images: a 3x3 stride-1 stem and no max-pool keep the maps large
            setattr(parent, attr, nn.Conv2d(in_shape[0], conv.out_channels, 3, stride=1, padding=1, bias=False))
            model.maxpool = nn.Identity()
        elif in_shape[0] != conv.in_channels:
            setattr(parent, attr, _with_channels(conv, in_shape[0]))
        return model

    build.__doc__ = f"torchvision's {doc}; small_input (resnets): a 3x3/1 stem without max-pool for 28-32 px images."
    build.__name__ = name
    if not is_resnet:  # the option is the resnets' alone: check_model_options reads the signature
        def build_plain(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
            return build(in_shape, num_classes)

        build_plain.__doc__ = f"torchvision's {doc}."
        build_plain.__name__ = name
        MODELS.register(name, backbone=True, params=params, min_side=MIN_SIDE.get(name, 1))(build_plain)
        return
    MODELS.register(name, backbone=True, params=params, min_side=MIN_SIDE.get(name, 1))(build)


for _name, (_doc, _params) in BACKBONES.items():
    _register(_name, _doc, _params)
