"""Experiment configuration: dataclass defaults, then a YAML file, then `--set key=value`.

The result is validated once, before anything runs: an unknown key, a value
of the wrong type or out of range raises a ConfigError naming the key and
what is allowed.
"""
from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

import yaml

from .errors import ConfigError
from .validation import Choice, Parse, Range, build_dataclass, coerce, parse_duration, unknown_key

Prob = Annotated[float, Range(ge=0.0, lt=1.0)]
NonNeg = Annotated[float, Range(ge=0.0)]
NonNegInt = Annotated[int, Range(ge=0)]
PosInt = Annotated[int, Range(ge=1)]
Metric = Literal["val_loss", "val_acc", "train_loss", "train_acc"]  # what the epoch records hold
OptimizerName = Annotated[str, Choice("imgclf.engine.optim", "OPTIMIZERS")]
ScheduleName = Annotated[str, Choice("imgclf.engine.optim", "SCHEDULES")]
TTAName = Annotated[str, Choice("imgclf.evaluation.evaluate", "TTA")]
TransferStrategy = Annotated[str, Choice("imgclf.models.strategies", "STRATEGIES")]
Seconds = Annotated[float, Parse(parse_duration, "a duration such as 90s, 45m or 1.5h"), Range(gt=0.0)]


@dataclass
class AugmentConfig:
    """Batched training-time augmentation; every option defaults to off."""

    crop_padding: NonNegInt = 0  # random crop back to full size after zero-padding this many pixels
    crop_size: Optional[PosInt] = None  # random crop to this size in training, center crop at evaluation
    hflip: bool = False  # random horizontal flip with probability 0.5
    # With hflip: flip a seeded random half of the images in the first epoch, then each image on
    # every other epoch (airbench's alternating flip): every two epochs see both views of every image.
    alternate_flip: bool = False
    translate: NonNegInt = 0  # random shift of up to this many pixels, zero fill
    rotate: Annotated[float, Range(ge=0.0, le=180.0)] = 0.0  # random rotation of up to this many degrees
    zoom: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.0  # random zoom in or out by a factor of up to 1 +- zoom
    brightness: Annotated[float, Range(ge=0.0, le=1.0)] = 0.0  # multiply by 1 + U(-b, b)
    contrast: Annotated[float, Range(ge=0.0, le=1.0)] = 0.0  # scale deviation from the image mean by 1 + U(-c, c)
    noise: NonNeg = 0.0  # std of additive Gaussian noise, in normalized units
    cutout: NonNegInt = 0  # side of a zeroed square, in pixels
    # TrivialAugment-Wide after the crops and flips: one random op per image (shear, translate,
    # rotate, colour, posterize, solarize, equalize, ... or none) at a random magnitude up to
    # this share of torchvision's TrivialAugmentWide ranges; 0 = off, 1 = those ranges.
    trivial: Annotated[float, Range(ge=0.0, le=1.0)] = 0.0
    # Progressive crops: train on random early_crop x early_crop windows (of the padded image) for
    # the first early_crop_share of the run (of its time budget, or of its epochs), full size after.
    # A net that ends in global pooling takes either size; the small ones cost less per image.
    early_crop: Optional[Annotated[int, Range(ge=4)]] = None
    early_crop_share: Annotated[float, Range(ge=0.0, le=1.0)] = 0.5


