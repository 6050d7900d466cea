"""The LR finder: the same command gives the same suggestion, the suggested rate trains well,
the curve is drawn, and the suggestions are read off a curve as documented."""
import json
import math

import pytest

import imgclf
from imgclf.cli.main import main
from imgclf.core.errors import ConfigError
from imgclf.run.lr_find import SKIP_START, suggestions

CMD = ["lr-find", "--set", "data.name=digits", "--set", "model.name=mlp", "--seed", "0", "--repeats", "2"]


def test_the_same_command_gives_the_same_suggestion_and_it_trains_well(tmp_path):
    assert main(CMD + ["--out", str(tmp_path / "a"), "--write", str(tmp_path / "lr.yaml")]) == 0
    assert main(CMD + ["--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "lr_find.json").read_text()) for d in "ab")
    assert a["valley"] == b["valley"] and a["steep"] == b["steep"] and len(a["curves"]) == 2  # same seeds, same curves
    assert a["curves"] == b["curves"]
    assert a["valley_spread"][0] <= a["valley"] <= a["valley_spread"][1]
    assert (tmp_path / "a" / "lr_find.png").stat().st_size > 10_000
    assert "lr_find.png" in (tmp_path / "a" / "report.html").read_text() or "data:image/png" in (
        tmp_path / "a" / "report.html").read_text()
    run = imgclf.train(str(tmp_path / "lr.yaml"), ["train.epochs=5"], name="suggested", echo=False)
    assert 1e-4 < run.config.optim.lr < 1.0 and run.metrics["test"]["top1"] > 0.9


def test_valley_and_steep_are_read_off_the_curve():
    n = 60
    lrs = [10 ** (-6 + 6 * i / (n - 1)) for i in range(n)]
    # flat, then falling from step 20 to 45 (steepest at 40), then rising
    loss = [2.0] * 20 + [2.0 - 0.001 * (i - 19) ** 2 for i in range(20, 41)] + \
           [2.0 - 0.441 - 0.02 * (i - 40) for i in range(41, 46)] + [1.6 + 0.3 * (i - 45) for i in range(46, n)]
    s = suggestions(lrs, loss)
    # the stretch runs from the last flat step (19) to the lowest (45): two thirds down it is step 36
    assert s["valley"] == lrs[19 + (2 * 26) // 3]
    assert s["steep"] in lrs[35:45] and s["steep"] > s["valley"] * 0.5


def test_a_curve_too_short_to_read_is_one_line():
    with pytest.raises(ConfigError, match="at least"):
        suggestions([1e-3, 1e-2], [1.0, 2.0])
    assert SKIP_START == 10


def test_a_diverging_rate_ends_the_test_early(tmp_path):
    assert main(CMD[:-2] + ["--repeats", "1", "--start", "1e-3", "--end", "1e4", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "lr_find.json").read_text())
    steps = len(res["curves"][0]["lrs"])
    assert steps < 100 and math.isfinite(res["valley"])  # stopped once the loss passed 4x its best
