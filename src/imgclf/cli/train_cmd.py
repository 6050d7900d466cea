"""imgclf train: train an experiment into runs/<name>/."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: the digits experiment)",
                       description="Train an experiment; with no --config, the default CNN on the bundled digits.")
    p.add_argument("--config", "-c", metavar="FILE", help="experiment YAML file")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.1 (repeatable)")
    p.add_argument("--name", "-n", help="run folder name under the runs folder")
    p.add_argument("--runs-dir", metavar="DIR", help="folder of runs (default $IMGCLF_RUNS or ./runs)")
    p.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    p.add_argument("--time-budget", metavar="DURATION", help="stop cleanly after e.g. 90s, 60m, 1.5h")
    p.add_argument("--max-params", metavar="N", help="refuse a model with more trainable parameters")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the data set's files (offline use)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import train

    overrides = list(args.overrides)
    if args.time_budget is not None:
        overrides.append(f"train.time_budget={args.time_budget}")
    if args.max_params is not None:
        overrides.append(f"train.max_params={args.max_params}")
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.resume and args.config:
        from ..errors import ConfigError

        raise ConfigError("--resume continues a run with its own config; drop --config")
    train(args.config, overrides, name=args.name, runs_dir=args.runs_dir, resume=args.resume,
          progress=False if args.no_progress else None)
    return 0
