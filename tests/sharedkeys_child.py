"""
Run by tests/test_sharedkeys.py in an interpreter of its own, where no
connection has been made yet: which attribute names CPython shares among a
class's instances depends on the process's history, and the test's own
process has a long one.

Serves pingproto over TLS on loopback, with keepalives
every 0.1 s; lets C{--connections} clients connect before any of them asks
for the upgrade (as after a restart, when they reconnect all at once),
upgrades them all, has each answer two keepalives, and prints as JSON how
many of the server's objects of each kind hold a dictionary of their own.
With C{--unshared}, pingproto does not name the late names first: the case
the test checks it against.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any

from twisted.internet import reactor, ssl
from twisted.internet.protocol import ClientFactory, Protocol

import pingproto.sharedkeys
from pingproto.config import ServerLimits
from pingproto.service import make_server_service
from pingproto.tlsfiles import load_tls_dir

UPGRADE = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)
KEEPALIVES = 2

# What only each kind's attributes hold: a dictionary of its own is the
# only dictionary with them that the collector sees.
KINDS = {
    "tcp": ("sessionno", "streamingProducer"),
    "tls": ("_tlsConnection", "_handshakeDone"),
    "protocol": ("factory", "_opened"),
}


def own_dictionaries() -> dict[str, list[int]]:
    """
    For each kind, how many have a dictionary of their own, and the bytes
    those dictionaries take (C{sys.getsizeof}).
    """
    dictionaries = [o for o in gc.get_objects() if type(o) is dict]
    found = {kind: [d for d in dictionaries if all(k in d for k in keys)] for kind, keys in KINDS.items()}
    return {kind: [len(ds), sum(map(sys.getsizeof, ds))] for kind, ds in found.items()}


class _Everything:
    """A set that holds every class: nothing gets its names shared."""

    def __contains__(self, item: object) -> bool:
        return True

    def add(self, item: object) -> None:
        pass


class Client(Protocol):
    """
    Asks for the upgrade when told to, then answers each ping with a pong
    (the server's frames: unmasked, short, whole in a read or split).
    """

    def __init__(self) -> None:
        self.buffer = b""
        self.upgraded = False
        self.pongs = 0

    def connectionMade(self) -> None:
        clients.append(self)

    def dataReceived(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            head, found, self.buffer = self.buffer.partition(b"\r\n\r\n")
            if not found:
                self.buffer = head
                return
            self.upgraded = True
        while len(self.buffer) >= 2 and len(self.buffer) >= 2 + (self.buffer[1] & 0x7F):
            opcode, size = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            payload, self.buffer = self.buffer[2:2 + size], self.buffer[2 + size:]
            if opcode == 9:
                mask = os.urandom(4)
                masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                self.transport.write(bytes([0x8A, 0x80 | size]) + mask + masked)
                self.pongs += 1


clients: list[Client] = []


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=40)
    parser.add_argument("--tls-dir", required=True)
    parser.add_argument("--unshared", action="store_true")
    args = parser.parse_args()
    if args.unshared:
        pingproto.sharedkeys._shared = _Everything()  # type: ignore[assignment]
    limits = ServerLimits(ping_interval=0.1, max_per_address=0)
    service = make_server_service(
        "tcp:0:interface=127.0.0.1", load_tls_dir(args.tls_dir), limits, handle_sighup=False
    )
    service.startService()
    factory = service.factory
    # What a run that times out (30 s) prints.
    result: dict[str, Any] = {"open": None, "own_dictionaries": None}

    def when(condition: Any, then: Any) -> None:
        if condition():
            then()
        else:
            reactor.callLater(0.01, when, condition, then)

    def upgrade_all() -> None:
        for client in clients:
            client.transport.write(UPGRADE)
        when(lambda: all(c.pongs >= KEEPALIVES for c in clients), report)

    def report() -> None:
        result.update(open=len(factory.open_protocols), own_dictionaries=own_dictionaries())
        reactor.stop()

    port = service.listeners[0].port.getHost().port
    for _ in range(args.connections):
        reactor.connectSSL("127.0.0.1", port, ClientFactory.forProtocol(Client), ssl.CertificateOptions())
    when(lambda: factory.sockets >= args.connections and len(clients) >= args.connections, upgrade_all)
    reactor.callLater(30, reactor.stop)
    reactor.run()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
