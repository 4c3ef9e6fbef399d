"""
A connection's reading, stopped while any reason to wait holds: for the
server and the client alike.
"""

from __future__ import annotations

from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

__all__ = ["ReadGate"]

# What a gate holds when it holds nothing: one frozenset shared by all.
_NO_REASONS: frozenset[str] = frozenset()


@implementer(IPushProducer)
class ReadGate:
    """
    Stops a connection's reading while any reason to wait holds, and
    starts it again when none does.

    Reasons overlap on the server: echoes backed up in the transport's
    write buffer (C{"sending"}: the transport pauses and resumes this gate
    as its producer), a client over its data rate (C{"rate"}) and frames
    of a read left for a later turn (C{"backlog"}), the last two held by
    L{EchoServerProtocol}.  Each alone would resume reading when it ends,
    even while another still holds.  The client uses the first alone, for
    pongs backed up (L{PingClientProtocol}).
    """

    # One per connection, and mostly holding nothing: the reasons are a
    # frozenset, and all gates share one empty one, where an empty set is
    # 216 bytes per connection.
    __slots__ = ("_transport", "_reasons")

    def __init__(self, transport: IPushProducer) -> None:
        self._transport: IPushProducer | None = transport
        self._reasons = _NO_REASONS

    def hold(self, reason: str) -> None:
        if not self._reasons and self._transport is not None:
            self._transport.pauseProducing()
        self._reasons = self._reasons.union((reason,))

    def release(self, reason: str) -> None:
        if reason in self._reasons:
            self._reasons = self._reasons.difference((reason,)) or _NO_REASONS
            if not self._reasons and self._transport is not None:
                self._transport.resumeProducing()

    def detach(self) -> None:
        """
        Forget the transport once the connection is lost.  Twisted's TLS
        layer keeps its producer (this gate) after the end, and the gate
        holds the transport: without this the two would wait for the cycle
        collector.
        """
        self._transport = None

    def release_all(self) -> None:
        """
        Drop every reason at once: the connection is being closed, and must
        read the peer's goodbye (TLS close_notify, or the end of TCP) even
        if its echoes were still backed up.
        """
        if self._reasons:
            self._reasons = _NO_REASONS
            if self._transport is not None:
                self._transport.resumeProducing()

    @property
    def holding(self) -> frozenset[str]:
        return self._reasons

    def pauseProducing(self) -> None:
        self.hold("sending")

    def resumeProducing(self) -> None:
        self.release("sending")

    def stopProducing(self) -> None:
        # The connection is going: nothing will be read again, so there is
        # nothing to resume, only reasons to forget.
        self._reasons = _NO_REASONS
