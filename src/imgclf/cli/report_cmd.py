"""imgclf report: one self-contained HTML page and a Markdown file for runs and sweeps."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="an HTML page and a Markdown file with the figures of runs and sweeps")
    p.add_argument("items", metavar="RUN_OR_SWEEP", nargs="+")
    p.add_argument("--out", metavar="DIR", help="output folder (default: RUN/report, or reports/report-<time>)")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--sweeps-dir", metavar="DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..reporting.report import build_report

    res = build_report(args.items, args.out, args.runs_dir, args.sweeps_dir)
    print(f"wrote {res['html']} (self-contained, {res['figures']} figures)")
    print(f"wrote {res['md']} (figures beside it)")
    return 0
