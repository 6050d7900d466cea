"""Data sets decoded once into uint8 tensors, cached on disk, split, augmented in batches."""
from ..config.schema import DataConfig
from . import cifar, digits, folder, idx  # noqa: F401  (register the data sets)
from .contract import check_raw
from .edits import apply_edits
from .registry import DATASETS, RawData
from .splits import Splits, make_splits

__all__ = ["DATASETS", "RawData", "Splits", "make_splits", "load_raw"]


def load_raw(cfg: DataConfig) -> RawData:
    """Decode (or read from the cache) the data set named by a DataConfig, checked against the data contract,
    less the images data.exclude lists and with data.relabel's classes."""
    where = cfg.path if cfg.name == "folder" else cfg.data_dir
    raw = check_raw(DATASETS.get(cfg.name)(cfg), cfg.name, DATASETS.attr(cfg.name, "classes"), where or "")
    edited = apply_edits(raw, cfg)
    # checked again: the lists may have left a single class
    return edited if edited is raw else check_raw(edited, cfg.name, None, f"after {edited.note}")
