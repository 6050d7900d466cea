"""What the files of an image folder (or .tar.gz) are before decoding: size, mode, readability."""
from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..data.folder import _entries, _split_layout


@dataclass
class FileScan:
    """Each file's name (as the decoded set names it), size and mode; the unreadable ones apart."""

    sizes: Counter = field(default_factory=Counter)  # (width, height) -> files
    modes: Counter = field(default_factory=Counter)  # PIL mode -> files
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (name, why)
    small: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (width, height), under the side
    files: int = 0


def scan_folder(root: Path, side: int) -> FileScan:
    """Open every image of `root` fully (a truncated file fails here as it would in training) and
    record its size and mode; images whose shorter side is under `side` are listed as too small."""
    from PIL import Image

    listed = [r for r, _ in _entries(root, read=False)]  # names first: an archive is then read once, streamed
    names, _ = _split_layout(listed)
    out = FileScan(files=len(listed))
    for name, (_, data) in zip(names, _entries(root)):
        try:
            with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
                im.load()
                w, h, mode = im.width, im.height, im.mode
        except Exception as e:  # PIL raises many classes for bad files; all mean "unreadable"
            out.unreadable.append((name, f"{type(e).__name__}: {e}"[:160]))
            continue
        out.sizes[(w, h)] += 1
        out.modes[mode] += 1
        if min(w, h) < side:
            out.small[name] = (w, h)
    return out
