"""One self-contained HTML page and a Markdown file (PNGs beside it) for runs and sweeps.

The content is a list of blocks (headings, paragraphs, preformatted text, tables,
figures) rendered twice: as HTML with the figures embedded as data URIs (no network
needed, readable on a phone), and as Markdown referring to the PNGs written beside it.
"""
from __future__ import annotations

import base64
import html
import time
from pathlib import Path
from typing import Optional

from ..core.errors import RunError
from ..core.run_files import REPORT_DIR
from ..run import folder as R
from ..sweeps import files as SF
from . import figures as F

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:980px;padding:12px;
color:#1b1b1b;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:2em}
img{max-width:100%;height:auto;border:1px solid #eee}
figure{margin:1em 0}figcaption{color:#555;font-size:.9em}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:.8em}
table{border-collapse:collapse;font-size:.85em;display:block;overflow-x:auto;max-width:100%}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:right}th{background:#f0f0f0}
"""
CHECK = """<script>
window.addEventListener('load',function(){var bad=0;document.querySelectorAll('img').forEach(function(i){
if(!i.complete||i.naturalWidth===0){bad++;}});document.body.setAttribute('data-broken-images',String(bad));
document.body.setAttribute('data-images',String(document.images.length));});
</script>"""


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.4f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return "-" if v is None else str(v)


def pct(v) -> str:
    """A share in 0..1 as a percentage; '-' when there is none."""
    return "-" if v is None else f"{100 * v:.2f}%"


def _run_blocks(path: Path, out: Path) -> tuple[list, dict]:
    from ..run.folder import Run

    run = Run(path)
    m, hist = run.metrics, R.read_history(path / R.HISTORY)
    cfg = run.config
    name = path.name
    test = m["test"]
    blocks: list = [("h2", f"Run {name}")]
    blocks.append(("p", f"{cfg.model.name} on {cfg.data.name}: {m['params']:,} parameters, {m['mult_adds']:,} "
                        f"multiply-adds per image; {m['epochs_run']} epochs in {m['train_seconds']:.0f} s on "
                        f"{m.get('device', 'cpu')}; {R.kept_phrase(m['best_epoch'], m['monitor'])}."
                        + (f" Stopped: {m['stop_reason']}." if m.get("stop_reason") else "")))
    if test is not None:
        five = len(m["classes"]) > 5  # top-5 of five classes or fewer is always 100%
        bal = "balanced_acc" in test  # runs of earlier versions did not record them
        blocks.append(("table", ["split", "loss", "top-1", *(["top-5"] if five else []),
                                 *(["balanced accuracy", "macro-F1"] if bal else []), "images"],
                       [["test", f"{test['loss']:.4f}", pct(test["top1"]), *([pct(test["top5"])] if five else []),
                         *([pct(test["balanced_acc"]), pct(test["macro_f1"])] if bal else []), f"{test['n']:,}"]]))
    else:
        blocks.append(("p", "The test split was not scored (a tuning run, train.final_test: false)."))
    figs = out / "figures" / name
    blocks.append(("img", F.learning_curves(hist, figs / "learning_curves", m["best_epoch"], name),
                   "Loss and accuracy per epoch; the dashed line marks the best epoch."))
    if test is not None:
        classes = m["classes"]
        blocks.append(("img", F.confusion_matrix(test["confusion"], classes, figs / "confusion"),
                       "Confusion matrix on the test split (rows: true class)."))
        blocks.append(("img", F.per_class_accuracy(test["per_class_accuracy"], classes, figs / "per_class"),
                       "Accuracy per class on the test split."))
        conf = test["confusion"]
        blocks.append(("table", ["class", "test images", "accuracy", "most often taken for"],
                       [[c, f"{sum(conf[i]):,}", pct(a), _confused(conf, i, classes)]
                        for i, (c, a) in enumerate(zip(classes, test["per_class_accuracy"]))]))
        mis = _misclassified(run, figs / "misclassified")
        if mis is not None:
            blocks.append(("img", mis, "The test images the model got wrong with the highest confidence."))
    blocks.append(("table", ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"],
                   [[r["epoch"], _fmt(r["train_loss"]), pct(r["train_acc"]),
                     _fmt(r.get("val_loss")), pct(r.get("val_acc")),
                     f"{r['lr']:.3g}", f"{r['seconds']:.1f}"] for r in hist]))
    blocks.append(("h3", "Per-layer summary"))
    blocks.append(("pre", (path / R.SUMMARY_TXT).read_text(encoding="utf-8")))
    blocks.append(("h3", "Config"))
    blocks.append(("pre", (path / R.CONFIG).read_text(encoding="utf-8")))
    info = {"name": name, "params": m["params"], "mult_adds": m["mult_adds"], "top1": test["top1"] if test else None,
            "history": hist,
            "batch": cfg.train.batch_size, "epoch_s": sum(r["seconds"] for r in hist) / max(len(hist), 1),
            "train_images": m.get("train_images"),
            "config": cfg.to_dict()}
    return blocks, info


def _confused(conf: list, i: int, classes: list) -> str:
    """The class that images of class i were most often predicted as, when any were wrong."""
    wrong = [(n, j) for j, n in enumerate(conf[i]) if j != i and n]
    if not wrong:
        return "-"
    n, j = max(wrong)
    return f"{classes[j]} ({n:,})"


def _md(cell) -> str:
    """A table cell's text for Markdown: markup escaped (viewers render raw HTML), pipes kept in the cell."""
    return html.escape(str(cell)).replace("|", "\\|")


def _misclassified(run, path: Path, k: int = 12) -> Optional[Path]:
    """The k most confident mistakes on the test split (skipped if the data cannot be read)."""
    import torch

    from ..core.errors import ImgclfError
    from ..data.loader import batches
    from ..inference.restore import restore
    from ..run.build import prepare_data

    try:
        run, cfg, state, model, transform = restore(run, torch.device("cpu"))
        splits = prepare_data(cfg)
    except ImgclfError:
        return None
    probs = []
    with torch.inference_mode():
        for xb, _ in batches(splits.test, 1000, transform, torch.device("cpu"), train=False):
            probs.append(model(xb).float().softmax(1))
    p = torch.cat(probs)
    conf, pred = p.max(1)
    wrong = (pred != splits.test.y).nonzero().flatten()
    if len(wrong) == 0:
        return None
    top = wrong[conf[wrong].argsort(descending=True)[:k]]
    return F.misclassified_grid(splits.test.x[top].numpy(), splits.test.y[top].tolist(), pred[top].tolist(),
                                conf[top].tolist(), state["classes"], path)


def _sweep_blocks(path: Path, out: Path, top: int = 5) -> list:
    # Optuna comes with the sweep view: only a report of a sweep needs it
    from .sweep_view import present_sweep

    view = present_sweep(path, out_dir=out / "figures" / path.name, top=top)
    spec = view.spec
    return [("h2", f"Sweep {view.name}"),
            ("p", f"Strategy {spec.options.strategy}, objective {spec.options.objective} ({spec.direction}); "
                  f"{len(view.frame)} configurations: " + ", ".join(f"{v} {k}" for k, v in view.counts.items()) + "."),
            *sweep_blocks(view)]


def sweep_blocks(view) -> list:
    """A sweep view as report blocks: each table under its title, the notes, each figure over its caption."""
    blocks: list = []
    for t in view.tables:
        blocks += [("h3", t.title[:1].upper() + t.title[1:]), ("table", t.columns, t.rows)]
    blocks += [("p", n) for n in view.notes]
    return blocks + [("img", f.path, f.caption) for f in view.figures]


def _comparison_blocks(infos: list[dict], out: Path) -> list:
    blocks: list = [("h2", "Comparison"),
                     ("table", ["run", "parameters", "mult-adds", "test top-1", "s/epoch"],
                      [[i["name"], f"{i['params']:,}", f"{i['mult_adds']:,}", pct(i["top1"]),
                        f"{i['epoch_s']:.1f}"] for i in infos]),
                     ("img", F.compare_runs(infos, out / "figures" / "comparison"),
                      "Test accuracy against parameters and multiply-adds; validation curves overlaid."),
                     ("img", F.study_curves(infos, out / "figures" / "curves"),
                      "Training and validation, loss and accuracy, per run.")]
    batches = {i["batch"] for i in infos}
    if (len(batches) == len(infos) and len(infos) >= 3 and all(i["train_images"] for i in infos)
            and all(i["top1"] is not None for i in infos)):
        # a batch-size study: one run per batch size
        rows = []
        for i in infos:
            steps = -(-(i["train_images"] or 1) // i["batch"])  # ceil: batches per epoch
            rows.append({"batch": i["batch"], "epoch_s": i["epoch_s"], "top1": i["top1"], "step_s": i["epoch_s"] / steps})
        blocks.append(("img", F.batch_size_study(rows, out / "figures" / "batch_size"),
                       "Time per step and per epoch, and test accuracy, against batch size."))
    return blocks


def render_html(title: str, blocks: list) -> str:
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"]
    for b in blocks:
        kind = b[0]
        if kind in ("h2", "h3", "p"):
            parts.append(f"<{kind}>{html.escape(b[1])}</{kind}>")
        elif kind == "pre":
            parts.append(f"<pre>{html.escape(b[1])}</pre>")
        elif kind == "table":
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in b[1])
            rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in b[2])
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode()
            parts.append(f"<figure><img alt='{html.escape(b[2])}' src='data:image/png;base64,{data}'>"
                         f"<figcaption>{html.escape(b[2])}</figcaption></figure>")
    parts.append(CHECK + "</body></html>")
    return "".join(parts)


def render_md(title: str, blocks: list, out: Path) -> str:
    lines = [f"# {title}", ""]
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            lines += [f"## {b[1]}", ""]
        elif kind == "h3":
            lines += [f"### {b[1]}", ""]
        elif kind == "p":
            lines += [b[1], ""]
        elif kind == "pre":
            lines += ["```", b[1].rstrip(), "```", ""]
        elif kind == "table":
            lines += ["| " + " | ".join(map(_md, b[1])) + " |", "|" + "---|" * len(b[1])]
            lines += ["| " + " | ".join(map(_md, r)) + " |" for r in b[2]] + [""]
        elif kind == "img":
            lines += [f"![{b[2]}]({Path(b[1]).relative_to(out).as_posix()})", "", f"*{b[2]}*", ""]
    return "\n".join(lines)


def build_report(refs: list, out_dir=None, runs_dir=None, sweeps_dir=None) -> dict:
    """Write report.html (self-contained) and report.md (+ PNGs) for runs and/or sweeps."""
    from ..sweeps.store import sweeps_root

    items = []
    for ref in refs:
        p = Path(ref).expanduser()
        cands = [p, R.runs_root(runs_dir) / str(ref), sweeps_root(sweeps_dir) / str(ref)]
        found = next((c for c in cands if (c / R.CONFIG).is_file() or (c / SF.SPEC).is_file()), None)
        if found is None:
            raise RunError(f"{str(ref)!r} is neither a run nor a sweep (no config.yaml or sweep.yaml in {p}, "
                           f"{cands[1]} or {cands[2]})")
        items.append(found)
    out = Path(out_dir) if out_dir else (items[0] / REPORT_DIR if len(items) == 1 else
                                         Path("reports") / time.strftime("report-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    blocks: list = []
    infos = []
    for item in items:
        if (item / SF.SPEC).is_file():
            blocks += _sweep_blocks(item, out)
        else:
            b, info = _run_blocks(item, out)
            blocks += b
            infos.append(info)
    if len(infos) > 1:
        blocks = _comparison_blocks(infos, out) + blocks
    title = "imgclf report: " + ", ".join(i.name for i in items)
    R.atomic_write_text(out / "report.html", render_html(title, blocks))
    R.atomic_write_text(out / "report.md", render_md(title, blocks, out))
    return {"html": out / "report.html", "md": out / "report.md", "figures": sum(b[0] == "img" for b in blocks)}
