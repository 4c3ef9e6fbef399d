#!/usr/bin/env python3
"""
Micro-benchmarks of the per-echo and per-connection work that issue 6
suspects, each timed in isolation with timeit on this machine, next to a
cheaper way to do the same thing (what an override in pingproto could do).

    python3 benchmarks/micro_suspects.py

Nothing here touches the network.  Figures are microseconds per call, the
best of 5 repeats.
"""

from __future__ import annotations

import os
import sys
import timeit
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def best(stmt: str, setup: str = "pass", number: int = 20_000, **globs: object) -> float:
    timer = timeit.Timer(stmt, setup, globals=globs)
    return min(timer.repeat(5, number)) / number * 1e6


def server_paths() -> tuple[Any, Any, Any, Any]:
    """
    pingproto's server protocol in memory, with its overrides
    (L{pingproto._autobahn.ServerOverrides}) and with Autobahn's own code in
    their place: one echo, and one whole connection.
    """
    from autobahn.websocket import protocol as ab
    from twisted.internet.address import IPv4Address
    from twisted.internet.error import ConnectionDone
    from twisted.internet.task import Clock
    from twisted.python.failure import Failure

    from pingproto.config import ServerLimits
    from pingproto.server import EchoServerFactory, EchoServerProtocol
    from tests.test_protocols import LenientTransport, client_frame, upgrade_request

    class AutobahnPath(EchoServerProtocol):
        _dataReceived = ab.WebSocketProtocol._dataReceived
        sendMessage = ab.WebSocketProtocol.sendMessage
        _connectionMade = ab.WebSocketServerProtocol._connectionMade
        _connectionLost = ab.WebSocketServerProtocol._connectionLost

        def send_back(self: Any, payload: bytes, isBinary: bool) -> None:
            ab.WebSocketProtocol.sendMessage(self, payload, isBinary)

    address = IPv4Address("TCP", "127.0.0.1", 40000)
    request, message = upgrade_request(), client_frame(b"1764000000000")
    close = client_frame((1000).to_bytes(2, "big"), opcode=8)

    def factory(cls: type) -> EchoServerFactory:
        f = EchoServerFactory(ServerLimits(max_message_rate=1e8), reactor=Clock())
        f.protocol = cls
        return f

    def connection(f: EchoServerFactory) -> Any:
        p = f.buildProtocol(address)
        p.makeConnection(LenientTransport())
        p.dataReceived(request)
        return p

    def echo(cls: type) -> Any:
        p = connection(factory(cls))

        def one() -> None:
            p.dataReceived(message)
            p.transport.clear()

        return one

    def whole(cls: type) -> Any:
        f = factory(cls)

        def one() -> None:
            p = connection(f)
            p.dataReceived(close)
            p.connectionLost(Failure(ConnectionDone()))
            f.reactor.advance(60)

        return one

    return echo(EchoServerProtocol), echo(AutobahnPath), whole(EchoServerProtocol), whole(AutobahnPath)


def main() -> None:
    from pprint import pformat

    from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
    from autobahn.util import hltype, hlval
    from autobahn.websocket.xormasker import create_xor_masker
    from twisted.internet import reactor

    mask = os.urandom(4)
    data = b"1764000000000"
    key = int.from_bytes(mask * 4, "big") >> (8 * (16 - len(data)))

    def masker_autobahn() -> bytes:
        return create_xor_masker(mask, len(data)).process(data)

    def masker_int() -> bytes:
        # The same XOR for one whole small frame, on Python ints.
        return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")

    assert masker_autobahn() == masker_int()

    proto = WebSocketServerProtocol()
    proto.factory = WebSocketServerFactory()
    proto.peer = "tcp4:127.0.0.1:54321"

    def debug_args_dataReceived() -> None:
        # What autobahn/twisted/websocket.py's dataReceived evaluates for a
        # log.debug call that is then thrown away (and sendData the same).
        dict(func=hltype(proto.dataReceived), peer=hlval(proto.peer), data_len=hlval(len(data)))

    config = [(a, getattr(proto.factory, a), "WebSocketServerFactory") for a in proto.CONFIG_ATTRS]

    def config_pformat() -> str:
        return pformat(config)

    def call_later_flush() -> None:
        reactor.callLater(0, lambda: None).cancel()

    echo_fast, echo_autobahn, conn_fast, conn_autobahn = server_paths()

    rows = [
        ("create_xor_masker(mask, 13).process(13 bytes)  [per received frame]", best("f()", f=masker_autobahn)),
        ("  int.from_bytes XOR of the same 13 bytes", best("f()", f=masker_int)),
        ("hltype/hlval debug arguments, one log.debug call  [x2 per echo]", best("f()", f=debug_args_dataReceived)),
        (f"pformat() of the {len(config)} config attributes  [per connection]", best("f()", f=config_pformat, number=500)),
        ("reactor.callLater(0, f) then cancel  [TLS small-write buffering, per write]",
         best("f()", f=call_later_flush)),
        ("pingproto echo of 13 bytes over StringTransport, with the fast paths", best("f()", f=echo_fast)),
        ("  the same through Autobahn's receive and send code", best("f()", f=echo_autobahn)),
        ("pingproto connection (set-up, upgrade, close frame, tear-down), as it is", best("f()", f=conn_fast, number=500)),
        ("  the same with Autobahn's _connectionMade/_connectionLost", best("f()", f=conn_autobahn, number=500)),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what':{width}}  us/call")
    for name, us in rows:
        print(f"{name:{width}}  {us:7.2f}")


if __name__ == "__main__":
    main()
