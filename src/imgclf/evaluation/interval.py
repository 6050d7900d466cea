"""A mean with its 95% interval (Student t, n - 1 degrees of freedom): the one interval of the
package, for a study's seeds and for the folds of a cross-validation alike."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from scipy import stats  # installed with scikit-learn


@dataclass(frozen=True)
class Interval:
    """A mean and its 95% interval over n values (the half-width is infinite for n < 2)."""

    mean: float
    half: float
    n: int

    @property
    def low(self) -> float:
        return self.mean - self.half

    @property
    def high(self) -> float:
        return self.mean + self.half

    def words(self, unit: str = "") -> str:
        """'72.1 +- 0.8 (n=3)', or '72.1 (n=1)' without an interval."""
        spread = f" ± {self.half:.2f}" if math.isfinite(self.half) else ""
        return f"{self.mean:.2f}{unit}{spread} (n={self.n})"


def interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """The mean of `values` with its Student-t interval at `level`."""
    n = len(values)
    if n == 0:
        raise ValueError("no values to take the mean of")
    mean = sum(values) / n
    if n < 2:
        return Interval(mean, math.inf, n)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    return Interval(mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / math.sqrt(n), n)
