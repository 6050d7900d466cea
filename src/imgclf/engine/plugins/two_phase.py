"""Two-phase fine-tuning (fastai's fine_tune): the new head trains alone for the first epochs, on
top of pretrained features it cannot yet spoil, then every layer trains. With optim.layer_decay
the later phase's rates grow toward the head. Batch-norm statistics update in both phases."""
from __future__ import annotations

from typing import Optional

from ...models.pretrained import head_name
from ...models.strategies import strategy_attr
from .base import PLUGINS, Context, Plugin


class TwoPhase(Plugin):
    """Before each epoch: only the head's parameters take gradients during the first `head_epochs`."""

    order = 5  # before the layers plugin, whose own freezing (a whitening bias) must have the last word

    def __init__(self, head_epochs: int):
        self.head_epochs = head_epochs

    def on_epoch_start(self, trainer) -> None:
        head = head_name(trainer.model)
        body_trains = trainer.epoch >= self.head_epochs
        for name, p in trainer.model.named_parameters():
            if name.split(".")[0] != head:
                p.requires_grad_(body_trains)  # no gradient, no step: the optimizer skips them


@PLUGINS.register("two_phase")
def _two_phase(ctx: Context) -> Optional[Plugin]:
    m = ctx.cfg.model
    return TwoPhase(m.head_epochs) if strategy_attr(m, "head_first", False) else None
