"""A study's report: one table of every run (best epoch, losses and accuracies, time per epoch and
per step, parameters, multiply-adds), the full comparison of learning curves, and the figures the
study asks for; report.html (self-contained), report.md and results.json in the study's folder."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Optional

from ..core.atomic import atomic_write_text
from ..core.results import write_results
from ..reporting import figures as F
from ..reporting.report import pct, render_html, render_md, sweep_blocks
from ..run import folder as R
from ..sweeps import attrs as A
from ..sweeps import files as SF
from ..sweeps.spec import BUDGET_STOP
from ..sweeps.status import TrialStatus
from .claims import interval, judge_study
from .protocol import Protocol, pick_epoch, test_score
from .spec import StudySpec
from .wall_budget import BudgetPlan, budget_rows

SUMMARY = "summary.json"  # results.json without the histories: small enough to commit (docs/studies/results/)
COLUMNS = ["run", "best epoch", "train loss", "train acc", "val loss", "val acc", "test loss", "test acc",
           "s/epoch", "ms/step", "params", "mult-adds"]


def run_row(name: str, folder: Path) -> dict:
    """One run's line of the study table, from its files (the kept epoch's figures)."""
    run = R.Run(folder)
    m, hist = run.metrics, R.read_history(folder / R.HISTORY)
    best = hist[m["best_epoch"] - 1] if m.get("best_epoch") else hist[-1]
    cfg = run.config
    batch = cfg.train.batch_size
    steps = max(1, math.ceil((m.get("train_images") or 0) / batch))
    # time per step without the validation pass (older runs: the whole epoch)
    train_s = [h["seconds"] - (h.get("val_seconds") or 0.0) for h in hist]
    test = m.get("test") or {}
    return {"run": name, "best_epoch": m.get("best_epoch"), "train_loss": best.get("train_loss"),
            "train_acc": best.get("train_acc"), "val_loss": best.get("val_loss"), "val_acc": best.get("val_acc"),
            "test_loss": test.get("loss"), "test_acc": test.get("top1"), "test_top5": test.get("top5"),
            "epoch_s": sum(h["seconds"] for h in hist) / len(hist), "step_ms": 1000 * sum(train_s) / len(hist) / steps,
            "params": m["params"], "mult_adds": m["mult_adds"], "batch": batch, "epochs": len(hist),
            "history": ([m["initial"]] if m.get("initial") else []) + hist, "path": str(folder)}


def arms_and_claims(spec: StudySpec, rows: list[dict]) -> dict:
    """Each arm's test accuracy over its seeds (points: mean, 95% interval, n, the values in seed
    order) and each of the study's claims judged on them."""
    by_run = {r["run"]: r for r in rows}
    def score(run: str) -> Optional[float]:  # in points, None for a seed without a result
        r = by_run.get(run)
        epochs = [h for h in r["history"] if h.get("epoch")] if r else []  # without the initial evaluation
        got = test_score(epochs, spec.protocol, r["test_acc"], r["best_epoch"]) if r else None
        return None if got is None else 100 * got

    scores = {arm: [score(run) for run in runs] for arm, runs in spec.arms().items()}  # in seed order
    arms = {}
    for arm, seeded in scores.items():
        values = [v for v in seeded if v is not None]
        if values:
            iv = interval(values)
            arms[arm] = {"mean": iv.mean, "ci95": iv.half if math.isfinite(iv.half) else None, "n": iv.n,
                         "values": values}
    claims = judge_study(spec.claims, scores, spec.scale)
    for c, claim in zip(claims, spec.claims):  # the report's own difference, where it gives both figures
        rep = spec.reported
        c["reported"] = rep[claim.a]["value"] - rep[claim.b]["value"] if claim.a in rep and claim.b in rep else None
    for arm, a in arms.items():
        a["reported"] = spec.reported.get(arm, {}).get("value")
    return {"protocol": spec.protocol.value, "arms": arms, "claims": claims}


