"""The training loop: one function per phase, a short loop that calls them.

The loop keeps its state in plain values (epoch, history, best metric) and
seeds each epoch's data order, augmentation and dropout from (seed, epoch),
so a run resumed from the checkpoint of epoch k continues exactly as the
uninterrupted run would have.
"""
from __future__ import annotations

import copy
import json
import math
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from torch import nn

from ..data.loader import Transform, batches, num_batches
from ..data.splits import Split, Splits
from ..errors import ConfigError, ImgclfError
from ..evaluation import evaluate_split
from ..evaluation.evaluate import TTA_VIEWS
from ..models.conv_groups import init_from_data
from ..models.ensemble import Ensemble, mean_logits, member_loss
from .callbacks import Callback, EarlyStopping, improved, mode_of
from .checkpoint import save_checkpoint
from .lookahead import Lookahead
from .mutual import Peers, mutual_loss
from .optim import TIME_DRIVEN, build_optimizer, lr_at, set_lr
from .precision import autocast, autocast_dtype, grad_scaler
from .pruning import LossPruner
from .sam import SAM
from .self_distill import SelfDistillation


class TrainingDiverged(ImgclfError):
    """The loss became NaN or infinite."""


def epoch_seed(seed: int, epoch: int) -> int:
    """A distinct seed for each epoch of a run (data order, augmentation, dropout)."""
    return (seed * 1_000_003 + epoch * 7919 + 17) % (2**63 - 1)


def format_record(r: dict, epochs: int) -> str:
    """One log line per epoch."""
    w = len(str(epochs))
    line = f"epoch {r['epoch']:>{w}}/{epochs}  train loss {r['train_loss']:.4f} acc {100 * r['train_acc']:6.2f}%"
    if r.get("val_loss") is not None:
        line += f"  val loss {r['val_loss']:.4f} acc {100 * r['val_acc']:6.2f}%"
    if r.get("crop"):
        line += f"  crop {r['crop']}"
    if r.get("trivial"):
        line += f"  trivial {r['trivial']:g}"
    if r.get("images") is not None:
        line += f"  images {r['images']:,}"
    return line + f"  lr {r['lr']:.3g}  {r['seconds']:.1f}s"


