"""Search spaces over dotted config keys: choices, int/float ranges, log ranges, conditions.

A key with a dot is a config key (`optim.lr`); a key ending in a number sets
one element of a list (`model.hidden.1`, lists are assembled from the active
elements in order); a key without a dot is a variable, used only in the
`when:` conditions of other keys (e.g. `layers: [2, 3]`).
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Optional

from ..core.errors import ConfigError

MAX_GRID = 100_000  # grid values a range's step may cut it into: more is a typo, and such a grid never ends


@dataclass
class Param:
    name: str
    choices: Optional[list] = None  # categorical
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    is_int: bool = False
    when: dict[str, list] = field(default_factory=dict)  # active only when every named param has one of these values

    @property
    def numeric(self) -> bool:
        return self.choices is None

    def active(self, values: dict) -> bool:
        return all(k in values and values[k] in allowed for k, allowed in self.when.items())

    def grid_values(self) -> list:
        """Every value a grid visits; ranges need a step."""
        if self.choices is not None:
            return list(self.choices)
        if self.step is None:
            raise ConfigError(f"space.{self.name}: a grid needs a list of choices or a range with a step")
        n = (self.high - self.low) / self.step + 1e-9
        if not n < MAX_GRID:
            raise ConfigError(f"space.{self.name}: step {self.step:g} cuts the range into more than {MAX_GRID:,} "
                              f"grid values; take a larger step")
        n = int(math.floor(n)) + 1
        vals = [self.low + i * self.step for i in range(n)]
        return [int(round(v)) for v in vals] if self.is_int else [float(v) for v in vals]

    def encode(self, value: Any) -> Any:
        """Optuna stores categorical choices as primitives: lists and dicts travel as JSON text."""
        return json.dumps(value) if isinstance(value, (list, dict)) else value

    def decode(self, value: Any) -> Any:
        if self.choices is not None and isinstance(value, str) and any(isinstance(c, (list, dict)) for c in self.choices):
            return json.loads(value)
        return value


def _parse_param(name: str, spec: Any) -> Param:
    where = f"space.{name}"
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: the list of choices is empty")
        try:  # the trials store choices as JSON text (encode)
            json.dumps(spec, sort_keys=True)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: a choice is not a number, string, list or mapping of string keys") from None
        return Param(name, choices=spec)
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: {spec!r} must be a list of choices or a mapping such as {{low: 1e-4, high: 0.1, log: true}}")
    allowed = {"choices", "low", "high", "log", "step", "when", "type"}
    unknown = set(spec) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}")
    when = spec.get("when") or {}
    if not isinstance(when, dict):
        raise ConfigError(f"{where}.when: must map parameter names to a value or a list of values")
    when = {k: (v if isinstance(v, list) else [v]) for k, v in when.items()}
    if "choices" in spec:
        p = _parse_param(name, spec["choices"])
        p.when = when
        return p
    try:
        low, high = float(spec["low"]), float(spec["high"])
    except (KeyError, TypeError, ValueError, OverflowError):
        raise ConfigError(f"{where}: a range needs numeric low and high") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ConfigError(f"{where}: low and high must be finite numbers")
    log = bool(spec.get("log", False))
    is_int = spec.get("type") == "int" or (isinstance(spec["low"], int) and isinstance(spec["high"], int)
                                           and not isinstance(spec["low"], bool) and spec.get("type") != "float")
    step = spec.get("step")
    if not low < high:
        raise ConfigError(f"{where}: low ({low:g}) must be below high ({high:g})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0")
    if step is not None and (not isinstance(step, (int, float)) or isinstance(step, bool) or not 0 < step < 1e300):
        raise ConfigError(f"{where}: step must be a positive number (below 1e300)")
    if log and step is not None:
        raise ConfigError(f"{where}: use either log or step, not both")
    return Param(name, low=low, high=high, log=log, step=float(step) if step else None, is_int=is_int, when=when)


def parse_space(raw: Any) -> list[Param]:
    """Parameters in an order where every condition's parameters come first."""
    if not isinstance(raw, dict) or not raw:
        raise ConfigError("space: must map config keys (e.g. optim.lr) to choices or ranges")
    params = [_parse_param(str(k), v) for k, v in raw.items()]
    names = {p.name for p in params}
    for p in params:
        for dep in p.when:
            if dep not in names:
                raise ConfigError(f"space.{p.name}.when: {dep!r} is not a parameter of the space")
    ordered: list[Param] = []
    pending = list(params)
    while pending:
        ready = [p for p in pending if all(d in {q.name for q in ordered} for d in p.when)]
        if not ready:
            raise ConfigError("space: the when: conditions form a cycle")
        ordered += ready
        pending = [p for p in pending if p not in ready]
    return ordered


