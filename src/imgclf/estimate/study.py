"""A study's cost on this machine, estimated before it runs: its runs (run_cost), its sweep
(sweeps/cost) and the retraining of the sweep's best. Runs are counted one at a time."""
from __future__ import annotations

from ..config.load import from_dict
from ..sweeps.spec import load_sweep
from .run import run_seconds
from .sweep import sweep_seconds


def study_seconds(spec) -> float:
    """Estimated seconds of a whole study: its runs, its sweep (see sweep_seconds) and the retraining."""
    total = sum(run_seconds(spec.config(r)) for r in spec.runs)
    if spec.sweep is not None:
        sweep = load_sweep(spec.sweep)
        total += sweep_seconds(sweep)
        if spec.retrain_top:
            total += spec.retrain_top * run_seconds(from_dict(sweep.base, spec.common + spec.retrain_set))
    return total
