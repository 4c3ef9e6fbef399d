"""
Properties of the pure bookkeeping behind the server's limits
(L{pingproto.limits}), and of the other parsers and validators that take
outside input: log records, report times, request lines, ping URLs, and
the request head the server reads before any WebSocket work.
"""

from __future__ import annotations

import datetime
import gc
import io
import json
import math
import re
from collections import Counter

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from pingproto.config import ServerLimits
from pingproto.limits import (
    REFUSING_ROOM,
    AddressCounter,
    RefusalTally,
    TokenBucket,
    address_group,
    client_address,
    files_needed,
    origin_allowed,
    socket_bound,
)
from pingproto.pingcmd import PingOptions
from pingproto.records import LATEST, RecordError, read_records
from pingproto.report import parse_time
from pingproto.server import EchoServerFactory, EchoServerProtocol, _looks_like_http, _never_http

from .test_protocols import LenientTransport, client_frame, parse_server_frames, upgrade_request

# Rates and bursts a server could be configured with, and times on a
# clock that has been running a while.
_rates = st.floats(0.01, 1000)
_bursts = st.floats(1, 200)
_starts = st.floats(0, 1e6)
# Steps between events: often none at all (a burst), else up to 2 s.
_steps = st.lists(st.one_of(st.just(0.0), st.floats(0, 0.05), st.floats(0, 2)), max_size=120)


class TokenBucketTests(SynchronousTestCase):
    """
    L{TokenBucket}: C{rate} events a second on average, bursts of C{burst}.
    """

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts, steps=_steps)
    def test_never_more_than_burst_plus_refill(
        self, rate: float, burst: float, start: float, steps: list[float]
    ) -> None:
        """
        Over any window, from one allowed event to another, the bucket
        allows at most C{burst + rate * (length of the window)} events,
        whatever the pattern of attempts.
        """
        bucket = TokenBucket(rate, burst, start)
        now = start
        allowed: list[float] = []
        for step in steps:
            now += step
            if bucket.take(now):
                allowed.append(now)
        slack = 1e-6 * (1 + burst)
        for i, first in enumerate(allowed):
            for j in range(i, len(allowed)):
                self.assertLessEqual(j - i + 1, burst + rate * (allowed[j] - first) + slack)

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts)
    def test_burst_at_once(self, rate: float, burst: float, start: float) -> None:
        """
        A fresh bucket allows exactly C{floor(burst)} events at the same
        instant, and then none.
        """
        bucket = TokenBucket(rate, burst, start)
        taken = 0
        while bucket.take(start):
            taken += 1
            self.assertLessEqual(taken, burst)
        self.assertEqual(taken, math.floor(burst))

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts, idle=st.floats(1, 1e4))
    def test_idle_time_does_not_hoard(self, rate: float, burst: float, start: float, idle: float) -> None:
        """
        However long a drained bucket stays idle (at least long enough to
        fill), it allows C{floor(burst)} events at once, not more.
        """
        bucket = TokenBucket(rate, burst, start)
        while bucket.take(start):
            pass
        later = start + idle * burst / rate * 1.001
        taken = 0
        while bucket.take(later):
            taken += 1
            self.assertLessEqual(taken, burst)
        self.assertEqual(taken, math.floor(burst))

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts, extra=st.floats(1e-5, 1.0))
    def test_refills(self, rate: float, burst: float, start: float, extra: float) -> None:
        """
        A drained bucket refuses at once, and allows again after
        C{1 / rate} seconds have passed.
        """
        bucket = TokenBucket(rate, burst, start)
        while bucket.take(start):
            pass
        self.assertFalse(bucket.take(start))
        self.assertTrue(bucket.take(start + (1 + extra) / rate))

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts, back=st.floats(0, 1e3))
    def test_clock_stepping_back_gives_nothing(self, rate: float, burst: float, start: float, back: float) -> None:
        """
        A clock that steps backwards earns no tokens.
        """
        bucket = TokenBucket(rate, burst, start)
        while bucket.take(start):
            pass
        self.assertFalse(bucket.take(start - back))
        self.assertFalse(bucket.take(start))

    @settings(deadline=None)
    @given(
        rate=_rates,
        burst=_bursts,
        start=_starts,
        spends=st.lists(st.tuples(st.floats(0, 100), st.floats(0, 1e4)), max_size=20),
    )
    def test_spend_shapes_to_rate(
        self, rate: float, burst: float, start: float, spends: list[tuple[float, float]]
    ) -> None:
        """
        A shaper that waits as long as L{TokenBucket.spend} says before each
        next spend gets through at most C{burst + rate * elapsed} in all.
        """
        bucket = TokenBucket(rate, burst, start)
        now, total = start, 0.0
        for step, amount in spends:
            now += step
            wait = bucket.spend(amount, now)
            total += amount
            slack = 1e-6 * (1 + burst + rate * (now - start))
            self.assertGreaterEqual(wait, 0.0)
            now += wait
            # Paid off at the end of the wait: nothing spent beyond the rate.
            self.assertLessEqual(total, burst + rate * (now - start) + slack)

    @settings(deadline=None)
    @given(rate=_rates, burst=_bursts, start=_starts, amounts=st.lists(st.floats(0, 1), min_size=1, max_size=10))
    def test_spend_within_burst_waits_not(
        self, rate: float, burst: float, start: float, amounts: list[float]
    ) -> None:
        """
        Spends within the burst, each after the bucket has had time to fill
        again, never wait.
        """
        bucket = TokenBucket(rate, burst, start)
        now = start
        for fraction in amounts:
            self.assertEqual(bucket.spend(fraction * burst, now), 0.0)
            now += burst / rate * 1.001

    def test_spend_debt(self) -> None:
        """
        Overspending by C{rate} tokens costs exactly one second; a bucket in
        debt allows no event until it is paid.
        """
        bucket = TokenBucket(1000.0, 5000.0, 10.0)
        self.assertEqual(bucket.spend(5000, 10.0), 0.0)
        self.assertEqual(bucket.spend(1000, 10.0), 1.0)
        self.assertFalse(bucket.take(10.5))
        self.assertEqual(bucket.spend(0, 11.0), 0.0)

    @given(
        rate=st.floats(max_value=0, allow_nan=False),
        burst=st.floats(allow_nan=False),
    )
    @example(rate=0.0, burst=10.0)
    def test_rejects_rate_not_positive(self, rate: float, burst: float) -> None:
        """
        A rate of zero or less is refused, whatever the burst.
        """
        with self.assertRaises(ValueError):
            TokenBucket(rate, burst, 0.0)

    @given(rate=st.floats(allow_nan=False), burst=st.floats(max_value=1, exclude_max=True, allow_nan=False))
    @example(rate=1.0, burst=0.999)
    def test_rejects_burst_below_one(self, rate: float, burst: float) -> None:
        """
        A burst under one event (the bucket could never allow anything) is
        refused, whatever the rate.
        """
        with self.assertRaises(ValueError):
            TokenBucket(rate, burst, 0.0)

    def test_rejects_nan(self) -> None:
        """
        Not-a-number is refused as a rate and as a burst: a NaN rate or
        burst would otherwise make a bucket that allows nothing, ever.
        """
        for rate, burst in ((math.nan, 10.0), (10.0, math.nan), (math.nan, math.nan)):
            with self.assertRaises(ValueError, msg=(rate, burst)):
                TokenBucket(rate, burst, 0.0)


