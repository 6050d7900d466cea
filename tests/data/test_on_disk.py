"""Folders larger than memory: the decoded cache read batch by batch (data.storage: disk), decoded
in parallel processes, training exactly as the in-memory path does, in memory that does not grow
with the data set."""
import os
import pickle
import subprocess
import sys

import numpy as np
import torch
from conftest import make_image_folder, strip_time
from PIL import Image

import imgclf
from imgclf.config.load import load_config
from imgclf.data import load_raw
from imgclf.data.on_disk import DiskImages, concat


def test_images_on_disk_index_take_and_travel_like_a_tensor(tmp_path):
    shape = (10, 1, 2, 2)
    a = np.arange(40, dtype=np.uint8).reshape(shape)
    a.tofile(tmp_path / "x.u8")
    x, t = DiskImages(tmp_path / "x.u8", shape), torch.from_numpy(a)
    assert x.shape == t.shape and x.dtype == torch.uint8 and len(x) == 10
    for key in (3, slice(2, 5), torch.tensor([7, 2, 2, 9]), torch.tensor([True, False] * 5), np.array([0, 9])):
        assert torch.equal(x[key], t[key])
    part = x.take(torch.tensor([1, 5, 9]))
    assert torch.equal(part[:], t[[1, 5, 9]]) and torch.equal(part.take([2])[0], t[9])
    assert torch.equal(concat(part, x.take([0]))[:], t[[1, 5, 9, 0]])
    assert torch.equal(pickle.loads(pickle.dumps(part))[:], t[[1, 5, 9]])  # reopened where it lands


def test_training_from_disk_is_training_from_memory(tmp_path):
    root = make_image_folder(tmp_path / "pics", per_class=6)
    base = ["data.name=folder", f"data.path={root}", "data.image_size=12", "model.spec=c4-p-f8", "train.epochs=2",
            "train.batch_size=4", "data.val_fraction=0.25"]
    raw = load_raw(load_config(None, base + ["data.storage=disk"]).data)
    assert isinstance(raw.train_x, DiskImages)
    assert isinstance(load_raw(load_config(None, base + ["data.storage=memory"]).data).train_x, torch.Tensor)
    disk = imgclf.train(None, base + ["data.storage=disk"], name="disk", echo=False)
    memory = imgclf.train(None, base + ["data.storage=memory"], name="memory", echo=False)
    assert strip_time(disk.history.to_dict("records")) == strip_time(memory.history.to_dict("records"))
    assert disk.metrics["test"]["top1"] == memory.metrics["test"]["top1"]


PEAK = """
import sys
import imgclf
imgclf.train(None, ["data.name=folder", "data.path=" + sys.argv[1], "data.image_size=96", "data.storage=" + sys.argv[2],
                    "model.spec=ap-ap-ap-c4-f8", "train.epochs=1", "train.batch_size=64", "train.eval_batch_size=100",
                    "train.threads=1"], echo=False)
# VmHWM: this process's own peak (ru_maxrss would carry the parent's peak across fork and exec)
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0])  # KiB
"""


def _folder(root, n):
    rng = np.random.default_rng(0)
    for i in range(n):
        d = root / f"c{i % 2}"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(d / f"{i:05d}.bmp")
    return root


def _peak_mib(root, storage) -> float:
    out = subprocess.run([sys.executable, "-c", PEAK, str(root), storage], capture_output=True, text=True,
                         env=os.environ.copy(), timeout=300, check=True).stdout
    return int(out.split()[-1]) / 1024


def test_a_runs_memory_does_not_grow_with_a_data_set_on_disk(tmp_path):
    if not sys.platform.startswith("linux"):
        import pytest

        pytest.skip("the peak resident set is read from Linux's /proc")
    small, large = _folder(tmp_path / "small", 1500), _folder(tmp_path / "large", 3000)  # 40 and 79 MiB decoded
    grown = 1500 * 3 * 96 * 96 / 2**20
    disk_small, disk_large = _peak_mib(small, "disk"), _peak_mib(large, "disk")
    memory_large = _peak_mib(large, "memory")
    # twice the data, the same peak (within 0.5 of the growth: peaks move by about 10 MiB run to run)
    assert abs(disk_large - disk_small) < 0.5 * grown, (disk_small, disk_large)
    assert memory_large - disk_large > 0.8 * 2 * grown, (disk_large, memory_large)  # in memory, it holds them all
