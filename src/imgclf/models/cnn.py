"""CNNs from a compact layer spec, and the presets of the seed studies.

Spec tokens, separated by '-':
  c64    3x3 conv (or model.kernel_size), 64 channels, 'same' padding, then ReLU
  c32k5  the same with a 5x5 kernel
  b      batch norm on the previous conv/fc output (placed before its ReLU)
  p      2x2 max-pool, stride 2         ap  2x2 average pool        gap  global average pool
  pc     2x2 max-pool that keeps an odd last row and column (ceil_mode: 7x7 -> 4x4, not 3x3)
  d0.25  dropout with rate 0.25
  f200   fully connected, 200 units, then ReLU (the image is flattened before the first one)
A final fully connected layer to the class scores is always appended.
"""
from __future__ import annotations

import re
from collections import OrderedDict
from typing import Annotated, Optional

from torch import nn

from ..config.schema import Range
from ..core.errors import ConfigError
from .registry import MODELS

_TOKEN = re.compile(r"^(?:(c)(\d+)(?:k(\d+))?|(b)|(p)|(ap)|(gap)|(d)(0?\.\d+|0|1e-\d+)|(f)(\d+)|(pc))$")


def parse_spec(spec: str) -> list[tuple]:
    """Parse a layer spec into tokens: ('c', out, k), ('b',), ('p',), ('pc',), ('ap',), ('gap',), ('d', rate), ('f', n)."""
    out = []
    for tok in spec.strip().lower().split("-"):
        m = _TOKEN.match(tok)
        if not m:
            raise ConfigError(
                f"model.spec: bad token {tok!r} in {spec!r}; use c<channels>[k<kernel>], b, p, pc, ap, gap, "
                "d<rate>, f<units> joined by '-', e.g. c64-p-c64-p-f200"
            )
        g = m.groups()
        if g[0]:
            if int(g[1]) < 1 or (g[2] is not None and int(g[2]) < 1):
                raise ConfigError(f"model.spec: {tok!r} needs at least 1 channel and a kernel of at least 1")
            out.append(("c", int(g[1]), int(g[2]) if g[2] else None))
        elif g[3]:
            out.append(("b",))
        elif g[4]:
            out.append(("p",))
        elif g[11]:
            out.append(("pc",))
        elif g[5]:
            out.append(("ap",))
        elif g[6]:
            out.append(("gap",))
        elif g[7]:
            rate = float(g[8])
            if not 0 <= rate < 1:
                raise ConfigError(f"model.spec: dropout rate in {tok!r} must be in [0, 1)")
            out.append(("d", rate))
        else:
            if int(g[10]) < 1:
                raise ConfigError(f"model.spec: {tok!r} needs at least 1 unit")
            out.append(("f", int(g[10])))
    return out


