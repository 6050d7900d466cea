"""The plugin interface: hooks with empty defaults that the training loop calls, and state
saved in every checkpoint under the plugin's name.

A new training idea is a new plugin file: a class with the hooks it needs, registered in
PLUGINS with a factory that says, from the config, whether a run wants it. The trainer
never names a plugin.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from ...core.registry import Registry


class Plugin:
    """Override any hook; each receives the Trainer.

    `name` keys the plugin's state in checkpoints: by default its class name in snake_case
    (EarlyStopping: early_stopping); `order` sets when its hooks run among the others (lower
    first: what steers the run, then what reports it, then what saves it).
    """

    name = "plugin"
    order = 50

    def __init_subclass__(cls, **kw) -> None:
        super().__init_subclass__(**kw)
        if "name" not in cls.__dict__:
            cls.name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", cls.__name__).lower()

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer) -> None:
        pass

    def on_batch_end(self, trainer, step: int, loss: torch.Tensor) -> None:
        pass

    def on_epoch_end(self, trainer, record: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass
class Context:
    """What a plugin factory may read: the config, the data, and where the run writes."""

    cfg: object
    splits: object
    run_dir: Optional[Path] = None
    log: Callable[[str], None] = print
    progress: bool = False


# name -> factory(Context) -> Plugin or None (None: this run does not want it)
PLUGINS: Registry[Callable[[Context], Optional[Plugin]]] = Registry("plugin")