@dataclass
class DataConfig:
    name: str = "digits"
    data_dir: Optional[str] = None  # folder of the source files; default $IMGCLF_DATA_DIR or the cache
    path: Optional[str] = None  # `folder` data set: a folder or a .tar.gz
    download: bool = True  # fetch the standard files when they are missing and we are online
    val_fraction: Prob = 0.1  # carved from train with a seeded split
    test_fraction: Annotated[float, Range(gt=0.0, lt=1.0)] = 0.2  # only for data sets without a test split
    split_seed: int = 0
    # dataset: the train split's per-channel mean and std; weights: the pretrained weights' own
    # (ImageNet's), the default with model.pretrained=imagenet; none; per-image standardization
    normalization: Optional[Literal["dataset", "weights", "none", "per-image"]] = None
    # Every data set: images resized to this side (`folder`: decoded at it, default 32) and converted
    # to 1 (gray) or 3 (RGB) channels (`folder` default 3); elsewhere on the device, batch by batch.
    image_size: Optional[Annotated[int, Range(ge=4, le=1024)]] = None
    channels: Optional[Literal[1, 3]] = None
    on_corrupt: Literal["error", "skip"] = "error"  # `folder`: what to do with an unreadable image
    max_train: Optional[PosInt] = None  # use a seeded random N of the training images (after the val split)
    max_test: Optional[PosInt] = None  # use a seeded random N of the test (and validation) images
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass
class ModelConfig:
    """A registered model, its builder's keyword options (checked against its signature) and, for
    transfer learning, where its first weights come from and which layers train (models/pretrained.py)."""

    name: str = "cnn"
    options: dict = field(default_factory=lambda: {"spec": "c32-p-c64-p-f128-d0.25"})
    pretrained: Optional[str] = None  # imagenet, a weights file, or an imgclf run or checkpoint
    pretrained_sha256: Optional[str] = None  # recorded when the weights load; a mismatch on a rerun is refused
    # scratch: random weights; finetune: every layer trains from the pretrained ones (the default with
    # model.pretrained); freeze: only the parameters named by model.trainable train
    # two-phase: only the head trains for the first head_epochs, then every layer (fastai's fine_tune;
    # with optim.layer_decay the rates grow toward the head); linear-probe: the head alone trains, on
    # the frozen body's features computed once per image (no augmentation), in seconds
    strategy: Optional[TransferStrategy] = None  # a name of models/strategies.py
    head_epochs: Annotated[int, Range(ge=1)] = 1  # two-phase: epochs of the head alone
    trainable: Optional[str] = None  # freeze: comma-separated parameter prefixes that train, e.g. layer4,fc
    # freeze: frozen batch-norm layers keep their statistics and affine (frozen), normalize with each
    # batch's statistics (batch), or train as usual (train)
    frozen_bn: Literal["frozen", "batch", "train"] = "frozen"


TRANSFER_KEYS = ("pretrained", "pretrained_sha256", "strategy", "head_epochs", "trainable", "frozen_bn")


@dataclass
class OptimConfig:
    name: OptimizerName = "sgd"
    lr: Annotated[float, Range(gt=0.0, le=100.0)] = 0.05
    momentum: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.9  # sgd and rmsprop
    nesterov: bool = False  # sgd and muon, needs momentum > 0
    weight_decay: NonNeg = 5e-4  # L2 penalty (decoupled for adamw)
    betas: Annotated[list[float], Range(ge=0.0, lt=1.0)] = field(default_factory=lambda: [0.9, 0.999])
    eps: Annotated[float, Range(gt=0.0)] = 1e-8
    alpha: Annotated[float, Range(gt=0.0, lt=1.0)] = 0.99  # rmsprop smoothing constant
    # muon: the conv filters' peak rate (a step of this size relative to their fixed norm; it follows
    # the schedule like lr) and their momentum; everything else takes Nesterov SGD at lr and momentum.
    muon_lr: Annotated[float, Range(gt=0.0, le=10.0)] = 0.24  # airbench's, for batch 2,000; 0.08 won at batch 256
    muon_momentum: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.6
    # Per-group rates, with every schedule: a factor on the rate of the parameters under each name
    # prefix (the longest match wins), e.g. {fc: 10, conv1: 0.1}; and layer_decay, a factor per
    # top-level layer counted back from the last (1 for the head, decay for the layer before, ...).
    lr_scales: dict[str, Annotated[float, Range(ge=0.0, le=1000.0)]] = field(default_factory=dict)
    layer_decay: Optional[Annotated[float, Range(gt=0.0, le=1.0)]] = None


