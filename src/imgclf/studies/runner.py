"""Run a study: each named run that has no result yet (resuming one a stop cut short), the sweep
and the retraining of its best, then the report. Rerunning a study trains only what is missing."""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Callable, Optional

import yaml

from ..config.load import load_config
from ..config.resume import changed_for_reuse
from ..core.errors import ConfigError
from ..run import folder as R
from ..runtime.spawn import start_imgclf
from .spec import StudySpec, find_study, load_study
from .wall_budget import BudgetPlan, parse_budget, plan_budget


def studies_root(studies_dir=None) -> Path:
    """Where study results go: the argument, $IMGCLF_STUDIES, or ./studies."""
    return Path(studies_dir or os.environ.get("IMGCLF_STUDIES") or "studies")


class RunStatus(Enum):
    """Where one run of a study stands."""

    DONE = "done"         # finished: its metrics are written
    PARTIAL = "partial"   # a stop cut it short: it resumes from its last checkpoint
    MISSING = "missing"   # not started (or stopped before its first epoch ended)
    CHANGED = "changed"   # trained with other settings than the study's now: never silently reused

    def __str__(self) -> str:
        return self.value


@dataclass
class Planned:
    name: str
    overrides: list[str]
    status: RunStatus


def status_of(folder: Path) -> RunStatus:
    """DONE, PARTIAL or MISSING, by the files in a run's folder."""
    if (folder / R.METRICS).is_file():
        return RunStatus.DONE
    return RunStatus.PARTIAL if (folder / R.LAST).is_file() else RunStatus.MISSING


def changed_keys(spec: StudySpec, name: str, folder: Path) -> list[str]:
    """The config keys where a finished run differs from what the study now asks of it."""
    return changed_for_reuse(load_config(folder / R.CONFIG), spec.config(name))


def plan(spec: StudySpec, folder: Path) -> list[Planned]:
    """The study's runs with what each needs (every config already validated by the spec); a run
    trained with other settings than the study's now is `changed`, never silently reused."""
    out = []
    for n, o in spec.runs.items():
        status = status_of(folder / "runs" / n)
        if status is not RunStatus.MISSING and changed_keys(spec, n, folder / "runs" / n):
            status = RunStatus.CHANGED
        out.append(Planned(n, o, status))
    for runs in spec.retrained().values():
        out += [Planned(run, [], status_of(folder / "runs" / run)) for run in runs]
    return out


def _train_cmd(spec: StudySpec, folder: Path, p: Planned, threads: Optional[int]) -> list[str]:
    """The arguments of the `imgclf train` command of one run, its config written beside the study's results."""
    cfg_path = folder / "configs" / f"{p.name}.yaml"
    resumed = p.status is RunStatus.PARTIAL
    if resumed:
        cmd = ["train", "--resume", str(folder / "runs" / p.name)]
    else:
        cmd = ["train", "-c", str(cfg_path), "--name", p.name, "--runs-dir", str(folder / "runs")]
    cmd += ["--no-progress"] + (["--set", f"train.threads={threads}"] if threads and not resumed else [])
    return cmd


def _write_configs(spec: StudySpec, folder: Path, todo: list[Planned], retrain: dict) -> None:
    from ..config.load import save_config
    from ..core.atomic import atomic_write_text

    for p in todo:
        cfg = spec.config(p.name) if p.name in spec.runs else retrain[p.name]
        atomic_write_text(folder / "configs" / f"{p.name}.yaml", save_config(cfg))


