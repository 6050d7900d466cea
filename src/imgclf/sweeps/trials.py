"""Running a sweep's trials: one configuration alone, siblings that differ only in epochs read
off one run, or a cohort trained as one batched computation (engine/batched.py). Every
finished trial keeps its full resolved config, per-epoch history, final metrics, status,
reason and seconds as user attributes."""
from __future__ import annotations

import json
import os
import socket
import sys
import time
import traceback
from typing import Optional

from ..core.errors import ImgclfError
from ..engine.plugins import Plugin
from . import attrs as A
from .space import suggest
from .spec import BUDGET_STOP, SweepSpec
from .status import TrialStatus
from ..config.schema import ExperimentConfig

WORKER = f"{socket.gethostname()}:{os.getpid()}"


def tid(storage, study, trial) -> int:
    """The storage's id of a trial of `study`."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), trial.number)


class ReportObjective(Plugin):
    """Report the objective each epoch (for pruners), mark the trial alive, and stop it when the
    sweep's budget runs out (`deadline`, a time.time() value)."""

    def __init__(self, trial, objective: str, storage, trial_id: int, deadline: Optional[float] = None):
        self.trial, self.objective, self.storage, self.trial_id = trial, objective, storage, trial_id
        self.deadline = deadline
        self.history: list[dict] = []

    def on_batch_end(self, trainer, step, loss) -> None:
        import optuna

        if self.deadline is not None and time.time() > self.deadline:
            self.history = trainer.history
            raise optuna.TrialPruned(f"{BUDGET_STOP} during epoch {trainer.epoch + 1}")

    def on_epoch_end(self, trainer, record: dict) -> None:
        import optuna

        self.history = trainer.history
        self.storage.set_trial_user_attr(self.trial_id, A.ALIVE_AT, time.time())
        value = record.get(self.objective) if self.objective else None
        if value is not None:
            self.trial.report(float(value), record["epoch"])
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")


def run_trial(study, storage, spec: SweepSpec, trial, data_cache: dict, log,
              deadline: Optional[float] = None) -> TrialStatus:
    """Train one configuration and tell the study how it went; returns its status. Past `deadline`
    (time.time()), the trial is stopped and told pruned."""
    import optuna
    from optuna.trial import TrialState

    from ..run.train import fit_in_memory

    t0 = time.perf_counter()
    trial_id = tid(storage, study, trial)
    point = suggest(trial, spec.space)
    trial.set_user_attr(A.WORKER, WORKER)
    trial.set_user_attr(A.ALIVE_AT, time.time())
    trial.set_user_attr(A.POINT, json.loads(json.dumps(point)))
    label = ", ".join(f"{k}={v}" for k, v in point.items())
    try:
        cfg = spec.config_for(point)
        trial.set_user_attr(A.CONFIG, cfg.to_dict())
        # Optuna prunes by one objective only: a sweep of several reports nothing (and takes no pruner).
        cb = ReportObjective(trial, None if spec.multi else spec.options.objective, storage, trial_id, deadline)
        trainer = fit_in_memory(cfg, plugins=(cb,), splits=_splits(cfg, data_cache))
        history = trainer.history
        seconds = time.perf_counter() - t0
        # training seconds: the epochs' own, not the data loading the first trial of a worker pays
        measured = _measured(cfg, sum(h.get("seconds", 0.0) for h in history))
        values = spec.values(history[-1], measured)
        trial.set_user_attr(A.MEASURED, measured)
        trial.set_user_attr(A.HISTORY, history)
        trial.set_user_attr(A.METRICS, {"final": history[-1], "best_epoch": trainer.best_epoch,
                                        "best_value": trainer.best_value, "stop_reason": trainer.stop_reason})
        trial.set_user_attr(A.SECONDS, seconds)
        if values is None:
            raise ImgclfError(f"objective {spec.options.objective} is not available (no validation split?)")
        study.tell(trial, values)
        log(f"trial {trial.number}: {label} -> {_said(spec, values)} ({seconds:.1f}s)")
        return TrialStatus.COMPLETE
    except optuna.TrialPruned as e:
        trial.set_user_attr(A.HISTORY, cb.history)
        trial.set_user_attr(A.REASON, str(e))
        trial.set_user_attr(A.SECONDS, time.perf_counter() - t0)
        study.tell(trial, state=TrialState.PRUNED)
        log(f"trial {trial.number}: {label} -> pruned ({e})")
        return TrialStatus.PRUNED
    except Exception as e:  # a failing configuration is recorded and the sweep goes on
        reason = str(e) if isinstance(e, ImgclfError) else f"{type(e).__name__}: {e}"
        if not isinstance(e, ImgclfError):
            traceback.print_exc(file=sys.stderr)
        trial.set_user_attr(A.REASON, reason[:1000])
        trial.set_user_attr(A.SECONDS, time.perf_counter() - t0)
        study.tell(trial, state=TrialState.FAIL)
        log(f"trial {trial.number}: {label} -> failed: {reason}")
        return TrialStatus.FAILED


def _measured(cfg: ExperimentConfig, seconds: float) -> dict:
    """What is measured beside the epoch records, for objectives and the Pareto front of every
    sweep: trainable parameters (the model built without weights: milliseconds, next to a trial's
    training), training seconds."""
    from ..models.sizing import known_shape, model_input_shape, trainable_params
    from ..run.build import configured_model

    shape, classes = known_shape(cfg.data)
    model = configured_model(cfg, model_input_shape(cfg, shape), classes or 10, weights=False)
    return {"params": trainable_params(model), "train_seconds": seconds}


