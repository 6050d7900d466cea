"""Progressive self-knowledge distillation (PS-KD, Kim et al. 2021): the model teaches itself.

Each image's target mixes its (smoothed) label with the model's own predicted distribution
for that image in the previous epoch, with the prediction's share growing linearly over the
run to `alpha` at its end: the model learns which wrong classes it found plausible for each
image, a per-image label smoothing instead of a uniform one, at no extra compute (the
predictions come from the training forward pass; 4 bytes x classes per image of memory).
The paper reports CIFAR-100 ResNet-18 79.18% against 75.82% trained on hard labels.
"""
from __future__ import annotations

import torch
from torch import nn


class SelfDistillation:
    """Last-epoch predictions of a training set of `n` images, and the targets mixed from them."""

    def __init__(self, n: int, num_classes: int, alpha: float, device: torch.device):
        self.alpha = float(alpha)
        # Uniform until an image is first seen: its target is then plain label smoothing.
        self.probs = torch.full((n, num_classes), 1.0 / num_classes, device=device)

    def loss(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, progress: float,
             label_smoothing: float = 0.0) -> torch.Tensor:
        """Cross-entropy of `logits` against the mixed targets of images `idx`; records their predictions.

        `progress` is the share of the run done (0 to 1): the predictions weigh alpha * progress.
        """
        logp = torch.log_softmax(logits.float(), -1)
        c = logp.shape[-1]
        with torch.no_grad():
            hard = nn.functional.one_hot(y, c).float() * (1 - label_smoothing) + label_smoothing / c
            a = self.alpha * min(max(progress, 0.0), 1.0)
            target = hard * (1 - a) + self.probs[idx] * a
            self.probs[idx] = logp.exp()
        return -(target * logp).sum(-1).mean()

    def state_dict(self) -> dict:
        return {"probs": self.probs.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.probs.copy_(state["probs"].to(self.probs.device))
