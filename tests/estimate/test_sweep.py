"""A sweep's cost: a grid as its workers train it (a cohort of one-layer MLPs as one stacked
computation, configurations differing only in epochs as their longest), other strategies trial by
trial; every step timed in the cost model the caller passes."""
import json
import math

import pytest

from imgclf.estimate.run import OVERHEAD, CostModel
from imgclf.estimate.sweep import cohort_seconds, sweep_seconds
from imgclf.sweeps.spec import parse_sweep

STEP = 0.01  # seconds per step, a measurement the tests choose
EPOCH_STEPS = math.ceil(54_000 / 256)  # fashion-mnist less a tenth for validation, batches of 256


def _sweep(space: dict, model: dict, strategy: str = "grid", **options):
    base = {"data": {"name": "fashion-mnist", "val_fraction": 0.1}, "model": model, "schedule": {"name": "none"},
            "train": {"epochs": 10, "batch_size": 256}}
    return parse_sweep({"base": base, "strategy": strategy, "objective": "val_acc", "space": space, **options})


ONE_LAYER = {"name": "mlp", "hidden": [16]}


def test_a_cohort_costs_its_longest_member_with_a_known_step():
    cost = CostModel(step_s=STEP)
    run = 10 * EPOCH_STEPS * STEP * OVERHEAD
    assert sweep_seconds(_sweep({"optim.lr": [0.1, 0.01]}, ONE_LAYER), cost) == pytest.approx(run)
    assert sweep_seconds(_sweep({"optim.lr": [0.1, 0.01], "train.epochs": [5, 10]}, ONE_LAYER), cost) == \
        pytest.approx(run)
    assert sweep_seconds(_sweep({"optim.lr": [0.1, 0.01], "train.epochs": [20]}, ONE_LAYER), cost) == \
        pytest.approx(2 * run)


def test_points_that_train_one_by_one_add_up():
    cost = CostModel(step_s=STEP)
    two_layers = _sweep({"optim.lr": [0.1, 0.01, 0.001]}, {"name": "mlp", "hidden": [16, 16]})
    assert sweep_seconds(two_layers, cost) == pytest.approx(3 * 10 * EPOCH_STEPS * STEP * OVERHEAD)
    # a strategy that chooses its points as it goes: its trials, each the base
    tpe = _sweep({"optim.lr": {"low": 0.001, "high": 0.1, "log": True}}, ONE_LAYER, "tpe", trials=7)
    assert sweep_seconds(tpe, cost) == pytest.approx(7 * 10 * EPOCH_STEPS * STEP * OVERHEAD)


def test_a_measured_cohort_step_is_timed_once_in_its_own_cost_model():
    cost = CostModel()
    cohort = sweep_seconds(_sweep({"optim.lr": [0.1, 0.01], "train.epochs": [10]}, ONE_LAYER), cost)
    assert cohort > 0
    assert [json.loads(k)[0] for k in cost.measured] == ["cohort"]
    # the same cohort at 20 epochs: the step recalled, the steps doubled
    assert sweep_seconds(_sweep({"optim.lr": [0.1, 0.01], "train.epochs": [20]}, ONE_LAYER), cost) == \
        pytest.approx(2 * cohort)
    assert len(cost.measured) == 1
    # two hidden layers train one by one: the sum of the runs, each timed as a run
    two = _sweep({"optim.lr": [0.1, 0.01]}, {"name": "mlp", "hidden": [16, 16]})
    assert sweep_seconds(two, cost) == pytest.approx(2 * cost.run_seconds(two.config_for({"optim.lr": 0.1})))
    assert sorted(json.loads(k)[0] for k in cost.measured) == ["cohort", "run"]
    other = CostModel()
    assert other.measured == {}  # nothing timed by one is seen by another


def test_cohort_seconds_scales_with_the_longest_members_epochs():
    cost = CostModel(step_s=STEP)
    sweep = _sweep({"train.epochs": [3, 7]}, ONE_LAYER)
    cfgs = [sweep.config_for({"train.epochs": e}) for e in (3, 7)]
    assert cohort_seconds(cfgs, cost) == pytest.approx(7 * EPOCH_STEPS * STEP * OVERHEAD)
