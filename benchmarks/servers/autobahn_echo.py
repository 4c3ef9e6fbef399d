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

from twisted_baseline import arguments, serve  # first: it installs the epoll reactor

from autobahn.twisted.websocket import (
    WebSocketServerFactory,
    WebSocketServerProtocol,
)


class EchoServerProtocol(WebSocketServerProtocol):
    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def main() -> None:
    args = arguments(__doc__)
    factory = WebSocketServerFactory()
    factory.protocol = EchoServerProtocol
    serve(factory, args)


if __name__ == "__main__":
    main()
