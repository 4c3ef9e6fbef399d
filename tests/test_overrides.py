"""
The Autobahn overrides of L{pingproto._autobahn}: the fast receive and send
paths and the quiet connection set-up do what Autobahn does, only cheaper,
and they are really taken.

Most tests run the same bytes through two protocols, the server's own and
one that takes Autobahn's path for the overridden step
(L{AutobahnPathProtocol}), and compare what each wrote back and how each
ended.
"""

from __future__ import annotations

import os
from typing import Any, Callable

from autobahn.twisted import websocket as twisted_websocket
from hypothesis import given, settings
from hypothesis import strategies as st
from autobahn.twisted.websocket import WebSocketAdapterProtocol
from autobahn.websocket import protocol as ab_protocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.xormasker import create_xor_masker
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pingproto._autobahn import (
    FAST_PAYLOAD_MAX,
    FastReceive,
    FastSend,
    QuietSetup,
    ServerOverrides,
    SlottedState,
    unmask,
)
from pingproto.config import ServerLimits
from pingproto.server import EchoServerFactory, EchoServerProtocol

from .test_protocols import LenientTransport, TimerHygiene, client_frame, parse_server_frames, upgrade_request

_ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
_TEXT = b"1764000000000"


class AutobahnPathProtocol(EchoServerProtocol):
    """
    The echo server with Autobahn's own receive, send and set-up code in
    place of the overrides: the reference the overrides must match.
    """

    _dataReceived = WebSocketProtocol._dataReceived
    sendMessage = WebSocketProtocol.sendMessage
    _connectionMade = ab_protocol.WebSocketServerProtocol._connectionMade
    _connectionLost = ab_protocol.WebSocketServerProtocol._connectionLost

    def send_back(self, payload: bytes, isBinary: bool) -> None:
        WebSocketProtocol.sendMessage(self, payload, isBinary)


class CountingTransport(LenientTransport):
    """
    Counts the writes, to tell one write per echo from several.
    """

    writes = 0

    def write(self, data: bytes) -> None:
        self.writes += 1
        super().write(data)


def close_code(data: bytes) -> int | None:
    """
    The code of the last close frame the server wrote, if any.
    """
    frames = [payload for opcode, payload in parse_server_frames(data) if opcode == 8]
    return int.from_bytes(frames[-1][:2], "big") if frames else None


def own_names(protocol: object) -> set[str]:
    """
    The attributes a protocol holds itself: in its dictionary or its slots.
    """
    slots = (name for cls in type(protocol).__mro__ for name in vars(cls).get("__slots__", ()))
    return set(vars(protocol)) | {name for name in slots if hasattr(protocol, name)}


class Connection:
    """
    One server protocol over a transport, opened, on a test clock.
    """

    def __init__(self, protocol_class: type[EchoServerProtocol], limits: ServerLimits, clock: Clock) -> None:
        self.factory = EchoServerFactory(limits, reactor=clock)
        self.factory.protocol = protocol_class
        self.transport = CountingTransport()
        self.protocol: EchoServerProtocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.protocol.dataReceived(upgrade_request())
        assert self.transport.value().startswith(b"HTTP/1.1 101 "), self.transport.value()[:200]
        self.transport.clear()
        self.transport.writes = 0

    def feed(self, *reads: bytes) -> bytes:
        for data in reads:
            self.protocol.dataReceived(data)
        return self.transport.value()


class OverrideTestCase(SynchronousTestCase, TimerHygiene):
    limits = ServerLimits(max_message_size=1024, handshake_timeout=5, ping_interval=20, ping_timeout=20)

    def setUp(self) -> None:
        # Last of all, once every patch is undone.
        self.addCleanup(self.assertGlobalReactorUntouched)
        self.clock = Clock()
        self.masker_calls = 0
        self.process_data_calls = 0

        def counting_masker(mask: bytes, length: int) -> Any:
            self.masker_calls += 1
            return create_xor_masker(mask, length)

        # processData and sendFrame look the masker up as a module global.
        self.patch(ab_protocol, "create_xor_masker", counting_masker)
        real_process_data = WebSocketProtocol.processData

        def counting_process_data(protocol: WebSocketProtocol) -> bool:
            self.process_data_calls += 1
            return real_process_data(protocol)

        self.patch(WebSocketProtocol, "processData", counting_process_data)

    def tearDown(self) -> None:
        self.clock.advance(120)  # every close and keepalive timer runs out

    def connect(self, protocol_class: type[EchoServerProtocol] = EchoServerProtocol) -> Connection:
        return Connection(protocol_class, self.limits, self.clock)

    def assertSameAsAutobahn(self, *reads: bytes) -> bytes:
        """
        Feed the reads to the server and to the Autobahn-path reference:
        both must write the same bytes and end in the same state, with the
        same traffic statistics.  Returns what the server wrote.
        """
        ours, reference = self.connect(), self.connect(AutobahnPathProtocol)
        written = ours.feed(*reads)
        self.assertEqual(written, reference.feed(*reads))
        for name in ("state", "data", "inside_message", "closedByMe", "failedByMe", "localCloseCode", "localCloseReason"):
            self.assertEqual(getattr(ours.protocol, name), getattr(reference.protocol, name), name)
        self.assertEqual(ours.protocol.current_frame is None, reference.protocol.current_frame is None)
        self.assertEqual(vars(ours.protocol.trafficStats), vars(reference.protocol.trafficStats))
        self.assertEqual(ours.transport.disconnecting, reference.transport.disconnecting)
        return written


