"""The data-set registry and the decoded form every data set returns."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config.schema import DataConfig
from ..core.registry import Registry

DATASETS: Registry[Callable] = Registry("data set")
SPLITS = ("train", "val", "test")  # a decoded data set's splits, in the order they are laid out


@dataclass
class RawData:
    """A decoded data set: images as uint8 (N, C, H, W), labels as int64 (N,)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: Optional[torch.Tensor]  # None when the source has no test split
    test_y: Optional[torch.Tensor]
    classes: list[str]
    val_x: Optional[torch.Tensor] = None  # a validation split the source provides (image folders)
    val_y: Optional[torch.Tensor] = None
    # Each image's name by split, what data.exclude and data.relabel lists name: an image folder's
    # relative paths (train/cat/0001.jpg); None where the source has no file names (split/index then).
    ids: Optional[dict[str, list[str]]] = None
    note: str = ""  # what data.exclude and data.relabel changed, for the run's log

    def split_ids(self, split: str) -> list[str]:
        """The names of a split's images ('train', 'val' or 'test'): their paths, else 'split/index'."""
        if self.ids and split in self.ids:
            return self.ids[split]
        y = {"train": self.train_y, "val": self.val_y, "test": self.test_y}[split]
        return [] if y is None else [f"{split}/{i}" for i in range(len(y))]

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def cache_root() -> Path:
    """Folder of decoded caches and downloads: $IMGCLF_CACHE, default ~/.cache/imgclf."""
    return Path(os.environ.get("IMGCLF_CACHE") or Path.home() / ".cache" / "imgclf").expanduser()


def data_dir_for(cfg: DataConfig, name: str) -> Path:
    """Where a data set's source files are: data.data_dir, $IMGCLF_DATA_DIR/<name>, or the cache."""
    if cfg.data_dir:
        return Path(cfg.data_dir).expanduser()
    env = os.environ.get("IMGCLF_DATA_DIR")
    if env:
        base = Path(env).expanduser()
        return base / name if (base / name).is_dir() else base
    return cache_root() / "downloads" / name
