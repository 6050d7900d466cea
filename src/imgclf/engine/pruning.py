"""Dynamic data pruning: skip images the network already fits, keep the gradient unbiased.

InfoBatch (Qin et al., ICLR 2024): each epoch, an image whose loss when last seen was
below the mean of all images' last losses is skipped with probability `p`; the kept
ones among them weigh 1 / (1 - p) in the loss, so the expected gradient of the epoch
is the full data set's. Near the end of the run (from `until`, a share of it) every
image trains again, so the annealing sees all the data. An epoch then costs less, and
a time budget holds more of them.
"""
from __future__ import annotations

from typing import Optional

import torch


class LossPruner:
    """Per-image last-seen losses of a training set of `n` images, and each epoch's pruning plan."""

    def __init__(self, n: int, p: float, until: float, device: torch.device):
        self.p, self.until = float(p), float(until)
        # NaN = never seen: compares False with the mean, so it is never pruned (epoch 1 trains all).
        self.scores = torch.full((n,), float("nan"), device=device)

    def plan(self, progress: float, g: torch.Generator) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
        """(indices to train this epoch, per-image loss weights over all n), or None to train all at weight 1.

        `progress` is the share of the run done at the epoch's start (0 to 1)."""
        if progress >= self.until:
            return None
        s = self.scores
        well = s < s.nanmean()  # well-learned: below the mean loss (NaN compares False)
        coin = torch.rand(len(s), generator=g).to(s.device)
        drop = well & (coin < self.p)
        weights = torch.where(well, 1.0 / (1.0 - self.p), 1.0)
        return torch.nonzero(~drop).flatten(), weights

    @torch.no_grad()
    def update(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        """Record the per-image losses of a batch of images `idx`."""
        self.scores[idx.to(self.scores.device)] = losses.float().to(self.scores.device)

    def state_dict(self) -> dict:
        return {"scores": self.scores.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.scores.copy_(state["scores"].to(self.scores.device))
