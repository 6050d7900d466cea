"""One view of a sweep for every place that shows one: `imgclf results` prints it, the run report
and a study's report render it as HTML and Markdown. It holds the data (trials, correlations,
Pareto front, importances), the same data as tables of formatted cells, and the figures, each
with its caption; a caller only lays it out."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..sweeps.analysis import (
    correlations,
    front_axes,
    has_front,
    importances,
    load_sweep_study,
    pareto_front,
    ranked,
    trials_frame,
)
from ..sweeps.status import TrialStatus
from ..sweeps.spec import SweepSpec
from ..sweeps.store import SweepError
from . import sweep_figures as SF


@dataclass
class Table:
    """A table of formatted cells; `key` names what it holds (top, bottom, correlation, front,
    importance, failed) so that a caller can pick one without reading its title."""
    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class SweepView:
    """What a sweep shows: its trials (`frame`; `ranked`: the complete ones, best first), the
    correlations, the Pareto front, the importances, the notes (why something is missing), the
    figures with their captions, and all of it as `tables`."""
    name: str
    spec: SweepSpec
    study: object
    frame: object
    ranked: object
    top: int
    correlations: object = None        # the matrix, hyperparameters and the objective; None below 2 columns
    front: object = None               # the Pareto front's trials; None where it is the best trial alone
    importances: Optional[dict] = None
    notes: list[str] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        """How many configurations ended in each status, by status name."""
        return {k: int(v) for k, v in sorted(self.frame["status"].value_counts().items())}

    @property
    def tables(self) -> list[Table]:
        """Best and worst trials, correlations with the objective, the Pareto front, the importances, failures."""
        spec, done, obj = self.spec, self.ranked, self.spec.options.objective
        objs = [n for n, _ in spec.objectives]
        out: list[Table] = []
        if len(done):
            k = min(self.top, len(done))
            out.append(_trials("top", f"top {k}", done.head(self.top), spec, objs))
            out.append(_trials("bottom", f"bottom {k}", done.tail(self.top).iloc[::-1], spec, objs))
        if self.correlations is not None:
            r = self.correlations[obj].drop(obj)
            out.append(Table("correlation", f"correlation with {obj}", ["hyperparameter", f"correlation with {obj}"],
                             [[name, "-" if math.isnan(v) else f"{v:+.2f}"] for name, v in r.items()]))
        if self.front is not None:
            axes = front_axes(spec)
            over = axes if spec.multi else axes[:2]  # one objective: its front against size, the seconds beside
            out.append(_trials("front", f"Pareto front ({len(self.front)} of {len(done)}: none beats them on "
                                        f"{' and '.join(over)})", self.front, spec, axes))
        if self.importances is not None:
            imp = self.importances
            names = sorted(imp["fanova"], key=lambda p: -imp["fanova"][p])
            out.append(Table("importance", f"importance for {imp['objective']} from {imp['trials']} complete trials "
                                           "(normalized)", ["hyperparameter", "ped-anova", "fanova"],
                             [[p, f"{imp['ped-anova'].get(p, 0.0):.3f}", f"{imp['fanova'][p]:.3f}"] for p in names]))
        failed = self.frame[self.frame["status"] == TrialStatus.FAILED].head(self.top)
        if len(failed):
            out.append(Table("failed", "failed trials", ["trial", "reason"],
                             [[str(t), str(r)] for t, r in zip(failed["trial"], failed["reason"])]))
        return out


def present_sweep(source, spec: Optional[SweepSpec] = None, out_dir: Optional[Path] = None,
                  top: int = 5) -> SweepView:
    """The view of a sweep: `source` is its folder (or name), or its Optuna study with `spec`.
    Figures are written to `out_dir` (none without one); `top` rows in the best and worst tables
    and curves in the figure of the best."""
    if spec is None:
        spec, study, _ = load_sweep_study(source)
    else:
        study = source
    df = trials_frame(study, spec)
    done = ranked(df, spec)
    view = SweepView(study.study_name, spec, study, df, done, top)
    if len(done):
        corr = correlations(df, spec)
        view.correlations = corr if len(corr) > 1 else None
        view.front = pareto_front(df, study, spec) if has_front(done, spec) else None
        try:
            view.importances = importances(study, spec)
        except SweepError as e:  # too few trials, or none varies: said, not drawn
            view.notes.append(f"importance: {e}")
    if out_dir is not None and len(done):
        view.figures = _figures(view, Path(out_dir))
    return view


def _figures(view: SweepView, out: Path) -> list[Figure]:
    """Each figure of the view beside its caption: one list, so that no figure goes without one."""
    spec, done, obj = view.spec, view.ranked, view.spec.options.objective
    out.mkdir(parents=True, exist_ok=True)
    n = len(done)
    figs: list[Figure] = []
    path = SF.objective_vs_params(done, spec, out / "objective_vs_params.png")
    if path is not None:
        figs.append(Figure(path, f"{obj} against each hyperparameter, coloured by each other one ({n} complete "
                                 "trials)."))
    if view.correlations is not None:
        figs.append(Figure(SF.correlation(view.correlations, out / "correlation.png"),
                           "Pearson correlations of the hyperparameters (log10 of log-scaled ones) and the objective."))
    k = min(view.top, n)
    figs.append(Figure(SF.best_curves(done, spec, view.study, view.top, out / "best_curves.png"),
                       f"{obj} per epoch of the best {k} configuration{'s' if k != 1 else ''}."))
    if view.front is not None:
        axes = front_axes(spec)
        over = axes if spec.multi else axes[:2]  # as the front's table: one objective's front is against size
        figs.append(Figure(SF.pareto(done, view.front, axes, out / "pareto.png"),
                           f"{axes[0]} against {axes[1]}" + (f", coloured by {axes[2]}" if len(axes) > 2 else "")
                           + f": the Pareto front joined, the {len(view.front)} of {n} configurations none beats on "
                             f"{' and '.join(over)}."))
    if view.importances is not None:
        imp = view.importances
        figs.append(Figure(SF.importance(imp, out / "importance.png"),
                           f"Each hyperparameter's importance for {obj}, by PED-ANOVA and by fANOVA (seeded), from "
                           f"{imp['trials']} complete trials."))
    return figs


def _cell(v, value: bool) -> str:
    """A table cell: an objective or a measure to 4 decimals (thousands-grouped when large, as
    parameter counts are); a hyperparameter as it was set; '-' where there is none."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if value:
        return f"{v:.4f}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:g}" if isinstance(v, float) else str(v)


def _trials(key: str, title: str, rows, spec: SweepSpec, values: list[str]) -> Table:
    """Trials as a table: the trial's number, each hyperparameter, then `values` (objectives, measures)."""
    cols = ["trial", *[p.name for p in spec.space], *values]
    body = [[_cell(v, c in values) for c, v in zip(cols, row)] for row in rows[cols].itertuples(index=False)]
    return Table(key, title, cols, body)
