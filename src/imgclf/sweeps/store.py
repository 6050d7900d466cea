"""Where trials are stored: Optuna's journal file in the sweep folder, or a database URL.

Optuna's FAQ advises against SQLite for parallel workers ('database is locked'),
so the embedded default is the journal file, which several local processes
append to under a file lock; a PostgreSQL (or MySQL) URL lets several machines
share one sweep.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Optional

from ..core.errors import ImgclfError
from .files import JOURNAL


class SweepError(ImgclfError):
    """A sweep folder or its storage cannot be used."""


def sweeps_root(sweeps_dir=None) -> Path:
    return Path(sweeps_dir or os.environ.get("IMGCLF_SWEEPS") or "sweeps").expanduser()


def open_storage(sweep_dir: Path, url: Optional[str] = None):
    """An Optuna storage: the journal file in `sweep_dir`, or the database at `url`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if url:
        # Several workers starting at once race to create Optuna's tables; the losers see a
        # unique-constraint error and succeed on a retry, once the tables exist.
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(url, engine_kwargs={"pool_pre_ping": True})
            except Exception as e:  # drivers raise their own classes: all mean "cannot use this URL"
                msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
                if attempt < 5 and ("unique" in msg.lower() or "already exists" in msg.lower()):
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise SweepError(f"cannot open storage {redact(url)} ({msg}); check the URL, the server and its driver") from None
    sweep_dir.mkdir(parents=True, exist_ok=True)
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    path = str(sweep_dir / JOURNAL)
    try:  # the journal is replayed here: a damaged one fails now, not inside a worker
        return optuna.storages.JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    except Exception as e:  # Optuna raises its own classes and JSON errors for a damaged journal
        msg = str(e).strip().splitlines()[0][:150] if str(e).strip() else type(e).__name__
        raise SweepError(f"the sweep journal {path} is damaged ({msg}); restore it from a copy, or start the sweep "
                         f"again under another --name") from None


def redact(url: str) -> str:
    """The URL with its password replaced by ***."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        return f"{scheme}://{cred}@{host}"
    return url
