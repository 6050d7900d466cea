"""Run a sweep: create or join its Optuna study, hand configurations to workers, record every trial.

Grid and hierarchical sweeps enqueue their points as waiting trials, which the
storages hand out atomically: each point runs exactly once however many
workers (or machines) share the sweep. Every finished trial keeps its full
resolved config, per-epoch history, final metrics, status, reason and seconds
as user attributes.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

import yaml

from ..engine.plugins import Plugin
from ..errors import ImgclfError
from ..atomic import atomic_write_text
from .space import coarse_values, decode_point, encode_point, grid_points, neighbours, product, suggest
from .spec import SweepSpec, load_sweep
from .store import SweepError, open_storage, redact, sweeps_root

WORKER = f"{socket.gethostname()}:{os.getpid()}"


def _pruner(name: str):
    import optuna

    return {
        "none": optuna.pruners.NopPruner, "median": lambda: optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1),
        "hyperband": optuna.pruners.HyperbandPruner, "successive-halving": optuna.pruners.SuccessiveHalvingPruner,
    }[name]()


def _sampler(spec: SweepSpec):
    import optuna

    if spec.options.strategy == "tpe":
        return optuna.samplers.TPESampler(seed=spec.options.seed)
    # grid and hierarchical points come from the queue; the sampler only fills nothing.
    return optuna.samplers.RandomSampler(seed=spec.options.seed)


def open_study(spec: SweepSpec, name: str, sweep_dir: Path, storage_url: Optional[str]):
    """Create the study (and enqueue the first grid) or join the existing one."""
    import optuna

    storage = open_storage(sweep_dir, storage_url)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction=spec.direction,
                                    sampler=_sampler(spec), pruner=_pruner(spec.options.pruner))
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(spec), pruner=_pruner(spec.options.pruner))
        created = False
    if created:
        study.set_user_attr("sweep", json.loads(json.dumps(spec.raw(), default=str)))
        if spec.options.strategy == "grid":
            _enqueue(study, spec, grid_points(spec.space), round_=0)
        elif spec.options.strategy == "hierarchical":
            _enqueue(study, spec, product(spec.space, {p.name: coarse_values(p, spec.options.points) for p in spec.space}), 0)
        study.set_user_attr("queued", True)
    else:
        saved = study.user_attrs.get("sweep")
        if saved is not None and saved.get("space") != json.loads(json.dumps(spec.raw()["space"], default=str)):
            raise SweepError(f"sweep {name!r} already exists with a different space; use another --name")
        deadline = time.time() + 120
        while not study.user_attrs.get("queued") and time.time() < deadline:
            time.sleep(0.5)  # the creating worker is still enqueuing the grid
            study = optuna.load_study(study_name=name, storage=storage, sampler=_sampler(spec), pruner=_pruner(spec.options.pruner))
    return study, storage


def _key(spec: SweepSpec, point: dict) -> str:
    """What a point can train with: 'batch:' a cohort of models trained as one computation
    (engine.batched), 'epochs:' siblings that differ only in epochs, read off one longest
    run; '' when it trains alone."""
    from ..engine.batched import cohort_key, sibling_key

    try:
        cfg = spec.config_for(point)
    except ImgclfError:
        return ""
    key = cohort_key(cfg)
    if key:
        return "batch:" + key
    key = sibling_key(cfg)
    return "epochs:" + key if key else ""


def _batch_size(key: str) -> int:
    return json.loads(key.split(":", 1)[1])["train"]["batch_size"] if key else 0


def _enqueue(study, spec: SweepSpec, points: list[dict], round_: int) -> int:
    """Enqueue points as waiting trials, members of one cohort adjacent, so that a worker can take them together."""
    def order(pt):
        # Cohorts with small batches first: they take longest, and running the longest first
        # balances several workers best. Within a cohort, siblings differing in epochs are adjacent.
        key = _key(spec, pt)
        batch = _batch_size(key)
        rest = json.dumps({k: v for k, v in pt.items() if k != "train.epochs"}, sort_keys=True)
        return batch, key, rest, pt.get("train.epochs", 0)

    n = 0
    for pt in sorted(points, key=order):
        study.enqueue_trial(encode_point(spec.space, pt), user_attrs={"round": round_}, skip_if_exists=round_ > 0)
        n += 1
    return n


def reclaim_stale(study, storage, log, stale_after_s: float) -> int:
    """Fail and re-enqueue running trials whose worker died (same host: its pid is gone; else silent too long)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get("worker", ""))
        whost, _, pid = worker.rpartition(":")
        alive_at = float(t.user_attrs.get("alive_at", t.datetime_start.timestamp() if t.datetime_start else time.time()))
        if whost == host and pid.isdigit():
            dead = not _pid_alive(int(pid))
        elif not worker:
            # A live worker names itself within milliseconds of taking a trial; one that has
            # not after 10 s died in between.
            dead = time.time() - alive_at > 10.0
        else:
            dead = time.time() - alive_at > stale_after_s
        if not dead:
            continue
        tid = storage.get_trial_id_from_study_id_trial_number(study_id, t.number)
        try:
            storage.set_trial_user_attr(tid, "interrupted", True)
            storage.set_trial_user_attr(tid, "reason", f"worker {worker} stopped; the configuration was queued again")
            storage.set_trial_state_values(tid, TrialState.FAIL)
        except Exception:
            continue  # another worker reclaimed it first
        study.enqueue_trial(t.params, user_attrs={"round": t.user_attrs.get("round", 0), "retry_of": t.number})
        n += 1
    if n:
        log(f"re-queued {n} configuration(s) left running by a stopped worker")
    return n


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


