"""Shared fixtures: an isolated cache and runs folder, and writers of tiny data sets in official formats."""
from __future__ import annotations

import glob
import gzip
import io
import os
import pickle
import shutil
import socket
import struct
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

# The suite checks CPU semantics (exact resumes, equal runs): a GPU, when the machine has one, is
# hidden from it before torch loads, and tests/runtime/test_device.py trains on it in a process of
# its own. IMGCLF_TEST_THREADS sets the torch threads of the suite and of the processes it starts
# (default 2: more threads on tiny batches cost more than they give; 1 under pytest-xdist, whose
# workers already take one core each).
os.environ["IMGCLF_TEST_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "*all*")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
THREADS = int(os.environ.get("IMGCLF_TEST_THREADS", "1" if "PYTEST_XDIST_WORKER" in os.environ else "2"))
os.environ["OMP_NUM_THREADS"] = str(THREADS)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(THREADS)
EPS32 = float(torch.finfo(torch.float32).eps)  # 1.19e-7


def f32_rtol(steps: int, terms: int) -> float:
    """Relative tolerance between two float32 computations that differ only in summation order.

    A sum of `terms` float32 numbers is exact to within terms x eps of its magnitude in any order
    (Higham's worst-case bound), and a training run compounds one such sum per step: `steps` x
    `terms` x eps. How many threads split a reduction changes its order, never this bound."""
    return steps * terms * EPS32


@pytest.fixture(autouse=True)
def seeded():
    """Every test starts from the same global random state, so an unseeded torch.randint or
    numpy draw in a test gives the same numbers on every run of the suite (a fresh clone's run
    once failed on a tie that only some random inputs produce)."""
    import random

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own cache and runs folder, and no data-dir default from the environment."""
    monkeypatch.setenv("IMGCLF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("IMGCLF_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("IMGCLF_SWEEPS", str(tmp_path / "sweeps"))
    monkeypatch.setenv("IMGCLF_INSPECT", str(tmp_path / "inspect"))
    monkeypatch.delenv("IMGCLF_DATA_DIR", raising=False)
    return tmp_path


def write_idx(path: Path, arr: np.ndarray, compress: bool = True) -> Path:
    """Write a uint8 array in IDX format (gzip when `compress`)."""
    head = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def make_idx_dir(root: Path, n_train: int = 60, n_test: int = 20, compress: bool = True, seed: int = 0) -> Path:
    """A folder with the four MNIST-named IDX files of random 28x28 images."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    sfx = ".gz" if compress else ""
    write_idx(root / f"train-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_train, 28, 28)), compress)
    write_idx(root / f"train-labels-idx1-ubyte{sfx}", np.arange(n_train) % 10, compress)
    write_idx(root / f"t10k-images-idx3-ubyte{sfx}", rng.integers(0, 256, (n_test, 28, 28)), compress)
    write_idx(root / f"t10k-labels-idx1-ubyte{sfx}", np.arange(n_test) % 10, compress)
    return root


def make_cifar(root: Path, kind: str = "cifar10", per_batch: int = 8, archive: bool = False) -> Path:
    """The official python-pickle layout (protocol 2, bytes keys), as a folder or a .tar.gz."""
    rng = np.random.default_rng(1)
    if kind == "cifar10":
        folder, names, label_key, meta_name, names_key = (
            "cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"], b"labels",
            "batches.meta", b"label_names")
        n_cls = 10
    else:
        folder, names, label_key, meta_name, names_key = (
            "cifar-100-python", ["train", "test"], b"fine_labels", "meta", b"fine_label_names")
        n_cls = 100
    files = {}
    for n in names:
        labels = list(rng.integers(0, n_cls, per_batch))
        files[n] = pickle.dumps({b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                                 label_key: labels}, protocol=2)
    files[meta_name] = pickle.dumps({names_key: [f"class{i}".encode() for i in range(n_cls)]}, protocol=2)
    root.mkdir(parents=True, exist_ok=True)
    if archive:
        tar_path = root / ("cifar-10-python.tar.gz" if kind == "cifar10" else "cifar-100-python.tar.gz")
        with tarfile.open(tar_path, "w:gz") as tf:
            for n, blob in files.items():
                info = tarfile.TarInfo(f"{folder}/{n}")
                info.size = len(blob)
                tf.addfile(info, io.BytesIO(blob))
        return tar_path
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    for n, blob in files.items():
        (d / n).write_bytes(blob)
    return d


def make_image_folder(root: Path, splits: tuple[str, ...] = ("train", "test"), per_class: int = 4,
                      classes: tuple[str, ...] = ("cat", "dog"), size: int = 12) -> Path:
    """Images of mixed modes and sizes in root/<split>/<class>/ (or root/<class>/ when splits is empty)."""
    from PIL import Image

    rng = np.random.default_rng(2)
    modes = ["RGB", "L", "RGBA", "P"]
    for split in splits or ("",):
        for ci, cls in enumerate(classes):
            d = root / split / cls if split else root / cls
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                s = size + i  # different sizes: the loader resizes
                arr = rng.integers(0, 256, (s, s, 3), dtype=np.uint8)
                arr[..., ci % 3] = 255  # class-dependent colour
                im = Image.fromarray(arr, "RGB").convert(modes[i % len(modes)])
                im.save(d / f"{i:03d}.png")
    return root


def tar_folder(src: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        tf.add(src, arcname=src.name)
    return dest


def strip_time(history: list[dict]) -> list[dict]:
    """Epoch records without their wall-clock fields, for comparing two runs."""
    return [{k: v for k, v in r.items() if k not in ("seconds", "elapsed", "val_seconds")} for r in history]


# A throwaway PostgreSQL server for the sweep storage tests, started once per test session.
def _pg_bin():
    if shutil.which("initdb"):
        return Path(shutil.which("initdb")).parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def postgres_url():
    """A SQLAlchemy URL of a PostgreSQL server that lives as long as the test session."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL binaries: install them (Debian: apt-get install postgresql) to run this test")
    data = Path(tempfile.mkdtemp(prefix="imgclf-pg-"))  # directly under /tmp: reachable by another user
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: use the 'nobody' account
        shutil.chown(data, "nobody")
        run_as = ["runuser", "-u", "nobody", "--"]
    subprocess.run(run_as + [str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "imgclf"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(run_as + [str(bindir / "postgres"), "-D", str(data), "-p", str(port), "-h", "127.0.0.1",
                                        "-k", str(data)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 30
        while time.time() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.2)
        time.sleep(0.5)  # the port opens a moment before the server accepts logins
        yield f"postgresql+psycopg2://imgclf@127.0.0.1:{port}/postgres"
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
