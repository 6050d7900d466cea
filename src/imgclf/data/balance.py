"""Class balance of a split: counts, how imbalanced they are, and the two remedies (a weighted
loss and a balanced sampler), computed on label tensors."""
from __future__ import annotations

import torch

# The largest class at this many times the smallest (or more) gets a warning line: the
# accuracy then says little of the rare classes (balanced accuracy and macro-F1 do).
WARN_RATIO = 10.0
# From this ratio on the epoch log and the test line show balanced accuracy and macro-F1 too:
# below it they stay within a point or so of the accuracy.
SHOW_RATIO = 1.5


def class_counts(y: torch.Tensor, classes: int) -> torch.Tensor:
    """Images of each class (int64, one per class, zeros for absent classes)."""
    return torch.bincount(y.cpu(), minlength=classes)


def imbalance_ratio(counts: torch.Tensor) -> float:
    """The largest class's count over the smallest present class's (1.0 when balanced)."""
    present = counts[counts > 0]
    return float(present.max()) / float(present.min()) if len(present) else 1.0


def shows_balance(y: torch.Tensor, classes: int) -> bool:
    """Whether labels `y` are imbalanced enough (SHOW_RATIO) for the logs to show balanced accuracy and macro-F1."""
    return imbalance_ratio(class_counts(y, classes)) >= SHOW_RATIO


def inverse_frequency(counts: torch.Tensor) -> torch.Tensor:
    """Loss weights N / (classes * n_c): 1 for every class when balanced; 0 for an absent class."""
    n, k = float(counts.sum()), len(counts)
    return torch.where(counts > 0, n / (k * counts.clamp_min(1).double()), torch.zeros((), dtype=torch.float64)).float()


def balanced_order(y: torch.Tensor, classes: int, n: int, g: torch.Generator) -> torch.Tensor:
    """`n` indices drawn with replacement, each present class equally likely, then an image of it
    uniformly: a class of any size is seen about n / classes times an epoch."""
    y = y.cpu()
    counts = class_counts(y, classes)
    present = torch.nonzero(counts).flatten()
    by_class = torch.argsort(y, stable=True)  # the indices of class 0, then of class 1, ...
    starts = torch.cumsum(counts, 0) - counts
    cls = present[torch.randint(len(present), (n,), generator=g)]
    offset = (torch.rand(n, generator=g, dtype=torch.float64) * counts[cls]).long()
    return by_class[starts[cls] + offset]


def warning(counts: torch.Tensor, names: list[str], remedied: bool = False) -> str | None:
    """One warning line when the largest class is WARN_RATIO times the smallest or more, else None;
    `remedied` (class weights or the balanced sampler on) leaves out the advice to use them."""
    ratio = imbalance_ratio(counts)
    if ratio < WARN_RATIO:
        return None
    big, small = int(counts.argmax()), int(torch.where(counts > 0, counts, counts.max() + 1).argmin())
    return (f"warning: imbalanced classes: {names[big]!r} has {int(counts[big]):,} training images, "
            f"{names[small]!r} {int(counts[small]):,} ({ratio:.0f}x); accuracy will hide the rare classes: "
            "read balanced accuracy and macro-F1"
            + ("" if remedied else ", and consider train.class_weights: auto or data.sampler: balanced"))
