"""
Large messages: echoed as they arrive, never collected whole, and a client
that sends without reading is made to wait instead of filling the server's
memory.
"""

from __future__ import annotations

import hashlib
import socket
import tracemalloc

from autobahn.twisted.resource import WebSocketResource
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import ConnectionDone
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString, wrapClientTLS
from twisted.internet.protocol import Protocol
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site

from pingproto import ping
from pingproto.config import ServerLimits
from pingproto.readgate import ReadGate
from pingproto.server import ECHO_BUFFER, EchoServerFactory, EchoServerProtocol
from pingproto.tls import client_tls_options

from .test_hardening import HardeningTestCase
from .test_protocols import LenientTransport, client_frame, parse_server_frames, upgrade_request
from .waiting import Conditions

_ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
_MiB = 1024 * 1024


# RFC 6455 allows an all-zero mask, which leaves the payload as it is:
# megabytes then need no masking.
_ZERO_MASK = b"\0\0\0\0"


def frame(payload: bytes, opcode: int = 2, fin: bool = True) -> bytes:
    return client_frame(payload, opcode, fin, mask=_ZERO_MASK)


def frame_header(length: int, opcode: int = 2, fin: bool = True) -> bytes:
    return client_frame(b"", opcode, fin, mask=_ZERO_MASK, declared=length)


