"""Early stopping: stop when a metric has not improved for `patience` epochs."""
from __future__ import annotations

from typing import Optional

from ..monitor import Direction, improved
from .base import PLUGINS, Context, Plugin


class EarlyStopping(Plugin):
    """Stop when `monitor` has not improved by min_delta for `patience` epochs; keep or drop the best weights."""

    order = 40

    def __init__(self, monitor: str, patience: int, min_delta: float = 0.0, restore_best: bool = True):
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.restore_best = restore_best
        self.direction = Direction.of(monitor)
        self.best: float | None = None
        self.wait = 0

    def on_fit_start(self, trainer) -> None:
        trainer.restore_best = self.restore_best

    def on_epoch_end(self, trainer, record: dict) -> None:
        value = record.get(self.monitor)
        if improved(value, self.best, self.direction, self.min_delta):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                trainer.stop(f"early stopping: {self.monitor} did not improve for {self.patience} epochs")

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait = state.get("best"), state.get("wait", 0)


@PLUGINS.register("early_stopping")
def _early_stopping(ctx: Context) -> Optional[Plugin]:
    es = ctx.cfg.train.early_stopping
    if not es.enabled:
        return None
    mon = es.monitor or ctx.cfg.train.monitor
    if ctx.splits.val is None and mon.startswith("val_"):
        mon = "train_loss"  # no validation split: the training loss is all there is to watch
    return EarlyStopping(mon, es.patience, es.min_delta, es.restore_best)
