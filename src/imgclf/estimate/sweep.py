"""A sweep's cost on this machine, estimated before it runs: its queued points as the workers train
them (configurations that differ only in epochs as their longest one, a cohort of small models as
one stacked computation timed on its own engine), other strategies trial by trial."""
from __future__ import annotations

import math
import time

import torch

from ..config.load import from_dict
from ..config.schema import ExperimentConfig
from ..data.splits import Split, Splits
from ..engine.batched import train_cohort
from ..models.sizing import known_shape
from ..sweeps.cohorts import Group, read_group_key, shared_models, sibling_key
from ..sweeps.queue import group_key
from ..sweeps.strategies import strategy
from .run import OVERHEAD, CostModel, fastest, train_images


def cohort_seconds(cfgs: list[ExperimentConfig], cost: CostModel) -> float:
    """Estimated seconds of configs trained together as one cohort (same cohorts.cohort_key):
    two epochs of 20 steps of the cohort's own engine on random images, the second timed (once per
    `cost`), scaled to the longest member's epochs."""
    bs, steps = cfgs[0].train.batch_size, 20
    key = cost.key("cohort", sorted(sibling_key(cfg) or "" for cfg in cfgs))  # the step does not depend on epochs
    step = cost.step(key, lambda: _cohort_step(cfgs, bs, steps))
    epochs = max(cfg.train.epochs for cfg in cfgs)
    return epochs * math.ceil(train_images(cfgs[0]) / bs) * step * OVERHEAD


def _cohort_step(cfgs: list[ExperimentConfig], bs: int, steps: int) -> float:
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

    return fastest(second_epoch)


def sweep_seconds(sweep, cost: CostModel) -> float:
    """Estimated seconds of a sweep, its steps timed by `cost`: a strategy that queues every point
    up front (grid) as its workers train it (cohorts together, configurations that differ only in
    epochs read off their longest), other strategies trial by trial."""
    plan = strategy(sweep.options.strategy)
    points = plan.first_points(sweep) if plan.upfront else []
    if not points:
        return (sweep.options.trials or 1) * cost.run_seconds(sweep.config_for({}))
    groups: dict[str, list] = {}
    total = 0.0
    for p in points:
        key = group_key(sweep, p)
        if key:
            groups.setdefault(key, []).append(sweep.config_for(p))
        else:
            total += cost.run_seconds(sweep.config_for(p))
    for key, cfgs in groups.items():
        if read_group_key(key)[0] is Group.COHORT and len(cfgs) > 1:
            total += cohort_seconds(shared_models(cfgs)[0], cost)  # as the sweep trains a cohort
        else:
            total += cost.run_seconds(max(cfgs, key=lambda c: c.train.epochs))
    return total
