"""Run a sweep: create or join its Optuna study, start its workers, export its results."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Optional

import yaml

from ..core.atomic import atomic_write_text
from ..core.results import write_results
from ..runtime.spawn import start_imgclf
from . import attrs as A
from . import files
from .analysis import trials_frame
from .queue import open_study
from .spec import SweepSpec, load_sweep
from .store import redact, sweeps_root
from .workers import requeue_budget_stopped, worker_loop


def export_results(study, spec: SweepSpec, sweep_dir: Path) -> list[Path]:
    """results.csv and results.json (each trial's epoch history beside its row) in the sweep folder."""
    df = trials_frame(study, spec)
    histories = {t.number: t.user_attrs.get(A.HISTORY) or [] for t in study.get_trials(deepcopy=False)}
    records = [{**r, "history": histories.get(r["trial"], [])} for r in json.loads(df.to_json(orient="records"))]
    return write_results(sweep_dir, records)


def run_sweep(path, name: Optional[str] = None, storage_url: Optional[str] = None, workers: int = 1,
              sweeps_dir=None, echo: bool = True, worker_only: bool = False, max_trials: Optional[int] = None,
              stale_after_s: float = 1800.0, batched: bool = True, budget_s: Optional[float] = None) -> Path:
    """Run (or join, or resume) the sweep in a YAML file; returns the sweep folder. With `budget_s`,
    the workers take no trial after that many wall seconds, and a trial running then is stopped."""
    spec = load_sweep(path)
    name = name or Path(path).stem
    sweep_dir = sweeps_root(sweeps_dir) / name
    sweep_dir.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        if echo:
            print(msg, flush=True)
        with open(sweep_dir / files.LOG, "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    if not worker_only:
        atomic_write_text(sweep_dir / files.SPEC, yaml.safe_dump(spec.raw(), sort_keys=False))
        if storage_url:
            atomic_write_text(sweep_dir / files.STORAGE_URL, storage_url + "\n")
    study, storage = open_study(spec, name, sweep_dir, storage_url)
    if not worker_only:
        where = redact(storage_url) if storage_url else str(sweep_dir / files.JOURNAL)
        log(f"sweep {name}: strategy {spec.options.strategy}, objective {spec.options.objective} "
            f"({spec.direction}), storage {where}")
        # Set before any worker starts: the workers, here or joining from elsewhere, read it from the study.
        study.set_user_attr(A.DEADLINE, None if budget_s is None else time.time() + budget_s)
        if budget_s is not None:
            log(f"wall budget {budget_s:.0f} s: no trial starts after it, and one running then is stopped")
        requeue_budget_stopped(study, log)  # before the workers: once per run, whoever joins
    if workers > 1 and not worker_only:
        threads = max(1, (os.cpu_count() or 1) // workers)
        log(f"{workers} worker processes, {threads} torch thread(s) each")
        procs = []
        for _ in range(workers):
            cmd = ["sweep", str(path), "--name", name, "--worker-only", "--threads", str(threads)]
            if sweeps_dir:
                cmd += ["--sweeps-dir", str(sweeps_dir)]
            if storage_url:
                cmd += ["--storage", storage_url]
            if not batched:
                cmd += ["--one-by-one"]
            procs.append(start_imgclf(*cmd))
        try:
            for p in procs:
                p.wait()
        except KeyboardInterrupt:
            for p in procs:
                p.terminate()
            raise
    else:
        counts = worker_loop(study, storage, spec, log, stale_after_s, max_trials, batched, sweep_dir / files.CLAIM_LOCK)
        if worker_only:
            return sweep_dir
        log("this worker: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    export_results(study, spec, sweep_dir)
    return sweep_dir
