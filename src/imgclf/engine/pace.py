"""The run's pace: how far along it is, which the learning-rate schedule and the plugins read.

By default a run is paced by epochs; a time budget with a time-driven schedule paces it by
the elapsed share of the budget instead (see plugins/time_budget.py).
"""
from __future__ import annotations

from ..config.schema import ExperimentConfig
from ..runtime.distributed import now
from .optim import lr_at


class EpochPace:
    """Progress counted in epochs: `t` epochs done (fractional) of train.epochs."""

    def __init__(self, cfg: ExperimentConfig):
        self.cfg = cfg

    def lr(self, t: float) -> float:
        """The learning rate after `t` epochs."""
        return lr_at(t, self.cfg.train.epochs, self.cfg.schedule, self.cfg.optim.lr)

    def share(self, t: float) -> float:
        """The share of the run done (0 to 1) after `t` epochs."""
        return t / self.cfg.train.epochs


class TimePace:
    """Progress counted in seconds between `start` and `end` (rank 0's perf_counter times); `t` is ignored."""

    def __init__(self, cfg: ExperimentConfig, start: float, end: float):
        self.cfg, self.start, self.end = cfg, start, end

    def lr(self, t: float) -> float:
        return lr_at(now() - self.start, max(self.end - self.start, 1e-9), self.cfg.schedule, self.cfg.optim.lr)

    def share(self, t: float) -> float:
        return (now() - self.start) / max(self.end - self.start, 1e-9)
