"""Which config keys may differ between a run and the command that continues or reuses it: the one
table, read by `imgclf train --resume` (the same command, or a run's own config with overrides) and
by the studies (is a finished run still the study's?)."""
from __future__ import annotations

from enum import Enum
from typing import Any

from .load import flatten
from .schema import ExperimentConfig


class Change(Enum):
    """How a key may differ without making the run another experiment."""

    FREE = "free"  # cannot change the result: where the data are read, threads, device (numerics aside)
    LONGER = "longer"  # may grow: more epochs or a longer time budget take the same run further


MAY_DIFFER: dict[str, Change] = {
    "data.data_dir": Change.FREE,
    "train.threads": Change.FREE,
    "train.device": Change.FREE,
    # recorded by the run when the weights load; a rerun of the command does not carry it
    "model.pretrained_sha256": Change.FREE,
    "train.epochs": Change.LONGER,
    "train.time_budget": Change.LONGER,
}


def settings(cfg: ExperimentConfig) -> dict[str, Any]:
    """The config as {'section.key': value}, the model's options and transfer keys one key each."""
    d = cfg.to_dict()
    model = d.pop("model")
    return {**flatten(d), **{f"model.{k}": v for k, v in model.items()}}


def _grows(old: Any, new: Any) -> bool:
    return new is None or (old is not None and new > old)  # None: no limit


def differences(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[tuple[str, Any, Any]]:
    """(key, saved value, wanted value) for every key where the two configs differ, sorted by key."""
    a, b = settings(saved), settings(wanted)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def refused_by_same_command(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[tuple[str, Any, Any]]:
    """What stops `wanted` from continuing the run of `saved`: free keys may differ, longer keys may grow."""
    return [(k, a, b) for k, a, b in differences(saved, wanted)
            if not (MAY_DIFFER.get(k) is Change.FREE or (MAY_DIFFER.get(k) is Change.LONGER and _grows(a, b)))]


def refused_overrides(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[str]:
    """Keys that overrides of a run's own config changed but may not on resume (free or longer keys may)."""
    return [k for k, _, _ in differences(saved, wanted) if k not in MAY_DIFFER]


def changed_for_reuse(saved: ExperimentConfig, wanted: ExperimentConfig) -> list[str]:
    """Keys where a finished run is not the experiment now asked for (only free keys may differ)."""
    return [k for k, _, _ in differences(saved, wanted) if MAY_DIFFER.get(k) is not Change.FREE]


def resumable_keys() -> list[str]:
    """The keys an override may change on resume, for messages."""
    return sorted(MAY_DIFFER)