class FastReceiveTests(OverrideTestCase):
    def test_textEchoedWithoutAutobahnsFramePath(self) -> None:
        """
        A small text message is echoed byte for byte, in one write, without
        Autobahn's frame parser or its native masker.
        """
        conn = self.connect()
        self.assertEqual(conn.feed(client_frame(_TEXT)), bytes([0x81, len(_TEXT)]) + _TEXT)
        self.assertEqual(conn.transport.writes, 1)
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))

    def test_binaryEchoedWithoutAutobahnsFramePath(self) -> None:
        """
        Every byte value survives the fast path's unmasking in a binary
        message.
        """
        payload = bytes(range(256))
        conn = self.connect()
        self.assertEqual(conn.feed(client_frame(payload, opcode=2)), bytes([0x82, 126, 1, 0]) + payload)
        self.assertEqual(conn.transport.writes, 1)
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))

    def test_lengthForms(self) -> None:
        """
        Empty, 125-byte and 16-bit-length messages take the fast path and
        come back with the same length form.
        """
        self.limits = ServerLimits(max_message_size=FAST_PAYLOAD_MAX, handshake_timeout=5)
        conn = self.connect()
        for payload in (b"", b"a" * 125, b"b" * 126, os.urandom(FAST_PAYLOAD_MAX)):
            opcode = 2 if len(payload) > 1000 else 1
            conn.transport.clear()
            echoed = conn.feed(client_frame(payload, opcode))
            self.assertEqual(parse_server_frames(echoed), [(opcode, payload)])
            self.assertEqual(len(echoed), len(payload) + (2 if len(payload) < 126 else 4))
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))
        self.assertSameAsAutobahn(client_frame(b"c" * 1000), client_frame(b""))

    def test_severalFramesInOneRead(self) -> None:
        """
        Several whole messages in one read are all echoed, in order.
        """
        messages = [(1, b"first"), (2, b"\x00\x01"), (1, "caf\u00e9 \U0001f600".encode())]
        conn = self.connect()
        echoed = conn.feed(b"".join(client_frame(p, o) for o, p in messages))
        self.assertEqual(parse_server_frames(echoed), messages)
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))
        self.assertSameAsAutobahn(b"".join(client_frame(p, o) for o, p in messages))

    def test_autobahnMaskerIsWhatFallbackUses(self) -> None:
        """
        The counters this module relies on see Autobahn's path when it is
        taken (so the zero counts above mean something).
        """
        self.connect(AutobahnPathProtocol).feed(client_frame(_TEXT))
        self.assertGreater(self.process_data_calls, 0)
        self.assertEqual(self.masker_calls, 1)

    def test_fragmentedMessage(self) -> None:
        """
        A fragmented message goes through Autobahn and comes back whole; the
        next small message takes the fast path again.
        """
        reads = (client_frame(b"hel", fin=False), client_frame(b"lo", opcode=0), client_frame(b" wor", fin=False) + client_frame(b"ld", opcode=0))
        conn = self.connect()
        self.assertEqual(parse_server_frames(conn.feed(*reads)), [(1, b"hello"), (1, b" world")])
        self.assertEqual(self.assertSameAsAutobahn(*reads), conn.transport.value())
        conn.transport.clear()
        self.process_data_calls = 0
        self.assertEqual(parse_server_frames(conn.feed(client_frame(_TEXT))), [(1, _TEXT)])
        self.assertEqual(self.process_data_calls, 0)

    def test_fragmentAfterWholeMessageInOneRead(self) -> None:
        """
        A whole message followed by the first fragment of another in the
        same read: the first is echoed, the second completed by Autobahn.
        """
        self.assertSameAsAutobahn(client_frame(b"one") + client_frame(b"tw", fin=False), client_frame(b"o", opcode=0))

    def test_ping(self) -> None:
        """
        A ping is answered by Autobahn with its pong, before or after fast
        messages in the same read.
        """
        written = self.assertSameAsAutobahn(
            client_frame(b"a") + client_frame(b"ping!", opcode=9) + client_frame(b"b"),
            client_frame(b"", opcode=9),
        )
        self.assertEqual(parse_server_frames(written), [(1, b"a"), (10, b"ping!"), (1, b"b"), (10, b"")])

    def test_frameSplitAcrossReads(self) -> None:
        """
        A frame cut at any byte is buffered by Autobahn and echoed once
        whole.
        """
        data = client_frame(b"split me", opcode=1)
        for cut in range(1, len(data)):
            written = self.assertSameAsAutobahn(data[:cut], data[cut:])
            self.assertEqual(parse_server_frames(written), [(1, b"split me")])
        both = client_frame(b"whole") + data
        written = self.assertSameAsAutobahn(both[:12], both[12:])
        self.assertEqual(parse_server_frames(written), [(1, b"whole"), (1, b"split me")])

    def test_invalidUtf8(self) -> None:
        """
        Invalid UTF-8 (a bad byte, a surrogate, an overlong form, a code
        point cut off) is not echoed: Autobahn closes with 1007.
        """
        for bad in (b"\xff", b"ok\xed\xa0\x80", b"\xc0\xaf", "\u00e9".encode()[:1]):
            written = self.assertSameAsAutobahn(client_frame(b"fine") + client_frame(bad) + client_frame(b"after"))
            self.assertEqual(parse_server_frames(written)[0], (1, b"fine"))
            self.assertEqual(close_code(written), 1007)

    def test_unmaskingAndValidationOptions(self) -> None:
        """
        With C{applyMask} off the payload is echoed still masked, as
        Autobahn leaves it; with C{utf8validateIncoming} off invalid UTF-8
        is echoed, on the fast path.
        """
        frame = client_frame(_TEXT)
        ours = self.connect(type("Ours", (EchoServerProtocol,), {"applyMask": False}))
        reference = self.connect(type("Reference", (AutobahnPathProtocol,), {"applyMask": False}))
        self.assertEqual(ours.feed(frame), reference.feed(frame))
        self.assertNotIn((1, _TEXT), parse_server_frames(ours.transport.value()))

        self.process_data_calls = 0
        conn = self.connect(type("Ours", (EchoServerProtocol,), {"utf8validateIncoming": False}))
        self.assertEqual(parse_server_frames(conn.feed(client_frame(b"\xff"))), [(1, b"\xff")])
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))

    def test_oversized(self) -> None:
        """
        A message over the size limit is refused by Autobahn with 1009,
        under either length form.
        """
        for size in (1025, 4000):
            written = self.assertSameAsAutobahn(client_frame(b"x" * size, opcode=2))
            self.assertEqual(close_code(written), 1009)
        self.limits = ServerLimits(max_message_size=100, handshake_timeout=5)
        written = self.assertSameAsAutobahn(client_frame(b"x" * 100) + client_frame(b"y" * 101))
        self.assertEqual(parse_server_frames(written)[0], (1, b"x" * 100))
        self.assertEqual(close_code(written), 1009)

    def test_largerThanFastPath(self) -> None:
        """
        A message beyond the 16-bit length form is Autobahn's, and echoed.
        """
        self.limits = ServerLimits(max_message_size=70_000, handshake_timeout=5)
        payload = os.urandom(70_000)
        written = self.assertSameAsAutobahn(client_frame(payload, opcode=2))
        frames = parse_server_frames(written)
        self.assertEqual(frames[0][0], 2)
        self.assertEqual(b"".join(piece for _, piece in frames), payload)

    def test_protocolErrors(self) -> None:
        """
        RSV bits, an unmasked frame, a reserved opcode, a continuation
        outside a message and a non-minimal length each get Autobahn's
        1002.
        """
        non_minimal = bytes([0x81, 0x80 | 126, 0, 5]) + b"\x00" * 4 + b"hello"
        for bad in (
            client_frame(b"rsv", rsv=1),
            client_frame(b"rsv", rsv=4),
            client_frame(b"bare", mask=b""),
            client_frame(b"bare", opcode=2, mask=b""),
            client_frame(b"op", opcode=3),
            client_frame(b"cont", opcode=0),
            non_minimal,
        ):
            written = self.assertSameAsAutobahn(client_frame(b"before") + bad + client_frame(b"after" * 8, opcode=2))
            self.assertEqual(parse_server_frames(written)[0], (1, b"before"))
            self.assertEqual(close_code(written), 1002)

    def test_closeFrame(self) -> None:
        """
        A client close after a message is answered as Autobahn answers it,
        without its frame parser or native masker; so is a close with a
        bad code, a reason that is not UTF-8, or no body.
        """
        close = client_frame((1000).to_bytes(2, "big") + b"bye", opcode=8)
        conn = self.connect()
        written = conn.feed(client_frame(b"bye") + close)
        self.assertEqual(parse_server_frames(written), [(1, b"bye"), (8, (1000).to_bytes(2, "big"))])
        self.assertEqual((conn.protocol.remoteCloseCode, conn.protocol.remoteCloseReason), (1000, "bye"))
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))
        self.assertEqual(self.assertSameAsAutobahn(client_frame(b"bye"), close), written)
        for body, code in ((b"", 1000), ((999).to_bytes(2, "big"), 1002), ((1000).to_bytes(2, "big") + b"\xff", 1007)):
            written = self.assertSameAsAutobahn(client_frame(body, opcode=8) + client_frame(b"after"))
            self.assertEqual(close_code(written), code)
            self.assertEqual([f for f in parse_server_frames(written) if f[0] != 8], [])

    def test_controlFramesWithoutAutobahnsFramePath(self) -> None:
        """
        Whole pings and pongs between messages are handled without
        Autobahn's frame parser or native masker; the ping is answered with
        its pong, in order.
        """
        conn = self.connect()
        written = conn.feed(client_frame(b"a") + client_frame(b"p" * 125, opcode=9) + client_frame(b"", opcode=10) + client_frame(b"b"))
        self.assertEqual(parse_server_frames(written), [(1, b"a"), (10, b"p" * 125), (1, b"b")])
        self.assertEqual((self.process_data_calls, self.masker_calls), (0, 0))

    def test_refusedControlFrames(self) -> None:
        """
        Control frames Autobahn refuses (over 125 bytes, fragmented, a
        close of one byte, a reserved opcode, unmasked) get its 1002 after
        the messages before them.
        """
        for bad in (
            client_frame(b"p" * 126, opcode=9),
            client_frame(b"p", opcode=9, fin=False),
            client_frame(b"\x03", opcode=8),
            client_frame(b"", opcode=11),
            client_frame(b"", opcode=9, mask=b""),
        ):
            written = self.assertSameAsAutobahn(client_frame(b"before") + bad + client_frame(b"after"))
            self.assertEqual(parse_server_frames(written)[0], (1, b"before"))
            self.assertEqual(close_code(written), 1002)

    def test_keepalivePongOnTheFastPath(self) -> None:
        """
        The client's answer to the server's keepalive ping, taken on the
        fast path, ends the wait for it as on Autobahn's: the connection
        outlives the ping timeout and the next ping is sent on time.
        """
        for protocol_class in (EchoServerProtocol, AutobahnPathProtocol):
            conn = self.connect(protocol_class)
            self.clock.advance(20)
            [(opcode, ping)] = parse_server_frames(conn.transport.value())
            self.assertEqual(opcode, 9)
            self.process_data_calls = 0
            conn.feed(client_frame(ping, opcode=10))
            self.assertEqual(self.process_data_calls == 0, protocol_class is EchoServerProtocol)
            self.assertIsNone(conn.protocol.autoPingPending)
            conn.transport.clear()
            self.clock.advance(20)
            self.assertEqual([f[0] for f in parse_server_frames(conn.transport.value())], [9])
            self.assertFalse(conn.transport.disconnecting)

    def test_rateLimitMidRead(self) -> None:
        """
        When the rate limit closes the connection partway through a read,
        the rest of the read is handled as Autobahn handles it (no more
        echoes).
        """
        self.limits = ServerLimits(max_message_size=1024, max_message_rate=1, handshake_timeout=5)
        burst = int(self.limits.message_burst)
        written = self.assertSameAsAutobahn(b"".join(client_frame(b"%d" % i) for i in range(burst + 3)))
        self.assertEqual(len([f for f in parse_server_frames(written) if f[0] == 1]), burst)
        self.assertEqual(close_code(written), 1008)

    def test_autoPingTimeoutCancelledByData(self) -> None:
        """
        As in Autobahn (autoPingRestartOnAnyTraffic), a message received
        while a keepalive ping is unanswered counts as an answer: the
        connection stays open past the ping timeout.
        """
        for protocol_class in (EchoServerProtocol, AutobahnPathProtocol):
            conn = self.connect(protocol_class)
            self.clock.advance(20)
            self.assertEqual(parse_server_frames(conn.transport.value())[0][0], 9)
            self.assertIsNotNone(conn.protocol.autoPingTimeoutCall)
            conn.feed(client_frame(_TEXT))
            self.assertIsNone(conn.protocol.autoPingTimeoutCall)
            self.assertIsNone(conn.protocol.autoPingPending)
            self.clock.advance(19.9)
            self.assertFalse(conn.transport.disconnecting)
            self.assertEqual(conn.protocol.state, WebSocketProtocol.STATE_OPEN)

    def test_watchersGetAutobahnsPath(self) -> None:
        """
        With a C{message} listener attached, frame logging or timing
        tracking on, messages go through Autobahn, which serves those.
        """
        for watch in (
            lambda p: p.on("message", lambda payload, is_binary: None),
            lambda p: setattr(p, "logFrames", True),
            lambda p: p.setTrackTimings(True),
        ):
            conn = self.connect()
            watch(conn.protocol)
            self.process_data_calls = 0
            self.assertEqual(parse_server_frames(conn.feed(client_frame(_TEXT))), [(1, _TEXT)])
            self.assertGreater(self.process_data_calls, 0)

    def test_unmaskMatchesAutobahn(self) -> None:
        """
        L{unmask} gives what Autobahn's masker gives, for every length
        around the word sizes and for large payloads.
        """
        for n in [*range(0, 140), 1000, FAST_PAYLOAD_MAX, 70_000]:
            mask, data = os.urandom(4), os.urandom(n)
            expected = create_xor_masker(mask, n).process(data) if n else b""
            self.assertEqual(unmask(mask, data), expected, n)


