"""Several networks trained side by side on the same batches and averaged: one model, N members.

In training mode the forward pass returns every member's logits, stacked as (batch,
classes, members), so that cross-entropy against the labels repeated per member trains
each member on its own loss (independent members disagree more, which is what averaging
gains from; a loss on the averaged output would train them as one wider network). In
evaluation mode it returns the log of the members' mean probabilities, (batch, classes):
evaluation, test-time augmentation, checkpoints and the parameter budget see one model.
"""
from __future__ import annotations

import math

import torch
from torch import nn


class Ensemble(nn.Module):
    """The members' logits stacked (training) or their mean probabilities' log (evaluation)."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members], dim=-1)
        if self.training:
            return logits
        return torch.logsumexp(logits.float().log_softmax(1), dim=-1) - math.log(len(self.members))


def member_loss(loss_fn: nn.Module, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """`loss_fn` on a training output: the mean of the members' losses when `out` is stacked."""
    if out.ndim == 3:
        return loss_fn(out, y[:, None].expand(-1, out.shape[-1]))
    return loss_fn(out, y)


def mean_logits(out: torch.Tensor) -> torch.Tensor:
    """A training output as (batch, classes): the members' mean logits when `out` is stacked."""
    return out.mean(-1) if out.ndim == 3 else out
