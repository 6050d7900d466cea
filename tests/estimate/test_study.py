"""A study's cost: its runs, its sweep and the retraining of the sweep's best, one after another,
timed in the cost model the caller passes."""
import json

import pytest
import yaml

from imgclf.estimate.run import OVERHEAD, CostModel
from imgclf.estimate.study import study_seconds
from imgclf.studies import load_study

STEP = 0.01  # seconds per step, a measurement the tests choose
EPOCH = 13 * STEP * OVERHEAD  # digits: 1617 training images, 13 batches of 128
SET = {"data.name": "digits", "data.val_fraction": 0.1, "model.name": "mlp", "model.hidden": [16],
       "train.batch_size": 128}


def _study(tmp_path, raw: dict):
    p = tmp_path / "costed.yaml"
    p.write_text(yaml.safe_dump({"title": "costed", **raw}))
    return load_study(p)


def test_a_study_of_runs_costs_their_sum(tmp_path):
    spec = _study(tmp_path, {"set": SET, "runs": {"short": {"train.epochs": 2}, "long": {"train.epochs": 5}}})
    assert study_seconds(spec, CostModel(step_s=STEP)) == pytest.approx(7 * EPOCH)


def test_a_sweep_study_costs_its_trials_and_the_retraining_of_its_best(tmp_path):
    base = {"data": {"name": "digits", "val_fraction": 0.1}, "model": {"name": "mlp", "hidden": [16, 16]},
            "train": {"epochs": 4, "batch_size": 128}}
    (tmp_path / "search.yaml").write_text(yaml.safe_dump(
        {"base": base, "strategy": "tpe", "trials": 6, "space": {"optim.lr": {"low": 0.01, "high": 0.5, "log": True}}}))
    spec = _study(tmp_path, {"sweep": "search.yaml", "retrain": {"top": 2, "set": {"train.epochs": 3}}})
    assert study_seconds(spec, CostModel(step_s=STEP)) == pytest.approx(6 * 4 * EPOCH + 2 * 3 * EPOCH)


def test_runs_of_one_model_and_batch_are_timed_once_in_the_callers_cost_model(tmp_path):
    spec = _study(tmp_path, {"set": SET, "runs": {"a": {"optim.lr": 0.1, "train.epochs": 1},
                                                  "b": {"optim.lr": 0.01, "train.epochs": 3}}})
    cost = CostModel()
    total = study_seconds(spec, cost)
    assert len(cost.measured) == 1 and [json.loads(k)[0] for k in cost.measured] == ["run"]
    assert total == pytest.approx(4 * cost.run_seconds(spec.config("a")))  # 1 + 3 epochs of the one step
    assert study_seconds(spec, cost) == total  # recalled, not timed again