class ReportCallback(Plugin):
    """Report the objective each epoch (for pruners) and mark the trial alive."""

    name = "sweep_report"

    def __init__(self, trial, objective: str, storage, trial_id: int):
        self.trial, self.objective, self.storage, self.trial_id = trial, objective, storage, trial_id
        self.history: list[dict] = []

    def on_epoch_end(self, trainer, record: dict) -> None:
        import optuna

        self.history = trainer.history
        self.storage.set_trial_user_attr(self.trial_id, "alive_at", time.time())
        value = record.get(self.objective)
        if value is not None:
            self.trial.report(float(value), record["epoch"])
            if self.trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")


def run_trial(study, storage, spec: SweepSpec, trial, data_cache: dict, log) -> str:
    """Train one configuration and tell the study how it went; returns its status."""
    import optuna
    from optuna.trial import TrialState

    from ..api import fit_in_memory

    t0 = time.perf_counter()
    tid = storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), trial.number)
    point = suggest(trial, spec.space)
    trial.set_user_attr("worker", WORKER)
    trial.set_user_attr("alive_at", time.time())
    trial.set_user_attr("point", json.loads(json.dumps(point)))
    label = ", ".join(f"{k}={v}" for k, v in point.items())
    try:
        cfg = spec.config_for(point)
        trial.set_user_attr("config", cfg.to_dict())
        cb = ReportCallback(trial, spec.options.objective, storage, tid)
        trainer = fit_in_memory(cfg, plugins=(cb,), splits=_splits(cfg, data_cache))
        history = trainer.history
        value = history[-1].get(spec.options.objective)
        trial.set_user_attr("history", history)
        trial.set_user_attr("metrics", {"final": history[-1], "best_epoch": trainer.best_epoch,
                                        "best_value": trainer.best_value, "stop_reason": trainer.stop_reason})
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        if value is None:
            raise ImgclfError(f"objective {spec.options.objective} is not available (no validation split?)")
        study.tell(trial, float(value))
        log(f"trial {trial.number}: {label} -> {spec.options.objective} {value:.4f} ({time.perf_counter() - t0:.1f}s)")
        return "complete"
    except optuna.TrialPruned as e:
        trial.set_user_attr("history", cb.history)
        trial.set_user_attr("reason", str(e))
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        study.tell(trial, state=TrialState.PRUNED)
        log(f"trial {trial.number}: {label} -> pruned ({e})")
        return "pruned"
    except Exception as e:  # a failing configuration is recorded and the sweep goes on
        reason = str(e) if isinstance(e, ImgclfError) else f"{type(e).__name__}: {e}"
        if not isinstance(e, ImgclfError):
            traceback.print_exc(file=sys.stderr)
        trial.set_user_attr("reason", reason[:1000])
        trial.set_user_attr("seconds", time.perf_counter() - t0)
        study.tell(trial, state=TrialState.FAIL)
        log(f"trial {trial.number}: {label} -> failed: {reason}")
        return "failed"