class StreamingInMemoryTests(SynchronousTestCase):
    """
    The echo of a large message over L{StringTransport}: what is written
    back, and when.
    """

    def setUp(self) -> None:
        self.factory = EchoServerFactory(ServerLimits(max_message_size=4 * _MiB), reactor=Clock())
        self.transport = LenientTransport()
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(upgrade_request())
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101 "))
        self.transport.clear()

    def written(self) -> list[tuple[int, bytes]]:
        return parse_server_frames(self.transport.value(), partial=True)

    def test_echoedWhileArriving(self) -> None:
        """
        Half of a 1 MiB frame is already echoed, in whole frames, before the
        other half has arrived; the full echo is one binary message with
        the same bytes.
        """
        payload = bytes(range(256)) * (4 * 1024)
        data = frame(payload)
        half = len(data) // 2
        self.protocol.dataReceived(data[:half])
        sent = sum(len(p) for _, p in self.written())
        self.assertGreater(sent, half - ECHO_BUFFER - 16)
        self.protocol.dataReceived(data[half:])
        frames = self.written()
        self.assertEqual(frames[0][0], 2)
        self.assertEqual({op for op, _ in frames[1:]}, {0})
        self.assertEqual(b"".join(p for _, p in frames), payload)

    def test_smallMessageWhole(self) -> None:
        """
        A message up to L{ECHO_BUFFER}, even in many fragments, comes back
        as one frame.
        """
        payload = b"t" * ECHO_BUFFER
        pieces = [payload[i : i + 1000] for i in range(0, len(payload), 1000)]
        for i, piece in enumerate(pieces):
            self.protocol.dataReceived(frame(piece, opcode=1 if i == 0 else 0, fin=i == len(pieces) - 1))
        self.assertEqual(self.written(), [(1, payload)])

    def test_largeFragmentedText(self) -> None:
        """
        A text message of many fragments, larger than L{ECHO_BUFFER}, comes
        back as one text message with the same characters, some of them
        split across pieces.
        """
        text = ("h\u00e9llo w\u00f6rld \u2603 " * 20000).encode()
        pieces = [text[i : i + 7001] for i in range(0, len(text), 7001)]
        for i, piece in enumerate(pieces):
            self.protocol.dataReceived(frame(piece, opcode=1 if i == 0 else 0, fin=i == len(pieces) - 1))
        frames = self.written()
        self.assertEqual(frames[0][0], 1)
        self.assertEqual(frames[-1], (0, b""))
        self.assertEqual(b"".join(p for _, p in frames), text)
        self.assertEqual(b"".join(p for _, p in frames).decode(), text.decode())

    def test_invalidUtf8AfterStreaming(self) -> None:
        """
        Invalid UTF-8 after a large text message has started coming back
        closes with 1007, after whole frames only: the client can read the
        close.
        """
        good = b"a" * (3 * ECHO_BUFFER)
        self.protocol.dataReceived(frame_header(len(good) + 2, opcode=1) + good)
        self.protocol.dataReceived(b"\xff\xfe")
        frames = self.written()
        self.assertEqual(frames[-1][0], 8)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1007)
        self.assertEqual(b"".join(p for op, p in frames if op < 8), good)

    def test_goingAwayMidMessage(self) -> None:
        """
        A server stopping while a large message streams back sends whole
        frames, then its 1001: the client can read the close.
        """
        payload = b"z" * (4 * ECHO_BUFFER)
        self.protocol.dataReceived(frame_header(len(payload)) + payload[: 3 * ECHO_BUFFER])
        self.factory.going_away()
        self.protocol.dataReceived(payload[3 * ECHO_BUFFER :])
        frames = self.written()
        self.assertEqual(frames[-1][0], 8)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1001)
        echoed = b"".join(p for op, p in frames if op < 8)
        self.assertGreater(len(echoed), 2 * ECHO_BUFFER)
        self.assertEqual(echoed, payload[: len(echoed)])

    def test_overLimitRefusedAtHeader(self) -> None:
        """
        A frame announcing more than the limit is refused with 1009 before
        any of it is echoed.
        """
        self.protocol.dataReceived(frame_header(4 * _MiB + 1) + b"x" * 100_000)
        frames = self.written()
        self.assertEqual([op for op, _ in frames], [8])
        self.assertEqual(int.from_bytes(frames[0][1][:2], "big"), 1009)

    def held_while(self, data: bytes) -> int:
        """
        How much more memory is allocated after the server has read
        C{data}, over as many turns as it takes, than before.
        """
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        self.protocol.dataReceived(data)
        self.factory.reactor.advance(0)
        return tracemalloc.get_traced_memory()[0] - before

    def test_emptyFragmentsHoldNothing(self) -> None:
        """
        Empty continuation frames, which add nothing to a message (nor to
        its size as the limit counts it), add nothing to what the server
        holds, however many arrive; the echo is the message's bytes.
        """
        self.protocol.dataReceived(frame(b"a", fin=False))
        held = self.held_while(frame(b"", opcode=0, fin=False) * 20_000)
        self.assertLess(held, 4096)
        self.protocol.dataReceived(frame(b"b", opcode=0))
        self.assertEqual(self.written(), [(2, b"ab")])

    def test_tinyFragmentsHeldAsTheirBytes(self) -> None:
        """
        A message in 1-byte fragments holds about as much memory as it has
        bytes, well within L{ECHO_BUFFER}, not a bookkeeping object per
        fragment; the echo is byte for byte.
        """
        payload = bytes(range(256)) * 32
        fragments = b"".join(frame(payload[i : i + 1], opcode=0, fin=False) for i in range(1, len(payload)))
        self.protocol.dataReceived(frame(payload[:1], fin=False))
        held = self.held_while(fragments)
        self.assertLess(held, 2 * len(payload))
        self.protocol.dataReceived(frame(b"", opcode=0))
        self.assertEqual(self.written(), [(2, payload)])

    def test_messageAfterLargeOne(self) -> None:
        """
        After a streamed message, a small one comes back whole again.
        """
        self.protocol.dataReceived(frame(b"x" * (2 * ECHO_BUFFER)) + frame(b"ping", opcode=1))
        frames = self.written()
        self.assertEqual(frames[-1], (1, b"ping"))
        self.assertEqual(frames[-2], (0, b""))


