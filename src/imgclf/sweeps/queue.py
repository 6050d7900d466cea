"""A sweep's queue: its Optuna study created (with the strategy's first points enqueued) or joined,
and each later round the strategy returns enqueued, members of one cohort adjacent."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable, Optional

import optuna

from ..core.errors import ImgclfError
from . import attrs as A
from .cohorts import group_key_of, read_group_key
from .space import encode_point
from .spec import SweepSpec
from .store import SweepError, open_storage
from .strategies import PRUNERS, strategy


def open_study(spec: SweepSpec, name: str, sweep_dir: Path, storage_url: Optional[str]):
    """Create the study (and enqueue the first grid) or join the existing one."""
    storage = open_storage(sweep_dir, storage_url)
    try:
        study = optuna.create_study(storage=storage, study_name=name, directions=[d.optuna for d in spec.directions],
                                    sampler=strategy(spec.options.strategy).sampler(spec),
                                    pruner=PRUNERS.get(spec.options.pruner)())
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = _load(name, storage, spec)
        created = False
    if created:
        study.set_user_attr(A.SWEEP, json.loads(json.dumps(spec.raw(), default=str)))
        first = strategy(spec.options.strategy).first_points(spec)
        if first is not None:
            enqueue(study, spec, first, round_=0)
        study.set_user_attr(A.QUEUED, True)
    else:
        saved = study.user_attrs.get(A.SWEEP)
        if saved is not None and saved.get("space") != json.loads(json.dumps(spec.raw()["space"], default=str)):
            raise SweepError(f"sweep {name!r} already exists with a different space; use another --name")
        deadline = time.time() + 120
        while not study.user_attrs.get(A.QUEUED) and time.time() < deadline:
            time.sleep(0.5)  # the creating worker is still enqueuing the grid
            study = _load(name, storage, spec)
    return study, storage


def group_key(spec: SweepSpec, point: dict) -> str:
    """What a point can train with (cohorts.group_key_of); '' when it trains alone or is no valid config."""
    try:
        cfg = spec.config_for(point)
    except ImgclfError:
        return ""
    return group_key_of(cfg)


def _batch_size(key: str) -> int:
    _, shared = read_group_key(key)
    return shared["train"]["batch_size"] if shared else 0


def enqueue(study, spec: SweepSpec, points: list[dict], round_: int) -> int:
    """Enqueue points as waiting trials, members of one cohort adjacent, so that a worker can take them together."""
    def order(pt):
        # Cohorts with small batches first: they take longest, and running the longest first
        # balances several workers best. Within a cohort, siblings differing in epochs are adjacent.
        key = group_key(spec, pt)
        batch = _batch_size(key)
        rest = json.dumps({k: v for k, v in pt.items() if k != "train.epochs"}, sort_keys=True)
        return batch, key, rest, pt.get("train.epochs", 0)

    n = 0
    for pt in sorted(points, key=order):
        study.enqueue_trial(encode_point(spec.space, pt), user_attrs={A.ROUND: round_}, skip_if_exists=round_ > 0)
        n += 1
    return n


def advance(study, spec: SweepSpec, log: Callable[[str], None]) -> bool:
    """Enqueue the strategy's next round; False when it has none (the sweep is done)."""
    round_, points = strategy(spec.options.strategy).next_round(study, spec)
    if not points:
        return False
    n = enqueue(study, spec, points, round_)
    log(f"round {round_ + 1}/{spec.options.rounds}: {n} finer configurations around the top {spec.options.top_k}")
    return True


def _load(name: str, storage, spec: SweepSpec):
    return optuna.load_study(study_name=name, storage=storage, sampler=strategy(spec.options.strategy).sampler(spec),
                             pruner=PRUNERS.get(spec.options.pruner)())
