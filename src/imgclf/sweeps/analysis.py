"""Sweep results as a DataFrame, top/bottom tables, correlations and figures."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from ..engine.monitor import Direction
from . import attrs as A
from . import files
from .space import decode_point
from .spec import MEASURED, SweepSpec, retried
from .status import TrialStatus


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def trials_frame(study, spec: SweepSpec):
    """One row per configuration tried: number, status, objective, each parameter, seconds, reason."""
    import pandas as pd

    rows = []
    trials = study.get_trials(deepcopy=False)
    again = retried(trials)
    for t in trials:
        if t.user_attrs.get(A.SPURIOUS) or t.user_attrs.get(A.INTERRUPTED) or t.number in again:
            continue
        # A waiting trial has no params yet: its queued point is what it will run.
        stored = t.params or t.system_attrs.get("fixed_params")
        point = decode_point(spec.space, stored) if stored else t.user_attrs.get(A.POINT, {})
        hist = t.user_attrs.get(A.HISTORY) or []
        row = {"trial": t.number, "status": TrialStatus.of(t.state).value}
        row.update({p.name: _cell(point.get(p.name)) for p in spec.space})
        for i, (name, _) in enumerate(spec.objectives):
            row[name] = t.values[i] if t.values is not None else (hist[-1].get(name) if hist else None)
        measured = t.user_attrs.get(A.MEASURED) or {}
        for name in MEASURED:
            row.setdefault(name, measured.get(name))
        row.update(epochs=len(hist), seconds=t.user_attrs.get(A.SECONDS), round=t.user_attrs.get(A.ROUND, 0),
                   reason=t.user_attrs.get(A.REASON))
        rows.append(row)
    objs = [n for n, _ in spec.objectives]
    cols = ["trial", "status", *[p.name for p in spec.space], *objs, *[n for n in MEASURED if n not in objs], "epochs",
            "seconds", "round", "reason"]
    return pd.DataFrame(rows, columns=cols)


def ranked(df, spec: SweepSpec):
    """Complete trials, best first."""
    done = df[df["status"] == TrialStatus.COMPLETE]
    return done.sort_values(spec.options.objective, ascending=spec.direction is Direction.MIN, kind="stable")


def trial_label(row, spec: SweepSpec) -> str:
    """A legend label naming a trial by its settings ('lr 0.001, dropout 0, batch_size 64'), not its number."""
    def short(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)   # 3 digits: a legend, not the table
    return ", ".join(f"{p.name.split('.', 1)[-1]} {short(row[p.name])}" for p in spec.space)   # less the section


def format_table(df, spec: SweepSpec, title: str, columns: Optional[list[str]] = None) -> str:
    """The seed report's layout: one column per hyperparameter, then the objective(s) (or `columns`)."""
    objs = columns or [n for n, _ in spec.objectives]
    cols = ["trial"] * (spec.multi or columns is not None) + [p.name for p in spec.space] + objs
    body = [[("-" if v is None or (isinstance(v, float) and math.isnan(v)) else
              (f"{v:.4f}" if c in objs and abs(v) < 100 else f"{v:,.0f}" if c in objs else
               (f"{v:g}" if isinstance(v, float) else str(v))))
             for c, v in zip(cols, row)] for row in df[cols].itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(f"{x:>{w}}" for x, w in zip(cells, widths))  # noqa: E731
    return "\n".join([title, line(cols), line(["-" * w for w in widths]), *(line(r) for r in body)])


def numeric(series, log: bool):
    vals = []
    for v in series:
        if isinstance(v, str):
            try:
                v = json.loads(v)
            except ValueError:
                return None
        if isinstance(v, list):  # a list of widths: use their sum as the size
            v = sum(v) if all(isinstance(x, (int, float)) for x in v) else None
        if v is None or isinstance(v, bool) or not isinstance(v, (int, float)):
            return None
        vals.append(math.log10(v) if log and v > 0 else float(v))
    return np.array(vals, dtype=float)


def is_log(p, values) -> bool:
    if p.log:
        return True
    nums = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return bool(nums) and min(nums) > 0 and max(nums) / min(nums) >= 100


def correlations(df, spec: SweepSpec):
    """Pearson correlations between numeric hyperparameters (log10 where log-scaled) and the objective."""
    import pandas as pd

    done = ranked(df, spec)
    cols = {}
    for p in spec.space:
        raw = list(done[p.name])
        if done[p.name].isna().any():  # a conditional parameter, absent from some trials
            continue
        vals = [json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in raw]
        arr = numeric(raw, is_log(p, vals))
        if arr is not None and len(set(arr.tolist())) > 1:
            cols[("log10 " if is_log(p, vals) else "") + p.name] = arr
    cols[spec.options.objective] = done[spec.options.objective].to_numpy(dtype=float)
    return pd.DataFrame(cols).corr()


def front_axes(spec: SweepSpec) -> list[str]:
    """What a Pareto front is drawn over: the objectives of a sweep of several; else the ranking
    objective against the trainable parameters, with the training seconds beside (the course's
    question: accuracy under a parameter and a time budget)."""
    return [n for n, _ in spec.objectives] if spec.multi else [spec.options.objective, *MEASURED]


def pareto_front(df, study, spec: SweepSpec):
    """The complete trials no other beats on every objective, best by the ranking objective first.
    A sweep of one objective (pruned, say) gets the front of that objective and the parameters."""
    if spec.multi:
        best = {t.number for t in study.best_trials}
        return ranked(df[df["trial"].isin(best)], spec)
    done = ranked(df, spec).dropna(subset=["params"])
    kept, fewest = [], float("inf")
    # Best objective first: a trial is on the front when it has fewer parameters than every better one.
    for i, row in done.iterrows():
        if row["params"] < fewest:
            kept.append(i)
            fewest = row["params"]
    return done.loc[kept]


def has_front(done, spec: SweepSpec) -> bool:
    """Whether a front says more than the best trial: several objectives, or complete trials of different sizes."""
    return len(done) > 0 and (spec.multi or done["params"].nunique() > 1)


MIN_TRIALS = 10  # below this, an importance estimate says more about the few trials than the space


def importances(study, spec: SweepSpec, seed: int = 0, min_trials: int = MIN_TRIALS) -> dict:
    """Each hyperparameter's importance for the ranking objective, by Optuna's PED-ANOVA (fast) and
    fANOVA (a random forest, seeded): {evaluator: {param: share}, 'trials': n}. The same store
    gives the same figures."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator
    from optuna.trial import TrialState

    from .store import SweepError

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    if len(done) < min_trials:
        raise SweepError(f"importance rests on the complete trials: {len(done)} here, at least {min_trials} needed; "
                         f"run more of the sweep first")
    params = sorted({k for t in done for k in t.params if len({json.dumps(x.params.get(k), default=str) for x in done}) > 1})
    if not params:
        raise SweepError("no hyperparameter varies among the complete trials: nothing to rank")
    # PED-ANOVA ranks what makes the target low: a maximized objective is negated for it; fANOVA
    # explains variance, which the sign does not change.
    sign = -1.0 if spec.direction is Direction.MAX else 1.0
    out: dict = {"trials": len(done), "objective": spec.options.objective}
    # Optuna marks PED-ANOVA experimental; its estimate is what we want, the warning is not.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes")  # negated above
        for name, ev in (("ped-anova", PedAnovaImportanceEvaluator()), ("fanova", FanovaImportanceEvaluator(seed=seed))):
            # Optuna reads the direction off the study; a multi-objective study needs a target
            imp = optuna.importance.get_param_importances(study, evaluator=ev, params=params, normalize=True,
                                                          target=lambda t: sign * t.values[0])
            out[name] = {k: round(float(v), 6) for k, v in imp.items()}
    return out


def load_sweep_study(ref, sweeps_dir=None, storage_url: Optional[str] = None):
    """(spec, study, sweep folder) of a sweep given by name or folder."""
    import optuna

    from ..config.load import read_yaml
    from .spec import parse_sweep
    from .store import SweepError, open_storage, sweeps_root

    p = Path(ref).expanduser()
    folder = p if (p / files.SPEC).is_file() else sweeps_root(sweeps_dir) / str(ref)
    if not (folder / files.SPEC).is_file():
        raise SweepError(f"sweep {str(ref)!r} not found (no {files.SPEC} in {p} or {folder}); give a sweep folder or name")
    spec = parse_sweep(read_yaml(folder / files.SPEC), folder / files.SPEC)
    url = storage_url
    if url is None and (folder / files.STORAGE_URL).is_file():
        url = (folder / files.STORAGE_URL).read_text().strip()
    storage = open_storage(folder, url)
    try:
        study = optuna.load_study(study_name=folder.name, storage=storage)
    except KeyError:
        raise SweepError(f"the storage of {folder} holds no sweep named {folder.name!r}") from None
    return spec, study, folder


def sweep_results(ref, sweeps_dir=None, storage_url: Optional[str] = None):
    """The trials of a sweep as a pandas DataFrame (the Python API's entry point)."""
    spec, study, _ = load_sweep_study(ref, sweeps_dir, storage_url)
    return trials_frame(study, spec)


def best_config(ref, sweeps_dir=None, storage_url: Optional[str] = None):
    """(config, label) of a sweep's best complete trial."""
    from ..config.load import from_dict
    from .store import SweepError

    spec, study, folder = load_sweep_study(ref, sweeps_dir, storage_url)
    r = ranked(trials_frame(study, spec), spec)
    if r.empty:
        raise SweepError(f"sweep {folder.name} has no complete trial yet; run imgclf sweep first")
    num = int(r.iloc[0]["trial"])
    trial = study.get_trials(deepcopy=False)[num]
    return from_dict(trial.user_attrs[A.CONFIG]), (
        f"trial {num} of sweep {folder.name} ({spec.options.objective} {trial.value:.4f})")
