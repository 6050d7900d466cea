"""Exact and near-duplicate images, on whole uint8 tensors.

Exact duplicates have equal decoded pixels. Near-duplicates have similar signatures: the 8x8
lowest frequencies of the 32x32 gray image's DCT (pHash's coefficients), less the mean (DC), as a
unit vector, so that brightness and contrast do not count. pHash keeps only their signs against
the median, and on small images a JPEG re-encoding flipped 10 of its 64 bits (quality 60, 32 px);
the vectors' cosine similarity stayed above 0.999 for such copies, and for a copy 12 levels
brighter, while 44,850 pairs of unrelated smooth pictures stayed under 0.84. The similarity of all
pairs is one matrix product, in row chunks.
"""
from __future__ import annotations

import math

import torch
from torch.nn import functional as F

HASH_SIDE, HASH_BITS = 32, 8  # the DCT runs on 32x32 gray images and keeps 8x8 of it, as imagehash's phash
DEFAULT_THRESHOLD = 0.98  # cosine similarity of two signatures


def _dct_matrix(n: int) -> torch.Tensor:
    """The orthonormal DCT-II matrix (n x n): row k is the k-th cosine."""
    k = torch.arange(n, dtype=torch.float64)[:, None]
    i = torch.arange(n, dtype=torch.float64)[None, :]
    m = torch.cos(math.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2.0 / n)
    m[0] /= math.sqrt(2.0)
    return m.float()


def signature(x: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Unit (N, 63) vectors of uint8 images (N, C, H, W): their lowest DCT frequencies but the mean."""
    d = _dct_matrix(HASH_SIDE)[:HASH_BITS]  # the 8 lowest frequencies
    out = []
    for i in range(0, len(x), chunk):
        b = x[i : i + chunk].float()
        if b.shape[1] == 3:  # ITU-R 601 luma, as PIL's convert("L")
            b = (b * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        b = F.interpolate(b, size=(HASH_SIDE, HASH_SIDE), mode="bilinear", antialias=True, align_corners=False)
        c = (d @ b[:, 0] @ d.T).flatten(1)[:, 1:]  # (n, 63): the 8x8 lowest frequencies less the DC term
        out.append(F.normalize(c, dim=1))  # a flat image has no direction: its zero vector matches nothing
    return torch.cat(out) if out else torch.zeros(0, HASH_BITS * HASH_BITS - 1)


def exact_groups(x: torch.Tensor) -> list[list[int]]:
    """Groups (two or more) of indices whose images are pixel for pixel equal."""
    g = torch.Generator().manual_seed(0)
    # two random 64-bit linear hashes (wrapping): equal images always collide, others almost never;
    # every candidate group is then checked pixel for pixel. In chunks: x may be images on disk.
    w = torch.randint(-(2**62), 2**62, (2, math.prod(x.shape[1:])), generator=g)
    keys = torch.zeros(0, 2, dtype=torch.long)
    if len(x):
        keys = torch.cat([torch.stack([(b.long() * w[0]).sum(1), (b.long() * w[1]).sum(1)], 1)
                          for b in (x[i : i + 2048].reshape(-1, w.shape[1]) for i in range(0, len(x), 2048))])
    _, inverse, counts = torch.unique(keys, dim=0, return_inverse=True, return_counts=True)
    by_key = torch.argsort(inverse, stable=True)  # the indices of key 0, then of key 1, ...
    starts = torch.cumsum(counts, 0) - counts
    groups = []
    for key in torch.nonzero(counts > 1).flatten().tolist():
        members = by_key[starts[key] : starts[key] + counts[key]].tolist()
        first = x[members[0]]
        same = [m for m in members if torch.equal(x[m], first)]
        if len(same) > 1:
            groups.append(same)
    return groups


def near_pairs(sig: torch.Tensor, threshold: float = DEFAULT_THRESHOLD,
               chunk: int = 1024) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair i < j whose signatures' cosine similarity is `threshold` or more."""
    out = []
    for a in range(0, len(sig), chunk):
        sim = sig[a : a + chunk] @ sig[a:].T  # each pair once: rows a.. against columns a..
        i, j = torch.nonzero(sim >= threshold, as_tuple=True)
        keep = j > i  # the block starts at column a: drop the diagonal and the pairs below it
        for ii, jj in zip(i[keep].tolist(), j[keep].tolist()):
            out.append((a + ii, a + jj, round(float(sim[ii, jj]), 4)))
    return out
