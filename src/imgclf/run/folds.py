"""K-fold cross-validation of one experiment: `imgclf train ... --folds K`.

Fold k is an ordinary run (data.folds=K, data.fold=k: the validation split is the k-th of K
stratified folds of the training images) in runs/<name>/fold-<k+1>/. The folder's results.json
holds each fold's scores and, for each score, the mean with its 95% interval over the folds (the
interval the studies use for seeds). The same command continues a killed cross-validation: a
finished fold is read, an unfinished one resumes, a missing one trains.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config.load import from_dict, load_config
from ..config.schema import ExperimentConfig
from ..core.errors import ConfigError
from ..core.results import write_results
from ..core.run_files import BEST, CONFIG, FOLD_STEM, LAST, METRICS
from ..evaluation.interval import interval
from ..runtime.distributed import launched
from . import folder as R
from .preflight import preflight
from .train import _same_command, train


def _fold_config(config, overrides: Sequence[str]) -> ExperimentConfig:
    """The validated experiment of one fold."""
    return from_dict(config.to_dict(), overrides) if isinstance(config, ExperimentConfig) else load_config(config, overrides)


# What each fold reports, in points: the held-out fold's scores at the last epoch (a fixed number of
# epochs, chosen before seeing the fold, so the estimate is not biased by picking the epoch on it)
# and the kept model's test scores.
SCORES = {"val_acc": "validation accuracy", "val_balanced_acc": "validation balanced accuracy",
          "test_acc": "test accuracy", "test_balanced_acc": "test balanced accuracy"}


def _scores(run_dir: Path) -> dict:
    """One fold's figures, in points, from its run folder."""
    m = R.read_json(run_dir / METRICS)
    last = R.read_history(run_dir / R.HISTORY)[-1]
    test = m.get("test") or {}
    out = {"val_acc": last.get("val_acc"), "val_balanced_acc": last.get("val_balanced_acc"),
           "test_acc": test.get("top1"), "test_balanced_acc": test.get("balanced_acc")}
    return {"best_epoch": m["best_epoch"], "epochs": m["epochs_run"],
            **{k: None if v is None else 100.0 * v for k, v in out.items()}}


def train_folds(config, overrides: Sequence[str], folds: int, *, name: Optional[str] = None, runs_dir=None,
                keep_folds: bool = False, progress: Optional[bool] = None, echo: bool = True,
                log: Callable[[str], None] = print) -> dict:
    """Train `folds` runs, one per held-out fold, and return the summary written to results.json."""
    if folds < 2:
        raise ConfigError(f"--folds {folds}: a cross-validation needs at least 2 folds")
    if launched():  # each rank would decide alone which folds are done: on several machines they disagree
        raise ConfigError("--folds does not run under torchrun; train the folds one process each (imgclf train "
                          "--folds K), or each fold under torchrun with --set data.folds=K --set data.fold=k")
    base = list(overrides) + [f"data.folds={folds}"]
    cfg = _fold_config(config, base)
    preflight(cfg)  # every fold shares the config but data.fold: one check before any fold trains
    folder = R.runs_root(runs_dir) / (name or f"{cfg.model.name}-{cfg.data.name}-{folds}fold")
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for k in range(folds):
        run_name = f"{FOLD_STEM}{k + 1}"
        run_dir = folder / run_name
        fold_overrides = base + [f"data.fold={k}"]
        if (run_dir / CONFIG).is_file():  # a fold of another experiment is never read as this one's
            _same_command(_fold_config(config, fold_overrides), run_dir)
        if not (run_dir / METRICS).is_file():
            resume = True if (run_dir / CONFIG).is_file() else None
            train(config, fold_overrides, name=run_name, runs_dir=folder, resume=resume, progress=progress, echo=echo)
        rec = {"fold": k + 1, "run": str(run_dir), **_scores(run_dir)}
        records.append(rec)
        log(f"fold {k + 1}/{folds}: " + "  ".join(f"{SCORES[s]} {rec[s]:.2f}%" for s in ("val_acc", "test_acc")
                                                 if rec[s] is not None))
    summary = {}
    for key, words in SCORES.items():
        values = [r[key] for r in records if r[key] is not None]
        if values:
            iv = interval(values)
            summary[key] = {"mean": iv.mean, "ci95": iv.half if iv.n > 1 else None, "n": iv.n, "values": values}
            log(f"{words} over {folds} folds: {iv.words('%')}")
    best = max(records, key=lambda r: (r["val_acc"] or 0.0))["fold"]
    summary.update(folds=folds, best_fold=best, kept="all" if keep_folds else f"{FOLD_STEM}{best}")
    write_results(folder, records, summary)
    if not keep_folds:  # the weights of the best fold stay; the others' figures and logs stay too
        for r in records:
            if r["fold"] != best:
                for f in (BEST, LAST):
                    (Path(r["run"]) / f).unlink(missing_ok=True)
    log(f"kept the checkpoints of {FOLD_STEM}{best} (best validation accuracy)"
        + ("" if keep_folds else "; --keep-folds keeps every fold's") + f"; results in {folder}{os.sep}results.json")
    return summary
