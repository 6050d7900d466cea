"""Pretrained weights: where they come from, how they fit a model whose input or head differs, and
which layers then train.

`model.pretrained` is `imagenet` (torchvision's default weights for the backbone, read from
torch's cache folder, downloaded there when online), a torchvision `state_dict` file, or an
imgclf run or checkpoint (pretrain on one data set, transfer to another). Tensors are matched by
name: the first conv is adapted when the channel counts differ (one channel: the sum of the RGB
filters; n channels: the RGB filters repeated and scaled by 3/n, as timm does), and tensors whose
shape differs otherwise (the head of another class count) start fresh.
"""
from __future__ import annotations

import hashlib
import math
import socket
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..config.schema import ExperimentConfig
from ..core.errors import ConfigError
from ..core.run_files import BEST
from .strategies import strategy_attr


def imagenet_file(model_name: str) -> tuple[Path, str]:
    """Where torch keeps `model_name`'s default ImageNet weights, and their download address."""
    from torchvision.models import get_model_weights

    try:
        weights = get_model_weights(model_name).DEFAULT
    except (ValueError, KeyError):
        raise ConfigError(f"model.pretrained=imagenet: torchvision has no ImageNet weights for {model_name}; "
                          "give a weights file or a run instead") from None
    return Path(torch.hub.get_dir()) / "checkpoints" / weights.url.rsplit("/", 1)[-1], weights.url


def weights_file(spec: str, model_name: str, download: bool = True) -> Path:
    """The file `model.pretrained` names, found (or, for imagenet, fetched) now: one line if it cannot be."""
    if spec == "imagenet":
        path, url = imagenet_file(model_name)
        if path.is_file():
            return path
        host = url.split("/")[2]
        if download and _online(host):
            from ..data.download import download as fetch

            return fetch(url, path)
        raise ConfigError(f"model.pretrained=imagenet: {path} is missing and {host} cannot be reached; download "
                          f"{url} on a machine that is online and put it at that path (or set TORCH_HOME)")
    p = Path(spec).expanduser()
    if p.is_dir():  # a run folder: its kept weights
        p = p / BEST
    if not p.is_file():
        raise ConfigError(f"model.pretrained: {p} not found; give imagenet, a weights file or a run folder")
    return p


def _online(host: str, timeout_s: float = 3.0) -> bool:
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
        return True
    except OSError:
        return False


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_weights(path: Path) -> dict:
    """A state_dict from a torchvision weights file or from an imgclf checkpoint (its model)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # damaged or not a torch file: many classes, one meaning
        raise ConfigError(f"model.pretrained: {path} is not a readable weights file ({type(e).__name__}); "
                          "give a torchvision state_dict, an imgclf checkpoint or a run folder") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # an imgclf checkpoint
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConfigError(f"model.pretrained: {path} holds no weights (a state_dict of tensors)")
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}


def adapt_first_conv(w: torch.Tensor, channels: int) -> torch.Tensor:
    """Conv filters for another input channel count that keep the features: one channel gets the sum
    of the filters' channels; n channels get them repeated and scaled by (old channels) / n."""
    old = w.shape[1]
    if channels == 1:
        return w.sum(1, keepdim=True)
    reps = math.ceil(channels / old)
    return w.repeat(1, reps, 1, 1)[:, :channels] * (old / channels)


def load_pretrained(model: nn.Module, state: dict, first_conv_weight: Optional[str] = None) -> dict:
    """Load the tensors of `state` that fit `model` by name; returns what was loaded, adapted and left new.

    The head always starts fresh: its rows are the source's classes (CIFAR-10's airplane is not
    Fashion-MNIST's T-shirt even when both have ten), so only the features transfer."""
    own = model.state_dict()
    head = head_name(model)
    loaded, adapted, new = {}, [], []
    for k, v in own.items():
        w = None if k.startswith(head + ".") else state.get(k)
        if w is not None and k == first_conv_weight and w.ndim == 4 and w.shape[1] != v.shape[1] \
                and w.shape[0] == v.shape[0] and w.shape[2:] == v.shape[2:]:
            w = adapt_first_conv(w, v.shape[1])
            adapted.append(k)
        if w is not None and w.shape == v.shape:
            loaded[k] = w.to(v.dtype)
        elif not k.endswith("num_batches_tracked"):
            new.append(k)
    if not loaded:
        raise ConfigError("model.pretrained: no tensor of the weights fits the model (other names or shapes); "
                          "is it the same architecture?")
    model.load_state_dict({**own, **loaded})
    return {"loaded": len(loaded), "adapted": adapted, "new": new}


