"""
Tests for L{pingproto.session.PingSession}, the I/O-free bookkeeping of
pings sent, answered and lost.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pingproto.session import Loss, LossReason, PingSession, Sample

WALL = 1_700_000_000_123  # a wall-clock time in ms, as Date.now() gives


class SendTests(SynchronousTestCase):
    """
    Sending records a ping and gives its payload.
    """

    def test_payload_is_wall_ms(self) -> None:
        """
        The payload is the wall time in ms as ASCII decimal, like the
        classic page's Date.now().
        """
        session = PingSession(timeout=5)
        self.assertEqual(session.send(10.0, WALL), b"1700000000123")
        self.assertEqual(session.send(11.0, 42), b"42")
        self.assertEqual(session.sent, 2)
        self.assertEqual(session.outstanding, 2)

    def test_seq_counts_from_one(self) -> None:
        """
        Pings are numbered 1, 2, 3 in the order sent, as their samples show.
        """
        session = PingSession(timeout=5)
        payloads = [session.send(float(i), WALL + 1000 * i) for i in range(3)]
        samples = [session.receive(p, 10.0) for p in payloads]
        self.assertEqual([s.seq for s in samples], [1, 2, 3])  # type: ignore[union-attr]

    def test_same_millisecond(self) -> None:
        """
        Two pings sent in the same millisecond get distinct payloads: the
        later one is moved on by a millisecond, and carries that time.
        """
        session = PingSession(timeout=5)
        first = session.send(1.0, WALL)
        second = session.send(1.0002, WALL)
        third = session.send(1.0004, WALL)
        self.assertEqual([first, second, third], [b"1700000000123", b"1700000000124",
                                                  b"1700000000125"])
        sample = session.receive(second, 1.5)
        self.assertEqual(sample, Sample(seq=2, sent_ms=WALL + 1, rtt=1.5 - 1.0002))

    def test_same_millisecond_after_answer(self) -> None:
        """
        Once the first ping is answered its text is free again.
        """
        session = PingSession(timeout=5)
        first = session.send(1.0, WALL)
        session.receive(first, 1.25)
        self.assertEqual(session.send(1.5, WALL), first)


class ReceiveTests(SynchronousTestCase):
    """
    Echoes are matched to pings by their exact bytes.
    """

    def test_match_and_rtt(self) -> None:
        """
        The echo of a ping sent at 10.0 received at 10.25 gives a sample of
        that ping with an rtt of 0.25 s.
        """
        session = PingSession(timeout=5)
        payload = session.send(10.0, WALL)
        sample = session.receive(payload, 10.25)
        self.assertEqual(sample, Sample(seq=1, sent_ms=WALL, rtt=0.25))
        self.assertEqual(session.received, 1)
        self.assertEqual(session.outstanding, 0)
        self.assertEqual(session.unmatched, 0)

    def test_out_of_order(self) -> None:
        """
        Echoes received in another order each match their own ping.
        """
        session = PingSession(timeout=5)
        a = session.send(1.0, 1000)
        b = session.send(2.0, 2000)
        self.assertEqual(session.receive(b, 2.5), Sample(2, 2000, 0.5))
        self.assertEqual(session.receive(a, 3.0), Sample(1, 1000, 2.0))

    def test_unknown_payload(self) -> None:
        """
        An echo that matches nothing is counted as unmatched, returns None,
        and leaves the outstanding ping alone; near misses do not match.
        """
        session = PingSession(timeout=5)
        payload = session.send(1.0, WALL)
        for other in (b"hello", payload + b" ", b"0" + payload, payload[:-1]):
            self.assertIsNone(session.receive(other, 1.5))
        self.assertEqual(session.unmatched, 4)
        self.assertEqual(session.received, 0)
        self.assertEqual(session.outstanding, 1)

    def test_duplicate_echo(self) -> None:
        """
        A second echo of an answered ping is unmatched.
        """
        session = PingSession(timeout=5)
        payload = session.send(1.0, WALL)
        self.assertIsNotNone(session.receive(payload, 1.1))
        self.assertIsNone(session.receive(payload, 1.2))
        self.assertEqual((session.received, session.unmatched), (1, 1))

    def test_late_echo(self) -> None:
        """
        An echo arriving after its ping timed out is unmatched, not a sample.
        """
        session = PingSession(timeout=2)
        payload = session.send(1.0, WALL)
        self.assertEqual(len(session.expire(3.0)), 1)
        self.assertIsNone(session.receive(payload, 3.5))
        self.assertEqual(
            (session.received, session.lost, session.unmatched), (0, 1, 1)
        )

    def test_clock_before_send(self) -> None:
        """
        A receive time earlier than the send time gives an rtt of 0, never
        a negative one.
        """
        session = PingSession(timeout=5)
        payload = session.send(5.0, WALL)
        self.assertEqual(session.receive(payload, 4.0), Sample(1, WALL, 0.0))


class TimeoutTests(SynchronousTestCase):
    """
    Unanswered pings are lost once they are C{timeout} seconds old.
    """

    def test_expire_at_timeout(self) -> None:
        """
        A ping sent at 10.0 with a 2 s timeout is kept at 11.999 and lost
        at exactly 12.0, for TIMEOUT.
        """
        session = PingSession(timeout=2.0)
        session.send(10.0, WALL)
        self.assertEqual(session.expire(11.999), [])
        self.assertEqual(session.outstanding, 1)
        self.assertEqual(session.expire(12.0), [Loss(1, WALL, LossReason.TIMEOUT)])
        self.assertEqual((session.outstanding, session.lost), (0, 1))
        self.assertEqual(session.expire(20.0), [])

    def test_expire_only_old_ones(self) -> None:
        """
        Of pings sent at 0, 1 and 2 with a 5 s timeout, expiring at 6 loses
        the first two, in order, and keeps the third.
        """
        session = PingSession(timeout=5)
        for i in range(3):
            session.send(float(i), 100 + i)
        self.assertEqual(
            session.expire(6.0),
            [Loss(1, 100, LossReason.TIMEOUT), Loss(2, 101, LossReason.TIMEOUT)],
        )
        self.assertEqual(session.outstanding, 1)
        self.assertEqual(session.lost, 2)

    def test_next_deadline(self) -> None:
        """
        The next deadline is the oldest outstanding ping's send time plus the
        timeout, moving on when that ping is answered, None when none is
        outstanding.
        """
        session = PingSession(timeout=2.5)
        self.assertIsNone(session.next_deadline())
        a = session.send(3.0, 3000)
        b = session.send(4.0, 4000)
        self.assertEqual(session.next_deadline(), 5.5)
        session.receive(a, 4.5)
        self.assertEqual(session.next_deadline(), 6.5)
        session.receive(b, 4.75)
        self.assertIsNone(session.next_deadline())

    def test_expire_at_next_deadline(self) -> None:
        """
        Expiring at the moment next_deadline() names loses the oldest ping:
        a ping sent at 0.7 s with a 0.1 s timeout is lost at its deadline.
        (A timer set for next_deadline() that then finds nothing to expire
        would be re-armed for the same instant again and again.)
        """
        session = PingSession(timeout=0.1)
        session.send(0.7, WALL)
        deadline = session.next_deadline()
        assert deadline is not None
        self.assertEqual(session.expire(deadline), [Loss(1, WALL, LossReason.TIMEOUT)])
        self.assertEqual(session.outstanding, 0)

    def test_disconnect(self) -> None:
        """
        A disconnect loses every outstanding ping, in order, for DISCONNECT,
        and leaves answered ones counted as received.
        """
        session = PingSession(timeout=30)
        a = session.send(1.0, 1000)
        session.send(2.0, 2000)
        session.send(3.0, 3000)
        session.receive(a, 1.5)
        self.assertEqual(
            session.disconnect(),
            [Loss(2, 2000, LossReason.DISCONNECT), Loss(3, 3000, LossReason.DISCONNECT)],
        )
        self.assertEqual(
            (session.sent, session.received, session.lost, session.outstanding),
            (3, 1, 2, 0),
        )
        self.assertIsNone(session.next_deadline())
        self.assertEqual(session.disconnect(), [])

    def test_loss_reason_values(self) -> None:
        """
        Loss reasons compare equal to their text, "timeout", "disconnect"
        and "not_connected".
        """
        self.assertEqual(LossReason.TIMEOUT, "timeout")
        self.assertEqual(LossReason.DISCONNECT, "disconnect")
        self.assertEqual(LossReason.NOT_CONNECTED, "not_connected")

    def test_missed(self) -> None:
        """
        A ping due with no connection to send it on takes the next
        sequence number and counts as sent and lost at once, NOT_CONNECTED;
        nothing is left outstanding for an echo to answer.
        """
        session = PingSession(timeout=5)
        a = session.send(1.0, 1000)
        self.assertEqual(session.missed(2000), Loss(2, 2000, LossReason.NOT_CONNECTED))
        self.assertEqual(session.receive(a, 1.5), Sample(1, 1000, 0.5))
        self.assertEqual(session.receive(b"2000", 2.5), None)
        self.assertEqual(
            (session.sent, session.received, session.lost, session.outstanding, session.unmatched),
            (2, 1, 1, 0, 1),
        )


class CountTests(SynchronousTestCase):
    """
    A session with a count sends that many pings and then finishes.
    """

    def test_count_limit(self) -> None:
        """
        With count=2, sending is done after two pings, a third send raises
        RuntimeError, and the session is finished only once both are
        answered or lost.
        """
        session = PingSession(timeout=1, count=2)
        a = session.send(0.0, 1)
        self.assertFalse(session.done_sending)
        session.send(0.5, 2)
        self.assertTrue(session.done_sending)
        self.assertFalse(session.finished)
        e = self.assertRaises(RuntimeError, session.send, 1.0, 3)
        self.assertEqual(str(e), "all 2 pings were already sent")
        self.assertEqual(session.sent, 2)
        session.receive(a, 0.25)
        self.assertFalse(session.finished)
        session.expire(1.5)
        self.assertTrue(session.finished)
        self.assertEqual((session.received, session.lost), (1, 1))

    def test_count_reached_by_missed(self) -> None:
        """
        Pings missed while not connected count toward the count: a session
        of 3 with one answered and two missed is finished, and a further
        ping is refused as for a send.
        """
        session = PingSession(timeout=1, count=3)
        session.receive(session.send(0.0, 1), 0.25)
        session.missed(2)
        self.assertFalse(session.done_sending)
        session.missed(3)
        self.assertTrue(session.finished)
        self.assertEqual((session.sent, session.received, session.lost), (3, 1, 2))
        e = self.assertRaises(RuntimeError, session.missed, 4)
        self.assertEqual(str(e), "all 3 pings were already sent")

    def test_finished_by_disconnect(self) -> None:
        """
        A disconnect after the last send finishes the session.
        """
        session = PingSession(timeout=1, count=1)
        session.send(0.0, 1)
        self.assertFalse(session.finished)
        session.disconnect()
        self.assertTrue(session.finished)

    def test_no_count(self) -> None:
        """
        Without a count the session is never done sending nor finished.
        """
        session = PingSession(timeout=1)
        for i in range(50):
            p = session.send(float(i), i)
            session.receive(p, i + 0.5)
        self.assertFalse(session.done_sending)
        self.assertFalse(session.finished)

    def test_bad_constructor_arguments(self) -> None:
        """
        A timeout of 0 or less or NaN (a ping that is never lost) and a
        count below 1 are refused.
        """
        e = self.assertRaises(ValueError, PingSession, 0)
        self.assertEqual(str(e), "the reply timeout must be positive")
        self.assertRaises(ValueError, PingSession, -1.0)
        self.assertRaises(ValueError, PingSession, math.nan)
        e = self.assertRaises(ValueError, PingSession, 1, 0)
        self.assertEqual(str(e), "the ping count must be 1 or more")
        self.assertRaises(ValueError, PingSession, 1, -5)
        self.assertEqual(PingSession(0.001, 1).count, 1)


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.floats(0, 3), st.integers(0, 3)),
        st.tuples(st.just("receive"), st.floats(0, 3), st.integers(0, 50)),
        st.tuples(st.just("garbage"), st.floats(0, 3), st.integers(0, 50)),
        st.tuples(st.just("expire"), st.floats(0, 3), st.just(0)),
        st.tuples(st.just("disconnect"), st.just(0.0), st.just(0)),
        st.tuples(st.just("missed"), st.floats(0, 3), st.integers(0, 3)),
    ),
    max_size=60,
)


class AccountingPropertyTests(SynchronousTestCase):
    """
    Every ping is accounted for whatever happens.
    """

    @settings(deadline=None)
    @given(timeout=st.floats(0.1, 5), steps=_steps)
    def test_every_ping_accounted_for(
        self, timeout: float, steps: list[tuple[str, float, int]]
    ) -> None:
        """
        For any interleaving of sends, echoes (ours, repeated or foreign),
        expiries, disconnects and pings missed while not connected,
        sent == received + lost + outstanding,
        and every echo is either a sample or counted as unmatched.
        """
        session = PingSession(timeout)
        now = 0.0
        wall = 1000
        payloads: list[bytes] = []
        echoes = 0
        missed = 0
        for kind, dt, n in steps:
            now += dt
            if kind == "send":
                wall += n  # n == 0: same millisecond as the previous ping
                payloads.append(session.send(now, wall))
            elif kind == "receive" and payloads:
                echoes += 1
                session.receive(payloads[n % len(payloads)], now)
            elif kind == "garbage":
                echoes += 1
                self.assertIsNone(session.receive(b"x%d" % n, now))
            elif kind == "expire":
                session.expire(now)
            elif kind == "disconnect":
                session.disconnect()
            elif kind == "missed":
                wall += n
                session.missed(wall)
                missed += 1
            self.assertEqual(
                session.sent, session.received + session.lost + session.outstanding
            )
            self.assertEqual(session.received + session.unmatched, echoes)
        self.assertEqual(session.sent, len(payloads) + missed)