def _said(spec: SweepSpec, values: list[float]) -> str:
    return ", ".join(f"{name} {v:.4f}" if abs(v) < 100 else f"{name} {v:,.0f}"
                     for (name, _), v in zip(spec.objectives, values))


def _splits(cfg: ExperimentConfig, data_cache: dict):
    from ..run.build import prepare_data

    # the data, and the weights whose statistics normalize them when data.normalization=weights
    key = json.dumps([cfg.to_dict()["data"], cfg.model.pretrained if cfg.data.normalization == "weights" else None],
                     sort_keys=True)
    if key not in data_cache:
        data_cache.clear()  # keep one data set in memory
        data_cache[key] = prepare_data(cfg)
    return data_cache[key]


def _take(spec: SweepSpec, trials: list) -> tuple[list[dict], list]:
    """Each trial's point and config, recorded on the trial with this worker's name."""
    points = [suggest(t, spec.space) for t in trials]
    cfgs = [spec.config_for(p) for p in points]
    for t, p, cfg in zip(trials, points, cfgs):
        t.set_user_attr(A.WORKER, WORKER)
        t.set_user_attr(A.POINT, json.loads(json.dumps(p)))
        t.set_user_attr(A.CONFIG, cfg.to_dict())
    return points, cfgs


def run_siblings(study, storage, spec: SweepSpec, trials: list, data_cache: dict, log) -> list[TrialStatus]:
    """Trials that differ only in epochs: one run to the longest, each read at its own epoch count."""
    from ..run.train import fit_in_memory

    t0 = time.perf_counter()
    points, cfgs = _take(spec, trials)
    longest = max(range(len(cfgs)), key=lambda i: cfgs[i].train.epochs)
    log(f"training {len(trials)} configurations that differ only in epochs as one run of "
        f"{cfgs[longest].train.epochs} epochs, read at {sorted(c.train.epochs for c in cfgs)}")

    class Beat(Plugin):
        def on_epoch_end(self, trainer, record):
            for t in trials:
                storage.set_trial_user_attr(tid(storage, study, t), A.ALIVE_AT, time.time())

    error = None
    try:
        history = fit_in_memory(cfgs[longest], plugins=(Beat(),), splits=_splits(cfgs[0], data_cache)).history
    except ImgclfError as e:
        history, error = [], str(e)
    seconds = time.perf_counter() - t0
    return [_tell(study, spec, t, p, cfg, history[: cfg.train.epochs], error, seconds * cfg.train.epochs /
                  cfgs[longest].train.epochs, log, "") for t, p, cfg in zip(trials, points, cfgs)]


def _tell(study, spec: SweepSpec, t, point: dict, cfg: ExperimentConfig, hist: list[dict], error: Optional[str], seconds: float,
          log, tag: str) -> TrialStatus:
    """Record one trial read off a shared run: complete at its own epoch count, or failed."""
    from optuna.trial import TrialState

    label = ", ".join(f"{k}={v}" for k, v in point.items())
    t.set_user_attr(A.HISTORY, hist)
    t.set_user_attr(A.SECONDS, seconds)
    measured = _measured(cfg, seconds)
    t.set_user_attr(A.MEASURED, measured)
    values = spec.values(hist[-1], measured) if len(hist) == cfg.train.epochs and hist else None
    if values is None:
        reason = error or ("training stopped early" if len(hist) < cfg.train.epochs else
                           f"objective {spec.options.objective} is not available (no validation split?)")
        t.set_user_attr(A.REASON, reason)
        study.tell(t, state=TrialState.FAIL)
        log(f"trial {t.number}: {label} -> failed: {reason}")
        return TrialStatus.FAILED
    t.set_user_attr(A.METRICS, {"final": hist[-1], "best_epoch": None, "best_value": None, "stop_reason": None})
    study.tell(t, values)
    log(f"trial {t.number}: {label} -> {_said(spec, values)}{tag}")
    return TrialStatus.COMPLETE


def run_cohort(study, storage, spec: SweepSpec, trials: list, data_cache: dict, log) -> list[TrialStatus]:
    """Train trials of one cohort as one batched computation; siblings that differ only in epochs share a model."""
    from ..engine.batched import train_cohort
    from ..runtime.device import pick_device, torch_threads
    from .cohorts import shared_models

    t0 = time.perf_counter()
    points, cfgs = _take(spec, trials)
    model_cfgs, which = shared_models(cfgs)
    longest = max(c.train.epochs for c in cfgs)
    log(f"training {len(trials)} configurations together as one batched computation: {len(model_cfgs)} models, "
        f"batch {cfgs[0].train.batch_size}, up to {longest} epochs (results read at each configuration's own epochs)")
    for t in trials:
        t.set_user_attr(A.BATCHED, len(model_cfgs))
    last_beat = [time.time()]

    def on_epoch(epoch, records):
        if time.time() - last_beat[0] > 20:  # mark the trials alive, not too often
            last_beat[0] = time.time()
            for t in trials:
                storage.set_trial_user_attr(tid(storage, study, t), A.ALIVE_AT, time.time())

    with torch_threads(cfgs[0].train.threads):
        histories, failed, _ = train_cohort(model_cfgs, _splits(cfgs[0], data_cache),
                                            pick_device(cfgs[0].train.device), on_epoch)
    seconds = (time.perf_counter() - t0) / len(model_cfgs)
    return [_tell(study, spec, t, p, cfg, histories[i][: cfg.train.epochs], failed[i],
                  seconds * cfg.train.epochs / model_cfgs[i].train.epochs, log, " (batched)")
            for t, p, cfg, i in zip(trials, points, cfgs, which)]


