"""A study's cost on this machine, estimated before it runs: a few timed training steps of each
run's own model at its own batch size (cached per model and batch), times the steps its epochs
take, plus a tenth for data and validation. Only as good as the machine is free while it times."""
from __future__ import annotations

import json
import math
import time

import torch
from torch import nn

OVERHEAD = 1.1  # data, augmentation and the validation pass, on top of the training steps
_STEP_SECONDS: dict[str, float] = {}


def step_seconds(cfg) -> float:
    """Seconds of one training step of `cfg`'s model at its batch size (random data, timed here)."""
    from ..build import configured_model
    from ..preflight import known_shape, model_input_shape

    shape, classes = known_shape(cfg.data)
    in_shape = model_input_shape(cfg, shape)
    key = json.dumps([cfg.model.name, cfg.model.options, cfg.model.strategy, in_shape, cfg.train.batch_size],
                     sort_keys=True, default=str)
    if key not in _STEP_SECONDS:
        torch.manual_seed(0)
        model = configured_model(cfg, in_shape, classes or 10, weights=False).train()
        x = torch.randn(cfg.train.batch_size, *in_shape)
        if any(isinstance(m, nn.Conv2d) for m in model.modules()):  # as the Trainer runs convolutions
            model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, classes or 10, (cfg.train.batch_size,))
        params = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.SGD(params, lr=1e-3)
        times = []
        for _ in range(3):  # the first step warms up
            t = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
            times.append(time.perf_counter() - t)
        _STEP_SECONDS[key] = min(times[1:])
    return _STEP_SECONDS[key]


def run_seconds(cfg) -> float:
    """Estimated training seconds of one config (its time budget caps it)."""
    from ..data import DATASETS

    n = (DATASETS.attr(cfg.data.name, "train_images") or 10_000) * (1 - cfg.data.val_fraction)
    n = min(n, cfg.data.max_train or n)
    steps = cfg.train.epochs * math.ceil(n / cfg.train.batch_size)
    if cfg.model.strategy == "linear-probe":  # one pass for the features, then the head alone
        steps = math.ceil(n / cfg.train.batch_size)
    seconds = steps * step_seconds(cfg) * OVERHEAD
    return min(seconds, cfg.train.time_budget) if cfg.train.time_budget else seconds


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

            total += spec.retrain_top * run_seconds(from_dict(sweep.base, spec.common + spec.retrain_set))
    return total


def words(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
