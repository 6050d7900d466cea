"""The experiment's configuration schema: sections as dataclasses with their defaults, and the
annotations that carry each value's range, parser or registry.

It imports nothing of the package, so every layer can type `cfg: ExperimentConfig`. Checking a
mapping against it is config/fields.py's work; the rules that consult registries are config/rules.py's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any, Callable, Literal, Optional


@dataclass(frozen=True)
class Range:
    """Allowed interval of a number: ge/gt lower bound, le/lt upper bound."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def describe(self) -> str:
        parts = []
        if self.ge is not None:
            parts.append(f">= {self.ge:g}")
        if self.gt is not None:
            parts.append(f"> {self.gt:g}")
        if self.le is not None:
            parts.append(f"<= {self.le:g}")
        if self.lt is not None:
            parts.append(f"< {self.lt:g}")
        return " and ".join(parts)

    def ok(self, v: float) -> bool:
        return not (
            (self.ge is not None and v < self.ge)
            or (self.gt is not None and v <= self.gt)
            or (self.le is not None and v > self.le)
            or (self.lt is not None and v >= self.lt)
        )


@dataclass(frozen=True)
class Parse:
    """A parser applied to strings before type checking (e.g. '60m' -> 3600.0)."""

    fn: Callable[[str], Any]
    hint: str


@dataclass(frozen=True)
class Choice:
    """A name that must be registered in the registry of this kind (Registry.kind): the schema
    names the kind, and whoever checks a config hands over the registries, so the allowed names
    are read from them, never copied here."""

    kind: str


def parse_duration(text: str) -> float:
    """Parse '90s', '45m', '1.5h' or a plain number of seconds into seconds."""
    t = str(text).strip().lower()
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        if t and t[-1] in scale:
            return float(t[:-1]) * scale[t[-1]]
        return float(t)
    except ValueError:
        raise ValueError(f"not a duration: {text!r}") from None



Prob = Annotated[float, Range(ge=0.0, lt=1.0)]
NonNeg = Annotated[float, Range(ge=0.0)]
NonNegInt = Annotated[int, Range(ge=0)]
PosInt = Annotated[int, Range(ge=1)]
Seed = Annotated[int, Range(ge=-(2**63), lt=2**63)]  # what torch.manual_seed takes (a 64-bit integer)
Metric = Literal["val_loss", "val_acc", "train_loss", "train_acc"]  # what every epoch record holds
# what a run may keep its best weights by: the metrics, and on imbalanced classes the validation
# split's balanced accuracy or macro-F1 (a model that ignores a rare class scores high val_acc)
Monitor = Literal["val_loss", "val_acc", "train_loss", "train_acc", "val_balanced_acc", "val_macro_f1"]
OptimizerName = Annotated[str, Choice("optimizer")]
ScheduleName = Annotated[str, Choice("schedule")]
TTAName = Annotated[str, Choice("test-time augmentation")]
TransferStrategy = Annotated[str, Choice("model.strategy")]
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
    split_seed: Seed = 0
    # Cross-validation (imgclf train --folds K sets both): the validation split is fold `fold` (from 0)
    # of `folds` stratified folds of the training images (a folder's own val/ images among them);
    # the other folds train. data.val_fraction is then unused.
    folds: Optional[Annotated[int, Range(ge=2, le=100)]] = None
    fold: NonNegInt = 0
    # dataset: the train split's per-channel mean and std; weights: the pretrained weights' own
    # (ImageNet's), the default with model.pretrained=imagenet; none (pixels in [0, 1]); per-image
    # standardization; centered: (x - 0.5) / 0.5, pixels in [-1, 1], the PyTorch CIFAR-10 tutorial's
    normalization: Optional[Literal["dataset", "weights", "none", "per-image", "centered"]] = None
    # normalization dataset with these per-channel values (0..1 units) instead of the train split's:
    # a report's own, e.g. mean [0.491, 0.482, 0.447], std [0.202, 0.199, 0.201] (report 001)
    mean: Optional[Annotated[list[float], Range(ge=0.0, le=1.0)]] = None
    std: Optional[Annotated[list[float], Range(gt=0.0, le=1.0)]] = None
    # Every data set: images resized to this side (`folder`: decoded at it, default 32) and converted
    # to 1 (gray) or 3 (RGB) channels (`folder` default 3); elsewhere on the device, batch by batch.
    image_size: Optional[Annotated[int, Range(ge=4, le=1024)]] = None
    channels: Optional[Literal[1, 3]] = None
    on_corrupt: Literal["error", "skip"] = "error"  # `folder`: what to do with an unreadable image
    # `folder` (and CIFAR's JPEG copy): memory: the decoded images are read into memory; disk: they are
    # read from the cache file batch by batch (data/on_disk.py), for folders larger than memory;
    # auto: disk when they would take 40% of the memory available or more
    storage: Literal["auto", "memory", "disk"] = "auto"
    # CSV lists of images (a `path` column; the findings.csv of imgclf inspect): the images to leave out
    # and those to train under another class (rows with action exclude / relabel, to their `label`)
    exclude: Optional[str] = None
    relabel: Optional[str] = None
    max_train: Optional[PosInt] = None  # use a seeded random N of the training images (after the val split)
    max_test: Optional[PosInt] = None  # use a seeded random N of the test (and validation) images
    # shuffle: every training image once an epoch; balanced: an epoch of as many draws, each class
    # equally likely (with replacement), for imbalanced classes (see also train.class_weights)
    sampler: Literal["shuffle", "balanced"] = "shuffle"
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
    monitor: Optional[Monitor] = None  # default: train.monitor
    patience: PosInt = 10  # epochs without improvement before stopping
    min_delta: NonNeg = 0.0  # smallest change that counts as improvement
    restore_best: bool = True  # load the best weights when stopping


@dataclass
class TrainConfig:
    epochs: PosInt = 15
    batch_size: Annotated[int, Range(ge=1, le=1_000_000)] = 64
    eval_batch_size: PosInt = 1000
    seed: Seed = 0
    monitor: Monitor = "val_acc"  # picks the best checkpoint
    time_budget: Optional[Seconds] = None  # stop cleanly after this wall-clock time
    max_params: Optional[PosInt] = None  # refuse a model with more trainable parameters
    eval_at_start: bool = False  # validation loss and accuracy before the first step (epoch 0 of the curves)
    label_smoothing: Prob = 0.0
    # auto: the training loss weighs each class by the inverse of its share of the training images,
    # N / (classes * n_c), so a rare class counts as much as a common one; none: every image alike
    class_weights: Literal["none", "auto"] = "none"
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
    # Score the test split after every epoch too (test_loss, test_acc in the history): for a study that
    # reads its test score as its report did, at the last epoch or the one of lowest test loss.
    test_each_epoch: bool = False


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

