"""A study answered within a wall budget: equal shares of training time, each run keeping its own
schedule, the split in results.json, a budget too small refused before any data is read."""
import json

import pytest
import yaml

import imgclf
from imgclf.cli.main import main
from imgclf.config.load import from_dict
from imgclf.core.errors import ConfigError
from imgclf.estimate.run import CostModel
from imgclf.studies import load_study, run_study
from imgclf.studies.spec import find_study
from imgclf.studies.wall_budget import BudgetPlan, parse_budget, plan_budget
from imgclf.sweeps.spec import load_sweep

# The report's constant rate at two batch sizes, far more epochs than the budget buys.
STUDY = {"title": "budgeted", "set": {"data.name": "digits", "model.name": "mlp", "model.hidden": [32],
                                      "schedule.name": "none", "train.epochs": 1000, "optim.lr": 0.05},
         "runs": {"b32": {"train.batch_size": 32}, "b128": {"train.batch_size": 128}}}


def _write(tmp_path, raw=STUDY):
    p = tmp_path / "budgeted.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_a_budgeted_study_gives_every_run_an_equal_share_and_keeps_each_schedule(tmp_path):
    # 36 s: 26 kept for starting two runs and the report, about 4 s of training each. What is checked
    # is what the plan decided and each run recorded, not the wall time (a busy machine stretches it).
    out = run_study(str(_write(tmp_path)), tmp_path / "studies", budget="36s", log=lambda m: None)
    folder = tmp_path / "studies" / "budgeted-36s"  # the budget names the results
    plan = BudgetPlan.load(folder)
    assert plan.share_s["b32"] == plan.share_s["b128"] > 0  # equal time, not equal epochs
    records = json.loads((folder / "results.json").read_text())["runs"]
    assert {r["run"] for r in records} == {"b32", "b128"}
    for r in records:
        run = imgclf.load_run(folder / "runs" / r["run"])
        assert r["budget_share_s"] == plan.share_s[r["run"]]
        cfg, m = run.config, run.metrics
        assert cfg.train.time_budget == pytest.approx(plan.share_s[r["run"]], abs=0.05)  # its share, to 0.1 s
        assert cfg.schedule.name == "none" and cfg.optim.lr == 0.05  # the report's constant rate, kept
        assert "time budget" in m["stop_reason"] and 1 <= m["epochs_run"] == r["epochs"] < 1000
        assert list(run.history["epoch"]) == list(range(1, r["epochs"] + 1))
        assert set(run.history["lr"]) == {0.05}  # constant to the end of the share
    md = (folder / "report.md").read_text()
    assert "Budget 36s" in md and "keeps its own schedule" in md
    assert md.startswith("# What 36s buys on ") and "not the report's answer" in md
    assert out["rows"] and plan.spent_s > 0  # the study's wall time is recorded, for a resumed study


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
    assert again.share_s == one.share_s
    # 4 s each: 1000 epochs cannot fit, and the constant rate stays constant: only the share is set
    short = plan_budget(spec, 36, "36s")
    assert short.overrides("b32") == [f"train.time_budget={short.share_s['b32']:.1f}"]


SWEEP = {"base": {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [16]}, "schedule": {"name": "none"},
                  "train": {"epochs": 8, "batch_size": 128}},
         "strategy": "tpe", "trials": 500, "pruner": "successive-halving",
         "space": {"model.hidden.0": [4, 8, 16, 32, 64], "optim.lr": {"low": 0.005, "high": 0.5, "log": True}}}


def _sweep_study(tmp_path, retrain=None):
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(SWEEP))
    raw = {"title": "searched", "sweep": "search.yaml", **({"retrain": retrain} if retrain else {})}
    return _write(tmp_path, raw)


def _finished_trials(folder):
    """(number, state) of each trial that ended, in the sweep of a study's folder."""
    from imgclf.sweeps.analysis import load_sweep_study

    _, study, _ = load_sweep_study(folder / "sweep")
    return [(t.number, t.state.name) for t in study.trials if t.state.is_finished()]


def test_a_budgeted_sweep_study_gives_its_sweep_the_budget_and_reports_its_front(tmp_path):
    # 30 s: 18 kept for the sweep's start and the report, about 10 for the trials
    out = run_study(str(_sweep_study(tmp_path)), tmp_path / "studies", budget="30s", log=lambda m: None)
    folder = tmp_path / "studies" / "budgeted-30s"
    plan = BudgetPlan.load(folder)
    assert plan.sweep_s == pytest.approx(30 * 0.95 - 18) and plan.sweep_spent_s > 0 and not plan.share_s
    trials = _finished_trials(folder)
    assert 0 < len(trials) < 500  # the wall budget, not the trial budget, ended the sweep
    md = (folder / "report.md").read_text()
    assert f"The sweep had {plan.sweep_s:.0f} s of wall time" in md and "Pareto front (" in md
    assert out["rows"] == []  # nothing retrained: the study is its sweep
    # Rerun: the sweep's time is spent, so no trial more ends; the report is written again.
    run_study(str(_sweep_study(tmp_path)), tmp_path / "studies", budget="30s", log=lambda m: None)
    assert _finished_trials(folder) == trials


def test_a_sweep_study_keeps_a_quarter_of_its_budget_for_retraining_its_best(tmp_path):
    spec = load_study(_sweep_study(tmp_path, {"top": 2, "set": {"train.epochs": 100000}}))
    cost = CostModel()  # the same timings for the refusal and the budget it names
    plan = plan_budget(spec, 600, "10m", cost=cost)
    assert set(plan.share_s) == {"top1", "top2"} and plan.share_s["top1"] == plan.share_s["top2"]
    usable = 600 * 0.95 - 18  # less the margin, the report and the sweep's start
    assert abs(plan.sweep_s - 0.75 * usable) < 1e-6
    assert abs(2 * (plan.share_s["top1"] + 8) - 0.25 * usable) < 1e-6  # one after another, each started
    assert plan.overrides("top1") == [f"train.time_budget={plan.share_s['top1']:.1f}"]
    with pytest.raises(ConfigError, match="too small for study") as e:
        plan_budget(spec, 20, "20s", cost=cost)
    smallest = str(e.value).rsplit(" ", 1)[1]
    plan_budget(spec, parse_budget(smallest), smallest, cost=cost)  # the budget it names passes


@pytest.mark.parametrize("name", ["004-perceptron", "004-grid-384", "004-grid-2-layers", "004-grid-3-layers",
                                  "004-hierarchical", "004-resnet18-transfer"])
def test_the_004_studies_run_on_mnist_and_fashion_mnist_is_one_set_away(name):
    def data_names(spec):  # what every run and the sweep's base train on, the study's settings applied
        names = {spec.config(r).data.name for r in spec.runs}
        if spec.sweep is not None:
            names.add(from_dict(load_sweep(spec.sweep).base, spec.common).data.name)
        return names

    assert data_names(load_study(find_study(name))) == {"mnist"}
    assert data_names(load_study(find_study(name), extra=("data.name=fashion-mnist",))) == {"fashion-mnist"}
