"""
Limits and bad input (issue 5), against a real server listening on
127.0.0.1, built from C{twistd pingproto} options.

Every test runs a witness: pingproto's own L{PingMonitor} pinging every
50 ms for the whole test.  While a raw client abuses the server, the
witness must keep getting its echoes: none lost, no disconnect, and never
a gap between echoes longer than L{MAX_GAP}.  (Where the test is the
server going away, the witness is the client that must be told so.)

The last tests turn round: a server that says goodbye and then does not
hang up must not wedge pingproto's client.
"""

from __future__ import annotations

import gc
import json
import os
import random
import resource
import socket
import struct
import sys
from typing import Callable

from twisted.internet import defer, reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThread
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import LogLevel, capturedLogs, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SkipTest, TestCase

from pingproto import PingMonitor, StateChange
from pingproto.server import EchoServerProtocol
from pingproto.service import GOODBYE_GRACE
from pingproto.session import Sample
from pingproto.text import QUOTED_MAX
from pingproto.tls import NO_DATA_BURST, client_tls_options

from .commands import environment, twistd
from .test_endtoend import ServerTestCase
from .test_fidelity import Watcher
from .test_protocols import client_frame, parse_server_frames, upgrade_answer, upgrade_request
from .test_twistd import Server, TwistdCase
from .waiting import Conditions, FactoryBooks

# The witness pings this often, and no two of its echoes may be further
# apart than MAX_GAP while (and after) the server is being abused.
WITNESS_INTERVAL = 0.05
MAX_GAP = 0.5
# How late a timer-driven close may come: timers fire late by a reactor
# turn, and the close travels over loopback.
SLACK = 0.5


class RawClient(Protocol):
    """
    A client that speaks bytes: it sends what the test writes, keeps what
    comes back, and notes when the connection was made and lost.  Once it
    has seen a WebSocket close frame from the server it answers it (unless
    C{answer_close} is off), as a well-behaved peer would.
    """

    answer_close = True

    def __init__(self) -> None:
        self.received = b""
        self.made_at: float | None = None
        self.lost_at: float | None = None
        self.reason: Failure | None = None
        self._answered = False
        self._conditions = Conditions()
        self.until = self._conditions.until

    def connectionMade(self) -> None:
        self.made_at = reactor.seconds()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if self.answer_close and not self._answered and self.close_code() is not None:
            self._answered = True
            self.transport.write(client_frame(self.close_code().to_bytes(2, "big"), opcode=8))
        self._check()

    def connectionLost(self, reason: Failure) -> None:
        self.lost_at = reactor.seconds()
        self.reason = reason
        self._check()

    def _check(self) -> None:
        self._conditions.check()

    @property
    def lost(self) -> bool:
        return self.lost_at is not None

    def until_lost(self) -> Deferred[None]:
        return self.until(lambda: self.lost)

    @property
    def head(self) -> bytes | None:
        end = self.received.find(b"\r\n\r\n")
        return None if end < 0 else self.received[: end + 4]

    @property
    def status(self) -> int | None:
        head = self.head
        return None if head is None else int(head.split(b" ", 2)[1])

    def frames(self) -> list[tuple[int, bytes]]:
        head = self.head
        return [] if head is None or self.status != 101 else parse_server_frames(self.received[len(head) :], partial=True)

    def close_code(self) -> int | None:
        for opcode, payload in self.frames():
            if opcode == 8:
                return int.from_bytes(payload[:2], "big")
        return None

    def send_frame(self, payload: bytes, opcode: int = 1, fin: bool = True) -> None:
        self.transport.write(client_frame(payload, opcode, fin))

    def abort(self) -> Deferred[None]:
        if self.transport is None:
            return succeed(None)
        if not self.lost:
            self.transport.resumeProducing()
            self.transport.abortConnection()
        return self.until_lost()


class Witness(Watcher):
    """
    The fidelity tests' watcher, also keeping when each echo came back and
    every state change in full.
    """

    def __init__(self) -> None:
        super().__init__()
        self.reply_times: list[float] = []
        self.changes: list[StateChange] = []

    def ping_replied(self, sample: Sample) -> None:
        self.reply_times.append(reactor.seconds())
        super().ping_replied(sample)

    def state_changed(self, change: StateChange) -> None:
        self.changes.append(change)
        super().state_changed(change)


