"""Which epoch a study reads its test score at: the protocol of the report it reproduces.

- best-val: the epoch of best validation accuracy, whose weights the run keeps (imgclf's own rule);
- last: the last epoch trained (report 000 reads its nets at epoch 120);
- lowest-test-loss: the epoch of lowest test loss (report 001's choice).

The last two need the test score of every epoch, so their runs train with train.test_each_epoch.
"""
from __future__ import annotations

from enum import Enum
from typing import Optional, Sequence

from ..core.errors import ConfigError


class Protocol(Enum):
    BEST_VAL = "best-val"
    LAST = "last"
    LOWEST_TEST_LOSS = "lowest-test-loss"

    def __str__(self) -> str:
        return self.value

    @property
    def needs_epoch_tests(self) -> bool:
        """Whether the runs must score the test split after every epoch."""
        return self is not Protocol.BEST_VAL

    @classmethod
    def parse(cls, raw, where: str) -> "Protocol":
        if raw is None:
            return cls.BEST_VAL
        try:
            return cls(raw)
        except ValueError:
            raise ConfigError(f"{where}: protocol: {raw!r} is not known; choose one of: "
                              f"{', '.join(p.value for p in cls)}") from None


def pick_epoch(history: Sequence[dict], protocol: Protocol, best_epoch: Optional[int] = None) -> int:
    """The epoch (1-based) `protocol` reads in `history`; `best_epoch` is the run's kept epoch (best-val)."""
    if not history:
        raise ValueError("no epoch to pick from")
    if protocol is Protocol.LAST:
        return len(history)
    if protocol is Protocol.LOWEST_TEST_LOSS:
        losses = [(h["test_loss"], i) for i, h in enumerate(history, 1) if h.get("test_loss") is not None]
        if not losses:
            raise ValueError("the history holds no test loss: train with train.test_each_epoch")
        return min(losses)[1]  # the first epoch of the lowest loss
    if best_epoch is not None:
        return best_epoch
    vals = [(-h["val_acc"], i) for i, h in enumerate(history, 1) if h.get("val_acc") is not None]
    return min(vals)[1] if vals else len(history)


def test_score(history: Sequence[dict], protocol: Protocol, kept_test: Optional[float],
               best_epoch: Optional[int]) -> Optional[float]:
    """A run's test accuracy under `protocol`: the kept weights' score (best-val) or the history's
    test_acc at the epoch the protocol picks; None when the run has none."""
    if protocol is Protocol.BEST_VAL:
        return kept_test
    if not history or history[-1].get("test_acc") is None:
        return None
    return history[pick_epoch(history, protocol, best_epoch) - 1].get("test_acc")
