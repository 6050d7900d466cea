"""The epoch log (one line per epoch, and why the run stopped) and the progress bar."""
from __future__ import annotations

import sys
from typing import Callable, Optional

from ...data.balance import shows_balance
from .base import PLUGINS, Context, Plugin


def format_record(r: dict, epochs: int, balanced: bool = False) -> str:
    """One log line per epoch; `balanced` adds the validation split's balanced accuracy and macro-F1."""
    w = len(str(epochs))
    line = f"epoch {r['epoch']:>{w}}/{epochs}  train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:6.2f}%"
    if r.get("val_loss") is not None:
        line += f"  val loss {r['val_loss']:.4f} acc {100 * r['val_acc']:6.2f}%"
        if balanced and r.get("val_balanced_acc") is not None:
            line += f" balanced {100 * r['val_balanced_acc']:6.2f}% macro-F1 {100 * r['val_macro_f1']:6.2f}%"
    if r.get("crop"):
        line += f"  crop {r['crop']}"
    if r.get("trivial"):
        line += f"  trivial {r['trivial']:g}"
    return line + f"  lr {r['lr']:.3g}  {r['seconds']:.1f}s"


class EpochLog(Plugin):
    """Logs each epoch's line and the stop reason; with `progress`, a tqdm bar of the epoch's batches on stderr."""

    order = 95

    def __init__(self, log: Callable[[str], None], progress: bool = False, balanced: bool = False):
        self.log, self.progress = log, progress
        self.balanced = balanced  # imbalanced classes: the lines show balanced accuracy and macro-F1
        self.bar = None

    def on_fit_start(self, trainer) -> None:
        if trainer.monitor == "last" and trainer.epoch == 0:
            self.log(f"no validation split: the kept checkpoint is the last epoch's, not the best by "
                     f"{trainer.cfg.train.monitor}")

    def on_epoch_start(self, trainer) -> None:
        if self.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=trainer.steps, leave=False, desc=f"epoch {trainer.epoch + 1}", file=sys.stderr,
                            unit="batch")

    def on_batch_end(self, trainer, step, loss) -> None:
        if self.bar is not None:
            self.bar.update(1)
            if step % 20 == 0:
                self.bar.set_postfix(loss=f"{loss.item():.3f}")  # a sync every 20 steps, not every step

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_end(self, trainer, record: dict) -> None:
        self._close()
        self.log(format_record(record, trainer.cfg.train.epochs, self.balanced))

    def on_fit_end(self, trainer) -> None:
        self._close()
        if trainer.stop_reason:
            self.log(trainer.stop_reason)


@PLUGINS.register("epoch_log")
def _epoch_log(ctx: Context) -> Optional[Plugin]:
    return EpochLog(ctx.log, ctx.progress, shows_balance(ctx.splits.train.y, len(ctx.splits.classes)))
