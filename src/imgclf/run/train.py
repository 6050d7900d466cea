"""Training as the API offers it: into a run folder (`train`), or in memory (`fit_in_memory`, for sweeps)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config.load import from_dict, load_config, save_config
from ..config.resume import refused_by_same_command, refused_overrides, resumable_keys
from ..config.schema import ExperimentConfig
from ..core.errors import ConfigError, RunError
from ..data.balance import class_counts, shows_balance
from ..data.balance import warning as balance_warning
from ..engine.checkpoint import check_model, load_checkpoint
from ..engine.optim import group_table
from ..engine.plugins import Plugin
from ..engine.trainer import Trainer
from ..evaluation import evaluate_split
from ..models.strategies import strategy_attr
from ..models.summary import format_summary, summarize
from ..runtime.device import machine, pick_device, torch_threads
from ..runtime.distributed import join, leave, main_first
from . import folder as R
from .build import build_trainer, configured_model, prepare_data, seeded_model
from .folder import Run
from .preflight import preflight


def _wanted(config, overrides: Sequence[str]):
    if isinstance(config, ExperimentConfig):
        return from_dict(config.to_dict(), overrides)  # re-validated: it may have been edited
    return load_config(config, overrides)


def _same_command(wanted: ExperimentConfig, run_dir: Path) -> None:
    """Refuse to continue `run_dir` with a command whose experiment is not the run's own (a longer run is)."""
    refused = refused_by_same_command(load_config(run_dir / R.CONFIG), wanted)
    if refused:
        k, a, b = refused[0]
        raise ConfigError(f"cannot resume {run_dir} with this command: {k} is {b!r} here and {a!r} in the run; "
                          f"run the command that started it, or train a new run under another --name")


def is_unfinished(name: str, runs_dir=None) -> Optional[bool]:
    """None if run `name` does not exist, True if it stopped before its end, False if it finished."""
    folder = R.runs_root(runs_dir) / name
    if not (folder / R.CONFIG).is_file():
        return None
    return not (folder / R.METRICS).is_file()


def _resolve(config, overrides: Sequence[str], resume, runs_dir, name: Optional[str] = None):
    """The run's config, its folder when resuming (else None) and the checkpoint states to resume from.

    `resume` is a run (name or folder) whose own config the overrides change, or True: the run
    `name`, continued by the command that started it (config and overrides compared with the run's)."""
    if resume is None:
        return _wanted(config, overrides), None, None, None
    if resume is True:
        if not name:
            raise ConfigError("--resume alone continues the run named by --name; add --name NAME, or give --resume RUN")
        run_dir = R.resolve_run(name, runs_dir)
        cfg = _wanted(config, overrides)
        _same_command(cfg, run_dir)
    else:
        run_dir = R.resolve_run(resume, runs_dir)
        cfg = load_config(run_dir / R.CONFIG, overrides)
        bad = refused_overrides(load_config(run_dir / R.CONFIG), cfg)
        if bad:
            raise ConfigError(f"{', '.join(bad)} cannot change when resuming; only {', '.join(resumable_keys())} can")
    R.remove_stale_temps(run_dir)
    state = best = None
    if (run_dir / R.LAST).exists():
        state = load_checkpoint(run_dir / R.LAST)
        if (run_dir / R.BEST).exists():
            best = load_checkpoint(run_dir / R.BEST)["model"]
    return cfg, run_dir, state, best


def _check_resumable(cfg: ExperimentConfig, run_dir: Path, state: dict, best: Optional[dict]) -> None:
    """The checkpoints fit the model the config builds: checked before any data is read."""
    model = configured_model(cfg, tuple(state["input_shape"]), len(state["classes"]), weights=False)
    check_model(model, state["model"], run_dir / R.LAST, run_dir / R.CONFIG)
    if best is not None:
        check_model(model, best, run_dir / R.BEST, run_dir / R.CONFIG)


