"""Studies: every ready one resolves and validates without training; a study resumes what is missing."""
import json

import pytest
import yaml

from imgclf.cli.main import main
from imgclf.core import run_files as RF
from imgclf.reporting import figures as F
from imgclf.studies import load_study, plan, ready_studies, run_study
from imgclf.studies.runner import RunStatus

READY = [p.stem for p in ready_studies()]


def test_every_report_has_ready_studies():
    reports = {load_study(p).report for p in ready_studies()}
    assert {"000", "001", "002", "004"} <= reports and len(READY) >= 15


@pytest.mark.parametrize("name", READY)
def test_each_ready_study_dry_runs_every_run_validated_nothing_trained(name, tmp_path):
    lines = []
    assert run_study(name, tmp_path, dry_run=True, log=lines.append) is None
    spec = load_study([p for p in ready_studies() if p.stem == name][0])
    planned = {p.name: p.status for p in plan(spec, tmp_path / spec.name)}
    for run in spec.runs:
        assert planned[run] is RunStatus.MISSING, (run, planned)
        spec.config(run)  # validated
    assert not any(tmp_path.iterdir())  # nothing trained
    better = [p for p in ready_studies() if p.stem == name][0].read_text().count("\nbetter:")
    if better:  # the second variant resolves too
        assert run_study(name, tmp_path, dry_run=True, better=True, log=lines.append) is None


def _study(tmp_path, extra=""):
    f = tmp_path / "tiny.yaml"
    f.write_text("title: tiny\nreport: '000'\nset: {train.epochs: 2, train.batch_size: 128}\n"
                 "runs:\n  a: {}\n  b: {optim.lr: 0.1}\n  c: {model.spec: c8-p-f16}\n" + extra)
    return f


