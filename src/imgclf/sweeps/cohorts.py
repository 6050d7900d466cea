"""Which configurations of a sweep train together: a cohort of small models stacked into one
computation (engine/batched.py), or siblings that differ only in epochs, read off one longest run."""
from __future__ import annotations

import json
import typing
from enum import Enum
from typing import Optional

from ..config.schema import ExperimentConfig, Metric
from ..engine.optim import SCHEDULES
from ..models import MODELS


def epoch_free(cfg: ExperimentConfig) -> bool:
    """Whether the config's run is a plain count of epochs: a schedule that never reads the total
    epoch count, and no plugin that can end a run early (early stopping, a time budget)."""
    t = cfg.train
    return (not SCHEDULES.attr(cfg.schedule.name, "time_driven") and not t.early_stopping.enabled
            and t.time_budget is None)


def cohort_key(cfg: ExperimentConfig) -> Optional[str]:
    """Configs with equal keys can train together; None when this engine cannot train `cfg`.

    Eligible: a model registered as stackable under its options (a perceptron, an MLP with one
    hidden layer and no dropout), plain or momentum SGD (no Nesterov), an epoch-free run (see epoch_free), no augmentation, fp32, uncompiled,
    the plain loss and sampler (no class weights, no balanced sampler), a monitor among the plain metrics.
    Learning rate, momentum, weight decay, hidden width and epochs may differ within a cohort.
    """
    d = cfg.to_dict()
    m, o, t = d["model"], d["optim"], d["train"]
    stackable = MODELS.attr(m["name"], "stackable")
    if stackable is None or not stackable({k: v for k, v in m.items() if k != "name"}):
        return None
    # early_crop_share says how long early_crop lasts: alone it augments nothing
    if any(v for k, v in d["data"]["augment"].items() if k != "early_crop_share"):
        return None
    if t["class_weights"] != "none" or d["data"]["sampler"] != "shuffle":
        return None
    if {t["monitor"], t["early_stopping"]["monitor"]} - {None, *typing.get_args(Metric)}:  # this engine records these alone
        return None
    if o["name"] != "sgd" or o["nesterov"] or not epoch_free(cfg):
        return None
    if t["precision"] in ("bf16", "fp16", "native") or t["compile"]:
        return None
    for key in ("lr", "momentum", "weight_decay"):
        o.pop(key)
    t.pop("epochs")
    m = {"name": m["name"]}  # hidden width may differ
    return json.dumps({**d, "optim": o, "train": t, "model": m}, sort_keys=True)


def sibling_key(cfg: ExperimentConfig) -> Optional[str]:
    """Configs with equal keys differ at most in epochs and can be read off one longest run; None if not."""
    if not epoch_free(cfg):
        return None
    d = cfg.to_dict()
    d["train"].pop("epochs")
    return json.dumps(d, sort_keys=True)


def shared_models(cfgs: list) -> tuple[list, list[int]]:
    """The models a cohort trains: configs that differ only in epochs share one, trained to the
    longest of them. Returns each model's config and, per input config, the index of its model."""
    index: dict[str, int] = {}
    models: list = []
    which: list[int] = []
    for cfg in cfgs:
        d = cfg.to_dict()
        d["train"].pop("epochs")
        i = index.setdefault(json.dumps(d, sort_keys=True), len(models))
        if i == len(models):
            models.append(cfg)
        elif cfg.train.epochs > models[i].train.epochs:
            models[i] = cfg
        which.append(i)
    return models, which


class Group(Enum):
    """How the configurations of one group train together; the value prefixes a group key."""

    COHORT = "batch"     # a cohort of models trained as one batched computation (engine/batched.py)
    SIBLINGS = "epochs"  # siblings that differ only in epochs, read off one longest run


def group_key_of(cfg: ExperimentConfig) -> str:
    """Configs with equal keys train together: a cohort if they can, else siblings; '' when `cfg`
    trains alone. A string, so that keys compare, sort and key a dict (read it with read_group_key)."""
    key = cohort_key(cfg)
    if key:
        return f"{Group.COHORT.value}:{key}"
    key = sibling_key(cfg)
    return f"{Group.SIBLINGS.value}:{key}" if key else ""


def read_group_key(key: str) -> tuple[Optional[Group], dict]:
    """(how the group trains, the config mapping its members share) of a group key; (None, {}) for ''."""
    if not key:
        return None, {}
    kind, _, shared = key.partition(":")
    return Group(kind), json.loads(shared)
