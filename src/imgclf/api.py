"""The Python API: train, load a run, evaluate and predict. The CLI is a thin layer over it."""
from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import torch

from . import runs as R
from .config import ExperimentConfig, load_config, save_config
from .data import load_raw, make_splits
from .data.loader import Transform
from .data.splits import Splits
from .engine.checkpoint import load_checkpoint
from .engine.precision import autocast_dtype
from .engine.trainer import Trainer
from .errors import BudgetError, ConfigError, DataError, RunError
from .evaluation import evaluate_split
from .models import build_model
from .summary import format_summary, summarize

RESUMABLE_KEYS = {"train.epochs", "train.time_budget", "train.device", "train.threads", "data.data_dir"}


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix == "" and k == "model"):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def pick_device(name: str) -> torch.device:
    """'auto' means the GPU when there is one."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA GPU is available; use train.device=auto")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def model_input_shape(cfg: ExperimentConfig, data_shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """The shape the model sees: the data's, or the crop's when training crops."""
    c, h, w = data_shape
    crop = cfg.data.augment.crop_size
    if crop:
        if crop > min(h, w):
            raise ConfigError(f"data.augment.crop_size: {crop} is larger than the {h}x{w} images; use at most {min(h, w)}")
        return (c, crop, crop)
    return (c, h, w)


def prepare_data(cfg: ExperimentConfig) -> Splits:
    """Decode (or read cached) data and make the seeded splits."""
    return make_splits(load_raw(cfg.data), cfg.data)


def _check_budget(cfg: ExperimentConfig, params: int) -> None:
    if cfg.train.max_params is not None and params > cfg.train.max_params:
        raise BudgetError(
            f"model {cfg.model.name!r} has {params:,} trainable parameters, over the budget of "
            f"{cfg.train.max_params:,} (train.max_params); choose a smaller model or raise the budget"
        )


@dataclass
class Run:
    """A run folder: its config, history, metrics and checkpoints."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> ExperimentConfig:
        return load_config(self.path / R.CONFIG)

    @property
    def history(self):
        """Per-epoch records as a pandas DataFrame (one row per epoch)."""
        import pandas as pd

        return pd.DataFrame(R.read_history(self.path / R.HISTORY))

    @property
    def metrics(self) -> dict:
        return R.read_json(self.path / R.METRICS)

    @property
    def summary(self) -> str:
        return (self.path / R.SUMMARY_TXT).read_text(encoding="utf-8")

    def evaluate(self, split: str = "test", tta: Optional[str] = None) -> dict:
        return evaluate(self, split, tta)

    def predict(self, images: Sequence, top: int = 5) -> list[list[tuple[str, float]]]:
        return predict(self, images, top)


def load_run(ref, runs_dir=None) -> Run:
    """A Run from a folder path or a name under the runs folder."""
    return Run(R.resolve_run(ref, runs_dir))


def _logger(run_dir: Path, echo: bool) -> Callable[[str], None]:
    log_path = run_dir / R.LOG

    def log(msg: str) -> None:
        if echo:
            print(msg, flush=True)
        with open(log_path, "a", encoding="utf-8") as f:
            f.write(msg + "\n")

    return log


