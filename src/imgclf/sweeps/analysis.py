"""Sweep results as a DataFrame, top/bottom tables, correlations and figures."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Optional

import numpy as np

from .space import decode_point
from .spec import SweepSpec

STATUS = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


def _cell(v):
    return json.dumps(v) if isinstance(v, (list, dict)) else v


def trials_frame(study, spec: SweepSpec):
    """One row per configuration tried: number, status, objective, each parameter, seconds, reason."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("spurious") or t.user_attrs.get("interrupted"):
            continue
        point = decode_point(spec.space, t.params) if t.params else t.user_attrs.get("point", {})
        hist = t.user_attrs.get("history") or []
        row = {"trial": t.number, "status": STATUS.get(t.state.name, t.state.name.lower())}
        row.update({p.name: _cell(point.get(p.name)) for p in spec.space})
        row[spec.options.objective] = t.value if t.value is not None else (
            hist[-1].get(spec.options.objective) if hist else None)
        row.update(epochs=len(hist), seconds=t.user_attrs.get("seconds"), round=t.user_attrs.get("round", 0),
                   reason=t.user_attrs.get("reason"))
        rows.append(row)
    cols = ["trial", "status", *[p.name for p in spec.space], spec.options.objective, "epochs", "seconds", "round", "reason"]
    return pd.DataFrame(rows, columns=cols)


def ranked(df, spec: SweepSpec):
    """Complete trials, best first."""
    done = df[df["status"] == "complete"]
    return done.sort_values(spec.options.objective, ascending=spec.direction == "minimize", kind="stable")


def trial_label(row, spec: SweepSpec) -> str:
    """A legend label naming a trial by its settings ('lr 0.001, dropout 0, batch_size 64'), not its number."""
    def short(v):
        return f"{v:.3g}" if isinstance(v, float) else str(v)   # 3 digits: a legend, not the table
    return ", ".join(f"{p.name.split('.', 1)[-1]} {short(row[p.name])}" for p in spec.space)   # less the section


def format_table(df, spec: SweepSpec, title: str) -> str:
    """The seed report's layout: one column per hyperparameter, then the objective."""
    cols = [p.name for p in spec.space] + [spec.options.objective]
    body = [[("-" if v is None or (isinstance(v, float) and math.isnan(v)) else
              (f"{v:.4f}" if c == spec.options.objective else (f"{v:g}" if isinstance(v, float) else str(v))))
             for c, v in zip(cols, row)] for row in df[cols].itertuples(index=False)]
    widths = [max(len(c), *(len(r[i]) for r in body)) if body else len(c) for i, c in enumerate(cols)]
    line = lambda cells: "  ".join(f"{x:>{w}}" for x, w in zip(cells, widths))  # noqa: E731
    return "\n".join([title, line(cols), line(["-" * w for w in widths]), *(line(r) for r in body)])


def _numeric(series, log: bool):
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


def _is_log(p, values) -> bool:
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
        arr = _numeric(raw, _is_log(p, vals))
        if arr is not None and len(set(arr.tolist())) > 1:
            cols[("log10 " if _is_log(p, vals) else "") + p.name] = arr
    cols[spec.options.objective] = done[spec.options.objective].to_numpy(dtype=float)
    return pd.DataFrame(cols).corr()