def _payloads(long_from: int) -> st.SearchStrategy[bytes]:
    """
    Short bytes (often not UTF-8), short UTF-8 text, and long payloads from
    C{long_from} to just past the tests' 1024-byte limit.
    """
    return st.one_of(
        st.binary(max_size=130),
        st.text(max_size=40).map(lambda t: t.encode("utf-8")),
        st.integers(long_from, 1030).map(lambda n: b"x" * n),
    )


# Client frames the fast path must treat exactly as Autobahn does: whole
# and fragmented messages, closes (any code, any reason), pings and pongs
# of any length, bad UTF-8, RSV bits, unmasked frames and
# lengths on both sides of the limits and the length forms.
_frames = st.builds(
    client_frame,
    payload=_payloads(1020),
    opcode=st.sampled_from([0, 1, 1, 1, 2, 2, 8, 9, 10]),
    fin=st.sampled_from([True, True, True, False]),
    rsv=st.sampled_from([0, 0, 0, 0, 0, 1]),
    mask=st.one_of(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4), st.just(b"")),
)


# Whole messages, the fast path's own ground: text (valid or not) and
# binary, of lengths around the limits and the length forms.
_messages = st.builds(
    client_frame,
    payload=_payloads(120),
    opcode=st.sampled_from([1, 2]),
    mask=st.binary(min_size=4, max_size=4),
)