@dataclass
class ScheduleConfig:
    name: ScheduleName = "cosine"
    step_size: PosInt = 30  # step: epochs between decays
    gamma: Annotated[float, Range(gt=0.0, le=1.0)] = 0.1  # step: factor per step; exponential: factor per epoch
    min_lr: NonNeg = 0.0  # cosine: final learning rate
    max_lr: Optional[Annotated[float, Range(gt=0.0)]] = None  # onecycle: peak (default optim.lr)
    pct_start: Annotated[float, Range(gt=0.0, lt=1.0)] = 0.25  # onecycle: fraction of steps rising
    warmup: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.0  # linear: fraction of the run rising from 0


@dataclass
class EarlyStoppingConfig:
    enabled: bool = False
    monitor: Optional[Metric] = None  # default: train.monitor
    patience: PosInt = 10  # epochs without improvement before stopping
    min_delta: NonNeg = 0.0  # smallest change that counts as improvement
    restore_best: bool = True  # load the best weights when stopping


@dataclass
class TrainConfig:
    epochs: PosInt = 15
    batch_size: Annotated[int, Range(ge=1, le=1_000_000)] = 64
    eval_batch_size: PosInt = 1000
    seed: int = 0
    monitor: Metric = "val_acc"  # picks the best checkpoint
    time_budget: Optional[Seconds] = None  # stop cleanly after this wall-clock time
    max_params: Optional[PosInt] = None  # refuse a model with more trainable parameters
    eval_at_start: bool = False  # validation loss and accuracy before the first step (epoch 0 of the curves)
    label_smoothing: Prob = 0.0
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    threads: Optional[PosInt] = None  # torch intra-op threads; default: torch's choice
    # Mixed precision: auto = bf16 autocast on CUDA (fp16 with a grad scaler on GPUs without bf16), fp32 on
    # CPU; bf16 on a CPU pays where it computes bf16 natively: AMX (Intel Sapphire Rapids on: 1.6x for
    # resnet-cifar on 2 cores) or AVX512-BF16 (AMD Zen 4: 1.6x for conv-groups on 2 EPYC cores), and is
    # 9x slower elsewhere (emulated, AVX2 Zen 3). native = bf16 where the device computes it natively
    # (those CPUs, CUDA GPUs with bf16), fp32 elsewhere: the choice for a config that runs anywhere.
    precision: Literal["auto", "native", "fp32", "bf16", "fp16"] = "auto"
    # Test-time augmentation of the final test evaluation (and `imgclf evaluate`): average the logits of
    # the image and its mirror (flip), and also of both shifted by one pixel each way (flip-translate).
    tta: TTAName = "none"
    # torch.compile the training forward pass. Off by default: on 2 CPU cores it made
    # wide-deep-dropout slower (docs/experiments/throughput-cpu.md); it can pay on a GPU.
    compile: bool = False
    tensorboard: bool = False  # also write TensorBoard scalars to runs/<name>/tensorboard
    # Under torchrun: batch norm over the global batch, its statistics gathered from every GPU
    # (SyncBatchNorm, CUDA only); off, each process normalizes with the statistics of its shard.
    sync_bn: bool = False
    # Score the test split once when the run ends. False for tuning runs, which must choose on the
    # validation split: no test score is printed or saved; `imgclf evaluate RUN` scores it later.
    final_test: bool = True


@dataclass
class ExperimentConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """A plain nested dict (the model section flattened), as written to config.yaml."""
        d = dataclasses.asdict(self)
        default = ModelConfig()
        transfer = {k: getattr(self.model, k) for k in TRANSFER_KEYS if getattr(self.model, k) != getattr(default, k)}
        d["model"] = {"name": self.model.name, **transfer, **self.model.options}
        return d


