"""imgclf lr-find: the learning-rate range test on a config's own model, data and batch, seeded."""
from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("lr-find", help="suggest a learning rate (range test), seeded, with its spread over seeds",
                       description="Grow the rate from --start to --end over --steps training steps of the config's "
                                   "own model, data, augmentation and batch; print the 'valley' and 'steep' "
                                   "suggestions and their spread over --repeats seeds; draw the curve.")
    p.add_argument("--config", "-c", metavar="FILE", help="experiment YAML file or a ready config's name (default: the digits experiment)")
    p.add_argument("--set", "-s", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seed", type=int, default=0, help="the first seed (default 0); the same seed, the same answer")
    p.add_argument("--repeats", type=int, default=3, help="seeds run (default 3): the suggestion's spread")
    p.add_argument("--steps", type=int, default=100, help="training steps per repeat (default 100)")
    p.add_argument("--start", type=float, default=1e-7, help="first rate (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last rate (default 10)")
    p.add_argument("--data-dir", metavar="DIR", help="folder of the data set's files (offline use)")
    p.add_argument("--out", metavar="DIR", help="where lr_find.json, .png and report.html go (default lr-find/NAME)")
    p.add_argument("--write", metavar="CONFIG", help="write the config with optim.lr set to the valley suggestion")
    p.set_defaults(func=run)


def run(args) -> int:
    import json
    from dataclasses import replace
    from pathlib import Path

    from ..config.load import load_config, save_config
    from ..core.atomic import atomic_write_text
    from ..core.ready import config_path
    from ..reporting.figures import lr_finder
    from ..reporting.report import render_html
    from ..run.lr_find import lr_find

    overrides = list(args.overrides) + ([f"data.data_dir={args.data_dir}"] if args.data_dir else [])
    cfg = load_config(config_path(args.config), overrides)
    res = lr_find(cfg, args.seed, args.repeats, args.start, args.end, args.steps)
    name = f"{Path(args.config).stem if args.config else cfg.model.name + '-' + cfg.data.name}"
    out = Path(args.out or Path("lr-find") / name)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "lr_find.json", json.dumps(res, indent=1) + "\n")
    png = lr_finder(res, out / "lr_find")
    seeds = f"{args.repeats} seed{'s' if args.repeats > 1 else ''}"
    lines = [f"{k} {res[k]:.2e} (spread {res[k + '_spread'][0]:.2e} to {res[k + '_spread'][1]:.2e} over {seeds})"
             for k in ("valley", "steep")]
    print(f"suggested rate: {lines[0]}; {lines[1]}")
    rows = [[str(c["seed"]), f"{c['valley']:.2e}", f"{c['steep']:.2e}", str(len(c["lrs"]))] for c in res["curves"]]
    blocks = [("p", f"{cfg.model.name} on {cfg.data.name}, batch {cfg.train.batch_size}, {cfg.optim.name}: the rate grown "
                    f"from {args.start:g} to {args.end:g} over {args.steps} steps. Suggested: {lines[0]}; {lines[1]}."),
              ("table", ["seed", "valley", "steep", "steps"], rows),
              ("img", png, "Smoothed training loss against the rate; dashed: the suggestions, shaded: their spread.")]
    atomic_write_text(out / "report.html", render_html("Learning-rate range test", blocks))
    print(f"wrote {png}, {out / 'lr_find.json'} and {out / 'report.html'}")
    if args.write:
        lr = float(f"{res['valley']:.2g}")  # two digits: the spread is wider than a third would say
        atomic_write_text(Path(args.write), save_config(replace(cfg, optim=replace(cfg.optim, lr=lr))))
        print(f"wrote {args.write} with optim.lr={lr:g}; train it with: imgclf train -c {args.write}")
    return 0
