"""Likely label errors: out-of-sample predicted probabilities from K-fold training, ranked by
confident learning (cleanlab: Northcutt et al., "Confident Learning", JAIR 2021).

Every image is scored by a model that never trained on it: the images are dealt into K stratified
folds, and the model trained on K-1 folds predicts the K-th. cleanlab then estimates which given
labels disagree with those probabilities beyond the model's own confusion between the classes.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from ..config.schema import ExperimentConfig
from ..data.adapt import target_shape
from ..data.loader import batches
from ..data.on_disk import rows
from ..data.splits import Split, Splits, fold_ids, train_stats
from ..models.pretrained import weights_stats
from ..run.train import fit_in_memory

DEFAULT_FOLDS = 5


def _stats(cfg: ExperimentConfig, x: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalization statistics a run of `cfg` would use on training images `x`."""
    return weights_stats(cfg, channels) if cfg.data.normalization == "weights" else train_stats(cfg.data, x, channels)


def out_of_fold_probs(cfg: ExperimentConfig, x: torch.Tensor, y: torch.Tensor, classes: list[str],
                      folds: int = DEFAULT_FOLDS, log: Callable[[str], None] = print) -> torch.Tensor:
    """(N, classes) probabilities, each row from the model that held its image out."""
    fold = fold_ids(y, folds, cfg.data.split_seed + 7)
    view = target_shape(cfg.data, tuple(x.shape[1:]))
    probs = torch.zeros(len(y), len(classes))
    for k in range(folds):
        train_idx, held_idx = (fold != k).nonzero().flatten(), (fold == k).nonzero().flatten()
        train, held = Split(rows(x, train_idx), y[train_idx]), Split(rows(x, held_idx), y[held_idx])
        mean, std = _stats(cfg, train.x, view[0])
        trainer = fit_in_memory(cfg, splits=Splits(train, None, held, classes, mean, std, view))
        model = trainer.model.eval()
        out = []
        with torch.inference_mode():
            for xb, _ in batches(held, cfg.train.eval_batch_size, trainer.transform, trainer.device, train=False):
                out.append(torch.softmax(model(xb).float(), 1).cpu())
        p = torch.cat(out)
        probs[held_idx] = p
        acc = float((p.argmax(1) == held.y).double().mean())
        log(f"fold {k + 1}/{folds}: trained on {len(train):,} images, {100 * acc:.2f}% of the {len(held):,} "
            f"held-out images predicted as labelled")
    return probs


def label_issues(y: torch.Tensor, probs: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The indices cleanlab flags as likely mislabelled, most likely first, and every image's label
    quality (the probability its given label gets, 0..1: low is suspect)."""
    from cleanlab.filter import find_label_issues  # kept off imgclf's start-up: it imports scikit-learn
    from cleanlab.rank import get_label_quality_scores

    labels, p = y.numpy(), probs.double().numpy()
    p = p / p.sum(1, keepdims=True)
    flagged = find_label_issues(labels=labels, pred_probs=p, return_indices_ranked_by="self_confidence")
    return np.asarray(flagged, dtype=np.int64), get_label_quality_scores(labels, p, method="self_confidence")
