"""imgclf explain: feature maps and Grad-CAM of a run for one image."""
from __future__ import annotations

from ..api import explain, load_run


def add_parser(sub) -> None:
    p = sub.add_parser("explain", help="feature maps and Grad-CAM of a run's model on an image")
    p.add_argument("run", metavar="RUN")
    p.add_argument("image", metavar="IMAGE")
    p.add_argument("--layer", help="one conv layer (default: every conv layer; Grad-CAM at the last)")
    p.add_argument("--class", dest="target", help="Grad-CAM for this class (default: the predicted one)")
    p.add_argument("--out", metavar="DIR", help="output folder (default RUN/explain/<image name>)")
    p.add_argument("--runs-dir", metavar="DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    res = explain(load_run(args.run, args.runs_dir), args.image, args.layer, args.target, args.out)
    print(f"{args.image}: " + ", ".join(f"{c} {100 * p:.1f}%" for c, p in res["top"]))
    for p in res["paths"]:
        print(f"wrote {p}")
    return 0
