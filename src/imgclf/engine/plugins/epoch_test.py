"""train.test_each_epoch: the test loss and accuracy after every epoch, in the history (test_loss,
test_acc). The course reports read their test score at the last epoch (report 000) or at the epoch
of lowest test loss (report 001); a study that follows them needs the test score of every epoch.
Never for tuning: choosing by the test split is what the validation split is for."""
from __future__ import annotations

from typing import Optional

from ...evaluation import evaluate_split
from .base import PLUGINS, Context, Plugin


class EpochTest(Plugin):
    order = 35  # before early stopping and the checkpoint plugin, which writes the record to history.jsonl

    def on_epoch_end(self, trainer, record: dict) -> None:
        # after the epoch's `seconds` were taken: the test pass is not counted in the epoch's time
        m = evaluate_split(trainer.model, trainer.splits.test, trainer.transform, trainer.device, trainer.num_classes,
                           trainer.cfg.train.eval_batch_size, trainer.cfg.train.label_smoothing, full=False,
                           amp_dtype=trainer.amp_dtype)
        record["test_loss"], record["test_acc"] = m["loss"], m["top1"]


@PLUGINS.register("epoch_test")
def _epoch_test(ctx: Context) -> Optional[Plugin]:
    return EpochTest() if ctx.cfg.train.test_each_epoch and ctx.splits.test is not None else None