class FastReceivePropertyTests(OverrideTestCase):
    def assertStreamAsAutobahn(self, frames: list[bytes], cuts: list[int]) -> None:
        """
        The frames, split into reads at C{cuts}, get the same bytes back,
        the same state and the same statistics as through Autobahn's own
        path.
        """
        stream = b"".join(frames)
        points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
        reads = [stream[a:b] for a, b in zip(points, points[1:])]
        self.assertSameAsAutobahn(*reads)
        self.clock.advance(120)

    @settings(max_examples=300, deadline=None)
    @given(frames=st.lists(_messages, min_size=1, max_size=6), cuts=st.lists(st.integers(0, 3000), max_size=3))
    def test_wholeMessagesAsAutobahn(self, frames: list[bytes], cuts: list[int]) -> None:
        """
        Whole text and binary messages, the fast path's own ground, split
        into reads anywhere, end as they do through Autobahn's own path.
        """
        self.assertStreamAsAutobahn(frames, cuts)

    @settings(max_examples=300, deadline=None)
    @given(frames=st.lists(_frames, max_size=8), cuts=st.lists(st.integers(0, 3000), max_size=4))
    def test_anyStreamAsAutobahn(self, frames: list[bytes], cuts: list[int]) -> None:
        """
        Any client frames, valid or not (fragments, closes, pings, bad
        UTF-8, RSV bits, unmasked, lengths past the limits), split into
        reads anywhere, end as they do through Autobahn's own path.
        """
        self.assertStreamAsAutobahn(frames, cuts)


