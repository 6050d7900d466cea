"""Sharpness-aware minimization (Foret et al. 2021), as one extra pass per step.

SAM steps with the gradient taken at the worst nearby point: after the usual backward pass,
the weights move by `rho * g / ||g||` (uphill, `rho` in weight units: the L2 radius over all
trainable weights), a second forward and backward pass takes the gradient there, the weights
move back, and the optimizer steps with that second gradient. It trades a second pass per step
(twice the compute) for flatter minima, which the paper found to generalize better on CIFAR-10
at every network size it tried. Where epochs are plentiful and accuracy has stopped growing
with them, that compute is cheap.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


class SAM:
    """Replace the gradients of `model`'s trainable weights by their SAM counterparts."""

    def __init__(self, model: nn.Module, rho: float):
        self.rho = rho
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    @torch.no_grad()
    def _ascend(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Move the weights uphill by rho along their gradient; return the moved weights and the moves."""
        ps = [p for p in self.params if p.grad is not None]
        grads = [p.grad.float() for p in ps]  # under no_grad: nothing to detach
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
        moves = torch._foreach_mul(grads, self.rho / (norm + 1e-12))  # a tensor: no host sync
        moves = [m.to(p.dtype) for m, p in zip(moves, ps)]
        torch._foreach_add_(ps, moves)
        return ps, moves

    def second_pass(self, loss_at: Callable[[], torch.Tensor]) -> None:
        """With the first gradients in `.grad`, take them again at the perturbed weights.

        `loss_at()` runs the forward pass on the same batch and returns the loss. The batch-norm
        running statistics are left as the first pass set them (momentum 0 for the second).
        """
        ps, moves = self._ascend()
        momenta = [m.momentum for m in self.norms]
        for m in self.norms:
            m.momentum = 0.0  # running = (1 - 0) * running: unchanged by the perturbed pass
        try:
            for p in self.params:
                p.grad = None
            loss_at().backward()
        finally:
            for m, mom in zip(self.norms, momenta):
                m.momentum = mom
            with torch.no_grad():
                torch._foreach_sub_(ps, moves)
