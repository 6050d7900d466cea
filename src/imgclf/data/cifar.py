"""CIFAR-10 and CIFAR-100 from the official python-pickle batches (folder or .tar.gz)."""
from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import torch

from ..config.schema import DataConfig
from ..core.errors import DataError
from .cache import cached
from .download import download
from .registry import DATASETS, RawData, data_dir_for

URL = "https://www.cs.toronto.edu/~kriz/"
SPECS = {
    "cifar10": dict(
        archive="cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a", folder="cifar-10-batches-py",
        train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"], meta="batches.meta",
        label_key="labels", names_key="label_names", jpg=["cifar10-jpg.tar.gz", "cifar10-jpg"],
    ),
    "cifar100": dict(
        archive="cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85", folder="cifar-100-python",
        train=["train"], test=["test"], meta="meta", label_key="fine_labels", names_key="fine_label_names",
        jpg=["cifar100-jpg.tar.gz", "cifar100-jpg"],
    ),
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickle only the plain containers and numpy arrays the official batches hold."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("builtins", "list"), ("builtins", "dict"),
        ("_codecs", "encode"), ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(data: bytes, where: str) -> dict:
    try:
        d = _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as e:
        raise DataError(f"{where} is not a valid CIFAR pickle batch ({e}); re-download it") from None
    if not isinstance(d, dict):
        raise DataError(f"{where} is not a valid CIFAR pickle batch; re-download it")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in d.items()}


def _find_source(name: str, cfg: DataConfig) -> Path:
    spec = SPECS[name]
    root = data_dir_for(cfg, name)
    for cand in (root / spec["folder"], root, root / spec["archive"]):
        if cand.is_dir() and (cand / spec["meta"]).exists():
            return cand
        if cand.is_file():
            return cand
    for jpg in spec["jpg"]:  # an image-folder copy (train/<class>/*.jpg, test/<class>/*.jpg)
        if (root / jpg).exists():
            return root / jpg
    if cfg.download:
        return download(URL + spec["archive"], root / spec["archive"], spec["md5"])
    raise DataError(
        f"{name} files not found in {root}: put {spec['archive']} (or its {spec['folder']}/ folder) there, "
        "or set data.data_dir, or allow data.download=true when online"
    )


def _read_members(source: Path, names: list[str]) -> dict[str, bytes]:
    """Read the named batch files from a folder or from a .tar.gz, without extracting it."""
    out: dict[str, bytes] = {}
    try:
        if source.is_dir():
            for n in names:
                out[n] = (source / n).read_bytes()
            return out
        with tarfile.open(source, "r:*") as tf:
            for m in tf:
                base = m.name.rsplit("/", 1)[-1]
                if m.isfile() and base in names and base not in out:
                    out[base] = tf.extractfile(m).read()  # type: ignore[union-attr]
    except FileNotFoundError as e:
        raise DataError(f"missing CIFAR file {e.filename}; re-download the data set") from None
    except (tarfile.TarError, OSError, EOFError) as e:
        raise DataError(f"cannot read {source} ({e}); the archive is corrupt, re-download it") from None
    missing = [n for n in names if n not in out]
    if missing:
        raise DataError(f"{source} lacks {', '.join(missing)}; is it the right CIFAR archive?")
    return out


def _stack(batches: list[dict], label_key: str, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        x = np.concatenate([np.asarray(b["data"], dtype=np.uint8) for b in batches])
        y = np.concatenate([np.asarray(b[label_key], dtype=np.int64) for b in batches])
        x = x.reshape(-1, 3, 32, 32)
    except (KeyError, ValueError) as e:
        raise DataError(f"{where}: unexpected CIFAR batch contents ({e}); re-download the data set") from None
    if len(x) != len(y):
        raise DataError(f"{where}: {len(x)} images but {len(y)} labels; re-download the data set")
    return torch.from_numpy(x.copy()), torch.from_numpy(y)


def _load(name: str, cfg: DataConfig) -> RawData:
    spec = SPECS[name]
    source = _find_source(name, cfg)
    if source.name in spec["jpg"]:
        # Folder names sort alphabetically, which is also the official label order of both sets.
        from .folder import load_folder

        return load_folder(source, 3, 32, "error", cfg.storage, name)
    files = [source] if source.is_file() else [source / n for n in spec["train"] + spec["test"] + [spec["meta"]]]

    def decode() -> RawData:
        blobs = _read_members(source, spec["train"] + spec["test"] + [spec["meta"]])
        train = [_unpickle(blobs[n], f"{source}:{n}") for n in spec["train"]]
        test = [_unpickle(blobs[n], f"{source}:{n}") for n in spec["test"]]
        meta = _unpickle(blobs[spec["meta"]], f"{source}:{spec['meta']}")
        tx, ty = _stack(train, spec["label_key"], str(source))
        sx, sy = _stack(test, spec["label_key"], str(source))
        names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta.get(spec["names_key"], [])]
        if len(names) != DATASETS.attr(name, "classes"):  # a meta file without names: the labels' numbers
            names = [str(i) for i in range(DATASETS.attr(name, "classes"))]
        return RawData(tx, ty, sx, sy, names)

    return cached(name, [f for f in files if f.exists()], {}, decode)


@DATASETS.register("cifar10", shape=(3, 32, 32), classes=10, train_images=50_000)
def cifar10(cfg: DataConfig) -> RawData:
    """CIFAR-10: 50,000 train / 10,000 test RGB 32x32 images, 10 classes."""
    return _load("cifar10", cfg)


@DATASETS.register("cifar100", shape=(3, 32, 32), classes=100, train_images=50_000)
def cifar100(cfg: DataConfig) -> RawData:
    """CIFAR-100: 50,000 train / 10,000 test RGB 32x32 images, 100 fine classes."""
    return _load("cifar100", cfg)
