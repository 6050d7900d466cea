"""imgclf models / imgclf datasets / imgclf configs: what is registered, and the ready configs."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*", help="shell wildcard, e.g. 'wide*'")
    p.set_defaults(func=run_models)
    d = sub.add_parser("datasets", help="list the registered data sets")
    d.set_defaults(func=run_datasets)
    c = sub.add_parser("configs", help="list the ready configs (train one with: imgclf train -c NAME)")
    c.add_argument("--sweeps", action="store_true", help="list the ready sweeps instead (run one with: imgclf sweep NAME)")
    c.set_defaults(func=run_configs)


def _first_line(obj) -> str:
    return (obj.__doc__ or "").strip().splitlines()[0] if obj.__doc__ else ""


def run_models(args) -> int:
    from ..models import MODELS, model_options

    names = MODELS.names(args.pattern)
    w = max((len(n) for n in names), default=0)
    for n in names:
        opts = ", ".join(f"{k}={v[1]!r}" for k, v in model_options(n).items())
        print(f"{n:<{w}}  {_first_line(MODELS.get(n))}" + (f"  [options: {opts}]" if opts else ""))
    return 0


def run_datasets(args) -> int:
    from ..data import DATASETS

    w = max(len(n) for n in DATASETS)
    for n in DATASETS:
        print(f"{n:<{w}}  {_first_line(DATASETS.get(n))}")
    return 0


def run_configs(args) -> int:
    from ..core.ready import about, ready_configs, ready_sweeps

    ready = ready_sweeps() if args.sweeps else ready_configs()
    w = max((len(n) for n in ready), default=0)
    for name, path in ready.items():
        print(f"{name:<{w}}  {about(path)}")
    print("run one with: imgclf sweep NAME" if args.sweeps
          else "train one with: imgclf train -c NAME (imgclf summary -c NAME shows its model)")
    return 0
