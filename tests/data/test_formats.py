"""Each data format, read from small files written here in the official layouts."""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import make_cifar, make_idx_dir, make_image_folder, tar_folder, write_idx

from imgclf.config.load import load_config
from imgclf.core.errors import DataError
from imgclf.data import load_raw
from imgclf.data.registry import cache_root


def cfg(*overrides):
    return load_config(None, list(overrides)).data


@pytest.mark.parametrize("archive", [False, True])
def test_cifar10_folder_and_archive(tmp_path, archive):
    make_cifar(tmp_path / "src", "cifar10", per_batch=6, archive=archive)
    raw = load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path / 'src'}", "data.download=false"))
    assert raw.train_x.shape == (30, 3, 32, 32) and raw.train_x.dtype == torch.uint8
    assert raw.test_x.shape == (6, 3, 32, 32) and raw.train_y.dtype == torch.int64
    assert raw.classes[:2] == ["class0", "class1"] and len(raw.classes) == 10


def test_cifar100(tmp_path):
    make_cifar(tmp_path / "src", "cifar100", per_batch=7)
    raw = load_raw(cfg("data.name=cifar100", f"data.data_dir={tmp_path / 'src'}", "data.download=false"))
    assert raw.train_x.shape == (7, 3, 32, 32) and len(raw.classes) == 100


def test_cifar_pickle_pixels_are_channel_major(tmp_path):
    d = make_cifar(tmp_path / "src", "cifar10", per_batch=2)
    import pickle

    batch = pickle.loads((d / "data_batch_1").read_bytes(), encoding="bytes")
    raw = load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path / 'src'}", "data.download=false"))
    # The official layout stores 1024 red, then 1024 green, then 1024 blue values per row.
    assert np.array_equal(raw.train_x[0, 1].numpy().ravel(), batch[b"data"][0, 1024:2048])


def test_cifar_refuses_code_in_pickles(tmp_path):
    d = make_cifar(tmp_path / "src", "cifar10", per_batch=2)
    import pickle

    (d / "data_batch_3").write_bytes(pickle.dumps(Path("/etc")))
    with pytest.raises(DataError, match="data_batch_3"):
        load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path / 'src'}", "data.download=false"))


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("compress", [True, False])
def test_idx_formats(tmp_path, name, compress):
    make_idx_dir(tmp_path / "idx", compress=compress)
    raw = load_raw(cfg(f"data.name={name}", f"data.data_dir={tmp_path / 'idx'}", "data.download=false"))
    assert raw.train_x.shape == (60, 1, 28, 28) and raw.test_x.shape == (20, 1, 28, 28)
    assert raw.train_y.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_idx_data_dir_from_environment(tmp_path, monkeypatch):
    make_idx_dir(tmp_path / "all" / "mnist")
    monkeypatch.setenv("IMGCLF_DATA_DIR", str(tmp_path / "all"))
    assert load_raw(cfg("data.name=mnist", "data.download=false")).train_x.shape[0] == 60


@pytest.mark.parametrize("damage, words", [
    (lambda p: p.write_bytes(p.read_bytes()[:50]), "corrupt"),
    (lambda p: p.write_bytes(b"\x1f\x8bnot really gzip"), "corrupt"),
    (lambda p: write_idx(p, np.zeros((3, 4), np.uint8)), "do not match"),
    (lambda p: p.write_bytes(__import__("gzip").compress(b"\x01\x02\x08\x03abc")), "magic"),
])
def test_corrupt_idx_files_are_named(tmp_path, damage, words):
    root = make_idx_dir(tmp_path / "idx")
    target = root / "train-images-idx3-ubyte.gz"
    damage(target)
    with pytest.raises(DataError) as e:
        load_raw(cfg("data.name=mnist", f"data.data_dir={root}", "data.download=false"))
    assert "train-images-idx3-ubyte" in str(e.value) and words in str(e.value)


def test_missing_files_offline_say_where(tmp_path):
    with pytest.raises(DataError, match="data.data_dir"):
        load_raw(cfg("data.name=mnist", f"data.data_dir={tmp_path}", "data.download=false"))
    with pytest.raises(DataError, match="cifar-10-python.tar.gz"):
        load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path}", "data.download=false"))


def test_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    from imgclf.data import idx

    monkeypatch.setitem(idx.SOURCES["mnist"], "url", "http://127.0.0.1:9/")  # nothing listens on port 9
    with pytest.raises(DataError, match="could not download"):
        load_raw(cfg("data.name=mnist", f"data.data_dir={tmp_path}"))
    assert not list(tmp_path.iterdir())  # no half-written file left behind


def test_shared_fashion_mnist_slice_if_present():
    shared = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "fashion-mnist"
    if not shared.is_dir():
        pytest.skip("the shared data folder is not beside the repository")
    from imgclf.data.idx import read_idx

    labels = read_idx(shared / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,) and set(np.unique(labels)) == set(range(10))


def test_digits_is_embedded():
    raw = load_raw(cfg())
    assert raw.train_x.shape == (1797, 1, 8, 8) and raw.test_x is None and int(raw.train_x.max()) == 255


@pytest.mark.parametrize("layout", ["split", "flat", "archive"])
def test_folder_layouts(tmp_path, layout):
    if layout == "flat":
        root = make_image_folder(tmp_path / "imgs", splits=())
    else:
        root = make_image_folder(tmp_path / "imgs", splits=("train", "val", "test"))
    path = tar_folder(root, tmp_path / "imgs.tar.gz") if layout == "archive" else root
    raw = load_raw(cfg("data.name=folder", f"data.path={path}", "data.image_size=16"))
    assert raw.classes == ["cat", "dog"]
    assert raw.train_x.shape == (8, 3, 16, 16) and raw.train_x.dtype == torch.uint8
    if layout == "flat":
        assert raw.test_x is None and raw.val_x is None
    else:
        assert raw.test_x.shape == (8, 3, 16, 16) and raw.val_x.shape == (8, 3, 16, 16)


