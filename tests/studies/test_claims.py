"""A report's claims judged over seeds: the interval, the three verdicts, the study file's claims, and
a seeded study on digits that gives each arm's mean and interval and a verdict per claim."""
import json
import math

import pytest
import yaml

from imgclf.core.errors import ConfigError
from imgclf.studies import load_study, ready_studies, run_study
from imgclf.studies.claims import Claim, Kind, Verdict, interval, parse_claims
from imgclf.studies.page import studies_markdown


def test_the_interval_is_students_t_at_95_percent():
    iv = interval([1.0, 2.0, 3.0])  # mean 2, sd 1, t(0.975, 2 df) = 4.3027
    assert iv.mean == 2.0 and iv.half == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6) and iv.n == 3
    assert interval([5.0]).half == math.inf  # one seed: no interval


@pytest.mark.parametrize("a, b, verdict", [
    ([72.0, 73.0, 74.0], [70.0, 70.5, 71.0], Verdict.HOLDS),  # a beats b on every seed by 2-3 points
    ([68.0, 69.0, 70.0], [70.0, 70.5, 71.0], Verdict.REVERSED),
    ([70.0, 72.0, 69.0], [71.0, 70.0, 70.0], Verdict.UNDECIDED),  # differences -1, +2, -1 cover 0
    ([72.0], [70.0], Verdict.UNDECIDED),  # one seed decides nothing
])
def test_a_better_claim_is_judged_on_the_paired_differences(a, b, verdict):
    assert Claim("a beats b", "a", "b", Kind.BETTER).judge(a, b)[1] is verdict


def test_paired_differences_see_through_a_spread_both_arms_share():
    # each seed moves both arms by up to 6 points, a is always 0.5 above b: paired, that holds
    b = [64.0, 70.0, 67.0, 66.0]
    assert Claim("a beats b", "a", "b", Kind.BETTER).judge([v + 0.5 for v in b], b)[1] is Verdict.HOLDS


@pytest.mark.parametrize("a, b, verdict", [
    ([85.0, 85.2, 84.9], [85.1, 85.0, 85.0], Verdict.HOLDS),  # within +-1 point, interval inside
    ([88.0, 88.2, 87.9], [85.1, 85.0, 85.0], Verdict.REVERSED),  # 3 points apart: wholly outside
    ([85.0, 87.0, 84.0], [85.0, 85.0, 85.0], Verdict.UNDECIDED),  # the interval crosses +-1
])
def test_an_equal_within_d_claim_holds_only_inside_d(a, b, verdict):
    assert Claim("bn adds nothing", "a", "b", Kind.EQUAL, within=1.0).judge(a, b)[1] is verdict


def test_claims_must_name_the_studys_arms():
    claims = parse_claims([{"says": "a wins", "section": "4.1", "better": "a", "than": "b"},
                           {"equal": ["a", "b"], "within": 1}], ["a", "b"], "study s")
    assert [(c.a, c.b, c.kind, c.within, c.section) for c in claims] == \
        [("a", "b", Kind.BETTER, 0.0, "4.1"), ("a", "b", Kind.EQUAL, 1.0, "")]
    for bad in ([{"better": "a", "than": "z"}], [{"equal": ["a"], "within": 1}], [{"equal": ["a", "b"]}],
                [{"better": "a", "than": "b", "oops": 1}], {"better": "a"}):
        with pytest.raises(ConfigError) as e:
            parse_claims(bad, ["a", "b"], "study s")
        assert "\n" not in str(e.value) and "claims" in str(e.value)


def test_every_ready_studys_claims_name_arms_it_has():
    for f in ready_studies():
        spec = load_study(f)
        assert all(c.a in spec.runs and c.b in spec.runs for c in spec.claims), f.stem