class ServerRateTests(SynchronousTestCase):
    """
    The rate limit as the server applies it, in memory on a L{Clock}, for
    any rate the limits accept.
    """

    def setUp(self) -> None:
        # An error the server leaves in a Deferred is reported when the
        # Deferred is collected; collect here, so that it is reported
        # against this test and not a later one.
        self.addCleanup(gc.collect)

    def opened(self, limits: ServerLimits) -> tuple[Clock, EchoServerProtocol, LenientTransport]:
        """
        A WebSocket opened under C{limits} on a clock of its own, and its
        transport, cleared of the upgrade's answer.
        """
        clock = Clock()
        protocol = EchoServerFactory(limits, reactor=clock).buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = LenientTransport()
        protocol.makeConnection(transport)
        protocol.dataReceived(upgrade_request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        transport.clear()
        return clock, protocol, transport

    @settings(deadline=None)
    @given(rate=st.floats(min_value=0.1, max_value=500))
    @example(rate=0.4)
    def test_every_accepted_rate_is_enforced(self, rate: float) -> None:
        """
        With any message rate L{ServerLimits} accepts (0.1 a second or
        more), a WebSocket echoes a client's first message, and closes
        with 1008 when more than one more than the burst arrives at one
        instant.
        """
        limits = ServerLimits(max_message_rate=rate)
        clock, protocol, transport = self.opened(limits)
        protocol.dataReceived(client_frame(b"1700000000123"))
        self.assertEqual(parse_server_frames(transport.value()), [(1, b"1700000000123")])
        protocol.dataReceived(b"".join(client_frame(b"%d" % i) for i in range(math.floor(limits.message_burst) + 1)))
        # A turn's worth at a time, at one instant.
        clock.advance(0)
        frames = parse_server_frames(transport.value())
        self.assertEqual(frames[-1][0], 8, f"no close after {len(frames)} echoes")
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1008)
        protocol.dropConnection(abort=True)
        protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(60)

    def test_keepalive_answers_are_free(self) -> None:
        """
        The pongs that answer the server's own keepalive pings do not count
        against the message rate, however often the server pings: at one
        message a second (bursts of 10), a client answering a ping every
        0.1 s for a minute stays open.  A pong nobody asked for still
        counts: burst plus one of them at once are closed with 1008.
        """
        limits = ServerLimits(max_message_rate=1, ping_interval=0.1, ping_timeout=0.1)
        clock, protocol, transport = self.opened(limits)
        for _ in range(600):
            clock.advance(0.1)
            frames = parse_server_frames(transport.value())
            transport.clear()
            self.assertEqual([opcode for opcode, _ in frames], [9], frames)
            protocol.dataReceived(client_frame(frames[0][1], opcode=10))
        self.assertEqual(transport.value(), b"")
        protocol.dataReceived(b"".join(client_frame(b"unasked", opcode=10) for _ in range(11)))
        frames = parse_server_frames(transport.value())
        self.assertEqual(frames[-1][0], 8, frames)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1008)
        protocol.dropConnection(abort=True)
        protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(60)

    def test_keepalive_answer_after_a_message_is_free(self) -> None:
        """
        The pong answering the server's keepalive is free even when a
        message came between the ping and it (Autobahn takes any frame for
        the answer, and forgot the ping): at a burst of one message, the
        message and the pong leave the connection open.
        """
        limits = ServerLimits(max_message_rate=0.1, ping_interval=5, ping_timeout=5)
        self.assertEqual(limits.message_burst, 1)
        clock, protocol, transport = self.opened(limits)
        clock.advance(5)
        [(opcode, ping)] = parse_server_frames(transport.value())
        self.assertEqual(opcode, 9)
        transport.clear()
        protocol.dataReceived(client_frame(b"1700000000123") + client_frame(ping, opcode=10))
        self.assertEqual(parse_server_frames(transport.value()), [(1, b"1700000000123")])
        self.assertEqual(protocol.state, protocol.STATE_OPEN)
        protocol.dropConnection(abort=True)
        protocol.connectionLost(Failure(ConnectionDone()))
        clock.advance(60)



