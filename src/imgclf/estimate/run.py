"""A run's cost on this machine, estimated before it runs: a few timed training steps of its own
model at its own batch size, times the steps its epochs take, plus a tenth for data and
validation. Only as good as the machine is free while it times. The sweeps' and the studies' cost
models build on it. What is timed is kept in the CostModel that timed it, never in the module: a
caller (a study's plan, a listing) makes one, and a timing taken on a busy machine dies with it."""
from __future__ import annotations

import json
import math
import time
from typing import Callable, Optional

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..data import DATASETS
from ..models.sizing import known_shape, model_input_shape
from ..models.strategies import strategy_attr
from ..run.build import configured_model

OVERHEAD = 1.1  # data, augmentation and the validation pass, on top of the training steps
# train.test_each_epoch adds a test pass per epoch: forward only (about a third of a training step
# per image), over a test split taken as a sixth of the training images (CIFAR-10: 10,000 to 50,000
# less validation), so about 1/18 of an epoch's steps.
EPOCH_TEST = 1 / 18
UNKNOWN_IMAGES = 10_000  # training images assumed of a data set whose size only its files tell (a folder)


class CostModel:
    """Seconds per training step, each measured once on this machine and kept here; `step_s` gives
    every step that many seconds instead of timing it (a known measurement)."""

    def __init__(self, step_s: Optional[float] = None):
        self.step_s = step_s
        self.measured: dict[str, float] = {}  # seconds per step, by key() of what was timed

    @staticmethod
    def key(kind: str, *what) -> str:
        """The one key of a measurement: its kind ('run', 'cohort') and what its step depends on."""
        return json.dumps([kind, *what], sort_keys=True, default=str)

    def step(self, key: str, measure: Callable[[], float]) -> float:
        """Seconds of one step of `key`: measured by `measure()` the first time, then recalled."""
        if self.step_s is not None:
            return self.step_s
        if key not in self.measured:
            self.measured[key] = measure()
        return self.measured[key]

    def step_seconds(self, cfg: ExperimentConfig) -> float:
        """Seconds of one training step of `cfg`'s model at its batch size (random data, timed here)."""
        shape, classes = known_shape(cfg.data)
        in_shape = model_input_shape(cfg, shape)
        key = self.key("run", cfg.model.name, cfg.model.options, cfg.model.strategy, in_shape, cfg.train.batch_size)
        return self.step(key, lambda: _time_step(cfg, in_shape, classes or 10))

    def run_seconds(self, cfg: ExperimentConfig) -> float:
        """Estimated training seconds of one config (its time budget caps it)."""
        n = train_images(cfg)
        steps = cfg.train.epochs * math.ceil(n / cfg.train.batch_size)
        if strategy_attr(cfg.model, "features_once", False):  # one pass for the features, then the head alone
            steps = math.ceil(n / cfg.train.batch_size)
        seconds = steps * self.step_seconds(cfg) * (OVERHEAD + (EPOCH_TEST if cfg.train.test_each_epoch else 0.0))
        return min(seconds, cfg.train.time_budget) if cfg.train.time_budget else seconds


def _time_step(cfg: ExperimentConfig, in_shape: tuple, classes: int) -> float:
    """Seconds of one training step of `cfg`'s model on random data, the faster of two thread counts."""
    torch.manual_seed(0)
    model = configured_model(cfg, in_shape, classes, weights=False).train()
    x = torch.randn(cfg.train.batch_size, *in_shape)
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):  # as the Trainer runs convolutions
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, classes, (cfg.train.batch_size,))
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    return fastest(lambda: min(_timed_steps(model, opt, x, y)))


def fastest(timed: Callable[[], float]) -> float:
    """The faster of `timed()` on torch's threads and on one thread.

    On a busy machine torch's threads spin against the other work: a step measured 80x slower
    (368 ms against 4.6 ms, the Keras CNN at batch 32 beside a sweep). On a free machine the
    default threads are at least as fast, so the faster of the two is the machine's own speed."""
    threads = torch.get_num_threads()
    times = []
    try:
        for n in sorted({threads, 1}, reverse=True):
            torch.set_num_threads(n)
            times.append(timed())
    finally:
        torch.set_num_threads(threads)
    return min(times)


def _timed_steps(model, opt, x, y, steps: int = 3) -> list[float]:
    """Seconds of each training step but the first (which warms up)."""
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - t)
    return times[1:]


def train_images(cfg: ExperimentConfig) -> int:
    """Images one epoch trains on: the data set's, less the validation split, capped by data.max_train."""
    n = int((DATASETS.attr(cfg.data.name, "train_images") or UNKNOWN_IMAGES) * (1 - cfg.data.val_fraction))
    return min(n, cfg.data.max_train or n)


def words(seconds: float) -> str:
    """A duration as a person says it: 45 s, 20 min, 1.5 h."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