def test_a_seeded_study_gives_each_arms_interval_and_a_verdict_per_claim(tmp_path):
    f = tmp_path / "seeded.yaml"
    f.write_text("title: seeded\nset: {train.epochs: 40, train.batch_size: 128}\n"
                 "runs:\n  fast: {optim.lr: 0.1}\n  slow: {optim.lr: 0.001}\n"
                 "reported: {fast: {value: 80, section: '1'}, slow: 60}\n"
                 "claims:\n  - {says: 'a large rate learns faster in 2 epochs', section: '1', better: fast, than: slow}\n"
                 "  - {says: 'the rates end level', equal: [fast, slow], within: 0.5}\n")
    lines = []
    run_study(str(f), tmp_path / "studies", workers=2, seeds=3, epochs=2, log=lines.append)  # the recipe, 2 epochs
    folder = tmp_path / "studies" / "seeded-2ep"
    data = json.loads((folder / "results.json").read_text())
    assert sorted(r["run"] for r in data["runs"]) == ["fast", "fast-seed1", "fast-seed2", "slow", "slow-seed1",
                                                       "slow-seed2"]
    fast = data["arms"]["fast"]
    assert fast["n"] == 3 and fast["mean"] == pytest.approx(sum(fast["values"]) / 3) and fast["ci95"] > 0
    assert len(set(fast["values"])) > 1  # the seeds differ
    assert all(len(r["history"]) == 2 for r in data["runs"])
    assert {c["scale"] for c in data["claims"]} == {"at 2 epochs"}  # below the report's scale, and says so
    verdicts = [c["verdict"] for c in data["claims"]]
    assert all(v in {v.value for v in Verdict} for v in verdicts)
    assert [x for x in lines if x.startswith("claim ")] == [f"claim {c['says']}: {c['verdict']}" for c in data["claims"]]
    assert "The report's claims" in (folder / "report.md").read_text()
    assert data["claims"][0]["reported"] == 20.0 and data["arms"]["slow"]["reported"] == 60.0
    # its summary (no histories) makes the generated page's section: command, scale and verdicts
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["arms"] == data["arms"] and "history" not in summary["runs"][0]
    assert summary["study"]["command"] == f"imgclf study {f} --epochs 2 --seeds 3"
    assert summary["study"]["machines"] and summary["study"]["scale"] == "at 2 epochs"
    published = tmp_path / "published"
    published.mkdir()
    (published / "seeded-2ep.json").write_text((folder / "summary.json").read_text())
    page = studies_markdown(published)
    for c in data["claims"]:
        assert f"| {c['says']} | {c['section'] or '-'} |" in page and f"**{c['verdict']}**" in page
    assert f"`imgclf study {f} --epochs 2 --seeds 3`" in page and "| at 2 epochs |" in page
    slow = data["arms"]["slow"]
    inside = abs(60.0 - slow["mean"]) <= slow["ci95"]  # the report's 60% against our interval
    assert f"| {slow['mean']:.2f} ± {slow['ci95']:.2f} (3) | {'yes' if inside else 'no:'}" in page
    # a seed trained again gives the same number: the verdicts are reproducible
    import shutil
    shutil.rmtree(folder / "runs" / "slow-seed2")
    run_study(str(f), tmp_path / "studies", seeds=3, epochs=2, log=lambda m: None)
    again = json.loads((folder / "results.json").read_text())
    assert again["arms"] == data["arms"] and again["claims"] == data["claims"]


HISTORY = [{"epoch": 1, "val_acc": 0.50, "test_loss": 1.2, "test_acc": 0.48},
           {"epoch": 2, "val_acc": 0.70, "test_loss": 0.9, "test_acc": 0.69},
           {"epoch": 3, "val_acc": 0.65, "test_loss": 0.8, "test_acc": 0.66},
           {"epoch": 4, "val_acc": 0.68, "test_loss": 0.8, "test_acc": 0.67}]


@pytest.mark.parametrize("protocol, epoch", [("best-val", 2), ("last", 4), ("lowest-test-loss", 3)])
def test_each_protocol_picks_its_epoch(protocol, epoch):
    from imgclf.studies.protocol import Protocol, pick_epoch, test_score

    p = Protocol(protocol)
    assert pick_epoch(HISTORY, p) == epoch  # lowest test loss: the first of the tied epochs 3 and 4
    kept = 0.70  # the kept weights' own test score, which best-val reads
    assert test_score(HISTORY, p, kept, 2) == (kept if p is Protocol.BEST_VAL else HISTORY[epoch - 1]["test_acc"])
    with pytest.raises(ConfigError):
        Protocol.parse("best-test", "study s")


def test_a_study_reads_its_test_score_at_its_protocols_epoch(tmp_path):
    from imgclf.run.folder import read_history

    f = tmp_path / "proto.yaml"
    f.write_text("title: proto\nprotocol: lowest-test-loss\nset: {train.epochs: 3, train.batch_size: 128}\n"
                 "runs:\n  a: {optim.lr: 0.05}\n  b: {optim.lr: 0.01}\n")
    run_study(str(f), tmp_path / "studies", workers=2, log=lambda m: None)
    folder = tmp_path / "studies" / "proto"
    data = json.loads((folder / "results.json").read_text())
    assert data["protocol"] == "lowest-test-loss"
    for arm in ("a", "b"):
        hist = read_history(folder / "runs" / arm / "history.jsonl")
        assert all(h["test_acc"] is not None for h in hist)  # every epoch scored on the test split
        lowest = min(range(3), key=lambda i: (hist[i]["test_loss"], i))
        assert data["arms"][arm]["values"] == [100 * hist[lowest]["test_acc"]]
    assert "a star marks the epoch the study's protocol reads (epoch of lowest test loss)" in \
        (folder / "report.md").read_text()
    from imgclf.studies.report import _mark
    row = next(r for r in data["runs"] if r["run"] == "a")
    hist = [h for h in row["history"] if h.get("epoch")]
    assert _mark(load_study(f), row) == 1 + min(range(3), key=lambda i: (hist[i]["test_loss"], i))


