"""Property-based tests of the file readers: random truncations and byte flips of valid files give
the data or one line (a DataError), never a traceback."""
import io
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from conftest import make_cifar, make_idx_dir, make_image_folder
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgclf.config.load import load_config
from imgclf.core.errors import DataError
from imgclf.data import load_raw
from imgclf.data.contract import check_raw

SETTINGS = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def damaged(data: bytes, cut: float, flips: list[tuple[float, int]]) -> bytes:
    """`data` truncated to a share `cut` of its length, with bytes at relative positions XORed."""
    out = bytearray(data[: max(0, int(len(data) * cut))])
    for where, bits in flips:
        if out:
            out[int(where * (len(out) - 1))] ^= bits
    return bytes(out)


damage = st.tuples(st.floats(0, 1) | st.just(1.0), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)),
                                                              max_size=4))


def _loads_or_one_line(overrides, images: int, names: tuple[str, ...]):
    """Either every one of `images` loads, within the contract, or one line names what is damaged."""
    try:
        raw = load_raw(load_config(None, overrides).data)
    except DataError as e:
        msg = str(e)
        assert msg and "\n" not in msg
        assert any(n in msg for n in names), msg  # the line points at the file or folder to fix
        return
    assert check_raw(raw, "damaged") is raw
    n = len(raw.train_x) + (0 if raw.test_x is None else len(raw.test_x))
    assert n == images, f"{n} of {images} images loaded: damage lost data without a word"


@SETTINGS
@given(st.sampled_from(["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]),
       damage)
def test_damaged_idx_files(name, dmg):
    with tempfile.TemporaryDirectory() as d:
        root = make_idx_dir(Path(d) / "idx", n_train=20, n_test=10)
        p = root / name
        p.write_bytes(damaged(p.read_bytes(), *dmg))
        _loads_or_one_line(["data.name=mnist", f"data.data_dir={root}", "data.download=false"], 30,
                           (name.split(".")[0], str(root)))


@SETTINGS
@given(st.sampled_from(["data_batch_1", "test_batch", "batches.meta"]), damage)
def test_damaged_cifar_batches(name, dmg):
    with tempfile.TemporaryDirectory() as d:
        folder = make_cifar(Path(d) / "src", "cifar10", per_batch=3)
        p = folder / name
        p.write_bytes(damaged(p.read_bytes(), *dmg))
        _loads_or_one_line(["data.name=cifar10", f"data.data_dir={Path(d) / 'src'}", "data.download=false"],
                           6 * 3, (name, str(folder)))


@SETTINGS
@given(damage, st.booleans())
def test_damaged_images_and_archives(dmg, archive):
    with tempfile.TemporaryDirectory() as d:
        root = make_image_folder(Path(d) / "imgs", splits=(), per_class=2, size=6)
        if archive:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as tf:
                tf.add(root, arcname="imgs")
            path = Path(d) / "imgs.tar.gz"
            path.write_bytes(damaged(buf.getvalue(), *dmg))
        else:
            path = root
            img = sorted(root.rglob("*.png"))[0]
            img.write_bytes(damaged(img.read_bytes(), *dmg))
        _loads_or_one_line(["data.name=folder", f"data.path={path}", "data.image_size=6"], 4,
                           (str(path), "imgs"))


def test_the_damage_helper_cuts_and_flips():
    assert damaged(b"abcd", 0.5, []) == b"ab" and damaged(b"abcd", 1.0, [(0.0, 1)]) == b"`bcd"
    assert np.array_equal(np.frombuffer(damaged(bytes(4), 1.0, [(1.0, 255)]), np.uint8), [0, 0, 0, 255])
