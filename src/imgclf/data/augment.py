"""Augmentation of whole batches as tensors, reproducible from a torch.Generator.

Random parameters are drawn on the CPU from the run's generator (a few numbers
per image) and moved to the batch's device, so a seed gives the same images
on a CPU and a GPU. Geometric ops work on uint8 before the float conversion
(4x less memory traffic); photometric ops on floats in 0..1; noise and cutout
after normalization.
"""
from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from ..core.registry import Registry

AUGMENTATIONS: Registry[Callable] = Registry("augmentation")


def _rand(n: int, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g).to(device, non_blocking=True)


def _gather_crop(x: torch.Tensor, oy: torch.Tensor, ox: torch.Tensor, h: int, w: int,
                 flip: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Crop an (h, w) window at per-image offsets (oy, ox) from a batch, in one gather;
    images where `flip` is true come out mirrored (their columns read right to left)."""
    n, c, hx, wx = x.shape
    j = torch.arange(w, device=x.device).expand(n, w)
    if flip is not None:
        j = torch.where(flip[:, None], w - 1 - j, j)
    rows = oy[:, None, None] + torch.arange(h, device=x.device)[None, :, None]  # (N, h, 1)
    flat = (rows * wx + (ox[:, None] + j)[:, None, :]).view(n, 1, h * w)  # (N, 1, h*w) into each H*W plane
    # torch.gather on the flattened planes: 3.5x faster than advanced indexing on 2 cores (341
    # images of 3x40x40 uint8: 0.57 vs 2.0 ms), and its NCHW output normalizes 3x faster.
    out = torch.gather(x.reshape(n, c, hx * wx), 2, flat.expand(n, c, h * w))
    return out.view(n, c, h, w)


def _padded_crop(x: torch.Tensor, pad: int, g: torch.Generator, flip, size: Optional[int] = None) -> torch.Tensor:
    """`flip`: False, True (each image at random) or a boolean mask of the images to mirror.
    `size`: the side of the square window (default: the input's own height and width)."""
    n, _, h, w = x.shape
    ch, cw = (h, w) if size is None else (size, size)
    xp = F.pad(x, (pad, pad, pad, pad))
    oy = torch.randint(0, 2 * pad + h - ch + 1, (n,), generator=g).to(x.device)
    ox = torch.randint(0, 2 * pad + w - cw + 1, (n,), generator=g).to(x.device)
    if flip is True:
        flip = _rand(n, g, x.device) < 0.5
    return _gather_crop(xp, oy, ox, ch, cw, flip=flip if isinstance(flip, torch.Tensor) else None)


@AUGMENTATIONS.register("crop_padding")
def random_crop_padded(x: torch.Tensor, pad: int, g: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` pixels, then crop back to the input size at a random offset."""
    return x if pad <= 0 else _padded_crop(x, pad, g, flip=False)


def random_crop_padded_flip(x: torch.Tensor, pad: int, g: torch.Generator,
                            flip: Optional[torch.Tensor] = None, size: Optional[int] = None) -> torch.Tensor:
    """`random_crop_padded` then `random_hflip`, in one gather: the flip costs no pass of its own.

    `flip`, a boolean mask over the batch, says which images to mirror instead of a coin toss;
    `size` crops a smaller square window of the padded images (the early epochs' crop)."""
    return _padded_crop(x, pad, g, flip=True if flip is None else flip, size=size)


def alternating_flips(index: torch.Tensor, epoch: int, seed: int, n: int) -> torch.Tensor:
    """Which of the images `index` (into a set of `n`) to mirror in `epoch`: a seeded random half
    in epoch 0, then each image's choice inverted on every other epoch (Jordan 2024, airbench)."""
    first = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
    return first.to(index.device)[index] ^ bool(epoch % 2)


AUGMENTATIONS.register("translate")(random_crop_padded)  # a shift with zero fill is a padded crop


@AUGMENTATIONS.register("crop_size")
def random_crop(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Crop a random size x size window from each image (training side of crop/center-crop)."""
    n, _, h, w = x.shape
    oy = torch.randint(0, h - size + 1, (n,), generator=g).to(x.device)
    ox = torch.randint(0, w - size + 1, (n,), generator=g).to(x.device)
    return _gather_crop(x, oy, ox, size, size)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The evaluation side of `random_crop`: the central size x size window."""
    h, w = x.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return x[..., top : top + size, left : left + size]


@AUGMENTATIONS.register("hflip")
def random_hflip(x: torch.Tensor, enabled: bool, g: torch.Generator) -> torch.Tensor:
    """Mirror each image left-right with probability 0.5."""
    if not enabled:
        return x
    flip = (_rand(x.shape[0], g, x.device) < 0.5)[:, None, None, None]
    return torch.where(flip, x.flip(3), x)


@AUGMENTATIONS.register("rotate")
def random_rotate(x: torch.Tensor, degrees: float, g: torch.Generator) -> torch.Tensor:
    """Rotate each float image by U(-degrees, degrees) about its center, bilinear, zero fill."""
    if degrees <= 0:
        return x
    n = x.shape[0]
    a = (_rand(n, g, x.device) * 2 - 1) * math.radians(degrees)
    cos, sin, zero = a.cos(), a.sin(), torch.zeros_like(a)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@AUGMENTATIONS.register("zoom")
def random_zoom(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Zoom each float image in or out by a factor of U(1 - amount, 1 + amount) about its center
    (Keras' RandomZoom, report 000), bilinear, zero fill where it zooms out."""
    if amount <= 0:
        return x
    n = x.shape[0]
    scale = 1 / (1 + (_rand(n, g, x.device) * 2 - 1) * amount)  # the sampling grid shrinks to zoom in
    zero = torch.zeros_like(scale)
    theta = torch.stack([torch.stack([scale, zero, zero], 1), torch.stack([zero, scale, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@AUGMENTATIONS.register("brightness")
def random_brightness(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Multiply each float image (0..1) by 1 + U(-amount, amount)."""
    if amount <= 0:
        return x
    f = 1 + (_rand(x.shape[0], g, x.device) * 2 - 1) * amount
    return (x * f[:, None, None, None].to(x.dtype)).clamp_(0, 1)


@AUGMENTATIONS.register("contrast")
def random_contrast(x: torch.Tensor, amount: float, g: torch.Generator) -> torch.Tensor:
    """Scale each float image's deviation from its mean by 1 + U(-amount, amount)."""
    if amount <= 0:
        return x
    f = (1 + (_rand(x.shape[0], g, x.device) * 2 - 1) * amount)[:, None, None, None].to(x.dtype)
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - m) * f + m).clamp_(0, 1)


@AUGMENTATIONS.register("noise")
def gaussian_noise(x: torch.Tensor, std: float, g: torch.Generator) -> torch.Tensor:
    """Add N(0, std^2) noise (normalized units)."""
    if std <= 0:
        return x
    return x + torch.randn(x.shape, generator=g).to(x.device, x.dtype) * std


@AUGMENTATIONS.register("cutout")
def cutout(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Zero a size x size square at a random center in each image (it may hang over the edge)."""
    if size <= 0:
        return x
    n, _, h, w = x.shape
    cy = torch.randint(0, h, (n,), generator=g).to(x.device)
    cx = torch.randint(0, w, (n,), generator=g).to(x.device)
    top, left = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_y = (ys >= top[:, None]) & (ys < top[:, None] + size)  # (N, H)
    in_x = (xs >= left[:, None]) & (xs < left[:, None] + size)  # (N, W)
    mask = (in_y[:, :, None] & in_x[:, None, :])[:, None]  # (N, 1, H, W)
    return x.masked_fill(mask, 0.0)


# TrivialAugment-Wide (Müller & Hutter 2021): each image gets one op drawn uniformly from these,
# at a magnitude drawn uniformly from 0 .. the op's widest value (torchvision's
# TrivialAugmentWide ranges), times `strength`. Signed ops take either sign with equal odds.
TRIVIAL_OPS = ("identity", "shear_x", "shear_y", "translate_x", "translate_y", "rotate", "brightness",
               "color", "contrast", "sharpness", "posterize", "solarize", "autocontrast", "equalize")
_TRIVIAL_SIGNED = {"shear_x": 0.99, "shear_y": 0.99, "translate_x": 32.0, "translate_y": 32.0, "rotate": 135.0,
                   "brightness": 0.99, "color": 0.99, "contrast": 0.99, "sharpness": 0.99}


def _trivial_op(x: torch.Tensor, op: str, m: float) -> torch.Tensor:
    """One TrivialAugment op on a uint8 batch, via torchvision. `m` is in the op's own units for the
    signed ops (shear as a slope, shifts in pixels, rotation in degrees, colour ops as factor - 1)
    and a 0..1 share of the widest setting for posterize and solarize."""
    from torchvision.transforms.v2 import functional as TF  # on first use: runs without it skip the import

    nearest = TF.InterpolationMode.NEAREST  # as TrivialAugmentWide: no blur, zero fill
    if op in ("shear_x", "shear_y"):
        deg = math.degrees(math.atan(m))
        return TF.affine(x, angle=0.0, translate=[0, 0], scale=1.0, interpolation=nearest, center=[0, 0],
                         shear=[deg, 0.0] if op == "shear_x" else [0.0, deg])
    if op in ("translate_x", "translate_y"):
        return TF.affine(x, angle=0.0, translate=[int(m), 0] if op == "translate_x" else [0, int(m)],
                         scale=1.0, shear=[0.0, 0.0], interpolation=nearest)
    if op == "rotate":
        return TF.rotate(x, angle=m, interpolation=nearest)
    if op in ("brightness", "color", "contrast", "sharpness"):
        fn = {"brightness": TF.adjust_brightness, "color": TF.adjust_saturation,
              "contrast": TF.adjust_contrast, "sharpness": TF.adjust_sharpness}[op]
        return fn(x, 1.0 + m)
    if op == "posterize":
        return TF.posterize(x, int(round(8 - 6 * m)))  # 8 bits at magnitude 0, 2 at the widest
    if op == "solarize":
        return TF.solarize(x, 255.0 * (1.0 - m))  # invert the pixels above the threshold
    if op == "autocontrast":
        return TF.autocontrast(x)
    if op == "equalize":
        return TF.equalize(x)
    return x


@AUGMENTATIONS.register("trivial")
def trivial_augment(x: torch.Tensor, strength: float, g: torch.Generator) -> torch.Tensor:
    """TrivialAugment-Wide on a uint8 batch: one random op per image, magnitudes scaled by `strength` (0..1).

    The images that drew the same op go through it together, at one magnitude for the
    group (drawn anew for every batch): 14 torchvision calls per batch, not one per image.
    """
    if strength <= 0:
        return x
    n = x.shape[0]
    ops = torch.randint(0, len(TRIVIAL_OPS), (n,), generator=g)
    mags = torch.randint(0, 31, (len(TRIVIAL_OPS),), generator=g).double() / 30 * strength  # 31 bins, as torchvision
    signs = torch.where(torch.rand(len(TRIVIAL_OPS), generator=g) < 0.5, -1.0, 1.0)
    out = x.clone()
    for k, op in enumerate(TRIVIAL_OPS):
        idx = (ops == k).nonzero().flatten()
        if op == "identity" or len(idx) == 0:
            continue
        m = mags[k].item()
        if op in _TRIVIAL_SIGNED:
            m *= _TRIVIAL_SIGNED[op] * signs[k].item()
        idx = idx.to(x.device)
        out[idx] = _trivial_op(x[idx], op, m)
    return out


# Order of application; each stage works in the units named.
UINT8_STAGE = ("crop_padding", "translate", "crop_size", "hflip")
FLOAT01_STAGE = ("rotate", "zoom", "brightness", "contrast")
NORMALIZED_STAGE = ("noise", "cutout")
