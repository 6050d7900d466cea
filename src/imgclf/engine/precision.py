"""Mixed precision: which dtype autocast runs in, and the loss scaling fp16 needs."""
from __future__ import annotations

import contextlib
from typing import Optional

import torch

from ..errors import ConfigError


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for `precision` on `device`, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "auto":
        if device.type != "cuda":
            return None  # CPUs without AMX or AVX512-BF16 run bf16 slower than fp32: opt in with precision=bf16
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError("train.precision=fp16 needs a CUDA GPU; on a CPU use bf16 (fast with AMX or AVX512-BF16) or fp32")
    return torch.bfloat16 if precision == "bf16" else torch.float16


def autocast(device: torch.device, dtype: Optional[torch.dtype]):
    """A context that runs the forward pass in `dtype` (a no-op for fp32)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: Optional[torch.dtype]) -> Optional["torch.amp.GradScaler"]:
    """A gradient scaler for fp16 (its small exponent range underflows gradients); None otherwise."""
    if dtype is torch.float16:
        return torch.amp.GradScaler(device.type)
    return None
