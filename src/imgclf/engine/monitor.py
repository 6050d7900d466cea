"""Which way a monitored metric improves: losses fall, accuracies rise."""
from __future__ import annotations

import math


def improved(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """True when `value` beats `best` by more than min_delta in direction `mode` ('min' or 'max')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def mode_of(monitor: str) -> str:
    """Losses are minimized, accuracies maximized."""
    return "min" if monitor.endswith("loss") else "max"