# Addresses as a proxy writes them, and anything else a client might.
_entries = st.one_of(
    st.ip_addresses().map(str),
    st.text(st.characters(blacklist_characters=",", blacklist_categories=("Cs",)), max_size=12),
)
_padding = st.sampled_from(["", " ", "  ", "\t"])
_peer = st.sampled_from(["127.0.0.1", "10.0.0.1", "::1", "unix"])


@st.composite
def _forwarded_for(draw: st.DrawFn) -> tuple[str, list[str]]:
    """
    An X-Forwarded-For value and its entries as written.
    """
    entries = draw(st.lists(_entries, min_size=1, max_size=6))
    header = ",".join(draw(_padding) + e + draw(_padding) for e in entries)
    return header, entries


class ClientAddressTests(SynchronousTestCase):
    """
    L{client_address}: the real client behind trusted proxies.
    """

    @given(peer=_peer, forwarded=st.one_of(st.none(), _forwarded_for()), trusted=st.integers(0, 8))
    def test_only_header_entries_or_peer(
        self, peer: str, forwarded: tuple[str, list[str]] | None, trusted: int
    ) -> None:
        """
        The answer is always the peer or one of the header's entries
        (without the spaces around it), never anything else.
        """
        header = None if forwarded is None else forwarded[0]
        entries = [] if forwarded is None else [e.strip() for e in forwarded[1]]
        self.assertIn(client_address(peer, header, trusted), [peer, *entries])

    @given(peer=_peer, forwarded=st.one_of(st.none(), st.just(""), _forwarded_for().map(lambda f: f[0])),
           trusted=st.integers(-3, 0))
    def test_no_trust_means_peer(self, peer: str, forwarded: str | None, trusted: int) -> None:
        """
        Trusting no proxy, the header is ignored: the answer is the peer.
        """
        self.assertEqual(client_address(peer, forwarded, trusted), peer)

    @given(peer=_peer, trusted=st.integers(1, 8))
    def test_no_header_means_peer(self, peer: str, trusted: int) -> None:
        """
        Without a header (or with an empty one) the answer is the peer.
        """
        self.assertEqual(client_address(peer, None, trusted), peer)
        self.assertEqual(client_address(peer, "", trusted), peer)

    @given(peer=_peer, forwarded=_forwarded_for(), trusted=st.integers(1, 8))
    def test_kth_from_the_end(self, peer: str, forwarded: tuple[str, list[str]], trusted: int) -> None:
        """
        Behind C{k} proxies, the answer is the C{k}th entry from the end
        when there are at least C{k} entries and it is not blank, and the
        peer otherwise: entries further left were written by the client.
        """
        header, entries = forwarded
        expected = peer
        if len(entries) >= trusted and entries[-trusted].strip():
            expected = entries[-trusted].strip()
        self.assertEqual(client_address(peer, header, trusted), expected)

    @given(peer=_peer, spoofed=st.lists(st.ip_addresses().map(str), max_size=4),
           real=st.lists(st.ip_addresses().map(str), min_size=1, max_size=4))
    def test_client_cannot_choose(self, peer: str, spoofed: list[str], real: list[str]) -> None:
        """
        Whatever a client writes in front of the entries the trusted
        proxies append, the answer is the entry the outermost trusted
        proxy wrote.
        """
        header = ", ".join(spoofed + real)
        self.assertEqual(client_address(peer, header, len(real)), real[0])


_addresses = st.sampled_from(["127.0.0.1", "10.0.0.1", "10.0.0.2", "::1", "203.0.113.9"])

# What an Origin header holds (visible ASCII), less the one wildcard.
_origins = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, blacklist_characters="*"), min_size=1)


