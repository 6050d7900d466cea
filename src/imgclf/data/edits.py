"""data.exclude and data.relabel: lists of images applied to the decoded data set before it is split.

A list is a CSV with a `path` column naming images as the data set names them (an image
folder's relative paths, train/cat/0001.jpg; `split/index` for the built-in sets), the CSV
`imgclf inspect` writes. With an `action` column, data.exclude takes the rows whose action is
`exclude` and data.relabel those whose action is `relabel`, to the class in their `label` column.
Nothing in the user's folder changes: the lists apply to the decoded copy, run by run.
"""
from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import torch

from ..config.schema import DataConfig
from ..core.errors import DataError
from .on_disk import rows
from .registry import SPLITS, RawData


def read_list(file: str, key: str) -> dict[str, str]:
    """{path: label} of the rows a list applies (label '' for data.exclude), from its CSV."""
    path = Path(file).expanduser()
    if not path.is_file():
        raise DataError(f"{key}: {path} does not exist; give the CSV imgclf inspect wrote (inspect/NAME/findings.csv)")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (csv.Error, UnicodeDecodeError) as e:
        raise DataError(f"{key}: {path} is not a readable CSV ({e}); write it as UTF-8 with a path column") from None
    if not rows:
        return {}
    if "path" not in rows[0]:
        raise DataError(f"{key}: {path} has no 'path' column (it has {', '.join(map(repr, rows[0]))}); "
                        "name the images in a column headed path")
    action = "exclude" if key == "data.exclude" else "relabel"
    if "action" in rows[0]:
        rows = [r for r in rows if (r.get("action") or "").strip().lower() == action]
    if action == "relabel" and rows and "label" not in rows[0]:
        raise DataError(f"{key}: {path} has no 'label' column; give each image's new class in a column headed label")
    return {(r["path"] or "").strip(): (r.get("label") or "").strip() for r in rows}


def apply_edits(raw: RawData, cfg: DataConfig) -> RawData:
    """`raw` without the images data.exclude lists and with data.relabel's new classes; its `note`
    says what changed. One line names a list that names images or classes the data set lacks."""
    if not cfg.exclude and not cfg.relabel:
        return raw
    names = {s: raw.split_ids(s) for s in SPLITS}
    known = {p for ids in names.values() for p in ids}
    lists = {key: read_list(f, key) for key, f in (("data.exclude", cfg.exclude), ("data.relabel", cfg.relabel)) if f}
    for key, listed in lists.items():
        missing = [p for p in listed if p not in known]
        if missing:
            raise DataError(f"{key}: {len(missing):,} of the {len(listed):,} images it lists are not in this data set, "
                            f"e.g. {missing[0]!r} (names look like {next(iter(known))!r}); make the list from this "
                            f"data set with imgclf inspect")
    drop = set(lists.get("data.exclude", {}))
    relabel = lists.get("data.relabel", {})
    index = {c: i for i, c in enumerate(raw.classes)}
    bad = sorted({c for c in relabel.values() if c not in index})
    if bad:
        raise DataError(f"data.relabel: class {bad[0]!r} is not one of the data set's ({', '.join(raw.classes)}); "
                        "give a class it has in the label column")
    out, ids, relabelled = {}, {}, 0
    for s in SPLITS:
        x, y = getattr(raw, f"{s}_x"), getattr(raw, f"{s}_y")
        if y is None:
            out[f"{s}_x"], out[f"{s}_y"] = x, y
            continue
        keep = torch.tensor([p not in drop for p in names[s]], dtype=torch.bool)
        new = torch.tensor([index[relabel[p]] if p in relabel else int(v) for p, v in zip(names[s], y.tolist())],
                           dtype=torch.int64)
        relabelled += int((new != y)[keep].sum())
        out[f"{s}_x"], out[f"{s}_y"] = rows(x, keep), new[keep]
        ids[s] = [p for p, k in zip(names[s], keep.tolist()) if k]
    for s, words in (("test", "test"), ("val", "validation")):
        if out[f"{s}_y"] is not None and len(out[f"{s}_y"]) == 0:
            raise DataError(f"data.exclude removes every {words} image; keep some, or drop data.exclude")
    note = f"excluded {len(drop):,} images (data.exclude {cfg.exclude})" if drop else ""
    if relabel:
        note += ("; " if note else "") + f"relabelled {relabelled:,} images (data.relabel {cfg.relabel})"
    return replace(raw, **out, ids=ids, note=note)
