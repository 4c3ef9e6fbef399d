"""
C{--workers N}: N reactor processes serving the same listeners.

A Twisted reactor uses one core.  With C{--workers N} the twistd process
binds every listener itself and starts N worker processes that inherit
listening sockets and each run a whole server on them (TLS, limits,
certificate reload); the kernel hands each new connection to one of them
(L{ReusePortGroup} for TCP, one shared socket otherwise).  The twistd
process supervises: a worker that dies is started again (with a growing
delay if it keeps dying), SIGHUP is passed on so every worker reloads its
certificate, and on SIGTERM every worker is told to stop (each says goodbye
to its clients with 1001) and waited for.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import sys
from typing import Any, Callable, Sequence

from twisted.application.service import Service
from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    _WrapperServerEndpoint,
    serverFromString,
)
from twisted.internet.error import CannotListenError, ProcessExitedAlready
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from pingproto._reactor import looping_call, or_global_reactor
from pingproto.config import behind_proxy, read_number
from pingproto.service import listening_at

__all__ = ["CannotSpawn", "WorkerPool", "worker_count"]

_log = Logger()

# A worker that has not exited by then after SIGTERM is killed.
STOP_TIMEOUT = 10.0
# A worker that dies after serving this long was not crash-looping: the
# delay before the next restart starts again from the shortest.
STABLE_AFTER = 10.0
# Starts in a row that each worker may fail (end within STABLE_AFTER, or
# not start at all) before the pool gives up, once none is running: a
# worker that cannot start (files it cannot read, a bad install) would
# be retried for ever, the supervisor up and serving nothing.
GIVE_UP_AFTER = 4
MAX_WORKERS = 256
# Seconds between a worker's "alive" lines (pingproto.worker), which say
# that its reactor is turning; the supervisor looks at them as often.
HEARTBEAT = 1.0
# The line itself, never logged.
ALIVE = b"pingproto-worker-alive"
# A worker silent for this long is killed and started again (--worker-
# timeout): hung, its socket would keep taking its share of connections.
WORKER_TIMEOUT = 30.0
MIN_WORKER_TIMEOUT = 3.0
# What a worker gets to say it is alive the first time, if the timeout is
# shorter: starting (imports, TLS files) takes seconds on a busy machine.
STARTUP_ALLOWANCE = 60.0
# The names --inherit gives the address families of the sockets a worker
# inherits (pingproto.worker reads them back).
FAMILY_NAMES: dict[int, str] = {socket.AF_INET: "INET", socket.AF_INET6: "INET6", socket.AF_UNIX: "UNIX"}


def worker_count(text: str) -> int:
    """
    Read C{--workers}: a number, or C{auto} for one per core.
    """
    if text == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return min(cores, MAX_WORKERS)
    value = read_number(text, int, "a number or 'auto'")
    if not 1 <= value <= MAX_WORKERS:
        raise ValueError(f"{text!r} must be 1 to {MAX_WORKERS}, or 'auto'")
    return value


worker_count.coerceDoc = "A number of processes, or 'auto' for one per core."  # type: ignore[attr-defined]


def worker_timeout(text: str) -> float:
    """
    Read C{--worker-timeout}: seconds, at least L{MIN_WORKER_TIMEOUT} (a
    busy worker must have time to say it is alive), or 0 for never.
    """
    value = read_number(text, float, "a number of seconds")
    if not (value == 0 or MIN_WORKER_TIMEOUT <= value <= 86400):
        raise ValueError(f"{text!r} seconds is out of range: 0 (never), or from {MIN_WORKER_TIMEOUT:.0f} up to a day")
    return value


worker_timeout.coerceDoc = f"Seconds, at least {MIN_WORKER_TIMEOUT:.0f}; 0 never kills a worker."  # type: ignore[attr-defined]


class CannotSpawn(Exception):
    """
    A worker process could not be started at all (the Python it runs
    with cannot be executed by the user twistd runs as, say): not a
    listening problem, which an L{OSError} out of starting would be taken
    for.
    """


class ReusePortGroup:
    """
    One TCP address served by every worker, each through a listening socket
    of its own (C{SO_REUSEPORT}), so that the kernel spreads new
    connections over the workers by a hash of each connection's addresses.

    With one socket shared by all, every worker is woken for a new
    connection and whichever runs first takes all that are waiting: 600 TLS
    connections opened at once went 187/413 to two workers, and 60 often
    60/0.  Hashed, the spread does not depend on who is scheduled first.

    The group holds a socket bound to the address that does not listen, so
    the port stays the group's while a worker restarts.  That socket has
    C{SO_REUSEPORT}, which would let any other socket with it (another
    C{--workers} instance of the same user) bind and listen there too and
    take a share of the connections; so the address is first bound by a
    socket without it, which fails if anything listens there (a port in
    use fails twistd at start-up), and picks the port when asked for port
    0.  A worker's socket is made when the worker starts, bound, and the
    worker listens on it once it is ready to serve; the supervisor keeps no
    copy.  So a worker that fails to start takes no connection with it, and
    when a worker dies its socket closes with it and the kernel sends new
    connections to the other workers at once (connections still waiting in
    the dead worker's queue are reset, as they would be by any server that
    dies).
    """

    def __init__(self, family: int, host: str, port: int, backlog: int) -> None:
        self.family = family
        self.backlog = backlog
        try:
            # SO_REUSEADDR still, so that connections of an earlier run
            # waiting out TIME_WAIT do not keep a restart from binding.
            probe = self._bound((host, port), reuse_port=False)
        except OSError as e:
            raise CannotListenError(host, port, e) from None
        try:
            # Bound while the probe holds the port, so that nothing can
            # take it in between.
            self._anchor = self._bound(probe.getsockname())
        except OSError as e:
            raise CannotListenError(host, port, e) from None
        finally:
            probe.close()
        self.address = self._anchor.getsockname()

    def _bound(self, address: tuple[Any, ...], reuse_port: bool = True) -> socket.socket:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
        except BaseException:
            sock.close()
            raise
        return sock

    def worker_socket(self) -> socket.socket:
        """
        A new socket bound to the group's address, for one worker, which
        listens on it (with L{backlog}) once it is ready to serve
        (L{pingproto.worker}): until then the kernel sends new connections
        to the other workers, and none is queued for a worker that fails
        to start, to be reset with its socket.
        """
        try:
            return self._bound(self.address)
        except OSError as e:
            host, port = self.address[:2]
            raise CannotListenError(host, port, e) from None

    def getHost(self) -> IPv4Address | IPv6Address:
        """
        The address, as a Twisted port gives it.
        """
        host, port = self.address[:2]
        return IPv6Address("TCP", host, port) if self.family == socket.AF_INET6 else IPv4Address("TCP", host, port)

    def close(self) -> None:
        self._anchor.close()


def reuse_port_group(reactor: Any, description: str) -> ReusePortGroup | None:
    """
    A L{ReusePortGroup} for a C{tcp:} or C{tcp6:} listener (also behind
    C{haproxy:}, whose header each worker reads), or L{None} for any other
    kind (a UNIX socket, an inherited systemd socket), which the workers
    then share.
    """
    endpoint = serverFromString(reactor, description)
    while isinstance(endpoint, _WrapperServerEndpoint):
        endpoint = endpoint._wrappedEndpoint  # noqa: SLF001
    if not hasattr(socket, "SO_REUSEPORT") or type(endpoint) not in (TCP4ServerEndpoint, TCP6ServerEndpoint):
        return None
    family = socket.AF_INET6 if type(endpoint) is TCP6ServerEndpoint else socket.AF_INET
    # Twisted keeps an endpoint's address in these attributes and has no
    # public way to read them back; tests/test_twistd.py serves through them.
    host = endpoint._interface or ("::" if family == socket.AF_INET6 else "0.0.0.0")  # noqa: SLF001
    return ReusePortGroup(family, host, endpoint._port, endpoint._backlog)  # noqa: SLF001


_LEVEL_TAG = re.compile(r"\[[^\]#\s]*#(debug|info|warn|error|critical)\] ")


class _Worker(ProcessProtocol):
    """
    Relays a worker's log lines into the supervisor's log and reports its
    end.
    """

    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.started = pool.reactor.seconds()
        # When it last said it was alive (ALIVE), and whether it has yet;
        # found silent at the last check; killed for silence.
        self.heard = self.started
        self.answered = False
        self.silent = False
        self.killed = False
        self.ended: Deferred[None] = Deferred()
        # The unfinished last line of stdout and of stderr, apart: the two
        # pipes' chunks arrive interleaved.
        self._partial = {1: b"", 2: b""}

    def childDataReceived(self, childFD: int, data: bytes) -> None:
        lines = (self._partial.get(childFD, b"") + data).split(b"\n")
        self._partial[childFD] = lines.pop()
        for line in lines:
            if line == ALIVE:
                self.heard = self.pool.reactor.seconds()
                self.answered = True
            else:
                self._relay(line, childFD)

    def _relay(self, line: bytes, childFD: int) -> None:
        text = line.decode("utf-8", "replace")
        # A worker tags its lines [namespace#level] (pingproto.worker): a
        # warning or an error there is one here, for whoever filters the
        # log by level.  Untagged, a line on standard error is why the
        # worker could not start or a traceback's: an error; anything else
        # is info.
        tag = _LEVEL_TAG.match(text)
        if tag:
            level = LogLevel.levelWithName(tag.group(1))
        else:
            level = LogLevel.error if childFD == 2 else LogLevel.info
        _log.emit(level, "worker {number}: {line}", number=self.number, line=text)

    def processEnded(self, reason: Failure) -> None:
        # A last line without its newline, a traceback's often.
        for fd, partial in sorted(self._partial.items()):
            if partial:
                self._relay(partial, fd)
            self._partial[fd] = b""
        self.pool._ended(self, reason)
        self.ended.callback(None)


class WorkerPool(Service):
    """
    Binds C{listen}, then keeps C{count} workers serving it.

    @param worker_args: the C{twistd pingproto} options each worker gets
        besides the inherited sockets (TLS directory, limits).
    @param give_up: called when no worker can start (L{GIVE_UP_AFTER});
        by default, the reactor is stopped.
    @param timeout: seconds a worker may go without saying it is alive
        before it is killed and started again (0: never).
    """

    def __init__(
        self,
        listen: Sequence[str],
        worker_args: Sequence[str],
        count: int,
        reactor: Any = None,
        scheme: str = "ws",
        give_up: Callable[[], object] | None = None,
        timeout: float = WORKER_TIMEOUT,
    ) -> None:
        reactor = or_global_reactor(reactor)
        self.scheme = scheme
        self.listen = list(listen)
        self.worker_args = list(worker_args)
        self.count = count
        self.reactor = reactor
        # A ReusePortGroup per TCP listener, a non-accepting Port otherwise.
        self.listeners: list[Any] = []
        self.workers: dict[int, _Worker] = {}
        # Short lives in a row, by worker number.
        self._failures: dict[int, int] = {}
        # What to do when no worker can start: stop the reactor.
        self._give_up = give_up or (lambda: self.reactor.stop())
        self.timeout = timeout
        self._watch = looping_call(reactor, self._kill_silent)
        self._previous_hup: Any = None
        # Restarts waiting for their delay, by worker number.
        self._respawns: dict[int, IDelayedCall] = {}
        self._listeners_bound = False

    def privilegedStartService(self) -> None:
        """
        Bind every listener while twistd still has the privileges it sheds
        (C{-u}/C{-g}) before L{startService}: a UNIX socket in a directory
        only root may write, say.  A TCP port is held here too, but each
        worker's own socket on it is bound as the worker starts, after
        the privileges are gone: a port below 1024 with C{-u} and
        C{--workers} needs C{CAP_NET_BIND_SERVICE} (or a lower
        C{net.ipv4.ip_unprivileged_port_start}).
        """
        super().privilegedStartService()
        self._bind()

    def startService(self) -> None:
        super().startService()
        # Bound already under twistd; not when started on its own.
        self._bind()
        self._previous_hup = signal.signal(signal.SIGHUP, self._sighup)
        for number in range(1, self.count + 1):
            self._spawn(number)
        if self.timeout:
            self._watch.start(HEARTBEAT, now=False)

    def _kill_silent(self) -> None:
        """
        Kill every worker that has not said it is alive for L{timeout}
        seconds at two checks in a row: its reactor is stuck (or the
        process stopped), and its clients and its share of new connections
        wait for nothing.  It is started again as one that died.

        Two checks, with the reactor reading the workers' pipes between
        them: after this process itself did not run for a while (stopped,
        the machine suspended, the clock stepped), the timer comes before
        the lines the workers wrote meanwhile are read, and every worker
        looks silent once.
        """
        now = self.reactor.seconds()
        for worker in list(self.workers.values()):
            limit = self.timeout if worker.answered else max(self.timeout, STARTUP_ALLOWANCE)
            was_silent, worker.silent = worker.silent, now - worker.heard > limit
            if was_silent and worker.silent and not worker.killed and worker.transport is not None:
                worker.killed = True
                _log.error(
                    "worker {number} has not answered for {silent:.1f} s; killing it",
                    number=worker.number,
                    silent=now - worker.heard,
                )
                with contextlib.suppress(ProcessExitedAlready):
                    worker.transport.signalProcess("KILL")

    def _bind(self) -> None:
        if self._listeners_bound:
            return
        self._listeners_bound = True
        for description in self.listen:
            # Bound at start-up, so that a port in use fails twistd at once;
            # accepting is left to the workers.
            listener = reuse_port_group(self.reactor, description) or self._shared_port(description)
            self.listeners.append(listener)
            _log.info(
                "pingproto listening on {where} with {count} workers",
                where=listening_at(self.scheme, listener.getHost()),
                count=self.count,
            )

    def _close_listeners(self) -> Deferred[Any]:
        """
        Close every listener.  Fires once Twisted's own ports are closed
        too, a reactor turn later (their sockets and a unix socket's file
        are gone then), so that a program stopping the pool can bind the
        same address as soon as the Deferred fires.
        """
        closing = []
        for listener in self.listeners:
            if isinstance(listener, ReusePortGroup):
                listener.close()
            else:
                closing.append(maybeDeferred(listener.stopListening))
        self.listeners = []
        self._listeners_bound = False
        return gatherResults(closing)

    def _shared_port(self, description: str) -> Any:
        """
        Listen on C{description} without accepting: the workers share the
        socket and accept on it.
        """
        d = serverFromString(self.reactor, description).listen(Factory())
        outcome: list[Any] = []
        # Taken out of the Deferred, so that it is not also logged as an
        # unhandled error when the Deferred is collected.
        d.addBoth(outcome.append)
        port = outcome[0] if outcome else None
        if isinstance(port, Failure):
            port.raiseException()
        if port is None:
            raise RuntimeError(f"{description}: cannot hand this kind of listener to workers")
        port.stopReading()
        return port

    def _sighup(self, signum: int, frame: object) -> None:
        self.reactor.callFromThread(self._signal_all, "HUP")

    def _signal_all(self, name: str) -> None:
        for worker in self.workers.values():
            try:
                # None if its spawnProcess failed.
                if worker.transport is not None:
                    worker.transport.signalProcess(name)
            except Exception:
                # ProcessExitedAlready, above all: a worker reaped whose
                # pipes are still open stays in self.workers until they
                # close (processEnded).  Whatever it is, the other workers
                # still get the signal.
                pass

    def _spawn(self, number: int) -> None:
        fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        inherit = []
        own: list[socket.socket] = []
        try:
            for index, (description, listener) in enumerate(zip(self.listen, self.listeners)):
                child_fd = 3 + index
                spec = ""
                if isinstance(listener, ReusePortGroup):
                    sock = listener.worker_socket()
                    own.append(sock)
                    fds[child_fd], family = sock.fileno(), listener.family
                    spec = f":listen={listener.backlog}"
                else:
                    fds[child_fd], family = listener.fileno(), listener.socket.family
                # The workers read the PROXY protocol header themselves.
                if behind_proxy(description):
                    spec = ":haproxy" + spec
                inherit += ["--inherit", f"{child_fd}:{FAMILY_NAMES.get(family, 'UNIX')}{spec}"]
            argv = [sys.executable, "-m", "pingproto.worker", *inherit, *self.worker_args]
            worker = _Worker(self, number)
            self.workers[number] = worker
            # The worker starts with SIGHUP and SIGINT blocked (a signal
            # mask outlives exec) and unblocks them once it can take them:
            # a SIGHUP passed on, or a Ctrl-C in the terminal, while it
            # starts up waits for it, instead of ending it.
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP, signal.SIGINT})
            try:
                self.reactor.spawnProcess(worker, sys.executable, argv, env=dict(os.environ), childFDs=fds)
            except OSError as e:
                self.workers.pop(number, None)
                raise CannotSpawn(f"cannot start worker process {sys.executable}: {e.strerror or e}") from None
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        finally:
            # The worker has its copy; with ours closed, its socket ends with it.
            for sock in own:
                sock.close()
        assert worker.transport is not None  # spawnProcess connected it
        _log.info("worker {number} started, pid {pid}", number=number, pid=worker.transport.pid)

    def _ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.number) is worker:
            del self.workers[worker.number]
        if not self.running:
            return
        lived = self.reactor.seconds() - worker.started
        # However it ended: a worker that exits at once, even with status
        # 0, is not serving.
        self._failures[worker.number] = 0 if lived >= STABLE_AFTER else self._failures.get(worker.number, 0) + 1
        self._start_again(worker.number, LogLevel.warn, "exited", reason.getErrorMessage())

    def _start_again(self, number: int, level: LogLevel, what: str, why: object) -> None:
        """
        Worker C{number} has ended, or could not be started: say so, and
        start it again after a delay (L{_respawn_later}), or give up if no
        worker is running and each has failed L{GIVE_UP_AFTER} starts in a
        row.
        """
        if self.workers or any(self._failures.get(n, 0) < GIVE_UP_AFTER for n in range(1, self.count + 1)):
            delay = self._respawn_later(number)
            _log.emit(
                level,
                "worker {number} {what} ({why}); starting it again in {delay:.1f} s",
                number=number,
                what=what,
                why=why,
                delay=delay,
            )
            return
        _log.emit(level, "worker {number} {what} ({why})", number=number, what=what, why=why)
        _log.critical(
            "no worker could start: each ended within {stable:.0f} s, {times} times in a row (why is above); "
            "stopping",
            stable=STABLE_AFTER,
            times=GIVE_UP_AFTER,
        )
        for call in self._respawns.values():
            call.cancel()
        self._respawns.clear()
        self._give_up()

    def _respawn_later(self, number: int) -> float:
        """
        Start worker C{number} again after a delay, longer the more often
        in a row it has failed, so that a worker that cannot start does
        not take the CPU starting; return the delay.
        """
        delay = min(30.0, 0.5 * 2 ** min(self._failures.get(number, 0), 6))
        self._respawns[number] = self.reactor.callLater(delay, self._respawn, number)
        return delay

    def _respawn(self, number: int) -> None:
        self._respawns.pop(number, None)
        if self.running and number not in self.workers:
            try:
                self._spawn(number)
            except (OSError, CannotListenError, CannotSpawn) as e:
                # No listening socket for it (out of file descriptors, say),
                # or no process: the others serve meanwhile.
                cause = e.socketError if isinstance(e, CannotListenError) else e
                self.workers.pop(number, None)
                self._failures[number] = self._failures.get(number, 0) + 1
                self._start_again(number, LogLevel.error, "not started", getattr(cause, "strerror", None) or cause)

    def stopService(self) -> Deferred[Any]:
        if not self.running:
            # Bound by privilegedStartService, perhaps, and never started.
            return self._close_listeners()
        super().stopService()
        if self._watch.running:
            self._watch.stop()
        signal.signal(signal.SIGHUP, self._previous_hup or signal.SIG_DFL)
        # A worker waiting to be started again stays stopped.
        for call in self._respawns.values():
            if call.active():
                call.cancel()
        self._respawns.clear()
        ended = [worker.ended for worker in self.workers.values()]
        self._signal_all("TERM")

        def kill() -> None:
            _log.warn(
                "{count} worker(s) still running {timeout:.0f} s after SIGTERM: killed",
                count=len(self.workers),
                timeout=STOP_TIMEOUT,
            )
            self._signal_all("KILL")

        killer = self.reactor.callLater(STOP_TIMEOUT, kill)

        def done(_: object) -> Deferred[Any]:
            if killer.active():
                killer.cancel()
            return self._close_listeners()

        return gatherResults(ended).addBoth(done)

