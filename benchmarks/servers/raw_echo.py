#!/usr/bin/env python3
"""
Baseline: the plainest Twisted echo there is, over TCP or, with --tls-dir,
over TLS with exactly pingproto's TLS setup (the same ServerTLS context,
wrapped the same way in TLSMemoryBIOFactory).

    python3 benchmarks/servers/raw_echo.py --port 0 [--tls-dir DIR [--unbuffered-tls]]

Prints "listening on PORT" once it listens on 127.0.0.1.  Needs the source
tree on PYTHONPATH for --tls-dir (benchmarks/run sets it).
"""

from __future__ import annotations

import argparse

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import reactor  # noqa: E402
from twisted.internet.protocol import Factory, Protocol  # noqa: E402


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-dir")
    parser.add_argument(
        "--unbuffered-tls", action="store_true",
        help="an experiment: TLSMemoryBIOProtocol instead of Twisted's default BufferingTLSTransport, "
        "which holds every small write until the next reactor turn",
    )
    args = parser.parse_args()
    factory: object = Factory.forProtocol(Echo)
    factory.noisy = False  # type: ignore[attr-defined]
    if args.tls_dir:
        from twisted.protocols.tls import TLSMemoryBIOFactory

        from pingproto.tls import ServerTLS
        from pingproto.tlsfiles import load_tls_dir

        factory = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(args.tls_dir)), False, factory)
        if args.unbuffered_tls:
            from twisted.protocols.tls import TLSMemoryBIOProtocol

            factory.protocol = TLSMemoryBIOProtocol
    port = reactor.listenTCP(args.port, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
