"""
Memory stays flat: nothing the server allocates for a message or for a
connection outlives it.  Real wss:// connections on loopback; the
measure is Python's own allocator (L{tracemalloc}) and the objects still
alive, which see a leak long before a process's RSS does.
"""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections import Counter, deque

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from OpenSSL import SSL
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.tcp import Server

from pingproto import ConnectionState, PingMonitor, PingRecorder, StateChange, ping
from pingproto.client import PingClientProtocol, client_endpoint
from pingproto.server import EchoServerProtocol
from pingproto.tls import TLSProtocol

from .test_endtoend import ServerTestCase
from .test_twistd import TwistdCase
from .tlsdir import write_ca_file, write_tls_dir
from .waiting import Conditions, sockets_closed


# The kinds of object the server's stack is made of.  Plain lists, tuples
# and Deferreds are left out: under trial -j each log line becomes a
# command to the test manager (a Deferred, a tuple, ...) kept until the
# test ends, and a leak of ours would hold one of these kinds anyway.
_STACK = ("pingproto.", "autobahn.", "txaio.", "OpenSSL.", "twisted.internet.tcp", "twisted.internet.base",
          "twisted.protocols.", "twisted.web.")


def census() -> Counter[str]:
    """
    How many objects of each kind of the server's stack are alive.
    """
    gc.collect()
    kinds = (f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.get_objects())
    return Counter(kind for kind in kinds if kind.startswith(_STACK))


def alive(kind: type) -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, kind))


class FlatMemoryTests(ServerTestCase):
    timeout = 60
    extra = ["--max-message-rate", "100000"]

    def traced(self) -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    def setUp(self) -> None:
        super().setUp()
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)

    @inlineCallbacks
    def reconnect(self, times: int) -> Deferred[None]:  # type: ignore[misc]
        for _ in range(times):
            result = yield ping(self.url(), 1, timeout=5, ca_file=self.caFile)
            self.assertEqual(len(result.samples), 1)
        # The client is done before the server has seen the connection go.
        yield sockets_closed(self, self.service.factory)

    @inlineCallbacks
    def test_perReconnect(self):  # type: ignore[no-untyped-def]
        """
        After connections that opened, pinged and closed, the server holds
        no protocol and no TLS connection of theirs, and 100 more of them
        leave no kind of object of the server's stack more numerous by even
        one per connection.
        (Bytes are too noisy a measure here: dictionaries in Twisted and
        zope.interface grow and shrink their tables as they please.)
        """
        yield self.reconnect(50)
        before = census()
        yield self.reconnect(100)
        grown = {kind: n - before.get(kind, 0) for kind, n in census().items() if n - before.get(kind, 0) >= 100}
        self.assertEqual(grown, {})
        self.assertEqual(alive(EchoServerProtocol), 0)
        self.assertEqual(alive(SSL.Connection), 0)

    @inlineCallbacks
    def test_perMessage(self):  # type: ignore[no-untyped-def]
        """
        On one open connection, 3,000 more echoes, small and large, leave
        less than 2 bytes each behind.
        """
        factory = WebSocketClientFactory(self.url())
        factory.protocol = Batches
        client = yield client_endpoint(reactor, self.url(), self.caFile).connect(factory)
        yield client.is_open
        self.addCleanup(client.sendClose, 1000)
        small = [(b"%d" % (1_700_000_000_000 + i), False) for i in range(1000)]
        large = [(bytes([i]) * 100_000, True) for i in range(10)]
        yield client.batch(small + large)
        before = self.traced()
        for _ in range(3):
            yield client.batch(small)
        yield client.batch(large)
        grown = self.traced() - before
        self.assertEqual((client.echoed, client.wrong), (4020, 0))
        self.assertLess(grown, 3000 * 2, f"{grown} bytes more after 3,000 more echoes")