class Trainer:
    """Trains `model` on `splits` as `cfg` says, writing checkpoints and history into `run_dir`.

    With `train.mutual` set, `peer` (a model of the same shape, initialised differently) trains
    beside it (deep mutual learning); validation, checkpoints and the kept weights are `model`'s.
    """

    def __init__(self, cfg, model: nn.Module, splits: Splits, device: torch.device,
                 run_dir: Optional[Path] = None, log: Callable[[str], None] = print, progress: bool = False,
                 extra_state: Optional[dict] = None, callbacks: tuple = (), peer: Optional[nn.Module] = None):
        if (peer is None) != (cfg.train.mutual is None):
            raise ValueError("pass a peer model exactly when train.mutual is set")
        if isinstance(model, Ensemble):
            clash = [k for k in ("mutual", "self_distill", "prune_data") if getattr(cfg.train, k)]
            if clash:  # each reads one (batch, classes) output per image; an ensemble trains on several
                raise ConfigError(f"model.members={len(model.members)} does not combine with train.{clash[0]}; "
                                  f"set model.members=1 or remove train.{clash[0]}")
        if any(isinstance(m, nn.Conv2d) for m in model.modules()):
            # NHWC: CPU and GPU convolutions run faster in it (1,233 -> 1,806 images/s for
            # wide-deep-dropout at batch 128 on 2 Xeon cores); batches arrive NHWC too.
            model = model.to(memory_format=torch.channels_last)
            peer = peer.to(memory_format=torch.channels_last) if peer is not None else None
        self.cfg, self.model, self.splits, self.device = cfg, model, splits, device
        self.peer = peer
        self.net = Peers(model, peer) if peer is not None else model  # what trains: the model, or it and its peer
        self.run_dir, self.log, self.progress = run_dir, log, progress
        self.extra_state = extra_state or {}  # saved into every checkpoint (classes, shapes, stats)
        self.transform = Transform(cfg.data.augment, cfg.data.normalization, splits.mean, splits.std)
        self._check_early_crop()
        self.optimizer = build_optimizer(self.net, cfg.optim)
        self.loss_fn = nn.CrossEntropyLoss(label_smoothing=cfg.train.label_smoothing)
        self.amp_dtype = autocast_dtype(cfg.train.precision, device)
        self.scaler = grad_scaler(device, self.amp_dtype)
        # The compiled module shares the model's parameters; checkpoints and evaluation use the model.
        self.forward = torch.compile(self.net) if cfg.train.compile else self.net
        self.num_classes = len(splits.classes)
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
        self.stop_reason: Optional[str] = None
        self.clock: Optional[tuple[float, float]] = None  # time-driven schedule: (start, end) of training
        self.reserve = 0.0  # seconds of the time budget kept back for the final test pass
        self.callbacks: list[Callback] = list(callbacks)
        self._init_from_data()
        self.lookahead = Lookahead(self.net, cfg.train.lookahead) if cfg.train.lookahead else None
        t = cfg.train
        if t.sam and self.scaler is not None:
            raise ConfigError(f"train.sam={t.sam:g} does not combine with fp16 loss scaling; "
                              "set train.precision to bf16 or fp32, or remove train.sam")
        self.sam = SAM(self.net, t.sam) if t.sam else None
        self.pruner = (LossPruner(len(splits.train), t.prune_data, t.prune_data_until, splits.train.x.device)
                       if t.prune_data else None)
        self.distill = (SelfDistillation(len(splits.train), len(splits.classes), t.self_distill, splits.train.x.device)
                        if t.self_distill is not None else None)
        es = cfg.train.early_stopping
        if es.enabled:
            mon = es.monitor or self.monitor
            if splits.val is None and mon.startswith("val_"):
                mon = "train_loss"
            self.callbacks.append(EarlyStopping(mon, es.patience, es.min_delta))

    def _check_early_crop(self) -> None:
        """Refuse, before training, an early crop that is not smaller than the images or that the model
        cannot take (a model that flattens its features needs the full size)."""
        size = self.cfg.data.augment.early_crop
        if size is None:
            return
        x = self.splits.train.x
        if size >= min(x.shape[-2:]):
            raise ConfigError(f"data.augment.early_crop={size} must be smaller than the images' side "
                              f"({min(x.shape[-2:])} pixels); lower it or remove it")
        probe = self.transform.eval(x[:2].to(self.device))[..., :size, :size]
        was_training = self.model.training
        self.model.eval()  # no change to batch-norm statistics
        try:
            with torch.no_grad():
                self.model(probe)
        except RuntimeError as e:
            raise ConfigError(f"data.augment.early_crop={size}: the model cannot take {size}x{size} inputs "
                              f"({str(e).splitlines()[0][:80]}); use a model that ends in global pooling "
                              f"(conv-groups, resnet) or remove early_crop") from None
        finally:
            self.model.train(was_training)

    def _init_from_data(self, n: int = 5000) -> None:
        """Set data-initialized layers (patch whitening) from a seeded sample of `n` training images,
        as evaluation sees them. A resumed run then loads its checkpoint's weights over these."""
        if not any(hasattr(m, "init_from_data") for m in self.net.modules()):
            return
        x = self.splits.train.x
        g = torch.Generator().manual_seed(self.cfg.train.seed)
        idx = torch.randperm(len(x), generator=g)[:n].to(x.device)
        init_from_data(self.net, self.transform.eval(x[idx].to(self.device)))

    # -- state ---------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        """Ask the loop to stop after the current epoch."""
        self.stop_reason = self.stop_reason or reason

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "trainer": {"epoch": self.epoch, "history": self.history, "monitor": self.monitor,
                        "best_value": self.best_value, "best_epoch": self.best_epoch,
                        "callbacks": [c.state_dict() for c in self.callbacks],
                        **({"pruner": self.pruner.state_dict()} if self.pruner is not None else {}),
                        **({"distill": self.distill.state_dict()} if self.distill is not None else {})},
            **({"peer": self.peer.state_dict()} if self.peer is not None else {}),
            **self.extra_state,
        }

    def load_state_dict(self, state: dict, best_model: Optional[dict] = None) -> None:
        """Restore from a checkpoint's state (and the best weights, if kept separately)."""
        self.model.load_state_dict(state["model"])
        if self.peer is not None:
            self.peer.load_state_dict(state["peer"])
        self.optimizer.load_state_dict(state["optimizer"])
        t = state["trainer"]
        self.epoch, self.history = int(t["epoch"]), list(t["history"])
        self.best_value, self.best_epoch = t["best_value"], t["best_epoch"]
        if self.pruner is not None and "pruner" in t:
            self.pruner.load_state_dict(t["pruner"])
        if self.distill is not None and "distill" in t:
            self.distill.load_state_dict(t["distill"])
        for cb, s in zip(self.callbacks, t.get("callbacks", [])):
            cb.load_state_dict(s)
        self.best_state = copy.deepcopy(best_model) if best_model is not None else None
        if self.lookahead is not None:
            self.lookahead.reset()  # each epoch ends synced, so the saved weights are the slow copy

    # -- phases --------------------------------------------------------------------------------
    def _lr(self, epoch_progress: float, now: float) -> float:
        """The rate now: from the epoch progress, or from the elapsed share of the time budget."""
        cfg = self.cfg
        if self.clock is not None:  # (start, end of training) in perf_counter seconds
            start, end = self.clock
            return lr_at(now - start, max(end - start, 1e-9), cfg.schedule, cfg.optim.lr)
        return lr_at(epoch_progress, cfg.train.epochs, cfg.schedule, cfg.optim.lr)

    def _progress(self, epoch_progress: float, now: float) -> float:
        """The share of the run done (0 to 1): of the time budget if it drives the schedule, else of the epochs."""
        if self.clock is not None:
            start, end = self.clock
            return (now - start) / max(end - start, 1e-9)
        return epoch_progress / self.cfg.train.epochs

    def crop_size(self, now: float) -> Optional[int]:
        """The side of this epoch's training crops: early_crop while the run's share done is below
        early_crop_share (decided at the epoch's start), else None (full size)."""
        a = self.cfg.data.augment
        if a.early_crop is None or self._progress(self.epoch, now) >= a.early_crop_share:
            return None
        return a.early_crop

    def strong_augment(self, now: float) -> bool:
        """Whether this epoch's batches get TrivialAugment: while the run's share done is below
        trivial_share (decided at the epoch's start)."""
        a = self.cfg.data.augment
        return bool(a.trivial) and self._progress(self.epoch, now) < a.trivial_share

    def train_one_epoch(self, deadline: Optional[float]) -> Optional[dict]:
        """Train one epoch; returns the train metrics, or None if the deadline cut it short.

        With a time-driven schedule a cut-short epoch still returns its metrics (marked
        partial): its last steps ran at the end of the annealing, so they are kept.
        """
        cfg = self.cfg
        seed = epoch_seed(cfg.train.seed, self.epoch)
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)  # dropout draws from the global generator
        self.net.train()
        for m in self.net.modules():
            if hasattr(m, "set_epoch"):  # layers trained for the first epochs only (whitening bias)
                m.set_epoch(self.epoch)
        train = self.splits.train
        now = time.perf_counter()
        plan = self.pruner.plan(self._progress(self.epoch, now), g) if self.pruner is not None else None
        subset, weights = plan if plan is not None else (None, None)
        steps = num_batches(len(train) if subset is None else len(subset), cfg.train.batch_size, train=True)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        seen, lr = 0, cfg.optim.lr
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=steps, leave=False, desc=f"epoch {self.epoch + 1}", file=sys.stderr, unit="batch")
        crop, strong = self.crop_size(now), self.strong_augment(now)
        # this epoch's augmentation, kept in the history and the log line
        view = {**({"crop": crop} if crop else {}), **({"trivial": cfg.data.augment.trivial} if strong else {})}
        it = batches(train, cfg.train.batch_size, self.transform, self.device, train=True, generator=g,
                     epoch=self.epoch, seed=cfg.train.seed, crop=crop, subset=subset,
                     with_index=self.pruner is not None or self.distill is not None, strong=strong)
        for i, (xb, yb, *ib) in enumerate(it):
            lr = self._lr(self.epoch + i / steps, now)
            set_lr(self.optimizer, lr)
            out = self._forward(xb)
            progress = self._progress(self.epoch + i / steps, now)
            loss, per = self._loss(out, yb, weights, ib, progress)
            if self.pruner is not None:  # per-image losses, recorded for the next epoch's plan
                self.pruner.update(ib[0], per.detach())
            shown = per.mean() if per is not None else loss / (2 if self.peer is not None else 1)
            self.optimizer.zero_grad(set_to_none=True)
            if self.scaler is None:
                loss.backward()
                if self.sam is not None and progress >= cfg.train.sam_from:
                    self.sam.second_pass(lambda: self._loss(self._forward(xb), yb, weights, ib, progress)[0])
                self.optimizer.step()
            else:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.optimizer)
                self.scaler.update()
            if self.lookahead is not None:
                self.lookahead.step(self._progress(self.epoch + (i + 1) / steps, now))
            # Running sums stay on the device: no host sync per batch.
            loss_sum += shown.detach() * len(yb)
            correct += (mean_logits(out[0] if self.peer is not None else out).detach().argmax(1) == yb).sum()
            seen += len(yb)
            if bar is not None:
                bar.update(1)
                if i % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}")
            now = time.perf_counter()
            if deadline is not None and now > deadline:
                if bar is not None:
                    bar.close()
                if self.clock is None or seen == 0:
                    return None
                if self.lookahead is not None:
                    self.lookahead.sync(1.0)
                return {"train_loss": float(loss_sum) / seen, "train_acc": int(correct) / seen, "lr": lr,
                        **view, **self._images(seen), "partial": True}
        if bar is not None:
            bar.close()
        if self.lookahead is not None:  # end each epoch synced: evaluate and save the slow weights
            self.lookahead.sync(self._progress(self.epoch + 1, time.perf_counter()))
        train_loss = float(loss_sum) / max(seen, 1)
        if not math.isfinite(train_loss):
            raise TrainingDiverged(
                f"training diverged: the loss is {train_loss} in epoch {self.epoch + 1}; "
                f"lower optim.lr (now {cfg.optim.lr:g})"
            )
        return {"train_loss": train_loss, "train_acc": int(correct) / max(seen, 1), "lr": lr,
                **view, **self._images(seen)}

    def _forward(self, xb: torch.Tensor) -> torch.Tensor:
        with autocast(self.device, self.amp_dtype):
            return self.forward(xb)

    def _loss(self, out: torch.Tensor, yb: torch.Tensor, weights, ib,
              progress: float) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The batch's training loss, and its per-image losses when data pruning weighs them.

        `progress` is the run's share done (0 to 1), which self-distillation's mix follows."""
        t = self.cfg.train
        if self.peer is not None:  # the model's and its peer's losses, summed; shown per model
            return mutual_loss(out, yb, t.mutual, t.label_smoothing), None
        if self.distill is not None:  # targets mixed with last epoch's predictions
            return self.distill.loss(out, yb, ib[0], progress, t.label_smoothing), None
        if self.pruner is None:
            return member_loss(self.loss_fn, out.float(), yb), None
        per = nn.functional.cross_entropy(out.float(), yb, reduction="none",
                                          label_smoothing=t.label_smoothing)
        # the kept easy images weigh more, so the gradient stays unbiased
        return (per.mul(weights[ib[0]]).mean() if weights is not None else per.mean()), per

    def _images(self, seen: int) -> dict:
        """The epoch's count of trained images, recorded when pruning makes it vary."""
        return {"images": seen} if self.pruner is not None else {}

    def validate(self) -> dict:
        """Loss and accuracy on the validation split (empty if there is none)."""
        if self.splits.val is None:
            return {"val_loss": None, "val_acc": None}
        m = evaluate_split(self.model, self.splits.val, self.transform, self.device, self.num_classes,
                           self.cfg.train.eval_batch_size, self.cfg.train.label_smoothing, full=False,
                           amp_dtype=self.amp_dtype)
        return {"val_loss": m["loss"], "val_acc": m["top1"]}

    def _eval_seconds_per_image(self, n: int = 2000) -> float:
        """Seconds per image of a plain evaluation pass, timed on up to `n` training images."""
        train = self.splits.train
        sample = Split(train.x[:n], train.y[:n])
        t = time.perf_counter()
        evaluate_split(self.model, sample, self.transform, self.device, self.num_classes,
                       self.cfg.train.eval_batch_size, full=False, amp_dtype=self.amp_dtype)
        return (time.perf_counter() - t) / max(len(sample), 1)

    def save(self) -> None:
        """Write last.pt, best.pt (when this epoch is the best) and history.jsonl."""
        if self.run_dir is None:
            return
        state = self.state_dict()
        if self.best_epoch == self.epoch:
            save_checkpoint(state, self.run_dir / "best.pt")
        save_checkpoint(state, self.run_dir / "last.pt")
        text = "".join(json.dumps(r) + "\n" for r in self.history)
        tmp = self.run_dir / ".history.jsonl.tmp"
        tmp.write_text(text)
        tmp.replace(self.run_dir / "history.jsonl")

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train until the epoch count, early stopping or the time budget; keep the best weights."""
        cfg = self.cfg
        if self.monitor == "last" and self.epoch == 0:
            self.log(f"no validation split: the kept checkpoint is the last epoch's, not the best by {cfg.train.monitor}")
        budget = cfg.train.time_budget
        used = self.history[-1]["elapsed"] if self.history else 0.0  # the budget spans resumed sessions
        start = time.perf_counter() - used
        timed = budget is not None and cfg.schedule.name in TIME_DRIVEN
        # Keep back time for the final test evaluation, re-estimated from each validation pass.
        self.reserve = 0.02 * budget if budget else 0.0
        deadline = start + budget - self.reserve if budget else None
        self.clock = (start, deadline) if timed else None
        eval_timed = False  # without a validation split, an evaluation is timed once per session
        for cb in self.callbacks:
            cb.on_fit_start(self)
        while self.epoch < cfg.train.epochs and self.stop_reason is None:
            t0 = time.perf_counter()
            rec = self.train_one_epoch(deadline)
            if rec is None:
                self.stop(f"time budget of {budget:g}s reached during epoch {self.epoch + 1}; "
                          "that partial epoch was discarded")
                break
            partial = rec.pop("partial", False)
            tv = time.perf_counter()
            rec.update(self.validate())
            per_image = None
            reserve_test = budget and cfg.train.final_test  # a tuning run keeps no time for a test pass
            if reserve_test and self.splits.val is not None:
                per_image = (time.perf_counter() - tv) / max(len(self.splits.val), 1)
            elif reserve_test and not eval_timed:
                # No validation pass to time: time one evaluation of training images instead, once.
                # Without it the 2% reserve alone left a 30-minute run 24 s over its budget on 2 Zen 3
                # cores, where the 6-view test pass takes about a minute.
                per_image, eval_timed = self._eval_seconds_per_image(), True
            if per_image is not None:
                test_s = TTA_VIEWS[cfg.train.tta] * per_image * len(self.splits.test)  # the test pass runs TTA
                self.reserve = 0.02 * budget + 1.5 * test_s
                deadline = start + budget - self.reserve
                self.clock = (start, deadline) if timed else None
            if partial:
                self.stop(f"time budget of {budget:g}s: the schedule annealed over the budget; "
                          f"epoch {self.epoch + 1} was cut short at its end")
            self.epoch += 1
            rec = {"epoch": self.epoch, **rec, "seconds": time.perf_counter() - t0}
            rec["elapsed"] = (self.history[-1]["elapsed"] if self.history else 0.0) + rec["seconds"]
            self.history.append(rec)
            value = rec.get(self.monitor)
            if self.monitor == "last" or improved(value, self.best_value, mode_of(self.monitor)):
                self.best_value, self.best_epoch = value, self.epoch
                self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            for cb in self.callbacks:
                cb.on_epoch_end(self, rec)
            self.save()
            self.log(format_record(rec, cfg.train.epochs))
            if deadline is not None and time.perf_counter() > deadline and self.epoch < cfg.train.epochs:
                self.stop(f"time budget of {budget:g}s: the schedule annealed over the budget; ended after epoch "
                          f"{self.epoch}" if timed else f"time budget of {budget:g}s reached after epoch {self.epoch}")
        for cb in self.callbacks:
            cb.on_fit_end(self)
        if self.stop_reason:
            self.log(self.stop_reason)
        es = cfg.train.early_stopping
        if self.best_state is not None and (not es.enabled or es.restore_best):
            self.model.load_state_dict(self.best_state)
        return self.history
