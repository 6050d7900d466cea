"""A sweep under a wall budget: no trial starts past it, the one running then is stopped and told
pruned with the budget as its reason; every sweep's front of accuracy against parameters."""
import yaml

from imgclf.reporting.sweep_view import present_sweep
from imgclf.sweeps.analysis import load_sweep_study, pareto_front, trials_frame
from imgclf.sweeps.runner import run_sweep
from imgclf.sweeps.spec import BUDGET_STOP

BASE = {"data": {"name": "digits"}, "model": {"name": "mlp", "hidden": [16]},
        "train": {"epochs": 2, "batch_size": 128}, "schedule": {"name": "none"}}


def _write(tmp_path, name, raw):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(raw))
    return p


def test_a_wall_budget_stops_the_running_trial_and_starts_no_other(tmp_path):
    # Trials far longer than the budget: the first is cut at the deadline, and no second starts.
    raw = {"base": {**BASE, "train": {"epochs": 100000, "batch_size": 128}}, "strategy": "tpe", "trials": 50,
           "space": {"optim.lr": {"low": 0.01, "high": 0.5, "log": True}}}
    run_sweep(_write(tmp_path, "long", raw), echo=False, budget_s=3.0)
    spec, study, _ = load_sweep_study("long")
    df = trials_frame(study, spec)
    assert list(df["status"]) == ["pruned"], df
    reason = df["reason"][0]
    assert reason.startswith(BUDGET_STOP + " during epoch ")
    assert int(reason.rsplit(" ", 1)[1]) == df["epochs"][0] + 1  # the finished epochs are kept
    assert study.user_attrs["deadline"] is not None  # the sweep recorded its deadline, for every worker


def test_no_budget_on_a_rerun_lifts_the_deadline(tmp_path):
    path = _write(tmp_path, "grid", {"base": BASE, "space": {"model.hidden.0": [4, 16]}})
    run_sweep(path, echo=False, budget_s=0.0, batched=False)  # spent at once: no trial starts
    spec, study, _ = load_sweep_study("grid")
    assert (trials_frame(study, spec)["status"] == "complete").sum() < 2
    run_sweep(path, echo=False, batched=False)
    spec, study, _ = load_sweep_study("grid")
    assert study.user_attrs["deadline"] is None
    assert set(trials_frame(study, spec)["status"]) == {"complete"}


def test_a_sweep_of_one_objective_has_the_front_of_accuracy_and_parameters(tmp_path):
    raw = {"base": BASE, "space": {"model.hidden.0": [4, 16, 64], "optim.lr": [0.05, 0.5]}}
    run_sweep(_write(tmp_path, "one", raw), echo=False)
    spec, study, folder = load_sweep_study("one")
    df = trials_frame(study, spec)
    done = df[df["status"] == "complete"]
    assert len(done) == 6 and done["params"].nunique() == 3 and done["train_seconds"].gt(0).all()
    front = pareto_front(df, study, spec)

    def beats(b, a):  # b at least as good on both, better on one
        return (b["val_acc"] >= a["val_acc"] and b["params"] <= a["params"]
                and (b["val_acc"] > a["val_acc"] or b["params"] < a["params"]))

    rows = [r for _, r in done.iterrows()]
    kept = set(front["trial"])
    assert front.iloc[0]["val_acc"] == done["val_acc"].max()  # the best is always on it
    for _, f in front.iterrows():
        assert not any(beats(r, f) for r in rows)
    for r in rows:
        assert r["trial"] in kept or any(beats(o, r) for o in rows)
    names = [f.path.name for f in present_sweep(study, spec, folder / "figures").figures]
    assert "pareto.png" in names


def test_a_rerun_with_time_left_runs_again_what_the_budget_cut(tmp_path):
    # A grid point stopped by the clock is no result: the next run queues it again, once.
    base = {**BASE, "train": {"epochs": 20, "batch_size": 16}}
    path = _write(tmp_path, "cut", {"base": base, "space": {"model.hidden.0": [4, 16]}})
    run_sweep(path, echo=False, budget_s=0.2, batched=False)
    spec, study, _ = load_sweep_study("cut")
    first = trials_frame(study, spec)
    assert list(first["status"]) == ["pruned", "waiting"], first  # the grid queued both at once
    assert first["reason"][0].startswith(BUDGET_STOP)
    run_sweep(path, echo=False, batched=False)
    spec, study, _ = load_sweep_study("cut")
    df = trials_frame(study, spec)
    assert list(df["status"]) == ["complete", "complete"], df
    assert sorted(df["model.hidden.0"]) == [4, 16]
    assert first["trial"][0] not in set(df["trial"])  # the cut trial gave way to its retry, queued once
    run_sweep(path, echo=False, batched=False)  # nothing left: nothing is queued twice
    assert len(load_sweep_study("cut")[1].trials) == len(study.trials)