class HardeningTestCase(ServerTestCase):
    """
    A server built from C{extra} options, a witness pinging it, raw
    abusive clients, and the server's log.
    """

    timeout = 20
    tls = True
    extra: list[str] = []
    # Seconds between the witness's pings; None: no witness.
    witness_interval: float | None = WITNESS_INTERVAL

    def setUp(self) -> Deferred[None] | None:
        super().setUp()
        self.factory = self.service.factory
        self.books = FactoryBooks(self, self.factory)
        # Runs after the clients' cleanups, before the server stops: the
        # server has seen every connection go.
        self.addCleanup(lambda: self.eventually(lambda: self.factory.sockets == 0))
        self.logged: list[tuple[float, dict]] = []
        self._log_waiting: list[tuple[Callable[[dict], bool], Deferred[float]]] = []
        globalLogPublisher.addObserver(self._observe)
        self.addCleanup(globalLogPublisher.removeObserver, self._observe)
        self.witness = Witness()
        if self.witness_interval is None:
            return None
        self.monitor = PingMonitor(
            self.url(),
            self.witness,
            interval=self.witness_interval,
            timeout=1.0,
            ca_file=getattr(self, "caFile", None),
            retry_policy=lambda failures: 0.1,
        )
        self.monitor.startService()
        self.addCleanup(self.monitor.stopService)
        return self.witness.until(lambda: self.witness.replies() >= 3)

    # The server's log.

    def _observe(self, event: dict) -> None:
        now = reactor.seconds()
        self.logged.append((now, event))
        for entry in list(self._log_waiting):
            predicate, d = entry
            if predicate(event):
                self._log_waiting.remove(entry)
                # Not from inside the log publisher.
                reactor.callLater(0, d.callback, now)

    def logged_event(self, predicate: Callable[[dict], bool]) -> Deferred[float]:
        """
        Fires with the time of the next logged event that matches.
        """
        d: Deferred[float] = Deferred()
        self._log_waiting.append((predicate, d))
        return d

    def server_log(self) -> list[str]:
        return [
            formatEvent(event)
            for _, event in self.logged
            if event.get("log_namespace", "").startswith("pingproto.server")
        ]

    # Raw clients.

    def raw(self, tls: bool | None = None) -> Deferred[RawClient]:
        """
        Connect a raw client, over TLS (verifying the server) when the
        server speaks it, unless C{tls} says otherwise.
        """
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        if self.tls if tls is None else tls:
            endpoint = wrapClientTLS(client_tls_options("localhost", self.caFile), endpoint)
        client = RawClient()
        self.addCleanup(client.abort)
        return connectProtocol(endpoint, client)

    @inlineCallbacks
    def request(self, data: bytes, tls: bool | None = None) -> Deferred[RawClient]:  # type: ignore[misc]
        """
        Send C{data} and wait for the response head (or the end).
        """
        client = yield self.raw(tls)
        client.transport.write(data)
        yield client.until(lambda: client.head is not None or client.lost)
        return client

    def websocket(self, extra: str = "", path: str = "/") -> Deferred[RawClient]:
        """
        A raw client that asks for a WebSocket; the test checks its status.
        """
        return self.request(upgrade_request(path, extra))

    @inlineCallbacks
    def open_websocket(self, extra: str = "") -> Deferred[RawClient]:  # type: ignore[misc]
        client = yield self.websocket(extra)
        self.assertEqual(client.status, 101, client.received[:200])
        return client

    def server_side(self, client: RawClient) -> EchoServerProtocol:
        """
        The server's protocol for an open raw WebSocket client.
        """
        port = client.transport.getHost().port
        [protocol] = [p for p in self.factory.open_protocols if p.transport.getPeer().port == port]
        return protocol

    # The server's books.

    def counts(self) -> tuple[int, int, int, int]:
        """
        Sockets, open WebSockets, connections counted for 127.0.0.1, and
        addresses counted.
        """
        factory = self.factory
        return (
            factory.sockets,
            len(factory.open_protocols),
            factory.per_address.count("127.0.0.1"),
            len(factory.per_address),
        )

    def eventually(self, condition: Callable[[], bool], within: float = 2.0) -> Deferred[None]:
        """
        Wait for the server's books to catch up with what the network did
        (connections going), failing after C{within} seconds.
        """

        def late(reason: Failure) -> None:
            reason.trap(defer.TimeoutError)
            self.fail(f"not within {within} s; counts are {self.counts()}")

        waiting = self.books.until(condition)
        return waiting.addTimeout(within, reactor).addErrback(late)

    # The witness.

    @inlineCallbacks
    def assertWitnessUnharmed(self, since: float, released: bool = True) -> Deferred[None]:  # type: ignore[misc]
        """
        The witness got echoes all along since C{since}, still gets them,
        lost none and never disconnected; with C{released}, the server is
        back to holding the witness's connection alone.
        """
        count = self.witness.replies()
        yield self.witness.until(lambda: self.witness.replies() >= count + 3)
        summary = self.witness.folder.summary()
        self.assertEqual(
            (summary.lost, summary.disconnects, summary.opens),
            (0, 0, 1),
            f"witness saw {self.witness.events[-20:]}",
        )
        self.assertEqual([c.state.name for c in self.witness.changes], ["CONNECTING", "OPEN"])
        times = [since] + [t for t in self.witness.reply_times if t >= since]
        gap = max(b - a for a, b in zip(times, times[1:]))
        self.assertLess(gap, MAX_GAP, f"the witness waited {gap:.3f} s for an echo")
        if released:
            yield self.eventually(lambda: self.counts() == (1, 1, 1, 1))


