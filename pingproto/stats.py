"""
Round-trip and link statistics, defined as ping(8) and RFC 3550 define them,
in constant memory.

A monitor may run for days at one ping a second, so nothing here keeps
every sample: L{RttStats} keeps running sums (Welford's, which stay exact
for a steady link's nearly equal times), the first few thousand values for
exact percentiles, and past that a logarithmic histogram whose buckets are
1 % wide, so that the middle of one is within 0.5 % of any value in it.
L{LinkStats} adds what happens to the connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = [
    "LinkStats",
    "LinkSummary",
    "RttStats",
    "RttSummary",
    "percentile",
    "summarize",
]

# Exact percentiles up to this many samples (an hour at 1/s); the histogram
# after that.
EXACT_LIMIT = 4096
_BUCKET_RATIO = 1.01
_LOG_RATIO = math.log(_BUCKET_RATIO)
_SMALLEST = 1e-7  # 0.1 us; anything below shares the first bucket
_LOG_SMALLEST = math.log(_SMALLEST)


@dataclass(frozen=True)
class RttSummary:
    """
    Statistics of round-trip times, in seconds.

    C{mdev} is ping's: the population standard deviation.  C{jitter} is
    RFC 3550's interarrival jitter applied to successive round trips: a
    running mean of their absolute differences with gain 1/16.
    """

    count: int
    min: float
    avg: float
    max: float
    mdev: float
    median: float
    p95: float
    p99: float
    jitter: float


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """
    The nearest-rank percentile of already sorted values.
    """
    if not ordered:
        raise ValueError("no values")
    return ordered[_rank(fraction, len(ordered)) - 1]


def _rank(fraction: float, count: int) -> int:
    """
    The nearest rank, from 1, of C{fraction} of C{count} values: the one
    rule for exact percentiles and for those read from the histogram.
    """
    # A fraction is meant as the decimal it is written as, which binary
    # holds a hair off: 0.07 * 100 is 7.000000000000001, and its ceiling
    # would be rank 8.  A product that close to a whole rank is that rank.
    product = fraction * count
    whole = round(product)
    rank = whole if math.isclose(product, whole, rel_tol=1e-12) else math.ceil(product)
    return max(1, rank)


class RttStats:
    """
    Running statistics of round-trip times, in bounded memory.
    """

    def __init__(self) -> None:
        self.count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._min = math.inf
        self._max = -math.inf
        self._jitter = 0.0
        self._previous: float | None = None
        self._exact: list[float] | None = []
        self._buckets: dict[int, int] = {}

    @classmethod
    def of(cls, rtts: Iterable[float]) -> RttStats:
        stats = cls()
        for rtt in rtts:
            stats.add(rtt)
        return stats

    def add(self, rtt: float) -> None:
        """
        Count one round trip of C{rtt} seconds.  A time that is negative,
        infinite or NaN is refused before it is counted: it is a caller's
        bug, and would poison the running sums or break the histogram.
        """
        if not 0 <= rtt < math.inf:
            raise ValueError(f"a round-trip time is a finite number of seconds, 0 or more, not {rtt!r}")
        self.count += 1
        delta = rtt - self._mean
        self._mean += delta / self.count
        self._m2 += delta * (rtt - self._mean)
        self._min = min(self._min, rtt)
        self._max = max(self._max, rtt)
        if self._previous is not None:
            self._jitter += (abs(rtt - self._previous) - self._jitter) / 16
        self._previous = rtt
        index = _bucket(rtt)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        if self._exact is not None:
            self._exact.append(rtt)
            if len(self._exact) > EXACT_LIMIT:
                self._exact = None

    def percentile(self, fraction: float) -> float:
        """
        Exact while few samples were seen; within 0.5 % after that.
        """
        if self.count == 0:
            raise ValueError("no values")
        if self._exact is not None:
            return percentile(sorted(self._exact), fraction)
        rank = _rank(fraction, self.count)
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                try:
                    middle = _SMALLEST * _BUCKET_RATIO ** (index + 0.5)
                except OverflowError:  # a bucket of times near 1e308 s
                    middle = math.inf
                return min(max(middle, self._min), self._max)
        return self._max  # pragma: no cover - counts always add up

    def summary(self) -> RttSummary | None:
        if self.count == 0:
            return None
        return RttSummary(
            count=self.count,
            min=self._min,
            # Clamped: rounding may put the mean of equal values past them.
            avg=min(max(self._mean, self._min), self._max),
            max=self._max,
            mdev=math.sqrt(self._m2 / self.count),
            median=self.percentile(0.5),
            p95=self.percentile(0.95),
            p99=self.percentile(0.99),
            jitter=self._jitter,
        )


def _bucket(value: float) -> int:
    if value <= _SMALLEST:
        return 0
    # Logarithms subtracted, not the quotient's: 1e308 / _SMALLEST is inf.
    return int((math.log(value) - _LOG_SMALLEST) / _LOG_RATIO)


def summarize(rtts: Sequence[float]) -> RttSummary | None:
    """
    Summarize round-trip times; L{None} when there are none.
    """
    return RttStats.of(rtts).summary()


@dataclass(frozen=True)
class LinkSummary:
    """
    What a run saw of the link.  Times are in seconds.

    C{disconnects} counts open connections that closed without being asked
    to; C{disconnected} is the time from each such close to the next open
    (or to the end of the run).  C{open_min}/C{open_avg}/C{open_max} are the
    times from starting a connection attempt to the WebSocket being open
    (TCP, TLS and the upgrade), measured apart from the echoes.
    """

    sent: int
    received: int
    lost: int
    rtt: RttSummary | None
    disconnects: int
    disconnected: float
    flatlines: int
    opens: int
    open_min: float | None
    open_avg: float | None
    open_max: float | None
    duration: float

    @property
    def loss_percent(self) -> float:
        return 100.0 * self.lost / self.sent if self.sent else 0.0


class LinkStats:
    """
    Folds a run's events into a L{LinkSummary}; every method takes the
    time of the event where time matters, all on one clock (pingproto feeds
    it the records' wall-clock C{t}, so a live run and a report over its log
    agree).

    The link is down, in an outage, from a close it did not ask for until
    it opens again: the one rule for the summary's time disconnected and
    for the outages a report plots (L{outages_until}).

    @param down: the link was already lost at C{now} (a window of a log that
        begins in an outage): the time until it opens counts as
        disconnected.
    """

    def __init__(self, now: float, *, down: bool = False) -> None:
        self.rtt = RttStats()
        self._started = now
        self.lost = 0
        self.disconnects = 0
        self.flatlines = 0
        # The outages that have ended, as (from, to).
        self._outages: list[tuple[float, float]] = []
        self._down_since: float | None = now if down else None
        # How long each connection took to open (TCP, TLS, upgrade).
        self._setups = RttStats()
        # Time between runs appended to one log, when nothing ran.
        self._between_runs = 0.0

    def replied(self, rtt: float) -> None:
        self.rtt.add(rtt)

    def lost_one(self) -> None:
        self.lost += 1

    def opened(self, now: float, setup_time: float) -> None:
        self._setups.add(setup_time)
        if self._down_since is not None:
            self._outages.append((self._down_since, now))
            self._down_since = None

    def closed(self, now: float, deliberate: bool) -> None:
        """
        An open connection closed; C{deliberate} when this side asked for
        it at the end of the run.
        """
        if not deliberate:
            self.disconnects += 1
            self._down_since = now

    def between_runs(self, stopped: float, resumed: float) -> None:
        """
        One run stopped at C{stopped} and the next began at C{resumed} (runs
        appended to one log): an outage under way ended with the run, and
        the time between them is no run's.
        """
        if self._down_since is not None and stopped > self._down_since:
            self._outages.append((self._down_since, stopped))
        self._down_since = None
        self._between_runs += resumed - stopped

    def flatline(self) -> None:
        self.flatlines += 1

    @property
    def down(self) -> bool:
        """
        Whether the link is in an outage: closed without being asked to,
        and not open again since.
        """
        return self._down_since is not None

    def outages_until(self, now: float) -> list[tuple[float, float]]:
        """
        Each outage as (from, to), the one still going on, if any, to C{now}.
        """
        if self._down_since is None:
            return list(self._outages)
        return [*self._outages, (self._down_since, now)]

    def summary(self, now: float) -> LinkSummary:
        down = sum(to - since for since, to in self.outages_until(now))
        setups = self._setups.summary()
        return LinkSummary(
            sent=self.rtt.count + self.lost,
            received=self.rtt.count,
            lost=self.lost,
            rtt=self.rtt.summary(),
            disconnects=self.disconnects,
            disconnected=down,
            flatlines=self.flatlines,
            opens=self._setups.count,
            open_min=setups.min if setups else None,
            open_avg=setups.avg if setups else None,
            open_max=setups.max if setups else None,
            duration=now - self._started - self._between_runs,
        )
