"""A study's cost on this machine, estimated before it runs: a few timed training steps of each
run's own model at its own batch size (cached per model and batch), times the steps its epochs
take, plus a tenth for data and validation. A sweep's grid is costed as the sweep trains it:
configurations that differ only in epochs as their longest one, and a cohort of small MLPs
(engine/batched.py) as one computation, timed on its own engine. Only as good as the machine is
free while it times; runs are counted one at a time."""
from __future__ import annotations

import json
import math
import time
from typing import Callable

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
        opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3)
        _STEP_SECONDS[key] = _fastest(lambda: min(_timed_steps(model, opt, x, y)))
    return _STEP_SECONDS[key]


def _fastest(timed: Callable[[], float]) -> float:
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


def _train_images(cfg) -> int:
    from ..data import DATASETS

    n = int((DATASETS.attr(cfg.data.name, "train_images") or 10_000) * (1 - cfg.data.val_fraction))
    return min(n, cfg.data.max_train or n)


def cohort_seconds(cfgs: list) -> float:
    """Estimated seconds of configs trained together as one cohort (same engine.batched.cohort_key):
    two epochs of 20 steps of the cohort's own engine on random images, the second timed, scaled
    to the longest member's epochs."""
    from ..engine.batched import sibling_key

    bs, steps = cfgs[0].train.batch_size, 20
    key = json.dumps(sorted(sibling_key(cfg) or "" for cfg in cfgs))  # the step does not depend on epochs
    if key not in _STEP_SECONDS:
        _STEP_SECONDS[key] = _cohort_step(cfgs, bs, steps)
    epochs = max(cfg.train.epochs for cfg in cfgs)
    return epochs * math.ceil(_train_images(cfgs[0]) / bs) * _STEP_SECONDS[key] * OVERHEAD


def _cohort_step(cfgs: list, bs: int, steps: int) -> float:
    from ..config import from_dict
    from ..data.splits import Split, Splits
    from ..engine.batched import train_cohort
    from ..preflight import known_shape

    (c, h, w), classes = known_shape(cfgs[0].data)
    classes = classes or 10
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (bs * steps, c, h, w), dtype=torch.uint8, generator=g)
    y = torch.randint(0, classes, (bs * steps,), generator=g)
    splits = Splits(Split(x, y), None, Split(x[:bs], y[:bs]), [str(i) for i in range(classes)],
                    torch.full((c,), 0.5), torch.full((c,), 0.25))
    short = [from_dict(cfg.to_dict(), ["train.epochs=2"]) for cfg in cfgs]

    def second_epoch() -> float:
        marks: list[float] = []
        train_cohort(short, splits, torch.device("cpu"), on_epoch=lambda e, r: marks.append(time.perf_counter()))
        return (marks[1] - marks[0]) / steps

    return _fastest(second_epoch)


def sweep_seconds(sweep) -> float:
    """Estimated seconds of a sweep: a grid as its workers train it (cohorts together, configurations
    that differ only in epochs read off their longest), other strategies trial by trial."""
    from ..engine.batched import shared_models
    from ..sweeps.space import grid_points
    from ..sweeps.study import group_key

    points = grid_points(sweep.space) if sweep.options.strategy == "grid" else []
    if not points:
        return (sweep.options.trials or 1) * run_seconds(sweep.config_for({}))
    groups: dict[str, list] = {}
    total = 0.0
    for p in points:
        key = group_key(sweep, p)
        if key:
            groups.setdefault(key, []).append(sweep.config_for(p))
        else:
            total += run_seconds(sweep.config_for(p))
    for key, cfgs in groups.items():
        if key.startswith("batch:") and len(cfgs) > 1:
            total += cohort_seconds(shared_models(cfgs)[0])  # as the sweep trains a cohort
        else:
            total += run_seconds(max(cfgs, key=lambda c: c.train.epochs))
    return total


def run_seconds(cfg) -> float:
    """Estimated training seconds of one config (its time budget caps it)."""
    n = _train_images(cfg)
    steps = cfg.train.epochs * math.ceil(n / cfg.train.batch_size)
    if cfg.model.strategy == "linear-probe":  # one pass for the features, then the head alone
        steps = math.ceil(n / cfg.train.batch_size)
    seconds = steps * step_seconds(cfg) * OVERHEAD
    return min(seconds, cfg.train.time_budget) if cfg.train.time_budget else seconds


def study_seconds(spec) -> float:
    """Estimated seconds of a whole study: its runs, its sweep (see sweep_seconds) and the retraining."""
    total = sum(run_seconds(spec.config(r)) for r in spec.runs)
    if spec.sweep is not None:
        from ..sweeps.spec import load_sweep

        sweep = load_sweep(spec.sweep)
        total += sweep_seconds(sweep)
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
