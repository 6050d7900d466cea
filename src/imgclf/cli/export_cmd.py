"""imgclf export: a run's kept model as ONNX or torch.export's .pt2, with its preprocessing, verified."""
from __future__ import annotations

import json

from ..api import load_run
from ..core.errors import ConfigError
from ..core.run_files import EXPORT_SUFFIXES


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a run's model (ONNX or .pt2) that takes raw uint8 images; verified")
    p.add_argument("run", metavar="RUN", help="run folder or name")
    p.add_argument("--format", default="onnx", help=" or ".join(EXPORT_SUFFIXES) + " (onnx: onnxruntime, any language; pt2: torch.export)")
    p.add_argument("--output", "-o", metavar="FILE", help="where to write it (default RUN/model.onnx or model.pt2)")
    p.add_argument("--images", type=int, default=64, help="test images the export is verified on (default 64)")
    p.add_argument("--runs-dir", metavar="DIR")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.images < 1:
        raise ConfigError(f"--images {args.images}: must be at least 1")
    out = load_run(args.run, args.runs_dir).export(args.format, args.output, args.images,
                 log=(lambda m: None) if args.json else print)
    if args.json:
        print(json.dumps(out))
    return 0
