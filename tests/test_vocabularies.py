"""Names with a type of their own are spelled once: run and trial statuses, objective directions,
transfer strategies, the sweep's Optuna attributes and its folder's files. No module but the one
that defines a vocabulary compares with its words, and the conversions between them hold."""
import ast
from pathlib import Path

import optuna
import pytest
from optuna.study import StudyDirection
from optuna.trial import TrialState

import imgclf
from imgclf.engine.monitor import Direction, improved
from imgclf.models.strategies import STRATEGIES
from imgclf.studies.runner import RunStatus
from imgclf.sweeps import attrs, files
from imgclf.sweeps.status import TrialStatus

SRC = Path(imgclf.__file__).parent

# each vocabulary's words, and the one module that may compare with them
VOCABULARIES = {
    "studies/runner.py": {s.value for s in RunStatus},
    "sweeps/status.py": {s.value for s in TrialStatus},
    "engine/monitor.py": {d.value for d in Direction} | {d.optuna for d in Direction},
    "models/strategies.py": set(STRATEGIES.names()),
}
USER_ATTRS = {v for k, v in vars(attrs).items() if k.isupper()}
SWEEP_FILES = {v for k, v in vars(files).items() if k.isupper()} - {files.FIGURES}  # 'figures' is a run's word too


def test_direction_converts_to_optuna_and_back():
    assert Direction.of("val_loss") is Direction.MIN and Direction.of("val_acc") is Direction.MAX
    assert [d.optuna for d in (Direction.MIN, Direction.MAX)] == ["minimize", "maximize"]
    for d in Direction:
        assert Direction.from_optuna(d.optuna) is d
        assert Direction(d.value) is d  # the sweep file's word ('val_acc max')
    assert Direction.from_optuna(StudyDirection.MAXIMIZE) is Direction.MAX
    assert Direction.from_optuna(StudyDirection.MINIMIZE) is Direction.MIN
    with pytest.raises(ValueError):
        Direction.from_optuna(StudyDirection.NOT_SET)


def test_optuna_takes_the_directions_it_is_given():
    study = optuna.create_study(directions=[d.optuna for d in (Direction.MAX, Direction.MIN)])
    assert [Direction.from_optuna(d) for d in study.directions] == [Direction.MAX, Direction.MIN]


def test_improved_follows_the_direction():
    assert improved(0.9, 0.8, Direction.MAX) and not improved(0.9, 0.8, Direction.MIN)
    assert improved(0.7, 0.8, Direction.MIN) and not improved(0.79, 0.8, Direction.MIN, min_delta=0.05)


def test_every_trial_state_has_a_status():
    assert {TrialStatus.of(s) for s in TrialState} == set(TrialStatus)
    assert TrialStatus.of(TrialState.FAIL) == "failed" and f"{TrialStatus.PRUNED}" == "pruned"


def _compared_words(node) -> list[str]:
    """The string constants a comparison compares with (one, or the members of a tuple, list or set)."""
    out = []
    for side in [node.left, *node.comparators]:
        items = side.elts if isinstance(side, (ast.Tuple, ast.List, ast.Set)) else [side]
        out += [x.value for x in items if isinstance(x, ast.Constant) and isinstance(x.value, str)]
    return out


def _is_user_attrs(node) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "user_attrs"


def _attr_literals(node) -> list[str]:
    """User-attribute keys spelled as literals: set_user_attr('x'), set_trial_user_attr(id, 'x'),
    user_attrs.get('x'), user_attrs['x'], 'x' in user_attrs, enqueue_trial(user_attrs={'x': ...})."""
    keys = []
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        f = node.func
        pos = {"set_user_attr": 0, "set_trial_user_attr": 1}.get(f.attr)
        if f.attr == "get" and _is_user_attrs(f.value):
            pos = 0
        if pos is not None and len(node.args) > pos:
            keys.append(node.args[pos])
        keys += [k for kw in node.keywords if kw.arg == "user_attrs" and isinstance(kw.value, ast.Dict)
                 for k in kw.value.keys]
    elif isinstance(node, ast.Subscript) and _is_user_attrs(node.value):
        keys.append(node.slice)
    elif isinstance(node, ast.Compare) and any(_is_user_attrs(c) for c in node.comparators):
        keys.append(node.left)
    return [k.value for k in keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def _findings() -> list[str]:
    found = []
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{rel}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Compare):
                for word in _compared_words(node):
                    owners = [m for m, words in VOCABULARIES.items() if word in words]
                    if owners and rel not in owners:
                        found.append(f"{where} compares with {word!r} (the words of {owners[0]})")
            found += [f"{where} spells the user attribute {k!r} (sweeps/attrs.py)" for k in _attr_literals(node)]
            if (isinstance(node, ast.Constant) and node.value in SWEEP_FILES | {"batch:", "epochs:"}
                    and rel not in ("sweeps/files.py", "sweeps/cohorts.py")):
                found.append(f"{where} spells {node.value!r} (sweeps/files.py, sweeps/cohorts.py)")
    return found


def test_no_module_spells_another_modules_vocabulary():
    assert _findings() == []


def test_the_finder_finds_a_literal(tmp_path, monkeypatch):
    bad = tmp_path / "bad.py"
    bad.write_text('if s.direction == "maximize" or m.strategy != "freeze" or status in ("done", "x"):\n'
                   '    t.set_user_attr("seconds", 1.0); t.user_attrs.get("history")\n'
                   'p = folder / "sweep.yaml"\n')
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path)
    found = " ".join(_findings())
    for word in ("'maximize'", "'freeze'", "'done'", "'seconds'", "'history'", "'sweep.yaml'"):
        assert word in found
