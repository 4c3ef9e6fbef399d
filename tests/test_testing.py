"""
Tests for L{pingproto.testing.FaultProxy}: its scheduling and closing rules
in memory on a L{MemoryReactorClock}, then on real loopback sockets against
a trivial echo server and against pingproto's own server and client.
"""

from __future__ import annotations

import statistics
from twisted.application.internet import StreamServerEndpointService
from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint, connectProtocol
from twisted.internet.error import (
    ConnectionDone,
    ConnectionLost,
    ConnectionRefusedError,
)
from twisted.internet.interfaces import IHalfCloseableProtocol, IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

import pingproto.testing
from pingproto import PingMonitor, PingResult, ping
from pingproto.client import ConnectionState
from pingproto.server import EchoServerProtocol
from pingproto.session import LossReason
from pingproto.tap import Options, build_service
from pingproto.testing import STOP_GRACE, FaultProxy

from .tlsdir import write_ca_file, write_tls_dir
from .waiting import Conditions, Watcher

_log = Logger()

TARGET = ("127.0.0.1", 4321)


# In memory ------------------------------------------------------------------


class MemoryTransport(StringTransport):
    """
    A L{StringTransport} that also records a half-close and TCP_NODELAY.
    """

    write_closed = False
    no_delay = False

    def loseWriteConnection(self) -> None:
        self.write_closed = True

    def setTcpNoDelay(self, enabled: bool) -> None:
        self.no_delay = enabled


class Link:
    """
    One connection through a proxy on a memory reactor: C{client} is the
    proxy's protocol for the accepted connection, on C{client_tr}; after
    L{connect}, C{server} is its protocol for the target, on C{server_tr}.
    Writing to the proxy is calling C{dataReceived}; what the proxy sends is
    in the transports.
    """

    def __init__(self, memory: MemoryReactorClock) -> None:
        self.memory = memory
        factory = memory.tcpServers[-1][1]
        self.client = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 40000))
        self.client_tr = MemoryTransport()
        self.client.makeConnection(self.client_tr)
        self.attempt = memory.tcpClients[-1]

    def connect(self) -> None:
        host, port, factory, timeout, bind = self.attempt
        self.server = factory.buildProtocol(IPv4Address("TCP", host, port))
        self.server_tr = MemoryTransport()
        self.server.makeConnection(self.server_tr)

    def up(self) -> bytes:
        return self.server_tr.value()

    def down(self) -> bytes:
        return self.client_tr.value()


