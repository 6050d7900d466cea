"""A study's cost on this machine, estimated before it runs: each run's multiply-adds per image x 3
(forward and backward) x images x epochs, at the rate this machine trains a small CNN (timed once, in
about a second), plus a fixed cost per step. Within a factor of two or so; enough to choose."""
from __future__ import annotations

import functools
import time

import torch
from torch import nn

STEP_OVERHEAD_S = 1e-3  # optimizer step, data and Python per batch (2-core CPU, small nets)


@functools.lru_cache(maxsize=1)
def mult_adds_per_second() -> float:
    """Training multiply-adds per second of this machine, from a few steps of a small CNN on 32x32 images."""
    net = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1),
                        nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
    macs = 32 * 32 * 64 * 27 + 16 * 16 * 64 * 576 + 640  # per image
    net = net.to(memory_format=torch.channels_last)  # as the Trainer runs convolutions
    x, y = torch.randn(64, 3, 32, 32).contiguous(memory_format=torch.channels_last), torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    steps, t = 0, 0.0
    while steps < 3 or t < 0.5:
        t0 = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
        if steps:  # the first step warms up
            t += time.perf_counter() - t0
        steps += 1
    return 3 * macs * 64 * (steps - 1) / t


def run_seconds(cfg) -> float:
    """Estimated training seconds of one config (its time budget caps it)."""
    from ..build import configured_model
    from ..data import DATASETS
    from ..preflight import known_shape, model_input_shape
    from ..summary import summarize

    shape, classes = known_shape(cfg.data)
    in_shape = model_input_shape(cfg, shape)
    macs = summarize(configured_model(cfg, in_shape, classes or 10, weights=False), in_shape).total_macs
    n = DATASETS.attr(cfg.data.name, "train_images") or 10_000
    n = n * (1 - cfg.data.val_fraction)
    n = min(n, cfg.data.max_train or n)
    steps = cfg.train.epochs * n / cfg.train.batch_size
    seconds = cfg.train.epochs * n * 3 * macs / mult_adds_per_second() + steps * STEP_OVERHEAD_S
    return min(seconds, cfg.train.time_budget) if cfg.train.time_budget else seconds


def words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def study_seconds(spec) -> float:
    """Estimated seconds of a whole study: its runs, and its sweep's configurations one by one."""
    total = sum(run_seconds(spec.config(r)) for r in spec.runs)
    if spec.sweep is not None:
        from ..sweeps.space import grid_points
        from ..sweeps.spec import load_sweep

        sweep = load_sweep(spec.sweep)
        points = grid_points(sweep.space) if sweep.options.strategy == "grid" else []
        if points:
            total += sum(run_seconds(sweep.config_for(p)) for p in points)
        else:
            total += (sweep.options.trials or 1) * run_seconds(sweep.config_for({}))
        if spec.retrain_top:
            from ..config import from_dict

            total += spec.retrain_top * run_seconds(from_dict(sweep.base, spec.retrain_set))
    return total
