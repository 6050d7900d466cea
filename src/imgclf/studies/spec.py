"""A study file: named runs over one base experiment (listed, or a grid), or a sweep whose best
configurations are retrained; what the report compares. Ready studies ship in imgclf/configs/studies/.

    title: Wide, deep or both under 256k parameters
    report: "000"                 # the course report it comes from (../shared/seeds/)
    base: ../cifar10-base.yaml    # an experiment file, relative to this one
    set: {train.epochs: 120}      # overrides for every run: the report's own settings
    better: {train.epochs: 30}    # imgclf's better recipe where it has one, instead of set: (--better)
    runs:                         # name: overrides, or the path of a config file (`grid:` of key: [values])
      wide: {model.name: wide}
      norm: ../tp5x5-norm.yaml
    sweep: ../sweeps/x.yaml       # instead of runs: a sweep, then its best `retrain.top` retrained
    retrain: {top: 5, set: {train.epochs: 50}}
    figures: [timing]             # beside the comparison: timing (against batch size), activations, preview
    claims:                       # the report's claims, judged over seeds (studies/claims.py)
      - {says: "wide beats deep", section: "3", better: wide, than: deep}
    reported: {wide: {value: 76, section: "3"}}   # the report's own test accuracy (%) of an arm
    protocol: last                # the epoch the test score is read at: best-val (default), last, lowest-test-loss
    scale: "32 px, not 224"       # how the ready study itself runs below the report's scale, if it does
    assumptions:                  # each value the report does not state: the one chosen and the evidence
      - {choice: "batch 4", evidence: "the PyTorch tutorial the report starts from trains at batch 4"}
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..config.load import from_dict, read_experiment, read_yaml
from ..core.errors import ConfigError
from ..core.ready import ready_dir
from .claims import Claim, parse_claims
from .protocol import Protocol

FIGURES = ("timing", "activations", "preview")
KEYS = {"title", "report", "about", "base", "set", "better", "runs", "grid", "sweep", "retrain", "figures", "note",
        "claims", "reported", "protocol", "assumptions", "scale"}


@dataclass
class StudySpec:
    name: str
    title: str
    report: str
    base: dict  # the raw experiment the runs start from (a run may name its own file)
    runs: dict[str, list[str]] = field(default_factory=dict)  # name -> key=value overrides
    run_bases: dict[str, dict] = field(default_factory=dict)  # name -> its own experiment file's mapping
    common: list[str] = field(default_factory=list)  # set: (and better: in that variant, and --set)
    sweep: Optional[Path] = None
    retrain_top: int = 0
    retrain_set: list[str] = field(default_factory=list)
    figures: tuple = ()
    note: str = ""
    about: str = ""
    source: Optional[Path] = None
    claims: tuple[Claim, ...] = ()
    seeds: dict[str, list[str]] = field(default_factory=dict)  # arm -> its runs, one a seed (with_seeds)
    protocol: Protocol = Protocol.BEST_VAL
    reported: dict[str, dict] = field(default_factory=dict)  # arm -> {value: %, section: ...}, the report's figures
    scale: Optional[str] = None  # how this run of the study differs from the report's scale, e.g. 'within 1h'
    assumptions: tuple[dict, ...] = ()  # {choice, evidence}: values the report does not state
    retrain_seeds: int = 1  # each retrained configuration's runs: topK, topK-seed1, ...
    command: str = ""  # the imgclf command that runs the study so, for its results

    def config(self, run: str):
        """The validated experiment of one named run: its base, the study's settings, its own overrides."""
        return from_dict(self.run_bases.get(run, self.base), self.common + self.runs[run])

    def retrained(self) -> dict[str, list[str]]:
        """Each retrained configuration of the sweep (top1, ...) with its runs, one a seed."""
        return {f"top{i}": [f"top{i}"] + [f"top{i}-seed{k}" for k in range(1, self.retrain_seeds)]
                for i in range(1, self.retrain_top + 1)}

    def arms(self) -> dict[str, list[str]]:
        """Each arm (a run the study names, or a retrained configuration) with its runs, one a seed:
        itself alone without seeds."""
        return {**(self.seeds or {r: [r] for r in self.runs}), **self.retrained()}

    def planned(self) -> list[str]:
        """Every run of the study, in order: the named ones, then the retrained ones."""
        return [run for runs in self.arms().values() for run in runs]

    def with_folds(self, k: int) -> None:
        """Train every named arm on `k` folds (K-fold cross-validation, data.folds=k): run `ARM` holds out
        fold 0, `ARM-foldJ` fold J; fold J of every arm trains on the same images, so claims compare arms on
        paired differences, as over seeds. A sweep's retrained configurations keep their seeds."""
        if k < 1 or k > 100:
            raise ConfigError(f"--folds {k}: must be from 2 to 100")
        if k == 1:
            return
        if self.seeds or self.retrain_seeds > 1:
            raise ConfigError("--folds and --seeds both repeat every arm; choose one")
        self._repeat(k, "fold", lambda arm, j: [f"data.folds={k}", f"data.fold={j}"])

    def with_seeds(self, n: int) -> None:
        """Train every arm `n` times: the arm's own run keeps its seed (train.seed), run `ARM-seedK` takes
        train.seed + K; every seed of every arm sees the same data split (data.split_seed), so claims
        compare arms on paired differences."""
        if n < 1 or n > 100:
            raise ConfigError(f"--seeds {n}: must be from 1 to 100")
        if n == 1 or self.seeds or self.retrain_seeds > 1:
            return
        self.retrain_seeds = n
        seeds = {arm: self.config(arm).train.seed for arm in self.runs}
        self._repeat(n, "seed", lambda arm, k: [f"train.seed={seeds[arm] + k}"] if k else [])

    def _repeat(self, n: int, word: str, overrides) -> None:
        """Every named arm as `n` runs, `ARM` then `ARM-{word}K`, run K with `overrides(arm, K)` added."""
        runs, bases, arms = {}, {}, {}
        for arm, o in self.runs.items():
            arms[arm] = [arm] + [f"{arm}-{word}{k}" for k in range(1, n)]
            for k, run in enumerate(arms[arm]):
                runs[run] = o + overrides(arm, k)
                if arm in self.run_bases:
                    bases[run] = self.run_bases[arm]
        self.runs, self.run_bases, self.seeds = runs, bases, arms


