"""The data contract: every loader's output is checked the same way, so bad data is one line."""
import pytest
import torch
from conftest import make_cifar, make_idx_dir, make_image_folder, write_idx

from imgclf.config.load import load_config
from imgclf.core.errors import DataError
from imgclf.data import load_raw
from imgclf.data.contract import check_raw
from imgclf.data.registry import RawData


def raw(**kw):
    base = dict(train_x=torch.zeros(6, 1, 4, 4, dtype=torch.uint8), train_y=torch.tensor([0, 1, 2, 0, 1, 2]),
                test_x=torch.zeros(3, 1, 4, 4, dtype=torch.uint8), test_y=torch.tensor([0, 1, 2]),
                classes=["a", "b", "c"])
    return RawData(**{**base, **kw})


@pytest.mark.parametrize("change, words", [
    (dict(train_y=torch.tensor([0, 1, 2, 0, 1, 7])), ["label is 7", "outside 0..2"]),
    (dict(test_y=torch.tensor([0, -1, 2])), ["test label is -1"]),
    (dict(classes=["a"], train_y=torch.zeros(6, dtype=torch.long), test_y=torch.zeros(3, dtype=torch.long)),
     ["1 class", "at least two"]),
    (dict(train_y=torch.zeros(6, dtype=torch.long)), ["all 6 training images are of class 'a'"]),
    (dict(train_y=torch.tensor([0, 1, 2, 0, 1])), ["6 training images but 5 labels"]),
    (dict(test_x=torch.zeros(3, 3, 4, 4, dtype=torch.uint8)), ["test images are 3x4x4", "training images 1x4x4"]),
    (dict(train_x=torch.zeros(6, 1, 4, 4)), ["training images are torch.float32"]),
    (dict(test_y=None), ["test split has images but no labels"]),
])
def test_the_contract_names_each_fault(change, words):
    with pytest.raises(DataError) as e:
        check_raw(raw(**change), "toy")
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value), str(e.value)
    good = raw()
    assert check_raw(good, "toy") is good  # data that meets the contract passes through untouched


def test_a_declared_class_count_is_enforced():
    with pytest.raises(DataError, match="3 class names where toy has 10"):
        check_raw(raw(), "toy", classes=10)


def test_an_idx_label_outside_the_classes_is_refused(tmp_path):
    import numpy as np

    d = make_idx_dir(tmp_path / "idx")
    write_idx(d / "train-labels-idx1-ubyte.gz", (np.arange(60) % 10) + np.array([0] * 59 + [5]))  # one label 14
    with pytest.raises(DataError, match="outside 0..9"):
        load_raw(load_config(None, ["data.name=mnist", f"data.data_dir={d}", "data.download=false"]).data)


def test_a_cifar_label_outside_the_classes_is_refused(tmp_path):
    import pickle

    d = make_cifar(tmp_path / "src", "cifar10", per_batch=4)
    batch = pickle.loads((d / "data_batch_2").read_bytes(), encoding="bytes")
    batch[b"labels"][0] = 12
    (d / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(DataError, match="label is 12, outside 0..9"):
        load_raw(load_config(None, ["data.name=cifar10", f"data.data_dir={tmp_path / 'src'}",
                                    "data.download=false"]).data)


def test_a_folder_of_one_class_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "imgs", splits=(), classes=("cat",))
    with pytest.raises(DataError, match="a classifier needs at least two"):
        load_raw(load_config(None, ["data.name=folder", f"data.path={root}"]).data)


def test_images_without_their_labels_file_name_it_instead_of_downloading(tmp_path):
    d = make_idx_dir(tmp_path / "idx")
    (d / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as e:  # download stays allowed: a partial copy is still refused
        load_raw(load_config(None, ["data.name=mnist", f"data.data_dir={d}"]).data)
    assert "train-labels-idx1-ubyte.gz not found in" in str(e.value) and "http" not in str(e.value)