class MemoryTests(SynchronousTestCase):
    """
    The proxy on a memory reactor, its time driven by hand.
    """

    def setUp(self) -> None:
        self.memory = MemoryReactorClock()
        self.proxy = FaultProxy(self.memory, *TARGET)
        self.listening = self.successResultOf(self.proxy.listen())

    def link(self) -> Link:
        link = Link(self.memory)
        link.connect()
        return link

    def test_publicNames(self) -> None:
        """
        The module's public surface is C{__all__}, and every name in it
        exists.
        """
        self.assertEqual(pingproto.testing.__all__, ["FaultProxy"])
        for name in pingproto.testing.__all__:
            self.assertTrue(hasattr(pingproto.testing, name), name)

    def test_listen(self) -> None:
        """
        C{listen} listens with the endpoint description given (by default
        an ephemeral port on 127.0.0.1) and C{port} is the port bound.
        """
        port, factory, backlog, interface = self.memory.tcpServers[0]
        self.assertEqual((port, interface), (0, "127.0.0.1"))
        self.assertEqual(self.proxy.port, self.listening.getHost().port)

    def test_portBeforeListen(self) -> None:
        """
        Asking for the port of a proxy that never listened is an error,
        not L{None}.
        """
        with self.assertRaises(RuntimeError):
            FaultProxy(self.memory, *TARGET).port

    def test_badArguments(self) -> None:
        """
        A negative, infinite or NaN delay, a port out of range and an
        empty host are refused with L{ValueError}; a delay or a port that
        is not a number, with L{TypeError}, not taken as one.
        """
        for bad in (-0.001, float("inf"), float("nan")):
            with self.assertRaises(ValueError):
                self.proxy.delay_up = bad
            with self.assertRaises(ValueError):
                self.proxy.delay_down = bad
        self.assertEqual((self.proxy.delay_up, self.proxy.delay_down), (0.0, 0.0))
        for port in (0, 65536):
            with self.assertRaises(ValueError):
                FaultProxy(self.memory, "127.0.0.1", port)
        with self.assertRaises(ValueError):
            FaultProxy(self.memory, "", 1234)
        for not_a_port in (1234.5, True, "1234"):
            with self.assertRaises(TypeError):
                FaultProxy(self.memory, "127.0.0.1", not_a_port)  # type: ignore[arg-type]
        for not_a_delay in ("0.05", True, None):
            with self.assertRaises(TypeError):
                self.proxy.delay_up = not_a_delay  # type: ignore[assignment]
        self.proxy.delay_up = 1
        self.assertEqual(self.proxy.delay_up, 1.0)

    def test_readingWaitsForTarget(self) -> None:
        """
        An accepted connection is paused until the connection to the
        target is made; bytes that arrive meanwhile are held and forwarded,
        in order, once it is; then reading resumes.  Both sides get
        TCP_NODELAY.
        """
        link = Link(self.memory)
        self.assertEqual(link.attempt[:2], TARGET)
        self.assertEqual(link.client_tr.producerState, "paused")
        self.assertEqual(self.proxy.connections, 1)
        link.client.dataReceived(b"early ")
        link.client.dataReceived(b"bytes")
        link.connect()
        self.assertEqual(link.up(), b"early bytes")
        self.assertEqual(link.client_tr.producerState, "producing")
        self.assertTrue(link.client_tr.no_delay)
        self.assertTrue(link.server_tr.no_delay)

    def test_zeroDelayWritesThrough(self) -> None:
        """
        With no delay, bytes are written straight through in both
        directions, with no timer scheduled.
        """
        link = self.link()
        link.client.dataReceived(b"up")
        link.server.dataReceived(b"down")
        self.assertEqual((link.up(), link.down()), (b"up", b"down"))
        self.assertEqual(self.memory.getDelayedCalls(), [])

    def test_delayIsPerChunk(self) -> None:
        """
        Each chunk is delivered exactly C{delay_up} after it arrived, not
        batched with its neighbours.
        """
        self.proxy.delay_up = 0.5
        link = self.link()
        link.client.dataReceived(b"a")
        self.memory.advance(0.2)
        link.client.dataReceived(b"b")
        self.memory.advance(0.299)
        self.assertEqual(link.up(), b"")
        self.memory.advance(0.001)
        self.assertEqual(link.up(), b"a")
        self.memory.advance(0.199)
        self.assertEqual(link.up(), b"a")
        self.memory.advance(0.001)
        self.assertEqual(link.up(), b"ab")
        self.assertEqual(link.down(), b"")

    def test_directionsAreIndependent(self) -> None:
        """
        C{delay_down} delays only what the target sends, C{delay_up} only
        what the client sends.
        """
        self.proxy.delay_down = 1.0
        link = self.link()
        link.server.dataReceived(b"down")
        link.client.dataReceived(b"up")
        self.assertEqual((link.up(), link.down()), (b"up", b""))
        self.memory.advance(1.0)
        self.assertEqual(link.down(), b"down")

    def test_loweringDelayKeepsOrder(self) -> None:
        """
        A delay lowered while chunks wait applies to chunks arriving from
        then on, and they never overtake earlier ones: a chunk is due at
        the later of its own delay and the previous chunk's due time.
        """
        self.proxy.delay_up = 1.0
        link = self.link()
        link.client.dataReceived(b"1")
        self.memory.advance(0.1)
        self.proxy.delay_up = 0.0
        link.client.dataReceived(b"2")
        self.assertEqual(link.up(), b"")
        self.memory.advance(0.9)
        self.assertEqual(link.up(), b"12")
        link.client.dataReceived(b"3")
        self.assertEqual(link.up(), b"123")

    def test_raisingDelayWhileRunning(self) -> None:
        """
        A delay raised while running applies to the next chunk, leaving
        chunks already queued at their own time.
        """
        self.proxy.delay_down = 0.1
        link = self.link()
        link.server.dataReceived(b"x")
        self.proxy.delay_down = 1.0
        link.server.dataReceived(b"y")
        self.memory.advance(0.1)
        self.assertEqual(link.down(), b"x")
        self.memory.advance(0.9)
        self.assertEqual(link.down(), b"xy")

    def test_stallHoldsAndResumeDelivers(self) -> None:
        """
        While stalled nothing is forwarded either way and no timer runs,
        but the connection stays open; on resume what arrived is delivered
        in order.
        """
        link = self.link()
        self.proxy.stall()
        self.assertTrue(self.proxy.stalled)
        for chunk in (b"a", b"b", b"c"):
            link.client.dataReceived(chunk)
            link.server.dataReceived(chunk.upper())
        self.memory.advance(100)
        self.assertEqual((link.up(), link.down()), (b"", b""))
        self.assertEqual(self.memory.getDelayedCalls(), [])
        self.assertEqual(self.proxy.connections, 1)
        self.assertFalse(link.client_tr.disconnecting or link.server_tr.disconnecting)
        self.proxy.resume()
        self.assertEqual((link.up(), link.down()), (b"abc", b"ABC"))

    def test_stallHoldsDelayedChunks(self) -> None:
        """
        A chunk whose delay ends during a stall is delivered on resume; one
        whose delay ends after the resume is delivered at its own time.
        """
        self.proxy.delay_up = 1.0
        link = self.link()
        link.client.dataReceived(b"a")  # due at 1.0
        self.memory.advance(0.5)
        self.proxy.stall()
        self.memory.advance(1.0)
        link.client.dataReceived(b"b")  # due at 2.5
        self.memory.advance(0.5)
        self.assertEqual(link.up(), b"")
        self.proxy.resume()  # at 2.0
        self.assertEqual(link.up(), b"a")
        self.memory.advance(0.5)
        self.assertEqual(link.up(), b"ab")

    def test_halfCloseFollowsQueuedData(self) -> None:
        """
        A half-close from the client reaches the target after the bytes
        sent before it (and after the same delay); the target's own
        half-close then reaches the client, and each side, closed both
        ways, is closed.
        """
        self.proxy.delay_up = 1.0
        link = self.link()
        link.client.dataReceived(b"last words")
        link.client.readConnectionLost()
        self.memory.advance(0.999)
        self.assertFalse(link.server_tr.write_closed)
        self.memory.advance(0.001)
        self.assertEqual(link.up(), b"last words")
        self.assertTrue(link.server_tr.write_closed)
        self.assertFalse(link.server_tr.disconnecting)
        link.server.dataReceived(b"reply")
        link.server.readConnectionLost()
        self.assertTrue(link.server_tr.disconnecting)
        self.assertEqual(link.down(), b"reply")
        self.assertTrue(link.client_tr.disconnecting)

    def test_closeFollowsQueuedData(self) -> None:
        """
        When the target's connection is gone, the client's is closed after
        the bytes the target sent before it; bytes still on their way to
        the target are dropped.  The pair is forgotten once both are closed.
        """
        self.proxy.delay_down = 1.0
        self.proxy.delay_up = 1.0
        link = self.link()
        link.client.dataReceived(b"never arrives")
        link.server.dataReceived(b"goodbye")
        link.server.connectionLost(Failure(ConnectionDone()))
        self.memory.advance(0.5)
        self.assertFalse(link.client_tr.disconnecting)
        self.memory.advance(0.5)
        self.assertEqual(link.down(), b"goodbye")
        self.assertTrue(link.client_tr.disconnecting)
        self.assertEqual(link.up(), b"")
        self.assertEqual(self.proxy.connections, 1)
        link.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.proxy.connections, 0)
        self.assertEqual(self.memory.getDelayedCalls(), [])

    def test_clientGoneWhileConnecting(self) -> None:
        """
        A client that goes away before the target answers cancels the
        connection attempt.
        """
        link = Link(self.memory)
        connector = self.memory.connectors[-1]
        link.client.connectionLost(Failure(ConnectionLost()))
        self.assertTrue(connector.stoppedConnecting)
        self.assertEqual(self.proxy.connections, 0)

    def test_refusedTargetClosesClient(self) -> None:
        """
        When the target refuses, the client's connection is closed.
        """
        link = Link(self.memory)
        factory = link.attempt[2]
        refused = Failure(ConnectionRefusedError())
        factory.clientConnectionFailed(self.memory.connectors[-1], refused)
        self.assertTrue(link.client_tr.disconnecting)
        link.client.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.proxy.connections, 0)

    def test_backpressure(self) -> None:
        """
        When one side's transport cannot keep up, reading from the other
        side pauses until it can; the proxy unregisters before closing, and
        a stop of its producer never closes the other side.
        """
        link = self.link()
        link.server_tr.producer.pauseProducing()
        self.assertEqual(link.client_tr.producerState, "paused")
        link.server_tr.producer.resumeProducing()
        self.assertEqual(link.client_tr.producerState, "producing")
        link.client_tr.producer.pauseProducing()
        self.assertEqual(link.server_tr.producerState, "paused")
        link.client_tr.producer.stopProducing()
        self.assertEqual(link.server_tr.producerState, "producing")
        self.assertFalse(link.server_tr.disconnecting)
        link.server.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(link.client_tr.producer)
        self.assertTrue(link.client_tr.disconnecting)

    def test_cutAbortsBothSides(self) -> None:
        """
        C{cut} aborts both connections of every pair at once, dropping
        queued bytes and timers; the pair no longer counts; a connection
        accepted afterwards works.
        """
        self.proxy.delay_up = 1.0
        link = self.link()
        link.client.dataReceived(b"dropped")
        self.proxy.cut()
        self.assertTrue(link.client_tr.disconnected)
        self.assertTrue(link.server_tr.disconnected)
        self.assertEqual(self.proxy.connections, 0)
        self.assertEqual(self.memory.getDelayedCalls(), [])
        link.client.connectionLost(Failure(ConnectionLost()))
        link.server.connectionLost(Failure(ConnectionLost()))
        self.assertEqual(link.up(), b"")
        self.proxy.delay_up = 0.0
        again = self.link()
        again.client.dataReceived(b"fresh")
        self.assertEqual(again.up(), b"fresh")
        self.assertEqual(self.proxy.connections, 1)

    def test_stopClosesEverything(self) -> None:
        """
        C{stop} stops listening, closes both sides of every pair and of a
        pair still connecting, refuses connections accepted meanwhile, and
        fires only once every connection is closed.
        """
        stopped: list[bool] = []
        self.listening.stopListening = lambda: stopped.append(True)
        link = self.link()
        pending = Link(self.memory)
        d = self.proxy.stop()
        self.assertNoResult(d)
        self.assertEqual(stopped, [True])
        self.assertTrue(link.client_tr.disconnecting and link.server_tr.disconnecting)
        self.assertTrue(pending.client_tr.disconnecting)
        self.assertIsNone(self.memory.tcpServers[0][1].buildProtocol(None))
        link.client.connectionLost(Failure(ConnectionDone()))
        link.server.connectionLost(Failure(ConnectionDone()))
        self.assertNoResult(d)
        pending.client.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.proxy.connections, 0)


    def test_stopAbortsWhatDoesNotClose(self) -> None:
        """
        A connection whose gentle close does not finish (a peer that reads
        nothing never takes the last bytes) is aborted after
        L{STOP_GRACE} seconds, so that C{stop} fires; one that closes in
        time is not.
        """
        link = self.link()
        d = self.proxy.stop()
        self.memory.advance(STOP_GRACE - 0.01)
        # StringTransport's abortConnection sets "disconnected" (its
        # docstring says "aborted").
        self.assertFalse(link.client_tr.disconnected or link.server_tr.disconnected)
        self.assertNoResult(d)
        self.memory.advance(0.01)
        self.assertTrue(link.client_tr.disconnected and link.server_tr.disconnected)
        link.client.connectionLost(Failure(ConnectionDone()))
        link.server.connectionLost(Failure(ConnectionDone()))
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(self.memory.getDelayedCalls(), [])