SECTIONS = [f.name for f in dataclasses.fields(ExperimentConfig)]


# Mappings whose keys the user chooses: a model's builder options (checked against its signature
# later) and the per-prefix rate factors.
FREE_KEYS = ("model", "optim.lr_scales")


def merge(base: dict, update: Any, *, strict: bool = False, where: str = "") -> dict:
    """Deep-merge `update` over a copy of `base`: the one merge of configs, `extends` and sweeps.

    A `model` section naming another model replaces the base's (its options belong to the
    other builder). With `strict`, keys the base lacks are refused, except model options,
    which are checked against the builder's signature later.
    """
    if not isinstance(update, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping of keys, got {update!r}")
    out = copy.deepcopy(base)
    for key, val in update.items():
        if (not where and key == "model" and isinstance(val, dict) and "name" in val
                and val["name"] != (out.get("model") or {}).get("name")):
            out[key] = copy.deepcopy(val)
            continue
        if strict and key not in out and where not in FREE_KEYS:
            raise unknown_key(str(key), list(out), f"{where}." if where else "")
        if isinstance(out.get(key), dict) and isinstance(val, dict):
            out[key] = merge(out[key], val, strict=strict, where=f"{where}.{key}" if where else str(key))
        else:
            out[key] = copy.deepcopy(val)
    return out


def flatten(d: dict, prefix: str = "") -> dict:
    """A config mapping as {'section.key': value} (model options stay one value, under 'model')."""
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and not (prefix == "" and k == "model"):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'optim.lr=0.1' into (['optim', 'lr'], 0.1); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. optim.lr=0.1)")
    key, _, raw = text.partition("=")
    key = key.strip()
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ConfigError(f"override {text!r}: bad key {key!r}; use dotted keys such as optim.lr")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw
    return parts, value


