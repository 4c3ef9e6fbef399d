"""
The whole server, built as C{twistd pingproto} builds it, listening on
127.0.0.1 with certificates made here, and real clients on the same reactor.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, wrapClientTLS
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import Certificate, optionsForClientTLS, trustRootFromCertificates
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import TestCase
from twisted.web.client import ResponseNeverReceived

from pingproto import ConnectionState, HandshakeError, ping
from pingproto.client import client_endpoint
from pingproto.config import ServerLimits
from pingproto.server import PLAIN_ANSWER, EchoServerProtocol
from pingproto.tap import Options, build_service

from .tlsdir import write_ca_file, write_tls_dir


class Collect(Protocol):
    """
    Send a request and collect everything until the server closes.
    """

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.received = b""
        self.done: Deferred[bytes] = Deferred()

    def connectionMade(self) -> None:
        self.transport.write(self.request)

    def dataReceived(self, data: bytes) -> None:
        self.received += data

    def connectionLost(self, reason: Failure) -> None:
        self.negotiated = getattr(self.transport, "negotiatedProtocol", None)
        self.done.callback(self.received)


class Exchange(WebSocketClientProtocol):
    """
    Send the factory's messages once open, collect the replies, then close;
    fires C{factory.done} with (replies, close code).
    """

    def onOpen(self) -> None:
        self.replies: list[tuple[bytes, bool]] = []
        for payload, isBinary in self.factory.messages:
            self.sendMessage(payload, isBinary)
        if not self.factory.messages:
            self.sendClose(1000)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.replies.append((payload, isBinary))
        if len(self.replies) == len(self.factory.messages):
            self.sendClose(1000)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self.factory.done.called:
            self.factory.done.callback((getattr(self, "replies", []), code))


class ServerTestCase(TestCase):
    """
    Runs the server of C{twistd pingproto --listen tcp:0:... --tls-dir DIR}.
    """

    tls = True
    intermediate = False
    extra: list[str] = []

    def setUp(self) -> None:
        args = ["--listen", "tcp:0:interface=127.0.0.1", *self.extra]
        if self.tls:
            tlsdir, self.ca = self.make_tls_dir()
            self.caFile = write_ca_file(self.mktemp(), self.ca)
            args += ["--tls-dir", tlsdir]
        options = Options()
        options.parseOptions(args)
        self.service = build_service(options)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        # A TCP listener is bound by the time startService returns.
        self.port = self.service.listeners[0].port.getHost().port

    def make_tls_dir(self):  # type: ignore[no-untyped-def]
        """
        A TLS directory for the server, and the CA that issued it.
        """
        tlsdir = self.mktemp()
        return tlsdir, write_tls_dir(tlsdir, intermediate=self.intermediate)

    def url(self, path: str = "/", host: str = "localhost") -> str:
        return f"{'wss' if self.tls else 'ws'}://{host}:{self.port}{path}"

    def exchange(self, messages: list[tuple[bytes, bool]], path: str = "/") -> Deferred:
        factory = WebSocketClientFactory(self.url(path))
        factory.protocol = Exchange
        factory.messages = messages
        factory.done = Deferred()
        endpoint = client_endpoint(reactor, self.url(path), getattr(self, "caFile", None))
        return endpoint.connect(factory).addCallback(lambda _: factory.done)

    def plain(self, request: bytes, alpn: list[bytes] | None = None) -> Deferred[bytes]:
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.port)
        if self.tls:
            options = optionsForClientTLS(
                "localhost",
                trustRootFromCertificates([Certificate.loadPEM(self.ca.cert_pem.bytes())]),
                acceptableProtocols=alpn,
            )
            endpoint = wrapClientTLS(options, endpoint)
        self.collector = Collect(request)
        return connectProtocol(endpoint, self.collector).addCallback(lambda _: self.collector.done)


class TLSServerTests(ServerTestCase):
    @inlineCallbacks
    def test_pingOverWss(self):  # type: ignore[no-untyped-def]
        """
        The project's client pings the server over wss://, verifying its
        certificate against the test CA, and gets a round-trip time for
        every ping.
        """
        result = yield ping(self.url(), 3, interval=0.05, timeout=2.0, ca_file=self.caFile)
        self.assertEqual([s.seq for s in result.samples], [1, 2, 3])
        self.assertEqual(result.losses, [])
        self.assertGreater(result.summary.min, 0.0)
        self.assertLess(result.summary.max, 1.0)
        self.assertEqual(result.states[1].state, ConnectionState.OPEN)
        self.assertGreater(result.states[1].setup_time, 0.0)
        self.assertEqual(result.states[-1].state, ConnectionState.CLOSED)

    @inlineCallbacks
    def test_pingByAddress(self):  # type: ignore[no-untyped-def]
        """
        A certificate for 127.0.0.1 verifies when the URL names the address.
        """
        result = yield ping(self.url(host="127.0.0.1"), 1, timeout=2.0, ca_file=self.caFile)
        self.assertEqual(len(result.samples), 1)

    @inlineCallbacks
    def test_classicPath(self):  # type: ignore[no-untyped-def]
        """
        The classic page's /sock/websocket path echoes too.
        """
        result = yield ping(self.url("/sock/websocket"), 2, interval=0.05, ca_file=self.caFile)
        self.assertEqual(len(result.samples), 2)

    @inlineCallbacks
    def test_textAndBinaryEcho(self):  # type: ignore[no-untyped-def]
        """
        Text comes back as text and binary as binary, byte for byte, in
        order.
        """
        messages = [(b"1700000000123", False), (bytes(range(256)), True), ("h\u00e9".encode(), False)]
        replies, code = yield self.exchange(messages)
        self.assertEqual(replies, messages)
        self.assertEqual(code, 1000)

    @inlineCallbacks
    def test_oversizedMessage(self):  # type: ignore[no-untyped-def]
        """
        A message over the 16 MiB default limit is answered with close code
        1009, and the server keeps serving others.
        """
        replies, code = yield self.exchange([(b"x" * (ServerLimits().max_message_size + 1), True)])
        self.assertEqual((replies, code), ([], 1009))
        result = yield ping(self.url(), 1, ca_file=self.caFile)
        self.assertEqual(len(result.samples), 1)

    @inlineCallbacks
    def test_plainHttpsAnswer(self):  # type: ignore[no-untyped-def]
        """
        A plain HTTPS GET, to / or anywhere else, gets 200 and the hint.
        """
        for path in (b"/", b"/favicon.ico"):
            response = yield self.plain(b"GET " + path + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
            self.assertTrue(response.startswith(b"HTTP/1.1 200 OK\r\n"))
            self.assertTrue(response.endswith(b"\r\n\r\n" + PLAIN_ANSWER))

    @inlineCallbacks
    def test_browserAlpn(self):  # type: ignore[no-untyped-def]
        """
        A browser offering h2 before http/1.1 is given http/1.1, which a
        WebSocket upgrade needs, and gets its answer.
        """
        response = yield self.plain(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", alpn=[b"h2", b"http/1.1"])
        self.assertEqual(self.collector.negotiated, b"http/1.1")
        self.assertTrue(response.endswith(PLAIN_ANSWER))

    @inlineCallbacks
    def test_plainWsToTlsServer(self):  # type: ignore[no-untyped-def]
        """
        A ws:// URL for a TLS port fails at once with a handshake error
        that suggests wss://, not a bare "peer dropped the TCP connection".
        """
        d = ping(self.url().replace("wss://", "ws://"), 1, give_up_after=1)
        failure = yield self.assertFailure(d, HandshakeError)
        self.assertIn("wss://", str(failure))

    @inlineCallbacks
    def test_untrustedCertificate(self):  # type: ignore[no-untyped-def]
        """
        A client that trusts another CA refuses the server's certificate,
        and L{ping} fails with the TLS error rather than hanging.
        """
        from OpenSSL.SSL import Error as SSLError

        otherCa = write_ca_file(self.mktemp(), write_tls_dir(self.mktemp()))
        d = ping(self.url(), 1, ca_file=otherCa, give_up_after=1)
        failure = yield self.assertFailure(d, SSLError, ResponseNeverReceived, ConnectionError)
        self.assertIn("certificate verify failed", str(failure))


class IntermediateChainTests(ServerTestCase):
    """
    A certificate issued by an intermediate CA, whose certificate is in
    ca.pem.
    """

    intermediate = True

    @inlineCallbacks
    def test_clientTrustingOnlyRootVerifies(self):  # type: ignore[no-untyped-def]
        """
        The server sends the intermediate, so a client that trusts only the
        root verifies the chain.
        """
        result = yield ping(self.url(), 1, ca_file=self.caFile)
        self.assertEqual(len(result.samples), 1)


class LoggingTests(ServerTestCase):
    tls = False

    @inlineCallbacks
    def test_oneLineLogged(self):  # type: ignore[no-untyped-def]
        """
        A WebSocket is logged in one line at info when it ends, with the
        peer, the path, how long it was open and the close code; the
        messages in between are not logged, nor the client factory's
        start and stop (Twisted's "Starting factory <...>" lines).
        """
        events: list[dict] = []
        serverClosed: Deferred[None] = Deferred()

        def observe(event: dict) -> None:
            events.append(event)
            if "closed: code" in event.get("log_format", "") and not serverClosed.called:
                serverClosed.callback(None)

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        yield ping(self.url("/sock/websocket"), 3, interval=0.02)
        yield serverClosed
        ours = [formatEvent(e) for e in events if e.get("log_namespace", "").startswith("pingproto.server")]
        self.assertEqual(len(ours), 1, ours)
        self.assertEqual([formatEvent(e) for e in events if "PingClientFactory" in formatEvent(e)], [])
        self.assertRegex(
            ours[0], r"^tcp4:127\.0\.0\.1:\d+ at /sock/websocket, open \d+\.\d s, closed: code 1000 \(done\)$"
        )
        self.assertTrue(all(e["log_level"] == LogLevel.info for e in events if e.get("log_namespace", "").startswith("pingproto.server")))
        # Three pings 20 ms apart: open at least 40 ms.
        closed = [e for e in events if "closed: code" in e.get("log_format", "")]
        self.assertTrue(0.04 <= closed[0]["seconds"] < 10, closed[0]["seconds"])


class PlainServerTests(ServerTestCase):
    tls = False

    @inlineCallbacks
    def test_pingOverWs(self):  # type: ignore[no-untyped-def]
        """
        Without a TLS dir the server speaks ws:// on loopback.
        """
        result = yield ping(self.url(), 2, interval=0.05)
        self.assertEqual(len(result.samples), 2)

    @inlineCallbacks
    def test_plainHttpAnswer(self):  # type: ignore[no-untyped-def]
        """
        A plain HTTP/1.0 GET gets the hint.
        """
        response = yield self.plain(b"GET / HTTP/1.0\r\n\r\n")
        self.assertTrue(response.endswith(PLAIN_ANSWER))

    @inlineCallbacks
    def test_serverGoneAfterOpen(self):  # type: ignore[no-untyped-def]
        """
        When the server goes away after the WebSocket opened, L{ping}
        retries C{give_up_after} times, then fires with what came back
        until then instead of waiting for ever.
        """
        service = self.service

        class StopAfterOneEcho(EchoServerProtocol):
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                super().onMessage(payload, isBinary)
                if service.running:
                    reactor.callLater(0, service.stopService)

        self.service.listeners[0].factory.protocol = StopAfterOneEcho
        result = yield ping(self.url(), 5, interval=0.5, give_up_after=1)
        self.assertEqual([s.seq for s in result.samples], [1])
        self.assertEqual(
            [change.state for change in result.states[1:]],
            [
                ConnectionState.OPEN,
                ConnectionState.CLOSING,
                ConnectionState.CLOSED,
                ConnectionState.CONNECTING,
                ConnectionState.CLOSED,
            ],
        )
        result.states[-1].reason.trap(ConnectionRefusedError)

    @inlineCallbacks
    def test_refusedConnection(self):  # type: ignore[no-untyped-def]
        """
        When nothing listens, L{ping} fails with the refusal after
        C{give_up_after} attempts.
        """
        yield self.service.stopService()
        d = ping(self.url(), 1, give_up_after=1)
        yield self.assertFailure(d, ConnectionRefusedError)
