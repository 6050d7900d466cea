"""Layers that take part in training beyond their weights: some are set from the training
images before the first epoch (patch whitening), some change with the epoch (a bias that
trains for the first epochs only). The plugin finds them by their methods."""
from __future__ import annotations

from typing import Optional

import torch

from .base import PLUGINS, Context, Plugin


class LayerHooks(Plugin):
    """Calls each layer's `init_from_data(images)` before a fresh run and `set_epoch(epoch)` before every epoch."""

    name = "layers"
    order = 10

    def __init__(self, sample: int = 5000):
        self.sample = sample  # images the data-initialized layers see (a few thousand suffice)

    def on_fit_start(self, trainer) -> None:
        if trainer.epoch > 0:  # resumed: the checkpoint holds the layers as they were set
            return
        layers = [m for m in trainer.model.modules() if hasattr(m, "init_from_data")]
        if not layers:
            return
        x = trainer.splits.train.x
        g = torch.Generator().manual_seed(trainer.cfg.train.seed)
        idx = torch.randperm(len(x), generator=g)[: self.sample].to(x.device)
        images = trainer.transform.eval(x[idx].to(trainer.device))  # as evaluation sees them
        for m in layers:
            m.init_from_data(images.to(next(m.parameters()).device))

    def on_epoch_start(self, trainer) -> None:
        for m in trainer.model.modules():
            if hasattr(m, "set_epoch"):
                m.set_epoch(trainer.epoch)


@PLUGINS.register("layers")
def _layers(ctx: Context) -> Optional[Plugin]:
    return LayerHooks()
