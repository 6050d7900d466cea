"""imgclf inspect: look at a data set before training; writes inspect/<name>/report.html and findings.csv."""
from __future__ import annotations

import os
from pathlib import Path

# The model that scores each image out of fold when no --config names one: small and quick (about
# a minute an epoch on CIFAR-10's 60,000 images on 2 cores), good enough to rank label errors.
CHEAP = ["model.name=cnn", "model.spec=c32-p-c64-p-f128-d0.25", "train.batch_size=128", "train.epochs=10"]


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="look at a data set before training: counts, duplicates, leaks, label errors",
                       description="Inspect a data set (an image folder, a .tar.gz or a registered name such as "
                                   "cifar10) and write inspect/NAME/report.html and findings.csv, which "
                                   "data.exclude and data.relabel apply; nothing in the data is changed.")
    p.add_argument("data", help="an image folder, a .tar.gz of one, or a data set name (imgclf datasets)")
    p.add_argument("--config", "-c", metavar="FILE", help="the experiment whose model scores the images "
                                                           "(default: a small CNN, 10 epochs)")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set data.image_size=64")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a registered data set's files (offline use)")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="folds of the out-of-sample scoring (default 5)")
    p.add_argument("--epochs", type=int, metavar="N", help="epochs of each fold's model")
    p.add_argument("--near", type=float, default=0.98, metavar="SIM",
                   help="near-duplicates: images whose low-frequency signatures have this cosine similarity or "
                        "more (default 0.98; 1 finds only copies that differ in brightness or encoding)")
    p.add_argument("--no-labels", action="store_true", help="skip the label-error search (no training)")
    p.add_argument("--name", help="report folder name under --out (default: the data set's name)")
    p.add_argument("--out", metavar="DIR", help="folder of reports (default $IMGCLF_INSPECT or ./inspect)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..config.load import load_config
    from ..core.errors import ConfigError
    from ..core.ready import config_path
    from ..data.registry import DATASETS
    from ..inspection.findings import inspect_data
    from ..inspection.page import write_report
    from ..run.preflight import preflight

    if args.folds < 2:
        raise ConfigError(f"--folds {args.folds}: scoring every image out of sample needs at least 2 folds")
    if not 0 < args.near <= 1:
        raise ConfigError(f"--near {args.near:g}: a cosine similarity above 0 and at most 1")
    source = Path(args.data).expanduser()
    if args.data in DATASETS.names() and not source.exists():
        data, name = [f"data.name={args.data}"], args.data
    elif source.exists():
        data, name = ["data.name=folder", f"data.path={source}"], source.name.split(".")[0]
    else:
        raise ConfigError(f"{args.data}: neither an image folder or archive nor a data set "
                          f"({', '.join(DATASETS.names())}); give a path that exists or one of those names")
    overrides = ([] if args.config else list(CHEAP)) + data + ["data.on_corrupt=skip", *args.overrides]
    if args.epochs is not None:
        overrides.append(f"train.epochs={args.epochs}")
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    cfg = load_config(config_path(args.config) if args.config else None, overrides)
    preflight(cfg)
    found = inspect_data(cfg, args.near, args.folds, labels=not args.no_labels)
    out = Path(args.out or os.environ.get("IMGCLF_INSPECT") or "inspect") / (args.name or name)
    write_report(found, out, f"Inspection of {args.data}")
    acted = sum(1 for r in found.rows if r["action"])
    print(f"wrote {out}/report.html and {out}/findings.csv ({len(found.rows):,} findings, {acted:,} marked exclude); "
          f"train without them: --set data.exclude={out}/findings.csv")
    return 0