def grid_points(params: list[Param]) -> list[dict]:
    """Every combination of values, inactive conditional parameters left out (each point once)."""
    seen, unique = set(), []
    for pt in product(params, {p.name: p.grid_values() for p in params}):
        key = json.dumps(pt, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(pt)
    return unique


def suggest(trial, params: list[Param]) -> dict:
    """Ask an Optuna trial for a value of each active parameter."""
    values: dict = {}
    for p in params:
        if not p.active(values):
            continue
        if p.choices is not None:
            enc = [p.encode(c) for c in p.choices]
            values[p.name] = p.decode(trial.suggest_categorical(p.name, enc))
        elif p.is_int:
            values[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=int(p.step or 1), log=p.log)
        else:
            values[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
    return values


def encode_point(params: list[Param], point: dict) -> dict:
    by = {p.name: p for p in params}
    return {k: by[k].encode(v) for k, v in point.items()}


def decode_point(params: list[Param], stored: dict) -> dict:
    by = {p.name: p for p in params}
    return {k: by[k].decode(v) if k in by else v for k, v in stored.items()}


def to_overrides(point: dict) -> dict:
    """Nested config updates from a point: variables dropped, indexed keys assembled into lists."""
    out: dict = {}
    lists: dict[str, dict[int, Any]] = {}
    for key, val in point.items():
        if "." not in key:
            continue
        head, _, last = key.rpartition(".")
        if last.isdigit():
            lists.setdefault(head, {})[int(last)] = val
        else:
            _set(out, key.split("."), val)
    for head, items in lists.items():
        _set(out, head.split("."), [items[i] for i in sorted(items)])
    return out


def _set(d: dict, parts: list[str], val: Any) -> None:
    for p in parts[:-1]:
        d = d.setdefault(p, {})
    d[parts[-1]] = val


def neighbours(p: Param, value: Any, shrink: float) -> list:
    """Values around `value` for a finer grid.

    Numeric choices: `value` and the midpoints towards its neighbours in the sorted list
    (geometric midpoints when the choices span a factor of 10 or more, as learning rates do).
    Ranges: x/f, x, x*f on log ranges, x -/+ d on linear ones, with f and d shrinking by round.
    """
    if p.choices is not None:
        nums = [c for c in p.choices if isinstance(c, (int, float)) and not isinstance(c, bool)]
        if len(nums) != len(p.choices) or len(nums) < 2 or value not in nums:
            return [value]
        s = sorted(nums)
        i = s.index(value)
        lo, hi = s[max(i - 1, 0)], s[min(i + 1, len(s) - 1)]
        geometric = s[0] > 0 and s[-1] / s[0] >= 10
        mid = (lambda a, b: math.sqrt(a * b)) if geometric else (lambda a, b: (a + b) / 2)
        cand = [mid(lo, value), value, mid(hi, value)]
        if all(isinstance(c, int) for c in nums):
            cand = [int(round(c)) for c in cand]
        return sorted(set(cand))
    if p.log:
        f = math.exp(math.log(p.high / p.low) * shrink)
        cand = [value / f, value, value * f]
    else:
        d = (p.high - p.low) * shrink
        cand = [value - d, value, value + d]
    cand = [min(max(c, p.low), p.high) for c in cand]
    if p.is_int:
        cand = [int(round(c)) for c in cand]
    return sorted(set(cand))


def coarse_values(p: Param, points: int = 3) -> list:
    """A coarse grid of a range: `points` values spread evenly (log-evenly on a log range)."""
    if p.choices is not None or p.step is not None:
        return p.grid_values()
    if p.log:
        vals = [math.exp(math.log(p.low) + i * (math.log(p.high) - math.log(p.low)) / (points - 1)) for i in range(points)]
    else:
        vals = [p.low + i * (p.high - p.low) / (points - 1) for i in range(points)]
    vals = [min(max(v, p.low), p.high) for v in vals]  # exp(log(x)) can overshoot by one ulp
    return sorted({int(round(v)) for v in vals}) if p.is_int else vals


def product(params: list[Param], values: dict[str, list]) -> list[dict]:
    """Grid over given value lists per parameter, honouring conditions."""
    points: list[dict] = [{}]
    for p in params:
        nxt = []
        for pt in points:
            if p.active(pt):
                nxt += [{**pt, p.name: v} for v in values[p.name]]
            else:
                nxt.append(pt)
            if len(nxt) > MAX_GRID:
                raise ConfigError(f"space: the grid has more than {MAX_GRID:,} points; vary fewer keys or fewer values")
        points = nxt
    return points