class Vanishing(WebSocketClientProtocol):
    """
    Pings once, then drops the TCP connection without a closing handshake
    or a TLS close_notify, as a client that loses its network does.
    """

    def onOpen(self) -> None:
        self.sendMessage(b"1764000000000")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.transport.abortConnection()

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        self.factory.done.callback(None)


class CollectorOffCase(ServerTestCase):
    """
    A server, with the cycle collector off: what is alive is what reference
    counting has not freed.
    """

    timeout = 60

    def setUp(self) -> None:
        super().setUp()
        gc.collect()
        gc.disable()
        self.addCleanup(gc.enable)


class NoCycleTests(CollectorOffCase):
    """
    A connection that ends, cleanly or by the client vanishing, is freed by
    reference counting the moment it ends: no part of it waits for the
    cycle collector, whose next full pass can be minutes away in a server
    with many long-lived objects.  Until then its memory would sit between
    the memory freed around it; after 10,000 clients left at once that made
    every later echo cost a third more CPU (docs/performance.md).
    """

    def server_side(self) -> Counter[str]:
        """
        The server's connection objects alive now, found without running
        the cycle collector.
        """
        context = self.service.tls._context if self.tls else None
        found: Counter[str] = Counter()
        for o in gc.get_objects():
            if isinstance(o, EchoServerProtocol):
                found["EchoServerProtocol"] += 1
            elif isinstance(o, TLSProtocol) and isinstance(o.wrappedProtocol, EchoServerProtocol):
                found["TLSProtocol"] += 1
            elif isinstance(o, SSL.Connection) and o.get_context() is context:
                found["SSL.Connection"] += 1
            elif isinstance(o, Server):
                found["tcp.Server"] += 1
        return found

    @inlineCallbacks
    def ended(self, connect) -> Deferred[None]:  # type: ignore[no-untyped-def, misc]
        """
        Run C{connect} ten times and wait until the server has let go of
        every connection.
        """
        before = self.server_side()
        for _ in range(10):
            yield connect()
        yield sockets_closed(self, self.service.factory)
        self.assertEqual(self.server_side(), before)

    def test_cleanClose(self):  # type: ignore[no-untyped-def]
        """
        Connections that pinged and closed with a closing handshake.
        """
        return self.ended(lambda: ping(self.url(), 1, timeout=5, ca_file=getattr(self, "caFile", None)))

    def test_vanishedClient(self):  # type: ignore[no-untyped-def]
        """
        Connections whose client pinged, then dropped the TCP connection.
        """

        def connect() -> Deferred[None]:
            factory = WebSocketClientFactory(self.url())
            factory.protocol = Vanishing
            factory.done = Deferred()
            d = client_endpoint(reactor, self.url(), getattr(self, "caFile", None)).connect(factory)
            return d.addCallback(lambda _: factory.done)

        return self.ended(connect)


class PlainNoCycleTests(NoCycleTests):
    """
    The same over ws://.
    """

    tls = False


class Opens(PingRecorder):
    """
    Counts the times the client's connection opened.
    """

    def __init__(self) -> None:
        super().__init__()
        self.opened = 0
        self.conditions = Conditions()

    def state_changed(self, change: StateChange) -> None:
        super().state_changed(change)
        if change.state is ConnectionState.OPEN:
            self.opened += 1
        self.conditions.check()


