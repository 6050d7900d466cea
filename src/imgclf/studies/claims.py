"""A report's claims, judged over seeds.

Each arm of a study (a named run) trained with N seeds gives N test accuracies: its figure is their
mean with a 95% interval (Student t, N - 1 degrees of freedom). A claim compares two arms on the
paired differences (seed k of one against seed k of the other, which share the data split), so the
spread that both arms share cancels out:

- "a beats b": holds when the interval of the difference lies above 0, reversed when below,
  undecided when it covers 0;
- "a equals b within d points": holds when the interval lies inside +-d, reversed when it lies
  wholly outside, undecided otherwise.

One seed gives no interval, so every claim is then undecided.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum
from typing import Optional, Sequence

from ..core.errors import ConfigError
from ..evaluation.interval import Interval, interval


class Verdict(Enum):
    HOLDS = "holds"  # the interval lies on the report's side
    REVERSED = "reversed"  # it lies on the other side
    UNDECIDED = "undecided"  # it covers the line: more seeds, or no difference to find

    def __str__(self) -> str:
        return self.value


class Kind(Enum):
    BETTER = "better"  # a scores higher than b
    EQUAL = "equal"  # a and b within `within` points of each other


@dataclass(frozen=True)
class Claim:
    """One of the report's claims about two arms, with the report's words and section."""

    says: str
    a: str
    b: str
    kind: Kind
    within: float = 0.0  # points, for an EQUAL claim
    section: str = ""

    def judge(self, a_values: Sequence[Optional[float]], b_values: Sequence[Optional[float]]) -> tuple[Interval, Verdict]:
        """The interval of the paired differences a - b (seed k against seed k, None where a seed has no
        result: that pair is left out, never shifted onto another seed) and the verdict it gives."""
        diff = interval([a - b for a, b in zip(a_values, b_values) if a is not None and b is not None])
        if self.kind is Kind.BETTER:
            verdict = (Verdict.HOLDS if diff.low > 0 else Verdict.REVERSED if diff.high < 0 else Verdict.UNDECIDED)
        else:
            inside = -self.within <= diff.low and diff.high <= self.within
            outside = diff.low > self.within or diff.high < -self.within
            verdict = Verdict.HOLDS if inside else Verdict.REVERSED if outside else Verdict.UNDECIDED
        return diff, verdict


def parse_claims(raw, arms: Sequence[str], where: str) -> tuple[Claim, ...]:
    """A study's `claims:` list, each naming arms the study has:

        - {says: "augmentation beats the plain net", section: "4.1", better: augmentation, than: plain}
        - {says: "batch norm adds nothing", equal: [bn, plain], within: 1.0}
    """
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: claims: is a list of {{says:, better:, than:}} or {{says:, equal: [a, b], within:}}")
    out = []
    for i, c in enumerate(raw):
        at = f"{where}: claims[{i}]"
        if not isinstance(c, dict) or set(c) - {"says", "section", "better", "than", "equal", "within"}:
            raise ConfigError(f"{at}: a claim has says:, section: and either better: and than:, or equal: [a, b] "
                              f"and within: (points)")
        if "better" in c:
            pair, kind, within = (c.get("better"), c.get("than")), Kind.BETTER, 0.0
        else:
            pair, kind, within = tuple(c.get("equal") or ()), Kind.EQUAL, c.get("within")
            if isinstance(within, bool) or not isinstance(within, (int, float)) or not 0 < within < 100:
                raise ConfigError(f"{at}: within: {within!r} is not a number of points between 0 and 100")
        bad = [a for a in pair if not isinstance(a, str) or a not in arms] if len(pair) == 2 else ["?"]
        if bad:
            raise ConfigError(f"{at}: names {bad[0]!r}, not two of the study's arms ({', '.join(arms)})")
        out.append(Claim(str(c.get("says") or f"{pair[0]} vs {pair[1]}"), pair[0], pair[1], kind, float(within),
                         str(c.get("section") or "")))
    return tuple(out)


def judge_study(claims: Sequence[Claim], scores: dict[str, list[Optional[float]]],
                scale: Optional[str] = None) -> list[dict]:
    """Each claim with its difference, interval and verdict, given each arm's scores (points) in seed
    order, None for a seed without a result; `scale` names where the study ran below the report's
    (e.g. 'at 30 epochs')."""
    out = []
    for c in claims:
        if not any(a is not None and b is not None for a, b in zip(scores.get(c.a, []), scores.get(c.b, []))):
            out.append({"says": c.says, "section": c.section, "verdict": None, "why": "an arm has no result yet"})
            continue
        diff, verdict = c.judge(scores[c.a], scores[c.b])
        out.append({"says": c.says, "section": c.section, "a": c.a, "b": c.b, "kind": c.kind.value,
                    "within": c.within or None, "difference": diff.mean,
                    "ci95": diff.half if math.isfinite(diff.half) else None, "n": diff.n,
                    "verdict": verdict.value, "scale": scale})
    return out