# On loopback ------------------------------------------------------------------


@implementer(IHalfCloseableProtocol)
class ClosesWhenPeerDoes(Protocol):
    """
    Ends the connection once the other end has half-closed it.
    """

    def readConnectionLost(self) -> None:
        self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass


class Echo(ClosesWhenPeerDoes):
    """
    Echo everything, recording it; when the peer half-closes, close.
    """

    def connectionMade(self) -> None:
        self.received = bytearray()
        self.factory.live.add(self)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.transport.write(data)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.factory.live.discard(self)
        self.factory.waiters.check()


class EchoFactory(Factory):
    protocol = Echo

    def __init__(self) -> None:
        self.live: set[Echo] = set()
        self.all: list[Echo] = []
        self.waiters = Conditions()

    def buildProtocol(self, addr: object) -> Protocol:
        echo = super().buildProtocol(addr)
        self.all.append(echo)
        return echo


class Client(ClosesWhenPeerDoes):
    """
    Collect what comes back; close when the other end half-closes.
    """

    def __init__(self) -> None:
        self.received = bytearray()
        self.reason: Failure | None = None
        self.lost: Deferred[None] = Deferred()
        self.waiters = Conditions()

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self.waiters.check()

    def receivedAtLeast(self, n: int) -> Deferred[None]:
        return self.waiters.until(lambda: len(self.received) >= n)

    def connectionLost(self, reason: Failure) -> None:
        self.reason = reason
        self.lost.callback(None)


