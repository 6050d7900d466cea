"""A run's cost: steps of its epochs times one step's seconds plus a tenth, each step timed once
per cost model, a data set of unknown size assumed, a time budget a cap."""
import json
import math
from pathlib import Path

import pytest

from imgclf.config.load import load_config
from imgclf.estimate.run import OVERHEAD, UNKNOWN_IMAGES, CostModel, train_images, words

STEP = 0.01  # seconds per step, a measurement the tests choose
CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _cfg(*sets):
    return load_config(None, ["data.name=digits", "model.name=mlp", "model.hidden=[16]", "data.val_fraction=0.1",
                              "train.batch_size=128", *sets])


def test_a_known_step_time_gives_steps_times_seconds_plus_a_tenth():
    cost = CostModel(step_s=STEP)
    # digits: 1797 images, 1617 after a tenth for validation, 13 batches of 128 an epoch
    assert train_images(_cfg()) == 1617
    assert cost.run_seconds(_cfg("train.epochs=3")) == pytest.approx(3 * 13 * STEP * OVERHEAD)
    assert cost.run_seconds(_cfg("train.epochs=3", "data.max_train=256")) == pytest.approx(3 * 2 * STEP * OVERHEAD)
    assert cost.measured == {}  # nothing was timed


def test_a_time_budget_caps_the_estimate():
    cost = CostModel(step_s=STEP)
    assert cost.run_seconds(_cfg("train.epochs=1000", "train.time_budget=2")) == 2
    assert cost.run_seconds(_cfg("train.epochs=1", "train.time_budget=2")) == pytest.approx(13 * STEP * OVERHEAD)


def test_a_data_set_whose_size_only_its_files_tell_is_assumed_and_capped():
    cost = CostModel(step_s=STEP)
    folder = load_config(None, ["data.name=folder", "data.path=/no/such/folder", "data.val_fraction=0.1",
                                "model.name=mlp", "model.hidden=[16]", "train.batch_size=100", "train.epochs=2"])
    assert train_images(folder) == int(UNKNOWN_IMAGES * 0.9)
    assert cost.run_seconds(folder) == pytest.approx(2 * math.ceil(UNKNOWN_IMAGES * 0.9 / 100) * STEP * OVERHEAD)
    capped = load_config(None, ["data.name=folder", "data.path=/no/such/folder", "data.max_train=300",
                                "model.name=mlp", "model.hidden=[16]", "train.batch_size=100", "train.epochs=2"])
    assert cost.run_seconds(capped) == pytest.approx(2 * 3 * STEP * OVERHEAD)
    # timed too: its model is built on the shape the config gives, with no file read
    assert CostModel().run_seconds(capped) > 0


def test_a_linear_probe_costs_one_pass_whatever_its_epochs():
    cost = CostModel(step_s=STEP)
    cfg = load_config(CONFIGS / "transfer" / "fashion-mnist-resnet18-linear-probe.yaml", ["data.val_fraction=0.1"])
    one_pass = math.ceil(54_000 / cfg.train.batch_size) * STEP * OVERHEAD  # fashion-mnist: 60,000 less a tenth
    assert cfg.train.epochs > 1 and cost.run_seconds(cfg) == pytest.approx(one_pass)


def test_a_measured_step_is_kept_per_model_and_batch_and_scales_linearly():
    cost = CostModel()
    one = cost.run_seconds(_cfg("train.epochs=1"))
    assert one > 0
    assert cost.run_seconds(_cfg("train.epochs=10")) == pytest.approx(10 * one)  # timed once, recalled
    half = cost.run_seconds(_cfg("train.epochs=1", "data.max_train=832"))  # 13 batches become 7 (832 = 6.5 x 128)
    assert half == pytest.approx(7 / 13 * one)
    assert cost.run_seconds(_cfg("train.epochs=1", "optim.lr=0.5")) == one  # the rate does not change a step
    assert len(cost.measured) == 1
    cost.run_seconds(_cfg("train.batch_size=32"))
    cost.run_seconds(_cfg("model.hidden=[32]"))
    assert len(cost.measured) == 3
    assert all(json.loads(k)[0] == "run" for k in cost.measured)  # one key scheme: the kind first


def test_two_cost_models_share_no_measurement():
    a, b = CostModel(), CostModel()
    a.run_seconds(_cfg())
    assert len(a.measured) == 1 and b.measured == {}
    b.run_seconds(_cfg())
    assert a.measured.keys() == b.measured.keys() and a.measured is not b.measured
    a.measured[next(iter(a.measured))] = 123.0  # a timing taken on a busy machine stays in its own model
    assert a.step_seconds(_cfg()) == 123.0 and b.step_seconds(_cfg()) != 123.0


def test_a_duration_in_words():
    assert words(30) == "30 s" and words(600) == "10 min" and words(7200) == "2.0 h"
