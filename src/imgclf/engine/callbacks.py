"""Callbacks: a few hooks with empty defaults, called by the training loop."""
from __future__ import annotations

import math


class Callback:
    """Override any hook; each receives the Trainer."""

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, record: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


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


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs."""

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = mode_of(monitor)
        self.best: float | None = None
        self.wait = 0

    def on_epoch_end(self, trainer, record: dict) -> None:
        value = record.get(self.monitor)
        if improved(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop(f"early stopping: {self.monitor} did not improve for {self.patience} epochs")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state.get("best"), state.get("wait", 0)
