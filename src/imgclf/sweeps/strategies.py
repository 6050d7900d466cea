"""Sweep strategies and pruners, registered by name.

A strategy says which points a sweep starts with (enqueued as waiting trials, which the
storages hand out atomically, so each runs exactly once however many workers share the
sweep), which Optuna sampler fills trials that are not queued, and whether a finished
round asks for another.
"""
from __future__ import annotations

import json
from typing import Callable, Optional

import optuna
from optuna.trial import TrialState

from ..core.registry import Registry
from ..engine.monitor import Direction
from . import attrs as A
from .space import coarse_values, decode_point, grid_points, neighbours, product

STRATEGIES: Registry = Registry("sweep strategy")
PRUNERS: Registry[Callable] = Registry("pruner")


class Strategy:
    """A strategy with neither queued points nor rounds: trials sampled at random, up to `trials`."""

    queued = False  # its points are enqueued up front (each runs once); else sampled, up to sweep.trials
    upfront = False  # its first points are all its points (a grid), so a cost model can count them

    def first_points(self, spec) -> Optional[list[dict]]:
        """The points enqueued when the study is created (None: nothing is queued)."""
        return None

    def sampler(self, spec):
        # queued points come from the queue; the sampler only fills what is not queued
        return optuna.samplers.RandomSampler(seed=spec.options.seed)

    def next_round(self, study, spec) -> tuple[int, list[dict]]:
        """After every queued trial has ended: the next round's number and its points, which the
        queue enqueues (no points: the sweep is done). Strategies return points, never enqueue."""
        return 0, []


@STRATEGIES.register("grid")
class Grid(Strategy):
    """Every point of the space's grid, once."""

    queued = True
    upfront = True

    def first_points(self, spec):
        return grid_points(spec.space)


STRATEGIES.register("random")(Strategy)


@STRATEGIES.register("tpe")
class TPE(Strategy):
    """Optuna's tree-structured Parzen estimator proposes each next point from the finished ones."""

    def sampler(self, spec):
        return optuna.samplers.TPESampler(seed=spec.options.seed)


@STRATEGIES.register("nsga2")
class NSGA2(Strategy):
    """Optuna's NSGA-II: a genetic search for the Pareto front of several objectives."""

    def sampler(self, spec):
        return optuna.samplers.NSGAIISampler(seed=spec.options.seed)


@STRATEGIES.register("hierarchical")
class Hierarchical(Strategy):
    """A coarse grid, then rounds of finer grids around the top_k best (the reports' hierarchical search)."""

    queued = True

    def first_points(self, spec):
        return product(spec.space, {p.name: coarse_values(p, spec.options.points) for p in spec.space})

    def next_round(self, study, spec) -> tuple[int, list[dict]]:
        trials = study.get_trials(deepcopy=False)
        current = max((t.user_attrs.get(A.ROUND, 0) for t in trials), default=0)
        if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
            return current + 1, []
        if current + 1 >= spec.options.rounds:
            return current + 1, []
        done = [t for t in trials if t.state == TrialState.COMPLETE]
        done.sort(key=lambda t: t.values[0], reverse=spec.direction is Direction.MAX)  # the ranking objective
        shrink = 0.5 ** (current + 2)
        points = []
        for t in done[: spec.options.top_k]:
            point = decode_point(spec.space, t.params)
            values = {p.name: neighbours(p, point[p.name], shrink) if p.name in point else [None] for p in spec.space}
            points += [pt for pt in product(spec.space, values) if all(v is not None for v in pt.values())]
        seen = {json.dumps(decode_point(spec.space, t.params), sort_keys=True) for t in trials}
        fresh = []
        for pt in points:
            k = json.dumps(pt, sort_keys=True)
            if k not in seen:
                seen.add(k)
                fresh.append(pt)
        if spec.options.trials:
            fresh = fresh[: spec.options.trials]
        return current + 1, fresh


def strategy(name: str) -> Strategy:
    """The registered strategy `name`, ready to use."""
    return STRATEGIES.get(name)()


def _optuna_pruner(factory_name: str, **kw):
    def make():
        return getattr(optuna.pruners, factory_name)(**kw)

    return make


PRUNERS.register("none")(_optuna_pruner("NopPruner"))
PRUNERS.register("median")(_optuna_pruner("MedianPruner", n_startup_trials=4, n_warmup_steps=1))
PRUNERS.register("hyperband")(_optuna_pruner("HyperbandPruner"))
PRUNERS.register("successive-halving")(_optuna_pruner("SuccessiveHalvingPruner"))
