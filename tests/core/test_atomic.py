"""Atomic writes: a failed write leaves the old file and no temp file; concurrent writers never collide."""
import threading

import pytest

from imgclf.core.atomic import atomic_torch_save, atomic_write, atomic_write_text


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_text(path, "old")

    def half(f):
        f.write("half of the new")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(path, half)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_concurrent_writers_each_leave_a_whole_file(tmp_path):
    path = tmp_path / "shared.txt"
    texts = [str(i) * 100_000 for i in range(8)]
    threads = [threading.Thread(target=atomic_write_text, args=(path, t)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert path.read_text() in texts and [p.name for p in tmp_path.iterdir()] == ["shared.txt"]


def test_torch_save_goes_through_the_same_helper(tmp_path):
    import torch

    atomic_torch_save({"w": torch.ones(3)}, tmp_path / "sub" / "c.pt")
    assert torch.equal(torch.load(tmp_path / "sub" / "c.pt", weights_only=True)["w"], torch.ones(3))
