"""data.exclude and data.relabel: image lists applied to the decoded copy, never to the folder."""
import pytest
from conftest import make_image_folder

import imgclf
from imgclf.config.load import load_config
from imgclf.core.errors import DataError
from imgclf.data import load_raw


def _cfg(root, *sets):
    return load_config(None, ["data.name=folder", f"data.path={root}", "data.image_size=8", *sets]).data


def test_excluded_images_leave_and_relabelled_ones_change_class(tmp_path):
    root = make_image_folder(tmp_path / "pics", per_class=4)
    before = load_raw(_cfg(root))
    assert before.split_ids("train")[:2] == ["train/cat/000.png", "train/cat/001.png"]
    (tmp_path / "findings.csv").write_text(
        "path,issue,label,action\n"
        "train/cat/001.png,label,dog,exclude\n"
        "test/dog/002.png,near-duplicate,,exclude\n"
        "train/dog/003.png,label,cat,relabel\n"
        "train/cat/002.png,label,dog,\n")  # no action: a finding the user left as it is
    f = tmp_path / "findings.csv"
    after = load_raw(_cfg(root, f"data.exclude={f}", f"data.relabel={f}"))
    assert len(after.train_y) == len(before.train_y) - 1 and len(after.test_y) == len(before.test_y) - 1
    assert "train/cat/001.png" not in after.split_ids("train") and "test/dog/002.png" not in after.split_ids("test")
    moved = after.split_ids("train").index("train/dog/003.png")
    assert after.classes[int(after.train_y[moved])] == "cat"
    kept = after.split_ids("train").index("train/cat/002.png")
    assert after.classes[int(after.train_y[kept])] == "cat"
    assert after.note == f"excluded 2 images (data.exclude {f}); relabelled 1 images (data.relabel {f})"
    assert (root / "train" / "cat" / "001.png").exists()  # the folder is never touched
    # the run says what it left out
    run = imgclf.train(None, ["data.name=folder", f"data.path={root}", "data.image_size=8", f"data.exclude={f}",
                              "model.spec=c4-p-f8", "train.epochs=1", "data.val_fraction=0"], name="ex", echo=False)
    assert f"excluded 2 images (data.exclude {f})" in (run.path / "train.log").read_text()


def test_built_in_sets_are_named_split_and_index(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("path\ntrain/0\ntrain/5\n")
    raw = load_raw(load_config(None, [f"data.exclude={f}"]).data)
    assert len(raw.train_y) == 1797 - 2 and raw.split_ids("train")[:2] == ["train/1", "train/2"]


@pytest.mark.parametrize("text, words", [
    ("path\ntrain/cat/999.png\n", ["1 of the 1 images", "train/cat/999.png", "imgclf inspect"]),
    ("file\ntrain/cat/000.png\n", ["no 'path' column", "'file'"]),
    (None, ["does not exist"]),
])
def test_a_wrong_list_is_one_clear_line(tmp_path, text, words):
    root = make_image_folder(tmp_path / "pics", per_class=2)
    f = tmp_path / "list.csv"
    if text is not None:
        f.write_text(text)
    with pytest.raises(DataError) as e:
        load_raw(_cfg(root, f"data.exclude={f}"))
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)


def test_excluding_a_whole_split_or_class_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "pics", splits=("train", "val", "test"), per_class=2)
    f = tmp_path / "list.csv"
    f.write_text("path\nval/cat/000.png\nval/cat/001.png\nval/dog/000.png\nval/dog/001.png\n")
    with pytest.raises(DataError, match="removes every validation image"):
        load_raw(_cfg(root, f"data.exclude={f}"))
    f.write_text("path\ntrain/dog/000.png\ntrain/dog/001.png\n")
    with pytest.raises(DataError, match="all 2 training images are of class 'cat'"):
        load_raw(_cfg(root, f"data.exclude={f}"))


def test_relabelling_to_a_class_the_set_lacks_is_refused(tmp_path):
    root = make_image_folder(tmp_path / "pics", per_class=2)
    f = tmp_path / "list.csv"
    f.write_text("path,label\ntrain/cat/000.png,horse\n")
    with pytest.raises(DataError, match="class 'horse' is not one of"):
        load_raw(_cfg(root, f"data.relabel={f}"))


def test_an_empty_class_folder_is_one_line(tmp_path):
    root = make_image_folder(tmp_path / "pics", per_class=2)
    (root / "train" / "owl").mkdir()
    with pytest.raises(DataError, match="owl: a class folder without images"):
        load_raw(_cfg(root))
