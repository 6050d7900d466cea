"""Input adaptation: `data.image_size` and `data.channels` for every data set, applied on the
device to whole uint8 batches (the decoded images stay as they are in memory: 60,000 MNIST
digits at 224x224 would take 3 GB).

Gray becomes RGB by repeating the channel, RGB becomes gray by ITU-R 601 luma (PIL's "L"); the
resize is bilinear, antialiased where it shrinks. A folder is decoded at the configured size and
channels already, so there it changes nothing.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from ..config.schema import DataConfig

LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as PIL's convert("L")


def target_shape(data_cfg: DataConfig, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The (C, H, W) the images are adapted to: data.channels and data.image_size where set."""
    c, h, w = shape
    side = data_cfg.image_size
    return (data_cfg.channels or c, side or h, side or w)


def convert_channels(x: torch.Tensor, channels: int, rounded: bool = True) -> torch.Tensor:
    """A uint8 or float batch with 1 channel as 3 (repeated) or 3 as 1 (luma, rounded back to uint8
    unless not `rounded`); others unchanged."""
    if x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.expand(-1, 3, -1, -1)
    if channels == 1 and x.shape[1] == 3:
        w = torch.tensor(LUMA, device=x.device, dtype=torch.float32).view(1, 3, 1, 1)
        y = (x.float() * w).sum(1, keepdim=True)
        return y.round_().clamp_(0, 255).to(torch.uint8) if x.dtype == torch.uint8 and rounded else y
    raise ValueError(f"cannot convert {x.shape[1]} channels to {channels}")


def adapt(x: torch.Tensor, shape: Optional[tuple[int, int, int]], rounded: bool = True) -> torch.Tensor:
    """A uint8 batch (N, C, H, W) at `shape`'s channels and size (uint8 again: the augmentation
    that follows works on uint8); unchanged when it is already there or `shape` is None.

    Not `rounded`, a converted or resized batch stays float (0..255): an exported model does
    so, because rounding would turn another runtime's last-bit differences into whole gray levels."""
    if shape is None or tuple(x.shape[1:]) == tuple(shape):
        return x
    x = convert_channels(x, shape[0], rounded)
    if tuple(x.shape[2:]) != tuple(shape[1:]):
        shrink = shape[1] < x.shape[2] or shape[2] < x.shape[3]
        y = F.interpolate(x.float(), size=tuple(shape[1:]), mode="bilinear", align_corners=False, antialias=shrink)
        x = y.round_().clamp_(0, 255).to(torch.uint8) if rounded else y
    return x.contiguous()
