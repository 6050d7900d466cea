"""Top-k accuracy counts and confusion matrices, computed on tensors."""
from __future__ import annotations

import torch


def topk_correct(logits: torch.Tensor, y: torch.Tensor, ks: tuple[int, ...] = (1, 5)) -> dict[int, torch.Tensor]:
    """Number of rows whose label is among the k highest scores, for each k (k capped at the class count)."""
    kmax = min(max(ks), logits.shape[1])
    top = logits.topk(kmax, dim=1).indices
    hit = top.eq(y[:, None])
    return {k: hit[:, : min(k, kmax)].any(dim=1).sum() for k in ks}


def confusion_matrix(pred: torch.Tensor, y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes x num_classes): row = true class, column = predicted class."""
    idx = y.long() * num_classes + pred.long()
    return torch.bincount(idx, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: torch.Tensor) -> list[float | None]:
    """Recall of each class from a confusion matrix; None for a class absent from the split."""
    totals = confusion.sum(dim=1)
    diag = confusion.diagonal()
    return [None if int(t) == 0 else float(d) / float(t) for d, t in zip(diag, totals)]


def balanced_accuracy(confusion: torch.Tensor) -> float:
    """The mean recall over the classes present in the split (scikit-learn's balanced_accuracy_score):
    every class weighs the same, however many images it has."""
    recalls = [r for r in per_class_accuracy(confusion) if r is not None]
    return sum(recalls) / len(recalls) if recalls else 0.0


def macro_f1(confusion: torch.Tensor) -> float:
    """The mean over the classes present in the split of 2·precision·recall / (precision + recall)
    (0 for a class never predicted right)."""
    c = confusion.double()
    tp, true, pred = c.diagonal(), c.sum(dim=1), c.sum(dim=0)
    f1 = torch.where(true + pred > 0, 2 * tp / (true + pred).clamp_min(1), torch.zeros_like(tp))
    present = true > 0
    return float(f1[present].mean()) if bool(present.any()) else 0.0