def _nest(parts: list[str], value: Any) -> dict:
    out: Any = value
    for p in reversed(parts):
        out = {p: out}
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """Read a YAML mapping from `path`, with one-line errors for missing or malformed files."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {p}: {e}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {p} is not valid YAML{at}; fix the syntax") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections ({', '.join(SECTIONS)})")
    return data


def apply_overrides(raw: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """The mapping `raw` with 'key=value' overrides merged in (not validated: a sweep's base, say)."""
    for text in overrides:
        raw = merge(raw, _nest(*parse_override(text)))
    return raw


def from_dict(raw: dict, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Defaults, updated by the mapping `raw`, then by 'key=value' overrides; validated."""
    merged = ExperimentConfig().to_dict()
    # A mapping that names a model replaces the default model's options instead of merging with them.
    if isinstance(raw, dict) and isinstance(raw.get("model"), dict) and "name" in raw["model"]:
        merged["model"] = {}
    merged = merge(merged, raw, strict=True)
    for text in overrides:
        merged = merge(merged, _nest(*parse_override(text)), strict=True)
    return validate(merged)


def read_experiment(path: str | os.PathLike, _seen: tuple = ()) -> dict:
    """Read an experiment YAML, following `extends: other.yaml` (relative to the file) to its parents."""
    p = Path(path)
    if p.resolve() in _seen:
        raise ConfigError(f"config file {p}: 'extends' loops back to itself")
    return resolve_extends(read_yaml(p), p.parent, _seen + (p.resolve(),), str(p))


def resolve_extends(raw: dict, folder: Path, _seen: tuple = (), where: str = "config") -> dict:
    """`raw` merged over the experiment its `extends:` names (a path relative to `folder`), if any."""
    raw = dict(raw)
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{where}: extends must be the path of another YAML file")
    return merge(read_experiment(Path(folder) / parent, _seen), raw)


def load_config(path: str | os.PathLike | None = None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load and validate an experiment: defaults, then the YAML file at `path` (and what it extends), then overrides."""
    raw = read_experiment(path) if path is not None else {}
    return from_dict(raw, overrides)


def validate(raw: dict) -> ExperimentConfig:
    """Check every value of a merged config mapping and the rules that tie sections together."""
    from .data.registry import DATASETS  # late import: data registers itself on import
    from .models import MODELS, check_model_options

    model_raw = raw.get("model") or {}
    if not isinstance(model_raw, dict):
        raise ConfigError(f"model: expected a mapping of name and options (e.g. name: cnn), got {model_raw!r}")
    model_raw = dict(model_raw)
    model_name = coerce(model_raw.pop("name", None), str, "model.name")
    hints = typing.get_type_hints(ModelConfig, include_extras=True)
    transfer = {k: coerce(model_raw.pop(k), hints[k], f"model.{k}") for k in TRANSFER_KEYS if k in model_raw}
    raw = {**raw, "model": ModelConfig()}
    cfg: ExperimentConfig = build_dataclass(ExperimentConfig, raw, "")
    MODELS.get(model_name)
    cfg.model = ModelConfig(name=model_name, options=check_model_options(model_name, model_raw), **transfer)
    m = cfg.model
    if m.pretrained not in (None, "none") and m.strategy == "scratch":
        raise ConfigError("model.strategy=scratch re-initialises the weights: drop model.pretrained, or choose "
                          "model.strategy=finetune or freeze")
    if cfg.data.normalization is None:
        cfg.data.normalization = "weights" if m.pretrained == "imagenet" else "dataset"
    if cfg.data.normalization == "weights" and m.pretrained in (None, "none"):
        raise ConfigError("data.normalization=weights uses the pretrained weights' statistics: set model.pretrained, "
                          "or choose data.normalization=dataset")
    if m.strategy == "linear-probe":
        if m.pretrained in (None, "none"):
            raise ConfigError("model.strategy=linear-probe trains a head on pretrained features: set model.pretrained "
                              "(imagenet, a weights file or a run)")
        on = [k for k, v in dataclasses.asdict(cfg.data.augment).items() if v and k != "early_crop_share"]
        if on:
            raise ConfigError(f"model.strategy=linear-probe computes each image's features once, so training "
                              f"augmentation cannot apply: drop data.augment.{on[0]}, or choose model.strategy=freeze")
    if m.trainable and m.strategy != "freeze":
        raise ConfigError("model.trainable names what trains under model.strategy=freeze; set it, or drop "
                          "model.trainable")
    DATASETS.get(cfg.data.name)
    if cfg.data.name == "folder" and not cfg.data.path:
        raise ConfigError("data.path: the folder data set needs a path (a folder or a .tar.gz); set data.path=...")
    from .engine.optim import OPTIMIZERS

    if cfg.optim.nesterov and (not OPTIMIZERS.attr(cfg.optim.name, "nesterov") or cfg.optim.momentum <= 0):
        raise ConfigError(f"optim.nesterov: needs optim.momentum > 0 and an optimizer with Nesterov momentum "
                          f"({', '.join(OPTIMIZERS.names(nesterov=True))})")
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"optim.betas: {cfg.optim.betas!r} must hold exactly two numbers, e.g. [0.9, 0.999]")
    a = cfg.data.augment
    if a.crop_size is not None and a.crop_padding:
        raise ConfigError("data.augment: use crop_padding or crop_size, not both")
    if a.early_crop is not None and not (a.crop_padding or a.translate):
        raise ConfigError(f"data.augment.early_crop={a.early_crop} needs data.augment.crop_padding > 0 or "
                          f"translate > 0 (the small crops are windows of the shifted image); set one or remove early_crop")
    if a.alternate_flip and not a.hflip:
        raise ConfigError("data.augment.alternate_flip: needs data.augment.hflip=true")
    return cfg


def save_config(cfg: ExperimentConfig) -> str:
    """The config as YAML text, loadable by `load_config`."""
    return yaml.safe_dump(cfg.to_dict(), sort_keys=False)
