#!/usr/bin/env python3
"""
Baseline: Autobahn's own echo example on Twisted, with Autobahn's defaults,
over plain TCP (ws://) or, with --tls-dir, over TLS with exactly pingproto's
TLS setup (ServerTLS wrapped in TLSMemoryBIOFactory), so that the only
difference from pingproto is pingproto's own code and options.

    python3 benchmarks/servers/autobahn_echo.py --port 0 [--tls-dir DIR]

Prints "listening on PORT" once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse

from twisted.internet import epollreactor

epollreactor.install()

from autobahn.twisted.websocket import (  # noqa: E402
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from twisted.internet import reactor  # noqa: E402


class EchoServerProtocol(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-dir")
    args = parser.parse_args()
    factory: object = WebSocketServerFactory()
    factory.protocol = EchoServerProtocol  # type: ignore[attr-defined]
    if args.tls_dir:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        from pingproto.tls import ServerTLS
        from pingproto.tlsfiles import load_tls_dir

        factory = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(args.tls_dir)), False, factory)
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
