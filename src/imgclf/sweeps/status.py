"""How a sweep's trial ended (or where it stands): one name per Optuna TrialState, as the results
table, its files and the worker's counts spell it."""
from __future__ import annotations

from enum import Enum

from optuna.trial import TrialState


class TrialStatus(str, Enum):
    """A trial's status; a str, so that a results frame's status column compares equal to it."""

    COMPLETE = "complete"
    PRUNED = "pruned"
    FAILED = "failed"
    RUNNING = "running"
    WAITING = "waiting"

    @classmethod
    def of(cls, state: TrialState) -> "TrialStatus":
        """The status of an Optuna trial state (FAIL reads 'failed': a trial failed)."""
        return cls.FAILED if state is TrialState.FAIL else cls[state.name]

    def __str__(self) -> str:
        return self.value
