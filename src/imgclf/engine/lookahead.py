"""Lookahead on the weights, as airbench schedules it.

A slow copy of the trainable weights follows the fast ones: every `every` steps the slow
copy moves toward the fast weights, `slow = alpha * slow + (1 - alpha) * fast`, and the
fast weights restart from it. alpha grows with the cube of the run's progress, from 0 (plain
training early on, when the weights still move far) to `decay ** every` at the end, so the
last steps average over a window of recent weights. The optimizer's momentum is left alone.
"""
from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    """Pull the trainable weights of `model` back toward their slow average every `every` steps."""

    def __init__(self, model: nn.Module, decay: float, every: int = 5):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.slow = [p.detach().clone() for p in self.params]
        self.decay, self.every = decay, every
        self.steps = 0  # steps since the last sync

    def alpha(self, progress: float) -> float:
        """The slow copy's share at `progress` (0 to 1) of the run."""
        return (self.decay ** self.every) * min(max(progress, 0.0), 1.0) ** 3

    @torch.no_grad()
    def sync(self, progress: float) -> None:
        """Move the slow copy toward the weights, and the weights onto it."""
        fast = [p.detach() for p in self.params]
        torch._foreach_lerp_(self.slow, fast, 1.0 - self.alpha(progress))
        torch._foreach_copy_(fast, self.slow)
        self.steps = 0

    def step(self, progress: float) -> None:
        """Count one optimizer step; sync every `every` steps."""
        self.steps += 1
        if self.steps >= self.every:
            self.sync(progress)

    @torch.no_grad()
    def reset(self) -> None:
        """Restart the slow copy from the weights (after loading a checkpoint, whose weights were synced)."""
        torch._foreach_copy_(self.slow, [p.detach() for p in self.params])
        self.steps = 0