class DataRateInMemoryTests(SynchronousTestCase):
    """
    A client over its data rate is read more slowly: its transport is
    paused until the rate allows it again, on the server's clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        # A burst of 120 KB (two of the largest messages), then 60 KB a second.
        limits = ServerLimits(max_message_size=60_000, max_data_rate=60_000, ping_interval=0)
        self.factory = EchoServerFactory(limits, reactor=self.clock)
        self.transport = LenientTransport()
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(upgrade_request())
        self.transport.clear()

    def tearDown(self) -> None:
        self.clock.advance(60)

    def over_by(self, excess: int) -> bytes:
        """
        Two of the largest messages and a third that ends C{excess} bytes
        (on the wire) past the burst.
        """
        two = frame(b"a" * 59_992) + frame(b"b" * 59_992)  # 60,000 bytes each with their headers
        return two + frame(b"c" * (excess - 8))

    def test_withinBurstNotPaused(self) -> None:
        """
        Two of the largest messages at once are read on without a pause.
        """
        self.protocol.dataReceived(frame(b"a" * 59_992) + frame(b"b" * 59_992))
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual([len(p) for _, p in parse_server_frames(self.transport.value(), partial=True)], [59_992, 59_992])

    def test_overRatePausedThenResumed(self) -> None:
        """
        30 KB past the burst pauses reading for half a second (at 60 KB a
        second), then reading goes on; what arrived is echoed all the same.
        """
        self.protocol.dataReceived(self.over_by(30_000))
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(len(parse_server_frames(self.transport.value(), partial=True)), 3)
        self.clock.advance(0.499)
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0.002)
        self.assertEqual(self.transport.producerState, "producing")

    def test_debtAddedWhilePausedIsWaitedOut(self) -> None:
        """
        Data delivered in several calls from one read (as TLS hands it on,
        a record at a time) all counts: reading resumes once the whole debt
        is paid, not the first call's.
        """
        self.protocol.dataReceived(self.over_by(30_000))
        self.protocol.dataReceived(frame(b"d" * 29_992))  # 30 KB more, same read
        self.clock.advance(0.501)
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0.498)
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0.002)
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(len(parse_server_frames(self.transport.value(), partial=True)), 4)

    def test_sendingAndRateBothHold(self) -> None:
        """
        While echoes wait to be sent and the client is over its rate,
        reading resumes only once both are over, in either order.
        """
        gate = self.transport.producer
        self.protocol.dataReceived(self.over_by(30_000))
        gate.pauseProducing()  # the transport's write buffer is full
        self.clock.advance(1)
        self.assertEqual(self.transport.producerState, "paused")
        gate.resumeProducing()
        self.assertEqual(self.transport.producerState, "producing")
        gate.pauseProducing()
        self.protocol.dataReceived(self.over_by(30_000))
        gate.resumeProducing()
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(3)
        self.assertEqual(self.transport.producerState, "producing")

    def test_openGateHoldsNothingOfItsOwn(self) -> None:
        """
        A gate not holding reading back, fresh or after holding, keeps no
        set of its own (there is one gate per connection).
        """
        gate = self.transport.producer
        fresh = ReadGate(self.transport)
        gate.pauseProducing()
        self.assertEqual(gate.holding, {"sending"})
        gate.resumeProducing()
        self.assertIs(gate.holding, fresh.holding)
        self.assertFalse(hasattr(gate, "__dict__"))

    def test_throttleEndsWithConnection(self) -> None:
        """
        A connection lost while throttled leaves no timer behind.
        """
        self.protocol.dataReceived(self.over_by(30_000))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual([c for c in self.clock.getDelayedCalls() if c.active()], [])


class Reader(Protocol):
    """
    A client that reads the server's frames as they come (megabytes of
    them, so in one pass) and can stop and start reading.

    @ivar messages: the whole messages received, as (opcode, payload).
    @ivar wire: how many bytes came after the response head.
    """

    def __init__(self) -> None:
        self.head = b""
        self.messages: list[tuple[int, bytes]] = []
        self.wire = 0
        self.lost = False
        self._buffer = bytearray()
        self._opcode = 0
        self._parts: list[bytes] = []
        self._conditions = Conditions()
        self.until = self._conditions.until

    def dataReceived(self, data: bytes) -> None:
        if not self.head:
            self._buffer += data
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            self.head = bytes(self._buffer[: end + 4])
            data = bytes(self._buffer[end + 4 :])
            self._buffer.clear()
        self.wire += len(data)
        self._buffer += data
        self._parse()
        self._conditions.check()

    def _parse(self) -> None:
        buffer = self._buffer
        offset = 0
        while len(buffer) - offset >= 2:
            fin, opcode, length = buffer[offset] & 0x80, buffer[offset] & 0x0F, buffer[offset + 1] & 0x7F
            start = offset + 2
            if length == 126:
                length, start = int.from_bytes(buffer[start : start + 2], "big"), start + 2
            elif length == 127:
                length, start = int.from_bytes(buffer[start : start + 8], "big"), start + 8
            if len(buffer) < start + length:
                break
            payload = bytes(buffer[start : start + length])
            offset = start + length
            if opcode >= 8:
                continue
            if opcode:
                self._opcode, self._parts = opcode, []
            self._parts.append(payload)
            if fin:
                self.messages.append((self._opcode, b"".join(self._parts)))
        del buffer[:offset]

    def connectionLost(self, reason: Failure) -> None:
        self.lost = True
        self._conditions.check()


@inlineCallbacks
def open_websocket(test: HardeningTestCase):  # type: ignore[no-untyped-def]
    """
    A L{Reader} with an open WebSocket to C{test}'s wss:// server.
    """
    endpoint = wrapClientTLS(
        client_tls_options("localhost", test.caFile),
        TCP4ClientEndpoint(reactor, "127.0.0.1", test.port),
    )
    client = yield connectProtocol(endpoint, Reader())
    test.addCleanup(lambda: None if client.lost else client.transport.abortConnection())
    client.transport.write(upgrade_request())
    yield client.until(lambda: bool(client.head) or client.lost)
    test.assertTrue(client.head.startswith(b"HTTP/1.1 101 "), client.head)
    return client


class LargeMessageTests(HardeningTestCase):
    """
    Against a real wss:// server with its default options, while a witness
    pings it.
    """

    timeout = 60

    def open(self) -> Deferred[Reader]:
        return open_websocket(self)

    @inlineCallbacks
    def test_largestDefaultMessage(self):  # type: ignore[no-untyped-def]
        """
        A message of exactly the default limit, 16 MiB, comes back byte for
        byte, and the connection stays open.
        """
        since = reactor.seconds()
        payload = hashlib.sha256(b"seed").digest() * (ServerLimits().max_message_size // 32)
        self.assertEqual(len(payload), 16 * _MiB)
        client = yield self.open()
        client.transport.write(frame(payload))
        yield client.until(lambda: bool(client.messages) or client.lost)
        [(opcode, echoed)] = client.messages
        self.assertEqual((opcode, len(echoed)), (2, len(payload)))
        self.assertTrue(echoed == payload)
        self.assertFalse(client.lost)
        yield self.assertWitnessUnharmed(since, released=False)

    @inlineCallbacks
    def test_clientThatDoesNotRead(self):  # type: ignore[no-untyped-def]
        """
        A client that sends without reading is made to wait, and gets every
        echo once it reads (L{assert_waits_for_reader}); the witness is
        unharmed.
        """
        since = reactor.seconds()
        client = yield self.open()
        yield assert_waits_for_reader(self, client, self.server_side(client), self.url(), self.caFile)
        yield self.assertWitnessUnharmed(since, released=False)


class MountedLargeMessageTests(TestCase):
    """
    The same when the echo is mounted in a twisted.web site, whose HTTP
    channel hands the connection over.
    """

    @inlineCallbacks
    def test_clientThatDoesNotRead(self):  # type: ignore[no-untyped-def]
        """
        Mounted at /ping of a C{Site}, a client that sends without reading
        is made to wait, and gets every echo once it reads
        (L{assert_waits_for_reader}).
        """
        factory = EchoServerFactory(paths=None)
        root = Resource()
        root.putChild(b"ping", WebSocketResource(factory))
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(Site(root))
        self.addCleanup(port.stopListening)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        client = yield connectProtocol(endpoint, Reader())
        self.addCleanup(lambda: None if client.lost else client.transport.abortConnection())
        client.transport.write(upgrade_request("/ping"))
        yield client.until(lambda: bool(client.head) or client.lost)
        self.assertTrue(client.head.startswith(b"HTTP/1.1 101 "), client.head)
        [server] = factory.open_protocols
        yield assert_waits_for_reader(self, client, server, f"ws://127.0.0.1:{port.getHost().port}/ping")


@inlineCallbacks
def assert_waits_for_reader(  # type: ignore[no-untyped-def]
    test: TestCase, client: Reader, server: EchoServerProtocol, url: str, ca_file: str | None = None
):
    """
    C{client} sends 32 MiB of echoes to come but reads none of them: the
    server stops reading from it once the echoes back up (it has read far
    less than was sent, and reads nothing more while another client pings
    it ten times), and when C{client} reads again every echo arrives.
    """
    handle = client.transport.getHandle()
    if not isinstance(handle, socket.socket):
        handle = client.transport.transport.getHandle()  # under TLS
    # A small receive window, so that the kernel's buffers cannot absorb
    # the test's megabytes on the server's behalf.
    handle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    client.transport.pauseProducing()
    payloads = [bytes([i]) * _MiB for i in range(32)]
    for payload in payloads:
        client.transport.write(frame(payload))
    read = lambda: server.trafficStats.incomingOctetsWireLevel  # noqa: E731
    conditions = Conditions()
    received = server.dataReceived

    def counted(data: bytes) -> None:
        received(data)
        conditions.check()

    test.patch(server, "dataReceived", counted)
    yield conditions.until(lambda: read() > 2 * _MiB)
    # The server has stopped reading once pings keep coming back and it
    # reads no more during ten of them.
    before = -1
    while read() != before:
        before = read()
        result = yield ping(url, 10, interval=0.02, ca_file=ca_file)
        test.assertEqual(len(result.samples), 10)
    test.assertLess(before, 12 * _MiB)
    client.transport.resumeProducing()
    yield client.until(lambda: len(client.messages) == 32 or client.lost)
    test.assertEqual([len(p) for _, p in client.messages], [_MiB] * 32)
    test.assertTrue([p for _, p in client.messages] == payloads)


class DataRateTests(HardeningTestCase):
    """
    A client sending faster than C{--max-data-rate} is read at that rate,
    over a real wss:// connection, while the witness is unharmed.
    """

    timeout = 30
    # A burst of 1 MiB (a second's worth), then 1 MiB a second.
    extra = ["--max-message-size", "65536", "--max-data-rate", "1048576"]

    @inlineCallbacks
    def test_readAtTheRate(self):  # type: ignore[no-untyped-def]
        """
        3 MiB sent at once take about the 2 s the rate allows past the
        burst to come back, and all of them do, in order.
        """
        since = reactor.seconds()
        client = yield open_websocket(self)
        payloads = [bytes([i]) * 65536 for i in range(48)]
        started = reactor.seconds()
        client.transport.write(b"".join(frame(p) for p in payloads))
        yield client.until(lambda: len(client.messages) == 48 or client.lost)
        took = reactor.seconds() - started
        self.assertTrue([p for _, p in client.messages] == payloads)
        # The server waits out the debt of each read before the next, so
        # the last read, up to the 64 KiB Twisted reads at once (1/16 s at
        # this rate), is echoed without waiting: at least 2 - 1/16 s.
        self.assertGreaterEqual(took, 1.93)
        self.assertLess(took, 6)
        yield self.assertWitnessUnharmed(since, released=False)
