"""The one writer of results files: results.json and results.csv in a run's, a sweep's or a study's
folder, both written atomically (several sweep workers export into one folder at once, each through
its own temporary file, so a reader never sees half a file)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Optional

from .atomic import atomic_write_text

JSON, CSV = "results.json", "results.csv"


def write_results(folder: Path, records: list[dict], summary: Optional[dict] = None) -> list[Path]:
    """Write `records` (one dict per trial or run) as results.json, and their flat columns as results.csv.

    The JSON keeps every value (a trial's epoch history included); with a `summary` (a study's arms
    and claims) it is {"runs": records, **summary}. The CSV keeps the columns whose values are
    numbers, strings or empty, one row per record, for a spreadsheet or pandas."""
    folder = Path(folder)
    data = records if summary is None else {"runs": records, **summary}
    atomic_write_text(folder / JSON, json.dumps(data, indent=1, default=str) + "\n")
    nested = {k for r in records for k, v in r.items() if isinstance(v, (list, dict))}
    flat = [k for k in dict.fromkeys(k for r in records for k in r) if k not in nested]  # first-seen order
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=flat, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(records)
    atomic_write_text(folder / CSV, buf.getvalue())
    return [folder / JSON, folder / CSV]
