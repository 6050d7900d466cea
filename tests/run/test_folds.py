"""K-fold cross-validation: stratified folds, one run per fold, the mean with its interval, resume."""
import json

import pytest
import torch

from imgclf.cli.main import main
from imgclf.data.splits import fold_ids

FAST = ["--set", "model.spec=c8-p-f16", "--set", "train.epochs=2", "--no-progress"]


def test_stratified_folds_cover_every_image_once_with_each_classs_share():
    y = torch.tensor([0] * 50 + [1] * 7 + [2] * 3)
    fold = fold_ids(y, 5, seed=0)
    assert set(fold.tolist()) == set(range(5))
    for c, n in ((0, 50), (1, 7), (2, 3)):
        per_fold = torch.bincount(fold[y == c], minlength=5)
        assert per_fold.sum() == n and int(per_fold.max() - per_fold.min()) <= 1  # each fold its share
    assert torch.equal(fold, fold_ids(y, 5, seed=0)) and not torch.equal(fold, fold_ids(y, 5, seed=1))


def test_three_folds_print_each_fold_and_the_mean_with_its_interval(tmp_path, capsys):
    assert main(["train", *FAST, "--folds", "3", "--name", "cv"]) == 0
    out = capsys.readouterr().out
    assert [x.split(":")[0] for x in out.splitlines() if x.startswith("fold ")] == ["fold 1/3", "fold 2/3", "fold 3/3"]
    line = [x for x in out.splitlines() if x.startswith("validation accuracy over 3 folds:")][0]
    data = json.loads((tmp_path / "runs" / "cv" / "results.json").read_text())
    val = data["val_acc"]
    assert val["n"] == 3 and len(val["values"]) == 3 and val["ci95"] > 0
    assert f"{val['mean']:.2f}% ± {val['ci95']:.2f} (n=3)" in line
    assert [r["fold"] for r in data["runs"]] == [1, 2, 3]
    # the folds hold out different images: three different validation scores, each on about a third
    sizes = [json.loads((tmp_path / "runs" / "cv" / f"fold-{k}" / "history.jsonl").read_text().splitlines()[0])
             for k in (1, 2, 3)]
    assert len({s["val_acc"] for s in sizes}) == 3
    best = data["best_fold"]
    kept = [k for k in (1, 2, 3) if (tmp_path / "runs" / "cv" / f"fold-{k}" / "best.pt").exists()]
    assert kept == [best] and val["values"][best - 1] == max(val["values"])
    # the same command again trains nothing and gives the same figures
    log = (tmp_path / "runs" / "cv" / "fold-1" / "train.log").read_text()
    assert main(["train", *FAST, "--folds", "3", "--name", "cv"]) == 0
    assert (tmp_path / "runs" / "cv" / "fold-1" / "train.log").read_text() == log
    assert json.loads((tmp_path / "runs" / "cv" / "results.json").read_text())["val_acc"] == val


def test_keep_folds_keeps_every_checkpoint_and_another_experiment_is_refused(tmp_path, capsys):
    assert main(["train", *FAST, "--folds", "2", "--keep-folds", "--name", "all"]) == 0
    assert all((tmp_path / "runs" / "all" / f"fold-{k}" / "best.pt").exists() for k in (1, 2))
    capsys.readouterr()
    # the same name for another experiment: its finished folds are never read as this one's
    assert main(["train", *FAST, "--set", "optim.lr=0.2", "--folds", "2", "--name", "all"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "optim.lr" in err[0] and "fold-1" in err[0]


@pytest.mark.parametrize("args, words", [
    (["--folds", "1"], ["--folds 1", "at least 2"]),
    (["--keep-folds"], ["--folds K"]),
    (["--set", "data.fold=1"], ["data.folds"]),
    (["--set", "data.folds=3", "--set", "data.fold=3"], ["data.fold=3", "0 to 2"]),
])
def test_a_wrong_fold_setting_is_one_line(args, words, capsys):
    assert main(["train", *FAST, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and all(w in err[0] for w in words), err


def test_folds_under_torchrun_are_refused_in_one_line(monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in each of its processes
    assert main(["train", *FAST, "--folds", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchrun" in err[0] and "data.fold=k" in err[0]
