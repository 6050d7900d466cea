"""A sweep's figures, each drawn from what the sweep view computed once: the objective against each
hyperparameter (coloured by another), the correlation heatmap, the learning curves of the best
trials, the Pareto front and the importances; written atomically as PNG and SVG."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from ..sweeps import attrs as A
from ..sweeps.analysis import is_log, numeric, trial_label
from ..sweeps.spec import SweepSpec
from .figures import epoch_axis, log_axis, pyplot, save_figure


def varied(done, spec: SweepSpec) -> list:
    """The hyperparameters that every complete trial has and that take more than one value."""
    return [p for p in spec.space if done[p.name].notna().all() and done[p.name].nunique() > 1]


def objective_vs_params(done, spec: SweepSpec, path: Path) -> Optional[Path]:
    """The objective against each varied hyperparameter, coloured by each other one; None when none varies."""
    params = varied(done, spec)
    if not params:
        return None
    plt = pyplot()
    obj = spec.options.objective
    n = len(params)
    cols = max(1, n - 1)  # each hyperparameter on x, coloured by each other one in turn
    fig, axes = plt.subplots(n, cols, figsize=(4 * cols, 3.2 * n), squeeze=False)
    for i, p in enumerate(params):
        vals = [json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in done[p.name]]
        others = [q for q in params if q is not p] or [None]
        for j, other in enumerate(others):
            ax = axes[i][j]
            x = numeric(done[p.name], False)
            c = numeric(done[other.name], is_log(other, list(done[other.name]))) if other is not None else None
            if x is None:  # categorical: positions
                labels = sorted({str(v) for v in vals})
                x = np.array([labels.index(str(v)) for v in vals], dtype=float)
                ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
            elif is_log(p, vals):
                log_axis(ax)
            if c is None:
                ax.scatter(x, done[obj], color="tab:blue", s=22, alpha=0.85)
            else:
                sc = ax.scatter(x, done[obj], c=c, cmap="viridis", s=22, alpha=0.85)
                fig.colorbar(sc, ax=ax).set_label(("log10 " if is_log(other, list(done[other.name])) else "")
                                                  + other.name)
            ax.set_xlabel(p.name)
            ax.set_ylabel(obj)
            ax.grid(alpha=0.3)
    fig.suptitle(f"{obj} against each hyperparameter,\ncoloured by each other one ({len(done)} complete trials)",
                 fontsize=10)
    return save_figure(fig, path)


def correlation(corr, path: Path) -> Path:
    """The heatmap of the Pearson correlations of the hyperparameters and the objective."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(corr) + 2.5, 1.0 * len(corr) + 1.8))
    im = ax.imshow(corr.to_numpy(), vmin=-1, vmax=1, cmap="RdBu_r")
    ax.set_xticks(range(len(corr)), corr.columns, rotation=35, ha="right")
    ax.set_yticks(range(len(corr)), corr.columns)
    for (r, cidx), v in np.ndenumerate(corr.to_numpy()):
        ax.text(cidx, r, "-" if np.isnan(v) else f"{v:+.2f}", ha="center", va="center", fontsize=9)
    fig.colorbar(im, ax=ax, label="Pearson correlation")
    ax.set_title("Correlation of hyperparameters and the objective")
    return save_figure(fig, path)


def best_curves(done, spec: SweepSpec, study, top_k: int, path: Path) -> Path:
    """The objective per epoch of the best `top_k` complete trials, each named by its settings."""
    plt = pyplot()
    obj = spec.options.objective
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    fig, ax = plt.subplots(figsize=(6, 4))
    for _, row in done.head(top_k).iterrows():
        hist = trials[int(row["trial"])].user_attrs.get(A.HISTORY) or []
        if hist and hist[0].get(obj) is not None:
            ax.plot([h["epoch"] for h in hist], [h[obj] for h in hist], marker="o", ms=3, label=trial_label(row, spec))
    epoch_axis(ax)
    ax.set_ylabel(obj)
    ax.set_title(f"Learning curves of the best {min(top_k, len(done))}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def pareto(done, front, axes: list[str], path: Path) -> Path:
    """The first of `axes` against the second (log scale when it spans decades), coloured by the
    third when there is one; the Pareto front joined and labelled."""
    plt = pyplot()
    y, x = axes[0], axes[1]
    colour = axes[2] if len(axes) > 2 else None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    how = {"c": done[colour], "cmap": "viridis"} if colour else {"color": "tab:blue"}
    sc = ax.scatter(done[x], done[y], s=26, alpha=0.8, label="trials", **how)
    if colour:
        fig.colorbar(sc, ax=ax).set_label(colour)
    f = front.sort_values(x)
    ax.plot(f[x], f[y], "-o", color="tab:red", ms=7, mfc="none", lw=1.2, label=f"Pareto front ({len(f)})")
    for _, row in f.iterrows():
        ax.annotate(f"#{int(row['trial'])}", (row[x], row[y]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    if done[x].min() > 0 and done[x].max() / done[x].min() >= 30:
        log_axis(ax)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{y} against {x}: {len(done)} complete trials")
    return save_figure(fig, path)


def importance(imp: dict, path: Path) -> Path:
    """Each hyperparameter's share of the objective's variation, by PED-ANOVA and by fANOVA."""
    plt = pyplot()
    params = sorted(imp["fanova"], key=lambda k: -imp["fanova"][k])
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(params) + 1.8))
    ys = np.arange(len(params))
    for k, (name, color) in enumerate((("ped-anova", "tab:blue"), ("fanova", "tab:orange"))):
        ax.barh(ys + 0.2 - 0.4 * k, [imp[name].get(p, 0.0) for p in params], height=0.38, color=color, label=name)
    ax.set_yticks(ys, params)
    ax.invert_yaxis()
    ax.set_xlabel(f"importance for {imp['objective']} (normalized)")
    ax.set_title(f"Hyperparameter importance, from {imp['trials']} complete trials")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