class FastSendTests(OverrideTestCase):
    def test_oneWriteNoSendFrame(self) -> None:
        """
        A small message, through C{sendMessage} or through C{send_back}
        (which the echo takes), is one frame in one write, without
        Autobahn's C{sendFrame}, and counted as Autobahn counts it.
        """
        self.limits = ServerLimits(max_message_size=FAST_PAYLOAD_MAX, handshake_timeout=5)
        messages = ((b"", False), (_TEXT, False), (b"\xff" * 125, True), (b"t" * 126, False), (b"b" * FAST_PAYLOAD_MAX, True))
        for send in ("sendMessage", "send_back"):
            ours, reference = self.connect(), self.connect(AutobahnPathProtocol)
            self.patch(ours.protocol, "sendFrame", lambda *a, **k: self.fail("sendFrame called"))
            for payload, binary in messages:
                getattr(ours.protocol, send)(payload, binary)
                reference.protocol.sendMessage(payload, binary)
            self.assertEqual(ours.transport.value(), reference.transport.value(), send)
            self.assertEqual(ours.transport.writes, len(messages), send)
            self.assertEqual(vars(ours.protocol.trafficStats), vars(reference.protocol.trafficStats), send)

    def test_sendBackLeavesTheSendSideToAutobahn(self) -> None:
        """
        C{send_back} leaves out only what the receive path checked: a
        message in the middle of a C{beginMessage} (written whole, as
        Autobahn does), behind a queued send, with server frames masked or
        messages fragmented goes as through Autobahn.
        """
        ours, reference = self.connect(), self.connect(AutobahnPathProtocol)
        queued, unmasked = [], []
        for conn, send in ((ours, ours.protocol.send_back), (reference, reference.protocol.sendMessage)):
            self.patch(conn.protocol, "_trigger", lambda: None)
            conn.protocol.beginMessage()
            send(b"interleaved", False)
            conn.protocol.beginMessageFrame(2)
            conn.protocol.sendMessageFrameData(b"ok")
            conn.protocol.endMessage()
            conn.protocol.sendMessage(b"sync", sync=True)
            send(b"behind the queue", False)
            queued.append(list(conn.protocol.send_queue))
            conn.protocol.send_queue.clear()
            conn.protocol.autoFragmentSize = 4
            send(b"abcdef", False)
            conn.protocol.autoFragmentSize = 0
            unmasked.append(conn.transport.value())
            conn.protocol.maskServerFrames = True
            send(b"masked", True)
            conn.protocol.maskServerFrames = False
        self.assertEqual(unmasked[0], unmasked[1])
        self.assertEqual(queued[0], queued[1])
        self.assertEqual(len(queued[0]), 2)
        self.assertEqual(parse_server_frames(unmasked[0])[3:], [(1, b"abcd"), (0, b"ef")])
        # A masked frame (a random key each time): FIN and binary, the mask
        # bit and the length, the key, the payload masked with it.
        masked = ours.transport.value()[len(unmasked[0]) :]
        self.assertEqual(masked[:2], b"\x82\x86")
        self.assertEqual(unmask(masked[2:6], masked[6:]), b"masked")
        self.assertEqual(vars(ours.protocol.trafficStats), vars(reference.protocol.trafficStats))

    def test_otherSendsAreAutobahns(self) -> None:
        """
        Fragmented, synchronous, oversized and post-close sends, and sends
        in the middle of a streamed message, behave as in Autobahn.
        """
        self.limits = ServerLimits(max_message_size=100_000, handshake_timeout=5)
        ours, reference = self.connect(), self.connect(AutobahnPathProtocol)
        queued = []
        for conn in (ours, reference):
            # Autobahn's queue for synchronous sends is drained on the
            # global reactor: keep it from running, and look at the queue.
            self.patch(conn.protocol, "_trigger", lambda: None)
            conn.protocol.sendMessage(b"abcdef", fragmentSize=4)
            conn.protocol.sendMessage(b"x" * 70_000, True)
            conn.protocol.beginMessage()
            conn.protocol.sendMessage(b"interleaved")
            conn.protocol.beginMessageFrame(2)
            conn.protocol.sendMessageFrameData(b"ok")
            conn.protocol.endMessage()
            self.assertRaises(Exception, conn.protocol.sendMessage, b"y" * 100_001)
            conn.protocol.sendMessage(b"sync", sync=True)
            conn.protocol.sendMessage(b"behind the queue")
            queued.append(list(conn.protocol.send_queue))
            conn.protocol.send_queue.clear()
            conn.protocol.sendClose(1000)
            self.assertRaises(Exception, conn.protocol.sendMessage, b"late")
        self.assertEqual(ours.transport.value(), reference.transport.value())
        self.assertEqual(queued[0], queued[1])
        self.assertEqual(len(queued[0]), 2)
        self.assertEqual(parse_server_frames(ours.transport.value())[:2], [(1, b"abcd"), (0, b"ef")])


