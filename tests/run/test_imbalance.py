"""Training on imbalanced classes: the warning, the balanced metrics, class weights and the sampler."""
import numpy as np
from PIL import Image

import imgclf


def _imbalanced_folder(root, big=60, small=5):
    """Two classes told apart by colour, `big` and `small` training images, ten test images each."""
    rng = np.random.default_rng(0)
    for split, counts in (("train", (big, small)), ("test", (10, 10))):
        for ci, (cls, n) in enumerate(zip(("common", "rare"), counts)):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                arr = rng.integers(0, 120, (8, 8, 3), dtype=np.uint8)
                arr[..., ci] += 100  # red for the common class, green for the rare one
                Image.fromarray(arr).save(d / f"{i}.png")
    return root


def test_imbalanced_classes_are_named_and_scored_by_balanced_accuracy(tmp_path):
    root = _imbalanced_folder(tmp_path / "pics")
    base = ["data.name=folder", f"data.path={root}", "data.image_size=8", "data.val_fraction=0.3",
            "model.spec=c8-p-f16", "train.epochs=3", "train.batch_size=8"]
    weighted = imgclf.train(None, base + ["train.class_weights=auto", "train.monitor=val_balanced_acc"],
                            name="weighted", echo=False)
    assert weighted.metrics["monitor"] == "val_balanced_acc"  # the kept weights chosen by balanced accuracy
    log = (weighted.path / "train.log").read_text()
    assert "warning: imbalanced classes: 'common' has 42 training images, 'rare' 3 (14x)" in log
    assert "consider" not in log  # the remedy is on already
    epoch_lines = [line for line in log.splitlines() if line.startswith("epoch ")]
    assert all(" balanced " in line and "macro-F1" in line for line in epoch_lines)
    test = weighted.metrics["test"]
    assert 0 <= test["balanced_acc"] <= 1 and 0 <= test["macro_f1"] <= 1
    assert "balanced" in [x for x in log.splitlines() if x.startswith("test loss")][0]
    h = weighted.history
    assert {"val_balanced_acc", "val_macro_f1"} <= set(h.columns)
    # the balanced sampler trains too, on an epoch of as many draws as there are images
    sampled = imgclf.train(None, base + ["data.sampler=balanced"], name="sampled", echo=False)
    assert "consider" not in (sampled.path / "train.log").read_text()
    assert sampled.metrics["train_images"] == weighted.metrics["train_images"]
    assert sampled.history["train_loss"].tolist() != weighted.history["train_loss"].tolist()


def test_balanced_classes_keep_the_plain_epoch_line():
    run = imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=1"], name="plain", echo=False)
    log = (run.path / "train.log").read_text()
    assert "warning: imbalanced" not in log and " balanced " not in log
    assert 0.0 < run.metrics["test"]["balanced_acc"] <= 1.0  # recorded all the same