def test_folder_grayscale_and_colour_conversion(tmp_path):
    root = make_image_folder(tmp_path / "imgs", splits=())
    raw = load_raw(cfg("data.name=folder", f"data.path={root}", "data.channels=1", "data.image_size=8"))
    assert raw.train_x.shape == (8, 1, 8, 8)


def test_folder_rgba_composited_on_white(tmp_path):
    from PIL import Image

    for cls in ("a", "b"):  # two classes: a data set of one is refused
        (tmp_path / "imgs" / cls).mkdir(parents=True)
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "imgs" / "a" / "clear.png")
    Image.new("RGBA", (4, 4), (0, 0, 0, 255)).save(tmp_path / "imgs" / "b" / "black.png")
    raw = load_raw(cfg("data.name=folder", f"data.path={tmp_path / 'imgs'}", "data.image_size=4"))
    assert set(raw.train_x.view(2, -1).max(1).values.tolist()) == {0, 255}


def test_corrupt_image_fails_by_path_or_is_skipped(tmp_path, capsys):
    root = make_image_folder(tmp_path / "imgs", splits=())
    (root / "cat" / "broken.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"broken\.jpg.*on_corrupt=skip"):
        load_raw(cfg("data.name=folder", f"data.path={root}"))
    raw = load_raw(cfg("data.name=folder", f"data.path={root}", "data.on_corrupt=skip"))
    assert raw.train_x.shape[0] == 8
    assert "skipped 1 unreadable image" in capsys.readouterr().err


@pytest.mark.parametrize("member", ["../evil.png", "/abs/evil.png", "a/../../evil.png"])
def test_archive_member_outside_is_refused(tmp_path, member):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, format="PNG")
    dest = tmp_path / "bad.tar.gz"
    with tarfile.open(dest, "w:gz") as tf:
        for name in ("ok/cls/a.png", member):
            info = tarfile.TarInfo(name)
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    with pytest.raises(DataError, match="outside the cache folder"):
        load_raw(cfg("data.name=folder", f"data.path={dest}"))


def test_archive_symlink_outside_is_refused(tmp_path):
    dest = tmp_path / "link.tar.gz"
    with tarfile.open(dest, "w:gz") as tf:
        info = tarfile.TarInfo("cls/a.png")
        info.type, info.linkname = tarfile.SYMTYPE, "../../etc/passwd"
        tf.addfile(info)
    with pytest.raises(DataError, match="outside"):
        load_raw(cfg("data.name=folder", f"data.path={dest}"))


def test_truncated_archive_is_an_error(tmp_path):
    root = make_image_folder(tmp_path / "imgs")
    t = tar_folder(root, tmp_path / "a.tar.gz")
    t.write_bytes(t.read_bytes()[:200])
    with pytest.raises(DataError, match="a.tar.gz"):
        load_raw(cfg("data.name=folder", f"data.path={t}"))


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_raw(cfg("data.name=folder", f"data.path={tmp_path / 'nope'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_raw(cfg("data.name=folder", f"data.path={tmp_path / 'empty'}"))


def test_decoded_cache_is_reused_and_keyed_by_sources(tmp_path):
    root = make_idx_dir(tmp_path / "idx")
    c = cfg("data.name=mnist", f"data.data_dir={root}", "data.download=false")
    a = load_raw(c)
    files = list((cache_root() / "decoded").glob("mnist-*.pt"))
    assert len(files) == 1 and not list((cache_root() / "decoded").glob(".*tmp"))
    b = load_raw(c)
    assert torch.equal(a.train_x, b.train_x)
    make_idx_dir(root, n_train=70, seed=5)  # the sources change: a new key, a new decode
    assert load_raw(c).train_x.shape[0] == 70
    assert len(list((cache_root() / "decoded").glob("mnist-*.pt"))) == 2


def test_corrupt_cache_is_rebuilt(tmp_path):
    root = make_idx_dir(tmp_path / "idx")
    c = cfg("data.name=mnist", f"data.data_dir={root}", "data.download=false")
    load_raw(c)
    (f,) = (cache_root() / "decoded").glob("mnist-*.pt")
    f.write_bytes(b"garbage")
    assert load_raw(c).train_x.shape[0] == 60


def test_cifar10_reads_an_image_folder_copy_from_the_data_dir(tmp_path):
    names = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
    root = make_image_folder(tmp_path / "cifar10-jpg", splits=("train", "test"), classes=names, per_class=1)
    tar_folder(root, tmp_path / "cifar10-jpg.tar.gz")
    import shutil

    shutil.rmtree(root)
    raw = load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path}", "data.download=false"))
    assert raw.classes == list(names) and raw.train_x.shape == (10, 3, 32, 32)
    assert raw.test_x.shape == (10, 3, 32, 32)
    (tmp_path / "cifar10-jpg.tar.gz").unlink()  # a copy of two classes is not CIFAR-10
    tar_folder(make_image_folder(tmp_path / "cifar10-jpg", classes=names[:2]), tmp_path / "cifar10-jpg.tar.gz")
    with pytest.raises(DataError, match="2 class names where cifar10 has 10"):
        load_raw(cfg("data.name=cifar10", f"data.data_dir={tmp_path}", "data.download=false"))
