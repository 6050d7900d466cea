"""Which test-time views, and with what weights, score best on one trained run, side by side.

    python benchmarks/tta_weights.py RUN [RUN ...] [--split val] [--json]

For each run's kept checkpoint, the logits of every view in a 5x5 window of shifts (-2..2
pixels each way, edges mirrored, as training crops see them) with and without a horizontal
flip are computed once; each candidate view set is then scored from those logits, so all
sets are compared on the same weights and the same images (a paired comparison). Reported
per set: top-1 accuracy, and against the run's own TTA (`flip-translate`: the centre and the
(-1,-1) and (+1,+1) shifts, each with its mirror, equally weighted) the images it turns right
and wrong. Choose on a validation split (`--split val`), never on the test split.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from imgclf.api import pick_device, prepare_data  # noqa: E402
from imgclf.core.errors import ImgclfError  # noqa: E402
from imgclf.data.loader import batches  # noqa: E402
from imgclf.inference.restore import restore  # noqa: E402
from imgclf.runtime.device import autocast, autocast_dtype  # noqa: E402

SHIFTS = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)]
CENTER, DIAG = [(0, 0)], [(-1, -1), (1, 1)]
AXIAL = [(-1, 0), (1, 0), (0, -1), (0, 1)]
CORNERS = [(-1, -1), (1, 1), (-1, 1), (1, -1)]
NEAR = [s for s in SHIFTS if max(abs(s[0]), abs(s[1])) <= 1]

# name -> {shift: weight}; every shift is taken with and without its mirror, at equal weight.
SETS = {
    "centre + flip (2 views)": {s: 1.0 for s in CENTER},
    "current: centre, 2 diagonal (6 views)": {s: 1.0 for s in CENTER + DIAG},
    "centre x2, 2 diagonal (6 views)": {(0, 0): 2.0, **{s: 1.0 for s in DIAG}},
    "centre, 4 axial (10 views)": {s: 1.0 for s in CENTER + AXIAL},
    "centre x2, 4 axial (10 views)": {(0, 0): 2.0, **{s: 1.0 for s in AXIAL}},
    "centre, 4 corners (10 views)": {s: 1.0 for s in CENTER + CORNERS},
    "3x3 window (18 views)": {s: 1.0 for s in NEAR},
    "3x3 window, centre x2 (18 views)": {**{s: 1.0 for s in NEAR}, (0, 0): 2.0},
    "5x5 window (50 views)": {s: 1.0 for s in SHIFTS},
}


def view_logits(model: nn.Module, x: torch.Tensor, amp_dtype) -> dict:
    """{(dy, dx, flipped): fp32 logits} of a normalized batch, for every shift in SHIFTS."""
    h, w = x.shape[2], x.shape[3]
    padded = nn.functional.pad(x, (2, 2, 2, 2), mode="reflect")
    out = {}
    with autocast(x.device, amp_dtype):
        for dy, dx in SHIFTS:
            v = padded[:, :, 2 + dy:2 + dy + h, 2 + dx:2 + dx + w]
            both = model(torch.cat([v, v.flip(3)])).float()
            out[(dy, dx, False)], out[(dy, dx, True)] = both.chunk(2)
    return out


def score(run_dir: str, split: str) -> dict:
    """Top-1 of every view set on one run's split, and its disagreements with the current TTA."""
    device = pick_device("auto")
    run, cfg, state, model, transform = restore(run_dir, device)
    data = prepare_data(cfg).get(split)
    amp = autocast_dtype(cfg.train.precision, device)
    logits, labels = {}, []
    with torch.inference_mode():
        for xb, yb in batches(data, 500, transform, device, train=False):
            for k, v in view_logits(model, xb, amp).items():
                logits.setdefault(k, []).append(v.cpu())
            labels.append(yb.cpu())
    logits = {k: torch.cat(v) for k, v in logits.items()}
    y = torch.cat(labels)

    def combine(weights: dict, probs: bool) -> torch.Tensor:
        total = sum(w * (logits[(*s, f)].softmax(1) if probs else logits[(*s, f)])
                    for s, w in weights.items() for f in (False, True))
        return total.argmax(1)

    ref = combine(SETS["current: centre, 2 diagonal (6 views)"], probs=False) == y
    rows = []
    for name, weights in SETS.items():
        for probs in (False, True):
            right = combine(weights, probs) == y
            rows.append({"set": name, "average": "probabilities" if probs else "logits",
                         "top1": right.float().mean().item(),
                         "gained": int((right & ~ref).sum()), "lost": int((ref & ~right).sum())})
    return {"run": str(run.path), "split": split, "n": len(y), "rows": rows}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--json", action="store_true")
    a = p.parse_args()
    try:
        results = [score(r, a.split) for r in a.runs]
    except ImgclfError as e:  # a missing run, or one without the split: one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.json:
        print(json.dumps(results))
        return 0
    for res in results:
        print(f"\n{res['run']} ({res['split']}, {res['n']:,} images)")
        print("| view set | average of | top-1 | gained | lost | net |")
        print("| --- | --- | ---: | ---: | ---: | ---: |")
        for r in res["rows"]:
            print(f"| {r['set']} | {r['average']} | {100 * r['top1']:.2f}% | {r['gained']} | {r['lost']} "
                  f"| {r['gained'] - r['lost']:+d} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
