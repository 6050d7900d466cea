"""Perceptron and multi-layer perceptrons on flattened images."""
from __future__ import annotations

import math
from collections import OrderedDict
from typing import Annotated

from torch import nn

from ..config.schema import Range
from .registry import MODELS


# stackable: the options under which engine/batched.py can train this model side by side with others
# of its cohort (a perceptron or an MLP with one hidden layer and no dropout); models without it train alone.
@MODELS.register("perceptron", stackable=lambda options: True)
def perceptron(in_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """One linear layer from the flattened image to the class scores."""
    return nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(math.prod(in_shape), num_classes)))


@MODELS.register("mlp", stackable=lambda options: len(options.get("hidden", [100])) == 1
                 and not options.get("dropout", 0.0))
def mlp(
    in_shape: tuple[int, int, int],
    num_classes: int,
    *,
    hidden: Annotated[list[int], Range(ge=1)] = [100],  # noqa: B006  (read-only default)
    dropout: Annotated[float, Range(ge=0.0, lt=1.0)] = 0.0,
) -> nn.Module:
    """Fully connected layers of the given widths, each with ReLU (and dropout if set)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    width = math.prod(in_shape)
    for i, h in enumerate(hidden, 1):
        layers[f"fc{i}"] = nn.Linear(width, h)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        if dropout > 0:
            layers[f"drop{i}"] = nn.Dropout(dropout)
        width = h
    layers[f"fc{len(hidden) + 1}"] = nn.Linear(width, num_classes)
    return nn.Sequential(layers)
