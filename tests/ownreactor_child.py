"""
Run by tests/test_embedding.py in an interpreter of its own, where no
reactor is installed yet (trial's process has one from the start).

Builds and starts pingproto's server service (over TLS, from the
directory given) and a ping monitor on a L{MemoryReactorClock}, lets the
monitor ping an echo server on that reactor for five seconds, and prints
as JSON how many echoes came back and whether the global reactor was
installed meanwhile: a program that passes its own reactor must still be
free to install the one it wants.
"""

from __future__ import annotations

import json
import sys

from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.testing import MemoryReactorClock
from twisted.test.iosim import ConnectionCompleter

from pingproto import EchoServerFactory, PingMonitor, PingRecorder, load_tls_dir, make_server_service


def main(tls_dir: str) -> None:
    reactor = MemoryReactorClock()
    service = make_server_service(["tcp:4322"], load_tls_dir(tls_dir), reactor=reactor)
    service.startService()
    TCP4ServerEndpoint(reactor, 4321).listen(EchoServerFactory(reactor=reactor))
    recorder = PingRecorder()
    monitor = PingMonitor(
        "ws://127.0.0.1:4321/", recorder, reactor=reactor, endpoint=TCP4ClientEndpoint(reactor, "127.0.0.1", 4321)
    )
    monitor.startService()
    pump = ConnectionCompleter(reactor).succeedOnce()
    assert pump is not None
    for _ in range(20):
        pump.flush()
        reactor.advance(0.25)
    print(json.dumps({"echoes": len(recorder.result.samples), "installed": "twisted.internet.reactor" in sys.modules}))


if __name__ == "__main__":
    main(sys.argv[1])
