"""The time budget: stop cleanly when `train.time_budget` seconds are spent, test pass included.

With a time-driven schedule (cosine, onecycle, linear) the learning rate follows the
elapsed share of the budget instead of the epochs, so a run anneals fully on any machine;
the epoch the budget ends in is kept, its last steps having run at the end of the
annealing. With any other schedule the unfinished epoch is dropped. The budget spans
resumed sessions (the history's elapsed seconds), and keeps back time for the final test
pass, re-estimated from each validation pass.
"""
from __future__ import annotations

import time
from typing import Optional

from ...data.splits import Split
from ...evaluation import evaluate_split
from ...runtime.distributed import agreed, now
from ..optim import SCHEDULES
from ..pace import TimePace
from .base import PLUGINS, Context, Plugin


class TimeBudget(Plugin):
    """Ends the run when `budget` seconds minus the reserve for the test pass are spent."""

    order = 30

    def __init__(self, budget: float, timed: bool, test_views: Optional[int]):
        self.budget, self.timed = budget, timed
        self.test_views = test_views  # forward passes per test image, None when the run scores no test
        self.reserve = 0.02 * budget  # seconds kept back; grows with the measured cost of the test pass
        self.start = self.deadline = 0.0
        self.eval_timed = False  # without a validation split, an evaluation is timed once per session

    def _set_deadline(self, trainer) -> None:
        self.reserve = agreed(self.reserve)  # under torchrun, rank 0's estimate: every rank stops at one step
        self.deadline = self.start + self.budget - self.reserve
        if self.timed:
            trainer.pace = TimePace(trainer.cfg, self.start, self.deadline)
        trainer.notes["test_reserve_seconds"] = self.reserve

    def on_fit_start(self, trainer) -> None:
        used = trainer.history[-1]["elapsed"] if trainer.history else 0.0
        self.start = now() - used  # now(): rank 0's clock under torchrun
        self._set_deadline(trainer)

    def on_batch_end(self, trainer, step, loss) -> None:
        if now() <= self.deadline:
            return
        b = self.budget
        if self.timed:
            trainer.end_epoch(keep=True)
            trainer.stop(f"time budget of {b:g}s: the schedule annealed over the budget; "
                         f"epoch {trainer.epoch + 1} was cut short at its end")
        else:
            trainer.end_epoch(keep=False)
            trainer.stop(f"time budget of {b:g}s reached during epoch {trainer.epoch + 1}; "
                         "that partial epoch was discarded")

    def on_epoch_end(self, trainer, record: dict) -> None:
        per_image = None
        if self.test_views is not None and trainer.splits.val is not None:
            per_image = trainer.val_seconds / max(len(trainer.splits.val), 1)
        elif self.test_views is not None and not self.eval_timed:
            # No validation pass to time: time one evaluation of training images instead, once.
            # Without it the 2% reserve alone left a 30-minute run 24 s over its budget on 2 Zen 3
            # cores, where the 6-view test pass takes about a minute.
            per_image, self.eval_timed = self._eval_seconds_per_image(trainer), True
        if per_image is not None:
            test_s = self.test_views * per_image * len(trainer.splits.test)
            self.reserve = 0.02 * self.budget + 1.5 * test_s
            self._set_deadline(trainer)
        if now() > self.deadline and trainer.epoch < trainer.cfg.train.epochs:
            b, e = self.budget, trainer.epoch
            trainer.stop(f"time budget of {b:g}s: the schedule annealed over the budget; ended after epoch {e}"
                         if self.timed else f"time budget of {b:g}s reached after epoch {e}")

    @staticmethod
    def _eval_seconds_per_image(trainer, n: int = 2000) -> float:
        """Seconds per image of a plain evaluation pass, timed on up to `n` training images."""
        train = trainer.splits.train
        sample = Split(train.x[:n], train.y[:n])
        t = time.perf_counter()
        evaluate_split(trainer.model, sample, trainer.transform, trainer.device, trainer.num_classes,
                       trainer.cfg.train.eval_batch_size, full=False, amp_dtype=trainer.amp_dtype)
        return (time.perf_counter() - t) / max(len(sample), 1)


@PLUGINS.register("time_budget")
def _time_budget(ctx: Context) -> Optional[Plugin]:
    t = ctx.cfg.train
    if t.time_budget is None:
        return None
    from ...evaluation.evaluate import TTA

    # a tuning run (no final test) keeps no time for a test pass
    views = TTA.attr(t.tta, "views") if t.final_test else None
    return TimeBudget(t.time_budget, SCHEDULES.attr(ctx.cfg.schedule.name, "time_driven"), views)
