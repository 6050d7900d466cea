"""Checkpoints written atomically and loaded with weights_only=True."""
from __future__ import annotations

import pickle
from pathlib import Path

import torch

from ..atomic import atomic_torch_save
from ..errors import RunError

VERSION = 1


def save_checkpoint(state: dict, path: Path) -> None:
    """Write `state` (tensors, numbers, strings, lists, dicts) to `path` via a temp file + rename."""
    atomic_torch_save({"version": VERSION, **state}, path)


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    """Load a checkpoint safely (no arbitrary code), with a one-line error if it is missing or corrupt."""
    if not path.is_file():
        raise RunError(f"checkpoint {path} not found; was the run trained to the end of an epoch?")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, ValueError) as e:
        raise RunError(f"checkpoint {path} is corrupt or unreadable ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise RunError(f"{path} is not an imgclf checkpoint")
    return state