def train(config: ExperimentConfig | str | os.PathLike | None = None, overrides: Sequence[str] = (), *,
          name: Optional[str] = None, runs_dir=None, resume=None, progress: Optional[bool] = None,
          echo: bool = True) -> Run:
    """Train an experiment (a config object, a YAML path or None for the default) into a run folder.

    With `resume` (a run name or folder), continue that run from its last checkpoint; only
    train.epochs, train.time_budget, train.device, train.threads and data.data_dir may be overridden.
    """
    state = best_state = None
    if resume is not None:
        run_dir = R.resolve_run(resume, runs_dir)
        stored = load_config(run_dir / R.CONFIG)
        cfg = load_config(run_dir / R.CONFIG, overrides)
        changed = sorted(k for k, v in _flat(cfg.to_dict()).items() if _flat(stored.to_dict()).get(k) != v)
        bad = [k for k in changed if k not in RESUMABLE_KEYS]
        if bad:
            raise ConfigError(f"{', '.join(bad)} cannot change when resuming; only {', '.join(sorted(RESUMABLE_KEYS))} can")
        if (run_dir / R.LAST).exists():
            state = load_checkpoint(run_dir / R.LAST)
            if (run_dir / R.BEST).exists():
                best_state = load_checkpoint(run_dir / R.BEST)["model"]
    else:
        if isinstance(config, ExperimentConfig):
            from .config import from_dict

            cfg = from_dict(config.to_dict(), overrides)  # re-validated: the object may have been edited
        else:
            cfg = load_config(config, overrides)
        run_dir = None
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    splits = prepare_data(cfg)
    in_shape = model_input_shape(cfg, splits.shape)
    torch.manual_seed(cfg.train.seed)  # the same seed gives the same initial weights
    model = build_model(cfg.model.name, cfg.model.options, in_shape, len(splits.classes))
    peer = _peer(cfg, in_shape, len(splits.classes), device)
    summ = summarize(model, in_shape)
    _check_budget(cfg, summ.trainable_params)
    if run_dir is None:
        run_dir = R.new_run_dir(name, f"{cfg.model.name}-{cfg.data.name}", runs_dir)
        R.atomic_write_text(run_dir / R.CONFIG, save_config(cfg))
        title = f"{cfg.model.name} on {cfg.data.name} ({len(splits.classes)} classes)"
        R.atomic_write_text(run_dir / R.SUMMARY_TXT, format_summary(summ, title) + "\n")
        R.write_json(run_dir / R.SUMMARY_JSON, summ.to_dict())
    elif overrides:
        R.atomic_write_text(run_dir / R.CONFIG, save_config(cfg))
    log = _logger(run_dir, echo)
    if resume is None:
        log(f"run {run_dir}")
        log(f"data {cfg.data.name}: {len(splits.train):,} train / {len(splits.val) if splits.val else 0:,} val / "
            f"{len(splits.test):,} test images of {'x'.join(map(str, splits.shape))}, {len(splits.classes)} classes")
        log(f"model {cfg.model.name}: {summ.trainable_params:,} parameters, {summ.total_macs:,} mult-adds per image; "
            f"device {device}")
    model.to(device)
    if device.type == "cuda":
        splits = _to_device(splits, device)  # uint8 data resident on the GPU, moved once
    extra = {"config": cfg.to_dict(), "classes": splits.classes, "data_shape": list(splits.shape),
             "input_shape": list(in_shape), "mean": splits.mean.tolist(), "std": splits.std.tolist()}
    if progress is None:
        progress = echo and sys.stderr.isatty()
    callbacks = []
    if cfg.train.tensorboard:
        from .reporting.tensorboard import TensorBoardLogger

        callbacks.append(TensorBoardLogger(run_dir / "tensorboard", cfg.to_dict()))
    trainer = Trainer(cfg, model, splits, device, run_dir, log, progress, extra, callbacks=tuple(callbacks),
                      peer=peer)
    if state is not None:
        trainer.load_state_dict(state, best_state)
        log(f"resuming {run_dir} after epoch {trainer.epoch}/{cfg.train.epochs}")
    t0 = time.perf_counter()
    try:
        trainer.fit()
    except KeyboardInterrupt:
        log(f"interrupted after epoch {trainer.epoch}; continue with: imgclf train --resume {run_dir}")
        raise
    if trainer.best_epoch is None:
        raise RunError(f"no epoch completed within train.time_budget={cfg.train.time_budget:g}s; raise the budget")
    t_end = time.perf_counter()  # training time so far is in the history; add what the test costs
    if trainer.best_state is not None:
        model.load_state_dict(trainer.best_state)  # the test split is scored with the best weights
    test = None
    if cfg.train.final_test:
        test = evaluate_split(model, splits.test, trainer.transform, device, len(splits.classes),
                              cfg.train.eval_batch_size, cfg.train.label_smoothing, tta=cfg.train.tta,
                              amp_dtype=trainer.amp_dtype)
    best_rec = trainer.history[trainer.best_epoch - 1]
    metrics = {
        "budget_seconds": (trainer.history[-1]["elapsed"] + time.perf_counter() - t_end) if trainer.history else None,
        "test": test, "classes": splits.classes, "best_epoch": trainer.best_epoch, "monitor": trainer.monitor,
        "best_value": trainer.best_value, "best_record": best_rec, "epochs_run": trainer.epoch,
        "stop_reason": trainer.stop_reason, "train_seconds": trainer.history[-1]["elapsed"],
        "session_seconds": time.perf_counter() - t0, "params": summ.trainable_params, "mult_adds": summ.total_macs,
        "train_images": len(splits.train), "test_reserve_seconds": trainer.reserve,
        "device": str(device),
    }
    R.write_json(run_dir / R.METRICS, metrics)
    if test is not None:
        log(f"test loss {test['loss']:.4f}  top-1 {100 * test['top1']:.2f}%  top-5 {100 * test['top5']:.2f}%  "
            f"({test['n']:,} images, {R.kept_phrase(trainer.best_epoch, trainer.monitor)})")
    else:
        log(f"test split not scored (train.final_test: false); kept "
            f"{R.kept_phrase(trainer.best_epoch, trainer.monitor)}; score it once, when the choice is made: "
            f"imgclf evaluate {run_dir}")
    log(f"saved {run_dir}/ (config.yaml, history.jsonl, metrics.json, summary.txt, best.pt, last.pt)")
    return Run(run_dir)


