"""
C{--workers N}: one listening socket, N reactor processes serving it.

A Twisted reactor uses one core.  With C{--workers N} the twistd process
binds every listener itself, stops accepting on them, and starts N worker
processes that inherit the sockets and each run a whole server on them (TLS,
limits, certificate reload); the kernel hands each new connection to one of
them.  The twistd process supervises: a worker that dies is started again
(with a growing delay if it keeps dying), SIGHUP is passed on so every
worker reloads its certificate, and on SIGTERM every worker is told to stop
(each says goodbye to its clients with 1001) and waited for.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from typing import Any, Sequence

from twisted.application.service import Service
from twisted.internet.defer import Deferred, gatherResults, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import ProcessDone
from twisted.internet.protocol import Factory, ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from pingproto.config import read_number

__all__ = ["WorkerPool", "worker_count"]

_log = Logger()

# A worker that has not exited by then after SIGTERM is killed.
STOP_TIMEOUT = 10.0


def worker_count(text: str) -> int:
    """
    Read C{--workers}: a number, or C{auto} for one per core.
    """
    if text == "auto":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    value = read_number(text, int, "a number or 'auto'", prefix="--workers ")
    if not 1 <= value <= 256:
        raise ValueError(f"--workers {value}: give 1 to 256")
    return value


worker_count.coerceDoc = "A number of processes, or 'auto' for one per core."  # type: ignore[attr-defined]


class _Worker(ProcessProtocol):
    """
    Relays a worker's log lines into the supervisor's log and reports its
    end.
    """

    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.number = number
        self.ended: Deferred[None] = Deferred()
        self._partial = b""

    def outReceived(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            _log.info("worker {number}: {line}", number=self.number, line=line.decode("utf-8", "replace"))

    errReceived = outReceived

    def processEnded(self, reason: Failure) -> None:
        self.pool._ended(self, reason)
        self.ended.callback(None)


class WorkerPool(Service):
    """
    Binds C{listen}, then keeps C{count} workers serving it.

    @param worker_args: the C{twistd pingproto} options each worker gets
        besides the inherited sockets (TLS directory, limits).
    """

    def __init__(
        self,
        listen: Sequence[str],
        worker_args: Sequence[str],
        count: int,
        reactor: Any = None,
        scheme: str = "ws",
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.scheme = scheme
        self.listen = list(listen)
        self.worker_args = list(worker_args)
        self.count = count
        self.reactor = reactor
        self.ports: list[Any] = []
        self.workers: dict[int, _Worker] = {}
        self._failures = 0
        self._previous_hup: Any = None

    def startService(self) -> None:
        super().startService()
        for description in self.listen:
            # Bound here, at start-up, so that a port in use fails twistd at
            # once; accepting is left to the workers.
            d = serverFromString(self.reactor, description).listen(Factory())
            port = d.result if d.called else None
            if isinstance(port, Failure):
                port.raiseException()
            if port is None:
                raise RuntimeError(f"{description}: cannot hand this kind of listener to workers")
            port.stopReading()
            self.ports.append(port)
            address = port.getHost()
            host = getattr(address, "host", None)
            where = f"{host}:{address.port}" if host is not None else str(address)
            _log.info(
                "pingproto listening on {scheme}://{where}/ with {count} workers",
                scheme=self.scheme,
                where=f"[{host}]:{address.port}" if host and ":" in host else where,
                count=self.count,
            )
        self._previous_hup = signal.signal(signal.SIGHUP, self._sighup)
        for number in range(1, self.count + 1):
            self._spawn(number)

    def _sighup(self, signum: int, frame: object) -> None:
        self.reactor.callFromThread(self._signal_all, "HUP")

    def _signal_all(self, name: str) -> None:
        for worker in self.workers.values():
            try:
                worker.transport.signalProcess(name)
            except Exception:
                pass

    def _spawn(self, number: int) -> None:
        fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        inherit = []
        for index, port in enumerate(self.ports):
            child_fd = 3 + index
            fds[child_fd] = port.fileno()
            family = port.socket.family
            inherit += ["--inherit", f"{child_fd}:{'INET6' if family == socket.AF_INET6 else 'INET' if family == socket.AF_INET else 'UNIX'}"]
        argv = [sys.executable, "-m", "pingproto.worker", *inherit, *self.worker_args]
        worker = _Worker(self, number)
        self.workers[number] = worker
        self.reactor.spawnProcess(worker, sys.executable, argv, env=dict(os.environ), childFDs=fds)
        _log.info("worker {number} started, pid {pid}", number=number, pid=worker.transport.pid)

    def _ended(self, worker: _Worker, reason: Failure) -> None:
        if self.workers.get(worker.number) is worker:
            del self.workers[worker.number]
        if not self.running:
            return
        self._failures = 0 if reason.check(ProcessDone) else self._failures + 1
        delay = min(30.0, 0.5 * 2 ** min(self._failures, 6))
        _log.warn(
            "worker {number} exited ({why}); starting it again in {delay:.1f} s",
            number=worker.number,
            why=reason.getErrorMessage(),
            delay=delay,
        )
        self.reactor.callLater(delay, self._respawn, worker.number)

    def _respawn(self, number: int) -> None:
        if self.running and number not in self.workers:
            self._spawn(number)

    def stopService(self) -> Deferred[Any]:
        if not self.running:
            return succeed(None)
        super().stopService()
        signal.signal(signal.SIGHUP, self._previous_hup or signal.SIG_DFL)
        ended = [worker.ended for worker in self.workers.values()]
        self._signal_all("TERM")

        def kill() -> None:
            self._signal_all("KILL")

        killer = self.reactor.callLater(STOP_TIMEOUT, kill)

        def done(_: object) -> None:
            if killer.active():
                killer.cancel()
            for port in self.ports:
                port.stopListening()

        return gatherResults(ended).addBoth(done)

