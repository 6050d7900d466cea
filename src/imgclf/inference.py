"""Inference with a trained run: restore its kept weights, evaluate a split, predict, explain."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Optional

import torch

from . import runs as R
from .build import prepare_data
from .data.loader import Transform
from .engine.checkpoint import check_model, load_checkpoint
from .engine.precision import autocast_dtype
from .errors import ConfigError, DataError
from .evaluation import evaluate_split
from .build import configured_model
from .preflight import pick_device
from .runs import Run, load_run


def restore(run: Run | str | os.PathLike, device: torch.device):
    """Rebuild a run's model with its best weights, and its evaluation transform."""
    run = run if isinstance(run, Run) else load_run(run)
    cfg = run.config
    state = load_checkpoint(run.path / R.BEST)
    in_shape = tuple(state["input_shape"])
    model = configured_model(cfg, in_shape, len(state["classes"]), weights=False)
    check_model(model, state["model"], run.path / R.BEST, run.path / R.CONFIG)
    model.to(device).eval()
    transform = Transform(cfg.data.augment, cfg.data.normalization, torch.tensor(state["mean"]),
                          torch.tensor(state["std"]), tuple(state["data_shape"]))
    return run, cfg, state, model, transform


def read_image(path, channels: int, size: int) -> torch.Tensor:
    """An image file as uint8 (channels, size, size), with one-line errors for missing or unreadable files."""
    from .data.folder import decode_image

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
    from .evaluation.evaluate import TTA

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
    """Top-`top` (class, probability) pairs for each image (a path, or a uint8 tensor C x H x W).

    `run` is a run, or a model exported by `imgclf export` (a .onnx or .pt2 file)."""
    if not isinstance(run, Run) and Path(run).suffix.lower() in (".onnx", ".pt2"):
        from .serving import Exported

        exported = Exported(run)
        shape, classes, logits = exported.source_shape, exported.classes, exported.logits
    else:
        device = pick_device("auto")
        run, cfg, state, model, transform = restore(run, device)
        # images as the data were decoded; the transform adapts them as in training (data.image_size, channels)
        shape, classes = tuple(state.get("source_shape") or state["data_shape"]), state["classes"]

        def logits(x):
            with torch.inference_mode():
                return model(transform.eval(x.to(device))).float().cpu()
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


def explain(run: Run | str | os.PathLike, image, layer: Optional[str] = None, target: Optional[str] = None,
            out_dir=None) -> dict:
    """Feature maps and Grad-CAM of a run's best checkpoint for one image (a path or a uint8 tensor)."""
    from .reporting.explain import explain_figures

    run, cfg, state, model, transform = restore(run, torch.device("cpu"))
    c, h, w = state["data_shape"]
    if isinstance(image, torch.Tensor):
        x = image
        name = "tensor"
    else:
        x = read_image(image, c, h)
        name = Path(image).stem
    classes = list(state["classes"])
    cls = None
    if target is not None:
        if target not in classes:
            raise ConfigError(f"class {target!r} is not one of: {', '.join(classes)}")
        cls = classes.index(target)
    xv = transform.eval(x[None])
    from .data.augment import center_crop

    shown = center_crop(x, cfg.data.augment.crop_size) if cfg.data.augment.crop_size else x
    out = Path(out_dir) if out_dir else run.path / "explain" / name
    return explain_figures(model.float(), xv, shown, classes, out, layer, cls)
