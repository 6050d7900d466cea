"""A study answered within a wall budget the user states (`imgclf study NAME --budget 1h`).

The budget is split into equal shares of training time, one per run (runs at different batch
sizes get equal time, not equal epochs), after keeping back what is spent outside training:
starting each run's process and loading its data, and writing the report. Each run then trains
under `train.time_budget` = its share, with the report's optimizer, rate, batch, schedule and model:
a constant rate stays constant and a decay keeps its pace per epoch, so a share that buys fewer
epochs than the report trained stops the run early, and a time-driven schedule (cosine) anneals
over the share (plugins/time_budget.py). The answer is what the budget buys on this machine, never
the report's: the report's page is titled so. A sweep study's sweep gets the budget left after the retraining of its
best (a quarter of it, in equal shares): its workers take no trial past its end, and a trial
running then is stopped. The plan is written to the study's folder, so that a study cut short
resumes with the same shares. Everything here is known before any data is read.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Optional

from ..config.load import from_dict
from ..config.schema import ExperimentConfig, parse_duration
from ..core.atomic import atomic_write_text
from ..core.errors import ConfigError
from ..estimate.run import CostModel, words
from ..run import folder as R
from ..sweeps.spec import load_sweep
from ..sweeps.status import TrialStatus
from .spec import StudySpec

PLAN = "budget.json"
RUN_OVERHEAD_S = 8.0  # seconds per run outside its time budget: process start and imports (5 s, digits), data from the cache
REPORT_S = 10.0  # seconds for the study's report and its figures
MARGIN = 0.05  # a share of the budget kept back for what the estimates miss
RETRAIN = 0.25  # of a sweep study's budget, for retraining its best (the sweep has the rest)


@dataclass
class BudgetPlan:
    """How a study's wall budget is spent: each run's share of training seconds and its settings."""

    budget_s: float
    text: str  # as the user wrote it: '1h'
    workers: int
    share_s: dict[str, float] = field(default_factory=dict)
    epoch_s: dict[str, float] = field(default_factory=dict)  # estimated seconds per epoch on this machine
    spent_s: float = 0.0  # wall seconds of the study so far, over every invocation, up to its last report
    sweep_s: float = 0.0  # a sweep study: the wall seconds its sweep may take
    sweep_spent_s: float = 0.0  # of those, spent by earlier invocations

    def overrides(self, run: str) -> list[str]:
        """The settings that make `run` train within its share."""
        return [f"train.time_budget={self.share_s[run]:.1f}"]

    def save(self, folder: Path) -> None:
        atomic_write_text(folder / PLAN, json.dumps(asdict(self), indent=2) + "\n")

    @staticmethod
    def load(folder: Path):
        """The plan a previous invocation wrote, or None."""
        p = folder / PLAN
        if not p.is_file():
            return None
        known = {f.name for f in fields(BudgetPlan)}  # a plan of an older version may hold more
        return BudgetPlan(**{k: v for k, v in json.loads(p.read_text()).items() if k in known})


def parse_budget(text: str) -> float:
    """Seconds of a budget such as '90s', '20m' or '1h'; a one-line error otherwise."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ConfigError(f"--budget {text!r}: not a duration; write it as 90s, 20m or 1h")
    return seconds


def plan_budget(spec: StudySpec, budget_s: float, text: str, workers: int = 1,
                cost: Optional[CostModel] = None) -> BudgetPlan:
    """Split `budget_s` seconds over the study's runs (or its sweep and retraining); refuse a budget
    too small for one epoch of each. An epoch's seconds come from `cost` (by default timed afresh
    for this plan)."""
    cost = CostModel() if cost is None else cost
    if spec.sweep is not None:
        return _plan_sweep(spec, budget_s, text, workers, cost)
    runs = {r: spec.config(r) for r in spec.runs}
    workers = max(1, min(workers, len(runs)))
    waves = math.ceil(len(runs) / workers)  # runs trained one after another on each worker's cores
    fixed = waves * RUN_OVERHEAD_S + REPORT_S
    plan = BudgetPlan(budget_s=budget_s, text=text, workers=workers)
    _share(plan, runs, (budget_s * (1 - MARGIN) - fixed) / waves, cost)
    _refuse_short(plan, spec, lambda need: (need * waves + fixed) / (1 - MARGIN))
    return plan


def _plan_sweep(spec: StudySpec, budget_s: float, text: str, workers: int, cost: CostModel) -> BudgetPlan:
    """A sweep study: the retraining of its best gets RETRAIN of the budget, in equal shares; the
    sweep the rest, its first epoch of the base at least."""
    sweep = load_sweep(spec.sweep)
    plan = BudgetPlan(budget_s=budget_s, text=text, workers=max(1, workers))
    usable = budget_s * (1 - MARGIN) - REPORT_S - RUN_OVERHEAD_S  # the sweep's process start
    retrain_s = RETRAIN * usable if spec.retrain_top else 0.0
    if spec.retrain_top:
        cfg = from_dict(sweep.base, spec.common + spec.retrain_set)
        runs = [r for rs in spec.retrained().values() for r in rs]  # every seed of every retrained one
        waves = math.ceil(len(runs) / plan.workers)
        _share(plan, {r: cfg for r in runs}, retrain_s / waves - RUN_OVERHEAD_S, cost)
    plan.sweep_s = usable - retrain_s
    one = cost.run_seconds(_epochs(from_dict(sweep.base, spec.common), 1)) * plan.workers
    need = 1.2 * one  # a trial's first epoch and its validation, at least
    smallest = (need / (1 - RETRAIN if spec.retrain_top else 1.0) + REPORT_S + RUN_OVERHEAD_S) / (1 - MARGIN)
    if spec.retrain_top:
        smallest = max(smallest, _retrain_smallest(plan, spec))
    if budget_s < smallest:
        raise ConfigError(f"--budget {text} is too small for study {spec.name}: one epoch of its sweep's base takes "
                          f"about {_seconds(one)} here; the smallest budget that trains one epoch of a trial"
                          + (" and of each retrained run" if spec.retrain_top else "") + f" is {_ceil_words(smallest)}")
    return plan