def _logger(run_dir: Path, echo: bool) -> Callable[[str], None]:
    def log(msg: str) -> None:
        if echo:
            print(msg, flush=True)
        with open(run_dir / R.LOG, "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    return log


def train(config: ExperimentConfig | str | os.PathLike | None = None, overrides: Sequence[str] = (), *,
          name: Optional[str] = None, runs_dir=None, resume=None, progress: Optional[bool] = None,
          echo: bool = True, plugins: Sequence[Plugin] = ()) -> Optional[Run]:
    """Train an experiment (a config object, a YAML path or None for the default) into a run folder.

    With `resume` (a run name or folder), continue that run from its last checkpoint; only
    train.epochs, train.time_budget, train.device, train.threads and data.data_dir may be overridden.
    With `resume=True`, continue the run `name` from the same config and overrides that started it.
    `plugins` join the ones the config asks for (see engine/plugins). Under torchrun only rank 0
    writes the run folder and returns its Run; the other ranks return None.
    """
    cfg, run_dir, state, best_state = _resolve(config, overrides, resume, runs_dir, name)
    preflight(cfg)  # before anything is decoded or downloaded
    if state is not None:
        _check_resumable(cfg, run_dir, state, best_state)
    with torch_threads(cfg.train.threads):
        return _train(cfg, run_dir, state, best_state, overrides, resume, name, runs_dir, progress, echo, plugins)


def _train(cfg: ExperimentConfig, run_dir, state, best_state, overrides, resume, name, runs_dir, progress, echo, plugins):
    """train() once the config is resolved and checked, on the run's torch threads."""
    device = pick_device(cfg.train.device)
    world = join(device)  # under torchrun: this process's rank among the run's processes
    with main_first():  # rank 0 decodes and caches the data, the others read its cache
        splits = prepare_data(cfg)
    if state is not None and list(splits.classes) != list(state["classes"]):
        raise RunError(f"{run_dir / R.LAST} was trained on the classes {', '.join(map(str, state['classes']))}, the "
                       f"data now hold {', '.join(map(str, splits.classes))}; restore the data or train a new run")
    loaded: list[str] = []  # what loading pretrained weights said, logged once the run folder exists
    model, in_shape = seeded_model(cfg, splits, weights=state is None, log=loaded.append)
    summ = summarize(model, in_shape)
    log: Callable[[str], None] = lambda m: None  # ranks other than 0 train and score their shards, silently
    if world.main:
        if run_dir is None:
            run_dir = R.new_run_dir(name, f"{cfg.model.name}-{cfg.data.name}", runs_dir)
            R.atomic_write_text(run_dir / R.CONFIG, save_config(cfg))
            title = f"{cfg.model.name} on {cfg.data.name} ({len(splits.classes)} classes)"
            R.atomic_write_text(run_dir / R.SUMMARY_TXT, format_summary(summ, title) + "\n")
            R.write_json(run_dir / R.SUMMARY_JSON, summ.to_dict())
        elif overrides or resume is True:  # a longer run keeps its new length
            R.atomic_write_text(run_dir / R.CONFIG, save_config(cfg))
        log = _logger(run_dir, echo)
        if resume is None:
            _log_header(log, cfg, run_dir, splits, summ, device, world.size, loaded)
    trainer = build_trainer(cfg, model, splits, device, run_dir=run_dir, log=log,
                            progress=echo and sys.stderr.isatty() if progress is None else progress,
                            plugins=plugins, extra_state=_extra(cfg, splits, in_shape), world=world)
    if state is not None:
        trainer.load_state_dict(state, best_state)
        log(f"resuming {run_dir} after epoch {trainer.epoch}/{cfg.train.epochs}")
    elif strategy_attr(cfg.model, "freezes", False) or cfg.optim.lr_scales or cfg.optim.layer_decay:
        log("parameter groups (what trains, at what peak rate):")  # when some train slower, faster or not at all
        for line in group_table(trainer.optimizer, cfg.optim.lr):
            log(line)
    t0 = time.perf_counter()
    try:
        trainer.fit()
    except KeyboardInterrupt:
        log(f"interrupted after epoch {trainer.epoch}; continue with the same command and --resume, "
            f"or with: imgclf train --resume {run_dir}")
        raise
    if trainer.best_epoch is None:
        raise RunError(f"no epoch completed within train.time_budget={cfg.train.time_budget:g}s; raise the budget")
    _finish(trainer, run_dir, log, summ, t0)
    trainer.forward = None  # DistributedDataParallel goes before the process group it uses
    leave()
    return Run(run_dir) if world.main else None


def _log_header(log, cfg: ExperimentConfig, run_dir: Path, splits, summ, device, processes: int, loaded: list[str]) -> None:
    """The run log's opening lines: the folder, the data, the model, its pretrained weights and frozen part."""
    log(f"run {run_dir}" + (f" ({processes} processes, data-parallel)" if processes > 1 else ""))
    log(f"data {cfg.data.name}: {len(splits.train):,} train / {len(splits.val) if splits.val else 0:,} val / "
        f"{len(splits.test):,} test images of {'x'.join(map(str, splits.shape))}"
        + (f" (adapted from {'x'.join(map(str, splits.train.x.shape[1:]))} on the device)"
           if tuple(splits.train.x.shape[1:]) != splits.shape else "") + f", {len(splits.classes)} classes")
    log(f"model {cfg.model.name}: {summ.trainable_params:,} parameters, {summ.total_macs:,} mult-adds per image; "
        f"device {device}")
    if splits.note:
        log(splits.note)
    warn = balance_warning(class_counts(splits.train.y, len(splits.classes)), splits.classes,
                           remedied=cfg.train.class_weights != "none" or cfg.data.sampler != "shuffle")
    if warn:
        log(warn)
    for line in loaded:
        log(line)
    frozen = summ.total_params - summ.trainable_params
    if frozen and strategy_attr(cfg.model, "takes_trainable", False):
        log(f"frozen: {frozen:,} parameters (model.strategy={cfg.model.strategy}; trainable: {cfg.model.trainable}; "
            f"batch norm {cfg.model.frozen_bn})")
    elif frozen and strategy_attr(cfg.model, "head_only", False):
        log(f"frozen: {frozen:,} parameters (model.strategy={cfg.model.strategy}: the head alone trains; "
            f"batch norm frozen)")


def _extra(cfg: ExperimentConfig, splits, in_shape) -> dict:
    """What every checkpoint holds beside the weights: what inference needs to use them."""
    return {"config": cfg.to_dict(), "classes": splits.classes, "data_shape": list(splits.shape),
            "source_shape": list(splits.train.x.shape[1:]),  # as decoded, before data.image_size/channels
            "input_shape": list(in_shape), "mean": splits.mean.tolist(), "std": splits.std.tolist()}


def _finish(trainer: Trainer, run_dir: Path, log, summ, t0: float) -> None:
    """Score the test split once with the kept weights (unless a tuning run) and write metrics.json."""
    cfg, splits = trainer.cfg, trainer.splits
    t_end = time.perf_counter()  # training time so far is in the history; add what the test costs
    if trainer.best_state is not None:
        trainer.model.load_state_dict(trainer.best_state)  # the test split is scored with the kept weights
    test = None
    if cfg.train.final_test:
        test = evaluate_split(trainer.model, splits.test, trainer.transform, trainer.device, trainer.num_classes,
                              cfg.train.eval_batch_size, cfg.train.label_smoothing, tta=cfg.train.tta,
                              amp_dtype=trainer.amp_dtype)
    last = trainer.history[-1]
    metrics = {
        "budget_seconds": last["elapsed"] + time.perf_counter() - t_end,
        "test": test, "classes": splits.classes, "best_epoch": trainer.best_epoch, "monitor": trainer.monitor,
        "best_value": trainer.best_value, "best_record": trainer.history[trainer.best_epoch - 1],
        "epochs_run": trainer.epoch, "stop_reason": trainer.stop_reason, "train_seconds": last["elapsed"],
        "session_seconds": time.perf_counter() - t0, "params": summ.trainable_params, "mult_adds": summ.total_macs,
        "train_images": len(splits.train), "test_reserve_seconds": 0.0, **trainer.notes,
        "device": str(trainer.device), "machine": machine(trainer.device),
    }
    if run_dir is None:  # a rank other than 0: it took part in scoring the test split
        return
    R.write_json(run_dir / R.METRICS, metrics)
    kept = R.kept_phrase(trainer.best_epoch, trainer.monitor)
    if test is not None:
        top5 = f"top-5 {100 * test['top5']:.2f}%  " if len(splits.classes) > 5 else ""  # 5 of 5 or fewer says nothing
        if shows_balance(splits.train.y, len(splits.classes)):
            top5 += f"balanced {100 * test['balanced_acc']:.2f}%  macro-F1 {100 * test['macro_f1']:.2f}%  "
        log(f"test loss {test['loss']:.4f}  top-1 {100 * test['top1']:.2f}%  {top5}"
            f"({test['n']:,} images, {kept})")
    else:
        log(f"test split not scored (train.final_test: false); kept {kept}; score it once, when the choice is "
            f"made: imgclf evaluate {run_dir}")
    log(f"saved {run_dir}/ (config.yaml, history.jsonl, metrics.json, summary.txt, best.pt, last.pt)")


def fit_in_memory(cfg: ExperimentConfig, plugins: Sequence[Plugin] = (), log: Callable[[str], None] = lambda m: None,
                  splits=None) -> Trainer:
    """Train `cfg` without a run folder (as sweeps do); returns the Trainer (history, best epoch, model).

    The test split is not touched: sweeps choose on the validation split.
    """
    preflight(cfg)
    with torch_threads(cfg.train.threads):
        device = pick_device(cfg.train.device)
        splits = splits if splits is not None else prepare_data(cfg)
        model, _ = seeded_model(cfg, splits, log=log)
        trainer = build_trainer(cfg, model, splits, device, log=log, plugins=plugins)
        trainer.fit()
    return trainer
