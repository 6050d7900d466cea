"""A sweep file: a base experiment, a search space, a strategy, a trial budget."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Optional

from ..config import ExperimentConfig, Metric, from_dict, merge, read_experiment, read_yaml, resolve_extends
from ..errors import ConfigError
from ..validation import Choice, Range, build_dataclass
from .space import Param, parse_space, to_overrides



@dataclass
class SweepOptions:
    """The sweep file's keys besides base and space."""

    strategy: Annotated[str, Choice("imgclf.sweeps.strategies", "STRATEGIES")] = "grid"
    trials: Optional[Annotated[int, Range(ge=1)]] = None  # random/tpe: how many; hierarchical: cap per round
    objective: Metric = "val_acc"  # read at the last epoch
    pruner: Annotated[str, Choice("imgclf.sweeps.strategies", "PRUNERS")] = "none"
    rounds: Annotated[int, Range(ge=1, le=20)] = 3  # hierarchical: coarse grid + finer rounds
    top_k: Annotated[int, Range(ge=1)] = 3  # hierarchical: refine around this many best
    points: Annotated[int, Range(ge=2, le=20)] = 3  # hierarchical: coarse values per numeric range
    seed: int = 0  # sampler seed (random, tpe)


@dataclass
class SweepSpec:
    base: dict  # a raw experiment mapping (validated)
    space: list[Param]
    options: SweepOptions = field(default_factory=SweepOptions)
    source: Optional[Path] = None

    @property
    def direction(self) -> str:
        from ..engine.monitor import mode_of

        return "minimize" if mode_of(self.options.objective) == "min" else "maximize"

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
    options = build_dataclass(SweepOptions, raw, "sweep")
    spec = SweepSpec(base, space, options, source)
    from .strategies import strategy  # noqa: E402

    plan = strategy(options.strategy)
    if not plan.queued and options.trials is None:
        raise ConfigError(f"trials: the {options.strategy} strategy needs a number of trials, e.g. trials: 50")
    for pt in plan.first_points(spec) or ():  # catch a bad value in the space before anything trains
        spec.config_for(pt)
    return spec


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and validate a sweep YAML file."""
    p = Path(path)
    return parse_sweep(read_yaml(p), p)
