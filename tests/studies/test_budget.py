"""A study answered within a wall budget: equal shares of training time, each run annealed inside
its share, the split in results.json, a budget too small refused before any data is read."""
import json
import time

import pytest
import yaml

from imgclf.cli.main import main
from imgclf.core.errors import ConfigError
from imgclf.estimate.run import CostModel
from imgclf.studies import load_study, run_study
from imgclf.studies.wall_budget import BudgetPlan, parse_budget, plan_budget

# The report's constant rate at two batch sizes, far more epochs than the budget buys.
STUDY = {"title": "budgeted", "set": {"data.name": "digits", "model.name": "mlp", "model.hidden": [32],
                                      "schedule.name": "none", "train.epochs": 1000, "optim.lr": 0.05},
         "runs": {"b32": {"train.batch_size": 32}, "b128": {"train.batch_size": 128}}}


def _write(tmp_path, raw=STUDY):
    p = tmp_path / "budgeted.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_a_budgeted_study_finishes_within_its_budget_every_run_annealed(tmp_path):
    budget = 36.0  # seconds: 26 kept for starting two runs and the report, 4 s of training each
    t = time.perf_counter()
    out = run_study(str(_write(tmp_path)), tmp_path / "studies", budget="36s", log=lambda m: None)
    wall = time.perf_counter() - t
    assert wall <= 1.15 * budget, wall
    folder = tmp_path / "studies" / "budgeted-36s"  # the budget names the results
    records = json.loads((folder / "results.json").read_text())
    assert {r["run"] for r in records} == {"b32", "b128"}
    shares = {r["run"]: r["budget_share_s"] for r in records}
    assert shares["b32"] == shares["b128"] > 0  # equal time, not equal epochs
    for r in records:
        assert r["annealed_from"] == "none" and 1 < r["epochs"] < 1000
        hist = [json.loads(line) for line in (folder / "runs" / r["run"] / "history.jsonl").read_text().splitlines()]
        assert hist[-1]["lr"] < 0.1 * 0.05  # the rate was decayed to near zero inside the share
        assert hist[-1]["elapsed"] <= r["budget_share_s"] * 1.05
    by_run = {r["run"]: r["epochs"] for r in records}
    assert by_run["b128"] > by_run["b32"]  # a larger batch buys more epochs in the same time
    md = (folder / "report.md").read_text()
    assert "Budget 36s" in md and "Wall time really spent" in md and "cosine over the share" in md
    assert out["rows"] and BudgetPlan.load(folder).spent_s <= 1.15 * budget


def test_a_too_small_budget_is_refused_before_any_data_is_read(tmp_path, capsys):
    raw = {**STUDY, "set": {**STUDY["set"], "data.name": "cifar10", "model.name": "wide",
                            "data.data_dir": str(tmp_path / "no-data-here")}}
    path = _write(tmp_path, raw)
    assert main(["study", str(path), "--budget", "20s", "--studies-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "too small" in err and "the smallest budget" in err, err
    assert parse_budget(err.rsplit("is ", 1)[1].strip()) > 20  # a budget to type
    cost = CostModel()  # the same timings for the refusal and the budget it names
    with pytest.raises(ConfigError) as e:
        plan_budget(load_study(path), 20, "20s", cost=cost)
    smallest = str(e.value).rsplit(" ", 1)[1]
    plan_budget(load_study(path), parse_budget(smallest), smallest, cost=cost)  # passes the check
    assert not (tmp_path / "no-data-here").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("text", ["soon", "-5m", "0s"])
def test_a_budget_that_is_not_a_duration_is_one_line(text):
    with pytest.raises(ConfigError, match="90s, 20m or 1h"):
        parse_budget(text)


def test_workers_share_the_budget_in_waves_and_a_resumed_study_keeps_its_shares(tmp_path):
    spec = load_study(_write(tmp_path))
    cost = CostModel()  # both plans on the same timings
    one, two = plan_budget(spec, 600, "10m", workers=1, cost=cost), plan_budget(spec, 600, "10m", workers=2, cost=cost)
    # two runs one after the other get about half the wall each; side by side, about all of it
    assert two.share_s["b32"] > 1.9 * one.share_s["b32"]
    assert two.epoch_s["b32"] == pytest.approx(2 * one.epoch_s["b32"])  # half the cores each
    one.save(tmp_path)
    again = BudgetPlan.load(tmp_path)
    assert again.share_s == one.share_s and again.annealed == one.annealed
    assert again.overrides("b32")[0] == f"train.time_budget={one.share_s['b32']:.1f}"
    # 4 s each: 1000 epochs cannot fit, so the constant rate becomes cosine over the share
    short = plan_budget(spec, 36, "36s")
    assert short.overrides("b32") == [f"train.time_budget={short.share_s['b32']:.1f}", "schedule.name=cosine"]


SWEEP = {"base": {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [16]}, "schedule": {"name": "none"},
                  "train": {"epochs": 8, "batch_size": 128}},
         "strategy": "tpe", "trials": 500, "pruner": "successive-halving",
         "space": {"model.hidden.0": [4, 8, 16, 32, 64], "optim.lr": {"low": 0.005, "high": 0.5, "log": True}}}


def _sweep_study(tmp_path, retrain=None):
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(SWEEP))
    raw = {"title": "searched", "sweep": "search.yaml", **({"retrain": retrain} if retrain else {})}
    return _write(tmp_path, raw)


