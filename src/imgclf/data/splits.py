"""Train / val / test splits and the normalization statistics of the train split."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from ..config.schema import DataConfig
from ..core.errors import ConfigError, DataError
from .adapt import convert_channels, target_shape
from .on_disk import concat, rows
from .registry import RawData


@dataclass
class Split:
    """Images as uint8 (N, C, H, W) and labels as int64 (N,)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass
class Splits:
    train: Split
    val: Optional[Split]
    test: Split
    classes: list[str]
    mean: torch.Tensor  # per channel, in 0..1 units, from the train split only
    std: torch.Tensor
    view: Optional[tuple[int, int, int]] = None  # the (C, H, W) batches are adapted to (data/adapt.py)
    note: str = ""  # what data.exclude and data.relabel changed (RawData.note)

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape the model sees images at: the adapted one, else as decoded."""
        return tuple(self.view or self.train.x.shape[1:])  # type: ignore[return-value]

    def get(self, name: str) -> Split:
        """The split named 'train', 'val' or 'test'."""
        split = {"train": self.train, "val": self.val, "test": self.test}.get(name)
        if split is None:
            raise ConfigError(
                f"split {name!r} is not available; choose train or test"
                + ("" if name != "val" else " (this run has no validation split: data.val_fraction=0)")
            )
        return split


def _carve(x: torch.Tensor, y: torch.Tensor, fraction: float, seed: int) -> tuple[Split, Split]:
    """Split (x, y) into (rest, carved) with a seeded permutation; carved holds `fraction` of the items."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    n = int(round(len(y) * fraction))
    n = min(max(n, 1), len(y) - 1)
    keep, take = perm[n:].sort().values, perm[:n].sort().values
    return Split(rows(x, keep), y[keep]), Split(rows(x, take), y[take])


def fold_ids(y: torch.Tensor, folds: int, seed: int) -> torch.Tensor:
    """The fold (0..folds-1) of each item: stratified (each class dealt round-robin over the folds in a
    seeded random order, so every fold holds its share of every class, rare ones included)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    grouped = perm[torch.argsort(y[perm], stable=True)]  # class by class, random within each class
    counts = torch.bincount(y)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(y)) - starts[y[grouped]]  # position of each item within its class
    offset = torch.randint(folds, (len(counts),), generator=g)  # a class's first item lands in any fold
    out = torch.empty(len(y), dtype=torch.int64)
    out[grouped] = (rank + offset[y[grouped]]) % folds
    return out


def _subset(split: Split, n: int, seed: int) -> Split:
    """A seeded random `n` of a split, in their original order.

    Random, not the first n: image folders list the images class by class, so the
    first n would hold only the first classes.
    """
    if n >= len(split):
        return split
    return _carve(split.x, split.y, n / len(split), seed)[1]


def channel_stats(x: torch.Tensor, channels: Optional[int] = None,
                  chunk_bytes: int = 8 << 20) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images in 0..1 units (converted to `channels`), in float64 chunks
    of about `chunk_bytes` of images (a set on disk is never read whole)."""
    c = channels or x.shape[1]
    chunk = max(1, chunk_bytes // max(1, math.prod(x.shape[1:])))
    s = torch.zeros(c, dtype=torch.float64)
    s2 = torch.zeros(c, dtype=torch.float64)
    for i in range(0, len(x), chunk):
        b = convert_channels(x[i : i + chunk], c).to(torch.float64) / 255.0
        s += b.sum(dim=(0, 2, 3))
        s2 += (b * b).sum(dim=(0, 2, 3))
    n = len(x) * x.shape[2] * x.shape[3]
    mean = s / n
    std = (s2 / n - mean * mean).clamp_min(1e-12).sqrt()
    return mean.float(), std.float().clamp_min(1e-3)


def make_splits(raw: RawData, cfg: DataConfig) -> Splits:
    """Carve test (when the source has none) and val from train with seeded splits; compute stats."""
    if len(raw.train_y) < 2:
        raise DataError(f"the data set has only {len(raw.train_y)} training image(s); need at least 2")
    train = Split(raw.train_x, raw.train_y)
    if raw.test_x is None:
        train, test = _carve(train.x, train.y, cfg.test_fraction, cfg.split_seed + 1)
    else:
        test = Split(raw.test_x, raw.test_y)
    val: Optional[Split] = None
    if cfg.folds is not None:
        if raw.val_x is not None:  # every labelled image outside the test split takes part in the folds
            train = Split(concat(train.x, raw.val_x), torch.cat([train.y, raw.val_y]))
        if len(train) < cfg.folds:
            raise DataError(f"{len(train)} training images cannot make {cfg.folds} folds; lower --folds")
        fold = fold_ids(train.y, cfg.folds, cfg.split_seed + 5)
        keep, take = (fold != cfg.fold).nonzero().flatten(), (fold == cfg.fold).nonzero().flatten()
        if len(take) == 0 or len(keep) == 0:
            raise DataError(f"fold {cfg.fold} of {cfg.folds} holds {len(take)} of the {len(train)} training images; "
                            f"lower --folds")
        train, val = Split(rows(train.x, keep), train.y[keep]), Split(rows(train.x, take), train.y[take])
    elif raw.val_x is not None:
        val = Split(raw.val_x, raw.val_y)
    elif cfg.val_fraction > 0:
        if len(train) < 2:
            raise DataError("too few training images to carve a validation split; set data.val_fraction=0")
        train, val = _carve(train.x, train.y, cfg.val_fraction, cfg.split_seed)
    if cfg.max_train:
        train = _subset(train, cfg.max_train, cfg.split_seed + 2)
    if cfg.max_test:
        test = _subset(test, cfg.max_test, cfg.split_seed + 3)
        if val is not None:
            val = _subset(val, cfg.max_test, cfg.split_seed + 4)
    view = target_shape(cfg, tuple(train.x.shape[1:]))
    mean, std = train_stats(cfg, train.x, view[0])
    return Splits(train, val, test, list(raw.classes), mean, std, view, raw.note)


def train_stats(cfg: DataConfig, x, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and std that normalize a run training on images `x`: theirs, or data.mean
    and data.std where given. Of the adapted channels (a resize hardly moves them; a gray conversion does)."""
    mean, std = channel_stats(x, channels)
    for name, given in (("mean", cfg.mean), ("std", cfg.std)):
        if given is not None and len(given) != channels:
            raise DataError(f"data.{name}: {len(given)} values for {channels} channel(s); give one per channel")
    mean = torch.tensor(cfg.mean, dtype=torch.float32) if cfg.mean is not None else mean
    std = torch.tensor(cfg.std, dtype=torch.float32) if cfg.std is not None else std
    return mean, std
