"""The findings of `imgclf inspect`: counts, files, duplicates and leaks, likely label errors, each
image finding a row of findings.csv with the action data.exclude or data.relabel would take."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from ..config.schema import ExperimentConfig
from ..data import load_raw
from ..data.folder import folder_shape
from ..data.on_disk import concat
from ..data.registry import SPLITS
from .duplicates import DEFAULT_THRESHOLD, exact_groups, near_pairs, signature
from .labels import DEFAULT_FOLDS, label_issues, out_of_fold_probs
from .scan import FileScan, scan_folder

COLUMNS = ["path", "split", "issue", "given", "label", "score", "other", "action"]
# Which copy of a duplicate pair leaves: the test split is kept as published, so a training copy
# of a test image goes (a leak), and within a split the later copy goes.
KEEP_ORDER = {"test": 0, "val": 1, "train": 2}


@dataclass
class Pooled:
    """Every labelled image of a data set, whatever its split, with its split and name."""

    x: torch.Tensor
    y: torch.Tensor
    split: list[str]
    names: list[str]
    classes: list[str]


@dataclass
class Findings:
    pooled: Pooled
    counts: dict[str, list[int]]  # split -> images per class
    files: FileScan
    exact: list[list[int]] = field(default_factory=list)
    near: list[tuple[int, int, float]] = field(default_factory=list)  # (i, j, similarity)
    flagged: list[int] = field(default_factory=list)  # likely label errors, most likely first
    probs: Optional[torch.Tensor] = None
    quality: Optional[list[float]] = None
    threshold: float = DEFAULT_THRESHOLD
    folds: int = DEFAULT_FOLDS
    rows: list[dict] = field(default_factory=list)


def pool(cfg: ExperimentConfig) -> Pooled:
    """The decoded data set (unreadable files skipped), its splits laid end to end."""
    raw = load_raw(cfg.data)
    xs, ys, split, names = [], [], [], []
    for s in SPLITS:
        x, y = getattr(raw, f"{s}_x"), getattr(raw, f"{s}_y")
        if y is not None:
            xs.append(x)
            ys.append(y)
            split += [s] * len(y)
            names += raw.split_ids(s)
    x = xs[0]
    for more in xs[1:]:  # images left on disk are joined lazily (data/on_disk.py), never read whole
        x = concat(x, more)
    return Pooled(x, torch.cat(ys), split, names, list(raw.classes))


def _file_scan(cfg: ExperimentConfig, p: Pooled) -> FileScan:
    if cfg.data.name == "folder":
        return scan_folder(Path(cfg.data.path).expanduser(), folder_shape(cfg.data)[1])
    _, h, w = p.x.shape[1:]
    return FileScan(sizes=Counter({(w, h): len(p.y)}), modes=Counter({"L" if p.x.shape[1] == 1 else "RGB": len(p.y)}),
                    files=len(p.y))


def _leaving(p: Pooled, members: list[int]) -> list[int]:
    """Of a group of copies, those that leave: all but the one the keep order prefers, never a test image."""
    keep = min(members, key=lambda i: (KEEP_ORDER[p.split[i]], i))
    return [i for i in members if i != keep and p.split[i] != "test"]


def _rows(f: Findings) -> list[dict]:
    p, rows = f.pooled, []

    def row(i: int, issue: str, label: str = "", score="", other: str = "", action: str = "") -> None:
        rows.append({"path": p.names[i], "split": p.split[i], "issue": issue, "given": p.classes[int(p.y[i])],
                     "label": label, "score": score, "other": other, "action": action})

    for name, why in f.files.unreadable:
        rows.append({"path": name, "split": name.split("/")[0], "issue": "unreadable", "given": "", "label": "",
                     "score": "", "other": why, "action": ""})
    index = {n: i for i, n in enumerate(p.names)}
    for name, (w, h) in f.files.small.items():
        if name in index:
            row(index[name], "too-small", score=f"{w}x{h}")
    for group in f.exact:
        leave = set(_leaving(p, group))
        for i in group:
            others = ";".join(p.names[j] for j in group if j != i)
            row(i, "duplicate", other=others, action="exclude" if i in leave else "")
    for i, j, d in f.near:
        cross = p.split[i] != p.split[j]
        issue = "leak" if cross else "near-duplicate"
        leave = set(_leaving(p, [i, j])) if cross else set()  # within a split: shown, left to the user
        row(i, issue, score=d, other=p.names[j], action="exclude" if i in leave else "")
        row(j, issue, score=d, other=p.names[i], action="exclude" if j in leave else "")
    for rank, i in enumerate(f.flagged):
        pred = int(f.probs[i].argmax())
        row(i, "label", label=p.classes[pred], score=f"{f.quality[i]:.4f}",
            other=f"rank {rank + 1}", action="" if p.split[i] == "test" else "exclude")
    return rows


def inspect_data(cfg: ExperimentConfig, threshold: float = DEFAULT_THRESHOLD, folds: int = DEFAULT_FOLDS,
                 labels: bool = True, log: Callable[[str], None] = print) -> Findings:
    """Everything `imgclf inspect` reports about the data set of `cfg`."""
    p = pool(cfg)
    counts = {s: torch.bincount(p.y[[i for i, t in enumerate(p.split) if t == s]], minlength=len(p.classes)).tolist()
              for s in SPLITS if s in p.split}
    f = Findings(p, counts, _file_scan(cfg, p), threshold=threshold, folds=folds)
    log(f"{len(p.y):,} images of {len(p.classes)} classes ({', '.join(f'{sum(c):,} {s}' for s, c in counts.items())})"
        + (f"; {len(f.files.unreadable)} unreadable" if f.files.unreadable else ""))
    f.exact = exact_groups(p.x)
    same = {(a, b) for g in f.exact for a in g for b in g if a < b}
    f.near = [t for t in near_pairs(signature(p.x), threshold) if (t[0], t[1]) not in same]
    log(f"{sum(len(g) for g in f.exact):,} images in {len(f.exact):,} groups of exact duplicates; {len(f.near):,} "
        f"near-duplicate pairs (signature similarity {threshold:g} or more)")
    if labels:
        f.probs = out_of_fold_probs(cfg, p.x, p.y, p.classes, folds, log)
        flagged, quality = label_issues(p.y, f.probs)
        f.flagged, f.quality = flagged.tolist(), quality.tolist()
        log(f"{len(f.flagged):,} likely label errors ({100 * len(f.flagged) / len(p.y):.2f}% of the images)")
    f.rows = _rows(f)
    return f
