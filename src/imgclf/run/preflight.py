"""Preflight: every check of an experiment that needs no image, run before anything is decoded
or downloaded, so that a bad config fails in about a second.

The config itself (types, ranges, names, pairs of options) is checked when it is loaded
(config/rules.py); here the parts meet: the device, the model built on the data set's known input
shape (each registered data set declares it), a forward pass of that shape and of any
smaller training crop, and the cap on its parameters (train.max_params).
"""
from __future__ import annotations

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..core.errors import ConfigError
from ..models.pretrained import weights_file
from ..models.sizing import check_max_params, known_shape, model_input_shape, trainable_params
from ..models.strategies import strategy_attr
from ..runtime.device import pick_device
from ..runtime.distributed import launched
from .build import configured_model


def _probe(model: nn.Module, shape: tuple[int, int, int], what: str, fix: str) -> None:
    """A forward pass of two zero images of `shape` in evaluation mode (no statistics change)."""
    try:
        with torch.no_grad():
            model(torch.zeros(2, *shape))
    except RuntimeError as e:
        raise ConfigError(f"{what}: the model cannot take {'x'.join(map(str, shape))} inputs "
                          f"({str(e).splitlines()[0][:80]}); {fix}") from None


def check_early_crop(cfg: ExperimentConfig, model: nn.Module, shape: tuple[int, int, int]) -> None:
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


def preflight(cfg: ExperimentConfig) -> None:
    """Run every check that needs no image; raise a one-line ImgclfError for the first that fails."""

    device = pick_device(cfg.train.device)
    if cfg.train.sync_bn and device.type != "cuda":
        raise ConfigError("train.sync_bn: PyTorch's SyncBatchNorm runs on CUDA GPUs only; remove it to train on "
                          "CPUs (each process then normalizes with its own batch's statistics)")
    if strategy_attr(cfg.model, "features_once", False) and launched():
        raise ConfigError("model.strategy=linear-probe trains a head in seconds on one process: run it without "
                          "torchrun")
    shape, classes = known_shape(cfg.data)
    in_shape = model_input_shape(cfg, shape)
    if cfg.model.pretrained not in (None, "none"):  # found (or fetched) now, not after decoding
        weights_file(cfg.model.pretrained, cfg.model.name, cfg.data.download)
    try:
        model = configured_model(cfg, in_shape, classes or 2, weights=False).eval()  # the run's own builder, no weights read
    except (ValueError, RuntimeError, TypeError, ZeroDivisionError) as e:  # a builder's own complaint
        opts = ", ".join(f"{k}={v!r}" for k, v in cfg.model.options.items()) or "its defaults"
        raise ConfigError(f"model {cfg.model.name} cannot be built with {opts} for {'x'.join(map(str, in_shape))} "
                          f"inputs ({str(e).splitlines()[0][:100] if str(e) else type(e).__name__}); "
                          f"check the model options") from None
    check_max_params(cfg, trainable_params(model), at_least=classes is None)
    _probe(model, in_shape, f"model {cfg.model.name}",
           "choose model options that fit, or resize the images with data.image_size")
    check_early_crop(cfg, model, in_shape)
    if cfg.train.tensorboard:
        try:
            import torch.utils.tensorboard  # noqa: F401
        except ImportError:
            raise ConfigError("train.tensorboard needs the tensorboard package: pip install 'imgclf[tensorboard]'") \
                from None
