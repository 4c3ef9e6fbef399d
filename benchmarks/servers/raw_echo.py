#!/usr/bin/env python3
"""
Baseline: the plainest Twisted echo there is, over TCP or, with --tls-dir,
over TLS with exactly pingproto's TLS setup (the same ServerTLS context,
wrapped the same way in TLSMemoryBIOFactory).

    python3 benchmarks/servers/raw_echo.py --port 0 [--tls-dir DIR [--unbuffered-tls]] [--write-now]

Prints "listening on PORT" once it listens on 127.0.0.1.  Needs the source
tree on PYTHONPATH for --tls-dir and --write-now (benchmarks/run sets it).
"""

from __future__ import annotations

from twisted_baseline import arguments, serve  # first: it installs the epoll reactor

from twisted.internet.protocol import Factory, Protocol


class Echo(Protocol):
    def dataReceived(self, data: bytes) -> None:
        self.transport.write(data)


def echo_now() -> type[Protocol]:
    """
    An echo that sends through pingproto's write_now: imported here, for
    --write-now only, as the source tree is on the path only then.
    """
    from pingproto.eagerwrite import write_now

    class EchoNow(Protocol):
        def dataReceived(self, data: bytes) -> None:
            write_now(self.transport, data)

    return EchoNow


def main() -> None:
    args = arguments(
        __doc__,
        ("--unbuffered-tls", dict(
            action="store_true",
            help="an experiment: TLSMemoryBIOProtocol instead of Twisted's default BufferingTLSTransport, "
            "which holds every small write until the next reactor turn",
        )),
        ("--write-now", dict(
            action="store_true",
            help="an experiment: send each echo at once with pingproto's write_now, as pingproto does, "
            "instead of on the reactor's next turn",
        )),
    )
    factory = Factory.forProtocol(echo_now() if args.write_now else Echo)
    factory.noisy = False
    serve(factory, args, unbuffered_tls=args.unbuffered_tls)


if __name__ == "__main__":
    main()
