"""Fetch the standard files of a data set for users who are online."""
from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from ..core.atomic import atomic_write
from ..core.errors import DataError


def download(url: str, dest: Path, expected_md5: str | None = None, timeout_s: float = 30.0) -> Path:
    """Download `url` to `dest` atomically, checking its md5 when one is given."""
    def fetch(out) -> None:
        h = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                out.write(chunk)
                h.update(chunk)
        if expected_md5 and h.hexdigest() != expected_md5:
            raise DataError(f"downloaded {url} but its md5 does not match; try again or download it by hand to {dest}")

    try:
        atomic_write(dest, fetch, binary=True)
    except DataError:
        raise
    except Exception as e:  # network errors come in many classes; all mean "not fetched"
        raise DataError(
            f"could not download {url} ({type(e).__name__}: {e}); when offline, put the file in {dest.parent} "
            "or point data.data_dir (or $IMGCLF_DATA_DIR) at a folder holding it"
        ) from None
    return dest