def _overrides(mapping, where: str) -> list[str]:
    """A mapping of dotted config keys to values as 'key=value' overrides (values as JSON, which YAML reads back)."""
    if mapping is None:
        return []
    if not isinstance(mapping, dict):
        raise ConfigError(f"{where}: expected a mapping of config keys to values, e.g. {{optim.lr: 0.01}}")
    import json

    out = []
    for k, v in mapping.items():
        if not isinstance(k, str):
            raise ConfigError(f"{where}: the key {k!r} is not a dotted config key such as optim.lr")
        try:
            out.append(f"{k}={json.dumps(v, allow_nan=False) if not isinstance(v, str) else v}")
        except (TypeError, ValueError):  # a date, binary, nan or inf, an integer of thousands of digits
            raise ConfigError(f"{where}: {k}: {str(v)[:60]!r} is not a config value (a number, string, list "
                              f"or mapping)") from None
    return out


def _path(value, where: str, what: str) -> str:
    """A study's path value (base:, sweep:, a run's file), relative to the study file."""
    if not isinstance(value, str) or not value.strip() or "\0" in value:
        raise ConfigError(f"{where}: {value!r} is not the path of {what}, relative to the study file")
    return value


def _reported(raw, arms: list[str], where: str) -> dict[str, dict]:
    """`reported:` maps arms to the report's test accuracy, a number (%) or {value: %, section: "4.2"}."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: reported: maps arms to the report's test accuracy in %, e.g. {{wide: 76}}")
    out = {}
    for arm, v in raw.items():
        v = v if isinstance(v, dict) else {"value": v}
        value = v.get("value")
        if arm not in arms or set(v) - {"value", "section"} or isinstance(value, bool) \
                or not isinstance(value, (int, float)) or not 0 <= value <= 100:
            raise ConfigError(f"{where}: reported.{arm}: needs one of the study's arms ({', '.join(arms)}) and a "
                              f"value from 0 to 100 (%), e.g. {{value: 76, section: '3'}}")
        out[str(arm)] = {"value": float(value), "section": str(v.get("section") or "")}
    return out


def _text(raw: dict, key: str, where: str) -> Optional[str]:
    """An optional one-line text value of the study file."""
    v = raw.get(key)
    if v is not None and (not isinstance(v, str) or not v.strip()):
        raise ConfigError(f"{where}: {key}: is a line of text, e.g. {key}: \"32 px, not 224\"")
    return v.strip() if v else None


def _assumptions(raw, where: str) -> tuple[dict, ...]:
    """`assumptions:` lists {choice, evidence}: a value the report does not state, and why it was chosen."""
    if raw is None:
        return ()
    ok = isinstance(raw, list) and all(isinstance(a, dict) and set(a) == {"choice", "evidence"}
                                       and all(isinstance(v, str) and v.strip() for v in a.values()) for a in raw)
    if not ok:
        raise ConfigError(f"{where}: assumptions: is a list of {{choice: ..., evidence: ...}}, e.g. "
                          f"[{{choice: 'batch 4', evidence: 'the tutorial the report names'}}]")
    return tuple({"choice": a["choice"].strip(), "evidence": a["evidence"].strip()} for a in raw)


def _label(value) -> str:
    return str(value).replace(" ", "")


def parse_study(raw, name: str, source: Optional[Path] = None, better: bool = False,
                extra: tuple = ()) -> StudySpec:
    """Validate a study mapping; every run's config is checked here, before anything trains.

    `better` applies the study's `better:` settings instead of its `set:`; `extra` (key=value) over them."""
    where = f"study {name}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: a study file is a mapping with title:, base: and runs:, grid: or sweep:")
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; a study has {', '.join(sorted(KEYS))}")
    folder = source.parent if source else Path(".")
    base: dict = {}
    if raw.get("base") is not None:
        base = read_experiment(folder / _path(raw["base"], f"{where}: base", "an experiment file"))
    if better and not raw.get("better"):
        raise ConfigError(f"{where}: has no better: settings; run it without --better")
    chosen = ("better", raw.get("better")) if better else ("set", raw.get("set"))
    protocol = Protocol.parse(raw.get("protocol"), where)
    # the protocols that read another epoch than the kept one need every epoch's test score: every
    # run's, or a sweep study's retrained runs' only (its trials choose by validation, never the test split)
    epoch_tests = ["train.test_each_epoch=true"] if protocol.needs_epoch_tests else []
    common = _overrides(chosen[1], f"{where}: {chosen[0]}") + list(extra) + (epoch_tests if not raw.get("sweep") else [])
    runs: dict[str, list[str]] = {}
    run_bases: dict[str, dict] = {}
    if not isinstance(raw.get("runs") or {}, dict):
        raise ConfigError(f"{where}: runs: maps run names to overrides or a config file, e.g. {{wide: {{model.name: wide}}}}")
    for run, o in (raw.get("runs") or {}).items():
        if isinstance(o, str):  # a config file of its own
            run_bases[str(run)] = read_experiment(folder / _path(o, f"{where}: runs.{run}", "a config file"))
            o = None
        runs[str(run)] = _overrides(o, f"{where}: runs.{run}")
    if raw.get("grid"):
        grid = raw["grid"]
        if not isinstance(grid, dict) or not all(isinstance(k, str) and isinstance(v, list) and v
                                                 for k, v in grid.items()):
            raise ConfigError(f"{where}: grid: maps config keys to lists of values, e.g. {{optim.lr: [0.1, 0.01]}}")
        for values in itertools.product(*grid.values()):
            point = dict(zip(grid, values))
            runs[",".join(f"{k.rsplit('.', 1)[-1]}={_label(v)}" for k, v in point.items())] = _overrides(point, where)
    sweep = None
    if raw.get("sweep"):
        sweep = folder / _path(raw["sweep"], f"{where}: sweep", "a sweep file")
        from ..sweeps.spec import load_sweep

        load_sweep(sweep)
    if sweep is not None and epoch_tests:  # named runs beside a sweep are read by the protocol too
        runs = {run: o + epoch_tests for run, o in runs.items()}
    for run in runs:
        if sweep is not None and re.fullmatch(r"top\d+(-seed\d+|-fold\d+)?", run):
            raise ConfigError(f"{where}: the run name {run!r} is the name of a retrained configuration of the "
                              f"sweep; name it otherwise")
    for run in runs:  # each names a folder under the study's runs/
        if not run.strip() or "/" in run or run in (".", "..") or "\0" in run:
            raise ConfigError(f"{where}: the run name {run!r} cannot name a folder; use letters, digits, - and _")
    if not runs and sweep is None:
        raise ConfigError(f"{where}: name its runs (runs: or grid:) or a sweep (sweep:)")
    retrain = raw.get("retrain") or {}
    if retrain and sweep is None:
        raise ConfigError(f"{where}: retrain: retrains a sweep's best configurations; add sweep:")
    if not isinstance(retrain, dict) or set(retrain) - {"top", "set"}:
        raise ConfigError(f"{where}: retrain: is a mapping of top: (how many) and set: (overrides), e.g. {{top: 5}}")
    top = retrain.get("top", 0)
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= 1000:
        raise ConfigError(f"{where}: retrain.top: {top!r} is not a number of configurations from 0 to 1000")
    figures = raw.get("figures") or []
    if not isinstance(figures, list):
        raise ConfigError(f"{where}: figures: is a list, e.g. [timing]; choose from {', '.join(FIGURES)}")
    figures = tuple(figures)
    bad = [f for f in figures if not isinstance(f, str) or f not in FIGURES]
    if bad:
        raise ConfigError(f"{where}: figures: {bad[0]!r} is not known; choose from {', '.join(FIGURES)}")
    spec = StudySpec(name=name + ("-better" if better else ""), title=str(raw.get("title") or name),
                     report=str(raw.get("report") or ""), base=base, runs=runs, run_bases=run_bases, common=common,
                     sweep=sweep, retrain_top=top,
                     retrain_set=_overrides(retrain.get("set"), f"{where}: retrain.set") + (epoch_tests if sweep else []),
                     figures=figures,
                     note=str(raw.get("note") or ""), about=str(raw.get("about") or ""), source=source,
                     claims=parse_claims(raw.get("claims"), list(runs), where),
                     reported=_reported(raw.get("reported"), list(runs), where), protocol=protocol,
                     assumptions=_assumptions(raw.get("assumptions"), where), scale=_text(raw, "scale", where))
    for run in runs:
        try:
            spec.config(run)
        except ConfigError as e:
            raise ConfigError(f"{where}, run {run}: {e}") from None
    return spec


def load_study(path: str | Path, better: bool = False, extra: tuple = ()) -> StudySpec:
    p = Path(path)
    return parse_study(read_yaml(p), p.stem, p, better, tuple(extra))


def ready_studies() -> list[Path]:
    """The study files shipped in the package (imgclf/configs/studies/), in report order."""
    return sorted(ready_dir("studies").glob("*.yaml"))


def find_study(ref: str) -> Path:
    """A study file by path, or a ready study by name."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise ConfigError(f"study file {p} not found")
        return p
    for f in ready_studies():
        if f.stem == ref:
            return f
    names = ", ".join(f.stem for f in ready_studies())
    raise ConfigError(f"no study named {ref!r}; the ready ones: {names} (imgclf studies lists them)")
