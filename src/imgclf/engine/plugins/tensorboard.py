"""Live view: TensorBoard scalars per epoch, the hyperparameters as JSON beside them."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ...core.atomic import atomic_write_text
from ...core.errors import ConfigError
from .base import PLUGINS, Context, Plugin


class TensorBoardLogger(Plugin):
    """Writes each epoch's losses, accuracies, learning rate and seconds to run_dir/tensorboard."""

    name = "tensorboard"
    order = 80
    KEYS = ("train_loss", "val_loss", "train_acc", "val_acc", "lr", "seconds")

    def __init__(self, log_dir: Path, hparams: dict):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise ConfigError("train.tensorboard needs the tensorboard package: pip install 'imgclf[tensorboard]'") from None
        log_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(log_dir / "hparams.json", json.dumps(hparams, indent=2) + "\n")
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_epoch_end(self, trainer, record: dict) -> None:
        for key in self.KEYS:
            if record.get(key) is not None:
                group = key.split("_")[-1] if key.startswith(("train_", "val_")) else "misc"
                self.writer.add_scalar(f"{group}/{key}", record[key], record["epoch"])
        self.writer.flush()

    def on_fit_end(self, trainer) -> None:
        self.writer.close()


@PLUGINS.register("tensorboard")
def _tensorboard(ctx: Context) -> Optional[Plugin]:
    if not ctx.cfg.train.tensorboard or ctx.run_dir is None:
        return None
    return TensorBoardLogger(ctx.run_dir / "tensorboard", ctx.cfg.to_dict())
