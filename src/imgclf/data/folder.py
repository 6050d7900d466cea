"""A user's own images: `root/<split>/<class>/*` or `root/<class>/*`, as a folder or a .tar.gz.

Any image size and mode (grayscale, RGBA, palette) is converted to the configured
channels and resized to a square of the configured side. Archives are read
member by member without extracting them; a member whose path would land
outside the cache folder if extracted (absolute, `..`, links) is refused.
"""
from __future__ import annotations

import os
import posixpath
import tarfile
from pathlib import Path
from typing import Iterator

from ..config.schema import DataConfig
from ..core.errors import DataError
from .cache import cache_key
from .decode import available_memory, decode_to_file, read_cache
from .registry import DATASETS, RawData, cache_root

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


def _entries(root: Path, read: bool = True) -> Iterator[tuple[str, bytes | Path | None]]:
    """Yield (relative posix path, bytes or file path) for every image-like file under root, one at a
    time; an archive's members without their bytes (None) unless `read`."""
    if _is_archive(root):
        try:
            with tarfile.open(root, "r:*") as tf:
                for m in tf:
                    if _safe_member(m, root) and Path(m.name).suffix.lower() in IMAGE_EXTS:
                        yield posixpath.normpath(m.name), (tf.extractfile(m).read() if read else None)  # type: ignore[union-attr]
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"cannot read archive {root} ({e}); it is corrupt or truncated") from None
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            if Path(fn).suffix.lower() in IMAGE_EXTS and not fn.startswith("."):
                full = Path(dirpath) / fn
                yield full.relative_to(root).as_posix(), full


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


def _listing(root: Path) -> tuple[list[tuple], list[str]]:
    """Every image of `root` as (split, class, name, source, where it is, member), and the sorted class
    names; an archive member's source is None: its bytes are streamed when decoded (decode.py)."""
    items = list(_entries(root, read=False))
    if not items:
        raise DataError(f"{root}: no image files found; expected {root}/<class>/*.png or {root}/<split>/<class>/*")
    rels, split_layout = _split_layout([r for r, _ in items])
    out = []
    for rel, (orig, data) in zip(rels, items):
        q = rel.split("/")
        where = f"{root}:{orig}" if data is None else str(data)
        if split_layout:
            out.append((SPLIT_NAMES[q[0].lower()], class_name(q[1]), rel, data, where, orig))
        elif len(q) >= 2:
            out.append(("train", class_name(q[0]), rel, data, where, orig))
        # a stray image directly under the root has no class
    if not any(e[0] == "train" for e in out):
        raise DataError(f"{root}: no training images (need {root}/<class>/* or {root}/train/<class>/*)")
    if root.is_dir():
        _refuse_empty_classes(root / items[0][0][: len(items[0][0]) - len(rels[0])], split_layout,
                              {(e[0], e[1]) for e in out})
    return out, sorted({e[1] for e in out})


def _refuse_empty_classes(base: Path, split_layout: bool, seen: set[tuple[str, str]]) -> None:
    """One line for a class folder under `base` (the root less any wrapping folder) holding no image
    of the listing `seen` ((split, class) pairs): it would vanish from the classes unseen."""
    parents = [(SPLIT_NAMES[d.name.lower()], d) for d in base.iterdir() if d.is_dir() and d.name.lower() in SPLIT_NAMES] \
        if split_layout else [("train", base)]
    for split, parent in parents:
        for d in sorted(parent.iterdir()):
            if d.is_dir() and not d.name.startswith(".") and (split, class_name(d.name)) not in seen:
                raise DataError(f"{d}: a class folder without images ({', '.join(sorted(IMAGE_EXTS))}); add its "
                                f"images or remove the folder")


# From this share of the memory available, a folder's decoded images are read batch by batch from the
# cache file rather than read into memory (data.storage: auto): training gathers batches, and the
# validation and test splits, beside them.
DISK_FROM_SHARE = 0.4


def load_folder(root: Path, channels: int, size: int, on_corrupt: str, storage: str, name: str = "folder") -> RawData:
    """The decoded images of a folder or archive: from the cache, else decoded in parallel into it;
    left on disk (storage disk, or auto and too large for memory) or read into memory."""
    sources = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
    key = cache_key(name, sources, {"channels": channels, "size": size, "on_corrupt": on_corrupt, "layout": "u8"})
    stem = cache_root() / "decoded" / f"{name}-{key}"
    stem.parent.mkdir(parents=True, exist_ok=True)

    def on_disk(n: int) -> bool:
        return storage == "disk" or (storage == "auto" and n * channels * size * size > DISK_FROM_SHARE * available_memory())

    raw = read_cache(stem, on_disk)
    if raw is None:
        entries, classes = _listing(root)
        decode_to_file(entries, classes, channels, size, on_corrupt, stem,
                       stream=(lambda: _entries(root)) if _is_archive(root) else None)
        raw = read_cache(stem, on_disk)
    if raw is None or raw.train_y is None:
        raise DataError(f"{root}: no readable training images (need {root}/<class>/* or {root}/train/<class>/*)")
    return raw


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
    return load_folder(root, channels, size, cfg.on_corrupt, cfg.storage)
