"""
Test helpers for programs that use pingproto, or any TCP client: a proxy
that makes a good link bad on demand.

L{FaultProxy} listens on a local port and forwards every connection to a
target, on the reactor it is given (no threads, no sleeps).  While a test
runs it can add a delay in either direction, stall the link (the bytes stop
flowing but the connections stay open, as when a NAT or a mobile link goes
silent), cut every connection abruptly, and stop.  It forwards bytes, not
messages, so TLS passes through untouched: a certificate for the target's
name still verifies when the client connects to the proxy under that name.

A trial test on the real reactor, against a server the test started on
C{server_port}::

    from twisted.internet import reactor
    from twisted.internet.defer import inlineCallbacks
    from twisted.trial.unittest import TestCase

    from pingproto import ping
    from pingproto.testing import FaultProxy

    class SlowLinkTests(TestCase):
        @inlineCallbacks
        def test_slowLink(self):
            proxy = FaultProxy(reactor, "127.0.0.1", self.server_port)
            yield proxy.listen()
            self.addCleanup(proxy.stop)
            proxy.delay_up = proxy.delay_down = 0.05
            result = yield ping(f"ws://127.0.0.1:{proxy.port}/", 3, interval=0.1)
            self.assertGreaterEqual(result.summary.min, 0.1)

The delays are scheduled with the reactor's C{callLater}, so a
L{twisted.internet.testing.MemoryReactorClock} drives them in tests whose
connections are in memory.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Callable, Union

from twisted.internet.abstract import isIPAddress, isIPv6Address
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import (
    HostnameEndpoint,
    TCP4ClientEndpoint,
    TCP6ClientEndpoint,
    connectProtocol,
    serverFromString,
)
from twisted.internet.interfaces import (
    IAddress,
    IConsumer,
    IDelayedCall,
    IHalfCloseableProtocol,
    IListeningPort,
    IPushProducer,
    IStreamClientEndpoint,
    ITCPTransport,
)
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from pingproto._reactor import TimeTCPReactor

__all__ = ["FaultProxy"]

_log = Logger()


class _Marker:
    """
    A close travelling in a direction's queue behind the bytes sent before it.
    """

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# Seconds FaultProxy.stop gives its connections to close gently.
STOP_GRACE = 1.0

# The sender shut down its write side (a FIN): shut down the receiver's.
_EOF = _Marker("EOF")
# The sender's connection is gone: close the receiver's.
_CLOSE = _Marker("CLOSE")

_Item = Union[bytes, _Marker]


class _IConnection(ITCPTransport, IConsumer, IPushProducer):
    """
    For type annotations only: a side's transport, a TCP connection, which
    takes a producer and can be paused.
    """


@implementer(IPushProducer)
class _Throttle:
    """
    Registered as the producer of one side's transport: pauses reading from
    the other side while that transport's write buffer is full.

    Unlike registering the other transport itself, stopping it never closes
    the other side: a close is forwarded only after the data queued ahead of
    it.
    """

    def __init__(self, source: _Side) -> None:
        self._source = source
        self._paused = False

    def pauseProducing(self) -> None:
        if not self._paused and not self._source.gone:
            self._paused = True
            assert self._source.transport is not None
            self._source.transport.pauseProducing()

    def resumeProducing(self) -> None:
        if self._paused:
            self._paused = False
            if not self._source.gone:
                assert self._source.transport is not None
                self._source.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.resumeProducing()


class _Direction:
    """
    The bytes one side of a pair sends, on their way to the other side.

    Each chunk is due at C{max(arrival + delay, previous chunk's due time)},
    so it is delayed by exactly the delay in force when it arrived, unless
    an earlier chunk is still waiting, and order is kept even when the delay
    is lowered.  One timer is armed at a time, for the head of the queue:
    the reactor's timer heap does not promise to run calls due at the same
    time in the order they were scheduled, and a queue does.
    """

    def __init__(self, proxy: FaultProxy, delay: Callable[[], float]) -> None:
        self._proxy = proxy
        self._delay = delay
        self.sink: _Side  # set by the pair
        self._queue: deque[tuple[float, _Item]] = deque()
        self._last_due = -math.inf
        self._timer: IDelayedCall | None = None
        self._ended = False
        self._dead = False

    @property
    def _clock(self) -> TimeTCPReactor:
        return self._proxy._reactor

    def _ready(self) -> bool:
        return self.sink.ready and not self._proxy._stalled and not self._dead

    def push(self, item: _Item) -> None:
        """
        Queue bytes, or a close, to be delivered after this direction's
        delay; straight through when there is no delay and nothing waits.
        """
        if self._dead or self._ended:
            return
        if item is _CLOSE:
            self._ended = True
        now = self._clock.seconds()
        due = max(now + self._delay(), self._last_due)
        self._last_due = due
        if not self._queue and due <= now and self._ready():
            self._deliver(item)
        else:
            self._queue.append((due, item))
            self.pump()

    def pump(self) -> None:
        """
        Deliver everything due, in order, and arm the timer for the rest.
        """
        if self._timer is not None:
            return
        while self._queue and self._ready():
            due, item = self._queue[0]
            wait = due - self._clock.seconds()
            if wait > 0:
                self._timer = self._clock.callLater(wait, self._fire)
                return
            self._queue.popleft()
            self._deliver(item)

    def _fire(self) -> None:
        self._timer = None
        # The call was scheduled for the head: deliver it even if rounding
        # puts "now" a hair before its due time.
        if self._queue and self._ready():
            self._deliver(self._queue.popleft()[1])
        self.pump()

    def halt(self) -> None:
        """
        Stop delivering, keeping the queue (a stall).
        """
        if self._timer is not None:
            if self._timer.active():
                self._timer.cancel()
            self._timer = None

    def kill(self) -> None:
        """
        Drop everything queued and everything sent from now on.
        """
        self._dead = True
        self.halt()
        self._queue.clear()

    def _deliver(self, item: _Item) -> None:
        if item is _EOF:
            self.sink.shut_down_write()
        elif item is _CLOSE:
            self.sink.close()
        else:
            assert isinstance(item, bytes) and self.sink.transport is not None
            self.sink.transport.write(item)


@implementer(IHalfCloseableProtocol)
class _Side(Protocol):
    """
    One of the two TCP connections of a pair: the accepted one (the
    client's) or the one the proxy made (to the target).
    """

    # No transport until connected: only close() and abort() may find none
    # (the side to the target, still connecting); the rest run connected.
    transport: _IConnection | None

    def __init__(self, pair: _Pair, outbound: _Direction) -> None:
        self.pair = pair
        self._outbound = outbound  # where what this side sends goes
        self.ready = False  # may be written to
        self.read_closed = False
        self.write_closed = False
        self.gone = False
        self._throttle: _Throttle | None = None

    def connectionMade(self) -> None:
        # A latency probe must not be held back by Nagle's algorithm.
        no_delay = getattr(self.transport, "setTcpNoDelay", None)
        if no_delay is not None:
            no_delay(True)
        self.pair.side_made(self)

    def dataReceived(self, data: bytes) -> None:
        self._outbound.push(data)

    def readConnectionLost(self) -> None:
        self.read_closed = True
        self._outbound.push(_EOF)
        if self.write_closed:
            assert self.transport is not None
            self.transport.loseConnection()

    def writeConnectionLost(self) -> None:
        pass

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.gone = True
        self.ready = False
        if self._throttle is not None:
            self._throttle.stopProducing()
            self._throttle = None
        self.pair.side_lost(self)

    def hold(self, source: _Side) -> None:
        """
        Pause reading from C{source} while this side cannot keep up.
        """
        self._throttle = _Throttle(source)
        assert self.transport is not None
        self.transport.registerProducer(self._throttle, True)

    def _release(self) -> None:
        # A transport with a producer registered does not close until it
        # is unregistered.
        if self._throttle is not None:
            throttle, self._throttle = self._throttle, None
            assert self.transport is not None
            self.transport.unregisterProducer()
            throttle.stopProducing()

    def shut_down_write(self) -> None:
        if self.gone or self.write_closed:
            return
        self.write_closed = True
        self._release()
        shut_down = getattr(self.transport, "loseWriteConnection", None)
        if self.read_closed or shut_down is None:
            assert self.transport is not None
            self.transport.loseConnection()
        else:
            shut_down()

    def close(self) -> None:
        if not self.gone and self.transport is not None:
            self._release()
            self.transport.loseConnection()

    def abort(self) -> None:
        if not self.gone and self.transport is not None:
            self._release()
            self.transport.abortConnection()


class _Pair:
    """
    An accepted connection and the one made to the target for it.
    """

    def __init__(self, proxy: FaultProxy) -> None:
        self._proxy = proxy
        self.up = _Direction(proxy, lambda: proxy.delay_up)
        self.down = _Direction(proxy, lambda: proxy.delay_down)
        self.client = _Side(self, self.up)
        self.server = _Side(self, self.down)
        self.up.sink = self.server
        self.down.sink = self.client
        self.dropped = False
        self._connecting: Deferred[Protocol] | None = None

    def side_made(self, side: _Side) -> None:
        if side is not self.client:
            return
        # Nothing is read from the client until there is somewhere to send it.
        assert side.transport is not None
        side.transport.pauseProducing()
        side.ready = True
        self._proxy._pairs.add(self)
        connecting = connectProtocol(self._proxy._endpoint, self.server)
        self._connecting = connecting
        connecting.addCallbacks(self._connected, self._failed)

    def _connected(self, _: object) -> None:
        self._connecting = None
        client, server = self.client, self.server
        if client.gone or self.dropped:
            server.close()
            return
        server.ready = True
        server.hold(client)
        client.hold(server)
        assert client.transport is not None
        client.transport.resumeProducing()
        self.up.pump()

    def _failed(self, reason: Failure) -> None:
        self._connecting = None
        self.server.gone = True
        if not (self.dropped or self.client.gone):
            _log.info(
                "fault proxy could not connect to {target}: {error}",
                target=self._proxy._target,
                error=reason.getErrorMessage(),
            )
            self.client.close()
        self._check_finished()

    def side_lost(self, side: _Side) -> None:
        if side is self.client:
            toward, away = self.down, self.up
        else:
            toward, away = self.up, self.down
        toward.kill()
        if side is self.client and self._connecting is not None:
            self._connecting.cancel()
        else:
            away.push(_CLOSE)
        self._check_finished()

    def drop(self, abort: bool) -> None:
        """
        Close both sides now, dropping whatever is queued.
        """
        self.dropped = True
        self.up.kill()
        self.down.kill()
        for side in (self.client, self.server):
            side.abort() if abort else side.close()
        if self._connecting is not None:
            self._connecting.cancel()

    def halt(self) -> None:
        self.up.halt()
        self.down.halt()

    def pump(self) -> None:
        self.up.pump()
        self.down.pump()

    def _check_finished(self) -> None:
        if self.client.gone and self.server.gone:
            self._proxy._forget(self)


class _ProxyFactory(Factory):
    def __init__(self, proxy: FaultProxy) -> None:
        self._proxy = proxy

    def buildProtocol(self, addr: IAddress | None) -> Protocol | None:
        if self._proxy._stopping:
            return None
        return _Pair(self._proxy).client


def _target_endpoint(reactor: TimeTCPReactor, host: str, port: int) -> IStreamClientEndpoint:
    # An address needs no name resolution, which on a memory reactor would
    # fall back to a thread.
    if isIPAddress(host):
        return TCP4ClientEndpoint(reactor, host, port)
    if isIPv6Address(host):
        return TCP6ClientEndpoint(reactor, host, port)
    return HostnameEndpoint(reactor, host, port)


def _delay(value: float) -> float:
    # float() would take "0.05" and True as well.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"a delay is a number of seconds, not {value!r}")
    value = float(value)
    if not (value >= 0.0 and math.isfinite(value)):
        raise ValueError(f"a delay must be a finite number of seconds >= 0, not {value!r}")
    return value


class FaultProxy:
    """
    A TCP proxy to C{target_host:target_port} whose link a test can make
    slow, silent or broken while connections run through it.

    Each accepted connection is paired with a new connection to the
    target; reading from the client waits until that connection is made,
    and if it cannot be made the client's connection is closed.  A
    half-close (FIN) or close on one side reaches the other side after the
    bytes sent before it, and after the same delay.

    @param reactor: provides L{IReactorTime} and L{IReactorTCP
        <twisted.internet.interfaces.IReactorTCP>}; delays are scheduled on
        it with C{callLater}.
    @param target_host: an IPv4 or IPv6 address, or a name to resolve.

    @ivar delay_up: seconds added to each chunk going from client to
        target.  May be changed at any time: each chunk is delayed by the
        value in force when it arrives, never overtaking an earlier one.
    @ivar delay_down: the same, from target to client.
    """

    def __init__(self, reactor: TimeTCPReactor, target_host: str, target_port: int) -> None:
        # Else each connection would fail, said only in the log.
        if isinstance(target_port, bool) or not isinstance(target_port, int):
            raise TypeError(f"a TCP port is an int, not {target_port!r}")
        if not 0 < target_port < 65536:
            raise ValueError(f"not a TCP port: {target_port!r}")
        if not isinstance(target_host, str) or not target_host:
            raise ValueError(f"not a host: {target_host!r}")
        self._reactor = reactor
        host = f"[{target_host}]" if ":" in target_host else target_host
        self._target = f"{host}:{target_port}"
        self._endpoint = _target_endpoint(reactor, target_host, target_port)
        self._delay_up = 0.0
        self._delay_down = 0.0
        self._stalled = False
        self._stopping = False
        self._listening: IListeningPort | None = None
        self._port: int | None = None
        self._pairs: set[_Pair] = set()
        self._idle: list[Deferred[None]] = []

    @property
    def delay_up(self) -> float:
        return self._delay_up

    @delay_up.setter
    def delay_up(self, seconds: float) -> None:
        self._delay_up = _delay(seconds)

    @property
    def delay_down(self) -> float:
        return self._delay_down

    @delay_down.setter
    def delay_down(self, seconds: float) -> None:
        self._delay_down = _delay(seconds)

    def listen(self, description: str = "tcp:0:interface=127.0.0.1") -> Deferred[IListeningPort]:
        """
        Start accepting connections on the server endpoint C{description}
        (see L{serverFromString}); fires with the listening port.
        """
        if self._listening is not None:
            raise RuntimeError("the proxy is already listening")
        self._stopping = False

        def listening(port: IListeningPort) -> IListeningPort:
            self._listening = port
            self._port = getattr(port.getHost(), "port", None)
            return port

        endpoint = serverFromString(self._reactor, description)
        return endpoint.listen(_ProxyFactory(self)).addCallback(listening)

    @property
    def port(self) -> int:
        """
        The TCP port the proxy listens (or last listened) on.
        """
        if self._port is None:
            raise RuntimeError("the proxy has no TCP port: call listen() first")
        return self._port

    @property
    def connections(self) -> int:
        """
        How many connection pairs are open, not counting those that
        L{cut} or L{stop} is tearing down.
        """
        return sum(1 for pair in self._pairs if not pair.dropped)

    @property
    def stalled(self) -> bool:
        return self._stalled

    def stall(self) -> None:
        """
        Stop forwarding in both directions, without closing anything: what
        arrives is kept, in order, until L{resume}.  Connections accepted
        meanwhile are made to the target but stay silent too.
        """
        self._stalled = True
        for pair in self._pairs:
            pair.halt()

    def resume(self) -> None:
        """
        Forward again: what arrived during the stall and is past its delay
        is delivered at once, in order; the rest when its delay is over.
        """
        self._stalled = False
        for pair in list(self._pairs):
            pair.pump()

    def cut(self) -> None:
        """
        Abort every current connection pair, both sides, dropping queued
        bytes: each peer sees a reset (TCP RST), not a clean close.  The
        proxy goes on accepting new connections.
        """
        for pair in list(self._pairs):
            if not pair.dropped:
                pair.drop(abort=True)

    def stop(self) -> Deferred[None]:
        """
        Stop listening and close every connection pair (dropping queued
        bytes); fires once the listening port and every connection are
        closed.
        """
        self._stopping = True
        waits: list[Deferred[Any]] = []
        port, self._listening = self._listening, None
        if port is not None:
            waits.append(maybeDeferred(port.stopListening))
        for pair in list(self._pairs):
            if not pair.dropped:
                pair.drop(abort=False)
        if self._pairs:
            idle: Deferred[None] = Deferred()
            self._idle.append(idle)
            waits.append(idle)
            # A gentle close waits until its peer has taken the last bytes,
            # which a peer that reads nothing never does: what is still
            # open after STOP_GRACE seconds is aborted.
            late = self._reactor.callLater(STOP_GRACE, self._abort_all)

            def closed(result: object) -> object:
                if late.active():
                    late.cancel()
                return result

            idle.addBoth(closed)
        return gatherResults(waits, consumeErrors=True).addCallback(lambda _: None)

    def _abort_all(self) -> None:
        for pair in list(self._pairs):
            for side in (pair.client, pair.server):
                side.abort()

    def _forget(self, pair: _Pair) -> None:
        self._pairs.discard(pair)
        if not self._pairs:
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)
