"""imgclf train: train an experiment into runs/<name>/."""
from __future__ import annotations

SAME = "\0same"  # --resume with no value: the run --name names, continued by this same command


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model (default: the digits experiment)",
                       description="Train an experiment; with no --config, the default CNN on the bundled digits.")
    p.add_argument("--config", "-c", metavar="FILE", help="experiment YAML file, or a ready config's name (imgclf configs)")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=0.1 (repeatable)")
    p.add_argument("--name", "-n", help="run folder name under the runs folder")
    p.add_argument("--runs-dir", metavar="DIR", help="folder of runs (default $IMGCLF_RUNS or ./runs)")
    p.add_argument("--resume", metavar="RUN", nargs="?", const=SAME,
                   help="continue a run from its last checkpoint: alone, the run --name names, with this same "
                        "command; 'auto': that, or a fresh run if it does not exist yet; or a run folder or name")
    p.add_argument("--time-budget", metavar="DURATION", help="stop cleanly after e.g. 90s, 60m, 1.5h")
    p.add_argument("--max-params", metavar="N", help="refuse a model with more trainable parameters")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the data set's files (offline use)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard scalars (runs/<name>/tensorboard)")
    p.add_argument("--from-sweep", metavar="SWEEP", help="train a configuration of a sweep (with --best: the winner)")
    p.add_argument("--best", action="store_true", help="with --from-sweep: the best complete trial")
    p.add_argument("--sweeps-dir", metavar="DIR")
    p.add_argument("--folds", type=int, metavar="K",
                   help="K-fold cross-validation: K runs in runs/<name>/fold-1..K, each validated on its held-out "
                        "fold; prints each fold and the mean with its 95%% interval (the same command continues it)")
    p.add_argument("--keep-folds", action="store_true", help="with --folds: keep every fold's checkpoints, not "
                                                             "only the best fold's")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..api import train

    overrides = list(args.overrides)
    if args.time_budget is not None:
        overrides.append(f"train.time_budget={args.time_budget}")
    if args.max_params is not None:
        overrides.append(f"train.max_params={args.max_params}")
    if args.tensorboard:
        overrides.append("train.tensorboard=true")
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    from ..core.errors import ConfigError

    resume = args.resume
    if resume in (SAME, "auto"):
        if not args.name:
            raise ConfigError(f"--resume{' auto' if resume == 'auto' else ''} continues the run named by --name; "
                              f"add --name NAME, or give --resume RUN")
        from ..run.train import is_unfinished

        state = is_unfinished(args.name, args.runs_dir)
        if resume == "auto" and state is False:
            print(f"run {args.name} has finished; nothing to do (--resume auto)")
            return 0
        resume = None if (resume == "auto" and state is None) else True
    elif resume and args.config:
        raise ConfigError("--resume RUN continues a run with its own config; drop --config, or name the run with "
                          "--name and give --resume alone to continue it with this same command")
    if args.keep_folds and args.folds is None:
        raise ConfigError("--keep-folds keeps the checkpoints of a cross-validation: add --folds K")
    if args.folds is not None:
        if args.from_sweep or (args.resume and args.resume != SAME):
            raise ConfigError("--folds trains a cross-validation of --config; drop --from-sweep and --resume RUN "
                              "(the same --folds command continues an unfinished one)")
        from ..core.ready import config_path
        from ..run.folds import train_folds

        train_folds(config_path(args.config), overrides, args.folds, name=args.name, runs_dir=args.runs_dir,
                    keep_folds=args.keep_folds, progress=False if args.no_progress else None)
        return 0
    if args.best and not args.from_sweep:
        raise ConfigError("--best picks the winner of a sweep: add --from-sweep SWEEP")
    if args.from_sweep:
        if not args.best:
            raise ConfigError("--from-sweep needs --best (retrain the sweep's best configuration)")
        if args.config:
            raise ConfigError("--from-sweep takes the winner's config; drop --config")
        from ..config.load import from_dict
        from ..sweeps.analysis import best_config

        cfg, label = best_config(args.from_sweep, args.sweeps_dir)
        print(f"retraining {label}")
        train(from_dict(cfg.to_dict(), overrides), name=args.name or None, runs_dir=args.runs_dir,
              progress=False if args.no_progress else None)
        return 0
    from ..core.ready import config_path

    train(config_path(args.config), overrides, name=args.name, runs_dir=args.runs_dir, resume=resume,
          progress=False if args.no_progress else None)
    return 0
