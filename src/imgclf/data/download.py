"""Fetch the standard files of a data set for users who are online."""
from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from ..errors import DataError


def md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(url: str, dest: Path, expected_md5: str | None = None, timeout_s: float = 30.0) -> Path:
    """Download `url` to `dest` atomically, checking its md5 when one is given."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
        if expected_md5 and md5(Path(tmp)) != expected_md5:
            raise DataError(f"downloaded {url} but its md5 does not match; try again or download it by hand to {dest}")
        os.replace(tmp, dest)
        return dest
    except DataError:
        raise
    except Exception as e:  # network errors come in many classes; all mean "not fetched"
        raise DataError(
            f"could not download {url} ({type(e).__name__}: {e}); when offline, put the file in {dest.parent} "
            "or point data.data_dir (or $IMGCLF_DATA_DIR) at a folder holding it"
        ) from None
    finally:
        Path(tmp).unlink(missing_ok=True)
