"""imgclf sweep: run, join or resume a hyperparameter sweep."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("sweep", help="run (or join, or resume) a hyperparameter sweep",
                       description="Run the sweep in a YAML file (base:, space:, strategy:, trials:). "
                                   "Run it again to resume; run it on several machines with one --storage URL.")
    p.add_argument("sweep", metavar="SWEEP", help="a sweep file, or a ready sweep's name (imgclf configs --sweeps lists them)")
    p.add_argument("--name", "-n", help="the sweep's name and folder (default: the file's name)")
    p.add_argument("--storage", metavar="URL", help="database URL shared by several machines, e.g. postgresql://...")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default 1)")
    p.add_argument("--sweeps-dir", metavar="DIR", help="folder of sweeps (default $IMGCLF_SWEEPS or ./sweeps)")
    p.add_argument("--max-trials", type=int, metavar="N", help="stop this process after N configurations")
    p.add_argument("--budget", metavar="DURATION",
                   help="wall time the sweep may take (90s, 20m, 1h): no trial starts after it, one running is stopped")
    p.add_argument("--threads", type=int, metavar="T", help="torch threads in this process")
    p.add_argument("--one-by-one", action="store_true",
                   help="train every configuration alone (default: batch configurations that can share a computation)")
    p.add_argument("--worker-only", action="store_true", help=argparse.SUPPRESS)  # the --workers children
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..core.errors import ConfigError
    from ..core.ready import sweep_path
    from ..sweeps.runner import run_sweep

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: must be at least 1")
    if args.threads is not None:
        if args.threads < 1:
            raise ConfigError(f"--threads {args.threads}: must be at least 1")
        torch.set_num_threads(args.threads)
    if args.max_trials is not None and args.max_trials < 1:
        raise ConfigError(f"--max-trials {args.max_trials}: must be at least 1")
    budget_s = None
    if args.budget is not None:
        from ..studies.wall_budget import parse_budget

        budget_s = parse_budget(args.budget)
    folder = run_sweep(sweep_path(args.sweep), args.name, args.storage, args.workers, args.sweeps_dir,
                       worker_only=args.worker_only, max_trials=args.max_trials, batched=not args.one_by_one,
                       budget_s=budget_s)
    if not args.worker_only:
        from ..sweeps.analysis import format_table, load_sweep_study, ranked, trials_frame

        spec, study, _ = load_sweep_study(folder, storage_url=args.storage)
        df = trials_frame(study, spec)
        counts = df["status"].value_counts().to_dict()
        print(f"{len(df)} configurations: " + ", ".join(f"{v} {k}" for k, v in sorted(counts.items())))
        top = ranked(df, spec).head(5)
        if len(top):
            print(format_table(top, spec, "best 5:"))
        print(f"see: imgclf results {folder}")
    return 0
