"""Inference with a trained run: restore its kept weights, evaluate a split, predict.

Above run/ (a run folder), beside export (which exports what `restore` gives), below reporting (which explains it)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import torch

from ..core import run_files as RF
from ..core.errors import ConfigError, DataError
from ..data.decode import decode_image
from ..data.loader import Transform
from ..engine.checkpoint import check_model, load_checkpoint
from ..evaluation import evaluate_split
from ..evaluation.evaluate import TTA
from ..run.build import configured_model, prepare_data
from ..run.folder import Run, load_run
from ..runtime.device import autocast_dtype, pick_device


def restore(run: Run | str | os.PathLike, device: torch.device):
    """Rebuild a run's model with its best weights, and its evaluation transform."""
    run = run if isinstance(run, Run) else load_run(run)
    cfg = run.config
    state = load_checkpoint(run.path / RF.BEST)
    in_shape = tuple(state["input_shape"])
    model = configured_model(cfg, in_shape, len(state["classes"]), weights=False)
    check_model(model, state["model"], run.path / RF.BEST, run.path / RF.CONFIG)
    model.to(device).eval()
    transform = Transform(cfg.data.augment, cfg.data.normalization, torch.tensor(state["mean"]),
                          torch.tensor(state["std"]), tuple(state["data_shape"]))
    return run, cfg, state, model, transform


def read_image(path, channels: int, size: int) -> torch.Tensor:
    """An image file as uint8 (channels, size, size), with one-line errors for missing or unreadable files."""
    p = Path(path)
    try:
        return torch.from_numpy(decode_image(p, channels, size).copy())
    except FileNotFoundError:
        raise DataError(f"image {p} not found") from None
    except Exception as e:  # PIL raises many classes for unreadable files
        raise DataError(f"cannot read image {p} ({type(e).__name__}); is it an image file?") from None


def evaluate(run: Run | str | os.PathLike, split: str = "test", tta: Optional[str] = None) -> dict:
    """Re-evaluate a run's best checkpoint on a split ('test', 'val' or 'train').

    `tta` (a registered mode: none, flip, ...) overrides the run's test-time augmentation.
    """
    if split not in ("train", "val", "test"):
        raise ConfigError(f"split {split!r} is not known; choose train, val or test")
    if tta is not None and tta not in TTA:
        raise ConfigError(f"tta {tta!r} is not known; choose one of {', '.join(TTA.names())}")
    device = pick_device("auto")
    run, cfg, state, model, transform = restore(run, device)
    splits = prepare_data(cfg)
    tta = cfg.train.tta if tta is None else tta
    m = evaluate_split(model, splits.get(split), transform, device, len(state["classes"]),
                       cfg.train.eval_batch_size, cfg.train.label_smoothing, tta=tta,
                       amp_dtype=autocast_dtype(cfg.train.precision, device))
    return {**m, "tta": tta}


def predict(run: Run | str | os.PathLike, images: Iterable, top: int = 5) -> list[list[tuple[str, float]]]:
    """Top-`top` (class, probability) pairs for each image (a path, or a uint8 tensor C x H x W)."""
    device = pick_device("auto")
    run, cfg, state, model, transform = restore(run, device)
    # images as the data were decoded; the transform adapts them as in training (data.image_size, channels)
    shape = tuple(state.get("source_shape") or state["data_shape"])

    def logits(x):
        with torch.inference_mode():
            return model(transform.eval(x.to(device))).float().cpu()

    return top_classes(logits, images, shape, state["classes"], top)


def top_classes(logits, images: Iterable, shape: tuple, classes, top: int) -> list[list[tuple[str, float]]]:
    """Each image (read or checked at `shape`) through `logits`, as its top-`top` (class, probability) pairs."""
    xs = [_image(img, shape) for img in images]
    if not xs:
        return []
    probs = logits(torch.stack(xs)).softmax(1)
    vals, idx = probs.topk(min(top, probs.shape[1]), dim=1)
    return [[(classes[int(i)], float(v)) for v, i in zip(vr, ir)] for vr, ir in zip(vals, idx)]


def _image(img, shape: tuple) -> torch.Tensor:
    """An image path read at `shape` (C, H, W), or a uint8 tensor checked against it."""
    if isinstance(img, torch.Tensor):
        if img.dtype != torch.uint8 or tuple(img.shape) != tuple(shape):
            raise DataError(f"image tensor must be uint8 of shape {tuple(shape)}, got {img.dtype} {tuple(img.shape)}")
        return img
    return read_image(img, shape[0], shape[1])
