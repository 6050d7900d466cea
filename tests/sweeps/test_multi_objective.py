"""Sweeps of several objectives: Optuna's multi-objective study, the Pareto front, and seeded
hyperparameter importances (PED-ANOVA and fANOVA) that refuse to rest on too few trials."""
import re

import pytest
import yaml

from imgclf.cli.main import main
from imgclf.core.errors import ConfigError
from imgclf.engine.monitor import Direction
from imgclf.sweeps.analysis import importances, load_sweep_study, pareto_front, trials_frame
from imgclf.sweeps.runner import run_sweep
from imgclf.sweeps.spec import parse_sweep
from imgclf.sweeps.store import SweepError

BASE = {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 128}, "schedule": {"name": "none"}}


def _sweep(tmp_path, **extra):
    raw = {"base": BASE, "space": {"model.hidden.0": [4, 16, 64], "optim.lr": [0.01, 0.05, 0.2, 0.5]},
           "objectives": ["val_acc max", "params min"], **extra}
    p = tmp_path / "mo.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def _dominated(a, b, names):
    """b beats a on every objective (at least as good everywhere, better somewhere)."""
    better = [(b[n] >= a[n]) if d is Direction.MAX else (b[n] <= a[n]) for n, d in names]
    strictly = [(b[n] > a[n]) if d is Direction.MAX else (b[n] < a[n]) for n, d in names]
    return all(better) and any(strictly)


def test_two_objectives_give_a_pareto_front_and_seeded_importances(tmp_path, capsys):
    run_sweep(_sweep(tmp_path), echo=False)
    spec, study, folder = load_sweep_study("mo")
    df = trials_frame(study, spec)
    assert spec.directions == [Direction.MAX, Direction.MIN]  # 'val_acc max', 'params min'
    assert [Direction.from_optuna(d) for d in study.directions] == spec.directions  # as Optuna keeps them
    assert (df["status"] == "complete").sum() == 12
    assert sorted(df["params"].unique()) == [4 * 64 + 4 + 4 * 10 + 10, 16 * 65 + 16 * 10 + 10, 64 * 65 + 64 * 10 + 10]
    front = pareto_front(df, study, spec)
    done = df[df["status"] == "complete"]
    rows = [r for _, r in done.iterrows()]
    for _, f in front.iterrows():  # nothing beats a front member on both objectives
        assert not any(_dominated(f, r, spec.objectives) for r in rows)
    for r in rows:  # and every other trial is beaten by someone
        if r["trial"] not in set(front["trial"]):
            assert any(_dominated(r, o, spec.objectives) for o in rows)
    first, again = importances(study, spec), importances(study, spec)
    assert first == again and first["trials"] == 12  # the same store, the same figures
    assert set(first["ped-anova"]) == set(first["fanova"]) == {"model.hidden.0", "optim.lr"}
    assert main(["results", "mo"]) == 0
    rows = [re.split(r" {2,}", line.strip()) for line in capsys.readouterr().out.splitlines()]
    for p in ("model.hidden.0", "optim.lr"):  # the importances printed are the store's
        assert [p, f"{first['ped-anova'][p]:.3f}", f"{first['fanova'][p]:.3f}"] in rows
    assert (folder / "figures" / "pareto.png").stat().st_size > 10_000
    assert (folder / "figures" / "importance.png").stat().st_size > 10_000


def test_importance_refuses_too_few_trials_in_one_line(tmp_path):
    run_sweep(_sweep(tmp_path), echo=False, max_trials=4)
    spec, study, _ = load_sweep_study("mo")
    with pytest.raises(SweepError) as e:
        importances(study, spec)
    assert "4 here, at least 10 needed" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("objectives, words", [
    (["val_acc up"], "NAME max|min"),
    (["params min", "val_acc max"], "first (params) ranks"),
    (["val_acc max", "params max"], "the worse params"),
    (["val_acc max", "val_acc max"], "twice"),
])
def test_bad_objectives_are_one_line(objectives, words):
    with pytest.raises(ConfigError, match=words.replace("|", r"\|").replace("(", r"\(").replace(")", r"\)")):
        parse_sweep({"base": BASE, "space": {"optim.lr": [0.1]}, "objectives": objectives})


def test_a_pruner_is_refused_with_several_objectives():
    with pytest.raises(ConfigError, match="pruner: none"):
        parse_sweep({"base": BASE, "space": {"optim.lr": [0.1]}, "objectives": ["val_acc max", "params min"],
                     "pruner": "median"})
