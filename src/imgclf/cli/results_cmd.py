"""imgclf results: the trials of a sweep, ranked, exported and plotted."""
from __future__ import annotations

import json

from ..core.errors import ConfigError
from ..reporting.sweep_figures import write_figures
from ..sweeps.analysis import (
    correlations,
    format_table,
    front_table,
    importances,
    load_sweep_study,
    ranked,
    trials_frame,
)
from ..sweeps import files as SF
from ..sweeps.runner import export_results
from ..sweeps.status import TrialStatus
from ..sweeps.store import SweepError


def add_parser(sub) -> None:
    p = sub.add_parser("results", help="rank, export and plot the trials of a sweep")
    p.add_argument("sweep", metavar="SWEEP", help="sweep folder or name")
    p.add_argument("--top", type=int, default=5, help="rows in the best and worst tables (default 5)")
    p.add_argument("--json", action="store_true", help="print the trials as a JSON list")
    p.add_argument("--storage", metavar="URL", help="database URL (default: the sweep's own)")
    p.add_argument("--sweeps-dir", metavar="DIR")
    p.add_argument("--no-figures", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: must be at least 1")
    spec, study, folder = load_sweep_study(args.sweep, args.sweeps_dir, args.storage)
    df = trials_frame(study, spec)
    if args.json:
        cols = ["trial", *[p.name for p in spec.space], spec.options.objective, "status", "seconds", "reason"]
        recs = json.loads(df[cols].rename(columns={spec.options.objective: "objective"}).to_json(orient="records"))
        for r in recs:
            for p in spec.space:
                if isinstance(r.get(p.name), str) and r[p.name][:1] in "[{":
                    r[p.name] = json.loads(r[p.name])
        print(json.dumps(recs))
        return 0
    counts = df["status"].value_counts().to_dict()
    print(f"sweep {folder.name}: {len(df)} configurations (" + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())) + ")")
    r = ranked(df, spec)
    if len(r):
        print(format_table(r.head(args.top), spec, f"\ntop {min(args.top, len(r))}:"))
        print(format_table(r.tail(args.top).iloc[::-1], spec, f"\nbottom {min(args.top, len(r))}:"))
        corr = correlations(df, spec)
        if len(corr) > 1:
            obj = spec.options.objective
            print(f"\ncorrelation with {obj}: " + ", ".join(f"{k} {v:+.2f}" for k, v in corr[obj].items() if k != obj))
    front = front_table(df, study, spec)
    if front:
        print("\n" + front)
    if len(r):
        try:
            imp = importances(study, spec)
            for name in ("ped-anova", "fanova"):
                print(f"importance for {imp['objective']} ({name}, {imp['trials']} trials): "
                      + ", ".join(f"{k} {v:.2f}" for k, v in imp[name].items()))
        except SweepError as e:
            print(f"importance: {e}")
    failed = df[df["status"] == TrialStatus.FAILED]
    for _, row in failed.head(args.top).iterrows():
        print(f"failed trial {row['trial']}: {row['reason']}")
    written = [p.name for p in export_results(study, spec, folder)]  # the same files the sweep writes
    if not args.no_figures and len(r):
        written += [p.name for p in write_figures(df, spec, study, folder / SF.FIGURES, args.top)]
    print(f"\nwrote {folder}/: " + ", ".join(written))
    return 0
