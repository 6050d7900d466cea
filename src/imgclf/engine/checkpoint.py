"""Checkpoints written atomically and read through one reader that turns any fault into one line.

A run checkpoint holds the model's and optimizer's state, the trainer's (epoch, history, best,
plugins) and what inference needs (classes, shapes, normalization statistics). The reader
checks that shape before anything uses it, and `check_model` that the weights fit the model
the run's config builds, so a damaged checkpoint, one from another program or one whose config
was edited is named in one line instead of failing deep inside with a traceback.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..core.atomic import atomic_torch_save
from ..core.errors import RunError

VERSION = 1
# key -> (type, what it is); what every run checkpoint holds
RUN_KEYS = {"model": (dict, "the weights"), "optimizer": (dict, "the optimizer state"),
            "trainer": (dict, "the training state"), "classes": (list, "the class names"),
            "input_shape": (list, "the model's input shape"), "data_shape": (list, "the images' shape"),
            "mean": (list, "the normalization means"), "std": (list, "the normalization stds")}
TRAINER_KEYS = ("epoch", "history", "best_value", "best_epoch")


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` (tensors, numbers, strings, lists, dicts) to `path` via a temp file + rename."""
    atomic_torch_save({"version": VERSION, **state}, path)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Load a run checkpoint safely (weights_only: no code runs): of this version, with every key and
    type a run needs, or a one-line error naming the fault."""
    path = Path(path)
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found; was the run trained to the end of an epoch?")
    if path.stat().st_size == 0:
        raise RunError(f"checkpoint {path} is empty (a write was cut short?); resume from the other checkpoint "
                       f"or train the run again")
    try:
        with warnings.catch_warnings():  # torch warns of a damaged file's pickle protocol first: one line is enough
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # torch.load raises many classes for damaged files; all mean "unreadable"
        raise RunError(f"checkpoint {path} is corrupt or unreadable ({type(e).__name__}: "
                       f"{str(e).splitlines()[0][:100] if str(e) else 'no detail'}); train the run again") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise RunError(f"{path} is not an imgclf checkpoint (no model weights in it)")
    if state.get("version") != VERSION:
        raise RunError(f"{path} is a checkpoint of version {state.get('version')!r}, this imgclf reads version "
                       f"{VERSION}; train the run again with this version")
    for key, (kind, what) in RUN_KEYS.items():
        if not isinstance(state.get(key), kind):
            raise RunError(f"{path} lacks {what} ({key!r}), so it is not a complete imgclf run checkpoint; "
                           "train the run again")
    for key in ("input_shape", "data_shape"):
        v = state[key]
        if len(v) != 3 or not all(isinstance(n, int) and 0 < n <= 100_000 for n in v):
            raise RunError(f"{path}: {key} is {v!r}, not three positive sizes (C, H, W); train the run again")
    if len(state["classes"]) < 2 or not all(isinstance(c, str) for c in state["classes"]):
        raise RunError(f"{path}: the class names are damaged ({len(state['classes'])} of them); train the run again")
    missing = [k for k in TRAINER_KEYS if k not in state["trainer"]]
    if missing:
        raise RunError(f"{path}: the training state lacks {', '.join(missing)}; train the run again")
    return state


def check_model(model: nn.Module, weights: dict, path: Path, config: Optional[Path] = None) -> None:
    """Load `weights` into `model`, or raise one line saying how they differ from what the config builds."""
    own = model.state_dict()
    missing = [k for k in own if k not in weights]
    extra = [k for k in weights if k not in own]
    shapes = [k for k in own if k in weights and tuple(getattr(weights[k], "shape", ())) != tuple(own[k].shape)]
    if missing or extra or shapes:
        if missing:
            what = f"{len(missing)} tensor(s) missing, e.g. {missing[0]}"
        elif extra:
            what = f"{len(extra)} tensor(s) the model lacks, e.g. {extra[0]}"
        else:
            k = shapes[0]
            what = f"{k} is {tuple(weights[k].shape)} where the model has {tuple(own[k].shape)}"
        built = f"the model {config} builds" if config else "the model"
        raise RunError(f"{path} does not match {built}: {what}; was the config edited, or the file replaced?")
    model.load_state_dict(weights)
