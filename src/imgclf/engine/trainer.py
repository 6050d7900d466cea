"""The training loop: one function per phase, a short loop that calls them, plugins for the rest.

The loop keeps its state in plain values (epoch, history, best metric) and seeds each
epoch's data order, augmentation and dropout from (seed, epoch), so a run resumed from the
checkpoint of epoch k continues exactly as the uninterrupted run would have. Everything
else a run does (time budgets, augmentation phases, early stopping, checkpoints, the log)
is a plugin (engine/plugins/) called through the hooks below; the loop names none of them.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Optional, Sequence

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..core.errors import ImgclfError
from ..data.balance import class_counts, inverse_frequency
from ..data.loader import Transform, batches, num_batches
from ..data.splits import Splits
from ..evaluation import evaluate_split
from ..runtime.device import autocast, autocast_dtype, grad_scaler
from ..runtime.distributed import all_sum, same_buffers, whole_batches
from .monitor import Direction, improved
from .optim import build_optimizer, set_lr
from .pace import EpochPace


class TrainingDiverged(ImgclfError):
    """The loss became NaN or infinite."""


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct seed for each epoch of a run (data order, augmentation, dropout)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


class Trainer:
    """Trains `model` on `splits` as `cfg` says; `plugins` (see engine/plugins) do the rest.

    `extra_state` is saved into every checkpoint (classes, shapes, normalization statistics).
    """

    def __init__(self, cfg: ExperimentConfig, model: nn.Module, splits: Splits, device: torch.device,
                 plugins: Sequence = (), extra_state: Optional[dict] = None):
        if any(isinstance(m, nn.Conv2d) for m in model.modules()):
            # NHWC: CPU and GPU convolutions run faster in it (1,233 -> 1,806 images/s for
            # wide-deep-dropout at batch 128 on 2 Xeon cores); batches arrive NHWC too.
            model = model.to(memory_format=torch.channels_last)
        self.cfg, self.model, self.splits, self.device = cfg, model, splits, device
        self.plugins = sorted(plugins, key=lambda p: p.order)
        self.extra_state = extra_state or {}
        self.transform = Transform(cfg.data.augment, cfg.data.normalization, splits.mean, splits.std, splits.shape)
        self.optimizer = build_optimizer(model, cfg.optim)
        weight = None
        if cfg.train.class_weights == "auto":  # each class counts as much as the others, whatever its size
            weight = inverse_frequency(class_counts(splits.train.y, len(splits.classes))).to(device)
        self.loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=cfg.train.label_smoothing)
        self.amp_dtype = autocast_dtype(cfg.train.precision, device)
        self.scaler = grad_scaler(device, self.amp_dtype)
        # The compiled module shares the model's parameters; checkpoints and evaluation use the model.
        self.forward = torch.compile(model) if cfg.train.compile else model
        # The data step: batches whole at loss weight 1; under torchrun, each process's shard
        # (see runtime/distributed.py, which also wraps `forward` in DistributedDataParallel).
        self.feed = whole_batches
        self.num_classes = len(splits.classes)
        self.pace = EpochPace(cfg)  # how far along the run is; a plugin may pace it by time instead
        self.epoch = 0  # epochs completed
        self.history: list[dict] = []
        # With no validation split there is nothing to choose weights by (the lowest training loss
        # says nothing of generalization, and weight decay can raise it as the rate anneals): keep
        # the last epoch's, the end of the schedule. An explicit train_* monitor is still obeyed.
        no_val = splits.val is None and cfg.train.monitor.startswith("val_")
        self.monitor = "last" if no_val else cfg.train.monitor
        self.best_value: Optional[float] = None
        self.best_epoch: Optional[int] = None
        self.best_state: Optional[dict] = None
        self.restore_best = True  # load the best weights at the end (early stopping may say not to)
        self.stop_reason: Optional[str] = None
        self.view: dict = {}  # this epoch's training view (e.g. a smaller crop), set by plugins at its start
        self.lr = cfg.optim.lr
        self.val_seconds = 0.0  # the last validation pass's duration
        self.notes: dict = {}  # figures plugins report into the run's metrics
        self._cut: Optional[bool] = None  # an epoch ended early by a plugin: keep it (True) or drop it

    @property
    def steps(self) -> int:
        """Batches per training epoch."""
        return num_batches(len(self.splits.train), self.cfg.train.batch_size, train=True)

    # -- what plugins call ---------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the current epoch (the first reason given is kept)."""
        self.stop_reason = self.stop_reason or reason

    def end_epoch(self, keep: bool) -> None:
        """End the current epoch after this batch; `keep` its metrics, or drop it as unfinished."""
        self._cut = keep

    def _call(self, hook: str, *args) -> None:
        for p in self.plugins:
            getattr(p, hook)(self, *args)

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "trainer": {"epoch": self.epoch, "history": self.history, "monitor": self.monitor,
                        "best_value": self.best_value, "best_epoch": self.best_epoch,
                        "plugins": {p.name: p.state_dict() for p in self.plugins}},
            **self.extra_state,
        }

    def load_state_dict(self, state: dict, best_model: Optional[dict] = None) -> None:
        """Restore from a checkpoint's state (and the best weights, if kept separately)."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        t = state["trainer"]
        self.epoch, self.history = int(t["epoch"]), list(t["history"])
        self.best_value, self.best_epoch = t["best_value"], t["best_epoch"]
        saved = t.get("plugins", {})
        for p in self.plugins:
            if p.name in saved:
                p.load_state_dict(saved[p.name])
        self.best_state = copy.deepcopy(best_model) if best_model is not None else None

    # -- phases --------------------------------------------------------------------------------
    def step(self, xb: torch.Tensor, yb: torch.Tensor, weight: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on a batch, its loss counted `weight` times; returns the logits and the loss."""
        with autocast(self.device, self.amp_dtype):
            out = self.forward(xb)
        loss = self.loss_fn(out.float(), yb)
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            (loss * weight).backward()
            self.optimizer.step()
        else:  # fp16: scale the loss so small gradients do not underflow
            self.scaler.scale(loss * weight).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        return out, loss

    def train_one_epoch(self) -> Optional[dict]:
        """Train one epoch; returns its training metrics, or None when a plugin ended it and dropped it."""
        cfg = self.cfg
        seed = epoch_seed(cfg.train.seed, self.epoch)
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout draws from the global generator
        self.model.train()
        # Running sums stay on the device: no host sync per batch.
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen = 0
        it = self.feed(batches(self.splits.train, cfg.train.batch_size, self.transform, self.device, train=True,
                               generator=g, epoch=self.epoch, seed=cfg.train.seed, crop=self.view.get("crop"),
                               balanced=self.num_classes if cfg.data.sampler == "balanced" else None))
        steps = self.steps
        for i, (xb, yb, weight) in enumerate(it):
            self.lr = self.pace.lr(self.epoch + i / steps)
            set_lr(self.optimizer, self.lr)
            out, loss = self.step(xb, yb, weight)
            loss_sum += loss.detach() * len(yb)
            correct += (out.detach().argmax(1) == yb).sum()
            seen += len(yb)
            self._call("on_batch_end", i, loss)
            if self._cut is not None:
                break
        keep, self._cut = self._cut, None
        if keep is False:
            return None
        same_buffers(self.model)
        # summed over the processes of a data-parallel run (float64: counts stay exact)
        total = all_sum(torch.stack([loss_sum.double(), correct.double(), loss_sum.new_tensor(seen).double()]))
        train_loss = float(total[0] / total[2].clamp_min(1))
        if not math.isfinite(train_loss):
            raise TrainingDiverged(f"training diverged: the loss is {train_loss} in epoch {self.epoch + 1}; "
                                   f"lower optim.lr (now {cfg.optim.lr:g})")
        return {"train_loss": train_loss, "train_acc": float(total[1] / total[2].clamp_min(1)), "lr": self.lr,
                **self.view}

    def validate(self) -> dict:
        """Loss and accuracy on the validation split (None if there is none)."""
        if self.splits.val is None:
            return {"val_loss": None, "val_acc": None}
        t = time.perf_counter()
        m = evaluate_split(self.model, self.splits.val, self.transform, self.device, self.num_classes,
                           self.cfg.train.eval_batch_size, self.cfg.train.label_smoothing, full=False,
                           amp_dtype=self.amp_dtype)
        self.val_seconds = time.perf_counter() - t
        # its time apart: an epoch's training time (and time per step) is its seconds less this
        return {"val_loss": m["loss"], "val_acc": m["top1"], "val_balanced_acc": m["balanced_acc"],
                "val_macro_f1": m["macro_f1"], "val_seconds": self.val_seconds}

    def keep_if_best(self, record: dict) -> None:
        """Remember this epoch's weights when its monitored metric is the best so far."""
        value = record.get(self.monitor)
        if self.monitor == "last" or improved(value, self.best_value, Direction.of(self.monitor)):
            self.best_value, self.best_epoch = value, self.epoch
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train until the epoch count or a plugin stops the run; keep the best weights."""
        self._call("on_fit_start")
        while self.epoch < self.cfg.train.epochs and self.stop_reason is None:
            t0 = time.perf_counter()
            self.view = {}
            self._call("on_epoch_start")
            record = self.train_one_epoch()
            if record is None:
                break
            record.update(self.validate())
            self.epoch += 1
            elapsed = self.history[-1]["elapsed"] if self.history else 0.0
            record = {"epoch": self.epoch, **record, "seconds": time.perf_counter() - t0}
            record["elapsed"] = elapsed + record["seconds"]  # spans resumed sessions
            self.history.append(record)
            self.keep_if_best(record)
            self._call("on_epoch_end", record)
        self._call("on_fit_end")
        if self.best_state is not None and self.restore_best:
            self.model.load_state_dict(self.best_state)
        return self.history
