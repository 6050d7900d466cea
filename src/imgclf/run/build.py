"""One builder of a training run, shared by `imgclf train`, in-memory fitting and sweeps:
data, a seeded model checked against its parameter cap, plugins and the Trainer."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ..config.schema import ExperimentConfig
from ..data import load_raw, make_splits
from ..data.on_disk import DiskImages
from ..data.splits import Split, Splits
from ..engine.plugins import Context, Plugin, build_plugins
from ..engine.trainer import Trainer
from ..models import build_model
from ..models.pretrained import apply_strategy, check_trainable, pretrain, weights_stats
from ..models.sizing import check_max_params, model_input_shape, trainable_params
from ..models.strategies import strategy_attr
from ..runtime.distributed import World, shard_batches


def prepare_data(cfg: ExperimentConfig) -> Splits:
    """Decode (or read cached) data and make the seeded splits; with data.normalization=weights, the
    pretrained weights' statistics replace the train split's."""
    splits = make_splits(load_raw(cfg.data), cfg.data)
    if cfg.data.normalization == "weights":
        mean, std = weights_stats(cfg, splits.shape[0])
        splits = replace(splits, mean=mean, std=std)
    return splits


def configured_model(cfg: ExperimentConfig, in_shape: tuple[int, int, int], classes: int, weights: bool = True,
                     log: Callable[[str], None] = lambda m: None) -> nn.Module:
    """The config's model: built, its pretrained weights loaded (with `weights`; their SHA-256 recorded
    in cfg.model.pretrained_sha256) and its layers frozen as model.strategy says."""
    model = build_model(cfg.model.name, cfg.model.options, in_shape, classes)
    check_trainable(model, cfg)
    if weights:
        digest = pretrain(model, cfg, log)
        if digest:
            cfg.model.pretrained_sha256 = digest
    return apply_strategy(model, cfg)


def seeded_model(cfg: ExperimentConfig, splits: Splits, weights: bool = True,
                 log: Callable[[str], None] = lambda m: None) -> tuple[nn.Module, tuple[int, int, int]]:
    """The run's model (the same seed gives the same initial weights) and its input shape, within train.max_params."""
    in_shape = model_input_shape(cfg, splits.shape)
    torch.manual_seed(cfg.train.seed)
    model = configured_model(cfg, in_shape, len(splits.classes), weights, log)
    check_max_params(cfg, trainable_params(model))  # exact now that the data told the class count
    return model, in_shape


def to_device(s: Splits, device: torch.device) -> Splits:
    """The splits' uint8 tensors on `device` (moved once: on a GPU nothing crosses the bus per batch)."""
    if device.type == "cpu":
        return s

    def mv(sp):  # images left on disk stay there: each batch is read, then moved (data/loader.py)
        return None if sp is None else Split(sp.x if isinstance(sp.x, DiskImages) else sp.x.to(device),
                                             sp.y.to(device))

    return replace(s, train=mv(s.train), val=mv(s.val), test=mv(s.test))


def build_trainer(cfg: ExperimentConfig, model: nn.Module, splits: Splits, device: torch.device, *, run_dir: Optional[Path] = None,
                  log: Callable[[str], None] = lambda m: None, progress: bool = False,
                  plugins: Sequence[Plugin] = (), extra_state: Optional[dict] = None,
                  world: World = World()) -> Trainer:
    """A Trainer for `model` on `device`, with the plugins the config asks for and the caller's `plugins`.

    In a data-parallel `world` of several processes only rank 0 writes (run folder, log), the
    model trains wrapped in DistributedDataParallel, and each process takes its shard of every batch."""
    if world.size > 1 and cfg.train.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(device)
    splits = to_device(splits, device)
    if not world.main:
        run_dir, log, progress = None, (lambda m: None), False
    found = build_plugins(Context(cfg, splits, run_dir, log, progress), plugins)
    trainer = Trainer(cfg, model, splits, device, found, extra_state)
    if world.size > 1:
        # A layer that stops training mid-run (a whitening bias frozen after some epochs) leaves
        # a parameter without a gradient, which DDP must be told to expect.
        changing = any(hasattr(m, "set_epoch") for m in model.modules()) or strategy_attr(cfg.model, "changes_trainable", False)
        ddp = DistributedDataParallel(trainer.model, device_ids=[device.index] if device.type == "cuda" else None,
                                      find_unused_parameters=changing)
        trainer.forward = torch.compile(ddp) if cfg.train.compile else ddp
        trainer.feed = lambda it: shard_batches(it, world)
    return trainer