def pattern(size: int, seed: int) -> bytes:
    """
    C{size} bytes of every value, in an order that differs by C{seed}.
    """
    return bytes((i * 7 + seed * 13 + (i >> 8)) & 0xFF for i in range(size))


class EchoLoopbackTests(TestCase):
    """
    The proxy on 127.0.0.1, in front of an echo server on 127.0.0.1.
    """

    @inlineCallbacks
    def setUp(self):  # type: ignore[no-untyped-def]
        self.echo = EchoFactory()
        echoPort = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(self.echo)
        self.addCleanup(echoPort.stopListening)
        self.addCleanup(lambda: self.echo.waiters.until(lambda: not self.echo.live))
        self.clients: list[Client] = []
        self.addCleanup(lambda: gatherResults([c.lost for c in self.clients]))
        self.proxy = FaultProxy(reactor, "127.0.0.1", echoPort.getHost().port)
        yield self.proxy.listen()
        self.addCleanup(self.proxy.stop)

    def connect(self) -> Deferred[Client]:
        client = Client()
        self.clients.append(client)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.proxy.port)
        return connectProtocol(endpoint, client)

    @inlineCallbacks
    def roundTrip(self, size: int, chunk: int):  # type: ignore[no-untyped-def]
        client = yield self.connect()
        sent = pattern(size, seed=len(self.clients))
        for start in range(0, size, chunk):
            client.transport.write(sent[start : start + chunk])
        yield client.receivedAtLeast(size)
        self.assertEqual(len(self.echo.all), len(self.clients))
        self.assertEqual(bytes(self.echo.all[-1].received), sent)
        self.assertEqual(bytes(client.received), sent)
        return client

    @inlineCallbacks
    def test_bytesPassUnchanged(self):  # type: ignore[no-untyped-def]
        """
        A megabyte of every byte value, written in 4 KiB pieces, reaches the
        server unchanged and in order, and comes back the same way.
        """
        yield self.roundTrip(1 << 20, 4096)

    @inlineCallbacks
    def test_bytesPassUnchangedWhenDelayed(self):  # type: ignore[no-untyped-def]
        """
        With different delays each way, bytes still arrive unchanged and in
        order in both directions.
        """
        self.proxy.delay_up = 0.01
        self.proxy.delay_down = 0.02
        yield self.roundTrip(64 * 1024, 1000)

    @inlineCallbacks
    def test_halfClose(self):  # type: ignore[no-untyped-def]
        """
        A client that half-closes after sending gets the whole echo, then a
        clean close: the FIN went through after the data, and the server's
        close came back after its reply.
        """
        self.proxy.delay_up = 0.01
        client = yield self.connect()
        client.transport.write(b"request")
        client.transport.loseWriteConnection()
        yield client.lost
        reason = client.reason
        self.assertEqual(bytes(client.received), b"request")
        self.assertTrue(reason.check(ConnectionDone), reason)

    @inlineCallbacks
    def test_cut(self):  # type: ignore[no-untyped-def]
        """
        C{cut} resets the connection (the client and the server both see
        a lost connection, not a clean close), and new connections through
        the proxy work afterwards.
        """
        client = yield self.roundTrip(10, 10)
        self.proxy.cut()
        self.assertEqual(self.proxy.connections, 0)
        yield client.lost
        reason = client.reason
        self.assertTrue(reason.check(ConnectionLost), reason)
        self.assertFalse(reason.check(ConnectionDone), reason)
        yield self.echo.waiters.until(lambda: not self.echo.live)
        self.assertTrue(self.echo.all[0].reason.check(ConnectionLost), self.echo.all[0].reason)
        yield self.roundTrip(10, 10)
        self.assertEqual(self.proxy.connections, 1)

    @inlineCallbacks
    def test_stop(self):  # type: ignore[no-untyped-def]
        """
        C{stop} closes every connection pair and the listening port, and
        fires once they are closed; nothing more is accepted.  (Trial checks
        that no socket or timer is left behind.)
        """
        client = yield self.roundTrip(10, 10)
        yield self.proxy.stop()
        self.assertEqual(self.proxy.connections, 0)
        yield client.lost
        self.assertTrue(client.reason.check(ConnectionDone, ConnectionLost), client.reason)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.proxy.port)
        yield self.assertFailure(connectProtocol(endpoint, Protocol()), ConnectionRefusedError)

    @inlineCallbacks
    def test_refusedTarget(self):  # type: ignore[no-untyped-def]
        """
        When nothing listens at the target, the client's connection to the
        proxy is closed, and the proxy forgets it.
        """
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(Factory())
        closedPort = port.getHost().port
        yield port.stopListening()
        proxy = FaultProxy(reactor, "127.0.0.1", closedPort)
        yield proxy.listen()
        self.addCleanup(proxy.stop)
        client = Client()
        self.clients.append(client)
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", proxy.port), client)
        yield client.lost
        self.assertTrue(client.reason.check(ConnectionDone, ConnectionLost), client.reason)
        self.assertEqual(client.received, b"")
        self.assertEqual(proxy.connections, 0)


