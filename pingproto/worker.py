"""
One worker of C{twistd pingproto --workers N}: a whole server on sockets
inherited from the supervising twistd process (L{pingproto.workers}).

    python -m pingproto.worker --inherit 3:INET:listen=50 [twistd pingproto options]
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import stat
import sys
from typing import Any, Sequence

from twisted.internet import stdio, tcp, unix
from twisted.internet.endpoints import AdoptedStreamServerEndpoint
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorCore, IStreamServerEndpoint
from twisted.internet.protocol import Protocol
from twisted.protocols.haproxy import proxyEndpoint
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    LogEvent,
    LogLevelFilterPredicate,
    eventAsText,
    globalLogBeginner,
)
from twisted.python import usage

from pingproto import tap
from pingproto._reactor import looping_call
from pingproto.workers import ALIVE, FAMILY_NAMES, HEARTBEAT

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
        FD:FAMILY of a socket to serve (FAMILY: INET, INET6 or UNIX), then
        :haproxy for one behind the PROXY protocol, and :listen=N for one
        only bound, to listen on with a backlog of N once the worker is
        ready (repeatable).
        """
        fd, _, rest = value.partition(":")
        family, *flags = rest.split(":")
        backlog = [flag.removeprefix("listen=") for flag in flags if flag.startswith("listen=")]
        if (
            not fd.isdigit()
            or family not in _FAMILIES
            or any(flag != "haproxy" and not flag.startswith("listen=") for flag in flags)
            or len(backlog) > 1
            or not all(b.isdigit() and int(b) > 0 for b in backlog)
        ):
            raise usage.UsageError(
                f"--inherit {value!r}: expected FD:INET, FD:INET6 or FD:UNIX, then :haproxy or not, then :listen=N or not"
            )
        self["inherit"].append((int(fd), _FAMILIES[family], "haproxy" in flags, int(backlog[0]) if backlog else None))

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


class _SharedUnixPort(unix.Port):
    """
    A UNIX socket that the supervisor bound and owns.  Twisted's port
    would make its file world-writable (0666) as it starts, whatever mode
    the supervisor gave it, and as it stops shut the socket down, which
    ends its listening in every process, and remove the file: one worker
    ending would take the socket away from every other.  (Twisted's TCP
    port spares a socket it adopted the first; not its UNIX one.)
    """

    _shouldShutdown = False

    def startListening(self) -> None:
        # ValueError: a name in the abstract namespace, which has no file
        # (nor does Twisted chmod one).
        with contextlib.suppress(OSError, ValueError):
            self.mode = stat.S_IMODE(os.stat(self._bindPath).st_mode)
        super().startListening()

    def connectionLost(self, reason: Any) -> None:
        tcp.Port.connectionLost(self, reason)


class _SharedUnixAdopter:
    """
    What L{AdoptedStreamServerEndpoint} adopts an inherited UNIX socket
    with, in place of the reactor: a L{_SharedUnixPort}.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor

    def adoptStreamPort(self, fileno: int, family: int, factory: IProtocolFactory) -> IListeningPort:
        port = _SharedUnixPort._fromListeningDescriptor(self._reactor, fileno, factory)
        port.startListening()
        return port


def inherited_endpoint(reactor: Any, fileno: int, family: int, proxied: bool) -> IStreamServerEndpoint:
    """
    The endpoint a worker serves an inherited listening socket with.
    """
    endpoint: IStreamServerEndpoint
    if family == socket.AF_UNIX:
        endpoint = AdoptedStreamServerEndpoint(_SharedUnixAdopter(reactor), fileno, family)
    else:
        endpoint = AdoptedStreamServerEndpoint(reactor, fileno, family)
    return proxyEndpoint(endpoint) if proxied else endpoint


def _listen(fd: int, family: int, backlog: int) -> None:
    """
    Listen on the inherited socket C{fd}, leaving the descriptor open for
    the endpoint that adopts it.
    """
    sock = socket.socket(family, socket.SOCK_STREAM, fileno=fd)
    try:
        sock.listen(backlog)
    finally:
        sock.detach()


def _alive() -> None:
    sys.stdout.buffer.write(ALIVE + b"\n")
    sys.stdout.flush()


def _ignore_sighup(signum: int, frame: object) -> None:
    pass


def _tagged(event: LogEvent) -> str:
    """
    An event as the supervisor relays it: each line tagged with the
    event's namespace and level, a failure's traceback included (the
    event's text alone leaves it out, and its untagged lines would be
    relayed at info).
    """
    tag = f"[{event.get('log_namespace', '-')}#{event['log_level'].name}] "
    text = eventAsText(event, includeTimestamp=False, includeSystem=False)
    return "".join(f"{tag}{line}\n" for line in text.splitlines() or [""])


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
    observer = FileLogObserver(sys.stdout, _tagged)
    at_info = FilteringLogObserver(observer, [LogLevelFilterPredicate(LogLevel.info)])
    globalLogBeginner.beginLoggingTo([at_info], redirectStandardIO=False)
    options["endpoints"] = [
        inherited_endpoint(reactor, fd, family, proxied) for fd, family, proxied, _ in options["inherit"]
    ]
    service = tap.build_service(options, quiet=True)
    # Ready to serve: only now may the kernel queue connections for us.
    for fd, family, _, backlog in options["inherit"]:
        if backlog is not None:
            _listen(fd, family, backlog)
    # SIGHUP is blocked until here (WorkerPool._spawn).  Without a TLS
    # directory there is nothing to reload; with one, the reloader takes it
    # and puts this back when it stops.  A handler, not SIG_IGN, which
    # would discard a SIGHUP already waiting for the reloader.
    signal.signal(signal.SIGHUP, _ignore_sighup)
    # That the reactor turns, for the supervisor, which kills a worker
    # that has gone silent (--worker-timeout): the first line before the
    # "listening" one, so that a worker seen listening has answered.
    looping_call(reactor, _alive).start(HEARTBEAT)
    service.startService()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    tap.take_stop_signals_once(reactor)
    # The supervisor alone decides when workers stop: a Ctrl-C in its
    # terminal reaches it, not us, and it passes on a SIGTERM.  If it dies
    # without doing so, our stdin (its pipe) closes, and we stop too.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Blocked until here too (WorkerPool._spawn): a Ctrl-C while the worker
    # started up ended it with a KeyboardInterrupt's traceback.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    # mypy reads twisted.internet.stdio's Windows branch, whose StandardIO
    # takes no descriptors.
    stdio.StandardIO(  # type: ignore[call-arg]
        _SupervisorGone(reactor), stdin=0, stdout=os.open(os.devnull, os.O_WRONLY)
    )
    reactor.run()  # installing its signal handlers, as it does by default


if __name__ == "__main__":
    main()
