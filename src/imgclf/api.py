"""The Python API: train, load a run, evaluate, predict and explain. The CLI is a thin layer over it."""
from __future__ import annotations

from .build import prepare_data
from .serving import export
from .inference import evaluate, explain, predict
from .preflight import pick_device, preflight
from .runs import Run, load_run
from .studies import run_study
from .training import fit_in_memory, train

__all__ = ["Run", "load_run", "train", "fit_in_memory", "evaluate", "predict", "explain", "prepare_data",
           "preflight", "pick_device", "export", "run_study"]
