"""imgclf predict: top classes with probabilities for image files."""
from __future__ import annotations

import json

from ..api import load_run, predict
from ..core.errors import ConfigError
from ..core.run_files import is_export


def add_parser(sub) -> None:
    p = sub.add_parser("predict", help="classify image files with a run's best checkpoint or an exported model")
    p.add_argument("run", metavar="RUN", help="run folder or name, or a model file from imgclf export (.onnx, .pt2)")
    p.add_argument("images", metavar="IMAGE", nargs="+")
    p.add_argument("--top", type=int, default=5, help="how many classes to show (default 5)")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: must be at least 1")
    preds = predict(args.run if is_export(args.run) else load_run(args.run, args.runs_dir), args.images, args.top)
    if args.json:
        print(json.dumps([{"image": str(i), "top": [{"class": c, "probability": p} for c, p in ps]}
                          for i, ps in zip(args.images, preds)]))
        return 0
    for img, ps in zip(args.images, preds):
        print(img)
        for c, p in ps:
            print(f"  {100 * p:6.2f}%  {c}")
    return 0
