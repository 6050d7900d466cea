"""Property-based tests of every file imgclf reads: a study file, a sweep file, a config (and its
`--set` values), a run folder's files and a sweep's journal, however malformed (any type at any
key, any nesting, numbers of any size), load or give one line (an ImgclfError), never a traceback;
through the command line that line is all of stderr and the exit status is 2."""
import json
import os
import subprocess
import sys

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imgclf.config.load import load_config, parse_override, read_yaml
from imgclf.core.errors import ImgclfError
from imgclf.run.folder import HISTORY_KEYS, METRICS_KEYS, read_history, read_json, read_metrics
from imgclf.studies.spec import load_study, parse_study
from imgclf.sweeps.spec import load_sweep, parse_sweep

SETTINGS = settings(max_examples=80, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
HUGE = 10**5000  # more digits than Python turns into text (4,300): YAML and JSON readers trip on it
numbers = (st.integers() | st.integers(-10**400, 10**400) | st.floats()
           | st.sampled_from([1e308, -1e308, -0.0, float("inf"), float("nan"), 2**63, 2**64, -2**63 - 1, 10**30]))
scalars = st.none() | st.booleans() | numbers | st.text(max_size=10) | st.sampled_from(["", "..", "/", "a\x00b",
                                                                                        "x.yaml", "1e999"])
keys = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)
STUDY_KEYS = ["title", "report", "about", "base", "set", "better", "runs", "grid", "sweep", "retrain", "figures",
              "note"]
SWEEP_KEYS = ["base", "space", "strategy", "trials", "objective", "objectives", "pruner", "rounds", "top_k", "points",
              "seed"]
RANGE_KEYS = ["low", "high", "step", "log", "type", "choices", "when"]
CONFIG_KEYS = ["data.name", "data.split_seed", "data.image_size", "data.val_fraction", "model.spec", "model.hidden",
               "optim.lr", "optim.betas", "optim.lr_scales", "train.seed", "train.epochs", "train.batch_size"]


def one_line(fn):
    """Run `fn`: it returns, or raises an ImgclfError of one non-empty line."""
    try:
        return fn()
    except ImgclfError as e:
        assert str(e) and "\n" not in str(e), repr(str(e))
        return None


def _folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    (d / "base.yaml").write_text("train: {epochs: 1}\n")
    return d


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _folder(tmp_path_factory)


@SETTINGS
@given(st.dictionaries(st.sampled_from(STUDY_KEYS), values, max_size=5), st.sampled_from(STUDY_KEYS), values)
def test_any_study_mapping_gives_a_study_or_one_line(folder, raw, key, value):
    raw.setdefault("runs", {"a": {"train.epochs": 1}})
    raw[key] = value  # at least one key malformed beside valid ones, so checks past the first are reached
    one_line(lambda: parse_study(raw, "s", folder / "s.yaml"))


@SETTINGS
@given(st.dictionaries(st.sampled_from(SWEEP_KEYS), values, max_size=4),
       st.dictionaries(st.sampled_from(RANGE_KEYS), values, max_size=4), st.sampled_from(CONFIG_KEYS))
def test_any_sweep_mapping_gives_a_sweep_or_one_line(folder, raw, param, key):
    raw.setdefault("base", {})
    raw.setdefault("space", {key: param})
    one_line(lambda: parse_sweep(raw, folder / "w.yaml"))


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(CONFIG_KEYS) | st.text(max_size=10), values), max_size=3))
def test_any_config_file_and_override_give_a_config_or_one_line(folder, pairs):
    path = folder / "c.yaml"
    nested: dict = {}
    for k, v in pairs:
        head, _, last = str(k).rpartition(".")
        (nested.setdefault(head, {}) if head else nested)[last] = v
    path.write_text(_dump(nested))
    overrides = [f"{k}={_dump(v).strip()}" for k, v in pairs]
    one_line(lambda: load_config(path))
    one_line(lambda: load_config(None, overrides))


def _dump(obj) -> str:
    """YAML text of `obj`, an integer too long for yaml's own writer spelled out by hand."""
    try:
        return yaml.safe_dump(obj, default_flow_style=True, allow_unicode=True)
    except ValueError:
        return "9" * 5000


