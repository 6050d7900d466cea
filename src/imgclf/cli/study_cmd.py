"""imgclf study / imgclf studies: run a study of the course as one command; list the ready ones."""
from __future__ import annotations

import os


def add_parser(sub) -> None:
    p = sub.add_parser("study", help="run a study (its missing runs, then its report); see imgclf studies",
                       description="Run what a study still needs (finished runs are kept, cut ones resume), "
                                   "then write its report: studies/NAME/report.html, report.md, results.json.")
    p.add_argument("study", metavar="NAME_OR_FILE", help="a ready study (imgclf studies) or a study YAML file")
    p.add_argument("--dry-run", action="store_true", help="validate every run and say what would train; train nothing")
    p.add_argument("--better", action="store_true", help="imgclf's better recipe instead of the report's settings")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override every run, e.g. --set train.epochs=5 (then name the results with --name)")
    p.add_argument("--name", "-n", help="the results folder under the studies folder (default: the study's name)")
    p.add_argument("--workers", type=int, default=1, help="runs trained at once (default 1)")
    p.add_argument("--budget", metavar="DURATION",
                   help="the wall time the whole study may take (90s, 20m, 1h): each run trains for an equal "
                        "share; results go to NAME-DURATION unless --name")
    p.add_argument("--epochs", type=int, metavar="N",
                   help="the report's recipe for N epochs (a constant rate stays constant, a decay keeps its shape "
                        "per epoch); results go to NAME-Nep unless --name, and the verdicts say 'at N epochs'")
    p.add_argument("--seeds", type=int, default=1, metavar="N",
                   help="train every arm N times (seeds train.seed, +1, ...): each arm's test accuracy as a mean "
                        "with its 95%% interval, each of the study's claims judged holds, reversed or undecided")
    p.add_argument("--folds", type=int, default=1, metavar="K",
                   help="train every arm on K folds of a cross-validation (data.folds): each arm's figure a mean "
                        "with its 95%% interval over the folds, the claims judged on them; results go to NAME-Kfold")
    p.add_argument("--studies-dir", metavar="DIR", help="where results go (default $IMGCLF_STUDIES or ./studies)")
    p.set_defaults(func=run)
    s = sub.add_parser("studies", help="list the ready studies with their estimated cost on this machine")
    s.add_argument("--no-cost", action="store_true", help="skip the cost estimates")
    s.add_argument("--markdown", metavar="DIR",
                   help="print the page of the measured studies whose summary.json files are in DIR (NAME.json), "
                        "e.g. imgclf studies --markdown docs/studies/results > docs/studies.md")
    s.set_defaults(func=run_list)


def run(args) -> int:
    from ..core.errors import ConfigError
    from ..studies import run_study

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    run_study(args.study, args.studies_dir, args.workers, args.dry_run, args.better, tuple(args.overrides), args.name,
              args.budget, args.seeds, args.epochs, folds=args.folds)
    return 0


def run_list(args) -> int:
    if args.markdown:
        from ..studies.page import studies_markdown

        print(studies_markdown(args.markdown), end="")
        return 0
    from ..estimate.run import CostModel, words
    from ..estimate.study import study_seconds
    from ..studies import load_study, ready_studies

    rows, cost_model = [], CostModel()  # one timing per model and batch for the whole listing
    for f in ready_studies():
        spec = load_study(f)
        n = len(spec.planned())
        what = f"{n} run{'s' if n != 1 else ''}" + (" + a sweep" if spec.sweep else "")
        cost = "" if args.no_cost else f"~{words(study_seconds(spec, cost_model))}"
        rows.append((spec.name, spec.report, what, cost, spec.title))
    w = max((len(r[0]) for r in rows), default=0)
    for name, report, what, cost, title in rows:
        print(f"{name:<{w}}  {report:>3}  {what:<18} {cost:>8}  {title}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if not args.no_cost and load > 0.5 * cores:
        print(f"note: the machine was busy while timing (load {load:.1f} on {cores} cores): the costs are too high")
    print("run one with: imgclf study NAME (--dry-run first says what it trains)")
    return 0
