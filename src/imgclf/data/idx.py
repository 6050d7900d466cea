"""MNIST and Fashion-MNIST from their gzip IDX files."""
from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from ..config.schema import DataConfig
from ..core.errors import DataError
from .cache import cached
from .download import download
from .registry import DATASETS, RawData, data_dir_for

FILES = {
    "train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte",
}
SOURCES = {
    "mnist": dict(
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        md5={"train_x": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_y": "d53e105ee54ea40749a09fcbcd1e9432",
             "test_x": "9fb629c4189551a2d022fa330f9573f3", "test_y": "ec29112dd5afa0611ce80d1b7f02629c"},
        classes=[str(i) for i in range(10)],
    ),
    "fashion-mnist": dict(
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        md5={"train_x": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_y": "25c81989df183df01b3e8a0aad5dffbe",
             "test_x": "bef4ecab320f06d8554ea6380940ec79", "test_y": "bb300cfdad3c16e7a12a480ee83cd310"},
        classes=["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
    ),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) of unsigned bytes into an array of its declared shape."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:  # zlib.error: damaged compressed data
        raise DataError(f"cannot read {path} ({e}); the file is corrupt or truncated, re-download it") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path} is not an IDX file (bad magic number); is it the right file?")
    dtype, ndim = data[2], data[3]
    if dtype != 0x08:
        raise DataError(f"{path}: IDX element type 0x{dtype:02x} is not unsigned bytes (0x08)")
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path} is truncated (header cut short); re-download it")
    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {body.size} bytes but its header declares shape {shape}; re-download it")
    return body.reshape(shape)


def _find(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).is_file():
            return root / name
    return None


def _load(name: str, cfg: DataConfig) -> RawData:
    src = SOURCES[name]
    root = data_dir_for(cfg, name)
    found = {key: _find(root, stem) for key, stem in FILES.items()}
    if not any(found.values()) and (root / name).is_dir():  # a folder of data sets, one sub-folder each
        root = root / name
        found = {key: _find(root, stem) for key, stem in FILES.items()}
    present = [p.name for p in found.values() if p is not None]
    paths: dict[str, Path] = {}
    for key, stem in FILES.items():
        p = found[key]
        if p is None and present:  # a partial copy is the user's to complete, not ours to download over
            raise DataError(f"{name}: {stem}.gz not found in {root}, which holds {', '.join(present)}; "
                            "put the missing file there (the four IDX files go together)")
        if p is None:
            if not cfg.download:
                raise DataError(
                    f"{name}: {stem}.gz not found in {root}; set data.data_dir to the folder holding the four "
                    "IDX files, or allow data.download=true when online"
                )
            p = download(src["url"] + stem + ".gz", root / (stem + ".gz"), src["md5"][key])
        paths[key] = p

    def decode() -> RawData:
        arr = {k: read_idx(p) for k, p in paths.items()}
        for split in ("train", "test"):
            x, y = arr[f"{split}_x"], arr[f"{split}_y"]
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise DataError(
                    f"{name}: {paths[split + '_x'].name} (shape {x.shape}) and {paths[split + '_y'].name} "
                    f"(shape {y.shape}) do not match as images and labels"
                )
        n_cls = len(src["classes"])
        if max(arr["train_y"].max(), arr["test_y"].max()) >= n_cls:
            raise DataError(f"{name}: labels outside 0..{n_cls - 1}; is it the right file?")

        def t(a):
            return torch.from_numpy(np.array(a, copy=True, order="C"))  # writable, C-ordered

        return RawData(
            t(arr["train_x"][:, None]), t(arr["train_y"].astype(np.int64)),
            t(arr["test_x"][:, None]), t(arr["test_y"].astype(np.int64)), list(src["classes"]),
        )

    return cached(name, list(paths.values()), {}, decode)


@DATASETS.register("mnist", shape=(1, 28, 28), classes=10, train_images=60_000)
def mnist(cfg: DataConfig) -> RawData:
    """MNIST: 60,000 train / 10,000 test grayscale 28x28 digits."""
    return _load("mnist", cfg)


@DATASETS.register("fashion-mnist", shape=(1, 28, 28), classes=10, train_images=60_000)
def fashion_mnist(cfg: DataConfig) -> RawData:
    """Fashion-MNIST: 60,000 train / 10,000 test grayscale 28x28 clothing images, 10 classes."""
    return _load("fashion-mnist", cfg)
