"""A sweep file: a base experiment, a search space, a strategy, a trial budget."""
from __future__ import annotations

import copy
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

from ..config.fields import build_dataclass
from ..config.load import from_dict, merge, read_experiment, read_yaml, resolve_extends
from ..config.schema import Choice, ExperimentConfig, Metric, Range
from ..core.errors import ConfigError
from ..engine.monitor import Direction
from . import attrs as A
from .space import Param, parse_space, to_overrides
from .strategies import PRUNERS, STRATEGIES

# Objectives measured per trial beside the epoch records, and whether less is better.
MEASURED = {"params": Direction.MIN, "train_seconds": Direction.MIN}
METRICS = typing.get_args(Metric)
BUDGET_STOP = "the sweep's budget ran out"  # the reason of a trial stopped by the sweep's wall budget


def retried(trials) -> set[int]:
    """Numbers of the trials that a later trial runs again (its `retry_of`): they are no result."""
    return {int(t.user_attrs[A.RETRY_OF]) for t in trials if A.RETRY_OF in t.user_attrs}


@dataclass
class SweepOptions:
    """The sweep file's keys besides base and space."""

    strategy: Annotated[str, Choice(STRATEGIES.kind)] = "grid"
    trials: Optional[Annotated[int, Range(ge=1)]] = None  # random/tpe: how many; hierarchical: cap per round
    objective: Metric = "val_acc"  # read at the last epoch
    # several objectives at once, each "NAME max|min": the epoch metrics, params, train_seconds
    objectives: Optional[list[str]] = None
    pruner: Annotated[str, Choice(PRUNERS.kind)] = "none"
    rounds: Annotated[int, Range(ge=1, le=20)] = 3  # hierarchical: coarse grid + finer rounds
    top_k: Annotated[int, Range(ge=1)] = 3  # hierarchical: refine around this many best
    points: Annotated[int, Range(ge=2, le=20)] = 3  # hierarchical: coarse values per numeric range
    seed: Annotated[int, Range(ge=0, lt=2**32)] = 0  # sampler seed (random, tpe): numpy's range


@dataclass
class SweepSpec:
    base: dict  # a raw experiment mapping (validated)
    space: list[Param]
    options: SweepOptions = field(default_factory=SweepOptions)
    source: Optional[Path] = None

    @property
    def direction(self) -> Direction:
        """The first objective's direction: what ranks the trials."""
        return self.directions[0]

    @property
    def objectives(self) -> list[tuple[str, Direction]]:
        """(name, direction) of each objective, the ranking one first."""
        if not self.options.objectives:
            return [(self.options.objective, Direction.of(self.options.objective))]
        return [_objective(o) for o in self.options.objectives]  # checked by parse_sweep

    @property
    def directions(self) -> list[Direction]:
        return [d for _, d in self.objectives]

    @property
    def multi(self) -> bool:
        return len(self.objectives) > 1

    def values(self, final: dict, measured: dict) -> Optional[list[float]]:
        """Each objective's value: from the last epoch's record, or `measured` (params, train_seconds);
        None when one is missing (no validation split, say)."""
        out = []
        for name, _ in self.objectives:
            v = measured.get(name) if name in MEASURED else final.get(name)
            if v is None:
                return None
            out.append(float(v))
        return out

    def config_for(self, point: dict) -> ExperimentConfig:
        """The validated experiment config of one point of the space."""
        return from_dict(merge(self.base, to_overrides(point)))

    def raw(self) -> dict:
        """The sweep as a plain mapping (base resolved), as saved in the sweep folder."""
        space = {}
        for p in self.space:
            d: dict = {"choices": p.choices} if p.choices is not None else {
                "low": int(p.low) if p.is_int else p.low, "high": int(p.high) if p.is_int else p.high,
                **({"log": True} if p.log else {}), **({"step": p.step} if p.step else {}),
                **({"type": "int"} if p.is_int else {"type": "float"})}
            if p.when:
                d["when"] = p.when
            space[p.name] = d
        import dataclasses

        return {"base": self.base, "space": space, **dataclasses.asdict(self.options)}


def parse_sweep(raw: dict, source: Optional[Path] = None) -> SweepSpec:
    """Validate a sweep mapping: the base config, the space, the options, and each grid point."""
    if not isinstance(raw, dict):
        raise ConfigError("a sweep file must be a mapping with base:, space: and strategy:")
    raw = dict(raw)
    if "base" not in raw or "space" not in raw:
        raise ConfigError("a sweep file needs base: (an experiment config or its path) and space: (keys to vary)")
    base = raw.pop("base")
    if isinstance(base, str):
        path = Path(base) if source is None or Path(base).is_absolute() else source.parent / base
        base = read_experiment(path)
    elif base is None:
        base = {}
    elif not isinstance(base, dict):
        raise ConfigError("base: must be an experiment mapping or the path of an experiment YAML file")
    else:
        base = resolve_extends(copy.deepcopy(base), source.parent if source else Path("."), where="base")
    from_dict(base)  # the base alone must be a valid experiment
    space = parse_space(raw.pop("space"))
    options = build_dataclass(SweepOptions, raw, "sweep", {r.kind: r for r in (STRATEGIES, PRUNERS)})
    if options.objectives is not None:
        _check_objectives(options)
    spec = SweepSpec(base, space, options, source)
    from .strategies import strategy  # noqa: E402

    plan = strategy(options.strategy)
    if not plan.queued and options.trials is None:
        raise ConfigError(f"trials: the {options.strategy} strategy needs a number of trials, e.g. trials: 50")
    for pt in plan.first_points(spec) or ():  # catch a bad value in the space before anything trains
        spec.config_for(pt)
    return spec


def _objective(text: str) -> tuple[str, Direction]:
    """'val_acc max' as (name, direction)."""
    name, word = text.split()
    return name, Direction(word)


def _check_objectives(options: SweepOptions) -> None:
    """objectives: [val_acc max, params min]: known names, each with a direction; the first ranks."""
    known = ", ".join([*METRICS, *MEASURED])
    words = {d.value for d in Direction}
    for o in options.objectives:
        parts = str(o).split()
        if len(parts) != 2 or parts[1] not in words or parts[0] not in (*METRICS, *MEASURED):
            raise ConfigError(f"objectives: {o!r} is not NAME max|min with NAME one of {known}, e.g. 'val_acc max'")
        natural = MEASURED.get(parts[0]) or Direction.of(parts[0])
        if Direction(parts[1]) is not natural:
            raise ConfigError(f"objectives: {o!r} asks for the worse {parts[0]}; write '{parts[0]} {natural}'")
    names = [str(o).split()[0] for o in options.objectives]
    if len(set(names)) != len(names):
        raise ConfigError(f"objectives: {names} names one objective twice")
    if names[0] not in METRICS:
        raise ConfigError(f"objectives: the first ({names[0]}) ranks the trials and must be an epoch metric: "
                          f"{', '.join(METRICS)}")
    if len(names) > 1 and options.pruner != "none":
        raise ConfigError(f"pruner: {options.pruner} stops trials by one objective; a sweep of several objectives "
                          f"takes pruner: none")
    options.objective = names[0]


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    p = Path(path)
    return parse_sweep(read_yaml(p), p)