def _two_rate_sweep(tmp_path, train="{epochs: 1}", rates="[0.05, 0.001]"):
    """s.yaml beside the study files: a grid sweep over two learning rates."""
    (tmp_path / "s.yaml").write_text(f"base: {{train: {train}}}\nstrategy: grid\nobjective: val_acc\n"
                                     f"space:\n  optim.lr: {rates}\n")


def test_a_sweep_study_never_reads_the_test_split_each_epoch_only_its_retrained_runs_do(tmp_path):
    _two_rate_sweep(tmp_path)
    f = tmp_path / "sw.yaml"
    f.write_text("title: sweep\nsweep: s.yaml\nprotocol: last\nretrain: {top: 1}\n")
    spec = load_study(f)
    assert "train.test_each_epoch=true" not in spec.common  # the sweep's trials: validation only
    assert "train.test_each_epoch=true" in spec.retrain_set


def test_a_seed_without_a_result_leaves_its_pair_out_never_shifts_the_others():
    a, b = [72.0, None, 74.0], [70.0, 70.5, 71.0]  # a's second seed failed: seeds 1 and 3 are paired
    diff, verdict = Claim("a beats b", "a", "b", Kind.BETTER).judge(a, b)
    assert diff.n == 2 and diff.mean == pytest.approx(2.5) and verdict is Verdict.UNDECIDED  # 2 and 3: t(1 df) wide


def test_a_sweep_studys_best_are_retrained_with_seeds_and_read_as_arms(tmp_path):
    _two_rate_sweep(tmp_path, "{epochs: 1, batch_size: 128}", "[0.1, 0.001]")
    f = tmp_path / "sw.yaml"
    f.write_text("title: sweep\nsweep: s.yaml\nretrain: {top: 1}\nprotocol: last\n"
                 "assumptions: [{choice: 'batch 128', evidence: 'a test'}]\n")
    run_study(str(f), tmp_path / "studies", seeds=2, log=lambda m: None)
    folder = tmp_path / "studies" / "sw"
    data = json.loads((folder / "summary.json").read_text())
    assert sorted(r["run"] for r in data["runs"]) == ["top1", "top1-seed1"]
    assert data["arms"]["top1"]["n"] == 2 and len(data["sweep_best"]) == 2
    assert data["study"]["assumptions"] == [{"choice": "batch 128", "evidence": "a test"}]
    seeds = [yaml.safe_load((folder / "configs" / f"{r}.yaml").read_text())["train"]["seed"] for r in ("top1", "top1-seed1")]
    assert seeds[1] == seeds[0] + 1
    last = json.loads((folder / "results.json").read_text())["runs"][0]["history"][-1]
    assert data["arms"]["top1"]["values"][0] == pytest.approx(100 * last["test_acc"])  # read at the last epoch
    assert "| batch 128 | a test |" in (folder / "report.md").read_text()


def test_the_committed_studies_page_is_the_generated_one():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert studies_markdown(root / "docs" / "studies" / "results") == (root / "docs" / "studies.md").read_text()


def test_page_anchors_are_mkdocs_own_and_table_cells_escape_bars():
    from markdown.extensions.toc import slugify  # installed with mkdocs, which builds the page

    from imgclf.studies.page import _anchor, _cell

    meta = {"name": "001-steps", "title": "L'étape n°5 | CIFAR-10", "report": "001"}
    assert _anchor(meta) == slugify("001-steps: L'étape n°5 | CIFAR-10 (report 001)", "-")
    assert _cell("a | b") == "a \\| b"


def test_a_sweep_studys_run_cannot_take_a_retrained_name_and_mean_std_need_dataset_normalization(tmp_path):
    _two_rate_sweep(tmp_path)
    f = tmp_path / "sw.yaml"
    f.write_text("title: sweep\nsweep: s.yaml\nretrain: {top: 1}\nprotocol: last\nruns:\n  top1: {}\n  mine: {}\n")
    with pytest.raises(ConfigError, match="retrained configuration"):
        load_study(f)
    f.write_text("title: sweep\nsweep: s.yaml\nretrain: {top: 1}\nprotocol: last\nruns:\n  mine: {}\n")
    assert "train.test_each_epoch=true" in load_study(f).runs["mine"]  # a named run is read by the protocol too
    from imgclf.config.load import from_dict

    with pytest.raises(ConfigError, match="data.normalization=dataset"):
        from_dict({}, ["data.normalization=none", "data.mean=[0.5,0.5,0.5]"])
