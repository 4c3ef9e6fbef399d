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

from pingproto.stats import EXACT_LIMIT, LinkStats, RttStats, RttSummary, percentile, summarize

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

    def test_decimalFractions(self) -> None:
        """
        The k-th percentile of the values 1..100 is k for every k: 0.07 is
        a hair above 7/100 in binary, and 0.07 * 100 came to
        7.000000000000001, whose ceiling made it rank 8 (so too for 0.14,
        0.17, 0.27, 0.28, 0.34, 0.54 to 0.56, 0.68 and 0.81).  The same
        rule holds for L{RttStats}, exact and past L{EXACT_LIMIT}.
        """
        values = [float(v) for v in range(1, 101)]
        for k in range(1, 101):
            self.assertEqual(percentile(values, k / 100), k, k)
        self.assertEqual(RttStats.of(values).percentile(0.07), 7.0)
        # Past EXACT_LIMIT, from the histogram: rank 7 * 50 of 100 * 50.
        many = RttStats.of([1.0] * 350 + [2.0] * 4650)
        self.assertGreater(many.count, EXACT_LIMIT)
        self.assertTrue(math.isclose(many.percentile(0.07), 1.0, rel_tol=0.005), many.percentile(0.07))

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

    def test_histogramRankAtTheEndOfABucket(self) -> None:
        """
        Past EXACT_LIMIT, a percentile whose rank is the last sample of a
        bucket is that bucket's value, not the next one's: of 2050 round
        trips of 1 ms and 2050 of 100 ms, the median (rank 2050 of 4100)
        is 1 ms, within the histogram's 0.5 %.  On a link with two modes,
        one bucket too far would report the other mode.
        """
        self.assertGreater(2 * 2050, EXACT_LIMIT)
        stats = RttStats.of([0.001] * 2050 + [0.1] * 2050)
        self.assertTrue(math.isclose(stats.percentile(0.5), 0.001, rel_tol=0.005), stats.percentile(0.5))
        self.assertTrue(math.isclose(stats.percentile(0.51), 0.1, rel_tol=0.005), stats.percentile(0.51))

    def test_impossibleTimesRefused(self) -> None:
        """
        A negative, infinite or NaN round trip is refused with a
        ValueError naming it, and nothing of it is counted: before, NaN
        and infinity broke the histogram (ValueError and OverflowError
        from deep inside) once past EXACT_LIMIT, and a negative time
        was kept.
        """
        stats = RttStats.of([0.001] * 3)
        for value in (-0.001, math.inf, -math.inf, math.nan):
            e = self.assertRaises(ValueError, stats.add, value)
            self.assertEqual(str(e), f"a round-trip time is a finite number of seconds, 0 or more, not {value!r}")
        self.assertEqual(stats.summary(), RttStats.of([0.001] * 3).summary())

    def test_hugeTimeInTheHistogram(self) -> None:
        """
        Past EXACT_LIMIT, a bucket of times near the largest float gives
        the largest time seen for its percentile, not an OverflowError.
        """
        stats = RttStats.of([0.001] * EXACT_LIMIT + [1e308])
        self.assertEqual(stats.percentile(1.0), 1e308)
        self.assertTrue(math.isclose(stats.percentile(0.5), 0.001, rel_tol=0.005))

    def test_memoryFlatOverADay(self) -> None:
        """
        A day of pings at one a second, with a spread of round trips from
        0.1 ms to 3 s, grows the statistics by almost nothing after the
        first hours: no per-sample storage survives.
        """
        import random
        import tracemalloc

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


