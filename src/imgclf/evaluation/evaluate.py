"""Evaluate a model on one split: loss, top-1, top-5, balanced accuracy, macro-F1, per-class
accuracy, confusion matrix."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from ..core.registry import Registry
from ..data.loader import Transform, batches
from ..data.on_disk import rows
from ..data.splits import Split
from ..runtime.device import autocast
from .metrics import balanced_accuracy, confusion_matrix, macro_f1, per_class_accuracy, topk_correct

# Test-time augmentation modes: each maps a normalized batch to the views whose logits are
# averaged; `views` is the forward passes per image (what a time budget reserves for the test).
TTA: Registry = Registry("test-time augmentation")


@TTA.register("none", views=1)
def no_tta(x: torch.Tensor) -> list[torch.Tensor]:
    return [x]


@TTA.register("flip", views=2)
def flip(x: torch.Tensor) -> list[torch.Tensor]:
    """The image and its mirror."""
    return [x, x.flip(3)]


@TTA.register("flip-translate", views=6)
def flip_translate(x: torch.Tensor) -> list[torch.Tensor]:
    """The image, and it shifted one pixel up-left and down-right (edges mirrored: the shifts
    training crops also produce), each with its mirror."""
    views = flip(x)
    padded = nn.functional.pad(x, (1, 1, 1, 1), mode="reflect")
    h, w = x.shape[2], x.shape[3]
    for s in (padded[:, :, :h, :w], padded[:, :, 2:, 2:]):
        views += flip(s)
    return views


def tta_views(x: torch.Tensor, tta: str) -> list[torch.Tensor]:
    """The views of a normalized batch that test-time augmentation averages over."""
    return TTA.get(tta)(x)


def predict_logits(model: nn.Module, x: torch.Tensor, tta: str = "none",
                   amp_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """fp32 logits of a batch, averaged over the test-time views."""
    views = tta_views(x, tta)
    with autocast(x.device, amp_dtype):
        # One forward pass over all views: larger batches run faster than several small ones.
        out = model(views[0] if len(views) == 1 else torch.cat(views)).float()
    return out.view(len(views), x.shape[0], -1).mean(0)


def evaluate_split(model: nn.Module, split: Split, transform: Transform, device: torch.device,
                   num_classes: int, batch_size: int = 1000, label_smoothing: float = 0.0,
                   full: bool = True, tta: str = "none", amp_dtype: Optional[torch.dtype] = None) -> dict:
    """Metrics of `model` on `split`; `full` adds per-class accuracy and the confusion matrix (balanced
    accuracy and macro-F1, from the same counts, are always there).

    `tta` averages the logits over mirrored (and shifted) views; `amp_dtype` runs the model under autocast.
    """
    from ..runtime.distributed import all_sum, shard_range, world

    w = world()  # under torchrun each process scores its own part: every image exactly once
    a, b = shard_range(len(split), w)
    part = split if w.size == 1 else Split(rows(split.x, slice(a, b)), split.y[a:b])
    was_training = model.training
    model.eval()
    loss_sum = torch.zeros((), device=device)
    top1 = torch.zeros((), device=device, dtype=torch.long)
    top5 = torch.zeros((), device=device, dtype=torch.long)
    conf = torch.zeros(num_classes, num_classes, device=device, dtype=torch.long)
    # Sums stay on the device; one sync at the end instead of one per batch.
    with torch.inference_mode():
        for xb, yb in batches(part, batch_size, transform, device, train=False):
            logits = predict_logits(model, xb, tta, amp_dtype)
            loss_sum += nn.functional.cross_entropy(logits, yb, reduction="sum", label_smoothing=label_smoothing)
            hits = topk_correct(logits, yb, (1, 5))
            top1 += hits[1]
            top5 += hits[5]
            conf += confusion_matrix(logits.argmax(1), yb, num_classes)  # one bincount: cheap at every epoch
    model.train(was_training)
    for t in (loss_sum, top1, top5, conf):
        all_sum(t)
    n = max(len(split), 1)
    conf = conf.cpu()
    out = {"loss": float(loss_sum) / n, "top1": int(top1) / n, "top5": int(top5) / n, "n": len(split),
           "balanced_acc": balanced_accuracy(conf), "macro_f1": macro_f1(conf)}
    if full:
        out["per_class_accuracy"] = per_class_accuracy(conf)
        out["confusion"] = conf.tolist()
    return out