class AutobahnSendDataProtocol(EchoServerProtocol):
    """
    The echo server with Autobahn's own C{sendData}.
    """

    sendData = WebSocketProtocol.sendData


class QuietDataPathTests(OverrideTestCase):
    def test_countedAsAutobahnCountsThem(self) -> None:
        """
        Bytes sent before the WebSocket opens, while it is open, while it
        closes and once it is closed are written and counted as Autobahn's
        C{sendData} writes and counts them: once closing, nowhere.
        """
        transports, stats = [], []
        request = upgrade_request()
        for protocol_class in (EchoServerProtocol, AutobahnSendDataProtocol):
            transport = LenientTransport()
            factory = EchoServerFactory(self.limits, reactor=self.clock)
            factory.protocol = protocol_class
            protocol = factory.buildProtocol(_ADDRESS)
            protocol.makeConnection(transport)
            protocol.sendData(b"before")
            protocol.dataReceived(request)
            protocol.sendData(b"open")
            protocol.sendClose(1000)
            protocol.sendData(b"closing")
            protocol.dropConnection(abort=True)
            protocol.sendData(b"closed")
            transports.append(transport.value())
            stats.append(vars(protocol.trafficStats))
        self.assertEqual(transports[0], transports[1])
        self.assertEqual(stats[0], stats[1])


