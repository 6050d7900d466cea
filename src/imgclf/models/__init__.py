"""Models registered by name; builders take the input shape and class count, never a device."""
from __future__ import annotations

import inspect
import typing

from torch import nn

from ..config.fields import coerce, unknown_key
from ..core.errors import ConfigError
from . import mlp, cnn, backbones, resnet_cifar, conv_groups  # noqa: F401,E402,I001  (register the builders, in listing order)
from .registry import MODELS

__all__ = ["MODELS", "build_model", "check_model_options", "model_options"]


def model_options(name: str) -> dict[str, tuple[object, object]]:
    """The keyword options of a registered builder: name -> (annotation, default)."""
    fn = MODELS.get(name)
    hints = typing.get_type_hints(fn, include_extras=True)
    out = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            out[p.name] = (hints.get(p.name, typing.Any), p.default)
    return out


def check_model_options(name: str, options: dict) -> dict:
    """Validate a model's options against its builder's signature; return them coerced."""
    allowed = model_options(name)
    out = {}
    for key, val in options.items():
        if key not in allowed:
            if not allowed:
                raise ConfigError(f"model {name!r} takes no options, got model.{key}; remove it")
            raise unknown_key(str(key), list(allowed), "model.")
        out[key] = coerce(val, allowed[key][0], f"model.{key}")
    return out


def build_model(name: str, options: dict, in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Build registered model `name` for inputs of shape (C, H, W) and `num_classes` outputs."""
    return MODELS.get(name)(tuple(in_shape), int(num_classes), **check_model_options(name, options))
