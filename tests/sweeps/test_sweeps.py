"""Sweeps on the bundled digits with tiny MLPs: each point once, failures kept, resume, workers, analysis."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import imgclf
from imgclf.cli.main import main
from imgclf.core.errors import ConfigError
from imgclf.sweeps.analysis import load_sweep_study, ranked, sweep_results, trial_label, trials_frame
from imgclf.sweeps.runner import run_sweep
from imgclf.sweeps.space import grid_points, parse_space, to_overrides
from imgclf.sweeps.spec import parse_sweep

BASE = {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 2, "batch_size": 128}}


def write_sweep(tmp_path, space, name="s", **opts):
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump({"base": BASE, "space": space, **opts}))
    return p


def statuses(name):
    df = sweep_results(name)
    return df, df["status"].value_counts().to_dict()


def test_space_conditions_and_list_assembly():
    space = parse_space({"model.hidden.1": {"choices": [8, 4], "when": {"layers": 2}}, "layers": [1, 2],
                         "model.hidden.0": [16], "optim.lr": {"low": 1e-3, "high": 1e-1, "log": True}})
    assert [p.name for p in space][-1] == "model.hidden.1"  # conditions come after what they test
    with pytest.raises(ConfigError, match="grid needs"):
        grid_points(space)
    pts = grid_points([p for p in space if p.name != "optim.lr"])
    assert len(pts) == 3 and {"layers": 1, "model.hidden.0": 16} in pts
    assert to_overrides({"layers": 2, "model.hidden.0": 16, "model.hidden.1": 4, "optim.lr": 0.1}) == {
        "model": {"hidden": [16, 4]}, "optim": {"lr": 0.1}}


@pytest.mark.parametrize("raw, words", [
    ({"space": {"optim.lr": [0.1]}}, "base:"),
    ({"base": BASE}, "space"),
    ({"base": BASE, "space": {"optim.lr": []}}, "empty"),
    ({"base": BASE, "space": {"optim.lr": {"low": 1, "high": 0.1}}}, "below high"),
    ({"base": BASE, "space": {"optim.lr": {"lo": 1}}}, "unknown field"),
    ({"base": BASE, "space": {"optim.lr": ["fast"]}}, "optim.lr"),
    ({"base": BASE, "space": {"optim.lrr": [0.1]}}, "lrr"),
    ({"base": BASE, "space": {"optim.lr": [0.1]}, "strategy": "bayes"}, "sweep.strategy"),
    ({"base": BASE, "space": {"optim.lr": [0.1]}, "strategy": "tpe"}, "trials"),
    ({"base": BASE, "space": {"x.y": {"choices": [1], "when": {"z": 1}}}}, "'z' is not a parameter"),
])
def test_bad_sweep_files(raw, words):
    with pytest.raises(ConfigError, match=words):
        parse_sweep(raw)


def test_grid_runs_each_point_once_and_records_everything(tmp_path, capsys):
    path = write_sweep(tmp_path, {"optim.lr": [0.1, 0.03], "model.hidden": [[8], [16, 8]]})
    run_sweep(path, echo=False)
    df, counts = statuses("s")
    assert counts == {"complete": 4} and len(df) == 4
    assert sorted(map(tuple, df[["optim.lr", "model.hidden"]].values.tolist())) == sorted(
        [(0.1, "[8]"), (0.1, "[16, 8]"), (0.03, "[8]"), (0.03, "[16, 8]")])
    spec, study, folder = load_sweep_study("s")
    t = study.get_trials()[0]
    assert t.user_attrs["config"]["optim"]["lr"] in (0.1, 0.03) and len(t.user_attrs["history"]) == 2
    assert t.user_attrs["seconds"] > 0 and t.value == t.user_attrs["history"][-1]["val_acc"]
    assert (folder / "results.csv").exists() and (folder / "journal.log").exists()
    run_sweep(path, echo=False)  # run again: nothing left to do
    assert len(sweep_results("s")) == 4


def test_failures_are_recorded_and_the_sweep_goes_on(tmp_path):
    path = write_sweep(tmp_path, {"model.hidden": [[8], [4000]], "train.max_params": [20000]})
    run_sweep(path, echo=False)
    df, counts = statuses("s")
    assert counts == {"complete": 1, "failed": 1}
    assert "over the cap of 20,000" in df[df.status == "failed"]["reason"].iloc[0]


def test_random_and_tpe_respect_the_trial_budget(tmp_path):
    for strategy in ("random", "tpe"):
        path = write_sweep(tmp_path, {"optim.lr": {"low": 1e-3, "high": 0.3, "log": True},
                                      "model.hidden.0": {"low": 4, "high": 32}}, name=strategy,
                           strategy=strategy, trials=5)
        run_sweep(path, echo=False)
        df, counts = statuses(strategy)
        assert counts == {"complete": 5}
        assert df["optim.lr"].between(1e-3, 0.3).all() and df["model.hidden.0"].between(4, 32).all()


def test_hierarchical_refines_around_the_best(tmp_path):
    path = write_sweep(tmp_path, {"optim.lr": {"low": 1e-3, "high": 0.3, "log": True}}, strategy="hierarchical",
                       rounds=2, top_k=1, points=3)
    run_sweep(path, echo=False)
    df = sweep_results("s")
    assert sorted(df["round"].unique().tolist()) == [0, 1]
    assert len(df[df["round"] == 0]) == 3 and 1 <= len(df[df["round"] == 1]) <= 2
    assert df["optim.lr"].nunique() == len(df)  # no point twice


def test_median_pruner_prunes_poor_runs(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"base": {**BASE, "train": {"epochs": 4, "batch_size": 128}}, "pruner": "median",
                                    "space": {"optim.lr": [0.3, 0.2, 0.1, 0.05, 1e-4, 1e-5, 1e-6]}}))
    run_sweep(path, echo=False)
    df, counts = statuses("s")
    assert counts.get("pruned", 0) >= 1
    assert (df[df.status == "pruned"]["epochs"] < 4).all()


def _sweep_cmd(path, *extra):
    return [sys.executable, "-m", "imgclf.cli.main", "sweep", str(path), *extra]


def test_resume_after_kill_runs_only_what_is_missing(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({  # trials of about half a second, so the kill lands inside one
        "base": {"model": {"name": "mlp", "hidden": [16]}, "train": {"epochs": 12, "batch_size": 16}},
        "space": {"optim.lr": [0.1, 0.05, 0.02, 0.01], "model.hidden.0": [128, 256, 384]}}))
    proc = subprocess.Popen(_sweep_cmd(path), stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    done = 0
    for line in proc.stdout:
        if line.startswith("trial "):
            done += 1
            if done == 3:
                time.sleep(0.15)  # the fourth trial is training now
                proc.send_signal(signal.SIGKILL)
                break
    proc.wait()
    df, _ = statuses("s")
    assert len(df[df.status == "complete"]) < 12
    subprocess.run(_sweep_cmd(path), check=True, stdout=subprocess.DEVNULL, env=os.environ.copy())
    df, counts = statuses("s")
    assert counts == {"complete": 12}
    assert df.groupby(["optim.lr", "model.hidden.0"]).size().eq(1).all()  # every point exactly once


def test_two_local_workers_share_the_grid(tmp_path):
    path = write_sweep(tmp_path, {"optim.lr": [0.1, 0.05, 0.02], "model.hidden.0": [8, 16]})
    assert main(["sweep", str(path), "--workers", "2"]) == 0
    df, counts = statuses("s")
    assert counts == {"complete": 6}
    assert df.groupby(["optim.lr", "model.hidden.0"]).size().eq(1).all()


def test_results_cli_tables_json_figures_and_retrain(tmp_path, capsys):
    path = write_sweep(tmp_path, {"optim.lr": [0.2, 0.05, 0.001], "model.hidden.0": [8, 16]})
    run_sweep(path, echo=False)
    capsys.readouterr()
    assert main(["results", "s", "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "top 2:" in out and "bottom 2:" in out and "correlation with val_acc" in out
    folder = Path(os.environ["IMGCLF_SWEEPS"]) / "s" if os.environ.get("IMGCLF_SWEEPS") else Path("sweeps") / "s"
    for f in ("objective_vs_params.png", "correlation.png", "best_curves.png"):
        assert (folder / "figures" / f).stat().st_size > 5000
    spec, study, _ = load_sweep_study("s")
    labels = [trial_label(r, spec) for _, r in ranked(trials_frame(study, spec), spec).iterrows()]
    assert sorted(labels) == sorted(f"hidden.0 {h}, lr {lr}" for lr in (0.2, 0.05, 0.001) for h in (8, 16))
    assert main(["results", "s", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 6 and {"optim.lr", "model.hidden.0", "objective", "status", "seconds"} <= set(recs[0])
    best = max(recs, key=lambda r: r["objective"])
    assert main(["train", "--from-sweep", "s", "--best", "--name", "winner"]) == 0
    winner = imgclf.load_run("winner")  # the best trial's settings, trained and tested
    cfg = winner.config
    assert cfg.optim.lr == best["optim.lr"] and cfg.model.options["hidden"][0] == best["model.hidden.0"]
    assert winner.metrics["test"]["n"] > 0


def test_results_on_an_interrupted_sweep(tmp_path, capsys):
    path = write_sweep(tmp_path, {"optim.lr": [0.2, 0.1, 0.05, 0.01]})
    run_sweep(path, echo=False, max_trials=2)
    capsys.readouterr()
    assert main(["results", "s", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert sorted(r["status"] for r in recs) == ["complete", "complete", "waiting", "waiting"]
    assert main(["results", "s"]) == 0


def test_postgresql_two_workers_each_point_exactly_once(tmp_path, postgres_url):
    """Two `imgclf sweep` processes share one sweep through a PostgreSQL server."""
    url = postgres_url
    path = write_sweep(tmp_path, {"optim.lr": [0.2, 0.1, 0.05, 0.02], "model.hidden.0": [8, 16, 24]})
    env = os.environ.copy()
    workers = [subprocess.Popen(_sweep_cmd(path, "--storage", url, "--threads", "1"), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [w.communicate(timeout=300) for w in workers]
    assert all(w.returncode == 0 for w in workers), [o[1][-2000:] for o in outs]
    df = sweep_results("s", storage_url=url)
    assert (df["status"] == "complete").sum() == 12 and len(df) == 12
    assert df.groupby(["optim.lr", "model.hidden.0"]).size().eq(1).all()  # none ran twice
    ran_by = [t.user_attrs["worker"] for t in load_sweep_study("s", storage_url=url)[1].trials]
    assert len(ran_by) == 12 and len(set(ran_by)) == 2  # both processes took a share


def test_epoch_siblings_are_read_off_one_run(tmp_path):
    """A CNN (not batchable) whose epochs vary under a constant rate: one run, several results."""
    base = {"model": {"name": "cnn", "spec": "c8-p-f16"}, "schedule": {"name": "none"}, "train": {"batch_size": 128}}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": base, "space": {"train.epochs": [1, 2, 3]}}))
    run_sweep(p)
    hist = {t.user_attrs["point"]["train.epochs"]: t.user_attrs["history"] for t in load_sweep_study("s")[1].trials}
    assert hist[1] == hist[3][:1] and hist[2] == hist[3][:2]  # one run's records, seconds and all
    df = sweep_results("s").sort_values("train.epochs")
    assert (df["status"] == "complete").all() and df["epochs"].tolist() == [1, 2, 3]
    from imgclf.api import fit_in_memory
    from imgclf.config.load import from_dict

    alone = fit_in_memory(from_dict({**base, "train": {"batch_size": 128, "epochs": 2}}))
    assert abs(df[df["train.epochs"] == 2]["val_acc"].iloc[0] - alone.history[-1]["val_acc"]) < 1e-9


def test_grid_benchmark_quick_mode_runs():
    shared = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "fashion-mnist"
    if not shared.is_dir():
        pytest.skip("the shared Fashion-MNIST files are not beside the repository")
    bench = Path(__file__).resolve().parents[2] / "benchmarks" / "sweep_grid.py"
    proc = subprocess.run([sys.executable, str(bench), "--quick", "--json", "--data-dir", str(shared.parent)],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads(proc.stdout)
    assert res["configurations"] == res["complete"] == 16 and res["batched_cohorts"] >= 2
    assert res["sweep_seconds"] > 0 and res["one_by_one_seconds_extrapolated"] > 0
    assert res["speedup"] == pytest.approx(res["one_by_one_seconds_extrapolated"] / res["sweep_seconds"], abs=0.06)
    # the extrapolation is each configuration's epochs times its measured epoch time, summed
    per = res["one_by_one_seconds_per_epoch"]
    assert per and all(v > 0 for v in per.values()) and res["one_by_one_seconds_extrapolated"] >= min(per.values())
    assert set(res["correlation_with_val_acc"]) and all(-1 <= v <= 1 for v in res["correlation_with_val_acc"].values())
