"""imgclf summary: per-layer parameters and multiply-adds of a model."""
from __future__ import annotations

import json
import re


def add_parser(sub) -> None:
    p = sub.add_parser("summary", help="per-layer table of a model's parameters and multiply-adds")
    p.add_argument("model", metavar="MODEL", nargs="?", help="a registered model (see imgclf models)")
    p.add_argument("--config", "-c", metavar="YAML",
                   help="summarize a config's model instead (a file or a ready config's name), as its run trains it (input, classes, frozen layers); "
                        "--set then takes config keys, e.g. --set model.strategy=linear-probe")
    p.add_argument("--input", default="3x32x32", metavar="CxHxW", help="input shape (default 3x32x32)")
    p.add_argument("--classes", type=int, default=10, help="number of classes (default 10)")
    p.add_argument("--set", "-s", dest="options", action="append", default=[], metavar="OPTION=VALUE",
                   help="a model option, e.g. --set spec=c64-p-f100 or --set hidden=[100,100]")
    p.add_argument("--style", choices=["exact", "report"], default="exact",
                   help="exact counts (default), or as the course reports print them: 1.79k, '-' for no weights")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def parse_shape(text: str) -> tuple[int, int, int]:
    from ..core.errors import ConfigError

    m = re.fullmatch(r"\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*", text)
    if not m or min(int(g) for g in m.groups()) < 1:
        raise ConfigError(f"--input {text!r} is not a shape such as 3x32x32 (channels x height x width)")
    return tuple(int(g) for g in m.groups())  # type: ignore[return-value]


def run(args) -> int:
    import yaml

    from ..core.errors import ConfigError
    from ..models import build_model
    from ..models.summary import format_summary, summarize

    if args.classes < 1:
        raise ConfigError(f"--classes {args.classes}: must be at least 1")
    if args.config or not args.model:
        return _config_summary(args)
    shape = parse_shape(args.input)
    options = {}
    for o in args.options:
        key, eq, val = o.partition("=")
        if not eq:
            raise ConfigError(f"--set {o!r} is not of the form option=value")
        options[key.strip().removeprefix("model.")] = yaml.safe_load(val) if val.strip() else None
    s = summarize(build_model(args.model, options, shape, args.classes), shape)
    print(json.dumps(s.to_dict()) if args.json else format_summary(s, f"{args.model}, input {args.input}, {args.classes} classes", args.style))
    return 0


def _config_summary(args) -> int:
    """The model of a config (default: the default experiment) with its trainable and frozen parameters."""
    from ..config.load import load_config
    from ..core.ready import config_path
    from ..models.sizing import known_shape, model_input_shape
    from ..models.strategies import strategy_of
    from ..models.summary import format_summary, summarize
    from ..run.build import configured_model

    cfg = load_config(config_path(args.config), args.options)
    shape, classes = known_shape(cfg.data)
    in_shape = model_input_shape(cfg, shape)
    classes = classes or args.classes
    s = summarize(configured_model(cfg, in_shape, classes, weights=False), in_shape)
    strategy = strategy_of(cfg.model)
    title = (f"{cfg.model.name} on {cfg.data.name}, input {'x'.join(map(str, in_shape))}, {classes} classes, "
             f"model.strategy={strategy}")
    print(json.dumps(s.to_dict()) if args.json else format_summary(s, title, args.style))
    return 0
