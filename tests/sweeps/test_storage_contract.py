"""The contract every sweep storage meets (as Optuna's own storage tests do for its backends):
the journal file and PostgreSQL pass the same tests. No training: trials are told values directly."""
import socket
import threading
import uuid

import pytest
from optuna.trial import TrialState

from imgclf.sweeps import queue
from imgclf.sweeps.analysis import trials_frame
from imgclf.sweeps.space import decode_point, suggest
from imgclf.sweeps.spec import parse_sweep
from imgclf.sweeps.store import SweepError, open_storage
from imgclf.sweeps.workers import _claim, reclaim_stale

BASE = {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1}, "schedule": {"name": "none"}}
GRID = {"optim.lr": [0.01, 0.03, 0.1, 0.3], "optim.momentum": [0.0, 0.5, 0.9]}


@pytest.fixture(params=["journal", "postgresql"])
def where(request, tmp_path):
    """(sweep folder, storage URL or None) of one backend, and a study name no other test uses."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    return tmp_path, url, f"contract-{uuid.uuid4().hex[:8]}"


def _grid(space=GRID):
    return parse_sweep({"base": BASE, "space": space})


def test_a_created_queue_is_joined_not_enqueued_again(where):
    folder, url, name = where
    study, _ = queue.open_study(_grid(), name, folder, url)
    assert len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,))) == 12
    joined, _ = queue.open_study(_grid(), name, folder, url)
    assert len(joined.get_trials(deepcopy=False)) == 12  # the second worker found the queue made
    assert joined.user_attrs["sweep"]["space"] == {k: {"choices": v} for k, v in GRID.items()}


def test_a_different_space_under_the_same_name_is_refused(where):
    folder, url, name = where
    queue.open_study(_grid(), name, folder, url)
    with pytest.raises(SweepError, match="different space"):
        queue.open_study(_grid({"optim.lr": [0.5]}), name, folder, url)


def test_concurrent_workers_take_each_point_exactly_once(where):
    folder, url, name = where
    spec = _grid()
    queue.open_study(spec, name, folder, url)
    taken: list[list[tuple]] = [[], [], []]
    errors: list[BaseException] = []

    def work(i):
        try:  # each worker opens its own storage, as a separate process would
            study, storage = queue.open_study(spec, name, folder, url)
            while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                group, _, _ = _claim(study, storage, spec, queued=True, batched=False, budget=None)
                for t in group:
                    point = suggest(t, spec.space)  # what a worker reads before it trains
                    taken[i].append((point["optim.lr"], point["optim.momentum"]))
                    study.tell(t, point["optim.lr"])
        except BaseException as e:  # surfaced below: a thread's assertion would be lost otherwise
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    everything = [p for w in taken for p in w]
    assert len(everything) == 12 and len(set(everything)) == 12  # none lost, none twice
    study, _ = queue.open_study(spec, name, folder, url)
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert sorted(t.value for t in done) == sorted(lr for lr, _ in everything)


def test_a_dead_workers_trial_is_queued_again_with_its_point(where):
    folder, url, name = where
    spec = _grid({"optim.lr": [0.01, 0.1]})
    study, storage = queue.open_study(spec, name, folder, url)
    t = study.ask()  # killed before it read its point: only the queue's fixed params know it
    t.set_user_attr("worker", f"{socket.gethostname()}:999999999")  # a pid that cannot be alive
    t.set_user_attr("round", 0)
    assert reclaim_stale(study, storage, log=lambda m: None, stale_after_s=3600) == 1
    trials = study.get_trials(deepcopy=False)
    failed = [x for x in trials if x.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["interrupted"] is True
    waiting = [x for x in trials if x.state == TrialState.WAITING]
    assert sorted(decode_point(spec.space, x.system_attrs["fixed_params"])["optim.lr"] for x in waiting) == [0.01, 0.1]  # the lost point is back in the queue
    assert reclaim_stale(study, storage, log=lambda m: None, stale_after_s=3600) == 0  # and only once


def test_results_read_back_as_written(where):
    folder, url, name = where
    spec = _grid({"optim.lr": [0.01, 0.1, 0.3]})
    study, storage = queue.open_study(spec, name, folder, url)
    for value in (0.5, 0.75):
        t = study.ask()
        suggest(t, spec.space)
        t.set_user_attr("history", [{"epoch": 1, "val_acc": value}])
        t.set_user_attr("seconds", 2.5)
        study.tell(t, value)
    df = trials_frame(queue.open_study(spec, name, folder, url)[0], spec)
    assert sorted(df["status"]) == ["complete", "complete", "waiting"]
    assert sorted(df[df["status"] == "complete"]["val_acc"]) == [0.5, 0.75]
    assert set(df["optim.lr"]) == {0.01, 0.1, 0.3}


def test_a_damaged_store_is_one_line(tmp_path):
    """Each backend refuses a store it cannot use in one line that names it (journal: a damaged file)."""
    queue.open_study(_grid(), "a", tmp_path, None)
    lines = (tmp_path / "journal.log").read_text().splitlines()
    (tmp_path / "journal.log").write_text("\n".join(lines[:1] + ["{not json"] + lines[1:]) + "\n")
    with pytest.raises(SweepError) as e:
        open_storage(tmp_path)
    assert "journal" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(SweepError) as e:
        open_storage(tmp_path, "postgresql+psycopg2://nobody@127.0.0.1:1/none")
    assert "cannot open storage" in str(e.value) and "\n" not in str(e.value)