def study_meta(spec: StudySpec, rows: list[dict]) -> dict:
    """What a study's results say about themselves: which study, the command, the scale, the machine
    its runs trained on (from their metrics.json), their training time, and the study's assumptions."""
    machines = sorted({m for r in rows if (m := (R.Run(Path(r["path"])).metrics or {}).get("machine"))})
    return {"name": spec.name, "title": spec.title, "report": spec.report, "about": spec.about, "note": spec.note,
            "command": spec.command,
            "scale": spec.scale, "machines": machines,
            "train_seconds": sum(r["epoch_s"] * r["epochs"] for r in rows),
            "assumptions": list(spec.assumptions), "reported": spec.reported}


_EPOCH_WORDS = {Protocol.BEST_VAL: "epoch of best validation accuracy (the kept weights)",
                Protocol.LAST: "last epoch", Protocol.LOWEST_TEST_LOSS: "epoch of lowest test loss"}


def _claim_blocks(spec: StudySpec, summary: dict) -> list:
    """The table the report opens with: each claim of the report, ours, and the verdict; then each arm."""
    def ours(mean, half, n) -> str:
        return f"{mean:+.2f}" + (f" ± {half:.2f}" if half is not None else "") + f" (n={n})"

    blocks: list = []
    if summary["claims"]:
        body = [[c["says"], c["section"] or "-", "-" if c["reported"] is None else f"{c['reported']:+.2f}",
                 ours(c["difference"], c["ci95"], c["n"]) if c["verdict"] else "-", c["verdict"] or c["why"]]
                for c in summary["claims"]]
        scale = f" Judged {spec.scale}, below the report's own scale." if spec.scale else ""
        blocks += [("h2", "The report's claims"), ("table", ["claim", "section", "report: difference, points",
                                                              "ours: difference, points", "verdict"],
                                                   body),
                   ("p", "Each difference is the mean over seeds of the paired test accuracies (seed k against "
                         "seed k) with its 95% interval (Student t); a claim holds when the interval lies on the "
                         "report's side, is reversed when it lies on the other, and is undecided when it covers "
                         f"the line (an 'equal' claim: the interval inside ±its points). Test accuracy read at "
                         f"the {_EPOCH_WORDS[spec.protocol]} (the study's protocol).{scale}")]
    if summary["claims"] or spec.reported or any(a["n"] > 1 for a in summary["arms"].values()):
        blocks += [("h2", "Arms: the report's figure and ours"),
                   ("table", ["arm", "report: test acc, %", "ours: test acc, %", "seeds"],
                    [[arm, "-" if a["reported"] is None else f"{a['reported']:.2f}",
                      f"{a['mean']:.2f}" + (f" ± {a['ci95']:.2f}" if a["ci95"] is not None else ""),
                      ", ".join(f"{v:.2f}" for v in a["values"])] for arm, a in summary["arms"].items()])]
    return blocks


def publishable(rows: list[dict], summary: dict) -> dict:
    """The study's results without the epoch histories: its arms, claims and meta, and one line per run."""
    keep = ("run", "settings", "best_epoch", "epochs", "val_acc", "test_acc", "test_loss", "epoch_s", "params")
    return {**summary, "runs": [{k: r.get(k) for k in keep} for r in rows]}


def _sweep_best(view, n: int = 10) -> list[dict]:
    """The sweep's best `n` configurations by its objective: their settings and objective value."""
    from ..sweeps.analysis import trial_label

    obj = view.spec.objectives[0][0]  # the first ranks
    return [{"settings": trial_label(row, view.spec), "value": float(row[obj])}
            for _, row in view.ranked.head(n).iterrows()]


def _mark(spec: StudySpec, row: dict) -> Optional[int]:
    """The epoch of a run that the study's protocol reads, or None where its history cannot say."""
    epochs = [h for h in row["history"] if h.get("epoch")]
    try:
        return pick_epoch(epochs, spec.protocol, row["best_epoch"]) if epochs else None
    except ValueError:  # no test loss to pick by: an older run
        return None


def _assumption_blocks(spec: StudySpec) -> list:
    """The values the report does not state: the one chosen for each, and the evidence."""
    if not spec.assumptions:
        return []
    return [("h2", "Assumptions"), ("table", ["value chosen", "evidence"],
                                    [[a["choice"], a["evidence"]] for a in spec.assumptions])]


def _label(r: dict) -> str:
    return f"{r['run']}: {r['settings']}" if r.get("settings") else r["run"]


