"""
The attribute names a connection's objects are given late, made known to
CPython before the first connection, so that no connection needs a
dictionary of its own.

CPython 3.11 and 3.12 keep an object's attributes in a small array whose
names all instances of the class share, up to 30 names.  Each new
instance takes one name's room away (down to one), so a class's
instances come to share only the names the first few of them set.  An
instance setting a name that no longer fits gets a full dictionary of its
own instead.

A connection's objects are given names long after they are made:

- Twisted's TCP connection, when a producer registers (C{producer},
  C{streamingProducer}: pingproto's read gate does at the WebSocket
  upgrade, or the TLS layer on its behalf) and at a first buffered write;
- Twisted's TLS layer, when its handshake is done and the producer
  registers;
- pingproto's protocol, at the upgrade and at the first keepalive, 20
  seconds in (C{_keepalive} as its ping goes out, Autobahn's
  C{control_frame_data} as the pong comes in).

So once a server had accepted some 20 connections before its first
keepalive, every connection took a dictionary of 464 bytes
for its protocol at its own first keepalive; and after a restart
that many clients reconnect to, when some 20 connections are accepted
before the first upgrade is done, every connection of the process's life
took three from the start, 832 + 464 + 464 bytes (C{sys.getsizeof},
tests/sharedkeys_child.py).

L{share_names} sets the names once, on a throwaway instance made without
C{__init__}, before any real one exists, while there is room.  On other
Pythons it costs an object and changes nothing.
"""

from __future__ import annotations

from typing import Any, Iterable
from weakref import WeakSet

from twisted.internet import tcp

from pingproto.tls import TLSProtocol

__all__ = ["share_names", "share_transport_names"]

# Set by twisted.internet.abstract.FileDescriptor after the connection's
# __init__: registerProducer, doWrite, and write past the buffer's size.
TCP_LATE_NAMES = ("producer", "streamingProducer", "dataBuffer", "offset", "producerPaused")

_shared: WeakSet[type] = WeakSet()


def share_names(cls: type[Any], names: Iterable[str]) -> None:
    """
    Name C{names} on an instance of C{cls} made without C{__init__}, once
    per class.  It helps only before some 20 instances have been made.
    """
    if cls in _shared:
        return
    _shared.add(cls)
    # No __init__: nothing opened, registered or scheduled, nothing to
    # close; the names alone are what is wanted.
    instance = object.__new__(cls)
    for name in names:
        setattr(instance, name, None)


def share_transport_names() -> None:
    """
    Share the late names of Twisted's TCP connections and of pingproto's
    TLS layer.
    """
    share_names(tcp.Server, TCP_LATE_NAMES)
    share_names(TLSProtocol, TLSProtocol.late_names)