def build_cnn(spec: str, in_shape: tuple[int, int, int], num_classes: int, kernel_size: int = 3,
              batch_norm: bool = False, dropout: float = 0.0, conv_dropout: float = 0.0) -> nn.Sequential:
    """Build the Sequential a spec describes; named conv1, bn1, pool1, fc1... as in the seed tables."""
    c, h, w = in_shape
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    n = {"conv": 0, "bn": 0, "pool": 0, "drop": 0, "fc": 0, "relu": 0}
    flat: Optional[int] = None  # width once flattened
    pending_relu = False

    def add(kind: str, module: nn.Module) -> None:
        n[kind] += 1
        layers[f"{kind}{n[kind]}"] = module

    def flush() -> None:
        nonlocal pending_relu
        if pending_relu:
            add("relu", nn.ReLU(inplace=True))
            pending_relu = False

    toks = parse_spec(spec)
    for i, tok in enumerate(toks):
        kind = tok[0]
        if kind != "b":
            flush()
        if kind == "c":
            if flat is not None:
                raise ConfigError(f"model.spec: conv {tok[1]} comes after a fully connected layer in {spec!r}")
            k = tok[2] or kernel_size
            add("conv", nn.Conv2d(c, tok[1], k, padding=k // 2))
            c = tok[1]
            h, w = h + 2 * (k // 2) - k + 1, w + 2 * (k // 2) - k + 1
            pending_relu = True
            if batch_norm and not (i + 1 < len(toks) and toks[i + 1][0] == "b"):
                add("bn", nn.BatchNorm2d(c))
        elif kind == "b":
            prev = list(layers.values())[-1] if layers else None
            if isinstance(prev, nn.Conv2d):
                add("bn", nn.BatchNorm2d(c))
            elif isinstance(prev, nn.Linear):
                add("bn", nn.BatchNorm1d(flat))
            else:
                raise ConfigError(f"model.spec: 'b' must follow a conv or fc token in {spec!r}")
        elif kind in ("p", "pc", "ap"):
            if flat is not None:
                raise ConfigError(f"model.spec: a pool comes after a fully connected layer in {spec!r}")
            if h < 2 or w < 2:
                raise ConfigError(
                    f"model.spec: pool {n['pool'] + 1} of {spec!r} would shrink a {h}x{w} map below 1x1 "
                    f"(input {in_shape[1]}x{in_shape[2]}); remove a 'p' or use larger images"
                )
            add("pool", nn.AvgPool2d(2) if kind == "ap" else nn.MaxPool2d(2, ceil_mode=kind == "pc"))
            h, w = (-(-h // 2), -(-w // 2)) if kind == "pc" else (h // 2, w // 2)
            if conv_dropout > 0:
                add("drop", nn.Dropout(conv_dropout))
        elif kind == "gap":
            add("pool", nn.AdaptiveAvgPool2d(1))
            h = w = 1
        elif kind == "d":
            add("drop", nn.Dropout(tok[1]))
        elif kind == "f":
            if flat is None:
                layers["flatten"] = nn.Flatten()
                flat = c * h * w
            add("fc", nn.Linear(flat, tok[1]))
            flat = tok[1]
            pending_relu = True
            if dropout > 0:
                flush()
                add("drop", nn.Dropout(dropout))
    flush()
    if flat is None:
        layers["flatten"] = nn.Flatten()
        flat = c * h * w
    add("fc", nn.Linear(flat, num_classes))
    return nn.Sequential(layers)


@MODELS.register("cnn")
def cnn(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    spec: str = "c32-p-c64-p-f128",
    kernel_size: Annotated[int, Range(ge=1, le=15)] = 3,
    batch_norm: bool = False,  # batch norm after every conv
    dropout: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.0,  # after every hidden fc layer
    conv_dropout: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.0,  # after every pool
) -> nn.Module:
    """A CNN described by a layer spec (see the module docstring)."""
    return build_cnn(spec, in_shape, num_classes, kernel_size, batch_norm, dropout, conv_dropout)


PRESETS = {
    "wide": ("c64-p-c64-p-c48-p-f200", "convs 64-64-48, a 2x2 max-pool after each, fc 200"),
    "deep": ("c8-c8-p-c16-c16-p-c32-c32-p-f180-f90", "convs 8-8-16-16-32-32, a pool after every second, fc 180-90"),
    "wide-deep": ("c24-c24-p-c32-c32-p-c48-c48-p-f220-f120", "convs 24-24-32-32-48-48, fc 220-120"),
    "wide-deep-bn": ("c24-b-c24-p-c32-b-c32-p-c48-b-c48-p-f220-f120", "wide-deep, BN after conv1, conv3, conv5"),
    "wide-deep-dropout": ("c24-c24-p-c32-c32-p-c48-c48-p-d0.1-f220-d0.25-f120-d0.25",
                          "wide-deep, dropout 0.1 before fc1 and 0.25 after fc1 and fc2"),
    "keras-initial": ("c8-p-f64", "report 002's initial Keras CNN: one 3x3 conv of 8 filters, a 2x2 pool, fc 64"),
    # the last pool keeps an odd edge (report 001's ceil_mode=True): fc1 has 1024 inputs on 28-px crops as on 32 px
    "tp5x5": ("c32k5-p-c64k5-p-c64k5-pc-f1000", "5x5 convs 32-64-64, 2x2 pools, fc 1000"),
    "tp5x5-bn": ("c32k5-b-p-c64k5-b-p-c64k5-b-pc-f1000", "tp5x5 with BN after each conv"),
}


def _register_preset(name: str, spec: str, doc: str) -> None:
    def builder(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
        return build_cnn(spec, in_shape, num_classes)

    builder.__doc__ = f"{doc} (spec {spec})."
    builder.__name__ = name.replace("-", "_")
    MODELS.register(name)(builder)


for _name, (_spec, _doc) in PRESETS.items():
    _register_preset(_name, _spec, _doc)


@MODELS.register("keras-small")
def keras_small(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    dropout: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.25,
) -> nn.Module:
    """The small Keras CNN: 3x3 convs 8-16-32 each with a 2x2 pool, fc 64, dropout."""
    return build_cnn(f"c8-p-c16-p-c32-p-f64-d{dropout}" if dropout > 0 else "c8-p-c16-p-c32-p-f64",
                     in_shape, num_classes)
