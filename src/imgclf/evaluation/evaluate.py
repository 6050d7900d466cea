"""Evaluate a model on one split: loss, top-1, top-5, per-class accuracy, confusion matrix."""
from __future__ import annotations

import torch
from torch import nn

from ..data.loader import Transform, batches
from ..data.splits import Split
from .metrics import confusion_matrix, per_class_accuracy, topk_correct


def evaluate_split(model: nn.Module, split: Split, transform: Transform, device: torch.device,
                   num_classes: int, batch_size: int = 1000, label_smoothing: float = 0.0,
                   full: bool = True) -> dict:
    """Metrics of `model` on `split`; `full` adds per-class accuracy and the confusion matrix."""
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    conf = torch.zeros(num_classes, num_classes, device=device, dtype=torch.long)
    # Sums stay on the device; one sync at the end instead of one per batch.
    with torch.inference_mode():
        for xb, yb in batches(split, batch_size, transform, device, train=False):
            logits = model(xb).float()
            loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum", label_smoothing=label_smoothing)
            hits = topk_correct(logits, yb, (1, 5))
            top1 += hits[1]
            top5 += hits[5]
            if full:
                conf += confusion_matrix(logits.argmax(1), yb, num_classes)
    model.train(was_training)
    n = max(len(split), 1)
    out = {"loss": float(loss_sum) / n, "top1": int(top1) / n, "top5": int(top5) / n, "n": len(split)}
    if full:
        out["per_class_accuracy"] = per_class_accuracy(conf.cpu())
        out["confusion"] = conf.cpu().tolist()
    return out