def _cells(r: dict) -> list:
    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    return [_label(r), num(r["best_epoch"], "d"), num(r["train_loss"], ".4f"), pct(r["train_acc"]),
            num(r["val_loss"], ".4f"), pct(r["val_acc"]), num(r["test_loss"], ".4f"), pct(r["test_acc"]),
            num(r["epoch_s"], ".1f"), num(r["step_ms"], ".2f"), f"{r['params']:,}", f"{r['mult_adds']:,}"]


def study_report(spec: StudySpec, folder: Path, log: Callable[[str], None] = print) -> dict:
    """Write the study's report from its runs (and sweep); returns the paths and the table's rows."""
    figs = folder / "figures"
    rows = [run_row(n, folder / "runs" / n) for n in _run_names(spec, folder)]
    _name_retrained(spec, rows)
    blocks: list = [("p", spec.about)] if spec.about else []
    if spec.note:
        blocks.append(("p", spec.note))
    intro = len(blocks)  # the preview goes right after these paragraphs
    shares = BudgetPlan.load(folder)
    # The sweep's store, read once for its tables, its figures and the budget's trial counts.
    swept = spec.sweep is not None and (folder / "sweep" / SF.SPEC).is_file()
    sweep = _present_sweep(folder / "sweep", figs / "sweep") if swept else None
    if shares is not None and (rows or sweep is not None):
        for r in rows:  # the split, in results.json too
            r["budget_share_s"] = shares.share_s.get(r["run"])
        cols, body, text = budget_rows(shares, rows, shares.spent_s, _trial_counts(sweep.frame) if sweep else None)
        blocks += [("h2", "Budget"), ("p", text)] + ([("table", cols, body)] if body else [])
    unfinished = [n for n in spec.planned() if n not in {r["run"] for r in rows}]
    if rows:
        blocks += [("h2", "Runs"), ("table", COLUMNS, [_cells(r) for r in rows]),
                   ("p", "Loss and accuracy of each run's kept epoch (the best by its monitor); s/epoch includes the "
                         "validation pass, ms/step does not."),
                   ("img", F.study_curves([{"name": _label(r), "history": r["history"], "mark": _mark(spec, r)}
                                           for r in rows], figs / "curves"),
                    f"Training and validation (or test, where a run has no validation split), loss and accuracy, "
                    f"per run; a star marks the epoch the study's protocol reads ({_EPOCH_WORDS[spec.protocol]}).")]
    if unfinished:
        blocks.append(("p", f"Not finished: {', '.join(unfinished)} (failed, or not run yet: the study's output, "
                            f"or study.log here with several workers, says why)."))
    if "timing" in spec.figures and len(rows) > 1:
        timing = [{"batch": r["batch"], "step_s": r["step_ms"] / 1000, "epoch_s": r["epoch_s"],
                   "top1": r["test_acc"] or 0.0} for r in rows]
        blocks.append(("img", F.batch_size_study(timing, figs / "timing"),
                       "Time per step (without validation) and per epoch, and test accuracy, against batch size."))
    if "preview" in spec.figures and rows:
        from ..run.build import prepare_data

        split = prepare_data(R.Run(Path(rows[0]["path"])).config)
        preview = F.preview_grid(split.train.x[:32], split.train.y[:32], split.classes, figs / "preview")
        blocks.insert(intro, ("img", preview, "A first look: training images with their classes."))
    if "activations" in spec.figures:
        blocks += _activation_blocks(rows, figs)
    if sweep is not None:
        blocks = _sweep_blocks(sweep, figs) + blocks
    summary = arms_and_claims(spec, rows)
    summary["study"] = study_meta(spec, rows)
    if sweep is not None:
        summary["sweep_best"] = _sweep_best(sweep)
    blocks = _claim_blocks(spec, summary) + _assumption_blocks(spec) + blocks
    title = f"{spec.title}" + (f" (report {spec.report})" if spec.report else "")
    if shares is not None:  # a budget's answer is what it buys here, not the report's
        where = "; ".join(summary["study"]["machines"]) or "this machine"
        title = f"What {shares.text} buys on {where}: {title}"
    atomic_write_text(folder / "report.html", render_html(title, blocks))
    atomic_write_text(folder / "report.md", render_md(title, blocks, folder))
    write_results(folder, rows, summary)
    atomic_write_text(folder / SUMMARY, json.dumps(publishable(rows, summary), indent=1) + "\n")
    for c in summary["claims"]:
        log(f"claim {c['says']}: {c['verdict'] or 'not judged (' + c['why'] + ')'}")
    log(f"wrote {folder / 'report.html'} and report.md ({len(rows)} run{'s' if len(rows) != 1 else ''})")
    return {"html": str(folder / "report.html"), "md": str(folder / "report.md"), "rows": rows}


