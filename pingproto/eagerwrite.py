"""
Writing to a TCP socket at once, not on the reactor's next turn.

Twisted's TCP transport keeps every write until the reactor next polls:
it asks epoll to report the socket writable (C{epoll_ctl}), goes round
its loop to learn that it is (C{epoll_wait}), sends, and asks epoll to
stop reporting it (C{epoll_ctl} again).  For an echo, which a server
sends from within the read it answers, that is two system calls and a
turn of the reactor beside the one C{send} it needs (docs/performance.md,
"Writing at once").

L{write_now} sends at once when nothing written before is still waiting,
and hands whatever the socket did not take to the transport, as a write
it had never tried: bytes keep their order, and a send that would block
or fails is left to Twisted's own path to retry or report.
"""

from __future__ import annotations

from typing import cast

from twisted.internet import tcp
from twisted.internet.interfaces import ITransport

__all__ = ["write_now"]

# Twisted's own TCP connections, whose buffers write_now reads (the
# attributes of twisted.internet.abstract.FileDescriptor), and no
# subclass, which might buffer or send otherwise.
_PLAIN_TCP = frozenset({tcp.Server, tcp.Client})


def write_now(transport: ITransport, data: bytes) -> None:
    """
    Write C{data} to C{transport}, sending it at once if C{transport} is a
    TCP connection with nothing waiting to be sent; any other transport
    gets an ordinary C{write}.
    """
    if type(transport) in _PLAIN_TCP:
        connection = cast(tcp.Connection, transport)
        if (
            not connection._tempDataLen
            and not connection.dataBuffer
            and connection.connected
            # Aborted: Twisted drops what is written after (its doWrite is
            # a no-op), so this must not reach the socket either.
            and not connection._aborting
            # Closing (or half-closing, or half-closed: the flag stays) once
            # what is buffered has gone: left to Twisted, which sends these
            # bytes first, or drops them.
            and not connection.disconnecting
            and not connection._writeDisconnecting
            and not connection.TLS  # startTLS's layer must see every write
        ):
            try:
                sent = connection.socket.send(data)
            except OSError:
                # Would block (the buffer is full), or the connection is
                # gone: Twisted's own write finds out, as it would have.
                sent = 0
            if sent == len(data):
                return
            data = data[sent:]
    transport.write(data)