class OriginAllowedTests(SynchronousTestCase):
    """
    L{origin_allowed}: origins as browsers write them, where only C{*} is
    special.
    """

    @given(origin=_origins)
    @example(origin="https://[::1]:8443")
    def test_origin_allows_itself(self, origin: str) -> None:
        """
        Any origin without C{*} in it, named as a pattern, allows itself
        (brackets and question marks included), and nothing else that
        differs from it.
        """
        assume(origin.lower() != "null")
        self.assertTrue(origin_allowed(origin, (origin,), allow_null=False))
        self.assertFalse(origin_allowed(origin + "x", (origin,), allow_null=False))

    def test_no_origin(self) -> None:
        """
        A request without an Origin header, or with an empty one, is not
        from a browser page, and passes whatever the patterns: only a
        browser's page needs its origin allowed.
        """
        for origin in (None, ""):
            self.assertTrue(origin_allowed(origin, ("https://a.example",), allow_null=False), origin)

    def test_ipv6_literal(self) -> None:
        """
        A page served from an IPv6 literal can be allowed; its brackets are
        not a character class.
        """
        patterns = ("https://[::1]:8443", "https://[2001:db8::*]")
        self.assertTrue(origin_allowed("https://[::1]:8443", patterns, True))
        self.assertTrue(origin_allowed("https://[2001:db8::7]", patterns, True))
        self.assertFalse(origin_allowed("https://1:8443", patterns, True))
        self.assertFalse(origin_allowed("https://[::1]:8444", patterns, True))

    def test_only_star_is_special(self) -> None:
        """
        C{*} stands for any run of characters, the empty one included, in
        any case; C{[a]} and C{?} stand for themselves: C{https://[a]}
        does not let C{https://a} in, nor C{https://a?} C{https://ab}.
        """
        patterns = ("https://*.example.com",)
        self.assertTrue(origin_allowed("https://a.b.example.com", patterns, True))
        self.assertTrue(origin_allowed("HTTPS://APP.Example.com", patterns, True))
        self.assertTrue(origin_allowed("https://.example.com", patterns, True))
        self.assertFalse(origin_allowed("https://example.com", patterns, True))
        self.assertFalse(origin_allowed("http://a.example.com", patterns, True))
        self.assertFalse(origin_allowed("https://a", ("https://[a]",), True))
        self.assertFalse(origin_allowed("https://ab", ("https://a?",), True))


    @given(
        pattern=st.text(st.sampled_from("ab.*"), max_size=8),
        origin=st.text(st.sampled_from("ab.*"), max_size=12),
    )
    def test_star_as_any_run(self, pattern: str, origin: str) -> None:
        """
        A pattern matches exactly the origins that the regular expression
        with C{.*} for each C{*} matches in whole, as before origins were
        matched without one (a hostile Origin made it backtrack).
        """
        assume(origin not in ("", "null"))
        regex = re.escape(pattern).replace(r"\*", ".*")
        expected = re.fullmatch(regex, origin, re.DOTALL) is not None
        self.assertEqual(origin_allowed(origin, (pattern,), allow_null=True), expected)

    def test_hostile_origin(self) -> None:
        """
        Origins made to make a matcher backtrack, for patterns with more
        than one C{*}, are refused, and ones that fit are allowed.
        """
        patterns = ("https://*.*.example.com", "https://*-*.example.com")
        for origin in ("https://" + "." * 16000, "https://" + "-" * 16000 + ".example.co", "https://a.b" * 2000):
            self.assertFalse(origin_allowed(origin, patterns, True))
        self.assertTrue(origin_allowed("https://" + "." * 16000 + ".example.com", patterns, True))
        self.assertTrue(origin_allowed("https://a-b.example.com", patterns, True))


