"""Sweep workers: take configurations from the study until none is left or the budget is spent,
claim a whole group at a time, and give back the trials of workers that died."""
from __future__ import annotations

import os
import socket
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Optional

from . import attrs as A
from .cohorts import Group, read_group_key
from .queue import advance, group_key
from .space import decode_point
from .spec import BUDGET_STOP, SweepSpec, retried
from .status import TrialStatus
from .strategies import strategy
from .trials import run_cohort, run_siblings, run_trial, tid


def reclaim_stale(study, storage, log, stale_after_s: float) -> int:
    """Fail and re-enqueue running trials whose worker died (same host: its pid is gone; else silent too long)."""
    from optuna.trial import TrialState

    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = str(t.user_attrs.get(A.WORKER, ""))
        whost, _, pid = worker.rpartition(":")
        alive_at = float(t.user_attrs.get(A.ALIVE_AT, t.datetime_start.timestamp() if t.datetime_start else time.time()))
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
            storage.set_trial_user_attr(tid, A.INTERRUPTED, True)
            storage.set_trial_user_attr(tid, A.REASON, f"worker {worker} stopped; the configuration was queued again")
            storage.set_trial_state_values(tid, TrialState.FAIL)
        except Exception:
            continue  # another worker reclaimed it first
        # A worker killed between taking a trial and reading its point left no params: the
        # queued point is still in the trial's fixed_params, so the configuration is not lost.
        fixed = storage.get_trial_system_attrs(tid).get("fixed_params") or {}
        study.enqueue_trial({**fixed, **t.params},
                            user_attrs={A.ROUND: t.user_attrs.get(A.ROUND, 0), A.RETRY_OF: t.number})
        n += 1
    if n:
        log(f"re-queued {n} configuration(s) left running by a stopped worker")
    return n


def requeue_budget_stopped(study, log) -> int:
    """Queue again each configuration that an earlier wall budget cut short, once: the clock, not
    the configuration, ended it, so a grid rerun with time left would otherwise never finish it."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    n = 0
    for t in trials:
        if (t.state == TrialState.PRUNED and t.number not in again
                and str(t.user_attrs.get(A.REASON, "")).startswith(BUDGET_STOP)):
            study.enqueue_trial(dict(t.params),
                                user_attrs={A.ROUND: t.user_attrs.get(A.ROUND, 0), A.RETRY_OF: t.number})
            n += 1
    if n:
        log(f"re-queued {n} configuration(s) that an earlier budget stopped")
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


def _counted(study) -> int:
    """Trials that count against the budget: everything but re-queued and spurious ones."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    return sum(1 for t in trials
               if not t.user_attrs.get(A.INTERRUPTED) and not t.user_attrs.get(A.SPURIOUS)
               and t.state != TrialState.WAITING and t.number not in again)


def worker_loop(study, storage, spec: SweepSpec, log: Callable[[str], None], stale_after_s: float = 1800.0,
                max_trials: Optional[int] = None, batched: bool = True, lock_path: Optional[Path] = None) -> dict:
    """Take configurations until none is left (grid, hierarchical), the trial budget is spent (random,
    tpe), or the sweep's wall budget (the study's `deadline` attribute) would end the next one."""
    from optuna.trial import TrialState

    reclaim_stale(study, storage, log, stale_after_s)
    deadline = study.user_attrs.get(A.DEADLINE)
    counts = {s: 0 for s in (TrialStatus.COMPLETE, TrialStatus.PRUNED, TrialStatus.FAILED)}
    data_cache: dict = {}
    plan = strategy(spec.options.strategy)
    queued = plan.queued
    ran = 0
    while max_trials is None or ran < max_trials:
        if deadline is not None and _out_of_time(study, deadline):
            log(f"the sweep's budget is spent: {max(0.0, deadline - time.time()):.0f} s left, less than a trial takes")
            break
        if queued:
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
            if not waiting and not advance(study, spec, log):
                break
        elif _counted(study) >= spec.options.trials:
            break
        with _claim_lock(lock_path):  # one local worker claims a whole cohort at a time
            group, key, leftover = _claim(study, storage, spec, queued, batched,
                                          None if max_trials is None else max_trials - ran)
        if not group:
            continue
        if len(group) > 1:
            run = run_cohort if read_group_key(key)[0] is Group.COHORT else run_siblings
            for status in run(study, storage, spec, group, data_cache, log):
                counts[status] += 1
        else:
            counts[run_trial(study, storage, spec, group[0], data_cache, log, deadline)] += 1
        if leftover is not None:  # another worker's interleaved ask left us a trial of another group
            counts[run_trial(study, storage, spec, leftover, data_cache, log, deadline)] += 1
        ran += len(group) + (leftover is not None)
    return counts


def _out_of_time(study, deadline: float) -> bool:
    """Whether the time left before `deadline` is less than the median trial so far took (pruned
    trials included: under successive halving most end at their first rung), so that a new trial
    would likely be cut short. Group trials (cohorts, siblings) are not cut: they start only here."""
    from optuna.trial import TrialState

    left = deadline - time.time()
    took = sorted(float(t.user_attrs[A.SECONDS]) for t in study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)) if A.SECONDS in t.user_attrs)
    return left <= 0 or (bool(took) and left < took[len(took) // 2])


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
    fixed = storage.get_trial_system_attrs(tid(storage, study, trial)).get("fixed_params")
    if queued and fixed is None:
        # Another worker took the last queued configuration between our look and our ask.
        trial.set_user_attr(A.SPURIOUS, True)
        study.tell(trial, state=TrialState.FAIL)
        return [], "", None
    group = [trial]
    key = group_key(spec, decode_point(spec.space, fixed)) if (queued and batched) else ""
    while key and (budget is None or len(group) < budget):
        nxt = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not nxt:
            break
        first = min(nxt, key=lambda t: t.number)
        params = storage.get_trial_system_attrs(tid(storage, study, first)).get("fixed_params") or {}
        if group_key(spec, decode_point(spec.space, params)) != key:
            break
        t = study.ask()
        tparams = storage.get_trial_system_attrs(tid(storage, study, t)).get("fixed_params")
        if tparams is None:
            t.set_user_attr(A.SPURIOUS, True)
            study.tell(t, state=TrialState.FAIL)
            break
        if group_key(spec, decode_point(spec.space, tparams)) != key:
            return group, key, t
        group.append(t)
    return group, key, None
