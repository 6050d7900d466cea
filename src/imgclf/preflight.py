"""Preflight: every check of an experiment that needs no image, run before anything is decoded
or downloaded, so that a bad config fails in about a second.

The config itself (types, ranges, names, pairs of options) is checked when it is loaded
(config.py); here the parts meet: the device, the model built on the data set's known input
shape (each registered data set declares it), a forward pass of that shape and of any
smaller training crop, and the parameter budget.
"""
from __future__ import annotations

import os
from typing import Optional

import torch
from torch import nn

from .errors import BudgetError, ConfigError


def pick_device(name: str) -> torch.device:
    """'auto' means the GPU when there is one; under torchrun, each process's own GPU (LOCAL_RANK)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA GPU is available; use train.device=auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device(name)


def known_shape(data_cfg) -> tuple[tuple[int, int, int], Optional[int]]:
    """The (C, H, W) the model sees a data set's images at (data.channels and data.image_size applied) and
    its class count (None when only the data tell), from the config alone."""
    from .data import DATASETS

    from .data.adapt import target_shape

    shape = DATASETS.attr(data_cfg.name, "shape")
    shape = tuple(shape(data_cfg) if callable(shape) else shape)
    return target_shape(data_cfg, shape), DATASETS.attr(data_cfg.name, "classes")


def model_input_shape(cfg, data_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape the model sees: the data's, or the crop's when training crops."""
    c, h, w = data_shape
    crop = cfg.data.augment.crop_size
    if crop:
        if crop > min(h, w):
            raise ConfigError(f"data.augment.crop_size: {crop} is larger than the {h}x{w} images; use at most {min(h, w)}")
        return (c, crop, crop)
    return (c, h, w)


def trainable_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_budget(cfg, params: int, at_least: bool = False) -> None:
    """Refuse a model over train.max_params; `at_least` when the count is a lower bound (classes unknown)."""
    if cfg.train.max_params is not None and params > cfg.train.max_params:
        raise BudgetError(
            f"model {cfg.model.name!r} has {'at least ' if at_least else ''}{params:,} trainable parameters, over "
            f"the budget of {cfg.train.max_params:,} (train.max_params); choose a smaller model or raise the budget"
        )


def _probe(model: nn.Module, shape: tuple[int, int, int], what: str, fix: str) -> None:
    """A forward pass of two zero images of `shape` in evaluation mode (no statistics change)."""
    try:
        with torch.no_grad():
            model(torch.zeros(2, *shape))
    except RuntimeError as e:
        raise ConfigError(f"{what}: the model cannot take {'x'.join(map(str, shape))} inputs "
                          f"({str(e).splitlines()[0][:80]}); {fix}") from None


def check_early_crop(cfg, model: nn.Module, shape: tuple[int, int, int]) -> None:
    """An early crop must be smaller than the images and a size the model takes."""
    a = cfg.data.augment
    if a.early_crop is None:
        return
    side = min(shape[-2:])
    if a.early_crop >= side:
        raise ConfigError(f"data.augment.early_crop={a.early_crop} must be smaller than the images' side "
                          f"({side} pixels); lower it or remove it")
    _probe(model, (shape[0], a.early_crop, a.early_crop), f"data.augment.early_crop={a.early_crop}",
           "use a model that ends in global pooling (conv-groups, resnet) or remove early_crop")


def preflight(cfg) -> None:
    """Run every check that needs no image; raise a one-line ImgclfError for the first that fails."""

    device = pick_device(cfg.train.device)
    if cfg.train.sync_bn and device.type != "cuda":
        raise ConfigError("train.sync_bn: PyTorch's SyncBatchNorm runs on CUDA GPUs only; remove it to train on "
                          "CPUs (each process then normalizes with its own batch's statistics)")
    from .distributed import launched

    if cfg.model.strategy == "linear-probe" and launched():
        raise ConfigError("model.strategy=linear-probe trains a head in seconds on one process: run it without "
                          "torchrun")
    shape, classes = known_shape(cfg.data)
    in_shape = model_input_shape(cfg, shape)
    if cfg.model.pretrained not in (None, "none"):  # found (or fetched) now, not after decoding
        from .models.pretrained import weights_file

        weights_file(cfg.model.pretrained, cfg.model.name, cfg.data.download)
    from .build import configured_model  # the run's own builder, without reading weights

    try:
        model = configured_model(cfg, in_shape, classes or 2, weights=False).eval()
    except (ValueError, RuntimeError, TypeError, ZeroDivisionError) as e:  # a builder's own complaint
        opts = ", ".join(f"{k}={v!r}" for k, v in cfg.model.options.items()) or "its defaults"
        raise ConfigError(f"model {cfg.model.name} cannot be built with {opts} for {'x'.join(map(str, in_shape))} "
                          f"inputs ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__}); "
                          f"check the model options") from None
    check_budget(cfg, trainable_params(model), at_least=classes is None)
    _probe(model, in_shape, f"model {cfg.model.name}",
           "choose model options that fit, or resize the images with data.image_size")
    check_early_crop(cfg, model, in_shape)
    if cfg.train.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("train.tensorboard needs the tensorboard package: pip install 'imgclf[tensorboard]'") \
                from None
