"""A study's arms cross-validated: `--folds K` trains each arm on K folds and reads its figure and
the claims over them, as over seeds."""
import json

import pytest

from imgclf.core.errors import ConfigError
from imgclf.studies import run_study


def test_each_arm_is_trained_on_every_fold_and_judged_over_them(tmp_path):
    f = tmp_path / "cv.yaml"
    f.write_text("title: cv\nset: {train.epochs: 1, train.batch_size: 128, model.spec: c8-p-f16}\n"
                 "runs:\n  fast: {optim.lr: 0.1}\n  slow: {optim.lr: 0.001}\n"
                 "claims:\n  - {says: 'a large rate learns faster', better: fast, than: slow}\n")
    lines = []
    run_study(str(f), tmp_path / "studies", workers=2, folds=2, log=lines.append)
    folder = tmp_path / "studies" / "cv-2fold"
    data = json.loads((folder / "results.json").read_text())
    assert sorted(r["run"] for r in data["runs"]) == ["fast", "fast-fold1", "slow", "slow-fold1"]
    held_out = set()
    for run in ("slow", "slow-fold1"):
        cfg = (folder / "runs" / run / "config.yaml").read_text()
        assert "folds: 2" in cfg
        held_out.add([x for x in cfg.splitlines() if x.strip().startswith("fold:")][0])
    assert len(held_out) == 2  # each run holds out another fold
    assert data["arms"]["fast"]["n"] == 2 and len(set(data["arms"]["fast"]["values"])) > 1
    assert [x for x in lines if x.startswith("claim ")] == [f"claim a large rate learns faster: {data['claims'][0]['verdict']}"]
    assert json.loads((folder / "summary.json").read_text())["study"]["command"].endswith("--folds 2")
    with pytest.raises(ConfigError, match="--folds and --seeds"):
        run_study(str(f), tmp_path / "studies", folds=3, seeds=2, dry_run=True, log=lambda m: None)