def _retrain_points(spec: StudySpec, sweep_dir: Path) -> dict:
    """The sweep's best `retrain_top` configurations, validated, the study's settings and retrain.set
    applied; with seeds, each also as topK-seedJ at train.seed + J (the same data split)."""
    from ..config.load import from_dict, merge
    from ..sweeps.analysis import load_sweep_study, ranked, trials_frame
    from ..sweeps.space import decode_point, to_overrides

    sspec, study, _ = load_sweep_study(sweep_dir)
    best = ranked(trials_frame(study, sspec), sspec).head(spec.retrain_top)
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    out = {}
    for i, num in enumerate(best["trial"], 1):
        point = decode_point(sspec.space, by_number[int(num)].params)
        cfg = from_dict(merge(sspec.base, to_overrides(point)), spec.common + spec.retrain_set)
        for k, run in enumerate(spec.retrained()[f"top{i}"]):
            out[run] = cfg if k == 0 else from_dict(cfg.to_dict(), [f"train.seed={cfg.train.seed + k}"])
    return out


def run_study(ref: str, studies_dir=None, workers: int = 1, dry_run: bool = False, better: bool = False,
              overrides: tuple = (), name: Optional[str] = None, budget: Optional[str] = None,
              seeds: int = 1, epochs: Optional[int] = None, log: Callable[[str], None] = print,
              folds: int = 1) -> Optional[dict]:
    """Run what a study still needs, then write its report; with `dry_run`, only say what would run.

    `better` runs imgclf's recipe instead of the report's settings; `overrides` (key=value) apply to
    every run (e.g. fewer epochs); `name` is the results folder (default: the study's name, and the
    budget's, e.g. 000-architectures-1h); `budget` ('1h') is the wall time the whole study may take;
    `seeds` trains every arm that many times, and the report judges the study's claims over them;
    `epochs` runs the report's recipe for that many epochs (a constant rate stays constant, a decay
    keeps its shape per epoch), the retraining of a sweep's best too, into NAME-Nep; `folds` trains every
    named arm on that many folds of a cross-validation instead (into NAME-Kfold), its figure and claims
    read over the folds as over seeds."""
    started = time.time()
    if epochs is not None and not 1 <= epochs <= 100_000:
        raise ConfigError(f"--epochs {epochs}: must be from 1 to 100000")
    at = [f"train.epochs={epochs}"] if epochs is not None else []
    spec = load_study(find_study(ref), better, tuple(overrides) + tuple(at))
    spec.retrain_set = spec.retrain_set + at  # after retrain.set's own epochs
    spec.with_seeds(seeds)
    spec.with_folds(folds)
    scale = [f"at {epochs} epochs"] if epochs is not None else []
    scale += [f"within {budget}"] if budget else []
    scale += [f"with {' '.join(overrides)}"] if overrides else []
    spec.scale = ", ".join(([spec.scale] if spec.scale else []) + scale) or None
    spec.name = name or spec.name + (f"-{epochs}ep" if epochs is not None else "") + (f"-{budget}" if budget else "") \
        + (f"-{folds}fold" if folds > 1 else "")
    spec.command = shlex.join(["imgclf", "study", ref] + [a for o in overrides for a in ("--set", o)] + (["--better"] if better else [])
                            + (["--epochs", str(epochs)] if epochs is not None else []) + (["--budget", budget] if budget else [])
                            + (["--seeds", str(seeds)] if seeds > 1 else []) + (["--folds", str(folds)] if folds > 1 else [])
                            + (["--name", name] if name else []))
    folder = studies_root(studies_dir) / spec.name
    shares = _budget_plan(spec, folder, budget, workers) if budget else None
    planned = plan(spec, folder)
    if dry_run:
        log(f"study {spec.name}: {spec.title}" + (f" (report {spec.report})" if spec.report else ""))
        log(f"  data: {', '.join(_data_names(spec))}")
        if spec.common and spec.sweep is not None:
            log(f"  the sweep and every run with {' '.join(spec.common)}")
        if shares is not None and spec.sweep is not None:
            log(f"  budget sweep: {shares.sweep_s:.0f} s of wall time, no trial started after it")
        for run, share in (shares.share_s.items() if shares else ()):
            log(f"  budget {run}: {share:.0f} s (about {share / shares.epoch_s[run]:.1f} epochs here, its own schedule)")
        if spec.sweep is not None:
            log(f"  sweep {spec.sweep.name}" + (f", then its best {spec.retrain_top} retrained with "
                                                  f"{' '.join(spec.retrain_set) or 'the same settings'}"
                                                  if spec.retrain_top else ""))
        for p in planned:
            own = "(its config file)" if p.name in spec.run_bases else "(the base)"
            log(f"  {p.status:8} {p.name}: {' '.join(p.overrides) or own}")
        log(f"  protocol: test accuracy read at the {spec.protocol} epoch")
        for a in spec.assumptions:
            log(f"  assumed {a['choice']}: {a['evidence']}")
        for arm, r in spec.reported.items():
            log(f"  reported {arm}: {r['value']:g}% test" + (f" (report section {r['section']})" if r["section"] else ""))
        for c in spec.claims:
            log(f"  claim {c.says}" + (f" (report section {c.section})" if c.section else ""))
        log(f"results in {folder}/; nothing trained (--dry-run)")
        return None
    folder.mkdir(parents=True, exist_ok=True)
    if shares is not None:
        shares.save(folder)
    if spec.sweep is not None:
        from ..sweeps.runner import run_sweep

        began = time.time()
        budget_s = None if shares is None else max(0.0, shares.sweep_s - shares.sweep_spent_s)
        run_sweep(_sweep_file(spec, folder), "sweep", workers=workers, sweeps_dir=folder, echo=True, budget_s=budget_s)
        if shares is not None:
            shares.sweep_spent_s += time.time() - began
            shares.save(folder)
    retrain = _retrain_points(spec, folder / "sweep") if spec.retrained() else {}
    short = [p.name for p in planned if p.name not in spec.runs and p.name not in retrain]
    if short:  # fewer complete trials than retrain.top: those places stay empty
        log(f"  the sweep has fewer complete trials than retrain.top={spec.retrain_top}: "
            f"{', '.join(short)} not retrained")
        planned = [p for p in planned if p.name not in short]
    for p in planned:  # a retrained run is known only now that the sweep has chosen its configuration
        if p.name in retrain and p.status is not RunStatus.MISSING and \
                changed_for_reuse(load_config(folder / "runs" / p.name / R.CONFIG), retrain[p.name]):
            p.status = RunStatus.CHANGED
    changed = [p.name for p in planned if p.status is RunStatus.CHANGED]
    if changed:
        run = folder / "runs" / changed[0]
        keys = changed_for_reuse(load_config(run / R.CONFIG), retrain[changed[0]]) if changed[0] in retrain \
            else changed_keys(spec, changed[0], run)
        raise ConfigError(f"study {spec.name}: run {changed[0]} was trained with other settings than the study's now "
                          f"({', '.join(keys[:3])}); delete {folder / 'runs' / changed[0]} to train it again")
    todo = [p for p in planned if p.status is not RunStatus.DONE]
    for p in todo:
        if p.status is RunStatus.MISSING:
            _clear_unstarted(folder / "runs" / p.name, log)
    workers = max(1, min(workers, len(todo)))   # one run left gets every core, not a worker's share
    _write_configs(spec, folder, [p for p in todo if p.status is RunStatus.MISSING], retrain)
    log(f"study {spec.name}: {len(planned) - len(todo)} of {len(planned)} runs done, {len(todo)} to train"
        + (f" ({workers} at a time)" if workers > 1 else ""))
    if len(todo) > workers > 1:
        todo = _longest_first(todo, folder)
    threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
    queue = [_train_cmd(spec, folder, p, threads) for p in todo]
    failed = _run_all(queue, workers, folder / "study.log")
    if shares is not None:
        shares.spent_s += time.time() - started
        shares.save(folder)
    from .report import study_report

    # A failed run (one that diverged, say) is itself an answer: the report is written with the
    # runs that finished and names the others, and the command still fails.
    out = study_report(spec, folder, log)
    if failed:
        where = folder / "study.log" if workers > 1 else "their output above"
        raise ConfigError(f"study {spec.name}: {failed} run(s) failed (see {where}); the report has the others; "
                          f"fix the cause and run the study again: finished runs are kept")
    return out