class AddressCounterTests(SynchronousTestCase):
    """
    L{AddressCounter}: concurrent connections per address, with a cap.
    """

    def test_ipv6_by_its_64(self) -> None:
        """
        IPv6 addresses in one /64 count as one client, which can take any
        address in it (counted one by one, one client could fill every
        cap); other /64s, IPv4 addresses and IPv4 ones mapped into IPv6
        count apart, the mapped one as its IPv4 address.
        """
        counter = AddressCounter(2)
        self.assertTrue(counter.acquire("2001:db8:1:2::1"))
        self.assertTrue(counter.acquire("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        self.assertFalse(counter.acquire("2001:db8:1:2:abcd::9"))
        self.assertTrue(counter.acquire("2001:db8:1:3::1"))
        self.assertTrue(counter.acquire("::ffff:192.0.2.1"))
        self.assertEqual(counter.count("192.0.2.1"), 1)
        self.assertEqual(counter.count("2001:db8:1:2::"), 2)
        counter.release("2001:db8:1:2::1")
        self.assertTrue(counter.acquire("2001:db8:1:2::7"))
        self.assertEqual(len(counter), 3)

    def test_address_group(self) -> None:
        """
        What an address is counted as: an IPv6 one (zone or not) as its
        /64, anything else as itself, a name or garbage from a proxy's
        header included.
        """
        for address, group in (
            ("2001:db8::1", "2001:db8::/64"),
            ("fe80::1%eth0", "fe80::/64"),
            ("::1", "::/64"),
            ("::ffff:10.0.0.1", "10.0.0.1"),
            ("203.0.113.9", "203.0.113.9"),
            ("not:an:address:at:all", "not:an:address:at:all"),
            ("unknown", "unknown"),
        ):
            self.assertEqual(address_group(address), group, address)

    @settings(deadline=None)
    @given(
        limit=st.integers(0, 4),
        operations=st.lists(st.tuples(st.booleans(), _addresses, st.integers(0, 100)), max_size=200),
    )
    def test_matches_a_model(self, limit: int, operations: list[tuple[bool, str, int]]) -> None:
        """
        Under any sequence of acquires and releases (a release only for a
        connection that was let in, as the server does): acquire succeeds
        exactly when the address is under the cap (or there is none),
        counts match a plain tally, never pass the cap, and an address
        whose connections are all gone is forgotten.
        """
        counter = AddressCounter(limit)
        model: Counter[str] = Counter()
        held: list[str] = []
        for acquire, address, pick in operations:
            if acquire or not held:
                under = limit == 0 or model[address] < limit
                self.assertEqual(counter.acquire(address), under)
                if under:
                    model[address] += 1
                    held.append(address)
            else:
                gone = held.pop(pick % len(held))
                counter.release(gone)
                model[gone] -= 1
            for a in set(model) | {address}:
                self.assertEqual(counter.count(a), model[a])
                if limit:
                    self.assertLessEqual(counter.count(a), limit)
            self.assertEqual(len(counter), sum(1 for n in model.values() if n > 0))
        for address in held:
            counter.release(address)
        self.assertEqual(len(counter), 0)

    @given(limit=st.integers(1, 4), address=_addresses, stray=st.integers(1, 5))
    def test_stray_release_cannot_raise_the_cap(self, limit: int, address: str, stray: int) -> None:
        """
        Releasing an address more often than it was acquired never leaves
        a negative count, so it cannot let more than C{limit} in.
        """
        counter = AddressCounter(limit)
        for _ in range(stray):
            counter.release(address)
        self.assertEqual(counter.count(address), 0)
        self.assertEqual([counter.acquire(address) for _ in range(limit + 1)], [True] * limit + [False])


class RefusalTallyTests(SynchronousTestCase):
    """
    L{RefusalTally}: when refusals at a connection cap are worth a warning.
    """

    @given(
        interval=st.floats(1, 120),
        start=_starts,
        steps=st.lists(st.one_of(st.just(0.0), st.floats(0, 5), st.floats(0, 200)), max_size=300),
    )
    def test_first_then_at_most_once_an_interval(
        self, interval: float, start: float, steps: list[float]
    ) -> None:
        """
        Over any run of refusals the first warns at once, no two warnings
        are less than C{interval} apart, a refusal C{interval} or more
        after the last warning warns, and the warnings count every refusal
        up to the last of them, once each, with the time since the one
        before.
        """
        tally = RefusalTally(interval)
        now, warnings, refusals = start, [], 0
        for step in [0.0, *steps]:
            now += step
            refusals += 1
            last = warnings[-1][0] if warnings else None
            due = tally.refused(now)
            if last is None or now - last >= interval:
                self.assertIsNotNone(due, (now, last))
            if due is not None:
                count, since = due
                self.assertEqual(since, None if last is None else now - last)
                warnings.append((now, count, refusals))
        self.assertEqual(warnings[0][:2], (start, 1))
        for (before, _, _), (after, _, _) in zip(warnings, warnings[1:]):
            self.assertGreaterEqual(after - before, interval)
        self.assertEqual(sum(count for _, count, _ in warnings), warnings[-1][2])

    def test_clock_stepping_back_warns(self) -> None:
        """
        A clock set back (the reactor's is the wall clock) cannot silence
        the warnings until it has caught up again.
        """
        tally = RefusalTally(60)
        self.assertEqual(tally.refused(1000.0), (1, None))
        self.assertIsNone(tally.refused(1030.0))
        self.assertEqual(tally.refused(500.0), (2, -500.0))


class OpenFilesTests(SynchronousTestCase):
    """
    L{files_needed} and L{socket_bound}: the open-file limit a server asks
    for, and the sockets it holds at most under the limit it got.
    """

    @given(st.integers(1, 10**7))
    def test_bound_below_the_limit(self, open_files: int) -> None:
        """
        Under any open-file limit, the server holds fewer sockets than
        the limit allows files, and at least half as many.
        """
        bound = socket_bound(open_files)
        self.assertLess(bound, open_files)
        self.assertGreaterEqual(bound, open_files // 2)

    @given(st.integers(0, 10**6))
    def test_room_to_refuse(self, max_connections: int) -> None:
        """
        Given the limit it asks for, a server holds its cap of connections
        and room for more being answered 503.
        """
        self.assertEqual(
            socket_bound(files_needed(max_connections)), (max_connections or 65_536) + REFUSING_ROOM
        )


def _json_values(keys: st.SearchStrategy[str]) -> st.SearchStrategy[object]:
    """
    JSON values whose objects have C{keys}.
    """
    return st.recursive(
        st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=10),
        lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
        max_leaves=4,
    )


# JSON values.
_json = _json_values(st.text(max_size=5))
# As a record's other fields may hold: no object among them has an "event",
# for a record cut short just after such an object would end in something
# read_records rightly takes for a record another run appended.
_field_values = _json_values(st.text(max_size=5).filter(lambda key: key != "event"))
_ms = st.one_of(st.integers(0, 10**6), st.floats(min_value=0, max_value=1e6))
# The events read_records checks, with what each needs, drawn valid: a
# record without them is refused (test_report's test_fieldsChecked), not
# read back.  Any other event is read as it is.
_checked = {
    "start": st.one_of(st.just({}), st.fixed_dictionaries({"target": st.text(max_size=10)})),
    "reply": st.fixed_dictionaries({"rtt_ms": _ms}),
    "state": st.one_of(
        st.fixed_dictionaries({"state": st.text(max_size=8).filter(lambda state: state != "OPEN")}),
        st.fixed_dictionaries({"state": st.just("OPEN"), "setup_ms": _ms}),
    ),
}
_events = st.one_of(
    st.tuples(st.text(max_size=10).filter(lambda event: event not in _checked), st.just({})),
    *(st.tuples(st.just(event), fields) for event, fields in _checked.items()),
)


def _record(event: tuple[str, dict], t: float, rest: dict) -> dict:
    """
    A record of C{event} (its name and the fields it needs) at C{t} with
    the other fields C{rest}, less any a checked event reads; its event
    first, as pingproto writes them.
    """
    name, fields = event
    taken = {"event", "t", *fields, *(("target", "rtt_ms", "state", "setup_ms") if name in _checked else ())}
    return {"event": name, "t": t, **{k: v for k, v in rest.items() if k not in taken}, **fields}


# Times from the epoch to before the year 3000, the range read_records
# takes (test_report's ReadRecordsTests.test_outOfRange refuses the rest).
_times = st.one_of(st.integers(0, int(LATEST) - 1), st.floats(0, LATEST, exclude_max=True))
_records = st.builds(
    _record,
    _events,
    _times,
    st.dictionaries(st.text(max_size=6), _field_values, max_size=4),
)


def _lines(records: list[dict], blanks: list[bool]) -> list[str]:
    """
    The records as a log file's lines, with blank lines where asked.
    """
    lines = []
    for record, blank in zip(records, blanks + [False] * len(records)):
        if blank:
            lines.append("\n")
        lines.append(json.dumps(record, separators=(",", ":")) + "\n")
    return lines


class ReadRecordsTests(SynchronousTestCase):
    """
    L{read_records}: a C{--log} file read back.
    """

    @settings(deadline=None, max_examples=50)
    @given(records=st.lists(_records, max_size=8), blanks=st.lists(st.booleans(), max_size=8))
    @example(records=[{"event": "reply", "t": 0, "rtt_ms": 0}, {"event": "state", "t": 0, "state": "CLOSED"}],
             blanks=[True])
    def test_round_trip(self, records: list[dict], blanks: list[bool]) -> None:
        """
        Any records written one JSON object a line, blank lines between
        or not, are read back equal and in order, from a list of lines or
        from a file.
        """
        lines = _lines(records, blanks)
        self.assertEqual(list(read_records(lines)), records)
        self.assertEqual(list(read_records(io.StringIO("".join(lines)))), records)

    @settings(deadline=None, max_examples=50)
    @given(records=st.lists(_records, min_size=1, max_size=6), cut=st.floats(0, 1, exclude_max=True))
    @example(records=[{"event": "state", "t": 0, "state": "OPEN", "setup_ms": 1.5}, {"event": "x", "t": 0}], cut=0.5)
    def test_truncated_last_line_skipped(self, records: list[dict], cut: float) -> None:
        """
        A last record cut short anywhere (an interrupted run) is skipped,
        and the records before it are read.
        """
        lines = _lines(records, [])
        last = lines[-1].rstrip("\n")
        lines[-1] = last[: 1 + int(cut * (len(last) - 1))]
        self.assertEqual(list(read_records(io.StringIO("".join(lines)))), records[:-1])

    @settings(deadline=None, max_examples=50)
    @given(records=st.lists(_records, min_size=2, max_size=6), where=st.integers(0), cut=st.floats(0, 1, exclude_max=True))
    @example(records=[{"event": "x", "t": 0}, {"event": "start", "t": 0, "target": "ws://h/"}], where=0, cut=0.0)
    def test_truncated_line_in_the_middle_is_skipped(
        self, records: list[dict], where: int, cut: float
    ) -> None:
        """
        A record cut short with records after it (a killed run, then
        another appending to the log) is skipped and its line number
        reported; every other record is read.
        """
        lines = _lines(records, [])
        index = where % (len(lines) - 1)
        whole = lines[index].rstrip("\n")
        lines[index] = whole[: 1 + int(cut * (len(whole) - 1))] + "\n"
        skipped: list[int] = []
        read = list(read_records(lines, "run.jsonl", skipped))
        self.assertEqual(skipped, [index + 1])
        self.assertEqual(read, [json.loads(line) for i, line in enumerate(lines) if i != index])

    @given(value=_json)
    def test_not_a_record(self, value: object) -> None:
        """
        A JSON value that is not an object with C{event} and a numeric
        C{t} is refused, naming the line.
        """
        assume(not (isinstance(value, dict) and "event" in value and isinstance(value.get("t"), (int, float))))
        with self.assertRaises(RecordError) as caught:
            list(read_records([json.dumps(value)], "run.jsonl"))
        self.assertIn("run.jsonl:1:", str(caught.exception))


_offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
_moments = st.datetimes(
    min_value=datetime.datetime(1970, 1, 2), max_value=datetime.datetime(2999, 12, 30)
)


class ParseTimeTests(SynchronousTestCase):
    """
    L{parse_time}: C{--since}/C{--until} as ISO 8601 or epoch seconds.
    """

    @given(seconds=st.floats(0, LATEST, exclude_max=True))
    def test_epoch_float_round_trip(self, seconds: float) -> None:
        """
        Any number of epoch seconds a record may have, written as Python
        writes it, reads back as the same number.
        """
        self.assertEqual(parse_time(repr(seconds)), seconds)

    @given(seconds=st.integers(0, int(LATEST) - 1).filter(lambda s: len(str(s)) != 8))
    def test_epoch_integer(self, seconds: int) -> None:
        """
        Whole epoch seconds read as themselves; but eight digits are ISO
        8601's basic form of a date (test_report's test_basicForm), which
        as epoch seconds would be a moment in 1970 to 1973.
        """
        self.assertEqual(parse_time(str(seconds)), float(seconds))

    @given(moment=_moments, zone=_offsets, sep=st.sampled_from(["T", " "]),
           timespec=st.sampled_from(["auto", "minutes", "seconds", "milliseconds", "microseconds"]))
    def test_iso_with_zone(self, moment: datetime.datetime, zone: datetime.tzinfo, sep: str, timespec: str) -> None:
        """
        An ISO 8601 time with a UTC offset reads as the moment it shows,
        at any precision it is written with.
        """
        aware = moment.replace(tzinfo=zone)
        text = aware.isoformat(sep, timespec)
        shown = {
            "minutes": aware.replace(second=0, microsecond=0),
            "seconds": aware.replace(microsecond=0),
            "milliseconds": aware.replace(microsecond=aware.microsecond // 1000 * 1000),
        }.get(timespec, aware)
        self.assertEqual(parse_time(text), shown.timestamp())

    @given(moment=_moments)
    def test_iso_without_zone_is_utc(self, moment: datetime.datetime) -> None:
        """
        An ISO 8601 time without an offset is taken as UTC.
        """
        utc = moment.replace(tzinfo=datetime.timezone.utc)
        self.assertEqual(parse_time(moment.isoformat()), utc.timestamp())
        self.assertEqual(parse_time(moment.isoformat()), parse_time(utc.isoformat()))

    @given(text=st.text(st.sampled_from("bcdghjklmopqrsuvwxz!?/ "), min_size=1, max_size=12))
    def test_neither_is_refused(self, text: str) -> None:
        """
        Words that are neither a number nor ISO 8601 are refused with an
        error quoting them.
        """
        with self.assertRaises(ValueError) as caught:
            parse_time(text)
        self.assertIn(repr(text), str(caught.exception))


_tokens = st.text(st.characters(blacklist_characters=" ", blacklist_categories=("Cs",)), min_size=1, max_size=15)
_methods = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=8)
_versions = st.from_regex(r"\A[0-9]\.[0-9]\Z")


class LooksLikeHttpTests(SynchronousTestCase):
    """
    L{_looks_like_http}: the shape C{METHOD TARGET HTTP/x.y}.
    """

    @given(method=_methods, target=_tokens, version=_versions)
    def test_request_lines(self, method: str, target: str, version: str) -> None:
        """
        A word of capital letters, a target and C{HTTP/x.y}, separated by
        single spaces, is a request line.
        """
        self.assertTrue(_looks_like_http(f"{method} {target} HTTP/{version}"))

    @given(parts=st.lists(_tokens, max_size=6))
    def test_three_parts_exactly(self, parts: list[str]) -> None:
        """
        A line of other than three space-separated parts is not.
        """
        assume(len(parts) != 3)
        self.assertFalse(_looks_like_http(" ".join(parts)))

    @given(method=_tokens, target=_tokens)
    def test_method_of_capitals(self, method: str, target: str) -> None:
        """
        A method with anything but the capitals A to Z in it is not:
        methods are case-sensitive, so C{get} is no GET (it was answered
        200 as one), and no method has other letters.
        """
        assume(not all("A" <= c <= "Z" for c in method))
        self.assertFalse(_looks_like_http(f"{method} {target} HTTP/1.1"))
        for line in ("get / HTTP/1.1", "Get / HTTP/1.1", "GÉT / HTTP/1.1"):
            self.assertFalse(_looks_like_http(line), line)

    @given(method=_methods, target=_tokens, version=_tokens)
    def test_version_is_http(self, method: str, target: str, version: str) -> None:
        """
        A third part that is not C{HTTP/} and a digit, a dot and a digit
        is not.
        """
        assume(re.fullmatch(r"HTTP/[0-9]\.[0-9]", version) is None)
        self.assertFalse(_looks_like_http(f"{method} {target} {version}"))
        for line in ("GET / HTTP/", "GET / HTTP/1", "GET / HTTP/1.1x", "GET / http/1.1"):
            self.assertFalse(_looks_like_http(line), line)


_labels = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10)
_hosts = st.one_of(
    st.lists(_labels, min_size=1, max_size=3).map(".".join),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]"),
)
_paths = st.lists(_labels, max_size=3).map(lambda parts: "/" + "/".join(parts))


