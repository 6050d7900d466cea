"""Decoded images read from their cache file batch by batch, for folders larger than memory.

`DiskImages` stands where a uint8 (N, C, H, W) tensor stands in a split: `len`, `shape`, `dtype`,
and indexing, which reads the rows asked for and returns them as an ordinary tensor. Carving
splits and folds takes rows lazily (`take`), so no split is ever read whole.

The rows are read with positioned reads (pread), one per run of consecutive rows, through the
page cache, which the kernel keeps, shares and evicts outside the process. A memory map was
tried first: on this machine's kernel (Linux 6, large page-cache folios) reading 512 random rows
(14 MB) of a 221-MB mapped file raised the process's resident set by 200 MB, so a run's memory
grew with the data set even with the pages released after every read.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
import torch


class DiskImages:
    """uint8 images (N, C, H, W) in the rows `index` of a file of shape (total, C, H, W)."""

    def __init__(self, path: Path, shape: tuple[int, int, int, int], index: Optional[np.ndarray] = None,
                 _file: Optional[_File] = None):
        self.path = Path(path)
        self.file_shape = tuple(shape)
        self.index = np.arange(shape[0], dtype=np.int64) if index is None else np.asarray(index, dtype=np.int64)
        self._file = _file or _File(self.path, self.file_shape)

    # -- what a uint8 image tensor answers ------------------------------------------------------
    dtype = torch.uint8
    ndim = 4
    device = torch.device("cpu")

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.index), *self.file_shape[1:]))

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key) -> torch.Tensor:
        """The rows `key` (an int, a slice, an index or mask tensor or array) as an in-memory tensor."""
        if isinstance(key, torch.Tensor):
            key = key.cpu().numpy()
        rows = self.index[key]
        return self._file.read(np.atleast_1d(rows)).squeeze(0) if np.ndim(rows) == 0 else self._file.read(rows)

    def to(self, device, non_blocking: bool = False):
        """Itself on the CPU (rows are read as batches ask); on another device, every row copied there."""
        device = torch.device(device)
        if device.type == "cpu":
            return self
        return torch.cat([self[i : i + 4096].to(device) for i in range(0, len(self), 4096)])

    def take(self, rows) -> "DiskImages":
        """The images `rows` (indices or a mask), lazily: nothing is read."""
        if isinstance(rows, torch.Tensor):
            rows = rows.cpu().numpy()
        return DiskImages(self.path, self.file_shape, self.index[rows], self._file)

    def concat(self, other: "DiskImages") -> "DiskImages":
        """These images then `other`'s, from the same file, lazily."""
        if other.path != self.path:
            raise ValueError("images of two cache files cannot be joined lazily")
        return DiskImages(self.path, self.file_shape, np.concatenate([self.index, other.index]), self._file)


class _File:
    """The open cache file, shared by every view of it; reopened in a process it is copied into."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path, self.shape = Path(path), tuple(shape)
        self.row = int(np.prod(shape[1:]))
        self.fd = os.open(self.path, os.O_RDONLY)

    def read(self, rows: np.ndarray) -> torch.Tensor:
        out = np.empty((len(rows), *self.shape[1:]), dtype=np.uint8)
        if not len(rows):
            return torch.from_numpy(out)
        order = np.argsort(rows, kind="stable")  # read in file order, then put back in the asked order
        sorted_rows = rows[order]
        in_order = bool((np.diff(rows) >= 0).all())  # a slice or a sorted gather: read straight into `out`
        buf = out if in_order else np.empty_like(out)
        flat = buf.reshape(len(rows), self.row)
        # runs of consecutive rows: one read each (a slice of the split is one read)
        breaks = np.flatnonzero(np.diff(sorted_rows) != 1) + 1
        for seg in np.split(np.arange(len(rows)), breaks):
            first, n = int(sorted_rows[seg[0]]), len(seg)
            view = memoryview(flat[seg[0] : seg[0] + n]).cast("B")
            done, offset = 0, first * self.row
            while done < len(view):  # a read returns at most about 2 GiB on Linux: read on until it is all in
                part = view[done : done + (1 << 30)]
                got = os.preadv(self.fd, [part], offset + done) if hasattr(os, "preadv") else _pread_into(
                    self.fd, part, offset + done)
                if got <= 0:
                    raise OSError(f"{self.path}: short read ({done} of {len(view)} bytes); the cache file is damaged")
                done += got
        if not in_order:
            out[order] = buf
        return torch.from_numpy(out)

    def __reduce__(self):  # copied or sent to another process: that one opens the file itself
        return (_File, (self.path, self.shape))

    def __del__(self):
        try:
            os.close(self.fd)
        except (OSError, AttributeError, TypeError):
            pass


def _pread_into(fd: int, view: memoryview, offset: int) -> int:
    """os.preadv where the platform lacks it."""
    data = os.pread(fd, len(view), offset)
    view[: len(data)] = data
    return len(data)


def rows(x, idx):
    """x's rows `idx` as the same kind of object: a tensor's gathered, images on disk taken lazily."""
    return x.take(idx) if isinstance(x, DiskImages) else x[idx]


def concat(a, b):
    """a's images then b's, lazily when both are on disk in one file."""
    if isinstance(a, DiskImages) and isinstance(b, DiskImages):
        return a.concat(b)
    return torch.cat([a[:] if isinstance(a, DiskImages) else a, b[:] if isinstance(b, DiskImages) else b])


def allocate(path: Path, shape: tuple[int, ...]) -> None:
    """Create the file of a (N, C, H, W) uint8 array, sized, unwritten (sparse where the file system allows)."""
    with open(path, "wb") as f:
        f.truncate(int(np.prod(shape)))