class ClientNoCycleTests(CollectorOffCase):
    """
    A L{PingMonitor} that reconnects, as a program that embeds it does for
    as long as it runs, frees each connection it lost the moment it is
    lost, whether the server closed it or vanished: Autobahn's C{is_closed}
    and Twisted's TLS layer would each leave it to the cycle collector.
    """

    def connection_objects(self) -> Counter[str]:
        """
        Both ends' connection objects alive now, found without running the
        cycle collector.
        """
        kinds = (PingClientProtocol, EchoServerProtocol, TLSProtocol, SSL.Connection, Server)
        return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, kinds))

    @inlineCallbacks
    def test_reconnects(self):  # type: ignore[no-untyped-def]
        """
        After ten reconnections, half after the server closed the
        connection (1001), half after it dropped it without a closing
        handshake or a TLS close_notify, no more connection objects are
        alive than with the first connection open.
        """
        observer = Opens()
        monitor = PingMonitor(self.url(), observer, ca_file=getattr(self, "caFile", None),
                              retry_policy=lambda attempt: 0.0)
        monitor.startService()
        self.addCleanup(monitor.stopService)
        yield observer.conditions.until(lambda: observer.opened == 1)
        before = self.connection_objects()
        for opened in range(2, 12):
            (server_side,) = self.service.factory.open_protocols
            if opened % 2:
                server_side.transport.abortConnection()
            else:
                server_side.close_with(1001, "going away")
            del server_side
            yield observer.conditions.until(lambda opened=opened: observer.opened == opened)
        self.assertEqual(self.connection_objects(), before)
        self.assertEqual(before["PingClientProtocol"], 1)


class PlainClientNoCycleTests(ClientNoCycleTests):
    """
    The same over ws://.
    """

    tls = False


class Batches(WebSocketClientProtocol):
    """
    Sends a batch of messages and waits for all their echoes, checking
    each against what was sent and keeping none.
    """

    echoed = 0
    wrong = 0

    def batch(self, messages: list[tuple[bytes, bool]]) -> Deferred[None]:
        self._expected = deque(messages)
        self._done: Deferred[None] = Deferred()
        for payload, is_binary in messages:
            self.sendMessage(payload, is_binary)
        return self._done

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.echoed += 1
        if self._expected.popleft() != (payload, isBinary):
            self.wrong += 1
        if not self._expected:
            # On the next reactor turn: until the read that brought the last
            # echo has unwound, its stack holds the bytes it read.
            reactor.callLater(0, self._done.callback, None)


def rss_kib(pid: int) -> int:
    """
    The resident memory of process C{pid}, in KiB.
    """
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise LookupError(f"no VmRSS for process {pid}")


class IdleAfterLargeMessageTests(TwistdCase):
    """
    A connection that once echoed a large message holds, when idle, no
    more than one that never did.  OpenSSL's memory BIOs keep room for the
    most they ever held, about 110 KiB after a message Twisted read 64 KiB
    at a time, until the server gives them back
    (L{pingproto.tls.release_bio_buffers}).  The server runs in its own
    process, as C{twistd -n pingproto}, so that its resident memory is its
    own; the clients run here.
    """

    connections = 100

    @inlineCallbacks
    def test_largeMessageLeavesNothing(self):  # type: ignore[no-untyped-def]
        """
        After each of 100 idle wss connections echoed one 200 kB message in
        turn, the server's resident memory has grown by less than 16 KiB
        per connection.
        """
        tlsdir = self.mktemp()
        ca_file = write_ca_file(self.mktemp(), write_tls_dir(tlsdir))
        server = self.start("--port", "0", "--tls-dir", tlsdir)
        url = (yield server.listening).replace("127.0.0.1", "localhost")
        factory = WebSocketClientFactory(url)
        factory.protocol = Batches
        endpoint = client_endpoint(reactor, url, ca_file)
        clients: list[Batches] = []

        def close() -> Deferred[object]:
            for client in clients:
                client.sendClose(1000)
            return gatherResults([client.is_closed for client in clients])

        self.addCleanup(close)
        for _ in range(self.connections):
            client = yield endpoint.connect(factory)
            clients.append(client)
            yield client.is_open
            yield client.batch([(b"1764000000000", False)])
        before = rss_kib(server.process.pid)
        for client in clients:
            yield client.batch([(os.urandom(200_000), True)])
        grown = rss_kib(server.process.pid) - before
        self.assertEqual([(c.echoed, c.wrong) for c in clients], [(2, 0)] * self.connections)
        self.assertLess(grown / self.connections, 16, f"{grown} KiB more after one large echo per connection")