class RequestHeadTests(HardeningTestCase):
    """
    Oversized and malformed requests, and plain HTTP over TLS, on the
    default 16 KiB request head limit and 10 s handshake timeout.
    """

    @inlineCallbacks
    def test_oversizedHeaderRefusedBeforeItEnds(self):  # type: ignore[no-untyped-def]
        """
        A request head that passes 16 KiB without ending is answered 431
        and closed at once, long before the handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.request(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Junk: " + b"a" * (17 * 1024))
        yield client.until_lost()
        self.assertEqual(client.status, 431)
        self.assertLess(client.lost_at - client.made_at, 1.0)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_oversizedHeaderBlockRefused(self):  # type: ignore[no-untyped-def]
        """
        A complete request head of 200 small headers, over 18 KiB in all,
        is answered 431: the limit is on the whole head, not per line.
        """
        since = reactor.seconds()
        headers = b"".join(b"X-Filler-%d: %s\r\n" % (i, b"b" * 80) for i in range(200))
        client = yield self.request(b"GET / HTTP/1.1\r\nHost: localhost\r\n" + headers + b"\r\n")
        yield client.until_lost()
        self.assertEqual(client.status, 431)
        self.assertLess(client.lost_at - client.made_at, 1.0)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_garbageInsideTls(self):  # type: ignore[no-untyped-def]
        """
        Random bytes sent over a good TLS connection, ending like a request
        head, are answered 400 and closed.
        """
        since = reactor.seconds()
        garbage = bytes(b for b in random.Random(5).randbytes(2000) if b not in b"\r\n")
        client = yield self.request(garbage + b"\r\n\r\n")
        yield client.until_lost()
        self.assertEqual(client.status, 400)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_garbageInsteadOfTls(self):  # type: ignore[no-untyped-def]
        """
        Random bytes sent to the TLS port in the clear make the server
        close the connection at once, not at the handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.raw(tls=False)
        client.transport.write(random.Random(6).randbytes(4000))
        yield client.until_lost()
        self.assertLess(client.lost_at - client.made_at, 1.0)
        self.assertFalse(client.received.startswith(b"HTTP/"))
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_plainHttpToTlsPort(self):  # type: ignore[no-untyped-def]
        """
        Plain HTTP sent to the TLS port (http:// for https://) is answered
        in plain HTTP, 400 with what to use instead, as nginx does, and
        logged at info in one line, as other refused requests are.
        """
        since = reactor.seconds()
        requests = [
            b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
            # Any method, as an HTTP server would take it: HTTP/2's prior
            # knowledge preface, WebDAV's, and one in lower case.
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"PROPFIND / HTTP/1.1\r\nHost: localhost\r\n\r\n",
            b"get / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        ]
        for request in requests:
            with capturedLogs() as events:
                client = yield self.request(request, tls=False)
                yield client.until_lost()
            self.assertEqual(client.status, 400, (request, client.received[:200]))
            self.assertTrue(client.received.endswith(b"use https:// (or wss:// for a WebSocket).\n"))
            self.assertEqual([formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn], [])
            [line] = [formatEvent(e) for e in events if "answered" in formatEvent(e)]
            self.assertRegex(line, r"^tcp4:127\.0\.0\.1:\d+: answered 400 Bad Request: plain HTTP to a TLS port$")
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_brokenTlsLoggedAtInfo(self):  # type: ignore[no-untyped-def]
        """
        A TLS handshake that fails on the client's side (here a record no
        TLS client sends) is the client's mistake: one line at info naming
        it, not an error in the log (Autobahn logs it as one).
        """
        since = reactor.seconds()
        with capturedLogs() as events:
            client = yield self.request(b"\x16\x03\x01\x00\x04abcd", tls=False)
            yield client.until_lost()
        self.assertEqual([formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn], [])
        [line] = [formatEvent(e) for e in events if "SSL error" in formatEvent(e)]
        self.assertRegex(line, r"^tcp4:127\.0\.0\.1:\d+: SSL error: ")
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_unparsableTarget(self):  # type: ignore[no-untyped-def]
        """
        A plain request whose target cannot be parsed as a URL (a broken
        IPv6 literal) is answered 400 and closed, like any malformed
        request, rather than raising inside the server.
        """
        since = reactor.seconds()
        client = yield self.request(b"GET http://[oops HTTP/1.1\r\nHost: localhost\r\n\r\n")
        yield client.until_lost()
        self.assertEqual(client.status, 400, client.received[:200])
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_plainHttpFirstSegmentAlone(self):  # type: ignore[no-untyped-def]
        """
        The first segment of a plain request can be its method alone (a
        client that writes "GET" and then the rest): it is answered 400
        then, not taken for the start of a TLS record and left to the
        handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.request(b"GET", tls=False)
        yield client.until_lost()
        self.assertEqual(client.status, 400, client.received[:200])
        self.assertLess(client.lost_at - client.made_at, 5.0)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_plainTlsHttp10Client(self):  # type: ignore[no-untyped-def]
        """
        A plain HTTPS client speaking HTTP/1.0 without Host gets the hint
        and the connection is closed by the server.
        """
        since = reactor.seconds()
        client = yield self.request(b"GET / HTTP/1.0\r\n\r\n")
        yield client.until_lost()
        self.assertEqual(client.status, 200)
        self.assertTrue(client.received.endswith(b"connect a WebSocket please"))
        yield self.assertWitnessUnharmed(since)


class HandshakeTimeoutTests(HardeningTestCase):
    """
    Clients that never finish the opening handshake are dropped within the
    1 s handshake timeout.
    """

    extra = ["--handshake-timeout", "1"]

    def assertDroppedAtTimeout(self, client: RawClient) -> None:
        elapsed = client.lost_at - client.made_at
        self.assertGreaterEqual(elapsed, 0.9, "dropped before the handshake timeout")
        self.assertLessEqual(elapsed, 1.0 + SLACK, "not dropped at the handshake timeout")

    @inlineCallbacks
    def test_silentClient(self):  # type: ignore[no-untyped-def]
        """
        A client that completes TLS and then sends nothing is dropped at
        the handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.raw()
        yield client.until_lost()
        self.assertDroppedAtTimeout(client)
        self.assertEqual(client.received, b"")
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_trickledHandshake(self):  # type: ignore[no-untyped-def]
        """
        A client trickling a valid upgrade request a byte every 50 ms
        (which would take seconds) is answered 408 and dropped at the
        handshake timeout: progress does not buy time.
        """
        since = reactor.seconds()
        client = yield self.raw()
        request = iter(upgrade_request())

        def trickle() -> None:
            byte = next(request, None)
            if byte is not None and not client.lost:
                client.transport.write(bytes([byte]))

        trickler = LoopingCall(trickle)
        trickler.start(0.05)
        self.addCleanup(lambda: trickler.running and trickler.stop())
        yield client.until_lost()
        trickler.stop()
        self.assertDroppedAtTimeout(client)
        self.assertTrue(client.received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), client.received)
        self.assertTrue(client.received.endswith(b"\r\n\r\nthe request did not arrive within 1 s\n"), client.received)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_stalledTlsHandshake(self):  # type: ignore[no-untyped-def]
        """
        A client that sends the start of a TLS ClientHello and stalls is
        dropped at the handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.raw(tls=False)
        # A handshake record announcing 512 bytes, of which 9 come.
        client.transport.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(7))
        yield client.until_lost()
        self.assertDroppedAtTimeout(client)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_silentTcpOnTlsPort(self):  # type: ignore[no-untyped-def]
        """
        A TCP connection to the TLS port that never starts TLS is dropped
        at the handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.raw(tls=False)
        yield client.until_lost()
        self.assertDroppedAtTimeout(client)
        yield self.assertWitnessUnharmed(since)


