"""The rules of a config that consult the registries (a model, data set, optimizer, schedule,
strategy or test-time augmentation must be registered) and those that tie sections together.

This module sits above models, data, engine and evaluation, whose registries it reads; the schema
it checks against (config/schema.py) sits below them all.
"""
from __future__ import annotations

import dataclasses
import typing

from ..core.errors import ConfigError
from ..data.registry import DATASETS
from ..engine.optim import OPTIMIZERS, SCHEDULES
from ..evaluation.evaluate import TTA
from ..models import MODELS, check_model_options
from ..models.strategies import STRATEGIES, has_pretrained, strategy_attr
from .fields import build_dataclass, coerce
from .schema import TRANSFER_KEYS, ExperimentConfig, ModelConfig

# The registries the schema's Choice annotations name, by kind.
REGISTRIES = {r.kind: r for r in (OPTIMIZERS, SCHEDULES, TTA, STRATEGIES, MODELS, DATASETS)}


def validate(raw: dict) -> ExperimentConfig:
    """Check every value of a merged config mapping and the rules that tie sections together."""

    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, dict):
        raise ConfigError(f"model: expected a mapping of name and options (e.g. name: cnn), got {model_raw!r}")
    model_raw = dict(model_raw)
    model_name = coerce(model_raw.pop("name", None), str, "model.name")
    hints = typing.get_type_hints(ModelConfig, include_extras=True)
    transfer = {k: coerce(model_raw.pop(k), hints[k], f"model.{k}", REGISTRIES) for k in TRANSFER_KEYS if k in model_raw}
    raw = {**raw, "model": ModelConfig()}
    cfg: ExperimentConfig = build_dataclass(ExperimentConfig, raw, "", REGISTRIES)
    MODELS.get(model_name)
    cfg.model = ModelConfig(name=model_name, options=check_model_options(model_name, model_raw), **transfer)
    m = cfg.model
    if has_pretrained(m) and strategy_attr(m, "random_weights", False):
        raise ConfigError(f"model.strategy={m.strategy} re-initialises the weights: drop model.pretrained, or choose "
                          "model.strategy=finetune or freeze")
    if cfg.data.normalization is None:
        cfg.data.normalization = "weights" if m.pretrained == "imagenet" else "dataset"
    if (cfg.data.mean is not None or cfg.data.std is not None) and cfg.data.normalization != "dataset":
        raise ConfigError(f"data.mean and data.std replace the training split's statistics of "
                          f"data.normalization=dataset; with {cfg.data.normalization} they would be ignored: drop "
                          f"them, or set data.normalization=dataset")
    if cfg.data.normalization == "weights" and m.pretrained in (None, "none"):
        raise ConfigError("data.normalization=weights uses the pretrained weights' statistics: set model.pretrained, "
                          "or choose data.normalization=dataset")
    if strategy_attr(m, "needs_pretrained", False) and not has_pretrained(m):
        raise ConfigError(f"model.strategy={m.strategy} trains a head on pretrained features: set model.pretrained "
                          "(imagenet, a weights file or a run)")
    if strategy_attr(m, "features_once", False):
        on = [k for k, v in dataclasses.asdict(cfg.data.augment).items() if v and k != "early_crop_share"]
        if on:
            raise ConfigError(f"model.strategy={m.strategy} computes each image's features once, so training "
                              f"augmentation cannot apply: drop data.augment.{on[0]}, or choose model.strategy=freeze")
    if m.trainable and not strategy_attr(m, "takes_trainable", False):
        raise ConfigError("model.trainable names what trains under model.strategy=freeze; set it, or drop "
                          "model.trainable")
    if cfg.data.folds is not None and cfg.data.fold >= cfg.data.folds:
        raise ConfigError(f"data.fold={cfg.data.fold} is not one of the {cfg.data.folds} folds (0 to "
                          f"{cfg.data.folds - 1}); lower data.fold or raise data.folds")
    if cfg.data.folds is None and cfg.data.fold:
        raise ConfigError("data.fold picks a fold of a cross-validation: set data.folds too (or train with --folds K)")
    DATASETS.get(cfg.data.name)
    if cfg.data.name == "folder" and not cfg.data.path:
        raise ConfigError("data.path: the folder data set needs a path (a folder or a .tar.gz); set data.path=...")
    if cfg.optim.nesterov and (not OPTIMIZERS.attr(cfg.optim.name, "nesterov") or cfg.optim.momentum <= 0):
        raise ConfigError(f"optim.nesterov: needs optim.momentum > 0 and an optimizer with Nesterov momentum "
                          f"({', '.join(OPTIMIZERS.names(nesterov=True))})")
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"optim.betas: {cfg.optim.betas!r} must hold exactly two numbers, e.g. [0.9, 0.999]")
    a = cfg.data.augment
    if a.crop_size is not None and a.crop_padding:
        raise ConfigError("data.augment: use crop_padding or crop_size, not both")
    if a.early_crop is not None and not (a.crop_padding or a.translate):
        raise ConfigError(f"data.augment.early_crop={a.early_crop} needs data.augment.crop_padding > 0 or "
                          f"translate > 0 (the small crops are windows of the shifted image); set one or remove early_crop")
    if a.alternate_flip and not a.hflip:
        raise ConfigError("data.augment.alternate_flip: needs data.augment.hflip=true")
    return cfg