class TrackedEchoProtocol(EchoServerProtocol):
    """
    pingproto's echo protocol, telling the test when its connection closes.
    """

    def connectionMade(self) -> None:
        self.factory.live.add(self)
        super().connectionMade()

    def connectionLost(self, reason: Failure) -> None:
        super().connectionLost(reason)
        self.factory.live.discard(self)
        self.factory.waiters.check()


def median_rtt(result: PingResult) -> float:
    return statistics.median(s.rtt for s in result.samples)


class ProxiedServerTestCase(TestCase):
    """
    The server C{twistd pingproto --listen tcp:0:interface=127.0.0.1} runs
    (with C{--tls-dir} when C{tls} is set), behind a L{FaultProxy}, with
    pingproto's client pinging through it: what a user of this module does.
    """

    tls = False

    @inlineCallbacks
    def setUp(self):  # type: ignore[no-untyped-def]
        args = ["--listen", "tcp:0:interface=127.0.0.1"]
        self.caFile = None
        if self.tls:
            tlsdir = self.mktemp()
            self.caFile = write_ca_file(self.mktemp(), write_tls_dir(tlsdir))
            args += ["--tls-dir", tlsdir]
        options = Options()
        options.parseOptions(args)
        service = build_service(options)
        service.factory.protocol = TrackedEchoProtocol
        service.factory.live = set()
        service.factory.waiters = self.server = Conditions()
        self.serverLive = service.factory.live
        service.startService()
        self.addCleanup(service.stopService)
        self.addCleanup(lambda: self.server.until(lambda: not self.serverLive))
        listener = next(s for s in service if isinstance(s, StreamServerEndpointService))
        # Not yielded directly: that would take the port away from the
        # service, which then could not stop listening.
        bound: Deferred[IListeningPort] = Deferred()
        listener._waitingForPort.addCallback(lambda port: bound.callback(port) or port)
        listening = yield bound
        self.proxy = FaultProxy(reactor, "127.0.0.1", listening.getHost().port)
        yield self.proxy.listen()
        self.addCleanup(self.proxy.stop)
        # By name over TLS, where the certificate must match it.
        where = f"localhost:{self.proxy.port}" if self.tls else f"127.0.0.1:{self.proxy.port}"
        self.url = f"{'wss' if self.tls else 'ws'}://{where}/"


