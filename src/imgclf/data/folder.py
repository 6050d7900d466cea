"""A user's own images: `root/<split>/<class>/*` or `root/<class>/*`, as a folder or a .tar.gz.

Any image size and mode (grayscale, RGBA, palette) is converted to the configured
channels and resized to a square of the configured side. Archives are read
member by member without extracting them; a member whose path would land
outside the cache folder if extracted (absolute, `..`, links) is refused.
"""
from __future__ import annotations

import io
import os
import posixpath
import sys
import tarfile
from collections import defaultdict
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from ..config.schema import DataConfig
from ..core.errors import DataError
from .cache import cached
from .registry import DATASETS, RawData

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm"}
SPLIT_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test", "testing": "test"}


def _is_archive(p: Path) -> bool:
    return p.is_file() and any(p.name.endswith(s) for s in (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz"))


def _safe_member(m: tarfile.TarInfo, archive: Path) -> bool:
    """True for a regular file member whose extracted path stays inside the target folder."""
    name = m.name
    norm = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or norm == ".." or norm.startswith("../") or ":" in name.split("/")[0]:
        raise DataError(
            f"{archive}: member {name!r} would land outside the cache folder; refusing this archive "
            "(rebuild it with relative paths)"
        )
    if m.issym() or m.islnk():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(norm), m.linkname))
        if m.linkname.startswith("/") or target == ".." or target.startswith("../"):
            raise DataError(
                f"{archive}: link {name!r} -> {m.linkname!r} points outside the cache folder; refusing this archive"
            )
        return False
    return m.isfile()


def _entries(root: Path) -> Iterator[tuple[str, bytes | Path]]:
    """Yield (relative posix path, bytes or file path) for every image-like file under root."""
    if _is_archive(root):
        try:
            with tarfile.open(root, "r:*") as tf:
                for m in tf:
                    if _safe_member(m, root) and Path(m.name).suffix.lower() in IMAGE_EXTS:
                        yield posixpath.normpath(m.name), tf.extractfile(m).read()  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"cannot read archive {root} ({e}); it is corrupt or truncated") from None
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if Path(fn).suffix.lower() in IMAGE_EXTS and not fn.startswith("."):
                full = Path(dirpath) / fn
                yield full.relative_to(root).as_posix(), full


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


def class_name(folder: str) -> str:
    """A class name from a folder name, as valid text: bytes that are not UTF-8 (which the file
    system hands over as surrogates) are shown as \\xNN escapes, unique and printable everywhere
    (reports, figures, JSON, exported metadata); HTML escaping is the report's job."""
    return folder.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _split_layout(paths: list[str]) -> tuple[list[str], bool]:
    """Strip one wrapping folder if every path shares it; tell whether the top level names splits."""
    parts = [p.split("/") for p in paths]
    while parts and all(len(q) > 2 for q in parts) and len({q[0] for q in parts}) == 1 \
            and parts[0][0].lower() not in SPLIT_NAMES:
        parts = [q[1:] for q in parts]
    tops = {q[0].lower() for q in parts}
    split_layout = bool(tops) and tops <= set(SPLIT_NAMES) and all(len(q) >= 3 for q in parts)
    return ["/".join(q) for q in parts], split_layout


def _decode_all(root: Path, channels: int, size: int, on_corrupt: str) -> RawData:
    items = list(_entries(root))
    if not items:
        raise DataError(f"{root}: no image files found; expected {root}/<class>/*.png or {root}/<split>/<class>/*")
    rels, split_layout = _split_layout([r for r, _ in items])
    groups: dict[str, list[tuple[str, np.ndarray, str]]] = defaultdict(list)
    skipped = 0
    for rel, (orig, data) in zip(rels, items):
        q = rel.split("/")
        if split_layout:
            split, cls = SPLIT_NAMES[q[0].lower()], class_name(q[1])
        elif len(q) >= 2:
            split, cls = "train", class_name(q[0])
        else:
            continue  # a stray image directly under the root has no class
        try:
            arr = decode_image(data, channels, size)
        except Exception as e:  # PIL raises many classes for bad files; all mean "unreadable"
            where = f"{root}:{orig}" if isinstance(data, bytes) else str(data)
            if on_corrupt == "skip":
                skipped += 1
                continue
            raise DataError(
                f"cannot decode image {where} ({type(e).__name__}); remove it, or set data.on_corrupt=skip"
            ) from None
        groups[split].append((cls, arr, rel))
    if skipped:
        print(f"imgclf: skipped {skipped} unreadable image(s) in {root}", file=sys.stderr)
    if not groups.get("train"):
        raise DataError(f"{root}: no readable training images (need {root}/<class>/* or {root}/train/<class>/*)")
    classes = sorted({c for g in groups.values() for c, _, _ in g})
    index = {c: i for i, c in enumerate(classes)}

    def stack(split: str):
        g = groups.get(split)
        if not g:
            return None, None
        return (torch.from_numpy(np.stack([a for _, a, _ in g])),
                torch.tensor([index[c] for c, _, _ in g], dtype=torch.int64))

    (tx, ty), (vx, vy), (sx, sy) = stack("train"), stack("val"), stack("test")
    ids = {split: [r for _, _, r in g] for split, g in groups.items() if g}
    return RawData(tx, ty, sx, sy, classes, vx, vy, ids)


def folder_shape(cfg: DataConfig) -> tuple[int, int, int]:
    """The shape a folder decodes to, known from the config alone (data.channels, data.image_size)."""
    return (cfg.channels or 3, cfg.image_size or 32, cfg.image_size or 32)


# the class count is known only once the folder is listed
@DATASETS.register("folder", shape=folder_shape, classes=None, train_images=None)
def folder(cfg: DataConfig) -> RawData:
    """Images from data.path (folder or .tar.gz), resized to data.image_size, data.channels channels."""
    root = Path(cfg.path).expanduser()
    if not root.exists():
        raise DataError(f"data.path {root} does not exist; point it at an image folder or a .tar.gz")
    if not root.is_dir() and not _is_archive(root):
        raise DataError(f"data.path {root} is neither a folder nor a .tar.gz/.tgz/.tar archive")
    channels, size, _ = folder_shape(cfg)
    sources = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    opts = {"channels": channels, "size": size, "on_corrupt": cfg.on_corrupt}
    return cached("folder", sources, opts, lambda: _decode_all(root, channels, size, cfg.on_corrupt))
