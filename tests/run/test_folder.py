"""One reader per kind of file a run or a sweep reads: damaged or foreign files are one line."""
import pytest
import yaml

import imgclf
from imgclf.cli.main import main


@pytest.fixture
def run():
    return imgclf.train(None, ["model.spec=c8-p-f16", "train.epochs=2"], name="r", echo=False)


@pytest.mark.parametrize("name, text, words", [
    ("metrics.json", '{"accuracy": 0.9}', ["lacks test"]),
    ("metrics.json", "[1, 2", ["not valid JSON"]),
    ("history.jsonl", '{"epoch": 1}\n', ["line 1 is not an epoch record"]),
    ("history.jsonl", "\x00\x01garbage\n", ["line 1 is not valid JSON"]),
    ("config.yaml", "data: [", ["not valid YAML"]),
    ("config.yaml", "optim: {lr: -1}", ["optim.lr"]),
])
def test_damaged_run_files_are_one_line(run, capsys, name, text, words):
    (run.path / name).write_text(text)
    assert main(["report", "r", "--out", str(run.path.parent / "rep")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and all(w in err for w in words), err


def test_a_damaged_sweep_journal_is_one_line(tmp_path, capsys):
    from imgclf.sweeps.runner import run_sweep

    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"base": {"model": {"name": "mlp", "hidden": [8]}, "train": {"epochs": 1}},
                                 "space": {"optim.lr": [0.1, 0.03]}}))
    folder = run_sweep(p, echo=False)
    journal = folder / "journal.log"
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2] + ["{not json"] + lines[2:]) + "\n")
    assert main(["results", "s"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "journal" in err, err
