"""The model registry (its own module so builders can import it without cycles)."""
from typing import Callable

from ..core.registry import Registry

MODELS: Registry[Callable] = Registry("model")
