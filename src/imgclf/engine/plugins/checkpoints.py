"""Checkpoints: after every epoch, last.pt, best.pt (when the epoch is the best) and history.jsonl."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

from ...core.atomic import atomic_write_text
from ...core.run_files import BEST, HISTORY, LAST
from ..checkpoint import save_checkpoint
from .base import PLUGINS, Context, Plugin


class Checkpoints(Plugin):
    """Writes the run's state into `run_dir` at each epoch's end, after the plugins that steer the run."""

    order = 90

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir

    def on_epoch_end(self, trainer, record: dict) -> None:
        state = trainer.state_dict()
        if trainer.best_epoch == trainer.epoch:
            save_checkpoint(state, self.run_dir / BEST)
        save_checkpoint(state, self.run_dir / LAST)
        atomic_write_text(self.run_dir / HISTORY, "".join(json.dumps(r) + "\n" for r in trainer.history))


@PLUGINS.register("checkpoints")
def _checkpoints(ctx: Context) -> Optional[Plugin]:
    return Checkpoints(ctx.run_dir) if ctx.run_dir is not None else None