def _retrain_smallest(plan: BudgetPlan, spec: StudySpec) -> float:
    """The budget whose retraining part gives each retrained run one epoch."""
    waves = math.ceil(sum(len(rs) for rs in spec.retrained().values()) / plan.workers)
    need = 1.2 * max(plan.epoch_s.values())
    return ((need + RUN_OVERHEAD_S) * waves / RETRAIN + REPORT_S + RUN_OVERHEAD_S) / (1 - MARGIN)


def _share(plan: BudgetPlan, runs: dict, share: float, cost: CostModel) -> None:
    """Give each run `share` training seconds. Its schedule keeps its shape: a constant rate stays
    constant and a decay per epoch keeps its pace, so a share shorter than the recipe stops the run
    early (what the budget buys), and a time-driven one (cosine) anneals over the share."""
    for run, cfg in runs.items():
        # With several workers each run gets a worker's share of the cores: its epochs take longer.
        one = cost.run_seconds(_epochs(cfg, 1)) * plan.workers
        plan.epoch_s[run] = one
        plan.share_s[run] = share


def _refuse_short(plan: BudgetPlan, spec: StudySpec, smallest_for) -> None:
    """Refuse a plan whose share is too short for one epoch of its slowest run; `smallest_for(need)`
    is the budget that gives a share of `need` seconds."""
    slowest = max(plan.epoch_s, key=plan.epoch_s.get)
    # The test pass and the validation are kept inside the share (a tenth of an epoch, about).
    need = 1.2 * plan.epoch_s[slowest]
    if min(plan.share_s.values()) < need:
        raise ConfigError(f"--budget {plan.text} is too small for study {spec.name}: one epoch of run {slowest} "
                          f"takes about {_seconds(plan.epoch_s[slowest])} here; the smallest budget that trains one "
                          f"epoch of every run is {_ceil_words(smallest_for(need))}")


def _epochs(cfg: ExperimentConfig, n: int):
    """`cfg` with `n` epochs and no time budget: what one epoch costs."""
    from dataclasses import replace

    return replace(cfg, train=replace(cfg.train, epochs=n, time_budget=None))


def _seconds(s: float) -> str:
    return f"{s:.2g} s" if s < 10 else words(s)


def _ceil_words(seconds: float) -> str:
    """A budget to type, rounded up: seconds under a minute, whole minutes up to 3 h, then tenths of an hour."""
    if seconds < 60:
        return f"{math.ceil(seconds)}s"
    if seconds < 3 * 3600:
        return f"{math.ceil(seconds / 60)}m"
    return f"{math.ceil(seconds / 360) / 10:g}h"


def budget_rows(plan: BudgetPlan, rows: list[dict], spent_s: float,
                trials: Optional[dict] = None) -> tuple[list[str], list[list[str]], str]:
    """The report's budget table: each run's share, epochs reached, schedule; and a sentence on the
    total. `trials` (a sweep study): how many trials ended how, {'complete': 12, 'pruned': 30, 'budget': 1}."""
    cols = ["run", "share", "est. s/epoch", "epochs reached", "schedule"]
    body = []
    for r in rows:
        name = r["run"]
        if name not in plan.share_s:
            continue
        sched = R.Run(Path(r["path"])).config.schedule.name if r.get("path") else "-"
        body.append([name, words(plan.share_s[name]), f"{plan.epoch_s[name]:.3g}", str(r["epochs"]), sched])
    at_once = f"{plan.workers} runs at a time" if plan.workers > 1 else "one run at a time"
    text = f"Budget {plan.text} ({plan.budget_s:.0f} s) on this machine, {at_once}."
    if trials is not None:
        text += (f" The sweep had {plan.sweep_s:.0f} s of wall time and spent {plan.sweep_spent_s:.0f} s: "
                 f"{trials.get(TrialStatus.COMPLETE, 0)} trials complete, {trials.get(TrialStatus.PRUNED, 0)} pruned, "
                 f"{trials.get('budget', 0)} stopped by the budget; no trial started once less time was left "
                 f"than the median trial took.")
    if body:
        text += (" Each run had the same training time, not the same number of epochs." if trials is None else
                 " Its best were retrained with equal shares of a quarter of the budget.")
    text += f" Wall time really spent: {spent_s:.0f} s."
    text += (" Every run keeps its own schedule: a constant rate stays constant and a decay keeps its pace "
             "per epoch, so a run whose share buys fewer epochs than the report trained stops early; the "
             "figures are what this budget buys on this machine, not the report's answer.")
    return cols, body, text