def _name_retrained(spec: StudySpec, rows: list[dict]) -> None:
    """A retrained run's settings ('hidden.0 2048, hidden.1 1024'), shown beside its name ('top1')."""
    if spec.sweep is None:
        return
    from ..sweeps.analysis import trial_label
    from ..sweeps.spec import load_sweep

    sweep = load_sweep(spec.sweep)
    for r in rows:
        if r["run"] not in spec.runs:
            d = R.Run(Path(r["path"])).config.to_dict()
            r["settings"] = trial_label({p.name: _lookup(d, p.name) for p in sweep.space}, sweep)


def _lookup(d, key: str):
    """The value at a dotted key of a config dict ('model.hidden.0' indexes the list)."""
    for part in key.split("."):
        d = d[int(part)] if isinstance(d, list) else d.get(part)
    return d


def _run_names(spec: StudySpec, folder: Path) -> list[str]:
    return [n for n in spec.planned() if (folder / "runs" / n / R.METRICS).is_file()]


def _activation_blocks(rows: list[dict], figs: Path) -> list:
    """Feature maps and Grad-CAM of each run's model on the first test image."""
    from ..reporting.explain import explain
    from ..run.build import prepare_data

    blocks: list = []
    for r in rows:
        run = R.Run(Path(r["path"]))
        image = prepare_data(run.config).test.x[0]
        out = explain(run, image, out_dir=figs / "activations" / r["run"])
        paths = out.get("paths", [])
        for p in paths[:1] + paths[-1:] if len(paths) > 1 else paths:  # the first maps and the Grad-CAM
            blocks.append(("img", Path(p), f"{r['run']}: {Path(p).stem.replace('_', ' ')}"))
    return blocks


def _present_sweep(sweep_dir: Path, figs: Path):
    """The view of a study's sweep (its tables, and its figures written to `figs`)."""
    # Optuna comes with the sweep view: only a study with a sweep needs it
    from ..reporting.sweep_view import present_sweep

    return present_sweep(sweep_dir, out_dir=figs)


def _trial_counts(df) -> dict:
    """How a sweep's trials ended: complete, pruned (by the pruner), budget (stopped by the wall budget)."""
    by_budget = df["reason"].fillna("").str.startswith(BUDGET_STOP)
    return {TrialStatus.COMPLETE: int((df["status"] == TrialStatus.COMPLETE).sum()),
            TrialStatus.PRUNED: int(((df["status"] == TrialStatus.PRUNED) & ~by_budget).sum()),
            "budget": int(by_budget.sum())}


def _sweep_blocks(view, figs: Path) -> list:
    """The sweep's view, then the learning curves of its best 3, median 3 and worst 5."""
    from ..sweeps.analysis import trial_label

    done, sspec = view.ranked, view.spec
    obj = sspec.options.objective
    blocks: list = [("h2", f"Sweep: {len(done)} complete configurations"), *sweep_blocks(view)]
    trials = {t.number: t for t in view.study.get_trials(deepcopy=False)}
    order = [row for _, row in done.iterrows()]
    mid = max(0, len(order) // 2 - 1)
    groups = {"best 3": order[:3], "median 3": order[mid : mid + 3], "worst 5": order[-5:] if len(order) > 3 else []}
    for key in ("val_loss", "train_loss"):
        curves = {g: [(trial_label(r, sspec), trials[int(r["trial"])].user_attrs.get(A.HISTORY) or []) for r in rows]
                  for g, rows in groups.items()}
        blocks.append(("img", F.sweep_curve_groups(curves, key, figs / "sweep" / f"groups_{key}"),
                       f"{key} of the best 3, median 3 and worst 5 configurations by {obj}."))
    return blocks