def write_figures(df, spec: SweepSpec, study, out_dir: Path, top_k: int = 5) -> list[Path]:
    """Objective against each hyperparameter (coloured by another), correlation heatmap, best curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..reporting.figures import epoch_axis, log_axis

    out_dir.mkdir(parents=True, exist_ok=True)
    done = ranked(df, spec)
    paths: list[Path] = []
    if done.empty:
        return paths
    obj = spec.options.objective
    params = [p for p in spec.space if done[p.name].notna().all() and done[p.name].nunique() > 1]
    if params:
        n = len(params)
        cols = max(1, n - 1)  # each hyperparameter on x, coloured by each other one in turn
        fig, axes = plt.subplots(n, cols, figsize=(4 * cols, 3.2 * n), squeeze=False)
        for i, p in enumerate(params):
            vals = [json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in done[p.name]]
            others = [q for q in params if q is not p] or [None]
            for j, other in enumerate(others):
                ax = axes[i][j]
                x = _numeric(done[p.name], False)
                c = _numeric(done[other.name], _is_log(other, list(done[other.name]))) if other is not None else None
                if x is None:  # categorical: positions
                    labels = sorted({str(v) for v in vals})
                    x = np.array([labels.index(str(v)) for v in vals], dtype=float)
                    ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
                elif _is_log(p, vals):
                    log_axis(ax)
                if c is None:
                    ax.scatter(x, done[obj], color="tab:blue", s=22, alpha=0.85)
                else:
                    sc = ax.scatter(x, done[obj], c=c, cmap="viridis", s=22, alpha=0.85)
                    fig.colorbar(sc, ax=ax).set_label(("log10 " if _is_log(other, list(done[other.name])) else "")
                                                      + other.name)
                ax.set_xlabel(p.name)
                ax.set_ylabel(obj)
                ax.grid(alpha=0.3)
        fig.suptitle(f"{obj} against each hyperparameter,\ncoloured by each other one ({len(done)} complete trials)", fontsize=10)
        fig.tight_layout()
        paths.append(_save(fig, out_dir / "objective_vs_params.png"))
    corr = correlations(df, spec)
    if len(corr) > 1:
        fig, ax = plt.subplots(figsize=(1.2 * len(corr) + 2.5, 1.0 * len(corr) + 1.8))
        im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
        ax.set_xticks(range(len(corr)), corr.columns, rotation=35, ha="right")
        ax.set_yticks(range(len(corr)), corr.columns)
        for (r, cidx), v in np.ndenumerate(corr.to_numpy()):
            ax.text(cidx, r, "-" if np.isnan(v) else f"{v:+.2f}", ha="center", va="center", fontsize=9)
        fig.colorbar(im, ax=ax, label="Pearson correlation")
        ax.set_title("Correlation of hyperparameters and the objective")
        fig.tight_layout()
        paths.append(_save(fig, out_dir / "correlation.png"))
    best = {t.number: t for t in study.get_trials(deepcopy=False)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, row in done.head(top_k).iterrows():
        hist = best[int(row["trial"])].user_attrs.get("history") or []
        if hist and hist[0].get(obj) is not None:
            ax.plot([h["epoch"] for h in hist], [h[obj] for h in hist], marker="o", ms=3, label=trial_label(row, spec))
    epoch_axis(ax)
    ax.set_ylabel(obj)
    ax.set_title(f"Learning curves of the best {min(top_k, len(done))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(_save(fig, out_dir / "best_curves.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=130)
    fig.savefig(path.with_suffix(".svg"))
    plt.close(fig)
    return path


def load_sweep_study(ref, sweeps_dir=None, storage_url: Optional[str] = None):
    """(spec, study, sweep folder) of a sweep given by name or folder."""
    import optuna

    from ..config import read_yaml
    from .spec import parse_sweep
    from .store import SweepError, open_storage, sweeps_root

    p = Path(ref).expanduser()
    folder = p if (p / "sweep.yaml").is_file() else sweeps_root(sweeps_dir) / str(ref)
    if not (folder / "sweep.yaml").is_file():
        raise SweepError(f"sweep {str(ref)!r} not found (no sweep.yaml in {p} or {folder}); give a sweep folder or name")
    spec = parse_sweep(read_yaml(folder / "sweep.yaml"), folder / "sweep.yaml")
    url = storage_url
    if url is None and (folder / "storage.url").is_file():
        url = (folder / "storage.url").read_text().strip()
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
    from ..config import from_dict
    from .store import SweepError

    spec, study, folder = load_sweep_study(ref, sweeps_dir, storage_url)
    r = ranked(trials_frame(study, spec), spec)
    if r.empty:
        raise SweepError(f"sweep {folder.name} has no complete trial yet; run imgclf sweep first")
    num = int(r.iloc[0]["trial"])
    trial = study.get_trials(deepcopy=False)[num]
    return from_dict(trial.user_attrs["config"]), (
        f"trial {num} of sweep {folder.name} ({spec.options.objective} {trial.value:.4f})")
