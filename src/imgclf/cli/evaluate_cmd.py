"""imgclf evaluate: re-evaluate a run's best checkpoint on a split."""
from __future__ import annotations

import json

from ..api import evaluate, load_run
from ..core.run_files import BEST
from ..engine.checkpoint import load_checkpoint


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="evaluate a run's best checkpoint on a split")
    p.add_argument("run", metavar="RUN", help="run folder or name")
    p.add_argument("--split", default="test", choices=["train", "val", "test"])
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--tta", metavar="MODE", help="test-time augmentation mode "
                   "(default: the run's train.tta)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.set_defaults(func=run)


def format_metrics(m: dict, classes: list[str]) -> str:
    """Loss, top-1, top-5 and per-class accuracy as text."""
    top5 = f"top-5 {100 * m['top5']:.2f}%  " if len(classes) > 5 else ""  # of 5 classes or fewer: always 100%
    lines = [f"loss {m['loss']:.4f}  top-1 {100 * m['top1']:.2f}%  {top5}({m['n']:,} images)"]
    w = max(len(c) for c in classes)
    for c, a in zip(classes, m["per_class_accuracy"]):
        lines.append(f"  {c:<{w}}  {'-' if a is None else f'{100 * a:6.2f}%'}")
    return "\n".join(lines)


def run(args) -> int:
    r = load_run(args.run, args.runs_dir)
    m = evaluate(r, args.split, args.tta)
    if args.json:
        print(json.dumps(m))
    else:
        classes = load_checkpoint(r.path / BEST)["classes"]
        tta = f" (test-time augmentation: {m['tta']})" if m["tta"] != "none" else ""
        print(f"{r.name} on the {args.split} split{tta}")
        print(format_metrics(m, classes))
    return 0
