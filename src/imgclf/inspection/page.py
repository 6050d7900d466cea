"""The report of `imgclf inspect`: inspect/NAME/report.html (self-contained), findings.csv and
summary.json."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from ..core.atomic import atomic_write_text
from ..data.balance import WARN_RATIO
from ..reporting import figures as F
from ..reporting.report import render_html
from .findings import COLUMNS, Findings

SHOWN = 36  # images (or pairs) a section shows; findings.csv lists them all


def _short(name: str, width: int = 22) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


def summary(f: Findings) -> dict:
    """The figures of the report, for scripts and benchmarks."""
    p = f.pooled
    cross = [(i, j, d) for i, j, d in f.near if p.split[i] != p.split[j]]
    return {"images": len(p.y), "classes": p.classes, "counts": f.counts, "unreadable": len(f.files.unreadable),
            "too_small": len(f.files.small), "exact_groups": len(f.exact),
            "exact_images": sum(len(g) for g in f.exact), "near_pairs": len(f.near), "cross_split_pairs": len(cross),
            "threshold": f.threshold, "label_issues": len(f.flagged) if f.probs is not None else None,
            "folds": f.folds if f.probs is not None else None,
            "flagged": [p.names[i] for i in f.flagged],
            "held_out_accuracy": (float((f.probs.argmax(1) == p.y).double().mean()) if f.probs is not None else None)}


def _blocks(f: Findings, figs: Path) -> list:
    p = f.pooled
    s = summary(f)
    blocks: list = [("p", f"{s['images']:,} decoded images of {len(p.classes)} classes; {s['unreadable']} unreadable "
                          f"files; findings.csv lists every finding with the action data.exclude / data.relabel "
                          f"would take (edit its action column: exclude, relabel or empty).")]
    splits = list(f.counts)
    blocks.append(("h2", "Images per class"))
    rows = [[c, *[f"{f.counts[sp][k]:,}" for sp in splits], f"{sum(f.counts[sp][k] for sp in splits):,}"]
            for k, c in enumerate(p.classes)]
    blocks.append(("table", ["class", *splits, "all"], rows))
    train = [n for n in f.counts.get("train", []) if n] or [1]
    ratio = max(train) / min(train)
    blocks.append(("p", f"Largest over smallest training class: {ratio:.1f}x."
                   + (f" From {WARN_RATIO:g}x, train with train.class_weights: auto or data.sampler: balanced, and "
                      "read balanced accuracy and macro-F1." if ratio >= WARN_RATIO else "")))
    blocks.append(("h2", "Image sizes and modes"))
    blocks.append(("table", ["width x height", "files"],
                   [[f"{w}x{h}", f"{n:,}"] for (w, h), n in f.files.sizes.most_common(12)]))
    blocks.append(("table", ["mode", "files"], [[m, f"{n:,}"] for m, n in f.files.modes.most_common()]))
    if f.files.small:
        blocks.append(("p", f"{len(f.files.small):,} images have a side under the configured data.image_size: they "
                            f"are enlarged, and blur (issue too-small in findings.csv)."))
    if f.files.unreadable:
        blocks.append(("h2", "Unreadable files"))
        blocks.append(("table", ["file", "why"], [[n, why] for n, why in f.files.unreadable[:200]]))
    blocks.append(("h2", "Duplicates and leaks"))
    blocks.append(("p", f"{s['exact_images']:,} images in {s['exact_groups']:,} groups of pixel-equal copies; "
                        f"{s['near_pairs']:,} near-duplicate pairs (similarity of their low-frequency signatures {f.threshold:g} or more), "
                        f"{s['cross_split_pairs']:,} of them across splits (a leak: the model is tested on an image "
                        f"it trained on; the training copy is marked exclude)."))
    pairs = [(g[0], g[1]) for g in f.exact] + [(i, j) for i, j, _ in sorted(f.near, key=lambda t: -t[2])]
    cross_first = sorted(pairs, key=lambda ij: p.split[ij[0]] == p.split[ij[1]])[: SHOWN // 2]
    if cross_first:
        idx = [k for ij in cross_first for k in ij]
        blocks.append(("img", F.image_grid(p.x[idx].numpy(), [f"{p.split[k]}: {_short(p.names[k])}" for k in idx],
                                           figs / "duplicates", "pairs of copies, side by side", cols=6),
                       "Copies, two by two (across splits first)."))
    blocks.append(("h2", "Likely label errors"))
    if f.probs is None:
        blocks.append(("p", "Not looked for (--no-labels)."))
    else:
        blocks.append(("p", f"Each image scored by a model that never trained on it ({f.folds}-fold; "
                            f"{100 * s['held_out_accuracy']:.2f}% of the images predicted as labelled); confident "
                            f"learning (cleanlab) flags {s['label_issues']:,} "
                            f"({100 * s['label_issues'] / max(s['images'], 1):.2f}%), most likely first. Training "
                            f"and validation images are marked exclude; test images are left for you to judge."))
        top = f.flagged[:SHOWN]
        if top:
            titles = [f"{_short(p.names[i], 18)}\n{p.classes[int(p.y[i])][:10]} -> "
                      f"{p.classes[int(f.probs[i].argmax())][:10]} ({100 * float(f.probs[i].max()):.0f}%)" for i in top]
            blocks.append(("img", F.image_grid(p.x[top].numpy(), titles, figs / "labels",
                                               "given -> predicted (probability)", cols=6),
                           "The images most likely mislabelled: given class -> predicted class."))
    return blocks


def write_report(f: Findings, out: Path, title: str) -> dict:
    """Write report.html, findings.csv, summary.json and (with label scores) label_quality.csv into
    `out`; return the summary."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "report.html", render_html(title, _blocks(f, out / "figures")))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(f.rows)
    atomic_write_text(out / "findings.csv", buf.getvalue())
    if f.probs is not None:  # every image's label quality, lowest first: the review order beyond the flagged
        p = f.pooled
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["path", "split", "given", "predicted", "quality"])
        for i in sorted(range(len(p.y)), key=lambda i: f.quality[i]):
            w.writerow([p.names[i], p.split[i], p.classes[int(p.y[i])], p.classes[int(f.probs[i].argmax())],
                        f"{f.quality[i]:.5f}"])
        atomic_write_text(out / "label_quality.csv", buf.getvalue())
    s = summary(f)
    atomic_write_text(out / "summary.json", json.dumps(s, indent=1) + "\n")
    return s
