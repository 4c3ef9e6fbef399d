"""
The server and client protocols in memory: over L{StringTransport}, and
paired through L{iosim} in the clear and over real OpenSSL, with every timer
on a L{Clock}.
"""

from __future__ import annotations

import base64
import hashlib
import os
import resource
import struct

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.test.iosim import FakeTransport, connect, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from pingproto.client import ConnectionState, PingClientFactory, PingRecorder
from pingproto.config import ServerLimits
from pingproto.limits import socket_bound
from pingproto.server import ECHO_BUFFER, PLAIN_ANSWER, STEPS_PER_TURN, EchoServerFactory, EchoServerProtocol, open_for
from pingproto.service import make_server_service
from pingproto.session import LossReason, PingSession
from pingproto.tls import ServerTLS, TLSProtocol, client_tls_options
from pingproto.tlsfiles import load_tls_dir

from .tlsdir import write_ca_file, write_tls_dir

_ADDRESS = IPv4Address("TCP", "127.0.0.1", 40000)
_EPOCH_MS = 1_700_000_000_000


def upgrade_request(path: str = "/", extra: str = "") -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: localhost:1234\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def upgrade_answer(request: bytes) -> bytes:
    """
    The 101 a WebSocket server sends for C{request}, a whole request head:
    for the tests' own stand-in servers.
    """
    head = request.split(b"\r\n\r\n")[0].decode()
    key = [line.split(":", 1)[1].strip() for line in head.split("\r\n") if line.lower().startswith("sec-websocket-key:")][0]
    accept = base64.b64encode(hashlib.sha1(key.encode() + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


def client_frame(
    payload: bytes,
    opcode: int = 1,
    fin: bool = True,
    *,
    rsv: int = 0,
    mask: bytes | None = None,
    declared: int | None = None,
) -> bytes:
    """
    One client-to-server frame with any header bits, masked with C{mask}
    (random if L{None}, unmasked if C{b""}, as RFC 6455 forbids).
    C{declared} makes the header announce another length than the payload
    has: a truncated or a huge frame, or, with no payload, a header alone.
    """
    if mask is None:
        mask = os.urandom(4)
    n = len(payload) if declared is None else declared
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    flag = 0x80 if mask else 0
    if n < 126:
        header = bytes([first, flag | n])
    elif n < 65536:
        header = bytes([first, flag | 126]) + n.to_bytes(2, "big")
    else:
        header = bytes([first, flag | 127]) + n.to_bytes(8, "big")
    if not mask.strip(b"\0"):  # unmasked, or a zero mask: megabytes need no XOR
        return header + mask + payload
    # Written apart from pingproto's own unmasking, which it must not share
    # a mistake with.
    key = (mask * (len(payload) // 4 + 1))[: len(payload)]
    body = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(len(payload), "big")
    return header + mask + body



def parse_server_frames(data: bytes, *, partial: bool = False) -> list[tuple[int, bytes]]:
    """
    Split unmasked server frames into (opcode, payload) pairs.  A frame
    still arriving at the end is left out with C{partial}, and is an error
    without it (a test reading a truncated payload as whole).
    """
    frames = []
    while data:
        opcode, length, offset = data[0] & 0x0F, (data[1] & 0x7F) if len(data) > 1 else 0, 2
        if length == 126:
            length, offset = int.from_bytes(data[2:4], "big"), 4
        elif length == 127:
            length, offset = int.from_bytes(data[2:10], "big"), 10
        if len(data) < 2 or len(data) < offset + length:
            if partial:
                break
            raise AssertionError(f"an incomplete frame at the end: {data[:20]!r}")
        frames.append((opcode, data[offset : offset + length]))
        data = data[offset + length :]
    return frames


class LenientTransport(StringTransport):
    """
    Autobahn unregisters a producer it never registered when it drops a
    connection; real transports allow that, L{StringTransport} does not.
    """

    def unregisterProducer(self) -> None:
        self.producer = None
        self.streaming = None


class TimerHygiene:
    """
    Every timer must run on the test's clock, never on the global reactor.
    """

    def assertGlobalReactorUntouched(self) -> None:
        self.assertEqual(reactor.getDelayedCalls(), [])  # type: ignore[attr-defined]


class ServerOverStringTransportTests(SynchronousTestCase, TimerHygiene):
    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoServerFactory(
            ServerLimits(max_message_size=1024, handshake_timeout=5, ping_interval=20, ping_timeout=20),
            reactor=self.clock,
        )
        self.transport = LenientTransport()
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)

    def tearDown(self) -> None:
        self.assertGlobalReactorUntouched()

    def handshake(self, path: str = "/") -> None:
        self.protocol.dataReceived(upgrade_request(path))
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101 "), self.transport.value()[:200])
        self.transport.clear()

    def test_everyWholeMessageEchoedThroughEcho(self) -> None:
        """
        A subclass's C{echo} gets every whole message, whichever way it
        came (whole in one read, in fragments, split across reads), and
        what it sends is what goes back; a message streamed back as it
        arrives (over ECHO_BUFFER) never reaches it, and is echoed as it
        came.  C{onMessage} alone saw only the first kind.
        """
        seen: list[bytes] = []

        class Shouting(EchoServerProtocol):
            def echo(self, payload: bytes, isBinary: bool) -> None:
                seen.append(payload)
                super().echo(payload.upper(), isBinary)

        self.factory = EchoServerFactory(ServerLimits(max_message_size=200_000, ping_interval=0), reactor=self.clock)
        self.factory.protocol = Shouting
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.handshake()
        self.protocol.dataReceived(client_frame(b"whole"))
        self.protocol.dataReceived(
            client_frame(b"in ", fin=False) + client_frame(b"three ", opcode=0, fin=False)
            + client_frame(b"parts", opcode=0)
        )
        split = client_frame(b"split across reads")
        self.protocol.dataReceived(split[:5])
        self.protocol.dataReceived(split[5:])
        large = b"x" * (ECHO_BUFFER + 10)
        self.protocol.dataReceived(client_frame(large[:40_000], fin=False) + client_frame(large[40_000:], opcode=0))
        self.assertEqual(seen, [b"whole", b"in three parts", b"split across reads"])
        frames = parse_server_frames(self.transport.value())
        self.assertEqual([payload for _, payload in frames[:3]], [b"WHOLE", b"IN THREE PARTS", b"SPLIT ACROSS READS"])
        self.assertEqual(b"".join(payload for _, payload in frames[3:]), large)
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def test_plainRequestGetsHint(self) -> None:
        """
        A GET without Upgrade, to any path, is answered 200 with the hint
        and the connection is closed.
        """
        self.protocol.dataReceived(b"GET /anything?redirect=http://evil HTTP/1.1\r\nHost: x\r\n\r\n")
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertTrue(response.endswith(b"\r\n\r\n" + PLAIN_ANSWER))
        self.assertNotIn(b"Location", response)
        self.assertTrue(self.transport.disconnecting)

    def test_missingHostRefused(self) -> None:
        """
        An HTTP/1.1 request without a Host header is answered 400, saying
        so, as RFC 9112 requires (it got the hint, 200); HTTP/1.0 has no
        Host and still gets the hint.
        """
        self.protocol.dataReceived(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n")
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nHTTP/1.1 request without a Host header\n"), response)
        other = self.factory.buildProtocol(_ADDRESS)
        transport = LenientTransport()
        other.makeConnection(transport)
        other.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 OK\r\n"), transport.value())
        other.connectionLost(Failure(ConnectionDone()))
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def test_lowercaseMethodRefused(self) -> None:
        """
        A whole request with a lowercase method is answered 400, as one
        sent in pieces already was: methods are case-sensitive.  Before,
        it got the hint, 200, as if it were a GET.
        """
        self.protocol.dataReceived(b"get / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nmalformed HTTP request\n"), response)
        self.assertTrue(self.transport.disconnecting)

    def logged(self, data: bytes, protocol: EchoServerProtocol | None = None) -> list[tuple[LogLevel, str]]:
        """
        What C{protocol} (the test's own by default) logs at info or above,
        as (level, text), for C{data} and then the loss of its connection.
        """
        protocol = protocol or self.protocol
        with capturedLogs() as events:
            protocol.dataReceived(data)
            protocol.connectionLost(Failure(ConnectionDone()))
        return [(e["log_level"], formatEvent(e)) for e in events if e["log_level"] >= LogLevel.info]

    def test_pageLoadNotLogged(self) -> None:
        """
        A page load is no cause for a line in the server's log (above
        debug): the page's WebSocket gets one.
        """
        self.assertEqual(self.logged(b"GET /app HTTP/1.1\r\nHost: x\r\n\r\n"), [])
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 200 OK\r\n"))

    def test_refusedRequestOneInfoLine(self) -> None:
        """
        A refused request is the client's mistake: one line at info, in
        pingproto's log, naming the client, the answer and why; no warning.
        """
        logged = self.logged(b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 17000)
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 431 "))
        self.assertEqual(
            logged,
            [(LogLevel.info, f"{self.protocol.peer}: answered 431 Request Header Fields Too Large: request head too large")],
        )

    def test_refusedUpgrade(self) -> None:
        """
        An upgrade that Autobahn refuses gets a standard status line with
        Autobahn's reason as the body (not as the status line's text), and
        one line at info, not Autobahn's two, one of them a warning.
        """
        request = upgrade_request().replace(b"Connection: Upgrade\r\n", b"")
        logged = self.logged(request)
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nHTTP Connection header missing\n"), response)
        self.assertEqual(
            logged, [(LogLevel.info, f"{self.protocol.peer}: answered 400 Bad Request: HTTP Connection header missing")]
        )

    def test_refusedUpgradeKeepsHeaders(self) -> None:
        """
        A refusal with headers keeps them: an unsupported WebSocket version
        is answered with the versions this server speaks (RFC 6455, 4.4).
        """
        self.protocol.dataReceived(upgrade_request().replace(b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Version: 99"))
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 400 Bad Request\r\n"), response)
        self.assertIn(b"\r\nSec-WebSocket-Version: 13", response)

    def test_refusalLogEscapesControlCharacters(self) -> None:
        """
        What a refusal quotes of the request cannot write control
        characters (a terminal's escape sequences) into the log.
        """
        # Autobahn refuses C0 controls in a header, not C1 ones: a CSI
        # (U+009B, as UTF-8) starts an escape sequence in many terminals.
        request = upgrade_request().replace(b"Connection: Upgrade", b"Connection: \xc2\x9b2Jkeep-alive")
        [(level, line)] = self.logged(request)
        self.assertNotIn("\x9b", line)
        self.assertIn("\\x9b2Jkeep-alive", line)

    def test_slowMessageKeepsConnection(self) -> None:
        """
        A client sending one large message slowly, a few bytes every 5 s,
        is not dropped for leaving the keepalive ping unanswered (it cannot
        answer inside a frame): its bytes show it is there.  It was dropped
        at the ping timeout, 40 s in.
        """
        self.handshake()
        mask = b"\x01\x02\x03\x04"
        self.protocol.dataReceived(bytes([0x82, 0x80 | 126]) + (1000).to_bytes(2, "big") + mask)
        for _ in range(20):
            self.clock.advance(5)
            self.protocol.dataReceived(bytes(10))
        self.assertEqual(self.protocol.state, self.protocol.STATE_OPEN)
        self.assertFalse(self.transport.disconnecting)
        self.protocol.connectionLost(Failure(ConnectionDone()))

    def test_closeReasonEscapedInLog(self) -> None:
        """
        The client's close reason, quoted in the connection's log line,
        cannot break the line (and forge one of its own) or write a
        terminal's escape sequences.
        """
        self.handshake()
        reason = "bye\n[pingproto.tap#critical] FORGED \x1b[31m"
        [(level, line)] = self.logged(client_frame((4000).to_bytes(2, "big") + reason.encode(), opcode=8))
        self.assertEqual(level, LogLevel.info)
        self.assertIn("closed: code 4000 (bye\\n[pingproto.tap#critical] FORGED \\x1b[31m)", line)

    def test_overCapOneWarningAMinute(self) -> None:
        """
        A connection cap being reached is a warning (the operator may want
        to raise it), at the first refusal and then at most once a minute,
        with how many were refused since; each refusal is a line at info,
        as other refused requests are.  A warning for each drowned the log:
        300 retries, 300 identical warnings.
        """
        factory = EchoServerFactory(ServerLimits(max_connections=1, ping_interval=0), reactor=self.clock)
        factory.buildProtocol(_ADDRESS).makeConnection(LenientTransport())

        def refuse() -> list[tuple[LogLevel, str]]:
            protocol, transport = factory.buildProtocol(_ADDRESS), LenientTransport()
            with capturedLogs() as events:
                protocol.makeConnection(transport)
                protocol.dataReceived(upgrade_request())
                protocol.connectionLost(Failure(ConnectionDone()))
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 Service Unavailable\r\n"))
            return [(e["log_level"], formatEvent(e)) for e in events if e["log_level"] >= LogLevel.info]

        refusal = (
            LogLevel.info,
            "tcp4:192.168.1.1:54321: answered 503 Service Unavailable: too many connections, try again later",
        )
        first = (
            LogLevel.warn,
            "Connection cap reached: --max-connections 1; refused 192.168.1.1. Refusals are logged at info; "
            "this warning repeats at most once a minute while they go on.",
        )
        self.assertEqual(refuse(), [first, refusal])
        self.clock.advance(30)
        self.assertEqual([refuse(), refuse()], [[refusal], [refusal]])
        self.clock.advance(30)
        again = (
            LogLevel.warn,
            "Connection cap reached: --max-connections 1; 3 refused in the last 1 min 00 s, the latest 192.168.1.1.",
        )
        self.assertEqual(refuse(), [again, refusal])

    def test_httpVersionRefusalAtInfo(self) -> None:
        """
        An upgrade over HTTP/1.0 is answered 505: the client's HTTP
        version, not the server failing, so a line at info and no warning.
        """
        request = upgrade_request().replace(b" HTTP/1.1\r\n", b" HTTP/1.0\r\n", 1)
        logged = self.logged(request)
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"))
        self.assertEqual([level for level, _ in logged], [LogLevel.info], logged)

    def test_protocolErrorNoWarning(self) -> None:
        """
        A client that breaks the protocol is logged once, by the line its
        WebSocket gets at its end, with the code it was closed with; no
        warning.
        """
        self.handshake()
        logged = self.logged(client_frame(b"hi", mask=b""))
        self.assertEqual([level for level, _ in logged], [LogLevel.info])
        self.assertIn("closed: code 1002 (unmasked client-to-server frame)", logged[0][1])

    def test_plainHttp10RequestWithoutHost(self) -> None:
        """
        An HTTP/1.0 request with no Host header still gets the hint.
        """
        self.protocol.dataReceived(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(self.transport.value().endswith(PLAIN_ANSWER))

    def test_headRequestHasNoBody(self) -> None:
        """
        HEAD gets the headers of the hint but no body.
        """
        self.protocol.dataReceived(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n")
        response = self.transport.value()
        self.assertIn(b"Content-Length: 26\r\n", response)
        self.assertTrue(response.endswith(b"\r\n\r\n"))

    def test_closeLoggedWithTimeOpen(self) -> None:
        """
        A WebSocket's one log line, at its end, says how long it was open,
        on the factory's clock.
        """
        # No keepalive: this client would not answer its pings.
        self.factory = EchoServerFactory(ServerLimits(ping_interval=0), reactor=self.clock)
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.handshake("/sock/websocket")
        self.clock.advance(3725)
        with capturedLogs() as events:
            self.protocol.dataReceived(client_frame(struct.pack(">H", 1000) + b"bye", opcode=8))
            self.assertTrue(self.transport.disconnecting)
            self.protocol.connectionLost(Failure(ConnectionDone()))
        lines = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("pingproto.server")]
        self.assertEqual(lines, ["tcp4:192.168.1.1:54321 at /sock/websocket, open 1 h 02 min, closed: code 1000 (bye)"])
        self.assertEqual(events[-1]["seconds"], 3725)

    def test_loggedPeerIsTheCountedOne(self) -> None:
        """
        The log line names the client the connection caps count: behind two
        trusted proxies, an X-Forwarded-For of one entry (which the client
        could have written itself) is not believed for either, and one of
        two entries names the client for both.
        """
        cases = [
            ("X-Forwarded-For: 6.6.6.6\r\n", "192.168.1.1", "tcp4:192.168.1.1:54321"),
            ("X-Forwarded-For: 203.0.113.9, 10.0.0.2\r\n", "203.0.113.9", "203.0.113.9"),
        ]
        for header, counted, logged in cases:
            factory = EchoServerFactory(ServerLimits(trusted_proxies=2, ping_interval=0), reactor=self.clock)
            protocol = factory.buildProtocol(_ADDRESS)
            protocol.makeConnection(LenientTransport())
            protocol.dataReceived(upgrade_request(extra=header))
            self.assertEqual(factory.per_address.count(counted), 1)
            with capturedLogs() as events:
                protocol.dataReceived(client_frame(struct.pack(">H", 1000), opcode=8))
                protocol.connectionLost(Failure(ConnectionDone()))
            lines = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("pingproto.server")]
            self.assertEqual(lines, [f"{logged} at /, open 0.0 s, closed: code 1000"])

    def test_noServerBanner(self) -> None:
        """
        Neither the plain answer nor the upgrade names the server software.
        """
        self.protocol.dataReceived(upgrade_request())
        self.assertNotIn(b"server:", self.transport.value().lower())
        self.assertNotIn(b"autobahn", self.transport.value().lower())

    def test_oversizedRequestHead(self) -> None:
        """
        A request head beyond the limit is refused with 431 before its end
        arrives.
        """
        self.protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + b"a" * 17000)
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 431 "))
        self.assertTrue(self.transport.disconnecting)

    def test_malformedRequest(self) -> None:
        """
        A request line that is not HTTP gets 400.
        """
        self.protocol.dataReceived(b"\x16\x03\x01garbage\r\n\r\n")
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 400 "), self.transport.value())

    def test_notHttpFromTheFirstLine(self) -> None:
        """
        A first line that is not an HTTP request line gets 400 as soon as
        it ends, without waiting for the rest of a head that will not come,
        and so does a head ended with bare LFs; an HTTP one arriving a
        piece at a time waits for the rest.
        """
        self.protocol.dataReceived(b"SSH-2.0-OpenSSH_9.2\r\n")
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 400 "), self.transport.value())
        other = self.factory.buildProtocol(_ADDRESS)
        transport = LenientTransport()
        other.makeConnection(transport)
        for piece in (b"GET / HT", b"TP/1.1\r\n", b"Host: x\r\n"):
            other.dataReceived(piece)
        self.assertEqual(transport.value(), b"")
        other.dataReceived(b"\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        bare = self.factory.buildProtocol(_ADDRESS)
        transport = LenientTransport()
        bare.makeConnection(transport)
        bare.dataReceived(b"GET / HTTP/1.1\nHost: x\n\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 400 "), transport.value())

    def test_upgradeAtBothPaths(self) -> None:
        """
        The WebSocket opens at / and at the classic /sock/websocket.
        """
        self.handshake("/")
        other = self.factory.buildProtocol(_ADDRESS)
        transport = LenientTransport()
        other.makeConnection(transport)
        other.dataReceived(upgrade_request("/sock/websocket"))
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "))
        other.dropConnection(abort=True)
        self.protocol.dropConnection(abort=True)

    def test_upgradeElsewhereIs404(self) -> None:
        """
        An upgrade to a path with no WebSocket is refused with 404.
        """
        self.protocol.dataReceived(upgrade_request("/nope"))
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 404 "))

    def test_echoTextAndBinary(self) -> None:
        """
        Text comes back as text, binary as binary, byte for byte.
        """
        self.handshake()
        self.protocol.dataReceived(client_frame(b"1700000000123", opcode=1))
        self.protocol.dataReceived(client_frame(b"\x00\xff\x10", opcode=2))
        self.assertEqual(
            parse_server_frames(self.transport.value()),
            [(1, b"1700000000123"), (2, b"\x00\xff\x10")],
        )
        self.protocol.dropConnection(abort=True)

    def test_quietDataPathKeepsAutobahnsBookkeeping(self) -> None:
        """
        The echo's short write path (L{QuietDataPath}) still counts the
        octets Autobahn's traffic statistics count.
        """
        self.handshake()
        before = self.protocol.trafficStats.outgoingOctetsWireLevel
        self.protocol.dataReceived(client_frame(b"1700000000123"))
        echoed = self.transport.value()
        self.assertEqual(parse_server_frames(echoed), [(1, b"1700000000123")])
        self.assertEqual(self.protocol.trafficStats.outgoingOctetsWireLevel - before, len(echoed))
        self.protocol.dropConnection(abort=True)

    def test_oversizedMessageClosedWith1009(self) -> None:
        """
        A message larger than the limit is answered with close code 1009.
        """
        self.handshake()
        self.protocol.dataReceived(client_frame(b"x" * 1025, opcode=2))
        frames = parse_server_frames(self.transport.value())
        self.assertEqual(frames[-1][0], 8)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1009)
        self.clock.advance(60)

    def test_invalidUtf8ClosedWith1007(self) -> None:
        """
        Invalid UTF-8 in a text message is answered with close code 1007.
        """
        self.handshake()
        self.protocol.dataReceived(client_frame(b"\xff\xfe", opcode=1))
        frames = parse_server_frames(self.transport.value())
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1007)
        self.clock.advance(60)

    def test_unfinishedRequestAnswered408(self) -> None:
        """
        A request begun but not finished when the handshake timeout passes
        is answered 408, saying how long it had, in one info line, and the
        connection is closed gently (the answer is not cut off by a reset).
        """
        with capturedLogs() as events:
            self.protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n")
            self.clock.advance(4.9)
            self.assertEqual(self.transport.value(), b"")
            self.clock.advance(0.2)
        response = self.transport.value()
        self.assertTrue(response.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), response)
        self.assertTrue(response.endswith(b"\r\n\r\nthe request did not arrive within 5 s\n"), response)
        self.assertTrue(self.transport.disconnecting)
        self.assertFalse(self.transport.disconnected, "aborted")
        self.assertEqual(
            [(e["log_level"], formatEvent(e)) for e in events if e["log_level"] >= LogLevel.info],
            [(LogLevel.info, "tcp4:192.168.1.1:54321: answered 408 Request Timeout: the request did not arrive within 5 s")],
        )
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.clock.advance(60)

    def test_handshakeTimeout(self) -> None:
        """
        A client that connects and sends nothing is dropped when the
        handshake timeout passes on the clock, and not before.
        """
        self.clock.advance(4.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(self.transport.disconnecting)

    def test_keepaliveClosesSilentPeer(self) -> None:
        """
        An open connection whose peer never answers keepalive pings is
        closed after interval + timeout.
        """
        self.handshake()
        self.clock.advance(20)
        frames = parse_server_frames(self.transport.value())
        self.assertEqual(frames[0][0], 9, "a ping is sent after the interval")
        self.clock.advance(19.9)
        self.assertFalse(self.transport.disconnecting)
        self.clock.advance(0.2)
        self.assertTrue(self.transport.disconnecting)
        self.clock.advance(60)

    def test_noCompressionNegotiated(self) -> None:
        """
        permessage-deflate offered by the client is not accepted.
        """
        self.protocol.dataReceived(
            upgrade_request(extra="Sec-WebSocket-Extensions: permessage-deflate\r\n")
        )
        response = self.transport.value().split(b"\r\n\r\n")[0].lower()
        self.assertIn(b"101", response)
        self.assertNotIn(b"sec-websocket-extensions", response)
        self.protocol.dropConnection(abort=True)


class StopOrderTests(SynchronousTestCase):
    def test_idleOnceEveryConnectionIsOver(self) -> None:
        """
        What L{EchoServerFactory.going_away} returns fires once the last
        connection is over: a subclass's C{onClose} has run and the
        connection's timers are cancelled.  It fired first, from the start
        of C{connectionLost}, so that a program's stop could find a
        connection's own end-of-connection work not done yet.
        """
        clock = Clock()
        events: list[object] = []

        class Recording(EchoServerProtocol):
            def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
                super().onClose(wasClean, code, reason)
                events.append("onClose")

        factory = EchoServerFactory(ServerLimits(ping_interval=20, ping_timeout=20), reactor=clock)
        factory.protocol = Recording
        protocol = factory.buildProtocol(_ADDRESS)
        protocol.makeConnection(LenientTransport())
        protocol.dataReceived(upgrade_request())
        stopped = factory.going_away()
        stopped.addCallback(lambda _: events.append(("stopped", clock.getDelayedCalls())))
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(events, ["onClose", ("stopped", [])])


class OpenForTests(SynchronousTestCase):
    def test_units(self) -> None:
        """
        Under a minute in tenths of a second, under an hour in minutes and
        seconds, beyond in hours and minutes; rounding never writes 60.
        """
        cases = [
            (0.0, "0.0 s"), (0.04, "0.0 s"), (12.34, "12.3 s"), (59.94, "59.9 s"), (59.96, "1 min 00 s"),
            (61.4, "1 min 01 s"), (3599.4, "59 min 59 s"), (3599.6, "1 h 00 min"), (3725, "1 h 02 min"),
            (90061, "25 h 01 min"),
        ]
        self.assertEqual([(s, open_for(s)) for s, _ in cases], cases)


class StalledServerProtocol(EchoServerProtocol):
    """
    A server that accepts the WebSocket but never echoes.
    """

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        pass


class PairTests(SynchronousTestCase, TimerHygiene):
    """
    The project's client against the project's server, in memory.
    """

    tls = False

    def connect(self, serverProtocol: type[EchoServerProtocol] = EchoServerProtocol) -> None:
        """
        Connect a fresh client to a server speaking C{serverProtocol}.
        """
        self.clock = Clock()
        self.finished: list[bool] = []
        self.recorder = PingRecorder()
        self.session = PingSession(timeout=2.0, count=3)
        self.serverFactory = EchoServerFactory(ServerLimits(), reactor=self.clock)
        self.serverFactory.protocol = serverProtocol
        url = "wss://localhost:1234/" if self.tls else "ws://localhost:1234/"
        self.clientFactory = PingClientFactory(
            url,
            self.session,
            self.recorder,
            interval=1.0,
            clock=self.clock,
            monotonic=self.clock.seconds,
            wall_ms=lambda: _EPOCH_MS + int(self.clock.seconds() * 1000),
            on_finished=lambda: self.finished.append(True),
        )
        server, client = self.serverFactory, self.clientFactory
        if self.tls:
            tlsdir = self.mktemp()
            ca = write_tls_dir(tlsdir)
            server = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(tlsdir)), False, server, clock=self.clock)
            client = TLSMemoryBIOFactory(
                client_tls_options("localhost", write_ca_file(self.mktemp(), ca)),
                True,
                client,
                clock=self.clock,
            )
        self.client, self.server, self.pump = connectedServerAndClient(
            lambda: server.buildProtocol(_ADDRESS),
            lambda: client.buildProtocol(_ADDRESS),
            greet=False,
            clock=self.clock,
        )

    def tearDown(self) -> None:
        self.clock.advance(120)
        self.pump.flush()
        self.assertGlobalReactorUntouched()

    def advance(self, seconds: float, step: float = 0.125) -> None:
        """
        Let time pass on the clock, pumping bytes as it goes.
        """
        for _ in range(round(seconds / step)):
            self.clock.advance(step)
            self.pump.flush()

    def states(self) -> list[ConnectionState]:
        return [change.state for change in self.recorder.result.states]

    def test_pingsAreEchoedAndTimed(self) -> None:
        """
        The client opens, sends one ping per interval, gets each echo back
        and reports a round-trip time for it; after the count it closes
        cleanly.
        """
        self.connect()
        self.pump.flush()
        self.assertEqual(self.states(), [ConnectionState.OPEN])
        self.advance(2.5)
        result = self.recorder.result
        self.assertEqual([s.seq for s in result.samples], [1, 2, 3])
        self.assertEqual([s.sent_ms for s in result.samples], [_EPOCH_MS, _EPOCH_MS + 1000, _EPOCH_MS + 2000])
        for sample in result.samples:
            self.assertGreaterEqual(sample.rtt, 0.0)
            self.assertLess(sample.rtt, 0.01)
        self.assertEqual(result.losses, [])
        self.assertEqual(self.finished, [True])

    def test_lostEcho(self) -> None:
        """
        An echo that never comes back is reported lost after the timeout.
        """
        self.connect(StalledServerProtocol)
        self.pump.flush()
        self.advance(1.875)
        self.assertEqual(self.recorder.result.losses, [])
        self.advance(0.25)
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [(1, LossReason.TIMEOUT)],
        )
        self.advance(2.0)
        self.assertEqual(
            [loss.seq for loss in self.recorder.result.losses], [1, 2, 3]
        )
        self.assertEqual(self.recorder.result.samples, [])
        self.assertEqual(self.finished, [True])

    def test_serverCloseIsSeen(self) -> None:
        """
        A close from the server moves the client through CLOSING to CLOSED
        with the code, and outstanding pings are lost to the disconnect.
        """
        self.connect()
        self.pump.flush()
        serverProtocol = self.server.wrappedProtocol if self.tls else self.server
        self.clock.advance(0)
        # A ping is outstanding when the server goes away.
        self.clientFactory.session.send(self.clock.seconds(), _EPOCH_MS + 999_999)
        serverProtocol.sendClose(1000, "bye")
        self.pump.flush()
        self.advance(1.0)
        self.assertEqual(
            self.states(),
            [ConnectionState.OPEN, ConnectionState.CLOSING, ConnectionState.CLOSED],
        )
        self.assertEqual(self.recorder.result.states[-1].detail, "code 1000: bye")
        self.assertIn(LossReason.DISCONNECT, [loss.reason for loss in self.recorder.result.losses])


