"""Atomic writes: every file imgclf writes goes to a unique temporary file beside its target,
then is renamed over it, so a killed process or two concurrent writers never leave a
half-written file (the rename is atomic on one file system)."""
from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import IO, Callable

_FULL = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES}  # the disk, not the data


def atomic_write(path: Path, write: Callable[[IO], None], binary: bool = False) -> None:
    """Call `write` on a unique temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno in _FULL:  # say which file it was and that its old version is whole
            raise OSError(e.errno, f"{e.strerror} while writing; its previous version is kept", str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    atomic_write(path, lambda f: f.write(text))


def atomic_torch_save(obj, path: Path) -> None:
    """torch.save `obj` to `path` atomically."""
    import io

    import torch

    # Serialized in memory first: torch.save reports a failed file write (a full disk) as a
    # RuntimeError of its own, a plain write reports it as the OSError it is.
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write(path, lambda f: f.write(buf.getbuffer()), binary=True)
