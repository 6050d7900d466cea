"""Decoding an image folder in parallel processes into one uint8 file, the folder's cache.

The images are listed, grouped by split (train, val, test: each split a contiguous range of
rows), and dealt to worker processes in chunks; each worker decodes its chunk and writes its rows
into the file, so no decoded image crosses a process boundary and the parent never holds them
all. The file and its labels become the cache only once complete (renamed into place), so a
killed decode leaves nothing half-written behind. A data set that fits in memory is then read
whole into a tensor; one that does not is read batch by batch from the file (data/on_disk.py).
"""
from __future__ import annotations

import io
import multiprocessing
import os
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from ..core.atomic import atomic_torch_save
from ..core.errors import DataError
from .on_disk import DiskImages, allocate
from .registry import SPLITS, RawData

CHUNK = 256  # images a worker decodes per task: large enough to hide the task's overhead
PARALLEL_FROM = 1024  # fewer images decode faster in this process than a pool starts


def decode_image(data: bytes | Path, channels: int, size: int) -> np.ndarray:
    """Decode one image to uint8 (channels, size, size); raises OSError/ValueError when unreadable."""
    from PIL import Image

    with Image.open(io.BytesIO(data) if isinstance(data, bytes) else data) as im:
        im.load()
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA"):
            # Composite transparent pixels on white, as an image viewer shows them.
            im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
        elif im.mode in ("I", "I;16", "F"):
            # 16-bit or float images: stretch their range to 0..255.
            arr = np.asarray(im, dtype=np.float64)
            span = max(float(arr.max() - arr.min()), 1e-12)
            im = Image.fromarray(((arr - arr.min()) * (255.0 / span)).astype(np.uint8))
        im = im.convert("L" if channels == 1 else "RGB")
        if im.size != (size, size):
            im = im.resize((size, size), Image.BILINEAR)
        arr = np.asarray(im, dtype=np.uint8)
    return np.ascontiguousarray(arr[None] if channels == 1 else arr.transpose(2, 0, 1))


def _decode_chunk(task) -> list[tuple[int, str]]:
    """Decode a chunk of (row, source) pairs into their rows of the file; the (row, why) of the unreadable."""
    path, shape, items = task
    channels, size, row_bytes = shape[1], shape[2], int(np.prod(shape[1:]))
    bad = []
    fd = os.open(path, os.O_WRONLY)
    try:
        for row, data in items:
            try:
                arr = decode_image(data, channels, size)
            except Exception as e:  # PIL raises many classes for bad files; all mean "unreadable"
                bad.append((row, type(e).__name__))
                continue
            os.pwrite(fd, arr.tobytes(), row * row_bytes)
    finally:
        os.close(fd)
    return bad


