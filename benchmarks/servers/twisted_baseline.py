"""
What the Twisted baselines share: the command line, the epoll reactor, and
listening on 127.0.0.1 over TCP or over exactly pingproto's TLS setup
(the same ServerTLS context, wrapped the same way in TLSMemoryBIOFactory).

Import this before anything imports the reactor.  Needs the source tree on
PYTHONPATH for --tls-dir (benchmarks/run sets it).
"""

from __future__ import annotations

import argparse
from typing import Any

from twisted.internet import epollreactor

epollreactor.install()


def arguments(description: str | None, *extra: tuple[str, dict[str, Any]]) -> argparse.Namespace:
    """
    --port and --tls-dir, and any C{(flag, add_argument keywords)} given.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-dir")
    for flag, keywords in extra:
        parser.add_argument(flag, **keywords)
    return parser.parse_args()


def serve(factory: Any, args: argparse.Namespace, unbuffered_tls: bool = False) -> None:
    """
    Listen with C{factory} (over TLS with --tls-dir), print "listening on
    PORT", and run the reactor.
    """
    from twisted.internet import reactor

    if args.tls_dir:
        from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol

        from pingproto.tls import ServerTLS
        from pingproto.tlsfiles import load_tls_dir

        factory = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(args.tls_dir)), False, factory)
        if unbuffered_tls:
            factory.protocol = TLSMemoryBIOProtocol
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]
