"""What a config costs before any image is read: the input shape its model sees, its trainable
parameters and the cap they must fit under (train.max_params). Shared by the builder, the preflight,
the summary and the studies' cost model, and importing none of them."""
from __future__ import annotations

from typing import Optional

from torch import nn

from ..config.schema import DataConfig, ExperimentConfig
from ..core.errors import BudgetError, ConfigError
from ..data import DATASETS
from ..data.adapt import target_shape


def known_shape(data_cfg: DataConfig) -> tuple[tuple[int, int, int], Optional[int]]:
    """The (C, H, W) the model sees a data set's images at (data.channels and data.image_size applied) and
    its class count (None when only the data tell), from the config alone."""
    shape = DATASETS.attr(data_cfg.name, "shape")
    shape = tuple(shape(data_cfg) if callable(shape) else shape)
    return target_shape(data_cfg, shape), DATASETS.attr(data_cfg.name, "classes")


def model_input_shape(cfg: ExperimentConfig, data_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape the model sees: the data's, or the crop's when training crops."""
    c, h, w = data_shape
    crop = cfg.data.augment.crop_size
    if crop:
        if crop > min(h, w):
            raise ConfigError(f"data.augment.crop_size: {crop} is larger than the {h}x{w} images; use at most {min(h, w)}")
        return (c, crop, crop)
    return (c, h, w)


def trainable_params(model: nn.Module) -> int:
    """Parameters the optimizer updates (frozen layers excluded)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_max_params(cfg: ExperimentConfig, params: int, at_least: bool = False) -> None:
    """Refuse a model over train.max_params; `at_least` when the count is a lower bound (classes unknown)."""
    if cfg.train.max_params is not None and params > cfg.train.max_params:
        raise BudgetError(
            f"model {cfg.model.name!r} has {'at least ' if at_least else ''}{params:,} trainable parameters, over "
            f"the cap of {cfg.train.max_params:,} (train.max_params); choose a smaller model or raise train.max_params"
        )
