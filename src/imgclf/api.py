"""The Python API: train, load a run, evaluate, predict, explain and export. The CLI is a thin layer
over it, and it sits above every layer but the command line (CONTRIBUTING.md lists them)."""
from __future__ import annotations

from typing import Iterable, Optional

from .core.run_files import is_export
from .inference import export as exporting
from .inference import restore
from .reporting import explain as _explain
from .run import folder as R
from .run import train as training
from .run.build import prepare_data
from .run.preflight import preflight
from .run.train import fit_in_memory
from .runtime.device import pick_device
from .studies import run_study


class Run(R.Run):
    """A run folder (config, history, metrics, summary) that also evaluates, predicts, explains and exports."""

    def evaluate(self, split: str = "test", tta: Optional[str] = None) -> dict:
        """Re-score the kept weights on a split (see `evaluate`)."""
        return restore.evaluate(self, split, tta)

    def predict(self, images: Iterable, top: int = 5) -> list[list[tuple[str, float]]]:
        """Top-`top` (class, probability) pairs for each image."""
        return restore.predict(self, images, top)

    def explain(self, image, layer: Optional[str] = None, target: Optional[str] = None, out_dir=None) -> dict:
        """Feature maps and Grad-CAM for one image."""
        return _explain.explain(self, image, layer, target, out_dir)

    def export(self, fmt: str = "onnx", output=None, images: int = 64, log=print) -> dict:
        """Export the kept model (onnx or pt2), verified against PyTorch."""
        return exporting.export(self, fmt, output, images, log)


def load_run(ref, runs_dir=None) -> Run:
    """A Run from a folder path or a name under the runs folder."""
    return Run(R.resolve_run(ref, runs_dir))


def train(*args, **kwargs) -> Optional[Run]:
    """Train an experiment into a run folder (see run/train.py); None on the non-main ranks of torchrun."""
    run = training.train(*args, **kwargs)
    return None if run is None else Run(run.path)


def evaluate(run, split: str = "test", tta: Optional[str] = None) -> dict:
    """Re-evaluate a run's best checkpoint on a split ('test', 'val' or 'train'), optionally with another TTA."""
    return restore.evaluate(run, split, tta)


def predict(source, images: Iterable, top: int = 5) -> list[list[tuple[str, float]]]:
    """Top-`top` (class, probability) pairs for each image, from a run or an exported .onnx/.pt2 file."""
    if not isinstance(source, R.Run) and is_export(source):
        return exporting.predict_exported(source, images, top)
    return restore.predict(source, images, top)


def explain(run, image, layer: Optional[str] = None, target: Optional[str] = None, out_dir=None) -> dict:
    """Feature maps and Grad-CAM of a run's best checkpoint for one image (a path or a uint8 tensor)."""
    return _explain.explain(run, image, layer, target, out_dir)


def export(run, fmt: str = "onnx", output=None, images: int = 64, log=print) -> dict:
    """Export a run's kept model as `fmt` (onnx or pt2), verify it against PyTorch, and say what was checked."""
    return exporting.export(run, fmt, output, images, log)


__all__ = ["Run", "load_run", "train", "fit_in_memory", "evaluate", "predict", "explain", "prepare_data",
           "preflight", "pick_device", "export", "run_study"]
