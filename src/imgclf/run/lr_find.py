"""The learning-rate range test (Smith 2015, 'Cyclical Learning Rates', section 3.3): train the
config's own model on its own data, augmentation and batch while the rate grows exponentially
from `start` to `end`, and read a rate off the loss.

As fastai's `lr_find` does: 1e-7 to 10 over 100 steps, stop once the smoothed loss passes 4x its
best, suggest 'valley' (two thirds down the longest stretch where the smoothed loss falls) and
'steep' (the steepest fall, skipping the first 10 steps, as Lightning's Tuner does). Unlike them,
each repeat is seeded (same command, same answer) and several seeds give the suggestion's spread,
since a single curve's suggestion jumps with its noise (Lightning issues #1767 and #3295).
Nothing is restored afterwards because nothing is reused: each repeat builds its model and
optimizer from the config, and the real run builds its own again.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import replace
from typing import Callable

from ..config.schema import ExperimentConfig
from ..core.errors import ConfigError
from ..engine.plugins import Plugin
from ..engine.trainer import Trainer
from ..runtime.device import pick_device
from .build import prepare_data, seeded_model
from .preflight import preflight

SMOOTHING = 0.98  # the weight of the running mean of the loss (fastai's beta)
SKIP_START = 10  # steps ignored by 'steep': the first losses say more about initialisation than the rate


class _RangePace:
    """The rate of step k of n: start * (end / start) ** (k / (n - 1)), whatever the epoch length."""

    def __init__(self, start: float, end: float, steps: int, steps_per_epoch: int):
        self.start, self.end, self.n, self.per_epoch = start, end, steps, steps_per_epoch

    def lr(self, t: float) -> float:
        k = round(t * self.per_epoch)
        return self.start * (self.end / self.start) ** (min(k, self.n - 1) / max(self.n - 1, 1))

    def share(self, t: float) -> float:
        return min(1.0, round(t * self.per_epoch) / self.n)


class _Record(Plugin):
    """Keeps each step's rate and loss; ends the test after `steps` or once the loss diverges."""

    def __init__(self, steps: int, diverge: float):
        self.steps, self.diverge = steps, diverge
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self._mean = 0.0
        self.done = False

    def on_batch_end(self, trainer, step, loss) -> None:
        value = float(loss.detach())  # one host sync per step: the test is 100 steps, not an epoch
        self.lrs.append(trainer.lr)
        self.losses.append(value)
        self._mean = SMOOTHING * self._mean + (1 - SMOOTHING) * value
        avg = self._mean / (1 - SMOOTHING ** len(self.losses))  # debiased, as fastai smooths
        self.smoothed.append(avg)
        if (len(self.losses) >= self.steps or not math.isfinite(value)
                or avg > self.diverge * min(self.smoothed)):
            self.done = True
            trainer.end_epoch(keep=False)


def suggestions(lrs: list[float], smoothed: list[float]) -> dict:
    """'valley' and 'steep' rates of one curve of smoothed losses."""
    n = len(smoothed)
    if n < SKIP_START + 3:
        raise ConfigError(f"the loss diverged after {n} steps: lower the start rate (--start) or the batch's "
                          f"difficulty; a suggestion needs at least {SKIP_START + 3} steps")
    # steep: the most negative slope of the loss against log10(rate)
    logs = [math.log10(x) for x in lrs]
    grads = [(smoothed[i + 1] - smoothed[i - 1]) / (logs[i + 1] - logs[i - 1]) for i in range(SKIP_START, n - 1)]
    steep = lrs[SKIP_START + min(range(len(grads)), key=grads.__getitem__)]
    # valley: the longest stretch where the smoothed loss keeps falling, two thirds of the way down it
    best_len, best_at, run_start = 0, 0, 0
    for i in range(1, n):
        if smoothed[i] >= smoothed[i - 1]:
            run_start = i
        elif i - run_start > best_len:
            best_len, best_at = i - run_start, run_start
    valley = lrs[best_at + (2 * best_len) // 3]
    return {"valley": valley, "steep": steep}


def lr_find(cfg: ExperimentConfig, seed: int = 0, repeats: int = 3, start: float = 1e-7, end: float = 10.0, steps: int = 100,
            diverge: float = 4.0, log: Callable[[str], None] = print) -> dict:
    """Run the range test `repeats` times (seeds seed, seed+1, ...); the curves, each one's suggestions,
    and their geometric median and spread."""
    if not 0 < start < end:
        raise ConfigError(f"--start {start:g} and --end {end:g}: need 0 < start < end, e.g. 1e-7 and 10")
    if steps < SKIP_START + 3 or repeats < 1:
        raise ConfigError(f"--steps {steps} / --repeats {repeats}: need at least {SKIP_START + 3} steps and one repeat")
    preflight(cfg)
    splits = prepare_data(cfg)  # once: every repeat reads the same decoded data
    device = pick_device(cfg.train.device)
    curves = []
    for r in range(repeats):
        c = replace(cfg, train=replace(cfg.train, seed=seed + r, time_budget=None))
        model, _ = seeded_model(c, splits)
        rec = _Record(steps, diverge)
        trainer = Trainer(c, model.to(device), splits, device, plugins=[rec])
        trainer.pace = _RangePace(start, end, steps, trainer.steps)
        while not rec.done:  # epochs until the test's steps are done (digits: 23 steps an epoch at batch 64)
            trainer.train_one_epoch()
            trainer.epoch += 1
        s = suggestions(rec.lrs, rec.smoothed)
        log(f"seed {seed + r}: valley {s['valley']:.2e}, steep {s['steep']:.2e} ({len(rec.lrs)} steps)")
        curves.append({"seed": seed + r, "lrs": rec.lrs, "losses": rec.losses, "smoothed": rec.smoothed, **s})
    out: dict = {"config": {"model": cfg.model.name, "data": cfg.data.name, "batch_size": cfg.train.batch_size,
                            "optimizer": cfg.optim.name}, "start": start, "end": end, "steps": steps, "curves": curves}
    for key in ("valley", "steep"):
        vals = [c[key] for c in curves]
        out[key] = 10 ** statistics.median(math.log10(v) for v in vals)
        out[f"{key}_spread"] = [min(vals), max(vals)]
    return out