def _refused_in_one_line(load, path, text):
    path.write_text(text + "\n")
    with pytest.raises(ImgclfError) as e:
        load(path)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("text", [
    "a: " + "9" * 5000, "train: {seed: 99999999999999999999999999}", "train: {seed: -1e308}", "sweep: [1, {",
    "runs: 7", "runs: {a: '\\0'}", "grid: {lr: 3}", "retrain: {top: 1e308}", "figures: timing", "base: 7",
    "sweep: .", "runs: {'../x': {}}", "runs: {a: {2001-01-01: 1}}", "runs: {a: {optim.lr: 2001-01-01}}",
    "runs: {a: {train.epochs: .inf}}", "runs: {a: {train.seed: " + "9" * 30 + "}}",
    "runs: {a: {optim.lr: !!binary aGk=}}", "set: {optim.lr: .nan}",
])
def test_a_malformed_study_file_gives_one_line(folder, text):
    _refused_in_one_line(load_study, folder / "bad.yaml", text)


@pytest.mark.parametrize("text", [
    "base: {}\nspace: {optim.lr: {low: 0, high: " + "9" * 400 + "}}",
    "base: {}\nspace: {optim.lr: {low: 0, high: .inf, step: 0.1}}",
    "base: {}\nspace: {train.epochs: {low: 1, high: 1000000000000, step: 1}}",
    "base: {}\nspace: {train.epochs: {low: 1, high: 2, step: " + "9" * 400 + "}}",
    "base: {}\nspace: {a.b: [{null: 1, 1.5: 2}]}",
    "base: {}\nspace: {a.b: [" + "9" * 5000 + "]}",
    "base: {}\nspace: {" + ", ".join(f"train.k{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]" for i in range(7)) + "}",
    "base: {}\nspace: {optim.lr: [0.1]}\nstrategy: random\ntrials: 3\nseed: " + "9" * 30,
    "base: 'a\\0b'\nspace: {optim.lr: [0.1]}",
    "base: {train: {seed: " + "9" * 30 + "}}\nspace: {optim.lr: [0.1]}",
])
def test_a_malformed_sweep_file_gives_one_line(folder, text):
    _refused_in_one_line(load_sweep, folder / "bad-sweep.yaml", text)


@pytest.mark.parametrize("text", ["train.epochs=" + "9" * 5000, "train.seed=" + "9" * 30, "data.split_seed=-1e30"])
def test_a_malformed_override_gives_one_line(text):
    with pytest.raises(ImgclfError):
        load_config(None, [text])
    assert parse_override("a.b=" + "9" * 40)[1] == int("9" * 40)  # a big number that fits is still a number


def test_a_nul_in_a_config_path_gives_one_line(folder):
    with pytest.raises(ImgclfError):
        read_yaml(folder / "a\x00b.yaml")


GOOD_RECORD = {"epoch": 1, "train_loss": 2.0, "train_acc": 0.5, "lr": 0.1, "seconds": 1.0, "val_acc": 0.4}
GOOD_METRICS = {"test": None, "classes": ["a", "b"], "best_epoch": 1, "monitor": "val_acc", "epochs_run": 1,
                "params": 10, "mult_adds": 20, "train_seconds": 1.5}


@SETTINGS
@given(st.sampled_from([*HISTORY_KEYS, "val_acc", "val_loss"]), values, st.integers(0, 200), st.binary(max_size=8))
def test_a_damaged_history_gives_epoch_records_or_one_line(folder, key, value, cut, junk):
    line = json.dumps({**GOOD_RECORD, key: value}, default=str) if not _too_long(value) else "{"
    path = folder / "history.jsonl"
    path.write_bytes((json.dumps(GOOD_RECORD) + "\n" + line).encode()[:cut or None] + junk)
    records = one_line(lambda: read_history(path))
    for rec in records or []:  # what it hands over is plottable: numbers where the figures need them
        assert all(isinstance(rec[k], (int, float)) and not isinstance(rec[k], bool) for k in HISTORY_KEYS)
        assert all(v is None or isinstance(v, (int, float)) for k, v in rec.items() if k.startswith("val_"))