class PairOverTLSTests(PairTests):
    """
    The same, through real OpenSSL in memory with certificates made here.
    """

    tls = True


class FallsSilentTransport(FakeTransport):
    """
    iosim's transport for a peer that falls silent at C{silent}: nothing it
    sends arrives any more, not its TLS close_notify, not its hang-up.  It
    vanished, or lingers on purpose.
    """

    silent = False

    def write(self, data: bytes) -> None:
        if not self.silent:
            super().write(data)

    def loseConnection(self) -> None:
        if not self.silent:
            super().loseConnection()

    abortConnection = loseConnection


class AsksThenFallsSilent(Protocol):
    """
    Sends its request, and falls silent as soon as an answer arrives.
    """

    def connectionMade(self) -> None:
        self.received = b""
        self.transport.write(self.factory.request)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        # Its TLS layer's transport: not even the TLS goodbye leaves.
        self.transport.transport.silent = True


class _RecordsAbort(LenientTransport):
    """
    Says whether the connection was aborted (its queued bytes thrown away)
    or closed after them.
    """

    aborted = False

    def abortConnection(self) -> None:
        self.aborted = True
        super().abortConnection()


class FloodTests(SynchronousTestCase, TimerHygiene):
    """
    What a hostile client sends a lot of costs it, not the server: frames
    that are not messages, fragments of one byte, bytes after the end.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.limits = ServerLimits(max_message_size=1024, max_data_rate=1000, handshake_timeout=5, ping_interval=0)
        self.factory = EchoServerFactory(self.limits, reactor=self.clock)
        self.transport = _RecordsAbort()
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)

    def tearDown(self) -> None:
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertGlobalReactorUntouched()

    def open(self) -> None:
        self.protocol.dataReceived(upgrade_request())
        self.assertTrue(self.transport.value().startswith(b"HTTP/1.1 101 "))
        self.transport.clear()

    def reopen_without_data_rate(self, protocol: type[EchoServerProtocol] = EchoServerProtocol) -> None:
        """
        In place of set-up's connection, one of C{protocol} with no data
        rate to stop at, opened.
        """
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.factory = EchoServerFactory(ServerLimits(max_message_size=1024, ping_interval=0), reactor=self.clock)
        self.factory.protocol = protocol
        self.transport = _RecordsAbort()
        self.protocol = self.factory.buildProtocol(_ADDRESS)
        self.protocol.makeConnection(self.transport)
        self.open()

    def test_pingsAreMessages(self) -> None:
        """
        Pings count against the message rate as messages do: past the
        burst, the connection is closed with 1008.
        """
        # No data rate to wait for: the message rate is what is tested.
        self.reopen_without_data_rate()
        burst = int(self.limits.message_burst)
        self.protocol.dataReceived(b"".join(client_frame(b"", opcode=9) for _ in range(burst + 1)))
        # A turn's worth at a time, at one instant.
        self.clock.advance(0)
        frames = parse_server_frames(self.transport.value())
        self.assertEqual([opcode for opcode, _ in frames[:-1]], [10] * burst)
        self.assertEqual(frames[-1][0], 8)
        self.assertEqual(int.from_bytes(frames[-1][1][:2], "big"), 1008)

    def test_unsolicitedPongsQuiet(self) -> None:
        """
        Pongs nobody asked for (a one-way heartbeat, RFC 6455 5.5.3) are
        taken without a log line each, and count as messages too.
        """
        # No data rate to wait for: the message rate is what is tested.
        self.reopen_without_data_rate()
        burst = int(self.limits.message_burst)
        with capturedLogs() as events:
            self.protocol.dataReceived(b"".join(client_frame(b"beat", opcode=10) for _ in range(burst)))
            self.clock.advance(0)
        self.assertEqual([formatEvent(e) for e in events if e["log_level"] >= LogLevel.warn], [])
        self.assertEqual((self.protocol.state, self.transport.value()), (self.protocol.STATE_OPEN, b""))
        self.protocol.dataReceived(client_frame(b"beat", opcode=10))
        [(opcode, answer)] = parse_server_frames(self.transport.value())
        self.assertEqual((opcode, int.from_bytes(answer[:2], "big")), (8, 1008))

    def test_tinyFragmentsCostTheirFrames(self) -> None:
        """
        Each frame of a fragmented message costs at least FRAME_COST bytes
        of the data rate: 20 one-byte fragments (140 bytes on the wire)
        are over this client's 2,048-byte burst, and what a read brought
        is taken apart only as fast as the rate allows (1,000 bytes a
        second: 3.2 s for the 3,192 bytes over the burst), reading no
        more meanwhile.
        """
        self.open()
        self.assertEqual(self.limits.data_burst, 2048)
        frames = [client_frame(b"x", opcode=1, fin=False)]
        frames += [client_frame(b"x", opcode=0, fin=False) for _ in range(18)]
        frames += [client_frame(b"x", opcode=0, fin=True)]
        self.protocol.dataReceived(b"".join(frames))
        self.assertEqual(self.protocol._gate.holding, {"rate", "backlog"})
        self.clock.pump([0.1] * 29)
        self.assertEqual(self.transport.value(), b"")
        self.clock.pump([0.1] * 6)
        self.assertEqual(parse_server_frames(self.transport.value()), [(1, b"x" * 20)])
        self.assertNotIn("backlog", self.protocol._gate.holding)

    def test_smallMessagesCostTheirFrames(self) -> None:
        """
        A whole small message, taken on the fast path, costs FRAME_COST
        bytes of the data rate as a fragment does on Autobahn's path (its
        7 bytes on the wire and 255 more): seven of 1 byte, each in a read
        of its own, take 1,834 bytes of the 2,048-byte burst, and the
        eighth leaves the client 48 bytes in debt, read no more until the
        rate has paid it (48 ms at 1,000 bytes a second).
        """
        self.open()
        for _ in range(7):
            self.protocol.dataReceived(client_frame(b"x"))
        self.assertEqual(self.protocol._gate.holding, frozenset())
        self.protocol.dataReceived(client_frame(b"x"))
        self.assertEqual(self.protocol._gate.holding, {"rate"})
        self.assertEqual(len(parse_server_frames(self.transport.value())), 8)
        self.clock.advance(0.047)
        self.assertEqual(self.protocol._gate.holding, {"rate"})
        self.clock.advance(0.002)
        self.assertEqual(self.protocol._gate.holding, frozenset())

    def test_wholeMessagesATurnsWorthAtATime(self) -> None:
        """
        However many whole small messages one read brings, one turn of the
        reactor echoes only some: fast_frames_per_read of them on the fast
        path, then STEPS_PER_TURN steps of Autobahn's parser (two a
        frame).  The rest are echoed on later turns, in order: a client
        pipelining 1,000 pings held every other client's echoes 40 ms.
        """
        self.reopen_without_data_rate()
        count = 200
        self.protocol.dataReceived(b"".join(client_frame(b"%d" % n) for n in range(count)))
        first_turn = EchoServerProtocol.fast_frames_per_read + STEPS_PER_TURN // 2
        self.assertEqual(len(parse_server_frames(self.transport.value())), first_turn)
        self.assertEqual(self.protocol._gate.holding, {"backlog"})
        self.clock.advance(0)
        self.assertEqual(parse_server_frames(self.transport.value()), [(1, b"%d" % n) for n in range(count)])
        self.assertEqual(self.protocol._gate.holding, frozenset())

    def test_aTurnsWorthAtATime(self) -> None:
        """
        However many frames one read brings, one turn of the reactor takes
        apart at most STEPS_PER_TURN steps of them (a frame is one or two),
        so that every other connection's reads come in between; the rest
        follows on later turns, reading no more until then.
        """
        self.reopen_without_data_rate()
        count = 3 * STEPS_PER_TURN
        frames = [client_frame(b"", opcode=1, fin=False)]
        frames += [client_frame(b"", opcode=0, fin=False) for _ in range(count)]
        frames += [client_frame(b"done", opcode=0, fin=True)]
        self.protocol.dataReceived(b"".join(frames))
        # A frame is two steps here (its header, its empty payload): a
        # turn's worth of frames taken, the rest waiting for the next turn.
        self.assertEqual(len(self.protocol.data), 6 * (count + 1 - STEPS_PER_TURN // 2) + 10)
        self.assertEqual(self.protocol._gate.holding, {"backlog"})
        self.assertEqual([call.getTime() for call in self.clock.getDelayedCalls()], [self.clock.seconds()])
        # (Clock runs what is scheduled for now as it goes, in one advance.)
        self.clock.advance(0)
        self.assertEqual(parse_server_frames(self.transport.value()), [(1, b"done")])
        self.assertEqual(self.protocol._gate.holding, frozenset())

    def test_backlogKeepsOrderAndEnds(self) -> None:
        """
        Bytes that come while a backlog waits its turn (Twisted's own TLS
        layer hands on a read's records one by one) join it and are taken
        in order; a connection lost with a backlog waiting leaves no timer
        behind (tearDown).
        """
        self.reopen_without_data_rate()
        frames = [client_frame(b"", opcode=1, fin=False)]
        frames += [client_frame(b"", opcode=0, fin=False) for _ in range(STEPS_PER_TURN)]
        self.protocol.dataReceived(b"".join(frames))
        self.assertEqual(self.protocol._gate.holding, {"backlog"})
        self.protocol.dataReceived(client_frame(b"end", opcode=0) + client_frame(b"next"))
        self.assertEqual(self.transport.value(), b"")
        self.clock.advance(0)
        self.assertEqual(parse_server_frames(self.transport.value()), [(1, b"end"), (1, b"next")])
        self.transport.clear()
        self.protocol.dataReceived(b"".join(frames))
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_backlogFailureEndsTheConnection(self) -> None:
        """
        What the frame parser raises on a later turn, working through a
        backlog from a timer rather than a read, is logged once and ends
        the connection, as Twisted ends one whose dataReceived raises:
        left to the reactor, the connection held its read for ever.
        """

        class Breaks(EchoServerProtocol):
            steps = 0

            def processData(self) -> bool:
                self.steps += 1
                if self.steps > STEPS_PER_TURN:
                    raise ZeroDivisionError("a parser bug")
                return super().processData()

        self.reopen_without_data_rate(Breaks)
        frames = [client_frame(b"", opcode=1, fin=False)]
        frames += [client_frame(b"", opcode=0, fin=False) for _ in range(STEPS_PER_TURN)]
        self.protocol.dataReceived(b"".join(frames))
        self.assertEqual(self.protocol._gate.holding, {"backlog"})
        self.assertFalse(self.transport.aborted)
        self.clock.advance(0)
        self.assertTrue(self.transport.aborted)
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)

    def test_withoutPingprotosOnOpen(self) -> None:
        """
        A subclass whose onOpen does not call pingproto's (so there is no
        read gate to hold) gets Autobahn's parsing: everything a read
        brought, at once.
        """

        class Quiet(EchoServerProtocol):
            def onOpen(self) -> None:
                pass

        self.reopen_without_data_rate(Quiet)
        frames = [client_frame(b"", opcode=1, fin=False)]
        frames += [client_frame(b"", opcode=0, fin=False) for _ in range(STEPS_PER_TURN)]
        self.protocol.dataReceived(b"".join(frames) + client_frame(b"end", opcode=0))
        self.assertEqual(parse_server_frames(self.transport.value()), [(1, b"end")])

    def test_nothingKeptAfterTheEnd(self) -> None:
        """
        Bytes a client sends once the server has closed (here after a
        plain answer, while it waits for the client to let go) are not
        kept.
        """
        self.protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertEqual(self.protocol.state, self.protocol.STATE_CLOSED)
        held = len(self.protocol.data)
        for _ in range(100):
            self.protocol.dataReceived(b"x" * 10_000)
        self.assertEqual(len(self.protocol.data), held)

    def test_badCloseAnswered(self) -> None:
        """
        A close with a reserved code, or a reason that is not UTF-8, is
        answered with 1002 or 1007 and the connection is closed after the
        answer, not aborted with it still queued.
        """
        for payload, code in ((struct.pack(">H", 1004), 1002), (struct.pack(">H", 1000) + b"\xff", 1007)):
            self.setUp()
            self.open()
            self.protocol.dataReceived(client_frame(payload, opcode=8))
            [(opcode, answer)] = parse_server_frames(self.transport.value())
            self.assertEqual((opcode, int.from_bytes(answer[:2], "big")), (8, code))
            self.assertTrue(self.transport.disconnecting)
            self.assertFalse(self.transport.aborted)
            self.assertFalse(self.protocol.wasClean)
            self.tearDown()


class SilentSocketTests(SynchronousTestCase, TimerHygiene):
    """
    Sockets over the connection caps are let go of as they are accepted,
    whether or not they ever send a request.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoServerFactory(
            ServerLimits(max_connections=3, max_per_address=2, ping_interval=0), reactor=self.clock
        )

    def tearDown(self) -> None:
        self.assertGlobalReactorUntouched()

    def connect(self, host: str, factory: Factory | None = None) -> tuple[Protocol, _RecordsAbort]:
        address = IPv4Address("TCP", host, 40000)
        protocol = (factory or self.factory).buildProtocol(address)
        transport = _RecordsAbort(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def test_overCapAnsweredAtOnce(self) -> None:
        """
        A socket over a connection cap is answered 503 as it is accepted,
        before any request, and closed: held until its request came (or
        the handshake timeout), silent sockets from one address took every
        file descriptor the server had.  Meanwhile it counts against no
        cap: five silent sockets from one address (cap 2) leave room under
        a cap of 3 for another address, and a socket from a third, over
        the cap of 3, is answered at once too.
        """
        factory = self.factory
        silent = [self.connect("10.0.0.1") for _ in range(5)]
        self.assertEqual([(t.value(), t.disconnecting) for _, t in silent[:2]], [(b"", False)] * 2)
        for _, transport in silent[2:]:
            self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "), transport.value()[:100])
            self.assertIn(b"\r\nRetry-After: 10\r\n", transport.value())
            self.assertTrue(transport.disconnecting)
            self.assertFalse(transport.aborted)
        self.assertEqual((factory.sockets, factory.over_cap, factory.per_address.count("10.0.0.1")), (5, 3, 2))
        other, transport = self.connect("10.0.0.2")
        other.dataReceived(upgrade_request())
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 101 "), transport.value()[:100])
        third, transport = self.connect("10.0.0.3")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 503 "), transport.value()[:100])
        self.assertTrue(transport.disconnecting)
        self.assertEqual((factory.sockets, factory.over_cap, factory.per_address.count("10.0.0.3")), (7, 4, 0))
        for protocol, _ in [*silent, (other, None), (third, None)]:
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((factory.sockets, factory.over_cap, len(factory.per_address)), (0, 0, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_overCapOverTLSClosedAtOnce(self) -> None:
        """
        Over TLS the 503 would have to wait for a TLS handshake, which a
        silent client never starts: a socket over a cap is aborted as it
        is accepted, unanswered, with a line at info saying so.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        tls = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(tlsdir)), False, self.factory, clock=self.clock)
        tls.protocol = TLSProtocol
        first, kept = self.connect("10.0.0.1", tls)
        second, _ = self.connect("10.0.0.1", tls)
        with capturedLogs() as events:
            third, refused = self.connect("10.0.0.1", tls)
        self.assertEqual((kept.value(), kept.disconnecting), (b"", False))
        self.assertEqual((refused.value(), refused.aborted), (b"", True))
        lines = [(e["log_level"], formatEvent(e)) for e in events if e["log_level"] >= LogLevel.info]
        self.assertEqual(
            lines[1:],
            [
                (
                    LogLevel.info,
                    "tcp4:10.0.0.1:40000: closed unanswered: too many connections "
                    "(--max-per-address 2; over TLS the answer would wait for a handshake)",
                )
            ],
        )
        self.assertEqual(lines[0][0], LogLevel.warn)
        for protocol in (first, second, third):
            protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual((self.factory.sockets, self.factory.over_cap, len(self.factory.per_address)), (0, 0, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pastSocketBoundClosedAtAccept(self) -> None:
        """
        Past the most sockets the open-file limit leaves room for, counted
        or not, the factory builds no protocol, so Twisted closes the
        socket as it is accepted, holding nothing: past the limit itself,
        Twisted resets every client waiting to be accepted (EMFILE).  The
        bound is off unless set (a program's own TLS factory could not take
        the refusal); make_server_service sets it under the soft limit.
        """
        factory = self.factory
        self.assertEqual(factory.max_sockets, 0)
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        if soft != resource.RLIM_INFINITY:
            service = make_server_service("tcp:0:interface=127.0.0.1", reactor=self.clock)
            self.assertEqual(service.factory.max_sockets, socket_bound(soft))
            self.assertLess(service.factory.max_sockets, soft)
        factory.max_sockets = 4
        held = [self.connect(host) for host in ("10.0.0.1", "10.0.0.1", "10.0.0.1", "10.0.0.2")]
        with capturedLogs() as events:
            self.assertIsNone(factory.buildProtocol(IPv4Address("TCP", "10.0.0.3", 40000)))
        self.assertEqual(
            [(e["log_level"], formatEvent(e)) for e in events][1:],
            [
                (
                    LogLevel.info,
                    "tcp4:10.0.0.3:40000: closed unanswered: the server holds 4 sockets, "
                    "as many as its open-file limit leaves room for",
                )
            ],
        )
        self.assertEqual(events[0]["log_level"], LogLevel.warn)
        held[2][0].connectionLost(Failure(ConnectionDone()))
        self.assertIsNotNone(factory.buildProtocol(IPv4Address("TCP", "10.0.0.3", 40000)))
        for protocol, _ in held[:2] + held[3:]:
            protocol.connectionLost(Failure(ConnectionDone()))


class _CannotAbort(LenientTransport):
    """
    A transport without C{abortConnection}, as Autobahn's own
    C{WrappingWebSocketAdapter} (the C{autobahn:} endpoint) is.
    """

    @property
    def abortConnection(self):  # type: ignore[no-untyped-def]
        raise AttributeError("abortConnection")


class _LostAtOnce(LenientTransport):
    """
    A transport whose C{loseConnection} ends the connection before it
    returns.
    """

    def loseConnection(self) -> None:
        super().loseConnection()
        self.protocol.connectionLost(Failure(ConnectionDone()))


class GentleCloseTransportTests(SynchronousTestCase):
    """
    The cut after a gentle close works on any transport.
    """

    def answer(self, transport: LenientTransport) -> Clock:
        clock = Clock()
        factory = EchoServerFactory(ServerLimits(handshake_timeout=5, ping_interval=0), reactor=clock)
        protocol = factory.buildProtocol(_ADDRESS)
        transport.protocol = protocol
        protocol.makeConnection(transport)
        protocol.dataReceived(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertTrue(transport.value().startswith(b"HTTP/1.1 200 "))
        return clock

    def test_transportThatCannotAbort(self) -> None:
        """
        On a transport that cannot abort, the cut closes it as it can.
        """
        transport = _CannotAbort()
        clock = self.answer(transport)
        transport.disconnecting = False
        clock.advance(5)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_lostAtOnce(self) -> None:
        """
        A connection that ends as it is closed leaves no cut waiting.
        """
        clock = self.answer(_LostAtOnce())
        self.assertEqual(clock.getDelayedCalls(), [])


class LingeringPeerTests(SynchronousTestCase, TimerHygiene):
    """
    A connection the server closes gently (it waits for the peer's TLS
    close_notify) ends all the same when the peer never does its part:
    after a grace period of the opening handshake timeout.  Through real
    OpenSSL in memory, on a L{Clock}.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.factory = EchoServerFactory(ServerLimits(handshake_timeout=5, ping_interval=0), reactor=self.clock)
        tlsdir = self.mktemp()
        ca = write_tls_dir(tlsdir)
        self.serverTLS = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(tlsdir)), False, self.factory, clock=self.clock)
        self.serverTLS.protocol = TLSProtocol
        self.clientOptions = client_tls_options("localhost", write_ca_file(self.mktemp(), ca))

    def tearDown(self) -> None:
        self.assertGlobalReactorUntouched()

    def open(self, request: bytes) -> AsksThenFallsSilent:
        """
        Connect a client that sends C{request} and falls silent at the
        answer; pump until nothing more moves.
        """
        clientFactory = Factory.forProtocol(AsksThenFallsSilent)
        clientFactory.request = request  # type: ignore[attr-defined]
        clientTLS = TLSMemoryBIOFactory(self.clientOptions, True, clientFactory, clock=self.clock)
        server = self.serverTLS.buildProtocol(_ADDRESS)
        client = clientTLS.buildProtocol(_ADDRESS)
        self.pump = connect(
            server,
            FakeTransport(server, isServer=True),
            client,
            FallsSilentTransport(client, isServer=False),
            greet=False,
            clock=self.clock,
        )
        self.pump.flush()
        return client.wrappedProtocol

    def assertCutAfterGrace(self) -> None:
        """
        The socket stays for the grace period, waiting for the peer, and
        is gone, with its counts and timers, once it has passed.
        """
        self.assertEqual(self.factory.sockets, 1)
        self.clock.advance(4.9)
        self.pump.flush()
        self.assertEqual(self.factory.sockets, 1)
        self.clock.advance(0.1)
        self.pump.flush()
        factory = self.factory
        self.assertEqual((factory.sockets, len(factory.open_protocols), len(factory.per_address)), (0, 0, 0))
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_silentAfterPlainAnswer(self) -> None:
        """
        A client that asks C{GET /}, gets its answer and says no more is
        cut off after the grace period.
        """
        client = self.open(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        self.assertTrue(client.received.startswith(b"HTTP/1.1 200 OK\r\n"))
        self.assertCutAfterGrace()

    def test_silentAfterItsClose(self) -> None:
        """
        A client that closes its WebSocket, gets the server's reply and
        says no more is cut off after the grace period; a server stopping
        meanwhile no longer waits for it once it is gone.
        """
        client = self.open(upgrade_request() + client_frame(struct.pack(">H", 1000), opcode=8))
        self.assertTrue(client.received.startswith(b"HTTP/1.1 101 "))
        frames = parse_server_frames(client.received.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(frames, [(8, struct.pack(">H", 1000))])
        stopped = self.factory.going_away()
        self.assertNoResult(stopped)
        self.assertCutAfterGrace()
        self.successResultOf(stopped)

    def test_closeWhileEchoesWait(self) -> None:
        """
        A close that arrives while the server has stopped reading, its
        echoes backed up in the transport, has the server read again: the
        peer's goodbye (its TLS close_notify, or the end of TCP) must still
        be read, and the transport no longer resumes a producer it has
        been told to forget.
        """
        transport = LenientTransport()
        protocol = self.factory.buildProtocol(_ADDRESS)
        protocol.makeConnection(transport)
        protocol.dataReceived(upgrade_request())
        verifyObject(IPushProducer, transport.producer)
        transport.producer.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        protocol.dataReceived(client_frame(struct.pack(">H", 1000), opcode=8))
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.producerState, "producing")
        protocol.connectionLost(Failure(ConnectionDone()))
