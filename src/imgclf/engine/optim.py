"""Optimizers and learning-rate schedules, registered by name."""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..core.registry import Registry
from .muon import Muon

OPTIMIZERS: Registry[Callable] = Registry("optimizer")
SCHEDULES: Registry[Callable] = Registry("schedule")



def lr_scale_of(model: nn.Module, c) -> Callable[[str], float]:
    """A parameter's factor on the rate: optim.lr_scales by longest name prefix, times optim.layer_decay
    to the power of its top-level layer's distance from the last one."""
    scales = getattr(c, "lr_scales", None) or {}
    decay = getattr(c, "layer_decay", None)
    tops = [n for n, m in model.named_children() if any(p.requires_grad for p in m.parameters())]
    depth = {n: len(tops) - 1 - i for i, n in enumerate(tops)}  # the last trainable layer: 0

    def scale(name: str) -> float:
        hits = [p for p in scales if name == p or name.startswith(p + ".")]
        s = scales[max(hits, key=len)] if hits else 1.0
        if decay is not None:
            s *= decay ** depth.get(name.split(".")[0], 0)
        return s

    return scale


def param_groups(model: nn.Module, weight_decay: float, scale_of: Callable[[str], float] = lambda n: 1.0
                 ) -> list[dict]:
    """Weight decay on conv and linear weights only, not on biases and norm parameters; one group per
    (decay, rate factor), its `names` kept for the log's table. Frozen parameters get no group (no state)."""
    groups: dict[tuple[bool, float], dict] = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            key = (p.ndim > 1, scale_of(name))
            g = groups.setdefault(key, {"params": [], "names": [], "weight_decay": weight_decay if key[0] else 0.0,
                                        "lr_scale": key[1]})
            g["params"].append(p)
            g["names"].append(name)
    first = groups.pop((True, 1.0), {"params": [], "names": [], "weight_decay": weight_decay, "lr_scale": 1.0})
    return [first, *groups.values()]  # the decayed unit-rate group first, as it always was


def group_table(optimizer: torch.optim.Optimizer, base_lr: float) -> list[str]:
    """Lines of a table of the optimizer's parameter groups: what trains, how much of it, at what peak rate."""
    lines = []
    for g in optimizer.param_groups:
        n = sum(p.numel() for p in g["params"])
        if not n:
            continue
        tops = sorted({name.split(".")[0] for name in g.get("names", [])}) or ["(filters)"]
        kind = "weights" if all(p.ndim > 1 for p in g["params"]) else "biases, norms" if all(
            p.ndim <= 1 for p in g["params"]) else "mixed"
        lines.append(f"  {n:>11,} parameters  lr {base_lr * g.get('lr_scale', 1.0):<9.3g} weight decay "
                     f"{g['weight_decay']:<7g} {kind:<13} {', '.join(tops)[:60]}")
    return lines


@OPTIMIZERS.register("sgd", nesterov=True)
def sgd(groups, c) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov, foreach=True)


@OPTIMIZERS.register("muon", nesterov=True)
def muon(groups, c) -> torch.optim.Optimizer:
    """Muon steps for conv filters (4-D weights) at muon_lr, Nesterov SGD at lr for the rest."""
    filters: dict[float, list] = {}  # per rate factor
    for g in groups:
        filters.setdefault(g["lr_scale"], []).extend(p for p in g["params"] if p.ndim == 4)
    rest = [{**g, "params": [p for p in g["params"] if p.ndim != 4]} for g in groups]
    rest = [g for g in rest if g["params"]]
    # No weight decay on the filters: Muon holds their norm fixed, which bounds them already.
    filter_groups = [{"params": ps, "weight_decay": 0.0, "lr_scale": s * c.muon_lr / c.lr, "muon": True}
                     for s, ps in filters.items() if ps]
    return Muon(rest + filter_groups, lr=c.lr, momentum=c.momentum, muon_momentum=c.muon_momentum,
                nesterov=c.nesterov)


@OPTIMIZERS.register("adam")
def adam(groups, c) -> torch.optim.Optimizer:
    return torch.optim.Adam(groups, lr=c.lr, betas=tuple(c.betas), eps=c.eps, foreach=True)


@OPTIMIZERS.register("adamw")
def adamw(groups, c) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=c.lr, betas=tuple(c.betas), eps=c.eps, foreach=True)


@OPTIMIZERS.register("rmsprop")
def rmsprop(groups, c) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(groups, lr=c.lr, alpha=c.alpha, eps=c.eps, momentum=c.momentum, foreach=True)


def build_optimizer(model: nn.Module, c) -> torch.optim.Optimizer:
    """The optimizer an OptimConfig names, over the model's weight-decay groups."""
    groups = param_groups(model, c.weight_decay, lr_scale_of(model, c))
    opt = OPTIMIZERS.get(c.name)(groups, c)
    set_lr(opt, c.lr)  # the scaled groups start at their own rate
    return opt


# A schedule maps progress t (epochs done, fractional) and the total epochs to a factor of optim.lr.
# Being a pure function of progress, it needs no state to resume. A `time_driven` schedule reads
# only the share t / total, so with a time budget it follows the elapsed share of the budget
# instead; the others count epochs and never read the total.


@SCHEDULES.register("none", time_driven=False)
def constant(t: float, total: float, s, lr: float) -> float:
    return 1.0


@SCHEDULES.register("step", time_driven=False)
def step(t: float, total: float, s, lr: float) -> float:
    """Multiply by gamma every step_size epochs."""
    return s.gamma ** math.floor(t / s.step_size + 1e-9)


@SCHEDULES.register("exponential", time_driven=False)
def exponential(t: float, total: float, s, lr: float) -> float:
    """Multiply by gamma after every epoch."""
    return s.gamma ** math.floor(t + 1e-9)


@SCHEDULES.register("cosine", time_driven=True)
def cosine(t: float, total: float, s, lr: float) -> float:
    """Half a cosine from optim.lr down to min_lr over the run, updated every step."""
    frac = min(max(t / total, 0.0), 1.0)
    floor = s.min_lr / lr
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * frac))


@SCHEDULES.register("onecycle", time_driven=True)
def onecycle(t: float, total: float, s, lr: float) -> float:
    """Rise from peak/25 to the peak (max_lr or optim.lr) over pct_start, then anneal to peak/1e4 (cosine)."""
    peak = (s.max_lr or lr) / lr
    frac = min(max(t / total, 0.0), 1.0)
    start, end = peak / 25.0, peak / 1e4
    if frac < s.pct_start:
        u = frac / s.pct_start
        return start + (peak - start) * 0.5 * (1 - math.cos(math.pi * u))
    u = (frac - s.pct_start) / (1 - s.pct_start)
    return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * u))


@SCHEDULES.register("linear", time_driven=True)
def linear(t: float, total: float, s, lr: float) -> float:
    """Rise linearly from 0 over the warmup fraction, then fall linearly to min_lr."""
    frac = min(max(t / total, 0.0), 1.0)
    if frac < s.warmup:
        return frac / s.warmup
    floor = s.min_lr / lr
    return floor + (1 - floor) * (1 - (frac - s.warmup) / (1 - s.warmup))


def lr_at(t: float, total: float, schedule_cfg, base_lr: float) -> float:
    """Learning rate after `t` of `total` epochs."""
    return base_lr * SCHEDULES.get(schedule_cfg.name)(t, total, schedule_cfg, base_lr)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every group's rate to `lr` times its `lr_scale` (1 where unset)."""
    for g in optimizer.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
