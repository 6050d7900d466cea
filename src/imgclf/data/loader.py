"""Batches from in-memory uint8 tensors: index, augment and normalize whole batches.

No per-sample Python: an epoch is a permutation, each batch one gather. The
uint8 data live on the training device (moved once), so on a GPU nothing
crosses the bus but a few random numbers per batch.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Iterator, Optional

import torch

from . import augment as A
from .adapt import adapt
from .balance import balanced_order
from .splits import Split


class Transform:
    """uint8 batch -> normalized float batch, with training augmentation or the evaluation view."""

    def __init__(self, aug_cfg, normalization: str, mean: torch.Tensor, std: torch.Tensor,
                 shape: Optional[tuple[int, int, int]] = None):
        self.aug = aug_cfg
        self.shape = shape  # the (C, H, W) batches are adapted to first (data.channels, data.image_size)
        # "weights" normalizes as "dataset" does, with the pretrained weights' mean and std passed in
        self.normalization = "dataset" if normalization == "weights" else normalization
        self.mean = mean.view(1, -1, 1, 1)
        self.std = std.view(1, -1, 1, 1)
        # (x/255 - mean)/std as (x - 255 mean) * 1/(255 std): two in-place ops on uint8-converted floats
        self.shift = self.mean * 255.0
        self.scale = 1.0 / (self.std * 255.0)
        self.fused = normalization == "dataset" and not any(getattr(aug_cfg, n) for n in A.FLOAT01_STAGE)
        # The usual CIFAR pair, padded crop + flip, as one gather: the flip's own pass cost 16% of
        # the augmentation time (3.62 vs 3.05 ms per 341 CIFAR images, 2 cores).
        self.crop_flip = bool(aug_cfg.crop_padding and aug_cfg.hflip and not aug_cfg.translate and not aug_cfg.crop_size)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalization == "dataset":
            return (x - self.mean.to(x.device)) / self.std.to(x.device)
        if self.normalization == "centered":  # Normalize((0.5,) * C, (0.5,) * C): [0, 1] to [-1, 1]
            return x * 2.0 - 1.0
        if self.normalization == "per-image":
            # Per-image standardization; the std floor 1/sqrt(pixels) keeps flat images finite.
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            s = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(x[0].numel() ** -0.5)
            return (x - m) / s
        return x

    def train(self, x: torch.Tensor, g: torch.Generator, flip: Optional[torch.Tensor] = None,
              size: Optional[int] = None) -> torch.Tensor:
        """Augmented, normalized float32 batch for training; `flip` (a mask) replaces the random flips;
        `size` makes the crops smaller squares of that side (the early epochs' crop)."""
        x = adapt(x, self.shape)
        stage = A.UINT8_STAGE
        if self.crop_flip:
            x = A.random_crop_padded_flip(x, self.aug.crop_padding, g, flip, size=size)
            stage = ()
        elif flip is not None:
            stage = tuple(s for s in stage if s != "hflip")
        for name in stage:
            x = A.AUGMENTATIONS.get(name)(x, getattr(self.aug, name), g) if getattr(self.aug, name) else x
        if size is not None and not self.crop_flip:
            x = A.random_crop(x, size, g)
        if flip is not None and not self.crop_flip:
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if self.aug.trivial:
            x = A.trivial_augment(x, self.aug.trivial, g)  # on the uint8 crops, before any float pass
        if self.fused:
            x = x.float().sub_(self.shift.to(x.device)).mul_(self.scale.to(x.device))
            for name in A.NORMALIZED_STAGE:
                x = A.AUGMENTATIONS.get(name)(x, getattr(self.aug, name), g) if getattr(self.aug, name) else x
            return x
        x = x.float().div_(255.0)
        for name in A.FLOAT01_STAGE:
            x = A.AUGMENTATIONS.get(name)(x, getattr(self.aug, name), g) if getattr(self.aug, name) else x
        x = self._normalize(x)
        for name in A.NORMALIZED_STAGE:
            x = A.AUGMENTATIONS.get(name)(x, getattr(self.aug, name), g) if getattr(self.aug, name) else x
        return x

    def eval(self, x: torch.Tensor, rounded: bool = True) -> torch.Tensor:
        """Normalized float32 batch for evaluation (center crop when training crops); see adapt for `rounded`."""
        x = adapt(x, self.shape, rounded)
        if self.aug.crop_size:
            x = A.center_crop(x, self.aug.crop_size)
        if x.shape[1] > 1:  # NHWC, the layout the convolutions prefer (see Trainer)
            x = x.contiguous(memory_format=torch.channels_last)
        if self.fused:
            return x.float().sub_(self.shift.to(x.device)).mul_(self.scale.to(x.device))
        return self._normalize(x.float().div_(255.0))

    def to_dict(self) -> dict:
        return {"augment": dataclasses.asdict(self.aug), "normalization": self.normalization,
                "mean": self.mean.flatten().tolist(), "std": self.std.flatten().tolist()}


# Training batches are augmented in chunks of about this many bytes of float32 images: at
# small batch sizes one call per chunk instead of per batch saves the fixed cost of the ten
# or so small ops augmentation launches (measured: batch 16, wide-deep-dropout, 2 cores).
CHUNK_BYTES = 4 << 20


def batches(split: Split, batch_size: int, transform: Transform, device: torch.device, *,
            train: bool, generator: Optional[torch.Generator] = None, epoch: int = 0,
            seed: int = 0, crop: Optional[int] = None,
            balanced: Optional[int] = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (inputs, labels) batches of a split on `device`; shuffled and augmented when `train`.

    `epoch` and `seed` set the flips when the augmentation alternates them; `crop` sets the side
    of smaller training crops (see Transform.train); `balanced` (the class count) draws an epoch's
    images class-balanced, with replacement (data.sampler: balanced), instead of a permutation."""
    n = len(split)
    x, y = split.x, split.y
    if not train:
        for i in range(0, n, batch_size):
            yield transform.eval(x[i : i + batch_size].to(device, non_blocking=True)), \
                y[i : i + batch_size].to(device, non_blocking=True)
        return
    if balanced:
        order = balanced_order(y, balanced, n, generator).to(x.device)
    else:
        order = torch.randperm(n, generator=generator).to(x.device)
    stop = kept_count(n, batch_size)
    per_image = 4 * (math.prod(transform.shape) if transform.shape else x[0].numel())  # float32 bytes, adapted
    chunk = batch_size * max(1, CHUNK_BYTES // (per_image * batch_size))
    flips = A.alternating_flips(order, epoch, seed, n) if transform.aug.alternate_flip else None
    for i in range(0, stop, chunk):
        idx = order[i : min(i + chunk, stop)]
        flip = flips[i : i + len(idx)] if flips is not None else None
        xa = transform.train(x[idx].to(device, non_blocking=True), generator, flip, size=crop)
        ya = y[idx].to(device, non_blocking=True)
        for j in range(0, len(idx), batch_size):
            yield xa[j : j + batch_size], ya[j : j + batch_size]


def kept_count(n: int, batch_size: int) -> int:
    """Images an epoch of `n` trains on: a final batch of one image would break batch norm's
    training statistics, so it is dropped (the one rule every training path follows)."""
    return n - 1 if n % batch_size == 1 and n > 1 else n


def num_batches(n: int, batch_size: int, train: bool) -> int:
    """Batches of an epoch over `n` images (training drops a lone last image, see kept_count)."""
    stop = kept_count(n, batch_size) if train else n
    return (stop + batch_size - 1) // batch_size
