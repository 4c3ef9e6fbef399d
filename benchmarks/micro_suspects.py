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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def best(stmt: str, setup: str = "pass", number: int = 20_000, **globs: object) -> float:
    timer = timeit.Timer(stmt, setup, globals=globs)
    return min(timer.repeat(5, number)) / number * 1e6


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

    rows = [
        ("create_xor_masker(mask, 13).process(13 bytes)  [per received frame]", best("f()", f=masker_autobahn)),
        ("  int.from_bytes XOR of the same 13 bytes", best("f()", f=masker_int)),
        ("hltype/hlval debug arguments, one log.debug call  [x2 per echo]", best("f()", f=debug_args_dataReceived)),
        (f"pformat() of the {len(config)} config attributes  [per connection]", best("f()", f=config_pformat, number=500)),
        ("reactor.callLater(0, f) then cancel  [TLS small-write buffering, per write]",
         best("f()", f=call_later_flush)),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'what':{width}}  us/call")
    for name, us in rows:
        print(f"{name:{width}}  {us:7.2f}")


if __name__ == "__main__":
    main()
