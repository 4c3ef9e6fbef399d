"""
Small, documented overrides of Autobahn internals, in one place.

Each exists for a reason stated beside it, and each is covered by tests
that would fail if an Autobahn release changed the behaviour it relies on.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime


class _Call:
    """
    A delayed call that may be cancelled any number of times, as Autobahn
    does with its timers (it sometimes cancels one that already ran).
    """

    __slots__ = ("_call",)

    def __init__(self, call: IDelayedCall) -> None:
        self._call = call

    def cancel(self) -> None:
        if self._call.active():
            self._call.cancel()


class ReactorTimer:
    """
    Stands in for Autobahn's per-factory C{_batched_timer}, which always
    schedules on txaio's global loop: this one uses the factory's own
    reactor, so the handshake timeout and keepalive run on a test's L{Clock}
    and an embedding program's reactor alike.  Twisted keeps delayed calls
    in a heap, so there is no need to batch them.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> _Call:
        return _Call(self._reactor.callLater(delay, func, *args, **kwargs))


class QuietDataPath:
    """
    Autobahn's C{dataReceived} and C{sendData} with their debug log lines
    left out.

    Autobahn formats the arguments of those lines (eight C{click.style}
    calls through C{hltype}/C{hlval}) on every read and every write, even
    with debug logging off: 15 us of the 132 us a wss echo costs here
    (docs/performance.md).  The behaviour is otherwise Autobahn's own:
    anything but a plain write (chopped or synchronous sends, a queue,
    octet logging) still goes through it.
    """

    def dataReceived(self, data: bytes) -> None:
        self._dataReceived(data)  # type: ignore[attr-defined]

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if sync or chopsize or self.send_queue or self.logOctets:  # type: ignore[attr-defined]
            super().sendData(data, sync, chopsize)  # type: ignore[misc]
            return
        self.transport.write(data)  # type: ignore[attr-defined]
        if self.state == self.STATE_OPEN:  # type: ignore[attr-defined]
            self.trafficStats.outgoingOctetsWireLevel += len(data)  # type: ignore[attr-defined]
        else:
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)  # type: ignore[attr-defined]


class ServerOverrides(QuietDataPath):
    """
    Every override the echo server's protocol takes, in MRO order; the
    server's protocol class lists only this.
    """