def _counted(study) -> int:
    """Trials that count against the budget: everything but re-queued and spurious ones."""
    return sum(1 for t in study.get_trials(deepcopy=False)
               if not t.user_attrs.get("interrupted") and not t.user_attrs.get("spurious")
               and t.state.name != "WAITING")


def _next_round(study, spec: SweepSpec, log) -> bool:
    """Hierarchical: after a round ends, enqueue a finer grid around the top-k; False when done."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    current = max((t.user_attrs.get("round", 0) for t in trials), default=0)
    if any(t.state in (TrialState.RUNNING, TrialState.WAITING) for t in trials):
        return False
    if current + 1 >= spec.options.rounds:
        return False
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: t.value, reverse=spec.direction == "maximize")
    shrink = 0.5 ** (current + 2)
    points = []
    for t in done[: spec.options.top_k]:
        point = decode_point(spec.space, t.params)
        values = {p.name: neighbours(p, point[p.name], shrink) if p.name in point else [None] for p in spec.space}
        points += [pt for pt in product(spec.space, values) if all(v is not None for v in pt.values())]
    seen = {json.dumps(decode_point(spec.space, t.params), sort_keys=True) for t in trials}
    fresh = []
    for pt in points:
        k = json.dumps(pt, sort_keys=True)
        if k not in seen:
            seen.add(k)
            fresh.append(pt)
    if spec.options.trials:
        fresh = fresh[: spec.options.trials]
    if not fresh:
        return False
    _enqueue(study, spec, fresh, current + 1)
    log(f"round {current + 2}/{spec.options.rounds}: {len(fresh)} finer configurations around the top {spec.options.top_k}")
    return True


def worker_loop(study, storage, spec: SweepSpec, log: Callable[[str], None], stale_after_s: float = 1800.0,
                max_trials: Optional[int] = None, batched: bool = True, lock_path: Optional[Path] = None) -> dict:
    """Take configurations until none is left (grid, hierarchical) or the budget is spent (random, tpe)."""
    from optuna.trial import TrialState

    reclaim_stale(study, storage, log, stale_after_s)
    counts = {"complete": 0, "pruned": 0, "failed": 0}
    data_cache: dict = {}
    queued = spec.options.strategy in ("grid", "hierarchical")
    ran = 0
    while max_trials is None or ran < max_trials:
        if queued:
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting and not (spec.options.strategy == "hierarchical" and _next_round(study, spec, log)):
                break
        elif _counted(study) >= spec.options.trials:
            break
        with _claim_lock(lock_path):  # one local worker claims a whole cohort at a time
            group, key, leftover = _claim(study, storage, spec, queued, batched,
                                          None if max_trials is None else max_trials - ran)
        if not group:
            continue
        if len(group) > 1:
            run = run_cohort if key.startswith("batch:") else run_siblings
            for status in run(study, storage, spec, group, data_cache, log):
                counts[status] += 1
        else:
            counts[run_trial(study, storage, spec, group[0], data_cache, log)] += 1
        if leftover is not None:  # another worker's interleaved ask left us a trial of another group
            counts[run_trial(study, storage, spec, leftover, data_cache, log)] += 1
        ran += len(group) + (leftover is not None)
    return counts


@contextmanager
def _claim_lock(path: Optional[Path]):
    """An exclusive file lock (POSIX) while a worker takes its trials from the queue."""
    if path is None:
        yield
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: claims may interleave, which costs speed, never correctness
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _claim(study, storage, spec: SweepSpec, queued: bool, batched: bool, budget: Optional[int]):
    """Take the next trial and, for queued sweeps, the rest of its group: (group, group key, leftover)."""
    from optuna.trial import TrialState

    trial = study.ask()
    fixed = storage.get_trial_system_attrs(_tid(storage, study, trial)).get("fixed_params")
    if queued and fixed is None:
        # Another worker took the last queued configuration between our look and our ask.
        trial.set_user_attr("spurious", True)
        study.tell(trial, state=TrialState.FAIL)
        return [], "", None
    group = [trial]
    key = _key(spec, decode_point(spec.space, fixed)) if (queued and batched) else ""
    while key and (budget is None or len(group) < budget):
        nxt = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not nxt:
            break
        first = min(nxt, key=lambda t: t.number)
        params = storage.get_trial_system_attrs(_tid(storage, study, first)).get("fixed_params") or {}
        if _key(spec, decode_point(spec.space, params)) != key:
            break
        t = study.ask()
        tparams = storage.get_trial_system_attrs(_tid(storage, study, t)).get("fixed_params")
        if tparams is None:
            t.set_user_attr("spurious", True)
            study.tell(t, state=TrialState.FAIL)
            break
        if _key(spec, decode_point(spec.space, tparams)) != key:
            return group, key, t
        group.append(t)
    return group, key, None


def _tid(storage, study, trial) -> int:
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), trial.number)


def _splits(cfg, data_cache: dict):
    from ..api import prepare_data

    key = json.dumps(cfg.to_dict()["data"], sort_keys=True)
    if key not in data_cache:
        data_cache.clear()  # keep one data set in memory
        data_cache[key] = prepare_data(cfg)
    return data_cache[key]


def _take(spec: SweepSpec, trials: list) -> tuple[list[dict], list]:
    """Each trial's point and config, recorded on the trial with this worker's name."""
    points = [suggest(t, spec.space) for t in trials]
    cfgs = [spec.config_for(p) for p in points]
    for t, p, cfg in zip(trials, points, cfgs):
        t.set_user_attr("worker", WORKER)
        t.set_user_attr("point", json.loads(json.dumps(p)))
        t.set_user_attr("config", cfg.to_dict())
    return points, cfgs


def run_siblings(study, storage, spec: SweepSpec, trials: list, data_cache: dict, log) -> list[str]:
    """Trials that differ only in epochs: one run to the longest, each read at its own epoch count."""
    from ..api import fit_in_memory

    t0 = time.perf_counter()
    points, cfgs = _take(spec, trials)
    longest = max(range(len(cfgs)), key=lambda i: cfgs[i].train.epochs)
    log(f"training {len(trials)} configurations that differ only in epochs as one run of "
        f"{cfgs[longest].train.epochs} epochs, read at {sorted(c.train.epochs for c in cfgs)}")

    class Beat(Plugin):
        name = "sweep_heartbeat"

        def on_epoch_end(self, trainer, record):
            for t in trials:
                storage.set_trial_user_attr(_tid(storage, study, t), "alive_at", time.time())

    error = None
    try:
        history = fit_in_memory(cfgs[longest], plugins=(Beat(),), splits=_splits(cfgs[0], data_cache)).history
    except ImgclfError as e:
        history, error = [], str(e)
    seconds = time.perf_counter() - t0
    return [_tell(study, spec, t, p, cfg, history[: cfg.train.epochs], error, seconds * cfg.train.epochs /
                  cfgs[longest].train.epochs, log, "") for t, p, cfg in zip(trials, points, cfgs)]


def _tell(study, spec: SweepSpec, t, point: dict, cfg, hist: list[dict], error: Optional[str], seconds: float,
          log, tag: str) -> str:
    """Record one trial read off a shared run: complete at its own epoch count, or failed."""
    from optuna.trial import TrialState

    label = ", ".join(f"{k}={v}" for k, v in point.items())
    t.set_user_attr("history", hist)
    t.set_user_attr("seconds", seconds)
    value = hist[-1].get(spec.options.objective) if len(hist) == cfg.train.epochs and hist else None
    if value is None:
        reason = error or ("training stopped early" if len(hist) < cfg.train.epochs else
                           f"objective {spec.options.objective} is not available (no validation split?)")
        t.set_user_attr("reason", reason)
        study.tell(t, state=TrialState.FAIL)
        log(f"trial {t.number}: {label} -> failed: {reason}")
        return "failed"
    t.set_user_attr("metrics", {"final": hist[-1], "best_epoch": None, "best_value": None, "stop_reason": None})
    study.tell(t, float(value))
    log(f"trial {t.number}: {label} -> {spec.options.objective} {value:.4f}{tag}")
    return "complete"


def run_cohort(study, storage, spec: SweepSpec, trials: list, data_cache: dict, log) -> list[str]:
    """Train trials of one cohort as one batched computation; siblings that differ only in epochs share a model."""
    from ..api import pick_device
    from ..engine.batched import train_cohort

    t0 = time.perf_counter()
    points, cfgs = _take(spec, trials)
    models: dict[str, int] = {}
    model_cfgs = []
    which = []
    for cfg in cfgs:
        d = cfg.to_dict()
        d["train"].pop("epochs")
        k = json.dumps(d, sort_keys=True)
        if k not in models:
            models[k] = len(model_cfgs)
            model_cfgs.append(cfg)
        i = models[k]
        if cfg.train.epochs > model_cfgs[i].train.epochs:
            model_cfgs[i] = cfg
        which.append(i)
    longest = max(c.train.epochs for c in cfgs)
    log(f"training {len(trials)} configurations together as one batched computation: {len(model_cfgs)} models, "
        f"batch {cfgs[0].train.batch_size}, up to {longest} epochs (results read at each configuration's own epochs)")
    for t in trials:
        t.set_user_attr("batched", len(model_cfgs))
    last_beat = [time.time()]

    def on_epoch(epoch, records):
        if time.time() - last_beat[0] > 20:  # mark the trials alive, not too often
            last_beat[0] = time.time()
            for t in trials:
                storage.set_trial_user_attr(_tid(storage, study, t), "alive_at", time.time())

    if cfgs[0].train.threads:
        import torch

        torch.set_num_threads(cfgs[0].train.threads)
    histories, failed, _ = train_cohort(model_cfgs, _splits(cfgs[0], data_cache), pick_device(cfgs[0].train.device),
                                        on_epoch)
    seconds = (time.perf_counter() - t0) / len(model_cfgs)
    return [_tell(study, spec, t, p, cfg, histories[i][: cfg.train.epochs], failed[i],
                  seconds * cfg.train.epochs / model_cfgs[i].train.epochs, log, " (batched)")
            for t, p, cfg, i in zip(trials, points, cfgs, which)]


def export_results(study, spec: SweepSpec, sweep_dir: Path) -> None:
    """results.csv and results.json in the sweep folder."""
    from .analysis import trials_frame

    df = trials_frame(study, spec)
    # Workers of one sweep export into the same folder at once: each writes its own unique temp
    # file (a shared fixed name let one worker's rename take the file from under another's).
    atomic_write_text(sweep_dir / "results.csv", df.to_csv(index=False))
    atomic_write_text(sweep_dir / "results.json", df.to_json(orient="records", indent=1))


def run_sweep(path, name: Optional[str] = None, storage_url: Optional[str] = None, workers: int = 1,
              sweeps_dir=None, echo: bool = True, worker_only: bool = False, max_trials: Optional[int] = None,
              stale_after_s: float = 1800.0, batched: bool = True) -> Path:
    """Run (or join, or resume) the sweep in a YAML file; returns the sweep folder."""
    spec = load_sweep(path)
    name = name or Path(path).stem
    sweep_dir = sweeps_root(sweeps_dir) / name
    sweep_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        if echo:
            print(msg, flush=True)
        with open(sweep_dir / "sweep.log", "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    if not worker_only:
        atomic_write_text(sweep_dir / "sweep.yaml", yaml.safe_dump(spec.raw(), sort_keys=False))
        if storage_url:
            atomic_write_text(sweep_dir / "storage.url", storage_url + "\n")
    study, storage = open_study(spec, name, sweep_dir, storage_url)
    if not worker_only:
        where = redact(storage_url) if storage_url else str(sweep_dir / "journal.log")
        log(f"sweep {name}: strategy {spec.options.strategy}, objective {spec.options.objective} "
            f"({spec.direction}), storage {where}")
    if workers > 1 and not worker_only:
        threads = max(1, (os.cpu_count() or 1) // workers)
        log(f"{workers} worker processes, {threads} torch thread(s) each")
        procs = []
        for _ in range(workers):
            cmd = [sys.executable, "-m", "imgclf.cli.main", "sweep", str(path), "--name", name, "--worker-only",
                   "--threads", str(threads)]
            if sweeps_dir:
                cmd += ["--sweeps-dir", str(sweeps_dir)]
            if storage_url:
                cmd += ["--storage", storage_url]
            if not batched:
                cmd += ["--one-by-one"]
            procs.append(subprocess.Popen(cmd))
        try:
            for p in procs:
                p.wait()
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
    else:
        counts = worker_loop(study, storage, spec, log, stale_after_s, max_trials, batched, sweep_dir / "claim.lock")
        if worker_only:
            return sweep_dir
        log(f"this worker: {counts['complete']} complete, {counts['pruned']} pruned, {counts['failed']} failed")
    export_results(study, spec, sweep_dir)
    return sweep_dir