class PingUrlTests(SynchronousTestCase):
    """
    The URL C{pingproto ping} takes.
    """

    @given(scheme=st.sampled_from(["ws", "wss", "WS", "Wss"]), host=_hosts,
           port=st.one_of(st.none(), st.integers(1, 65535)), path=st.one_of(st.just(""), _paths))
    def test_any_websocket_url(self, scheme: str, host: str, port: int | None, path: str) -> None:
        """
        Any ws:// or wss:// URL with a host (and a port from 1 to 65535, if
        any) is accepted as given; port 0 is no port to connect to.
        """
        url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
        options = PingOptions()
        options.parseOptions([url])
        self.assertEqual(options["url"], url)

    @given(scheme=st.from_regex(r"[a-z][a-z0-9+.-]{0,7}", fullmatch=True), host=_hosts, path=_paths)
    def test_other_schemes(self, scheme: str, host: str, path: str) -> None:
        """
        Any other scheme is a usage error naming the URL.
        """
        assume(scheme.lower() not in ("ws", "wss"))
        url = f"{scheme}://{host}{path}"
        with self.assertRaises(UsageError) as caught:
            PingOptions().parseOptions([url])
        self.assertIn(repr(url), str(caught.exception))

    @given(scheme=st.sampled_from(["ws", "wss"]), path=_paths)
    def test_host_required(self, scheme: str, path: str) -> None:
        """
        A WebSocket URL without a host is a usage error.
        """
        with self.assertRaises(UsageError):
            PingOptions().parseOptions([f"{scheme}://{path}"])

    @given(scheme=st.sampled_from(["ws", "wss"]), host=_hosts, port=st.integers(65536, 10**6))
    def test_port_out_of_range(self, scheme: str, host: str, port: int) -> None:
        """
        A port past 65535 is a usage error naming the URL.
        """
        url = f"{scheme}://{host}:{port}/"
        with self.assertRaises(UsageError) as caught:
            PingOptions().parseOptions([url])
        self.assertIn(repr(url), str(caught.exception))