@SETTINGS
@given(st.sampled_from(list(METRICS_KEYS)), values, st.integers(0, 300), st.binary(max_size=8))
def test_a_damaged_metrics_file_gives_metrics_or_one_line(folder, key, value, cut, junk):
    text = json.dumps({**GOOD_METRICS, key: value}, default=str) if not _too_long(value) else "{"
    path = folder / "metrics.json"
    path.write_bytes(text.encode()[:cut or None] + junk)
    m = one_line(lambda: read_json(path, METRICS_KEYS))
    if m is not None:
        assert isinstance(m["params"], int) and isinstance(m["classes"], list) and isinstance(m["monitor"], str)


def _too_long(value) -> bool:
    try:
        json.dumps(value)
        return False
    except ValueError:
        return True
    except TypeError:
        return False


# Through the command line: exit status 2 and one line on stderr.

def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "imgclf.cli.main", *args], capture_output=True, text=True, cwd=cwd,
                          env=os.environ.copy())


def _one_line_exit_2(proc):
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, (proc.returncode, proc.stderr[-2000:])


def test_a_malformed_study_or_sweep_file_is_one_line_through_the_cli(tmp_path):
    (tmp_path / "s.yaml").write_text("runs: {a: {train.seed: " + "9" * 30 + "}}\n")
    (tmp_path / "w.yaml").write_text("base: {}\nspace: {optim.lr: {low: 0, high: " + "9" * 400 + "}}\n")
    _one_line_exit_2(_cli("study", "s.yaml", "--dry-run", cwd=tmp_path))
    _one_line_exit_2(_cli("sweep", "w.yaml", "--max-trials", "1", cwd=tmp_path))
    _one_line_exit_2(_cli("train", "--set", "train.epochs=" + "9" * 5000, cwd=tmp_path))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    import imgclf

    runs = tmp_path_factory.mktemp("runs")
    imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=1"], name="r", runs_dir=runs, echo=False)
    return runs / "r"


@pytest.mark.parametrize("damage", ["config", "history", "metrics", "metrics-types", "best.pt"])
def test_a_damaged_run_folder_is_one_line_through_the_cli(trained, tmp_path, damage):
    import shutil

    run = tmp_path / "r"
    shutil.copytree(trained, run)
    if damage == "config":
        (run / "config.yaml").write_text("model: {spec: [\n")
    elif damage == "history":
        (run / "history.jsonl").write_text(json.dumps({**GOOD_RECORD, "train_loss": "x"}) + "\n")
    elif damage == "metrics":
        (run / "metrics.json").write_bytes((run / "metrics.json").read_bytes()[:50])
    elif damage == "metrics-types":
        m = json.loads((run / "metrics.json").read_text())
        (run / "metrics.json").write_text(json.dumps({**m, "params": "many"}))
    else:
        (run / "best.pt").write_bytes(b"\x80garbage" * 40)
    command = "evaluate" if damage in ("config", "best.pt") else "report"
    _one_line_exit_2(_cli(command, str(run), cwd=tmp_path))


def test_a_journal_with_garbage_lines_is_one_line_through_the_cli(tmp_path):
    folder = tmp_path / "sweeps" / "w"
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text("base: {}\nspace: {optim.lr: [0.1]}\n")
    (folder / "journal.log").write_text("garbage\n{\"op_code\": 999}\n\x00\x01\n")
    _one_line_exit_2(_cli("results", "w", "--sweeps-dir", str(tmp_path / "sweeps"), cwd=tmp_path))


@pytest.mark.parametrize("change", [{"test": {"loss": 0.5, "n": 10}}, {"test": {"loss": 0.5, "top1": "x", "n": 10}},
                                    {"best_epoch": 2}, {"best_epoch": 0}])
def test_a_metrics_file_with_a_broken_test_score_or_best_epoch_is_one_line(tmp_path, change):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({**GOOD_METRICS, **change}))
    with pytest.raises(ImgclfError) as e:
        read_metrics(path)
    assert "\n" not in str(e.value) and str(path) in str(e.value)