def _clear_unstarted(run: Path, log: Callable[[str], None]) -> None:
    """Remove the folder of a run that a stop cut before its first epoch ended: it holds a config and
    a model summary but no checkpoint, so nothing is lost, and `imgclf train --name` would refuse it."""
    import shutil

    if run.is_dir():
        shutil.rmtree(run)
        log(f"  {run.name}: stopped before its first epoch ended; starting it over")


def _data_names(spec: StudySpec) -> list[str]:
    """The data sets the study trains on, the study's settings applied."""
    names = {spec.config(r).data.name for r in spec.runs}
    if spec.sweep is not None:
        from ..config.load import from_dict
        from ..sweeps.spec import load_sweep

        names.add(from_dict(load_sweep(spec.sweep).base, spec.common).data.name)
    return sorted(names)


def _budget_plan(spec: StudySpec, folder: Path, budget: str, workers: int) -> BudgetPlan:
    """The study's split of `budget`: the one saved in its folder (a resumed study), else a new one;
    each run's overrides extended with its share."""
    seconds = parse_budget(budget)
    saved = BudgetPlan.load(folder)
    shares = saved if saved is not None and saved.budget_s == seconds else plan_budget(spec, seconds, budget, workers)
    for run in spec.runs:
        spec.runs[run] = spec.runs[run] + shares.overrides(run)
    if spec.retrain_top:  # every retrained run has the same share
        spec.retrain_set = spec.retrain_set + shares.overrides("top1")
    return shares


