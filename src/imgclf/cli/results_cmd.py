"""imgclf results: the trials of a sweep, ranked, exported and plotted."""
from __future__ import annotations

import json

from ..core.errors import ConfigError
from ..reporting.sweep_view import Table, present_sweep
from ..sweeps import files as SF
from ..sweeps.analysis import load_sweep_study, trials_frame
from ..sweeps.runner import export_results


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
    if args.json:
        df = trials_frame(study, spec)
        cols = ["trial", *[p.name for p in spec.space], spec.options.objective, "status", "seconds", "reason"]
        recs = json.loads(df[cols].rename(columns={spec.options.objective: "objective"}).to_json(orient="records"))
        for r in recs:
            for p in spec.space:
                if isinstance(r.get(p.name), str) and r[p.name][:1] in "[{":
                    r[p.name] = json.loads(r[p.name])
        print(json.dumps(recs))
        return 0
    view = present_sweep(study, spec, None if args.no_figures else folder / SF.FIGURES, args.top)
    print(f"sweep {folder.name}: {len(view.frame)} configurations ("
          + ", ".join(f"{v} {k}" for k, v in view.counts.items()) + ")")
    for table in view.tables:
        print("\n" + text_table(table))
    for note in view.notes:
        print(note)
    written = [p.name for p in export_results(study, spec, folder)]  # the same files the sweep writes
    written += [f.path.name for f in view.figures]
    print(f"\nwrote {folder}/: " + ", ".join(written))
    return 0


def text_table(table: Table) -> str:
    """A table as aligned text: its title, the header, a rule, one line per row (two spaces between columns)."""
    widths = [max(len(c), *(len(r[i]) for r in table.rows)) if table.rows else len(c)
              for i, c in enumerate(table.columns)]

    def line(cells):
        return "  ".join(f"{x:>{w}}" for x, w in zip(cells, widths))

    return "\n".join([f"{table.title}:", line(table.columns), line(["-" * w for w in widths]),
                      *(line(r) for r in table.rows)])
