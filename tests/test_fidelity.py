"""
Measurement fidelity: what pingproto reports about a link matches what was
done to the link, through L{FaultProxy} on loopback over wss://.
"""

from __future__ import annotations

import io
import statistics

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks

from pingproto import PingMonitor, StateChange
from pingproto.pingcmd import Reporter
from pingproto.session import Loss, Sample
from pingproto.testing import FaultProxy

from .test_endtoend import ServerTestCase
from .waiting import Conditions


class Watcher(Reporter):
    """
    pingproto's own reporter (so the figures are the ones users see), with
    a way to wait for the event a test is after.
    """

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.events: list[str] = []
        self._conditions = Conditions()
        self.until = self._conditions.until

    def _note(self, event: str) -> None:
        self.events.append(event)
        self._conditions.check()

    def replies(self) -> int:
        return self.folder.stats.rtt.count if self.folder.stats else 0

    def ping_replied(self, sample: Sample) -> None:
        super().ping_replied(sample)
        self._note("reply")

    def ping_lost(self, loss: Loss) -> None:
        super().ping_lost(loss)
        self._note(f"loss:{loss.reason.value}")

    def flatline(self, silence: float) -> None:
        super().flatline(silence)
        self._note("flatline")

    def state_changed(self, change: StateChange) -> None:
        super().state_changed(change)
        self._note(change.state.name)


class FidelityTests(ServerTestCase):
    timeout = 60

    def setUp(self) -> Deferred[object]:
        super().setUp()
        self.proxy = FaultProxy(reactor, "127.0.0.1", self.port)
        self.addCleanup(self.proxy.stop)
        self.watcher = Watcher()
        return self.proxy.listen()

    def monitor(self, **options: object) -> PingMonitor:
        monitor = PingMonitor(
            f"wss://localhost:{self.proxy.port}/",
            self.watcher,
            ca_file=self.caFile,
            retry_policy=lambda failures: 0.2,
            **options,  # type: ignore[arg-type]
        )
        monitor.startService()
        self.addCleanup(monitor.stopService)
        return monitor

    @inlineCallbacks
    def median_rtt(self, count: int) -> Deferred[float]:  # type: ignore[misc]
        start = self.watcher.replies()
        yield self.watcher.until(lambda: self.watcher.replies() >= start + count)
        rtts = [sample for sample in self.rtts[start : start + count]]
        return statistics.median(rtts)

    @inlineCallbacks
    def test_addedDelay(self):  # type: ignore[no-untyped-def]
        """
        100 ms added to the round trip (50 ms each way) shows up as 100 ms
        more than the baseline measured through the same proxy, within
        5 ms.  (The pings are far enough apart not to overlap.  The proxy's
        timers can each fire up to a millisecond late, as epoll rounds its
        timeout up to whole milliseconds, and on a machine busy with other
        work a process waits its turn for a core: 2 ms was too tight there.)
        """
        self.rtts: list[float] = []
        original = self.watcher.ping_replied

        def record(sample: Sample) -> None:
            self.rtts.append(sample.rtt)
            original(sample)

        self.watcher.ping_replied = record  # type: ignore[method-assign]
        self.monitor(interval=0.15, timeout=2.0)
        yield self.watcher.until(lambda: self.watcher.replies() >= 3)
        baseline = yield self.median_rtt(9)
        self.proxy.delay_up = self.proxy.delay_down = 0.05
        # Let the ping in flight at the switch come back before measuring.
        yield self.watcher.until(lambda: self.watcher.replies() >= 3 + 9 + 2)
        delayed = yield self.median_rtt(9)
        self.assertGreaterEqual(min(self.rtts[-9:]), 0.100, "no delayed ping came back early")
        added = delayed - baseline
        self.assertLessEqual(
            abs(added - 0.100), 0.005, f"baseline {baseline * 1000:.3f} ms, delayed {delayed * 1000:.3f} ms"
        )

    @inlineCallbacks
    def test_stall(self):  # type: ignore[no-untyped-def]
        """
        A link that goes silent without closing is reported first as lost
        pings, then as a flatline; the client then closes and the new
        connection answers again.
        """
        self.monitor(interval=0.1, timeout=0.3, flatline=0.8)
        yield self.watcher.until(lambda: self.watcher.replies() >= 3)
        self.proxy.stall()
        stalled_at = len(self.watcher.events)
        yield self.watcher.until(lambda: "flatline" in self.watcher.events[stalled_at:])
        self.proxy.resume()
        yield self.watcher.until(lambda: "OPEN" in self.watcher.events[stalled_at:])
        replies = self.watcher.replies()
        yield self.watcher.until(lambda: self.watcher.replies() >= replies + 2)
        after = self.watcher.events[stalled_at:]
        self.assertEqual(after[0], "loss:timeout")
        self.assertLess(after.index("loss:timeout"), after.index("flatline"))
        self.assertLess(after.index("flatline"), after.index("CLOSED"))
        self.assertLess(after.index("CLOSED"), after.index("OPEN"))
        summary = self.watcher.folder.summary()
        self.assertEqual((summary.flatlines, summary.disconnects, summary.opens), (1, 1, 2))
        self.assertIn("flatline: open but no echo for 0.8 s; reconnecting", self.watcher.out.getvalue())

    @inlineCallbacks
    def test_cut(self):  # type: ignore[no-untyped-def]
        """
        A cut connection is reported as a disconnect, the client reconnects
        after its retry delay, and the time spent disconnected is measured:
        at least the retry delay, and well under a second here.
        """
        self.monitor(interval=0.1, timeout=1.0)
        yield self.watcher.until(lambda: self.watcher.replies() >= 3)
        cut_at = len(self.watcher.events)
        self.proxy.cut()
        yield self.watcher.until(lambda: "OPEN" in self.watcher.events[cut_at:])
        replies = self.watcher.replies()
        yield self.watcher.until(lambda: self.watcher.replies() >= replies + 2)
        after = self.watcher.events[cut_at:]
        self.assertLess(after.index("CLOSED"), after.index("CONNECTING"))
        summary = self.watcher.folder.summary()
        self.assertEqual((summary.disconnects, summary.opens), (1, 2))
        self.assertGreaterEqual(summary.disconnected, 0.2)
        self.assertLess(summary.disconnected, 1.0)
        self.assertIn("disconnected: ", self.watcher.out.getvalue())
        self.assertIn("reconnecting", self.watcher.out.getvalue())


