"""The sweep internals on their own: strategies return points and never enqueue, the queue
enqueues them (cohort members adjacent), cohorts group what can train together, the store opens."""
import json

import optuna
import pytest
from optuna.trial import TrialState

from imgclf.config.load import load_config
from imgclf.sweeps import queue, strategies
from imgclf.sweeps.cohorts import cohort_key, shared_models, sibling_key
from imgclf.sweeps.spec import parse_sweep
from imgclf.sweeps.store import SweepError, open_storage, redact

BASE = {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 1, "batch_size": 128},
        "schedule": {"name": "none"}}
PLAIN = ["model.name=mlp", "schedule.name=none"]  # an epoch-free run: stackable


def _spec(strategy="hierarchical", **opts):
    return parse_sweep({"base": BASE, "space": {"optim.lr": {"low": 0.01, "high": 0.5, "log": True},
                                               "optim.momentum": {"low": 0.0, "high": 0.9}},
                        "strategy": strategy, **opts})


def _finish_all(study, value=lambda p: float(len(json.dumps(p)))):
    """Tell every waiting trial a value (no training): the objective is read off its point."""
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        t = study.ask()
        study.tell(t, value(t.params))


def test_a_finished_last_round_asks_for_nothing_and_enqueues_nothing(tmp_path):
    spec = _spec(points=3, rounds=1, top_k=1)
    study, _ = queue.open_study(spec, "h", tmp_path, None)
    first = len(study.get_trials(deepcopy=False))
    assert first == 3 * 3  # the coarse grid: 3 rates x 3 momenta, enqueued when the study is created
    assert queue.advance(study, spec, log=lambda m: None) is False  # trials still waiting: no new round
    _finish_all(study)
    assert strategies.strategy("hierarchical").next_round(study, spec) == (1, [])  # one round asked for: done
    assert not queue.advance(study, spec, log=lambda m: None) and len(study.get_trials(deepcopy=False)) == first


def test_grid_queues_every_point_up_front_and_random_nothing():
    grid, rnd = strategies.strategy("grid"), strategies.strategy("random")
    spec = parse_sweep({"base": BASE, "space": {"optim.lr": [0.1, 0.2], "optim.momentum": [0.0, 0.9]}})
    assert grid.upfront and grid.queued and len(grid.first_points(spec)) == 4
    assert not rnd.upfront and rnd.first_points(spec) is None and rnd.next_round(None, spec) == (0, [])
    assert isinstance(rnd.sampler(spec), optuna.samplers.RandomSampler)


def test_cohorts_group_only_what_can_train_together():
    a = load_config(None, PLAIN + ["model.hidden=[8]", "optim.lr=0.1", "train.epochs=2"])
    b = load_config(None, PLAIN + ["model.hidden=[32]", "optim.lr=0.3", "train.epochs=4"])
    assert cohort_key(a) == cohort_key(b) is not None  # width, rate and epochs may differ
    assert cohort_key(load_config(None, PLAIN + ["model.hidden=[8, 8]"])) is None  # two hidden layers
    assert cohort_key(load_config(None, ["model.name=cnn", "schedule.name=none"])) is None  # not registered as stackable
    c = load_config(None, PLAIN + ["model.hidden=[8]", "optim.lr=0.1", "train.epochs=9"])
    assert sibling_key(a) == sibling_key(c) != sibling_key(b)
    models, which = shared_models([a, c, b])
    assert len(models) == 2 and which == [0, 0, 1] and models[0].train.epochs == 9  # trained to the longest


def test_the_journal_store_opens_and_a_url_is_redacted(tmp_path):
    storage = open_storage(tmp_path)
    sid = storage.create_new_study(directions=[optuna.study.StudyDirection.MAXIMIZE], study_name="x")
    assert storage.get_study_id_from_name("x") == sid and (tmp_path / "journal.log").exists()
    assert "secret" not in redact("postgresql://me:secret@host/db")


def test_joining_with_another_space_is_refused(tmp_path):
    queue.open_study(parse_sweep({"base": BASE, "space": {"optim.lr": [0.1]}}),
                     "j", tmp_path, None)
    with pytest.raises(SweepError, match="different space"):
        queue.open_study(parse_sweep({"base": BASE, "space": {"optim.lr": [0.2]}}), "j", tmp_path, None)
