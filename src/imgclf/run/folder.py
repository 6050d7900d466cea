"""Run folders on disk: runs/<name>/ with config, history, metrics, summary and checkpoints.

The bottom of what reads runs (run/folder < inference < api): a Run here reads its files;
api.Run adds evaluate, predict, explain and export on top."""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..config.load import load_config
from ..core.atomic import atomic_write_text
from ..core.errors import RunError
from ..core.run_files import BEST, CLAIM, CONFIG, HISTORY, LAST, LOG, METRICS, SUMMARY_JSON, SUMMARY_TXT  # noqa: F401


def runs_root(runs_dir: str | os.PathLike | None = None) -> Path:
    """Where runs live: the argument, $IMGCLF_RUNS, or ./runs."""
    return Path(runs_dir or os.environ.get("IMGCLF_RUNS") or "runs").expanduser()


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def read_json(path: Path, required: tuple | dict = ()):
    """A JSON file, with one-line errors for a missing, damaged or foreign file (`required`: its top-level keys,
    or a mapping of them to the types their values must have)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path} not found; has this run finished training?") from None
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable or not valid JSON ({e}); train the run again") from None
    missing = [k for k in required if not isinstance(data, dict) or k not in data]
    if missing:
        raise RunError(f"{path} lacks {', '.join(missing)}, so it is not an imgclf run's file; train the run again")
    for k, kind in (required.items() if isinstance(required, dict) else ()):
        if not _is(data[k], kind):
            raise RunError(f"{path}: {k} is {str(data[k])[:40]!r}, not {_NAMES.get(kind, 'valid')}, so the file is "
                           f"damaged; train the run again")
    return data


NUMBER = (int, float)
_NAMES = {NUMBER: "a number", int: "an integer", str: "a string", list: "a list", (dict, type(None)): "a mapping"}


def _is(value, kind) -> bool:
    """`value` is of `kind`, a bool not counting as a number (JSON's true is no epoch count)."""
    return isinstance(value, kind) and not (isinstance(value, bool) and kind in (int, NUMBER))


HISTORY_KEYS = ("epoch", "train_loss", "train_acc", "lr", "seconds")  # every epoch record holds these
# what every metrics.json holds, and of which type (test is null when train.final_test is off)
METRICS_KEYS = {"test": (dict, type(None)), "classes": list, "best_epoch": int, "monitor": str, "epochs_run": int,
                "params": int, "mult_adds": int, "train_seconds": NUMBER}


TEST_KEYS = {"loss": NUMBER, "top1": NUMBER, "n": int}  # what a test score holds, beside optional extras


def read_metrics(path: Path) -> dict:
    """metrics.json, its keys and their types checked, a test score's own too, and its best epoch one of
    the epochs it ran: a damaged file is one line, not a crash in a report."""
    data = read_json(path, METRICS_KEYS)
    if data["test"] is not None:
        bad = [k for k, kind in TEST_KEYS.items() if not _is(data["test"].get(k), kind)]
        if bad:
            raise RunError(f"{path}: test.{bad[0]} is missing or not {_NAMES[TEST_KEYS[bad[0]]]}, so the file is "
                           f"damaged; train the run again")
    if not 1 <= data["best_epoch"] <= data["epochs_run"]:
        raise RunError(f"{path}: best_epoch {data['best_epoch']} is not one of the {data['epochs_run']} epochs run, "
                       f"so the file is damaged; train the run again")
    return data


def read_history(path: Path) -> list[dict]:
    """The epoch records of history.jsonl (empty if the run has not finished an epoch)."""
    if not path.exists():
        return []
    out = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, ValueError) as e:
        raise RunError(f"{path} is unreadable ({e}); the history file is corrupt") from None
    for i, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rec = json.loads(line)
            except ValueError:
                raise RunError(f"{path} line {i} is not valid JSON; the history file is corrupt") from None
            if not isinstance(rec, dict) or any(k not in rec for k in HISTORY_KEYS):
                raise RunError(f"{path} line {i} is not an epoch record (it needs {', '.join(HISTORY_KEYS)}); "
                               "the history file is corrupt")
            # the measured values are numbers (null where a metric was not measured): figures plot them
            bad = [k for k, v in rec.items() if (k in HISTORY_KEYS or k.startswith(("train_", "val_")))
                   and not (_is(v, NUMBER) or (v is None and k not in HISTORY_KEYS))]
            if bad:
                raise RunError(f"{path} line {i}: {bad[0]} is {str(rec[bad[0]])[:40]!r}, not a number; the history "
                               "file is corrupt")
            out.append(rec)
    return out


