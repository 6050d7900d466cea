"""train.eval_at_start: the validation loss and accuracy before the first step (reports 001 and 004
plot curves from epoch 0). An untrained classifier of C classes should score near ln(C) and 1/C;
far from them, the initialisation or the data are off."""
from __future__ import annotations

import math
from typing import Optional

from ...evaluation import evaluate_split
from .base import PLUGINS, Context, Plugin


class InitialEval(Plugin):
    order = 8  # after the plugins that set the model up (the linear probe, two-phase), before any epoch

    def __init__(self, log):
        self.log = log

    def on_fit_start(self, trainer) -> None:
        if trainer.epoch:  # a resumed run measured it when it started
            return
        split = trainer.splits.val or trainer.splits.train
        m = evaluate_split(trainer.model, split, trainer.transform, trainer.device, trainer.num_classes,
                           trainer.cfg.train.eval_batch_size, trainer.cfg.train.label_smoothing, full=False,
                           amp_dtype=trainer.amp_dtype)
        which = "val" if trainer.splits.val is not None else "train"
        trainer.notes["initial"] = {"epoch": 0, f"{which}_loss": m["loss"], f"{which}_acc": m["top1"]}
        c = trainer.num_classes
        self.log(f"before training: {which} loss {m['loss']:.4f} acc {100 * m['top1']:.2f}% "
                 f"(chance: loss ln {c} = {math.log(c):.4f}, acc {100 / c:.2f}%)")


@PLUGINS.register("initial_eval")
def _initial_eval(ctx: Context) -> Optional[Plugin]:
    return InitialEval(ctx.log) if ctx.cfg.train.eval_at_start else None
