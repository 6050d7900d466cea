"""Data sets decoded once into uint8 tensors, cached on disk, split, augmented in batches."""
from . import cifar, digits, folder, idx  # noqa: F401  (register the data sets)
from .registry import DATASETS, RawData
from .splits import Splits, make_splits

__all__ = ["DATASETS", "RawData", "Splits", "make_splits", "load_raw"]


def load_raw(cfg) -> RawData:
    """Decode (or read from the cache) the data set named by a DataConfig."""
    return DATASETS.get(cfg.name)(cfg)
