"""imgclf inspect: duplicates and leaks, unreadable and small files, likely label errors, and the
findings.csv that data.exclude then applies."""
import csv
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

import imgclf
from imgclf.cli.main import main
from imgclf.inspection.duplicates import exact_groups, near_pairs, signature


def _scene(rng, size=32):
    """A smooth random picture (blobs of colour), the kind a perceptual hash is made for."""
    small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC))


def test_copies_are_found_and_unrelated_pictures_are_not():
    rng = np.random.default_rng(0)
    pics = [_scene(rng) for _ in range(200)]
    buf = io.BytesIO()
    Image.fromarray(pics[3]).save(buf, "JPEG", quality=60)  # a re-encoded copy
    pics.append(np.asarray(Image.open(buf)))
    pics.append(np.clip(pics[7].astype(int) + 12, 0, 255).astype(np.uint8))  # a brighter copy
    pics.append(pics[9].copy())  # an exact copy
    x = torch.from_numpy(np.stack(pics)).permute(0, 3, 1, 2).contiguous()
    assert exact_groups(x) == [[9, 202]]
    pairs = {(i, j) for i, j, _ in near_pairs(signature(x), 0.98)}
    assert pairs == {(3, 200), (7, 201), (9, 202)}  # of 20,503 pairs, 19,900 of them unrelated pictures


def _folder(root):
    """Red 'apple' and green 'leaf' pictures; two of each mislabelled, a training copy of a test
    image, a corrupt file and a tiny image."""
    rng = np.random.default_rng(1)
    made = {}
    for split, n in (("train", 30), ("test", 6)):
        for ci, cls in enumerate(("apple", "leaf")):
            d = root / split / cls
            d.mkdir(parents=True)
            for i in range(n):
                arr = _scene(rng, 16) // 3
                arr[..., ci] = 200 + arr[..., ci] // 4
                made[f"{split}/{cls}/{i:02d}.png"] = arr
    for wrong in ("train/apple/00.png", "train/apple/01.png"):  # a green picture filed under apple
        made[wrong][..., 0], made[wrong][..., 1] = made[wrong][..., 1] // 4, 210
    for wrong in ("train/leaf/00.png", "train/leaf/01.png"):
        made[wrong][..., 1], made[wrong][..., 0] = made[wrong][..., 0] // 4, 210
    made["train/leaf/29.png"] = made["test/leaf/03.png"].copy()  # a leak
    for name, arr in made.items():
        Image.fromarray(arr).save(root / name)
    (root / "train" / "apple" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not an image")
    Image.fromarray(made["train/apple/05.png"][:6, :6]).save(root / "train" / "apple" / "tiny.png")
    return root


def test_inspect_reports_leaks_files_and_label_errors_and_its_csv_excludes_them(tmp_path, capsys):
    root = _folder(tmp_path / "fruit")
    # the images left on disk (data.storage: disk), as a folder larger than memory would be
    assert main(["inspect", str(root), "--set", "data.image_size=16", "--set", "data.storage=disk",
                 "--set", "model.spec=c8-p-f16",
                 "--epochs", "12", "--set", "train.batch_size=16"]) == 0
    out = tmp_path / "inspect" / "fruit"
    assert f"wrote {out}/report.html" in capsys.readouterr().out
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and " src='http" not in html  # self-contained
    rows = list(csv.DictReader(open(out / "findings.csv")))
    by = {(r["path"], r["issue"]): r for r in rows}
    assert by[("train/leaf/29.png", "duplicate")]["action"] == "exclude"  # the training copy of a test image
    assert by[("test/leaf/03.png", "duplicate")]["action"] == ""  # the test split stays as published
    assert ("train/apple/broken.png", "unreadable") in by and ("train/apple/tiny.png", "too-small") in by
    summary = json.loads((out / "summary.json").read_text())
    assert summary["unreadable"] == 1 and summary["counts"]["train"] == [31, 30]
    flagged = set(summary["flagged"])
    wrong = {"train/apple/00.png", "train/apple/01.png", "train/leaf/00.png", "train/leaf/01.png"}
    assert wrong <= flagged and len(flagged) <= 8
    assert by[("train/apple/00.png", "label")]["label"] == "leaf"
    # the next run trains without what the CSV marks exclude
    run = imgclf.train(None, ["data.name=folder", f"data.path={root}", "data.image_size=16", "data.on_corrupt=skip",
                              f"data.exclude={out / 'findings.csv'}", "model.spec=c8-p-f16", "train.epochs=1"],
                       name="clean", echo=False)
    marked = {r["path"] for r in rows if r["action"] == "exclude"}
    assert run.metrics["train_images"] + int(round(0.1 * 60)) >= 61 - len(marked) - 1
    assert f"excluded {len(marked)} images" in (run.path / "train.log").read_text()


@pytest.mark.parametrize("args, words", [
    (["nowhere/at/all"], ["nowhere/at/all", "neither"]),
    (["digits", "--folds", "1"], ["--folds 1"]),
    (["digits", "--near", "1.5"], ["--near 1.5"]),
])
def test_bad_inspect_arguments_are_one_line(args, words, capsys):
    assert main(["inspect", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err