def pretrain(model: nn.Module, cfg: ExperimentConfig, log=lambda m: None) -> Optional[str]:
    """Load cfg.model.pretrained into `model` and return the file's SHA-256 (None without pretrained weights).

    A run that pins cfg.model.pretrained_sha256 refuses weights whose hash differs."""
    spec = cfg.model.pretrained
    if spec in (None, "none"):
        return None
    from .backbones import first_conv

    path = weights_file(spec, cfg.model.name, cfg.data.download)
    digest = sha256(path)
    pinned = cfg.model.pretrained_sha256
    if pinned and pinned != digest:
        raise ConfigError(f"model.pretrained: {path} has SHA-256 {digest[:12]}..., the run was made with "
                          f"{pinned[:12]}...; restore those weights or drop model.pretrained_sha256")
    conv_name = next((n for n, m in model.named_modules() if m is first_conv(model)[2]), None)
    info = load_pretrained(model, read_weights(path), f"{conv_name}.weight" if conv_name else None)
    log(f"pretrained weights {path} (sha256 {digest[:12]}...): {info['loaded']} tensors loaded"
        + (f", {', '.join(info['adapted'])} adapted to {model.state_dict()[info['adapted'][0]].shape[1]} channel(s)"
           if info["adapted"] else "")
        + (f", new: {', '.join(info['new'][:4])}{'...' if len(info['new']) > 4 else ''}" if info["new"] else ""))
    return digest


def _prefixes(model_cfg) -> list[str]:
    """The parameter-name prefixes of model.trainable ("layer4,fc" -> layer4, fc)."""
    return [p.strip() for p in (model_cfg.trainable or "").split(",") if p.strip()]


def _under(name: str, prefix: str) -> bool:
    """Whether parameter or layer `name` is `prefix` or inside it (layer4 holds layer4.0.conv1.weight)."""
    return name == prefix or name.startswith(prefix + ".")


def head_name(model: nn.Module) -> str:
    """The model's last top-level layer with parameters: its head (fc, classifier, ...)."""
    return [n for n, m in model.named_children() if any(True for _ in m.parameters())][-1]


def apply_strategy(model: nn.Module, cfg: ExperimentConfig) -> nn.Module:
    """Freeze what `model.strategy: freeze` leaves out of `model.trainable` (`linear-probe`: all but the
    head), with the chosen batch-norm policy.

    frozen (default): frozen BN layers keep their running statistics and affine (FrozenBatchNorm2d);
    batch: they normalize with each batch's statistics, their running statistics and affine fixed;
    train: they train as usual, statistics and affine, inside frozen blocks. The linear probe's
    features come from the body in evaluation mode: its batch norm is always `frozen`."""
    m = cfg.model
    if not strategy_attr(m, "freezes", False):
        return model
    head_only = strategy_attr(m, "head_only", False)
    prefixes = [head_name(model)] if head_only else _prefixes(m)
    policy = "frozen" if head_only else m.frozen_bn

    def trains(name: str) -> bool:
        return any(_under(name, p) for p in prefixes)

    for name, p in model.named_parameters():
        p.requires_grad_(trains(name))
    from torchvision.ops import FrozenBatchNorm2d

    for parent_name, parent in list(model.named_modules()):
        for attr, bn in list(parent.named_children()):
            full = f"{parent_name}.{attr}" if parent_name else attr
            if not isinstance(bn, nn.BatchNorm2d) or trains(full):
                continue
            if policy == "frozen":
                frozen = FrozenBatchNorm2d(bn.num_features, bn.eps)
                frozen.weight.copy_(bn.weight.detach()), frozen.bias.copy_(bn.bias.detach())
                frozen.running_mean.copy_(bn.running_mean), frozen.running_var.copy_(bn.running_var)
                setattr(parent, attr, frozen)
            elif policy == "batch":
                bn.momentum = 0.0  # batch statistics normalize; the running ones never move
            else:  # train
                bn.weight.requires_grad_(True), bn.bias.requires_grad_(True)
    return model


def check_trainable(model: nn.Module, cfg: ExperimentConfig) -> None:
    """`model.trainable` must name parameters the model has."""
    m = cfg.model
    if not strategy_attr(m, "takes_trainable", False):
        return
    names = [n for n, _ in model.named_parameters()]
    prefixes = _prefixes(m)
    if not prefixes:
        raise ConfigError("model.strategy=freeze needs model.trainable, the parameter prefixes that train "
                          f"(e.g. {names[-1].rsplit('.', 2)[0] if names else 'fc'})")
    missing = [p for p in prefixes if not any(_under(n, p) for n in names)]
    if missing:
        tops = sorted({n.split(".")[0] for n in names})
        raise ConfigError(f"model.trainable: {', '.join(missing)} names no parameter of {m.name}; its top-level "
                          f"layers are {', '.join(tops)}")



def weights_stats(cfg: ExperimentConfig, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-channel mean and std the pretrained weights were trained with (0..1 units), for `channels`:
    ImageNet's from torchvision, a run's from its checkpoint. A gray image gets the mean of the RGB ones."""
    spec = cfg.model.pretrained
    if spec == "imagenet":
        from torchvision.models import get_model_weights

        t = get_model_weights(cfg.model.name).DEFAULT.transforms()
        mean, std = torch.tensor(t.mean), torch.tensor(t.std)
    else:
        path = weights_file(spec, cfg.model.name, download=False)
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not (isinstance(state, dict) and "mean" in state and "std" in state):
            raise ConfigError(f"data.normalization=weights: {path} holds no normalization statistics (a plain "
                              "state_dict); choose data.normalization=dataset")
        mean, std = torch.tensor(state["mean"]), torch.tensor(state["std"])
    if len(mean) == channels:
        return mean.float(), std.float()
    if channels == 1:
        return mean.mean().view(1).float(), std.mean().view(1).float()
    return mean.mean().repeat(channels).float(), std.mean().repeat(channels).float()