class QuietSetupTests(OverrideTestCase):
    def _state(self, protocol: EchoServerProtocol, names: set[str]) -> dict[str, Any]:
        """
        The values a protocol has for C{names}, its own or its class's,
        with per-object values made comparable.
        """
        state = {name: getattr(protocol, name, "missing") for name in names}
        # Different on every connection, or per factory; present in both.
        for name in ("is_closed", "is_open", "transport", "factory", "_bucket", "_data_bucket", "_gate", "perMessageCompressionAccept"):
            if name in state:
                state[name] = "present"
        for name in ("_wskey", "http_headers", "http_request_data", "http_response_data"):
            if name in state:
                state[name] = "present"
        state["_transport_details"] = protocol._transport_details.marshal()
        state["trafficStats"] = vars(protocol.trafficStats)
        state["utf8validator"] = type(protocol.utf8validator)
        state["send_queue"] = list(protocol.send_queue)
        for name, value in list(state.items()):
            if name.endswith("Call") and value is not None:
                state[name] = ("timer", value._call.getTime(), value._call.func.__name__)
        return state

    def assertSameState(self, ours: EchoServerProtocol, reference: EchoServerProtocol) -> None:
        """
        Whatever either protocol holds, the other reads the same value for
        it: of its own, or as a default of its class.
        """
        names = own_names(ours) | own_names(reference)
        self.assertEqual(self._state(ours, names), self._state(reference, names))

    def test_setupAsAutobahn(self) -> None:
        """
        A connection set up by L{QuietSetup} has exactly the attributes,
        values and timers of one set up by Autobahn, and the factory counts
        it; so does the tear-down.
        """
        ours, reference = self.connect(), self.connect(AutobahnPathProtocol)
        for conn in (ours, reference):
            conn.protocol.dropConnection(abort=True)
        self.assertSameState(ours.protocol, reference.protocol)

        protocols = []
        for setup in (QuietSetup.connectionMade, WebSocketAdapterProtocol.connectionMade):
            factory = EchoServerFactory(self.limits, reactor=self.clock)
            factory.protocol = AutobahnPathProtocol if setup is not QuietSetup.connectionMade else EchoServerProtocol
            protocol = factory.buildProtocol(_ADDRESS)
            protocol.transport = LenientTransport()
            setup(protocol)
            self.assertEqual(factory.countConnections, 1)
            protocols.append(protocol)
        self.assertSameState(*protocols)
        for protocol, teardown in zip(protocols, (QuietSetup.connectionLost, WebSocketAdapterProtocol.connectionLost)):
            teardown(protocol, Failure(ConnectionDone()))
            self.assertEqual(protocol.factory.countConnections, 0)
            self.assertEqual(protocol.state, WebSocketProtocol.STATE_CLOSED)
        self.assertSameState(*protocols)

    def test_noSendQueueUntilNeeded(self) -> None:
        """
        An open connection holds no send queue of its own until a send that
        Autobahn queues: a synchronous one.
        """
        conn = self.connect()
        self.assertNotIn("send_queue", vars(conn.protocol))
        self.assertEqual(len(conn.protocol.send_queue), 0)
        conn.protocol.sendMessage(b"echo")
        self.assertNotIn("send_queue", vars(conn.protocol))
        # Autobahn drains the queue on the global reactor: keep it queued.
        self.patch(conn.protocol, "_trigger", lambda: None)
        conn.protocol.sendMessage(b"sync", sync=True)
        self.assertEqual(len(vars(conn.protocol)["send_queue"]), 1)
        # Or the keepalive ping queued behind it at tearDown would drain it.
        conn.protocol.send_queue.clear()

    def test_noUtf8ValidatorUntilNeeded(self) -> None:
        """
        An open connection holds no UTF-8 validator of its own until a text
        message on Autobahn's frame path, which gets one that works.
        """
        conn = self.connect()
        conn.feed(client_frame(_TEXT), client_frame(b"", opcode=9))
        self.assertNotIn("utf8validator", vars(conn.protocol))
        written = conn.feed(client_frame(b"caf\xc3", fin=False), client_frame(b"\xa9", opcode=0))
        self.assertIn("utf8validator", vars(conn.protocol))
        self.assertEqual(parse_server_frames(written)[-1], (1, "caf\u00e9".encode()))
        written = conn.feed(client_frame(b"ok", fin=False), client_frame(b"\xc3(", opcode=0))
        self.assertEqual(close_code(written), 1007)

    def test_stateInSlots(self) -> None:
        """
        An open connection that has echoed keeps in its dictionary only
        attributes its classes give a default; everything else Autobahn
        and pingproto set is in slots.  An Autobahn release that adds
        per-connection state fails here: name it in L{SlottedState}.
        """
        conn = self.connect()
        conn.feed(client_frame(_TEXT))
        undeclared = {name for name in vars(conn.protocol) if not hasattr(type(conn.protocol), name)}
        self.assertEqual(undeclared, set())
        self.assertLess(len(vars(conn.protocol)), 30, "past 30 a dictionary no longer shares its keys")
        self.assertEqual(own_names(conn.protocol) - set(vars(conn.protocol)), set(SlottedState.__slots__))

    def test_slotsHideNoDefault(self) -> None:
        """
        No class of the server's protocol, or Autobahn's, gives a slot's
        name a default: the slot would hide it, leaving the attribute
        unset where Autobahn reads the default.
        """
        for cls in EchoServerProtocol.__mro__:
            if cls is not SlottedState:
                self.assertEqual(set(vars(cls)) & set(SlottedState.__slots__), set(), cls)

    def test_protocolsOwnOptionsKept(self) -> None:
        """
        As in Autobahn, an option the protocol class already has is not
        copied over from the factory.
        """

        class Own(EchoServerProtocol):
            autoFragmentSize = 3

        conn = Connection(Own, self.limits, self.clock)
        self.assertNotIn("autoFragmentSize", vars(conn.protocol))
        self.assertEqual(conn.protocol.maxMessagePayloadSize, 1024)
        conn.protocol.sendMessage(b"abcdef")
        # Autobahn ends a fragmented message whose size is a multiple of
        # the fragment size with an empty frame.
        self.assertEqual(parse_server_frames(conn.transport.value()), [(1, b"abc"), (0, b"def"), (0, b"")])

    def test_noEagerDebugFormatting(self) -> None:
        """
        A whole connection (set-up, upgrade, echo, close, tear-down) with
        debug logging off pretty-prints nothing and colours nothing but the
        one debug line inside Autobahn's upgrade parser.
        """
        calls: list[str] = []

        def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                calls.append(name)
                return real(*args, **kwargs)

            return wrapper

        self.patch(ab_protocol, "pformat", counting("pformat", ab_protocol.pformat))
        for module in (ab_protocol, twisted_websocket):
            self.patch(module, "hltype", counting("hltype", module.hltype))
            self.patch(module, "hlval", counting("hlval", module.hlval))
        conn = self.connect()
        conn.feed(client_frame(_TEXT), client_frame((1000).to_bytes(2, "big"), opcode=8))
        conn.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(calls, ["hltype", "hlval"])

        calls.clear()
        reference = self.connect(AutobahnPathProtocol)
        reference.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertIn("pformat", calls, "the reference would format eagerly: the check above can fail")


class OptionsOnClassTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.factory = EchoServerFactory(ServerLimits(max_message_size=1024), reactor=Clock())

    def opened(self, factory: EchoServerFactory) -> EchoServerProtocol:
        protocol = factory.buildProtocol(_ADDRESS)
        protocol.makeConnection(LenientTransport())
        protocol.dataReceived(upgrade_request())
        self.assertEqual(protocol.state, WebSocketProtocol.STATE_OPEN)
        return protocol

    def test_sameOptionsNoneCopied(self) -> None:
        """
        A connection reads every option Autobahn would have copied onto it,
        with the factory's value (a function option as the function itself,
        not bound), yet holds none of them itself.
        """
        ours = self.opened(self.factory)
        reference_factory = EchoServerFactory(ServerLimits(max_message_size=1024), reactor=Clock())
        # Autobahn's own way: build the protocol as Twisted's Factory does.
        reference_factory.buildProtocol = lambda addr: Factory.buildProtocol(reference_factory, addr)  # type: ignore[method-assign]
        reference = self.opened(reference_factory)
        for name in EchoServerProtocol.CONFIG_ATTRS:
            self.assertNotIn(name, vars(ours), name)
            self.assertIn(name, vars(reference), name)
            if name != "perMessageCompressionAccept":
                self.assertEqual(getattr(ours, name), getattr(reference, name), name)
        self.assertIs(ours.perMessageCompressionAccept, self.factory.perMessageCompressionAccept)
        self.assertIsNone(ours.perMessageCompressionAccept([]))
        self.assertEqual(own_names(reference) - own_names(ours), set(EchoServerProtocol.CONFIG_ATTRS))

    def test_changedOptionsReachNewConnectionsOnly(self) -> None:
        """
        Options set after connections were made reach the connections made
        after, whether set with C{setProtocolOptions} or directly; the
        earlier ones keep theirs, as with Autobahn's copies.
        """
        first = self.opened(self.factory)
        self.factory.setProtocolOptions(autoPingInterval=7)
        second = self.opened(self.factory)
        self.factory.maxMessagePayloadSize = 99
        third = self.opened(self.factory)
        self.assertEqual([p.autoPingInterval for p in (first, second, third)], [20, 7, 7])
        self.assertEqual([p.maxMessagePayloadSize for p in (first, second, third)], [1024, 1024, 99])
        self.assertIs(type(self.opened(self.factory)), type(third), "unchanged options: the class is reused")

    def test_protocolOwnOptionAndNamespace(self) -> None:
        """
        A protocol set on the factory later is the one built; an option its
        class has itself is kept over the factory's, as in Autobahn; the
        class logs under its own name.
        """

        class Own(EchoServerProtocol):
            autoFragmentSize = 3

        self.opened(self.factory)
        self.factory.protocol = Own
        protocol = self.opened(self.factory)
        self.assertIsInstance(protocol, Own)
        self.assertEqual(protocol.autoFragmentSize, 3)
        self.assertEqual(protocol.maxMessagePayloadSize, 1024)
        self.assertEqual(type(protocol).__qualname__, Own.__qualname__)
        self.assertEqual(self.opened(EchoServerFactory(reactor=Clock())).__class__.__module__, "pingproto.server")
        self.assertEqual(self.opened(EchoServerFactory(reactor=Clock()))._log.namespace, "pingproto.server.EchoServerProtocol")

    def test_protocolWithEveryOption(self) -> None:
        """
        A protocol class that has every option itself is built, and keeps
        its own: none is left for the factory to hand it.
        """
        options: dict[str, Any] = {name: getattr(self.factory, name) for name in EchoServerProtocol.CONFIG_ATTRS}
        options["perMessageCompressionAccept"] = staticmethod(options["perMessageCompressionAccept"])
        options["autoPingInterval"] = 7
        own = type("Own", (EchoServerProtocol,), options)
        self.factory.protocol = own
        protocol = self.opened(self.factory)
        self.assertIsInstance(protocol, own)
        self.assertEqual(protocol.autoPingInterval, 7)
        self.assertEqual(protocol.maxMessagePayloadSize, 1024)


class CompositionTests(SynchronousTestCase):
    def test_serverTakesEveryOverride(self) -> None:
        """
        The server's protocol resolves each overridden method to the
        override, ahead of Autobahn's.
        """
        mro = EchoServerProtocol.__mro__
        for override, names in (
            (FastReceive, ["_dataReceived"]),
            (FastSend, ["sendMessage"]),
            (QuietSetup, ["connectionMade", "connectionLost", "_connectionMade", "_connectionLost"]),
        ):
            self.assertIn(override, ServerOverrides.__mro__)
            for name in names:
                owner = next(cls for cls in mro if name in vars(cls) and cls is not EchoServerProtocol)
                self.assertIs(owner, override, name)