def _sweep_file(spec: StudySpec, folder: Path) -> Path:
    """The sweep the study runs: its file, or, with the study's settings (set:, --set), a copy of it
    whose base has them, written beside the results (`--set data.name=fashion-mnist` reaches it)."""
    if not spec.common:
        return spec.sweep
    from ..config.load import apply_overrides, read_experiment, read_yaml
    from ..core.atomic import atomic_write_text

    raw = read_yaml(spec.sweep)
    base = raw.get("base") or {}
    if isinstance(base, str):
        base = read_experiment(spec.sweep.parent / base)
    raw["base"] = apply_overrides(base, spec.common)
    path = folder / "configs" / spec.sweep.name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, yaml.safe_dump(raw, sort_keys=False))
    return path


def _longest_first(todo: list[Planned], folder: Path) -> list[Planned]:
    """The runs by estimated cost, longest first: the last to start is then a short one, not a long
    run left alone on one worker's share of the cores (a 2048x2048 MLP ran 12 min so)."""
    from ..config.load import load_config
    from ..estimate.run import CostModel

    model = CostModel()  # timed for this ordering only

    def cost(p: Planned) -> float:
        path = folder / "configs" / f"{p.name}.yaml"
        return model.run_seconds(load_config(path)) if path.is_file() else 0.0

    return sorted(todo, key=cost, reverse=True)


def _run_all(cmds: list[list[str]], workers: int, log_path: Path) -> int:
    """Run the commands, `workers` at a time, their output appended to the study's log; the failures."""
    failed = 0
    running: list[subprocess.Popen] = []
    with open(log_path, "a", encoding="utf-8") as out:
        for cmd in cmds:
            while len(running) >= workers:
                failed += _reap(running)
            print("imgclf " + " ".join(cmd), flush=True)
            out.write("$ imgclf " + " ".join(cmd) + "\n")
            out.flush()
            running.append(start_imgclf(*cmd, stdout=out if workers > 1 else None, stderr=subprocess.STDOUT))
        while running:
            failed += _reap(running)
    return failed


def _reap(running: list) -> int:
    """Wait for one of the running processes; 1 if it failed."""
    import time

    while True:
        for p in running:
            if p.poll() is not None:
                running.remove(p)
                return int(p.returncode != 0)
        time.sleep(0.2)
