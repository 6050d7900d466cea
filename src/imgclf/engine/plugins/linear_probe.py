"""The linear probe (model.strategy: linear-probe): the frozen body's features are computed once per
image, in evaluation mode, and the head alone trains on them for every epoch, so an epoch costs a
pass over a few hundred numbers per image instead of a pass through the network.

While the head trains, the model's `forward` is the head's and the run's splits hold the features;
everything else (optimizer, schedule, checkpoints of the whole model, validation, the kept epoch)
is the usual loop's. At the end the model and splits are restored, so the test split is scored by
the whole network on real images.
"""
from __future__ import annotations

import time
from dataclasses import replace
from typing import Optional

import torch
from torch import nn

from ...data.loader import batches
from ...data.splits import Split
from ...models.pretrained import head_name
from ...models.strategies import strategy_attr
from .base import PLUGINS, Context, Plugin


class Features:
    """The transform of a split of features: they are used as they are (no augmentation applies)."""

    shape = None

    def __init__(self, aug_cfg):
        self.aug = aug_cfg

    def train(self, x, g=None, flip=None, size=None):
        return x

    def eval(self, x):
        return x


@torch.inference_mode()
def head_inputs(model: nn.Module, head: nn.Module, split: Split, transform, device: torch.device,
                batch_size: int) -> Split:
    """What `head` receives for each image of `split` (float32), the model in evaluation mode."""
    seen: list[torch.Tensor] = []
    hook = head.register_forward_pre_hook(lambda m, args: seen.append(args[0].float()))
    model.eval()
    try:
        for xb, _ in batches(split, batch_size, transform, device, train=False):
            model(xb)
    finally:
        hook.remove()
    return Split(torch.cat(seen).contiguous(), split.y.to(device))


class LinearProbe(Plugin):
    """At the fit's start: features of the train and validation splits; the head trains on them."""

    order = 1  # before any plugin that looks at the data

    def __init__(self, log):
        self.log = log
        self.saved: Optional[tuple] = None

    def on_fit_start(self, trainer) -> None:
        model, s = trainer.model, trainer.splits
        head = getattr(model, head_name(model))
        t = time.perf_counter()
        bs = trainer.cfg.train.eval_batch_size
        train = head_inputs(model, head, s.train, trainer.transform, trainer.device, bs)
        val = head_inputs(model, head, s.val, trainer.transform, trainer.device, bs) if s.val else None
        seconds = time.perf_counter() - t
        trainer.notes["probe_feature_seconds"] = seconds
        self.log(f"linear probe: features of {len(train.y) + (len(val.y) if val else 0):,} images "
                 f"({'x'.join(map(str, train.x.shape[1:]))} each) computed once in {seconds:.1f}s; "
                 f"{head_name(model)} trains on them")
        self.saved = (s, trainer.transform, trainer.forward)
        trainer.splits, trainer.transform = replace(s, train=train, val=val), Features(trainer.cfg.data.augment)
        model.forward = head.forward  # an instance attribute: the state_dict stays the whole model's
        trainer.forward = model

    def on_fit_end(self, trainer) -> None:
        if self.saved is not None:
            del trainer.model.forward
            trainer.splits, trainer.transform, trainer.forward = self.saved
            self.saved = None


@PLUGINS.register("linear_probe")
def _linear_probe(ctx: Context) -> Optional[Plugin]:
    return LinearProbe(ctx.log) if strategy_attr(ctx.cfg.model, "features_once", False) else None
