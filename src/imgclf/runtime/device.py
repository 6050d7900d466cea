"""Where and how tensors compute: the device a run uses, the dtype autocast runs in, and the loss
scaling fp16 needs. Below every other layer, so evaluation, engine and inference share it."""
from __future__ import annotations

import contextlib
import functools
import os
import platform
from pathlib import Path
from typing import Optional

import torch

from ..core.errors import ConfigError


def pick_device(name: str) -> torch.device:
    """'auto' means the GPU when there is one; under torchrun, each process's own GPU (LOCAL_RANK)."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: cuda was asked for but no CUDA GPU is available; use train.device=auto")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")) % torch.cuda.device_count())
    return torch.device(name)


@contextlib.contextmanager
def torch_threads(n: int):
    """Compute on `n` torch threads (0: leave them as they are) and restore the count afterwards.

    A run started from Python must not change the threads of the code that called it: a later run
    in the same process would sum in another order and differ in the 7th digit from the same run
    started alone."""
    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n:
            torch.set_num_threads(before)


def machine(device: Optional[torch.device] = None) -> str:
    """The machine in words, for results that name where they were measured: 'AMD EPYC (family 25,
    model 17), 2 cores, torch 2.14.1' (and the GPU's name when `device` is one)."""
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:  # not Linux: the processor's name as the platform gives it
        pass
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    family = f" (family {info['cpu family']}, model {info['model']})" if "cpu family" in info and "model" in info else ""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    gpu = f", {torch.cuda.get_device_name(device)}" if device is not None and device.type == "cuda" else ""
    return f"{name}{family}, {cores} core{'s' if cores != 1 else ''}, torch {torch.__version__.split('+')[0]}{gpu}"


# CPU flags of native bf16 arithmetic. Without them oneDNN emulates bf16: conv-groups 48-80-80 trained
# at 70 images/s in bf16 against 636 in fp32 on 2 AMD EPYC (Zen 3, AVX2) cores, 9x slower.
_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True if this CPU computes bf16 natively (AMX or AVX512-BF16); False where that can't be read."""
    if platform.system() != "Linux":
        return False  # no flags to read; fp32 is the safe choice
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(f in flags for f in _BF16_FLAGS)


def autocast_dtype(precision: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype for `precision` on `device`, or None for plain fp32."""
    if precision == "fp32":
        return None
    if precision == "native":  # bf16 wherever the hardware computes it natively, fp32 elsewhere
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
        return torch.bfloat16 if device.type == "cpu" and cpu_has_native_bf16() else None
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
