"""
Tests for L{pingproto.eagerwrite}, and for the paths that write through it:
the WebSocket's sends and the TLS layer's, over real TCP on loopback.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Generator

import trustme
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import PrivateCertificate
from twisted.internet.tcp import Server
from twisted.internet.testing import StringTransport
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from pingproto import ServerLimits
from pingproto.eagerwrite import write_now
from pingproto.server import EchoServerFactory, EchoServerProtocol
from pingproto.tls import ServerTLS, TLSProtocol, client_tls_options, wrap_client_tls
from pingproto.tlsfiles import load_tls_dir

from .test_protocols import client_frame, parse_server_frames, upgrade_request
from .tlsdir import write_tls_dir
from .waiting import Conditions


class _Accepted(Protocol):
    """
    The server side of a connection: keeps what it reads, says when it is
    connected.
    """

    def __init__(self, conditions: Conditions) -> None:
        self.received = b""
        self.conditions = conditions

    def connectionMade(self) -> None:
        self.conditions.check()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.conditions.check()


@implementer(IHandshakeListener)
class _Handshaken(_Accepted):
    """
    A protocol under TLS that says when the TLS handshake is done.
    """

    handshaken = False

    def handshakeCompleted(self) -> None:
        self.handshaken = True
        self.conditions.check()


def _recv_all_now(peer: socket.socket) -> bytes:
    """
    What the kernel holds for C{peer} now, without waiting or letting the
    reactor run: on loopback a send is in the peer's buffer when it returns.
    """
    peer.setblocking(False)
    data = b""
    while True:
        try:
            chunk = peer.recv(1 << 20)
        except BlockingIOError:
            return data
        if not chunk:
            return data
        data += chunk


class _TcpCase(TestCase):
    """
    A Twisted TCP server transport on 127.0.0.1 with a plain socket as its
    peer.
    """

    protocol_class: type[_Accepted] = _Accepted

    @inlineCallbacks
    def connect(self, factory: Factory | None = None) -> Generator[Deferred[Any], Any, tuple[Any, socket.socket]]:
        conditions = Conditions()
        accepted: list[_Accepted] = []

        def build() -> _Accepted:
            protocol = self.protocol_class(conditions)
            accepted.append(protocol)
            return protocol

        port = reactor.listenTCP(0, factory or Factory.forProtocol(build), interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        peer = socket.create_connection(("127.0.0.1", port.getHost().port))
        self.addCleanup(peer.close)
        if factory is None:
            yield conditions.until(lambda: bool(accepted) and accepted[0].transport is not None)
            self.addCleanup(lambda: accepted[0].transport.abortConnection())
            return accepted[0], peer
        return None, peer

    def assertNotWriting(self, transport: Server) -> None:
        """
        C{transport} holds nothing and has not asked the reactor to say when
        it can write: what it was given is with the kernel.
        """
        self.assertEqual((transport.dataBuffer, transport._tempDataLen), (b"", 0))
        self.assertNotIn(transport, reactor.getWriters())  # type: ignore[attr-defined]


class WriteNowTests(_TcpCase):
    """
    L{write_now} sends at once what it can, and leaves the rest to the
    transport without changing the order of bytes.
    """

    @inlineCallbacks
    def test_sentAtOnce(self) -> Generator[Deferred[Any], Any, None]:
        """
        With nothing waiting before it, the bytes are in the peer's socket
        when write_now returns, before the reactor turns, and the transport
        has not registered to write.  Twisted's own write leaves them in
        its buffer until its next turn.
        """
        server, peer = yield self.connect()
        write_now(server.transport, b"now")
        self.assertNotWriting(server.transport)
        self.assertEqual(_recv_all_now(peer), b"now")
        server.transport.write(b"later")
        self.assertEqual(_recv_all_now(peer), b"")
        self.assertIn(server.transport, reactor.getWriters())  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_orderKept(self) -> Generator[Deferred[Any], Any, None]:
        """
        Bytes written before and still in the transport's buffer go first:
        write_now then only adds to the buffer.
        """
        server, peer = yield self.connect()
        server.transport.write(b"first ")
        write_now(server.transport, b"second")
        self.assertEqual(_recv_all_now(peer), b"")
        peer.setblocking(True)
        peer.settimeout(5)
        data = b""
        while len(data) < 12:
            data += yield _read_in_thread(peer)
        self.assertEqual(data, b"first second")

    @inlineCallbacks
    def test_fullSocketBuffer(self) -> Generator[Deferred[Any], Any, None]:
        """
        When the socket takes only part (its peer is not reading), the rest
        waits in the transport as an ordinary write, and the peer gets
        every byte once, in order, when it reads.
        """
        server, peer = yield self.connect()
        server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        data = os.urandom(4 << 20)
        write_now(server.transport, data)
        self.assertGreater(server.transport._tempDataLen, 0, "the socket took 4 MiB at once")
        write_now(server.transport, b"end")
        received = b""
        peer.setblocking(True)
        peer.settimeout(5)
        while len(received) < len(data) + 3:
            received += yield _read_in_thread(peer)
        self.assertEqual(received, data + b"end")

    @inlineCallbacks
    def test_closing(self) -> Generator[Deferred[Any], Any, None]:
        """
        Once the transport is closing (or half-closing), bytes written go
        as Twisted's own write sends them: before the end, then nothing.
        """
        for close in ("loseConnection", "loseWriteConnection"):
            server, peer = yield self.connect()
            getattr(server.transport, close)()
            write_now(server.transport, b"last")
            self.assertEqual(_recv_all_now(peer), b"", close)
            peer.setblocking(True)
            peer.settimeout(5)
            self.assertEqual((yield _read_in_thread(peer)), b"last", close)
            self.assertEqual((yield _read_in_thread(peer)), b"", close)
            write_now(server.transport, b"after")
            self.assertEqual(server.transport._tempDataLen, 0, close)

    @inlineCallbacks
    def test_aborted(self) -> Generator[Deferred[Any], Any, None]:
        """
        Once the transport is aborted, bytes written reach nobody, as with
        Twisted's own write: an abort drops whatever comes after it.
        """
        server, peer = yield self.connect()
        server.transport.abortConnection()
        write_now(server.transport, b"after the abort")
        self.assertEqual(_recv_all_now(peer), b"")

    @inlineCallbacks
    def test_startedTls(self) -> Generator[Deferred[Any], Any, None]:
        """
        Once startTLS has put a TLS layer on the connection, bytes go
        through that layer, never to the socket as they are: the peer,
        which has not even begun a TLS handshake, gets none of them.
        """
        server, peer = yield self.connect()
        ca = trustme.CA()
        issued = ca.issue_cert("localhost")
        pem = issued.private_key_pem.bytes() + issued.cert_chain_pems[0].bytes()
        server.transport.startTLS(PrivateCertificate.loadPEM(pem).options())
        write_now(server.transport, b"a secret in plain text")
        self.assertNotIn(b"secret", _recv_all_now(peer))

    def test_otherTransports(self) -> None:
        """
        A transport that is not Twisted's own TCP connection gets an
        ordinary C{write}.
        """
        transport = StringTransport()
        write_now(transport, b"bytes")
        self.assertEqual(transport.value(), b"bytes")


def _read_in_thread(peer: socket.socket) -> Deferred[bytes]:
    """
    A blocking C{recv} on C{peer}, in a thread, while the reactor runs.
    """
    from twisted.internet.threads import deferToThread

    return deferToThread(peer.recv, 1 << 20)


class WrittenAtOnceTests(_TcpCase):
    """
    The paths that write through L{write_now}: a WebSocket's echo leaves
    within the read that brought the message, and the TLS layer's records
    as soon as they are made.
    """

    protocol_class = _Handshaken

    @inlineCallbacks
    def test_echoWithinTheRead(self) -> Generator[Deferred[Any], Any, None]:
        """
        A message handed to the server's open WebSocket is echoed to the
        socket before C{dataReceived} returns: the transport does not
        register to write.
        """
        conditions = Conditions()
        protocols: list[EchoServerProtocol] = []

        class Connected(EchoServerProtocol):
            def connectionMade(self) -> None:
                super().connectionMade()
                protocols.append(self)
                conditions.check()

        factory = EchoServerFactory(ServerLimits(ping_interval=0))
        factory.protocol = Connected
        _, peer = yield self.connect(factory)
        yield conditions.until(lambda: bool(protocols))
        protocol = protocols[0]
        self.addCleanup(lambda: protocol.transport.abortConnection())
        protocol.dataReceived(upgrade_request())
        peer.settimeout(5)
        self.assertTrue((yield _read_in_thread(peer)).startswith(b"HTTP/1.1 101 "))
        protocol.dataReceived(client_frame(b"1700000000123"))
        self.assertNotWriting(protocol.transport)
        self.assertEqual(parse_server_frames(_recv_all_now(peer)), [(1, b"1700000000123")])

    @inlineCallbacks
    def test_tlsRecordsAtOnce(self) -> Generator[Deferred[Any], Any, None]:
        """
        What the protocol writes under L{TLSProtocol} is with the kernel,
        encrypted, when the write returns.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        conditions = Conditions()
        inner: list[_Handshaken] = []

        def build() -> _Handshaken:
            protocol = _Handshaken(conditions)
            inner.append(protocol)
            return protocol

        factory = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(tlsdir)), False, Factory.forProtocol(build))
        factory.protocol = TLSProtocol
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
        self.addCleanup(port.stopListening)
        endpoint = wrap_client_tls(
            client_tls_options("localhost", os.path.join(tlsdir, "ca.pem")),
            TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port),
        )
        client_conditions = Conditions()
        client = yield endpoint.connect(Factory.forProtocol(lambda: _Accepted(client_conditions)))
        self.addCleanup(lambda: client.transport.abortConnection())
        yield conditions.until(lambda: bool(inner) and inner[0].handshaken)
        tcp = inner[0].transport.transport
        self.assertIsInstance(tcp, Server)
        inner[0].transport.write(b"x" * 100)
        self.assertNotWriting(tcp)
        yield client_conditions.until(lambda: client.received == b"x" * 100)