class PingprotoTLSLoopbackTests(ProxiedServerTestCase):
    """
    The same over wss://, with certificates made by C{trustme}.
    """

    tls = True

    @inlineCallbacks
    def test_tlsPassesThrough(self):  # type: ignore[no-untyped-def]
        """
        TLS passes through the proxy untouched: the client connects to the
        proxy by the server's name, verifies the server's certificate, and
        the delays apply to the encrypted stream.
        """
        self.proxy.delay_up = self.proxy.delay_down = 0.02
        result = yield ping(self.url, 3, interval=0.1, timeout=2.0, ca_file=self.caFile)
        self.assertEqual([s.seq for s in result.samples], [1, 2, 3])
        self.assertEqual(result.losses, [])
        self.assertGreaterEqual(min(s.rtt for s in result.samples), 0.040)


class PingprotoLoopbackTests(ProxiedServerTestCase):
    """
    Delay, stall and cut, as pingproto's client sees them.
    """

    def monitor(self, watcher: Watcher, timeout: float = 2.0) -> PingMonitor:
        monitor = PingMonitor(
            self.url,
            watcher,
            interval=0.05,
            timeout=timeout,
            retry_policy=lambda failures: 0.01,
        )
        monitor.startService()
        self.addCleanup(monitor.stopService)
        return monitor

    @inlineCallbacks
    def test_stall(self):  # type: ignore[no-untyped-def]
        """
        While the proxy is stalled, pings time out as losses but the TCP
        connection and the WebSocket stay open; on resume the buffered
        pings reach the server (their late echoes come back unmatched) and
        pings are answered again.
        """
        watcher = Watcher()
        monitor = self.monitor(watcher, timeout=0.3)
        yield watcher.when(lambda r: len(r.samples) >= 2)
        self.proxy.stall()
        states = len(watcher.result.states)
        yield watcher.when(lambda r: len(r.losses) >= 2)
        lost = len(watcher.result.losses)
        self.assertEqual({loss.reason for loss in watcher.result.losses}, {LossReason.TIMEOUT})
        self.assertEqual(self.proxy.connections, 1)
        self.assertEqual(watcher.result.states[states:], [])
        self.assertEqual(watcher.result.states[-1].state, ConnectionState.OPEN)
        self.assertEqual(monitor.session.unmatched, 0)
        answered = len(watcher.result.samples)
        self.proxy.resume()
        yield watcher.when(
            lambda r: monitor.session.unmatched >= lost and len(r.samples) > answered
        )
        self.assertEqual(self.proxy.connections, 1)
        self.assertEqual(watcher.result.states[states:], [])

    @inlineCallbacks
    def test_cut(self):  # type: ignore[no-untyped-def]
        """
        After C{cut} the client sees its connection lost (any ping in flight
        is lost to the disconnect, any due before it is back as not
        connected), reconnects through the proxy, and is answered again.
        """
        watcher = Watcher()
        monitor = self.monitor(watcher)
        yield watcher.when(lambda r: len(r.samples) >= 1)
        # Hold the next ping in the proxy, so that one is in flight at the
        # cut: the session's sends are checked on the next reactor turn.
        self.proxy.stall()
        session = monitor.session
        send = session.send

        def sent(now: float, wall_ms: int) -> bytes:
            reactor.callLater(0, watcher.waiters.check)
            return send(now, wall_ms)

        self.patch(session, "send", sent)
        yield watcher.when(lambda r: session.outstanding >= 1)
        self.proxy.cut()
        self.proxy.resume()
        answered = len(watcher.result.samples)
        yield watcher.when(lambda r: r.states[-1].state == ConnectionState.CLOSED)
        yield watcher.when(lambda r: len(r.samples) > answered)
        self.assertEqual([c.state for c in watcher.result.states].count(ConnectionState.OPEN), 2)
        reasons = {loss.reason for loss in watcher.result.losses}
        self.assertIn(LossReason.DISCONNECT, reasons)
        self.assertLessEqual(reasons, {LossReason.DISCONNECT, LossReason.NOT_CONNECTED})
        self.assertEqual(self.proxy.connections, 1)
