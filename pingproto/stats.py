"""
Round-trip statistics, defined as ping(8) defines them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence

__all__ = ["RttSummary", "percentile", "summarize"]


@dataclass(frozen=True)
class RttSummary:
    """
    Statistics of round-trip times, in seconds.  C{mdev} is ping's: the
    population standard deviation (computed in two passes, as a steady
    link's nearly equal times would lose all precision to sum-of-squares).
    """

    count: int
    min: float
    avg: float
    max: float
    mdev: float
    median: float
    p95: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """
    The nearest-rank percentile of already sorted values.
    """
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(rtts: Sequence[float]) -> RttSummary | None:
    """
    Summarize round-trip times; L{None} when there are none.
    """
    if not rtts:
        return None
    ordered = sorted(rtts)
    n = len(ordered)
    # Clamped: rounding may put the mean of equal values a step past them.
    avg = min(max(statistics.fmean(ordered), ordered[0]), ordered[-1])
    return RttSummary(
        count=n,
        min=ordered[0],
        avg=avg,
        max=ordered[-1],
        mdev=statistics.pstdev(ordered),
        median=percentile(ordered, 0.5),
        p95=percentile(ordered, 0.95),
    )