class LinkStatsTests(SynchronousTestCase):
    """
    L{LinkStats}: what a run saw of the connection, on times the test
    gives.
    """

    def test_counts(self) -> None:
        """
        Replies and losses make the sent, received and lost counts and the
        loss percentage; flatlines are counted; the duration runs from the
        start to the moment asked about.
        """
        stats = LinkStats(100.0)
        for rtt in (0.001, 0.002, 0.003):
            stats.replied(rtt)
        stats.lost_one()
        stats.flatline()
        summary = stats.summary(160.0)
        self.assertEqual(
            (summary.sent, summary.received, summary.lost, summary.loss_percent, summary.flatlines, summary.duration),
            (4, 3, 1, 25.0, 1, 60.0),
        )
        assert summary.rtt is not None
        self.assertEqual((summary.rtt.count, summary.rtt.min, summary.rtt.max), (3, 0.001, 0.003))

    def test_nothing(self) -> None:
        """
        A run that saw nothing has no round trips, no setup times, 0 %
        lost (not a division by zero) and no time disconnected.
        """
        summary = LinkStats(5.0).summary(5.0)
        self.assertEqual(
            (summary.sent, summary.loss_percent, summary.rtt, summary.opens, summary.open_min,
             summary.open_avg, summary.open_max, summary.disconnects, summary.disconnected),
            (0, 0.0, None, 0, None, None, None, 0, 0.0),
        )

    def test_setupTimes(self) -> None:
        """
        Each open's setup time goes into the smallest, average and largest:
        2, 3 and 7 ms give 2, 4 and 7 ms.
        """
        stats = LinkStats(0.0)
        for setup in (0.003, 0.002, 0.007):
            stats.opened(0.0, setup)
        summary = stats.summary(1.0)
        self.assertEqual(summary.opens, 3)
        self.assertEqual((summary.open_min, summary.open_max), (0.002, 0.007))
        self.assertAlmostEqual(summary.open_avg, 0.004, places=15)

    def test_outagesAddUp(self) -> None:
        """
        The link is down from each close it did not ask for to the next
        open: closes at 10 s and 20 s and opens at 12 s and 25 s are two
        disconnects and 2 + 5 = 7 s disconnected.
        """
        stats = LinkStats(0.0)
        stats.opened(0.0, 0.01)
        stats.closed(10.0, deliberate=False)
        stats.opened(12.0, 0.01)
        stats.closed(20.0, deliberate=False)
        stats.opened(25.0, 0.01)
        self.assertEqual(stats.outages_until(30.0), [(10.0, 12.0), (20.0, 25.0)])
        summary = stats.summary(30.0)
        self.assertEqual((summary.disconnects, summary.disconnected), (2, 7.0))
        self.assertFalse(stats.down)

    def test_outageToTheEnd(self) -> None:
        """
        An outage still going on counts to the end of the run: a close at
        10 s never followed by an open is 20 s disconnected at 30 s.
        """
        stats = LinkStats(0.0)
        stats.opened(0.0, 0.01)
        stats.closed(10.0, deliberate=False)
        self.assertTrue(stats.down)
        self.assertEqual(stats.outages_until(30.0), [(10.0, 30.0)])
        summary = stats.summary(30.0)
        self.assertEqual((summary.disconnects, summary.disconnected), (1, 20.0))

    def test_deliberateCloseIsNoOutage(self) -> None:
        """
        A close this side asked for at the end of the run is neither a
        disconnect nor time disconnected.
        """
        stats = LinkStats(0.0)
        stats.opened(0.0, 0.01)
        stats.closed(10.0, deliberate=True)
        self.assertFalse(stats.down)
        self.assertEqual(stats.outages_until(30.0), [])
        summary = stats.summary(30.0)
        self.assertEqual((summary.disconnects, summary.disconnected), (0, 0.0))

    def test_downFromTheStart(self) -> None:
        """
        Statistics begun in an outage (a window of a log that starts while
        the link is lost) count the time until the next open as
        disconnected, but no disconnect: that happened before.
        """
        stats = LinkStats(100.0, down=True)
        self.assertTrue(stats.down)
        stats.opened(130.0, 0.01)
        summary = stats.summary(200.0)
        self.assertEqual((summary.disconnects, summary.disconnected), (0, 30.0))
