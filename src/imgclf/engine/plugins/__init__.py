"""Plugins: what the training loop does besides training, each in a file of its own."""
from __future__ import annotations

from typing import Iterable

from .base import PLUGINS, Context, Plugin
from . import layers, linear_probe, two_phase, initial_eval, augment_phases, time_budget, early_stopping, tensorboard, checkpoints, epoch_log, epoch_test  # noqa: F401,E402,E501,I001  (registration order)

__all__ = ["PLUGINS", "Context", "Plugin", "build_plugins"]


def build_plugins(ctx: Context, extra: Iterable[Plugin] = ()) -> list[Plugin]:
    """The registered plugins this run wants, with the user's `extra` ones, in hook order."""
    found = [p for p in (PLUGINS.get(n)(ctx) for n in PLUGINS) if p is not None]
    return sorted([*found, *extra], key=lambda p: p.order)