def workers() -> int:
    """Decoding processes: the cores this process may use, at most 8."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def decode_to_file(entries: list[tuple], classes: list[str], channels: int, size: int, on_corrupt: str,
                   stem: Path, stream: Optional[Callable[[], Iterator[tuple[str, bytes]]]] = None,
                   progress: bool = True) -> None:
    """Decode (split, class, name, source, where, member) entries into `stem`.u8 and their labels into
    `stem`.pt. An archive's entries have no source: `stream` yields its (member, bytes) once, in archive
    order, and at most a few chunks of them are held at a time."""
    order = sorted(range(len(entries)), key=lambda i: SPLITS.index(entries[i][0]))
    entries = [entries[i] for i in order]
    shape = (len(entries), channels, size, size)
    tmp = stem.with_name(stem.name + f".{os.getpid()}.tmp")
    allocate(tmp, shape)

    def tasks() -> Iterator[tuple]:
        if stream is None:
            for a in range(0, len(entries), CHUNK):
                yield tmp, shape, [(a + k, e[3]) for k, e in enumerate(entries[a : a + CHUNK])]
            return
        row_of = {e[5]: r for r, e in enumerate(entries)}
        chunk = []
        for member, data in stream():
            if member in row_of:
                chunk.append((row_of[member], data))
            if len(chunk) == CHUNK:
                yield tmp, shape, chunk
                chunk = []
        if chunk:
            yield tmp, shape, chunk

    bad: list[tuple[int, str]] = []
    bar = None
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(entries), desc="decoding", unit="img", file=sys.stderr, leave=False)
    try:
        n = workers() if len(entries) >= PARALLEL_FROM else 1
        if n > 1:
            # fork: the workers start with this process's modules, without importing imgclf again
            ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
            with ProcessPoolExecutor(n, mp_context=ctx) as pool:
                pending: deque = deque()
                for t in tasks():  # at most 2 chunks a worker in flight: an archive is never held whole
                    pending.append((len(t[2]), pool.submit(_decode_chunk, t)))
                    while len(pending) > 2 * n:
                        k, fut = pending.popleft()
                        bad += fut.result()
                        bar and bar.update(k)
                for k, fut in pending:
                    bad += fut.result()
                    bar and bar.update(k)
        else:
            for t in tasks():
                bad += _decode_chunk(t)
                bar and bar.update(len(t[2]))
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        bar and bar.close()
    if bad and on_corrupt != "skip":
        tmp.unlink(missing_ok=True)
        row, why = min(bad)
        raise DataError(f"cannot decode image {entries[row][4]} ({why}); remove it, or set data.on_corrupt=skip")
    if bad:
        print(f"imgclf: skipped {len(bad)} unreadable image(s), the first {entries[min(bad)[0]][4]}", file=sys.stderr)
    dropped = {r for r, _ in bad}
    index = {c: i for i, c in enumerate(classes)}
    meta = {"shape": list(shape), "classes": classes, "rows": {}, "labels": {}, "ids": {}}
    for s in SPLITS:
        rows = [i for i, e in enumerate(entries) if e[0] == s and i not in dropped]
        if rows:
            meta["rows"][s] = torch.tensor(rows, dtype=torch.int64)
            meta["labels"][s] = torch.tensor([index[entries[i][1]] for i in rows], dtype=torch.int64)
            meta["ids"][s] = [entries[i][2] for i in rows]
    os.replace(tmp, stem.with_suffix(".u8"))
    atomic_torch_save(meta, stem.with_suffix(".pt"))  # written last: its presence says the cache is whole


def read_cache(stem: Path, on_disk: Callable[[int], bool]) -> Optional[RawData]:
    """The decoded folder at `stem` (None if not cached): left on disk where `on_disk(images)` says so,
    else read whole into memory."""
    meta_path, data_path = stem.with_suffix(".pt"), stem.with_suffix(".u8")
    if not (meta_path.exists() and data_path.exists()):
        return None
    try:
        meta = torch.load(meta_path, weights_only=True)
        shape = tuple(meta["shape"])
        if data_path.stat().st_size != int(np.prod(shape)):
            raise ValueError("size")
    except Exception:
        meta_path.unlink(missing_ok=True)  # a damaged cache is rebuilt, never trusted
        return None
    if on_disk(shape[0]):
        whole = DiskImages(data_path, shape)
        xs = {s: whole.take(r.numpy()) for s, r in meta["rows"].items()}
    else:
        t = torch.from_numpy(np.fromfile(data_path, dtype=np.uint8).reshape(shape))  # one read, no copy

        def part(r: torch.Tensor) -> torch.Tensor:  # a split's rows: a view when they are contiguous
            return t[int(r[0]) : int(r[-1]) + 1] if int(r[-1]) - int(r[0]) + 1 == len(r) else t[r]

        xs = {s: part(r) for s, r in meta["rows"].items()}
    ys = meta["labels"]
    return RawData(xs.get("train"), ys.get("train"), xs.get("test"), ys.get("test"), list(meta["classes"]),
                   xs.get("val"), ys.get("val"), dict(meta["ids"]))


def available_memory() -> int:
    """Bytes of memory available to new allocations (MemAvailable on Linux; physical memory elsewhere)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 34
