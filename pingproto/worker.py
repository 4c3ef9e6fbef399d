"""
One worker of C{twistd pingproto --workers N}: a whole server on sockets
inherited from the supervising twistd process (L{pingproto.workers}).

    python -m pingproto.worker --inherit 3:INET [twistd pingproto options]
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Sequence

from twisted.internet import stdio
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.interfaces import IReactorCore
from twisted.internet.protocol import Protocol
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    globalLogBeginner,
)
from twisted.python import usage

from pingproto import tap
from pingproto.workers import FAMILY_NAMES

_FAMILIES = {name: family for family, name in FAMILY_NAMES.items()}


class WorkerOptions(tap.Options):
    """
    C{twistd pingproto}'s options, as the supervisor passes them on
    (L{tap.worker_args}), and the sockets to serve (C{--inherit}), which
    take the place of the listening options.
    """

    def __init__(self) -> None:
        super().__init__()
        self["inherit"] = []

    def opt_inherit(self, value: str) -> None:
        """
        FD:FAMILY of a listening socket to serve (repeatable).
        """
        fd, _, family = value.partition(":")
        if not fd.isdigit() or family not in _FAMILIES:
            raise usage.UsageError(f"--inherit {value!r}: expected FD:INET, FD:INET6 or FD:UNIX")
        self["inherit"].append((int(fd), _FAMILIES[family]))

    def postOptions(self) -> None:
        # The listeners are the inherited sockets, whatever they are bound to.
        self["no-tls"] = self["no-tls"] or self["tls-dir"] is None
        super().postOptions()


class _SupervisorGone(Protocol):
    """
    Stops the worker when its standard input, the supervisor's pipe,
    closes: the supervisor died without passing on a SIGTERM.
    """

    def __init__(self, reactor: IReactorCore) -> None:
        self.reactor = reactor

    def connectionLost(self, reason: object = None) -> None:
        if self.reactor.running:
            self.reactor.stop()


def _nothing_to_reload(signum: int, frame: object) -> None:
    pass


def main(argv: Sequence[str] | None = None) -> None:
    """
    Serve the inherited sockets until the supervisor says stop (SIGTERM)
    or goes away.  Log lines go to standard output, tagged with their
    level, for the supervisor to relay (L{pingproto.workers}).
    """
    from twisted.internet import reactor

    options = WorkerOptions()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
    except usage.UsageError as e:
        raise SystemExit(f"pingproto worker: {e}")
    # The supervisor stamps the time on each line it relays, and logs it at
    # the level named in its tag; below info, as under twistd, nothing.
    observer = FileLogObserver(
        sys.stdout,
        lambda event: f"[{event.get('log_namespace', '-')}#{event['log_level'].name}] {formatEvent(event)}\n",
    )
    at_info = FilteringLogObserver(observer, [LogLevelFilterPredicate(LogLevel.info)])
    globalLogBeginner.beginLoggingTo([at_info], redirectStandardIO=False)
    options["endpoints"] = [AdoptedStreamServerEndpoint(reactor, fd, family) for fd, family in options["inherit"]]
    service = tap.build_service(options, quiet=True)
    # SIGHUP is blocked until here (WorkerPool._spawn).  Without a TLS
    # directory there is nothing to reload; with one, the reloader takes it
    # and puts this back when it stops.  A handler, not SIG_IGN, which
    # would discard a SIGHUP already waiting for the reloader.
    signal.signal(signal.SIGHUP, _nothing_to_reload)
    service.startService()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    tap.take_stop_signals_once(reactor)
    # The supervisor alone decides when workers stop: a Ctrl-C in its
    # terminal reaches it, not us, and it passes on a SIGTERM.  If it dies
    # without doing so, our stdin (its pipe) closes, and we stop too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # mypy reads twisted.internet.stdio's Windows branch, whose StandardIO
    # takes no descriptors.
    stdio.StandardIO(  # type: ignore[call-arg]
        _SupervisorGone(reactor), stdin=0, stdout=os.open(os.devnull, os.O_WRONLY)
    )
    reactor.run()  # installing its signal handlers, as it does by default


if __name__ == "__main__":
    main()