class MessageLimitTests(HardeningTestCase):
    """
    Oversized messages and frames (1009), floods (1008), invalid UTF-8
    (1007), truncated frames and resets, on an open WebSocket.
    """

    extra = ["--max-message-size", "1024", "--max-message-rate", "40"]

    @inlineCallbacks
    def closed_with(self, client: RawClient) -> Deferred[int]:  # type: ignore[misc]
        yield client.until_lost()
        return client.close_code()

    @inlineCallbacks
    def test_oversizedFrame(self):  # type: ignore[no-untyped-def]
        """
        A single frame one byte over the 1024-byte limit is closed with
        1009, and nothing is echoed.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        client.send_frame(b"x" * 1025, opcode=2)
        code = yield self.closed_with(client)
        self.assertEqual(code, 1009)
        self.assertEqual([op for op, _ in client.frames()], [8])
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_oversizedFragmentedMessage(self):  # type: ignore[no-untyped-def]
        """
        A message of three 400-byte fragments, each under the limit but
        1200 bytes together, is closed with 1009.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        client.send_frame(b"a" * 400, opcode=1, fin=False)
        client.send_frame(b"b" * 400, opcode=0, fin=False)
        client.send_frame(b"c" * 400, opcode=0, fin=True)
        code = yield self.closed_with(client)
        self.assertEqual(code, 1009)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_hugeFrameHeader(self):  # type: ignore[no-untyped-def]
        """
        A frame header announcing a terabyte is answered with 1009 at once,
        without waiting for (or buffering) the payload; the connection is
        gone within the closing handshake timeout.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        sent = reactor.seconds()
        client.transport.write(client_frame(b"", opcode=2, declared=2**40))
        yield client.until(lambda: client.close_code() is not None)
        self.assertEqual(client.close_code(), 1009)
        self.assertLess(reactor.seconds() - sent, SLACK)
        yield client.until_lost()
        self.assertLess(client.lost_at - sent, 1.0 + SLACK)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_flood(self):  # type: ignore[no-untyped-def]
        """
        1000 messages at once, against a limit of 40 a second with bursts
        of ten seconds' worth (400): the burst is echoed, then the
        connection is closed with 1008.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        client.transport.write(b"".join(client_frame(b"%d" % i) for i in range(1000)))
        code = yield self.closed_with(client)
        self.assertEqual(code, 1008)
        echoes = [payload for opcode, payload in client.frames() if opcode == 1]
        self.assertGreaterEqual(len(echoes), 400)
        self.assertLess(len(echoes), 450)
        self.assertEqual(echoes, [b"%d" % i for i in range(len(echoes))])
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_invalidUtf8(self):  # type: ignore[no-untyped-def]
        """
        A text message that is not valid UTF-8 is closed with 1007.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        server = self.server_side(client)
        client.send_frame(b"ok \xc3\x28 not", opcode=1)
        code = yield self.closed_with(client)
        self.assertEqual(code, 1007)
        # Autobahn fails this connection at once, without waiting for the
        # close reply, and leaves its closing handshake timer to run out
        # on a closed connection (harmless); end it, as Autobahn's own
        # tests do with their timers.
        if server.closeHandshakeTimeoutCall is not None:
            server.closeHandshakeTimeoutCall.cancel()
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_truncatedFrame(self):  # type: ignore[no-untyped-def]
        """
        A client that sends half a frame and then closes its connection
        is let go: its socket, WebSocket and address count are released.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        self.assertEqual(self.counts(), (2, 2, 2, 1))
        client.transport.write(client_frame(b"x" * 100, declared=200))
        client.transport.loseConnection()
        yield client.until_lost()
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_resetMidFrame(self):  # type: ignore[no-untyped-def]
        """
        A connection reset (TCP RST) in the middle of a frame releases the
        socket, the WebSocket and the address count.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        self.assertEqual(self.counts(), (2, 2, 2, 1))
        client.transport.write(client_frame(b"y" * 100, declared=200))
        tcp = client.transport.transport
        # Linger on with a zero timeout: close() sends RST, not FIN.
        tcp.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        tcp.abortConnection()
        yield client.until_lost()
        yield self.assertWitnessUnharmed(since)


class SlowRateTests(HardeningTestCase):
    """
    A rate limit under one message a second: C{--max-message-rate 0.4}
    (one message every 2.5 s), which the option accepts.  No witness: its
    20 pings a second are over this limit.
    """

    tls = False
    extra = ["--max-message-rate", "0.4"]
    witness_interval = None

    @inlineCallbacks
    def test_firstMessageEchoed(self):  # type: ignore[no-untyped-def]
        """
        A client's first message is echoed; five more at once are over
        the limit and closed with 1008.
        """
        # Anything the server leaves for the garbage collector to report
        # (an error in a Deferred) is reported against this test.
        self.addCleanup(gc.collect)
        client = yield self.open_websocket()
        client.send_frame(b"1700000000123")
        yield client.until(lambda: len(client.frames()) >= 1 or client.lost)
        self.assertEqual(client.frames()[:1], [(1, b"1700000000123")])
        for i in range(5):
            client.send_frame(b"%d" % i)
        yield client.until(lambda: client.lost or len(client.frames()) >= 6)
        self.assertEqual(client.close_code(), 1008, client.frames())


class ConnectionCapTests(HardeningTestCase):
    """
    At most 3 connections at once (the witness is one); more get 503.
    """

    tls = False
    extra = ["--max-connections", "3"]

    @inlineCallbacks
    def test_overCapGets503(self):  # type: ignore[no-untyped-def]
        """
        With the cap reached, an upgrade request is answered 503 with
        Retry-After before any WebSocket work, and closed; once a
        connection goes, a new one is served.
        """
        since = reactor.seconds()
        first = yield self.open_websocket()
        yield self.open_websocket()
        self.assertEqual(self.counts()[:2], (3, 3))
        refused = yield self.websocket()
        yield refused.until_lost()
        self.assertEqual(refused.status, 503)
        self.assertIn(b"\r\nRetry-After: 10\r\n", refused.head)
        self.assertNotIn(b"sec-websocket-accept", refused.head.lower())
        self.assertEqual(len(self.factory.open_protocols), 3)
        yield first.abort()
        yield self.eventually(lambda: self.factory.sockets == 2)
        again = yield self.websocket()
        self.assertEqual(again.status, 101)
        yield again.abort()
        yield self.assertWitnessUnharmed(since, released=False)

    @inlineCallbacks
    def test_plainRequestOverCap(self):  # type: ignore[no-untyped-def]
        """
        The cap covers plain HTTP requests too: over it, GET / gets 503.
        """
        since = reactor.seconds()
        yield self.open_websocket()
        yield self.open_websocket()
        refused = yield self.request(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertEqual(refused.status, 503)
        yield self.assertWitnessUnharmed(since, released=False)


class PerAddressCapTests(HardeningTestCase):
    """
    At most 2 connections from one address (the witness is one); no proxy
    is trusted, so X-Forwarded-For is ignored and everyone is 127.0.0.1.
    """

    tls = False
    extra = ["--max-per-address", "2"]

    @inlineCallbacks
    def test_forwardedForIgnoredWithoutTrust(self):  # type: ignore[no-untyped-def]
        """
        Requests naming different X-Forwarded-For addresses all count as
        127.0.0.1: the second is over the cap and gets 503, and the log
        names the real peer.
        """
        since = reactor.seconds()
        client = yield self.open_websocket("X-Forwarded-For: 203.0.113.1\r\n")
        self.assertEqual(self.factory.per_address.count("127.0.0.1"), 2)
        self.assertEqual(self.factory.per_address.count("203.0.113.1"), 0)
        refused = yield self.websocket("X-Forwarded-For: 203.0.113.2\r\n")
        self.assertEqual(refused.status, 503)
        peer = f"tcp4:127.0.0.1:{client.transport.getHost().port}"
        closed = self.logged_event(lambda e: "closed: code" in e.get("log_format", "") and e.get("peer") == peer)
        yield client.abort()
        yield closed
        lines = [line for line in self.server_log() if line.startswith(f"{peer} at /, open ")]
        self.assertEqual(len(lines), 1, self.server_log())
        yield self.assertWitnessUnharmed(since)


    @inlineCallbacks
    def test_silentOverCapLetGoAtOnce(self):  # type: ignore[no-untyped-def]
        """
        Sockets over the cap that send nothing are answered 503 and closed
        by the server at once: held until the handshake timeout, they
        counted against nothing, and one address could take every file
        descriptor the server had.
        """
        since = reactor.seconds()
        yield self.raw()
        over = yield gatherResults([self.raw() for _ in range(3)])
        for client in over:
            yield client.until_lost()
            self.assertEqual(client.status, 503, client.received[:100])
            self.assertLess(client.lost_at - client.made_at, SLACK)
        yield self.eventually(lambda: self.counts() == (2, 1, 2, 1))
        yield self.assertWitnessUnharmed(since, released=False)


class PerAddressCapOverTLSTests(HardeningTestCase):
    """
    At most 2 connections from one address (the witness is one), over TLS.
    """

    extra = ["--max-per-address", "2"]

    @inlineCallbacks
    def test_silentOverCapClosedAtOnce(self):  # type: ignore[no-untyped-def]
        """
        Over TLS a socket over the cap is closed as it is accepted,
        unanswered: its 503 would wait for a TLS handshake, which a silent
        client never starts.
        """
        since = reactor.seconds()
        yield self.raw(tls=False)
        over = yield self.raw(tls=False)
        yield over.until_lost()
        self.assertEqual(over.received, b"")
        self.assertLess(over.lost_at - over.made_at, SLACK)
        yield self.eventually(lambda: self.counts() == (2, 1, 2, 1))
        yield self.assertWitnessUnharmed(since, released=False)


class KeyUpdateTests(HardeningTestCase):
    """
    TLS 1.3 key updates, which carry no data and so no limit on what a
    client sends counted: past a burst of them, the client is cut off.
    """

    timeout = 60
    CLIENT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keyupdate_client.py")

    @inlineCallbacks
    def key_updates(self, count: int):  # type: ignore[no-untyped-def]
        """
        The first line of the answer to a plain request sent after
        C{count} key updates, or "" if the connection ended first.
        """
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, [self.CLIENT, str(self.port), str(count)], env=environment()
        )
        self.assertEqual(code, 0, err)
        return json.loads(out)["answer"]

    @inlineCallbacks
    def test_burstAllowed(self):  # type: ignore[no-untyped-def]
        """
        A client's burst of 16 key updates is answered, and its request
        after them too: nothing is logged.
        """
        answer = yield self.key_updates(NO_DATA_BURST)
        self.assertEqual(answer, "HTTP/1.1 200 OK")
        self.assertFalse([e for _, e in self.logged if "key updates" in e.get("log_format", "")])

    @inlineCallbacks
    def test_floodCutOff(self):  # type: ignore[no-untyped-def]
        """
        A client sending 2,000 key updates is cut off a few past the
        16th, with one line saying why, and its request gets no answer;
        the witness keeps getting its echoes.  It held every other
        client's echoes for as long as OpenSSL took to answer them all.
        """
        since = reactor.seconds()
        logged = self.logged_event(lambda e: "key updates" in e.get("log_format", ""))
        answer = yield self.key_updates(2000)
        self.assertEqual(answer, "")
        yield logged
        [line] = [formatEvent(e) for _, e in self.logged if "key updates" in e.get("log_format", "")]
        self.assertRegex(line, r"^tcp4:127\.0\.0\.1:\d+: closed: sent over 16 TLS records without data \(key updates\)$")
        yield self.assertWitnessUnharmed(since)


class SocketBoundTests(HardeningTestCase):
    """
    A server bound to hold 3 sockets at most (the witness holds one), over
    TLS, with no connection cap to stop them before.
    """

    extra = ["--max-connections", "0", "--max-per-address", "0"]

    @inlineCallbacks
    def test_pastTheBoundClosedAtAccept(self):  # type: ignore[no-untyped-def]
        """
        Past the most sockets the open-file limit leaves room for, a new
        socket is closed as it is accepted, unanswered, through the TLS
        layer too; the server never holds more, and takes one again once
        one has gone.
        """
        since = reactor.seconds()
        self.factory.max_sockets = 3
        # The server accepts sockets in the order they connected.
        held = yield gatherResults([self.raw(tls=False) for _ in range(2)])
        past = yield self.raw(tls=False)
        yield past.until_lost()
        self.assertEqual(past.received, b"")
        self.assertLess(past.lost_at - past.made_at, SLACK)
        self.assertEqual(self.factory.sockets, 3)
        yield held[0].abort()
        yield self.eventually(lambda: self.factory.sockets == 2)
        again = yield self.raw(tls=False)
        past = yield self.raw(tls=False)
        yield past.until_lost()
        self.assertEqual((self.factory.sockets, again.lost), (3, False))
        yield self.assertWitnessUnharmed(since, released=False)


# Runs what follows under a soft and hard open-file limit of 1024, as
# systemd's soft one.
_UNDER_1024_FILES = (
    "import os, resource, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def _flood(port: int, pid: int) -> tuple[list[bytes], int, bytes]:
    """
    Connect 1,100 sockets from 127.0.0.9 that send nothing, and read what
    the server answers all but the first 5 until it closes them; then count
    the files process C{pid} has open, and ask for C{GET /} from 127.0.0.1
    while the 5 are still open.
    """
    clients: list[socket.socket] = []
    try:
        for _ in range(1100):
            client = socket.socket()
            clients.append(client)
            client.settimeout(5)
            client.bind(("127.0.0.9", 0))
            client.connect(("127.0.0.1", port))
        answers = []
        for client in clients[5:]:
            answer = b""
            while chunk := client.recv(4096):
                answer += chunk
            answers.append(answer)
        files = len(os.listdir(f"/proc/{pid}/fd"))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as other:
            other.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
            return answers, files, other.recv(4096)
    finally:
        for client in clients:
            client.close()


class OpenFileLimitTests(TwistdCase):
    """
    C{twistd -n pingproto} in a process of its own, under an open-file
    limit of 1024.
    """

    @inlineCallbacks
    def test_oneAddressCannotTakeEveryFile(self):  # type: ignore[no-untyped-def]
        """
        1,100 sockets from one address that send nothing, against caps of 5
        an address and 700 in all, are each answered 503 and let go of at
        once: the server holds a handful of files and serves another
        address, and its log has one warning that the cap was reached and
        a line at info for each of the 1,095 refusals.  Held until the
        handshake timeout, they took the server to 1,024 files, and it
        reset other clients (Twisted's EMFILE recovery).
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and hard < 1400:
            raise SkipTest(f"this test opens 1,100 sockets; the hard open-file limit is {hard}")
        if soft != resource.RLIM_INFINITY and soft < 1400:
            resource.setrlimit(resource.RLIMIT_NOFILE, (1400, hard))
            self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        server = Server()
        args = ["-n", "--pidfile=", "pingproto", "--port", "0", "--max-connections", "700", "--max-per-address", "5"]
        process = reactor.spawnProcess(  # type: ignore[attr-defined]
            server,
            sys.executable,
            [sys.executable, "-c", _UNDER_1024_FILES, twistd(), *args],
            env=environment(),
            path=self.mktemp_dir(),
        )

        def stop() -> Deferred[None]:
            if not server.ended.called:
                process.signalProcess("TERM")
            return server.ended

        self.addCleanup(stop)
        url = yield server.listening
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        # In a thread: the reactor goes on reading the server's log, which
        # would otherwise fill its pipe and stop it.
        answers, files, other = yield deferToThread(_flood, port, process.pid)
        self.assertEqual([answer[:13] for answer in answers], [b"HTTP/1.1 503 "] * 1095)
        self.assertLess(files, 64)
        self.assertTrue(other.startswith(b"HTTP/1.1 200 "), other[:100])
        yield server.until(lambda output: output.count(b"answered 503") >= 1095)
        lines = server.output.decode().splitlines()
        self.assertEqual(
            [line.split("] ", 1)[1] for line in lines if "#warn]" in line],
            [
                "Connection cap reached: --max-per-address 5; refused 127.0.0.9. Refusals are logged at info; "
                "this warning repeats at most once a minute while they go on."
            ],
        )
        self.assertEqual(len([line for line in lines if "#info] tcp4:127.0.0.9:" in line and "answered 503" in line]), 1095)
        self.assertNotIn("EMFILE", server.output.decode())


class TrustedProxyTests(HardeningTestCase):
    """
    Behind one trusted proxy (C{--trust-proxy 1}), the last
    X-Forwarded-For entry is the client, for the per-address cap (1 here)
    and for the log.
    """

    tls = False
    extra = ["--max-per-address", "1", "--trust-proxy", "1"]

    @inlineCallbacks
    def test_forwardedAddressesCountedApart(self):  # type: ignore[no-untyped-def]
        """
        Two clients behind the proxy, and the witness (no header: the
        proxy itself), are counted apart; a second connection from either
        forwarded address, or from the proxy, is over the cap and gets
        503, whatever the client wrote before the proxy's entry.
        """
        since = reactor.seconds()
        yield self.open_websocket("X-Forwarded-For: 203.0.113.1\r\n")
        yield self.open_websocket("X-Forwarded-For: 203.0.113.2\r\n")
        per_address = self.factory.per_address
        self.assertEqual(
            [per_address.count(a) for a in ("127.0.0.1", "203.0.113.1", "203.0.113.2")], [1, 1, 1]
        )
        for extra in ("X-Forwarded-For: 198.51.100.7, 203.0.113.1\r\n", "X-Forwarded-For: 203.0.113.2\r\n", ""):
            refused = yield self.websocket(extra)
            self.assertEqual(refused.status, 503, extra)
        self.assertEqual(per_address.count("198.51.100.7"), 0)
        yield self.assertWitnessUnharmed(since, released=False)

    @inlineCallbacks
    def test_forwardedIpv6CountedByIts64(self):  # type: ignore[no-untyped-def]
        """
        Two forwarded IPv6 addresses in one /64 are one client under the
        cap: the second gets 503; an address in another /64 is let in.
        """
        since = reactor.seconds()
        yield self.open_websocket("X-Forwarded-For: 2001:db8:1:2::1\r\n")
        refused = yield self.websocket("X-Forwarded-For: 2001:db8:1:2:ab::9\r\n")
        self.assertEqual(refused.status, 503)
        yield self.open_websocket("X-Forwarded-For: 2001:db8:1:3::1\r\n")
        yield self.assertWitnessUnharmed(since, released=False)

    @inlineCallbacks
    def test_logNamesForwardedClient(self):  # type: ignore[no-untyped-def]
        """
        The log line of a WebSocket names the forwarded client, not the
        proxy.
        """
        since = reactor.seconds()
        closed = self.logged_event(lambda e: "closed: code" in e.get("log_format", ""))
        client = yield self.open_websocket("X-Forwarded-For: 198.51.100.7, 203.0.113.9\r\n")
        client.send_frame(struct.pack(">H", 1000), opcode=8)
        yield closed
        lines = [line for line in self.server_log() if "closed: code" in line]
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0], r"^203\.0\.113\.9 at /, open \d+\.\d s, closed: code 1000$")
        yield self.assertWitnessUnharmed(since)


