"""Which way a monitored metric improves: losses fall, accuracies rise. `Direction` is the one
vocabulary for it: the trainer's monitor, early stopping, and a sweep's objectives (Optuna's
names, minimize and maximize, are converted here and nowhere else)."""
from __future__ import annotations

import math
from enum import Enum


class Direction(Enum):
    """Which way a metric is better; the value is the word a sweep file writes ('val_acc max')."""

    MIN = "min"
    MAX = "max"

    @classmethod
    def of(cls, metric: str) -> "Direction":
        """Losses are minimized, everything else (accuracies) maximized."""
        return cls.MIN if metric.endswith("loss") else cls.MAX

    @property
    def optuna(self) -> str:
        """Optuna's name of the direction, as optuna.create_study(directions=...) takes it."""
        return {Direction.MIN: "minimize", Direction.MAX: "maximize"}[self]

    @classmethod
    def from_optuna(cls, direction) -> "Direction":
        """The direction of an Optuna StudyDirection (or its name, 'maximize')."""
        name = str(getattr(direction, "name", direction)).lower()
        found = [d for d in cls if d.optuna == name]
        if not found:
            raise ValueError(f"{direction!r} is not an Optuna direction to optimize in")
        return found[0]

    def __str__(self) -> str:
        return self.value


def improved(value: float, best: float | None, direction: Direction, min_delta: float = 0.0) -> bool:
    """True when `value` beats `best` by more than min_delta in `direction`."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best - min_delta if direction is Direction.MIN else value > best + min_delta