_head_lines = st.one_of(
    st.sampled_from(["Host: localhost", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13",
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Origin: null", "Accept: text/html",
                     "X-Forwarded-For: 203.0.113.9"]),
    st.text(max_size=30).map(lambda s: s.replace("\r", "").replace("\n", "")),
)
_request_lines = st.one_of(
    st.builds(lambda m, t, v: f"{m} {t} {v}", st.sampled_from(["GET", "HEAD", "POST", "get", "X"]),
              st.one_of(st.sampled_from(["/", "/app", "/sock/websocket", "*", "http://[x", "//", "/?a=%zz"]),
                        _tokens.map(lambda s: s.replace("\r", "").replace("\n", ""))),
              st.sampled_from(["HTTP/1.1", "HTTP/1.0", "HTTP/2", "HTTP/x"])),
    st.text(max_size=40).map(lambda s: s.replace("\r", "").replace("\n", "")),
)


class RequestHeadTests(SynchronousTestCase):
    """
    The server's reading of a request head, in memory on a L{Clock}.
    """

    @settings(deadline=None, max_examples=200)
    @given(first=_request_lines, rest=st.lists(_head_lines, max_size=6), junk=st.binary(max_size=40))
    @example(first="GET http://[x HTTP/1.1", rest=["Host: localhost"], junk=b"")
    def test_every_head_gets_an_answer(self, first: str, rest: list[str], junk: bytes) -> None:
        """
        Whatever request head arrives (made of request-like lines, or of
        anything), the server answers with an HTTP status line and closes,
        or opens the WebSocket; it never raises, and it holds no count for
        the connection once it is gone.
        """
        clock = Clock()
        factory = EchoServerFactory(ServerLimits(), reactor=clock)
        protocol = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        transport = LenientTransport()
        protocol.makeConnection(transport)
        head = "\r\n".join([first, *rest]).encode("utf-8") + junk.replace(b"\r\n\r\n", b"") + b"\r\n\r\n"
        protocol.dataReceived(head)
        response = transport.value()
        self.assertRegex(response[:13], rb"^HTTP/1\.1 \d\d\d ", head)
        if response.startswith(b"HTTP/1.1 101 "):
            self.assertEqual(len(factory.open_protocols), 1)
        else:
            self.assertTrue(transport.disconnecting, head)
        protocol.dropConnection(abort=True)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.sockets, len(factory.open_protocols), len(factory.per_address)), (0, 0, 0))
        clock.advance(60)


class NeverHttpTests(SynchronousTestCase):
    """
    L{_never_http}: the start of a request head that can never become HTTP
    is known before the head ends.
    """

    def test_mayStillBeHttp(self) -> None:
        """
        Nothing yet, a method being typed, a whole request line and headers
        so far, in any pieces, may still become HTTP.
        """
        for start in (b"", b"G", b"GET /pi", b"GET / HTTP/1.1\r", b"GET / HTTP/1.1\r\nHost: x\r\n",
                      b"GET / HTTP/1.1\nHost: x\n"):
            self.assertFalse(_never_http(start), start)

    def test_neverHttp(self) -> None:
        """
        A TLS hello, a first line of another protocol and a head ended with
        bare LFs never will.
        """
        for start in (b"\x16\x03\x01\x02\x00", b"get / HTTP/1.1", b"SSH-2.0-OpenSSH_9.2\r\n",
                      b"GET / HTTP/1.1\r\nHost: x\n\n", b"GET / HTTP/1.1\n\n"):
            self.assertTrue(_never_http(start), start)