class AllowedOriginTests(HardeningTestCase):
    """
    C{--allow-origin} (twice): browsers from other origins get 403; the
    null origin and clients that send none are let in.
    """

    extra = ["--allow-origin", "https://good.example", "--allow-origin", "https://*.other.example"]

    @inlineCallbacks
    def test_otherOriginForbidden(self):  # type: ignore[no-untyped-def]
        """
        A page from an origin not allowed is refused with 403, and the
        log line names the origin, escaped: the operator can see which
        page was refused.
        """
        since = reactor.seconds()
        with capturedLogs() as events:
            client = yield self.websocket("Origin: https://evil.example\r\n")
            yield client.until_lost()
        self.assertEqual(client.status, 403, client.head)
        [line] = [formatEvent(e) for e in events if "answered" in formatEvent(e)]
        self.assertTrue(
            line.endswith(": answered 403 Forbidden: origin https://evil.example not allowed"), line
        )
        # Quoted as other text from a peer, cut to QUOTED_MAX characters.
        long = "https://" + "a" * 300 + ".example"
        with capturedLogs() as events:
            client = yield self.websocket(f"Origin: {long}\r\n")
            yield client.until_lost()
        self.assertEqual(client.status, 403, client.head)
        [line] = [formatEvent(e) for e in events if "answered" in formatEvent(e)]
        self.assertTrue(line.endswith(f": answered 403 Forbidden: origin {long[:QUOTED_MAX]}... not allowed"), line)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_allowedOrigin(self):  # type: ignore[no-untyped-def]
        """
        A page from an allowed origin, named exactly or by a wildcard,
        opens a WebSocket.
        """
        since = reactor.seconds()
        for origin in ("https://good.example", "https://app.other.example"):
            client = yield self.websocket(f"Origin: {origin}\r\n")
            self.assertEqual(client.status, 101, client.head)
            yield client.abort()
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_nullOriginAllowedByDefault(self):  # type: ignore[no-untyped-def]
        """
        The page opened from a file or a data: URL (Origin: null) opens a
        WebSocket even when origins are restricted.
        """
        since = reactor.seconds()
        client = yield self.open_websocket("Origin: null\r\n")
        yield client.abort()
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_noOrigin(self):  # type: ignore[no-untyped-def]
        """
        A client that sends no Origin (not a browser) opens a WebSocket.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        yield client.abort()
        yield self.assertWitnessUnharmed(since)


class NoNullOriginTests(HardeningTestCase):
    """
    C{--no-null-origin}: C{Origin: null} is refused; the rest as before.
    """

    extra = ["--no-null-origin"]

    @inlineCallbacks
    def test_nullOriginForbidden(self):  # type: ignore[no-untyped-def]
        """
        Origin: null is refused with 403.
        """
        since = reactor.seconds()
        client = yield self.websocket("Origin: null\r\n")
        self.assertEqual(client.status, 403, client.head)
        yield self.assertWitnessUnharmed(since)

    @inlineCallbacks
    def test_othersStillAccepted(self):  # type: ignore[no-untyped-def]
        """
        Any real origin (none is restricted here) and no origin at all
        still open a WebSocket.
        """
        since = reactor.seconds()
        for extra in ("Origin: https://anywhere.example\r\n", ""):
            client = yield self.open_websocket(extra)
            yield client.abort()
        yield self.assertWitnessUnharmed(since)


class KeepaliveTests(HardeningTestCase):
    """
    Keepalive pings every 0.5 s, answered within 0.5 s or the connection
    goes.
    """

    tls = False
    extra = ["--ping-interval", "0.5", "--ping-timeout", "0.5"]

    @inlineCallbacks
    def test_halfOpenClientReleased(self):  # type: ignore[no-untyped-def]
        """
        A client that vanishes without closing (it stops reading, so never
        answers a keepalive ping) is closed after ping interval + timeout,
        and its socket, WebSocket and address count are released; the
        witness, which answers its pings, stays.
        """
        since = reactor.seconds()
        before = self.counts()
        self.assertEqual(before, (1, 1, 1, 1))
        client = yield self.open_websocket()
        opened = reactor.seconds()
        self.assertEqual(self.counts(), (2, 2, 2, 1))
        peer = f"tcp4:127.0.0.1:{client.transport.getHost().port}"
        closed = self.logged_event(lambda e: "closed: code" in e.get("log_format", "") and e.get("peer") == peer)
        client.transport.pauseProducing()
        at = yield closed
        self.assertGreaterEqual(at - opened, 0.9)
        self.assertLessEqual(at - opened, 1.0 + SLACK)
        self.assertEqual(self.counts(), before)
        closes = [line for line in self.server_log() if line.startswith(f"{peer} at /, open ")]
        self.assertEqual(len(closes), 1)
        self.assertRegex(closes[0], r"closed: code 1006 \(.*ping timeout.*\), not clean$")
        self.assertFalse(client.lost, "the vanished client was not told")
        yield self.assertWitnessUnharmed(since)


class GracefulStopTests(HardeningTestCase):
    """
    Stopping the service (what SIGTERM does under twistd).
    """

    @inlineCallbacks
    def test_goingAway(self):  # type: ignore[no-untyped-def]
        """
        Every open WebSocket is closed with 1001, and the stop completes
        as soon as they have answered, well inside the grace period.
        """
        started = reactor.seconds()
        yield self.service.stopService()
        self.assertLess(reactor.seconds() - started, 1.0)
        self.assertEqual(self.factory.open_protocols, set())
        yield self.witness.until(lambda: "CLOSED" in self.witness.events)
        closed = [c for c in self.witness.changes if c.state.name == "CLOSED"]
        self.assertEqual(closed[0].detail, "code 1001: server shutting down")
        self.assertFalse(closed[0].requested)

    @inlineCallbacks
    def test_silentClientDoesNotHoldStop(self):  # type: ignore[no-untyped-def]
        """
        A client that gets the 1001 and never answers it is cut off: the
        stop completes within the grace period, and the witness gets its
        1001 as usual.
        """
        client = yield self.open_websocket()
        client.answer_close = False
        started = reactor.seconds()
        yield self.service.stopService()
        self.assertLess(reactor.seconds() - started, GOODBYE_GRACE + SLACK)
        self.assertEqual(client.close_code(), 1001)
        yield client.until_lost()
        self.assertEqual(self.factory.open_protocols, set())
        self.assertEqual(self.factory.sockets, 0)
        yield self.witness.until(lambda: "CLOSED" in self.witness.events)
        closed = [c for c in self.witness.changes if c.state.name == "CLOSED"]
        self.assertEqual(closed[0].detail, "code 1001: server shutting down")


class SilentAfterCloseTests(HardeningTestCase):
    """
    A client that closes its WebSocket and then neither reads nor hangs
    up: the server answers its close and waits for its TLS close_notify,
    but only for the grace period (the opening handshake timeout, 1 s
    here).
    """

    extra = ["--handshake-timeout", "1"]

    @inlineCallbacks
    def test_cutAfterGrace(self):  # type: ignore[no-untyped-def]
        """
        The client's socket, WebSocket and address count are released
        about a second after its close; the witness stays.
        """
        since = reactor.seconds()
        client = yield self.open_websocket()
        self.assertEqual(self.counts(), (2, 2, 2, 1))
        client.send_frame(struct.pack(">H", 1000), opcode=8)
        # It reads nothing more: not the server's reply, not its TLS goodbye.
        client.transport.pauseProducing()
        closed = reactor.seconds()
        yield self.eventually(lambda: self.counts() == (1, 1, 1, 1), within=1.0 + 2 * SLACK)
        self.assertGreaterEqual(reactor.seconds() - closed, 0.9)
        yield self.assertWitnessUnharmed(since)


class GoodbyeWithoutHangup(Protocol):
    """
    A WebSocket server that accepts the upgrade, says goodbye (1001) at
    once, and then never closes its side of the connection: a server busy
    stopping, or a proxy in between that hangs.
    """

    def connectionMade(self) -> None:
        self.factory.connections.append(self)
        self.received = b""

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        if b"\r\n\r\n" in self.received and not getattr(self, "upgraded", False):
            self.upgraded = True
            self.transport.write(upgrade_answer(self.received))
            self.transport.write(bytes([0x88, 2]) + (1001).to_bytes(2, "big"))


class LingeringGoodbyeTests(TestCase):
    """
    The other side of a goodbye: the client, when the server says 1001
    and then does not hang up.
    """

    timeout = 10

    @inlineCallbacks
    def test_clientLeavesAfterGoodbye(self):  # type: ignore[no-untyped-def]
        """
        pingproto's client stops pinging at the server's close frame (no
        message is sent on a closing connection) and gives up on the
        connection within about a second (as Autobahn gives a server after
        a close the client started), reporting the 1001; it does not stay
        in CLOSING for ever.
        """
        factory = Factory.forProtocol(GoodbyeWithoutHangup)
        factory.connections = []
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        witness = Witness()
        monitor = PingMonitor(
            f"ws://127.0.0.1:{port.getHost().port}/", witness, interval=0.05, retry_policy=lambda failures: 60.0
        )
        monitor.startService()
        self.addCleanup(monitor.stopService)

        def hang_up() -> None:
            for connection in factory.connections:
                connection.transport.abortConnection()

        self.addCleanup(hang_up)
        yield witness.until(lambda: "CLOSING" in witness.events)
        closing = reactor.seconds()
        closed = witness.until(lambda: "CLOSED" in witness.events)
        closed.addTimeout(1.0 + 2 * SLACK, reactor)
        yield closed
        self.assertLess(reactor.seconds() - closing, 1.0 + SLACK)
        self.assertTrue(witness.changes[-1].detail.startswith("code 1001"), witness.changes[-1])