def resolve_run(ref: str | os.PathLike, runs_dir: str | os.PathLike | None = None) -> Path:
    """A run given as a folder path or as a name under the runs folder."""
    p = Path(ref).expanduser()
    for cand in (p, runs_root(runs_dir) / str(ref)):
        if (cand / CONFIG).is_file():
            return cand
    raise RunError(f"run {str(ref)!r} not found (looked for {p / CONFIG} and {runs_root(runs_dir) / str(ref) / CONFIG}); "
                   "give a run folder or a name under the runs folder")


def new_run_dir(name: str | None, default_stem: str, runs_dir: str | os.PathLike | None = None) -> Path:
    """Create and claim runs/<name>/, refusing a run that exists or that another process is creating.

    The claim is a file created with O_EXCL, which the file system grants to exactly one
    process: two `imgclf train --name X` started at once never write into the same folder."""
    root = runs_root(runs_dir)
    if name is not None:
        if not name.strip() or "/" in name or name in (".", ".."):
            raise RunError(f"--name {name!r} is not a valid run name; use letters, digits, - and _")
        path = root / name
        if (path / CONFIG).exists():
            raise RunError(f"run folder {path} already exists; continue it with --resume {name} or choose another --name")
        if not _claim(path):
            raise RunError(f"run folder {path} is being created by another imgclf process (or one that died "
                           f"before writing its config); choose another --name, or remove {path}")
        return path
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1, 1000):
        path = root / (f"{default_stem}-{stamp}" + (f"-{i}" if i > 1 else ""))
        if not path.exists() and _claim(path):
            return path
    raise RunError(f"cannot find a free run folder name under {root}; give one with --name")


def _claim(path: Path) -> bool:
    """Create `path` and its claim file; False if another process holds the claim."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    except OSError as e:
        raise RunError(f"cannot create run folder {path} ({e.strerror}); choose a writable --runs-dir") from None
    os.write(fd, f"{os.getpid()}\n".encode())
    os.close(fd)
    return True


def remove_stale_temps(run_dir: Path) -> None:
    """Delete temporary files a killed process left mid-write (their targets are whole: see core/atomic.py)."""
    for p in Path(run_dir).glob(".*.tmp"):
        p.unlink(missing_ok=True)


def kept_phrase(epoch: int, monitor: str) -> str:
    """How a run's kept weights were chosen, for logs and reports."""
    if monitor == "last":
        return f"weights of epoch {epoch}, the last (no validation split)"
    return f"best epoch {epoch} by {monitor}"


@dataclass
class Run:
    """A run folder: its config, history, metrics and checkpoints."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self):
        return load_config(self.path / CONFIG)

    @property
    def history(self):
        """Per-epoch records as a pandas DataFrame (one row per epoch)."""
        import pandas as pd  # local: pandas costs 0.3 s at start-up and only this property needs it

        return pd.DataFrame(read_history(self.path / HISTORY))

    @property
    def metrics(self) -> dict:
        return read_metrics(self.path / METRICS)

    @property
    def summary(self) -> str:
        return (self.path / SUMMARY_TXT).read_text(encoding="utf-8")


def load_run(ref, runs_dir=None) -> Run:
    """A Run from a folder path or a name under the runs folder."""
    return Run(resolve_run(ref, runs_dir))