def fit_in_memory(cfg: ExperimentConfig, callbacks: tuple = (), log: Callable[[str], None] = lambda m: None,
                  splits: Optional[Splits] = None) -> Trainer:
    """Train `cfg` without a run folder (as sweeps do); returns the Trainer (history, best epoch, model).

    The test split is not touched: sweeps choose on the validation split.
    """
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    device = pick_device(cfg.train.device)
    splits = splits if splits is not None else prepare_data(cfg)
    in_shape = model_input_shape(cfg, splits.shape)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model.name, cfg.model.options, in_shape, len(splits.classes))
    peer = _peer(cfg, in_shape, len(splits.classes), device)
    _check_budget(cfg, sum(p.numel() for p in model.parameters() if p.requires_grad))
    model.to(device)
    if device.type == "cuda":
        splits = _to_device(splits, device)
    trainer = Trainer(cfg, model, splits, device, None, log, False, callbacks=callbacks, peer=peer)
    trainer.fit()
    return trainer


def _peer(cfg: ExperimentConfig, in_shape, num_classes: int, device: torch.device) -> Optional[torch.nn.Module]:
    """The model's peer for mutual learning (built right after it: the same shape, other initial weights), or None."""
    if cfg.train.mutual is None:
        return None
    return build_model(cfg.model.name, cfg.model.options, in_shape, num_classes).to(device)


def _to_device(s: Splits, device: torch.device) -> Splits:
    from .data.splits import Split

    def mv(sp):
        return None if sp is None else Split(sp.x.to(device), sp.y.to(device))

    return Splits(mv(s.train), mv(s.val), mv(s.test), s.classes, s.mean, s.std)


def _restore(run: Run | str | os.PathLike, device: torch.device):
    """Rebuild a run's model with its best weights, and its evaluation transform."""
    run = run if isinstance(run, Run) else load_run(run)
    cfg = run.config
    state = load_checkpoint(run.path / R.BEST)
    in_shape = tuple(state["input_shape"])
    model = build_model(cfg.model.name, cfg.model.options, in_shape, len(state["classes"]))
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        raise RunError(f"{run.path / R.BEST} does not match the model in {run.path / R.CONFIG}; was the config edited?") from None
    model.to(device).eval()
    transform = Transform(cfg.data.augment, cfg.data.normalization, torch.tensor(state["mean"]), torch.tensor(state["std"]))
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

    `tta` (none, flip, flip-translate) overrides the run's test-time augmentation.
    """
    from .evaluation.evaluate import TTA_VIEWS

    if split not in ("train", "val", "test"):
        raise ConfigError(f"split {split!r} is not known; choose train, val or test")
    if tta is not None and tta not in TTA_VIEWS:
        raise ConfigError(f"tta {tta!r} is not known; choose one of {', '.join(TTA_VIEWS)}")
    device = pick_device("auto")
    run, cfg, state, model, transform = _restore(run, device)
    splits = prepare_data(cfg)
    tta = cfg.train.tta if tta is None else tta
    m = evaluate_split(model, splits.get(split), transform, device, len(state["classes"]),
                       cfg.train.eval_batch_size, cfg.train.label_smoothing, tta=tta,
                       amp_dtype=autocast_dtype(cfg.train.precision, device))
    return {**m, "tta": tta}


def predict(run: Run | str | os.PathLike, images: Iterable, top: int = 5) -> list[list[tuple[str, float]]]:
    """Top-`top` (class, probability) pairs for each image (a path, or a uint8 tensor C x H x W)."""
    device = pick_device("auto")
    run, cfg, state, model, transform = _restore(run, device)
    c, h, w = state["data_shape"]
    xs = []
    for img in images:
        if isinstance(img, torch.Tensor):
            if img.dtype != torch.uint8 or tuple(img.shape) != (c, h, w):
                raise DataError(f"image tensor must be uint8 of shape {(c, h, w)}, got {img.dtype} {tuple(img.shape)}")
            xs.append(img)
            continue
        xs.append(read_image(img, c, h))
    if not xs:
        return []
    with torch.inference_mode():
        probs = model(transform.eval(torch.stack(xs).to(device))).float().softmax(1).cpu()
    k = min(top, probs.shape[1])
    vals, idx = probs.topk(k, dim=1)
    classes = state["classes"]
    return [[(classes[int(i)], float(v)) for v, i in zip(vr, ir)] for vr, ir in zip(vals, idx)]


def explain(run: Run | str | os.PathLike, image, layer: Optional[str] = None, target: Optional[str] = None,
            out_dir=None) -> dict:
    """Feature maps and Grad-CAM of a run's best checkpoint for one image (a path or a uint8 tensor)."""
    from .reporting.explain import explain_figures

    run, cfg, state, model, transform = _restore(run, torch.device("cpu"))
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