def test_a_half_done_study_trains_only_what_is_missing(tmp_path):
    f = _study(tmp_path)
    out = run_study(str(f), tmp_path / "studies", log=lambda m: None)
    runs = tmp_path / "studies" / "tiny" / "runs"
    assert [r["run"] for r in out["rows"]] == ["a", "b", "c"]
    first_a = (runs / "a" / "metrics.json").stat().st_mtime_ns
    # b was cut before its first epoch ended (config and summary written, no checkpoint);
    # c was cut after its first epoch (last.pt kept, no result)
    for p in (runs / "b").iterdir():
        if p.name not in (RF.CONFIG, RF.SUMMARY_JSON, RF.SUMMARY_TXT, RF.LOG, RF.CLAIM):
            p.unlink()
    (runs / "c" / "metrics.json").unlink()
    c_first = (runs / "c" / RF.HISTORY).read_text().splitlines()[0]
    planned = {p.name: p.status for p in plan(load_study(f), tmp_path / "studies" / "tiny")}
    assert planned == {"a": RunStatus.DONE, "b": RunStatus.MISSING, "c": RunStatus.PARTIAL}
    out = run_study(str(f), tmp_path / "studies", log=lambda m: None)
    assert (runs / "a" / "metrics.json").stat().st_mtime_ns == first_a  # not trained again
    c_lines = (runs / "c" / RF.HISTORY).read_text().splitlines()
    assert c_lines[0] == c_first and len(c_lines) == 2  # c resumed after its first epoch, seconds and all
    b_lines = (runs / "b" / RF.HISTORY).read_text().splitlines()
    assert (runs / "b" / "metrics.json").is_file() and len(b_lines) == 2  # b started over
    folder = tmp_path / "studies" / "tiny"
    html, md = (folder / "report.html").read_text(), (folder / "report.md").read_text()
    assert "ms/step" in md and "| c |" in md and "figures/curves.png" in md and "<img" in html
    rows = json.loads((folder / "results.json").read_text())["runs"]
    assert rows[0]["params"] > 0 and rows[0]["step_ms"] > 0 and len(rows[0]["history"]) == 2
    steps = -(-json.loads((runs / "a" / "metrics.json").read_text())["train_images"] // 128)
    assert rows[0]["step_ms"] / 1000 * steps < rows[0]["epoch_s"]  # steps timed without the validation pass


def test_a_sweep_study_retrains_its_best(tmp_path):
    sweep = tmp_path / "s.yaml"
    sweep.write_text("base: {train: {epochs: 1, batch_size: 128}}\nstrategy: grid\nobjective: val_acc\n"
                     "space:\n  optim.lr: [0.05, 0.001]\n")
    f = tmp_path / "sw.yaml"
    f.write_text("title: sweep\nsweep: s.yaml\nretrain: {top: 1, set: {train.epochs: 2}}\n")
    out = run_study(str(f), tmp_path / "studies", workers=2, log=lambda m: None)
    folder = tmp_path / "studies" / "sw"
    assert [r["run"] for r in out["rows"]] == ["top1"] and out["rows"][0]["epochs"] == 2
    # one run left to train gets every core, not the share of one of two workers
    assert yaml.safe_load((folder / "runs" / "top1" / "config.yaml").read_text())["train"]["threads"] is None
    md = (folder / "report.md").read_text()
    assert "groups_val_loss.png" in md and "Sweep: 2 complete configurations" in md
    assert "| top1: lr 0.05 |" in md or "| top1: lr 0.001 |" in md  # a retrained run is named by its settings
    data = json.loads((folder / "sweep" / "results.json").read_text())
    assert all(len(r["history"]) == 1 for r in data)  # the epoch histories travel in the JSON export


def test_study_files_fail_in_one_line(tmp_path, capsys):
    bad = {"unknown key": "title: x\nruns: {a: {}}\nwhatever: 1\n",
           "optim.lr": "title: x\nruns: {a: {optim.lr: -1}}\n",
           "name its runs": "title: x\n",
           "has no better": "title: x\nruns: {a: {}}\n"}
    for words, text in bad.items():
        f = tmp_path / "bad.yaml"
        f.write_text(text)
        argv = ["study", str(f), "--dry-run"] + (["--better"] if words == "has no better" else [])
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and words in err, err
    assert main(["study", "no-such-study"]) == 2 and "imgclf studies lists them" in capsys.readouterr().err


def test_studies_lists_every_ready_study(capsys):
    assert main(["studies", "--no-cost"]) == 0
    out = capsys.readouterr().out
    assert all(n in out for n in READY)


def test_the_study_figures_say_what_they_compare(tmp_path):
    import matplotlib
    import torch

    hist = [{"epoch": e, "train_loss": 1 / e, "val_loss": 1.2 / e, "train_acc": 0.5 + e / 20, "val_acc": 0.4 + e / 20}
            for e in range(1, 4)]
    long = "top1: hidden.0 2048, optim.lr 0.1, train.batch_size 128"
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text, so the test can read it
        svg = F.study_curves([{"name": "a", "history": hist}, {"name": long, "history": hist[:2]}],
                             tmp_path / "c").with_suffix(".svg").read_text()
        assert all(f">{w}<" in svg for w in ("a", long, "training loss", "validation accuracy (%)"))
        groups = {"best 3": [("trial 1", hist)], "median 3": [("trial 2", hist)], "worst 5": []}
        svg = F.sweep_curve_groups(groups, "val_loss", tmp_path / "g").with_suffix(".svg").read_text()
        assert ">trial 1<" in svg and ">trial 2<" in svg and "best 3" in svg and "median 3" in svg
        images = torch.randint(0, 256, (10, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
        svg = F.preview_grid(images, [3] * 10, [f"class{i}" for i in range(10)],
                             tmp_path / "p").with_suffix(".svg").read_text()
        assert svg.count(">class3<") == 10 and ">class0<" not in svg  # each image titled by its own label


def test_a_run_trained_with_other_settings_is_never_reused_silently(tmp_path, capsys):
    f = tmp_path / "one.yaml"
    f.write_text("title: one\nset: {train.epochs: 1, train.batch_size: 128}\nruns:\n  a: {optim.lr: 0.05}\n")
    run_study(str(f), tmp_path / "studies", log=lambda m: None)
    # what a run records about itself (the hash of weights it loaded) is not a changed setting
    saved = tmp_path / "studies" / "one" / "runs" / "a" / "config.yaml"
    raw = yaml.safe_load(saved.read_text())
    raw["model"]["pretrained_sha256"] = "0" * 64
    saved.write_text(yaml.safe_dump(raw))
    folder = tmp_path / "studies" / "one"
    assert [(p.name, p.status) for p in plan(load_study(f), folder)] == [("a", RunStatus.DONE)]
    f.write_text("title: one\nset: {train.epochs: 1, train.batch_size: 128}\nruns:\n  a: {optim.lr: 0.01}\n")
    assert [(p.name, p.status) for p in plan(load_study(f), folder)] == [("a", RunStatus.CHANGED)]
    assert main(["study", str(f), "--studies-dir", str(tmp_path / "studies")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "(optim.lr)" in err and "delete" in err


def test_several_workers_start_the_longest_run_first(tmp_path):
    f = tmp_path / "order.yaml"
    f.write_text("title: order\nset: {train.batch_size: 128}\n"
                 "runs:\n  a: {train.epochs: 1}\n  b: {train.epochs: 1}\n  long: {train.epochs: 3}\n")
    out = run_study(str(f), tmp_path / "studies", workers=2, log=lambda m: None)
    # long and a start together, b once a is done; in the study's order long would start last
    runs = tmp_path / "studies" / "order" / "runs"
    began = {r: (runs / r / RF.CONFIG).stat().st_mtime_ns for r in ("a", "b", "long")}
    assert began["long"] < began["b"]
    assert [r["run"] for r in out["rows"]] == ["a", "b", "long"]  # the report keeps the study's order


def test_a_failed_run_still_leaves_the_report_of_the_others(tmp_path, capsys):
    f = tmp_path / "fails.yaml"
    f.write_text("title: fails\nset: {train.epochs: 1, train.batch_size: 128}\n"
                 "runs:\n  a: {}\n  diverges: {optim.lr: 50}\n")
    assert main(["study", str(f), "--studies-dir", str(tmp_path / "studies")]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 run(s) failed" in err and "the report has the others" in err
    md = (tmp_path / "studies" / "fails" / "report.md").read_text()
    assert "| a |" in md and "Not finished: diverges" in md
