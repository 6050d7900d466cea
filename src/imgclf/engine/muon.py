"""Muon: momentum SGD whose conv-filter updates are orthogonalized (airbench94_muon's optimizer).

Each conv's filters, flattened to an (out, in x k x k) matrix, step along the nearest
semi-orthogonal matrix to their Nesterov momentum (every direction the same size), found
by a few Newton-Schulz iterations; the filters are rescaled to a fixed norm before each
step, which stands in for weight decay since the BN after each conv ignores their scale.
All other parameters (biases, BN shifts, the classifier) take plain Nesterov SGD steps
with weight decay. One optimizer for both, so checkpoints, `set_lr` and resume work as
for SGD: a group's `lr_scale` sets its share of the scheduled rate.
"""
from __future__ import annotations

import math

import torch

# Quintic Newton-Schulz coefficients chosen (Jordan, 2024) for a steep slope at zero: five
# iterations bring every singular value of a unit-norm matrix into about [0.6, 1.25].
_NS = (3.4445, -4.7750, 2.0315)


@torch.no_grad()
def orthogonalize(g: torch.Tensor, steps: int = 5, eps: float = 1e-7) -> torch.Tensor:
    """An approximation of U V^T for the SVD U S V^T of the 2-D matrix `g`."""
    a, b, c = _NS
    x = g / (g.norm() + eps)  # the largest singular value is then at most 1
    tall = x.shape[0] > x.shape[1]
    if tall:
        x = x.T
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * s @ s) @ x
    return x.T if tall else x


class Muon(torch.optim.Optimizer):
    """Groups with `muon=True` take orthogonalized steps; the others Nesterov SGD steps.

    `momentum` is the SGD groups' momentum, `muon_momentum` the Muon groups'. A Muon
    group's parameters are rescaled to norm sqrt(out channels) before each step: use it
    for filters followed by batch norm, whose output does not depend on that scale.
    """

    def __init__(self, groups, lr: float, momentum: float = 0.9, muon_momentum: float = 0.6,
                 nesterov: bool = True, ns_steps: int = 5):
        defaults = dict(lr=lr, momentum=momentum, muon_momentum=muon_momentum, nesterov=nesterov,
                        weight_decay=0.0, muon=False, ns_steps=ns_steps)
        super().__init__(groups, defaults)

    def _buffer(self, p: torch.Tensor) -> torch.Tensor:
        state = self.state[p]
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = torch.zeros_like(p)
        return state["momentum_buffer"]

    @torch.no_grad()
    def step(self, closure=None):
        """One step of every group (`closure` is not supported: pass None)."""
        for g in self.param_groups:
            params = [p for p in g["params"] if p.grad is not None]
            if not params:
                continue
            bufs = [self._buffer(p) for p in params]
            if g["muon"]:
                self._muon_step(g, params, bufs)
            else:
                self._sgd_step(g, params, bufs)

    @staticmethod
    def _sgd_step(g: dict, params: list, bufs: list) -> None:
        grads = [p.grad for p in params]
        if g["weight_decay"]:
            grads = torch._foreach_add(grads, params, alpha=g["weight_decay"])
        m = g["momentum"]
        torch._foreach_mul_(bufs, m)
        torch._foreach_add_(bufs, grads)
        steps = torch._foreach_add(grads, bufs, alpha=m) if g["nesterov"] else bufs
        torch._foreach_add_(params, steps, alpha=-g["lr"])

    @staticmethod
    def _muon_step(g: dict, params: list, bufs: list) -> None:
        m = g["muon_momentum"]
        for p, buf in zip(params, bufs):
            buf.mul_(m).add_(p.grad)
            d = p.grad.add(buf, alpha=m) if g["nesterov"] else buf
            p.mul_(math.sqrt(p.shape[0]) / p.norm().clamp_min(1e-12))
            update = orthogonalize(d.reshape(len(d), -1).float(), g["ns_steps"])
            # A tall matrix (more filters than weights per filter: depthwise, or a widening 1x1 conv)
            # has unit singular values on fewer directions than it has rows; scaling by
            # sqrt(rows / cols) gives its rows steps the size a square matrix's rows take (as Muon's
            # reference code does). A 3x3 conv is tall only on fewer than out / 9 input channels (a
            # stem on grayscale images): no conv of the 1-hour config is, so its steps are unchanged.
            update *= max(1.0, update.shape[0] / update.shape[1]) ** 0.5
            p.add_(update.view_as(p).to(p.dtype), alpha=-g["lr"])
