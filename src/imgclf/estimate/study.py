"""A study's cost on this machine, estimated before it runs: its runs (estimate/run), its sweep
(estimate/sweep) and the retraining of the sweep's best. Runs are counted one at a time."""
from __future__ import annotations

from ..config.load import from_dict
from ..sweeps.spec import load_sweep
from .run import CostModel
from .sweep import sweep_seconds


def study_seconds(spec, cost: CostModel) -> float:
    """Estimated seconds of a whole study, its steps timed by `cost`: its runs, its sweep (see
    sweep_seconds) and the retraining, every seed of every arm counted."""
    total = sum(cost.run_seconds(spec.config(r)) for r in spec.runs)
    if spec.sweep is not None:
        sweep = load_sweep(spec.sweep)
        total += sweep_seconds(sweep, cost)
        if spec.retrain_top:
            retrained = sum(len(runs) for runs in spec.retrained().values())
            total += retrained * cost.run_seconds(from_dict(sweep.base, spec.common + spec.retrain_set))
    return total