def test_a_budgeted_sweep_study_stops_its_sweep_in_time_and_reports_its_front(tmp_path):
    budget = 30.0  # seconds: 18 kept for the sweep's start and the report, about 10 for the trials
    t = time.perf_counter()
    out = run_study(str(_sweep_study(tmp_path)), tmp_path / "studies", budget="30s", log=lambda m: None)
    wall = time.perf_counter() - t
    assert wall <= 1.15 * budget, wall
    folder = tmp_path / "studies" / "budgeted-30s"
    plan = BudgetPlan.load(folder)
    assert 0 < plan.sweep_spent_s <= plan.sweep_s + 2.0 and not plan.share_s
    md = (folder / "report.md").read_text()
    assert f"The sweep had {plan.sweep_s:.0f} s of wall time" in md and "Pareto front (" in md
    assert out["rows"] == []  # nothing retrained: the study is its sweep
    # Rerun: the sweep's time is spent, so nothing more trains; the report is written again.
    t = time.perf_counter()
    run_study(str(_sweep_study(tmp_path)), tmp_path / "studies", budget="30s", log=lambda m: None)
    assert time.perf_counter() - t < 15


def test_a_sweep_study_keeps_a_quarter_of_its_budget_for_retraining_its_best(tmp_path):
    spec = load_study(_sweep_study(tmp_path, {"top": 2, "set": {"train.epochs": 100000}}))
    cost = CostModel()  # the same timings for the refusal and the budget it names
    plan = plan_budget(spec, 600, "10m", cost=cost)
    assert set(plan.share_s) == {"top1", "top2"} and plan.share_s["top1"] == plan.share_s["top2"]
    usable = 600 * 0.95 - 18  # less the margin, the report and the sweep's start
    assert abs(plan.sweep_s - 0.75 * usable) < 1e-6
    assert abs(2 * (plan.share_s["top1"] + 8) - 0.25 * usable) < 1e-6  # one after another, each started
    assert plan.overrides("top1") == [f"train.time_budget={plan.share_s['top1']:.1f}", "schedule.name=cosine"]
    with pytest.raises(ConfigError, match="too small for study") as e:
        plan_budget(spec, 20, "20s", cost=cost)
    smallest = str(e.value).rsplit(" ", 1)[1]
    plan_budget(spec, parse_budget(smallest), smallest, cost=cost)  # the budget it names passes


@pytest.mark.parametrize("name", ["004-perceptron", "004-grid-384", "004-grid-2-layers", "004-grid-3-layers",
                                  "004-hierarchical", "004-resnet18-transfer"])
def test_the_004_studies_run_on_mnist_and_fashion_mnist_is_one_set_away(name, tmp_path):
    lines = []
    run_study(name, tmp_path, dry_run=True, log=lines.append)
    assert "  data: mnist" in lines
    lines.clear()
    run_study(name, tmp_path, dry_run=True, overrides=("data.name=fashion-mnist",), log=lines.append)
    assert "  data: fashion-mnist" in lines
