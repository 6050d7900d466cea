"""Decoded data sets cached on disk as uint8 tensors, keyed by their source files.

A key changes when a source file's path, size or modification time changes,
or when a decoding option changes; the cache file is written atomically so a
killed decode never leaves a half-written cache behind.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch

from ..core.atomic import atomic_torch_save
from .registry import RawData, cache_root

FORMAT_VERSION = 3  # bump when the decoded layout changes (3: the images' names)


def cache_key(name: str, sources: list[Path], options: dict) -> str:
    """A short hash of the data set name, its source files' identity and decoding options."""
    h = hashlib.sha256()
    h.update(json.dumps({"v": FORMAT_VERSION, "name": name, "opt": options}, sort_keys=True).encode())
    for p in sorted(sources):
        st = p.stat()
        # the path's own bytes: a name that is not UTF-8 is still a valid key
        h.update(os.fsencode(p.resolve()) + f"|{st.st_size}|{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def cached(name: str, sources: list[Path], options: dict, decode: Callable[[], RawData]) -> RawData:
    """Return the decoded data set from the cache, decoding and caching it on a miss."""
    path = cache_root() / "decoded" / f"{name}-{cache_key(name, sources, options)}.pt"
    if path.exists():
        try:
            d = torch.load(path, weights_only=True)
            return RawData(d["train_x"], d["train_y"], d.get("test_x"), d.get("test_y"), list(d["classes"]),
                           d.get("val_x"), d.get("val_y"), d.get("ids"))
        except Exception:
            path.unlink(missing_ok=True)  # a corrupt cache is rebuilt, never trusted
    raw = decode()
    d = {"train_x": raw.train_x, "train_y": raw.train_y, "classes": raw.classes}
    if raw.test_x is not None:
        d.update(test_x=raw.test_x, test_y=raw.test_y)
    if raw.val_x is not None:
        d.update(val_x=raw.val_x, val_y=raw.val_y)
    if raw.ids is not None:
        d["ids"] = raw.ids
    try:
        atomic_torch_save(d, path)
    except OSError:
        pass  # a read-only or full cache folder only costs a re-decode next time
    return raw
