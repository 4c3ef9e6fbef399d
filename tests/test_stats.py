"""
Tests for L{pingproto.stats}: round-trip statistics as ping(8) defines them.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pingproto.stats import RttSummary, percentile, summarize

# Round-trip times in seconds, as a monotonic clock with microsecond
# resolution measures them: from nothing up to a minute.  Either spread
# anywhere, or clustered within a few microseconds of one value, as on a
# steady link (where equal readings are common).
_us = st.integers(min_value=0, max_value=60_000_000)
_rtts = st.one_of(
    st.lists(_us.map(lambda us: us / 1e6), min_size=1, max_size=200),
    st.builds(
        lambda base, offsets: [(base + o) / 1e6 for o in offsets],
        _us,
        st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=50),
    ),
)


class SummarizeTests(SynchronousTestCase):
    """
    L{summarize} of known values.
    """

    def test_known_values(self) -> None:
        """
        [1, 2, 3, 4] gives min 1, avg 2.5, max 4, mdev sqrt(1.25) (the
        population standard deviation), nearest-rank median 2, p95 and p99
        4, and RFC 3550 jitter 1/16 + (15/16)/16 + (225/256)/16 after three
        successive differences of 1.
        """
        summary = summarize([1.0, 2.0, 3.0, 4.0])
        self.assertEqual(
            summary,
            RttSummary(
                count=4, min=1.0, avg=2.5, max=4.0, mdev=math.sqrt(1.25),
                median=2.0, p95=4.0, p99=4.0, jitter=0.176025390625,
            ),
        )

    def test_unsorted_input(self) -> None:
        """
        The order of the input does not matter (but to jitter, which
        follows successive differences), and the input is not sorted in
        place.
        """
        rtts = [4.0, 1.0, 3.0, 2.0]
        self.assertEqual(
            dataclasses.replace(summarize(rtts), jitter=0.0),
            dataclasses.replace(summarize([1.0, 2.0, 3.0, 4.0]), jitter=0.0),
        )
        self.assertEqual(rtts, [4.0, 1.0, 3.0, 2.0])

    def test_twenty_values(self) -> None:
        """
        For 1..20 the median is the 10th value and p95 the 19th.
        """
        summary = summarize([float(i) for i in range(20, 0, -1)])
        assert summary is not None
        self.assertEqual((summary.count, summary.median, summary.p95), (20, 10.0, 19.0))
        self.assertEqual(summary.avg, 10.5)
        self.assertAlmostEqual(summary.mdev, math.sqrt((20**2 - 1) / 12), places=12)

    def test_empty(self) -> None:
        """
        No round-trip times give no summary.
        """
        self.assertIsNone(summarize([]))
        self.assertIsNone(summarize(()))

    def test_single(self) -> None:
        """
        One value is its own min, avg, max, median and p95, with mdev 0.
        """
        self.assertEqual(
            summarize([0.042]),
            RttSummary(count=1, min=0.042, avg=0.042, max=0.042, mdev=0.0,
                       median=0.042, p95=0.042, p99=0.042, jitter=0.0),
        )

    def test_identical_values_have_no_deviation(self) -> None:
        """
        Five identical round-trip times of 123.456 ms have mdev exactly 0,
        as statistics.pstdev says.
        """
        rtts = [0.123456] * 5
        self.assertEqual(statistics.pstdev(rtts), 0.0)
        summary = summarize(rtts)
        assert summary is not None
        self.assertEqual(summary.mdev, 0.0)

    def test_identical_values_average(self) -> None:
        """
        The average of three round-trip times of 0.1 s is 0.1 s, not more
        than their maximum.
        """
        summary = summarize([0.1, 0.1, 0.1])
        assert summary is not None
        self.assertEqual(summary.avg, 0.1)

    def test_mdev_far_from_zero(self) -> None:
        """
        For 1000.001 s and 1000.002 s the mdev is 0.0005 s to nine digits:
        a large common offset must not swamp the spread.
        """
        summary = summarize([1000.001, 1000.002])
        assert summary is not None
        self.assertTrue(
            math.isclose(summary.mdev, 0.0005, rel_tol=1e-9),
            f"mdev {summary.mdev!r} != 0.0005",
        )


class PercentileTests(SynchronousTestCase):
    """
    L{percentile} is the nearest-rank percentile: the value of rank
    ceil(fraction * n), and at least the first.
    """

    ten = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]

    def test_nearest_rank(self) -> None:
        """
        Of ten values 10..100, the 50th percentile is the 5th value (50),
        the 90th the 9th (90), the 95th the 10th (100, rank ceil(9.5)) and
        the 10th the first.
        """
        self.assertEqual(percentile(self.ten, 0.5), 50.0)
        self.assertEqual(percentile(self.ten, 0.9), 90.0)
        self.assertEqual(percentile(self.ten, 0.95), 100.0)
        self.assertEqual(percentile(self.ten, 0.1), 10.0)
        self.assertEqual(percentile(self.ten, 0.11), 20.0)

    def test_extremes(self) -> None:
        """
        Fraction 0 gives the smallest value (rank at least 1), fraction 1
        the largest.
        """
        self.assertEqual(percentile(self.ten, 0.0), 10.0)
        self.assertEqual(percentile(self.ten, 1.0), 100.0)

    def test_single(self) -> None:
        """
        Every percentile of one value is that value.
        """
        for fraction in (0.0, 0.01, 0.5, 0.95, 1.0):
            self.assertEqual(percentile([7.5], fraction), 7.5)

    def test_empty(self) -> None:
        """
        The percentile of nothing is an error, not a made-up number.
        """
        e = self.assertRaises(ValueError, percentile, [], 0.5)
        self.assertEqual(str(e), "no values")

    @settings(deadline=None)
    @given(st.integers(min_value=1, max_value=5000))
    def test_rank_of_p95_and_median(self, n: int) -> None:
        """
        For 1..n the median is value ceil(n/2) and p95 value ceil(95n/100),
        computed in exact integer arithmetic.
        """
        ordered = list(range(1, n + 1))
        self.assertEqual(percentile(ordered, 0.5), -(-n // 2))
        self.assertEqual(percentile(ordered, 0.95), -(-95 * n // 100))


class SummaryPropertyTests(SynchronousTestCase):
    """
    Properties of the summary of any round-trip times.
    """

    @settings(deadline=None)
    @given(_rtts)
    def test_order_statistics(self, rtts: list[float]) -> None:
        """
        min <= median <= p95 <= max, all of them input values, and min and
        max are the input's.
        """
        summary = summarize(rtts)
        assert summary is not None
        self.assertEqual(summary.count, len(rtts))
        self.assertEqual((summary.min, summary.max), (min(rtts), max(rtts)))
        self.assertLessEqual(summary.min, summary.median)
        self.assertLessEqual(summary.median, summary.p95)
        self.assertLessEqual(summary.p95, summary.max)
        self.assertIn(summary.median, rtts)
        self.assertIn(summary.p95, rtts)

    @settings(deadline=None)
    @given(_rtts)
    @example([0.1, 0.1, 0.1])
    def test_average_within_range(self, rtts: list[float]) -> None:
        """
        min <= avg <= max, and avg agrees with statistics.fmean.
        """
        summary = summarize(rtts)
        assert summary is not None
        self.assertTrue(math.isclose(summary.avg, statistics.fmean(rtts), rel_tol=1e-12,
                                     abs_tol=1e-300))
        self.assertLessEqual(summary.min, summary.avg)
        self.assertLessEqual(summary.avg, summary.max)

    @settings(deadline=None)
    @given(_rtts)
    @example([0.123456] * 5)
    @example([1000.001, 1000.002])
    def test_mdev_is_population_std(self, rtts: list[float]) -> None:
        """
        mdev >= 0 and equals statistics.pstdev (exact, two-pass) within a
        relative 1e-6 or an absolute picosecond: the streaming computation
        can do no better on values whose spread is a millionth of their
        size, and a picosecond is far below any clock's resolution.
        """
        summary = summarize(rtts)
        assert summary is not None
        self.assertGreaterEqual(summary.mdev, 0.0)
        expected = statistics.pstdev(rtts)
        self.assertTrue(
            math.isclose(summary.mdev, expected, rel_tol=1e-6, abs_tol=1e-12),
            f"mdev {summary.mdev!r} != pstdev {expected!r} for {rtts!r}",
        )


class StreamingTests(SynchronousTestCase):
    """
    L{RttStats} and L{LinkStats} over long runs.
    """

    def test_exactThenHistogram(self) -> None:
        """
        Percentiles are exact up to EXACT_LIMIT samples and within 0.5 %
        after, where the exact list is dropped.
        """
        from pingproto.stats import EXACT_LIMIT, RttStats

        values = [0.001 * (1 + (i * 7919) % 1000) for i in range(EXACT_LIMIT * 3)]
        stats = RttStats.of(values[:EXACT_LIMIT])
        self.assertEqual(stats.percentile(0.5), percentile(sorted(values[:EXACT_LIMIT]), 0.5))
        for value in values[EXACT_LIMIT:]:
            stats.add(value)
        exact = sorted(values)
        for fraction in (0.5, 0.95, 0.99):
            self.assertTrue(
                math.isclose(stats.percentile(fraction), percentile(exact, fraction), rel_tol=0.005),
                fraction,
            )

    def test_memoryFlatOverADay(self) -> None:
        """
        A day of pings at one a second, with a spread of round trips from
        0.1 ms to 3 s, grows the statistics by almost nothing after the
        first hours: no per-sample storage survives.
        """
        import random
        import tracemalloc

        from pingproto.stats import LinkStats

        rng = random.Random(7)
        stats = LinkStats(0.0)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        for second in range(86400):
            stats.replied(math.exp(rng.uniform(math.log(1e-4), math.log(3.0))))
            if second == 3 * 3600:
                after_three_hours = tracemalloc.get_traced_memory()[0]
        at_end = tracemalloc.get_traced_memory()[0]
        self.assertLess(at_end - after_three_hours, 16 * 1024)
        self.assertEqual(stats.summary(86400.0).received, 86400)
