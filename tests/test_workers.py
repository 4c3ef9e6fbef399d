"""
The worker pool's listening sockets, on real sockets on loopback; whole
pools of worker processes are in tests/test_twistd.py.
"""

from __future__ import annotations

import errno
import os
import signal
import socket
import sys
from typing import Any, Generator

from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.error import CannotListenError, ProcessDone, ProcessTerminated
from twisted.internet.protocol import Factory
from twisted.internet.task import Clock
from twisted.logger import Logger, LogLevel, capturedLogs, formatEvent
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pingproto import tap
from pingproto.worker import _tagged, inherited_endpoint
from pingproto.workers import (
    ALIVE,
    GIVE_UP_AFTER,
    HEARTBEAT,
    STARTUP_ALLOWANCE,
    STABLE_AFTER,
    ReusePortGroup,
    WorkerPool,
    _Worker,
    reuse_port_group,
    worker_timeout,
)

from .sockets import socket_dir


def accept_all(sock: socket.socket) -> int:
    """
    Accept every connection waiting on C{sock}; how many there were.
    """
    sock.setblocking(False)
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


class ReusePortGroupTests(SynchronousTestCase):
    def group(self) -> ReusePortGroup:
        group = ReusePortGroup(socket.AF_INET, "127.0.0.1", 0, 128)
        self.addCleanup(group.close)
        return group

    def listening(self, group: ReusePortGroup) -> socket.socket:
        sock = group.worker_socket()
        self.addCleanup(sock.close)
        sock.listen(group.backlog)
        return sock

    def test_workerSocketServesOnceListening(self) -> None:
        """
        A worker's socket takes no connection until the worker listens on
        it: the kernel sends them all to the sockets listening.  (Made
        listening, it took its share at once, and when its worker failed
        to start, those were reset.)
        """
        group = self.group()
        port = group.address[1]
        serving = self.listening(group)
        starting = group.worker_socket()
        self.addCleanup(starting.close)
        for _ in range(64):
            self.connect(port)
        self.assertEqual(accept_all(serving), 64)

    def connect(self, port: int) -> socket.socket:
        client = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(client.close)
        return client

    def test_connectionsSpreadOverSockets(self) -> None:
        """
        Connections to the group's address are spread over its listening
        sockets by the kernel, whoever accepts first: of 64, each of two
        sockets gets at least 10 (fewer happens about once in ten million).
        """
        group = self.group()
        port = group.address[1]
        first, second = self.listening(group), self.listening(group)
        for _ in range(64):
            self.connect(port)
        counts = [accept_all(first), accept_all(second)]
        self.assertEqual(sum(counts), 64, counts)
        self.assertGreaterEqual(min(counts), 10, counts)

    def test_portKeptWithoutListeners(self) -> None:
        """
        With no worker listening, the port is still the group's: a
        connection is refused (not queued for nobody), another program
        cannot bind it, and a new listening socket serves it again.
        """
        group = self.group()
        port = group.address[1]
        self.listening(group).close()
        self.assertRaises(ConnectionRefusedError, socket.create_connection, ("127.0.0.1", port))
        other = socket.socket()
        self.addCleanup(other.close)
        with self.assertRaises(OSError) as caught:
            other.bind(("127.0.0.1", port))
        self.assertEqual(caught.exception.errno, errno.EADDRINUSE)
        sock = self.listening(group)
        self.connect(port)
        self.assertEqual(accept_all(sock), 1)

    def test_portInUse(self) -> None:
        """
        An address another program listens on is refused with Twisted's
        CannotListenError, naming it.
        """
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with self.assertRaises(CannotListenError) as caught:
            ReusePortGroup(socket.AF_INET, "127.0.0.1", port, 128)
        self.assertIn(f"127.0.0.1:{port}", str(caught.exception))

    def test_onlyTcpListenersGrouped(self) -> None:
        """
        tcp: and tcp6: descriptions, behind haproxy: or not, get a group
        with their address and listen queue; a UNIX socket is shared
        instead.
        """
        group = reuse_port_group(Clock(), "tcp:0:interface=127.0.0.1:backlog=77")
        assert group is not None
        self.addCleanup(group.close)
        self.assertEqual((group.family, group.address[0], group.backlog), (socket.AF_INET, "127.0.0.1", 77))
        self.assertEqual(group.getHost().port, group.address[1])
        group6 = reuse_port_group(Clock(), "tcp6:0:interface=\\:\\:1")
        assert group6 is not None
        self.addCleanup(group6.close)
        self.assertEqual((group6.family, group6.getHost().host), (socket.AF_INET6, "::1"))
        # Behind haproxy: too, whose header each worker reads.
        proxied = reuse_port_group(Clock(), "haproxy:tcp:0:interface=127.0.0.1:backlog=78")
        assert proxied is not None
        self.addCleanup(proxied.close)
        self.assertEqual((proxied.family, proxied.address[0], proxied.backlog), (socket.AF_INET, "127.0.0.1", 78))
        self.assertIsNone(reuse_port_group(Clock(), "unix:" + self.mktemp()))


class RespawnTests(SynchronousTestCase):
    def pool_on_taken_port(self, clock: Clock) -> WorkerPool:
        """
        A pool of two whose one listener points at a port another program
        holds: making a worker's socket there fails.
        """
        group = ReusePortGroup(socket.AF_INET, "127.0.0.1", 0, 128)
        self.addCleanup(group.close)
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        group.address = taken.getsockname()
        pool = WorkerPool([f"tcp:{group.address[1]}:interface=127.0.0.1"], ["--no-tls"], 2, reactor=clock)
        pool.listeners = [group]
        return pool

    def test_noSocketTriedAgainLater(self) -> None:
        """
        A worker whose listening socket cannot be made is not started; the
        log says why and when it will be tried again, and it is.
        """
        clock = Clock()
        pool = self.pool_on_taken_port(clock)
        pool.running = True
        with capturedLogs() as events:
            pool._respawn(1)
        self.assertEqual(pool.workers, {})
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(errors, ["worker 1 not started (Address already in use); starting it again in 1.0 s"])
        [retry] = clock.getDelayedCalls()
        self.assertEqual((retry.getTime(), retry.func, retry.args), (1.0, pool._respawn, (1,)))

    def test_firstSocketRefusedNamesAddress(self) -> None:
        """
        A worker's socket that cannot be made at start-up (a port below
        1024 after C{-u}, say) stops start-up with the address in the
        error, as any listener that cannot listen does.
        """
        pool = self.pool_on_taken_port(Clock())
        [group] = pool.listeners
        pool._listeners_bound = True
        previous = signal.getsignal(signal.SIGHUP)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        with self.assertRaises(CannotListenError) as caught:
            pool.startService()
        self.assertIn("127.0.0.1:%d" % group.address[1], str(caught.exception))
        self.assertEqual(pool.workers, {})

    def running_pool(self) -> tuple[WorkerPool, Clock]:
        """
        A running pool, on a clock, that starts no process: worker 1's
        restarts are timed, while worker 2 runs on (so that the pool does
        not give up on worker 1's crash loop).
        """
        clock = Clock()
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock)
        pool.running = True
        pool.workers[2] = _Worker(pool, 2)
        return pool, clock

    def ends_after(self, pool: WorkerPool, clock: Clock, seconds: float, reason: Failure | None = None) -> float:
        """
        The delay before a worker that ends after C{seconds} (by default
        exiting with status 1) is started again.
        """
        worker = _Worker(pool, 1)
        clock.advance(seconds)
        pool._ended(worker, reason or Failure(ProcessTerminated(exitCode=1)))
        [restart] = clock.getDelayedCalls()
        delay = restart.getTime() - clock.seconds()
        restart.cancel()
        pool._respawns.clear()
        return delay

    def test_delayBackToShortestAfterStableWorker(self) -> None:
        """
        The restart delay doubles while workers die soon after starting,
        and is back to the shortest once a worker that had served for
        STABLE_AFTER seconds dies: one crash a day is not a crash loop.
        """
        pool, clock = self.running_pool()
        self.assertEqual([self.ends_after(pool, clock, 1.0) for _ in range(4)], [1.0, 2.0, 4.0, 8.0])
        self.assertEqual(self.ends_after(pool, clock, STABLE_AFTER), 0.5)
        self.assertEqual(self.ends_after(pool, clock, 1.0), 1.0)

    def test_delayAtMostThirtySeconds(self) -> None:
        """
        However long the crash loop, a worker is started again within
        30 s: 1, 2, 4, 8, 16, then 30 (not 32), and 30 after that, even
        after a night of crashes (1100 of them: 2 ** 1100 would not even
        fit in a float).
        """
        pool, clock = self.running_pool()
        delays = [self.ends_after(pool, clock, 1.0) for _ in range(1100)]
        self.assertEqual(delays[:8], [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0])
        self.assertEqual(set(delays[5:]), {30.0})

    def test_quickCleanExitIsAFailure(self) -> None:
        """
        A worker that exits with status 0 soon after starting is not
        serving either: its restart is delayed as a crash's is.  (It was
        started again every half second, however often it did.)
        """
        pool, clock = self.running_pool()
        self.assertEqual([self.ends_after(pool, clock, 0.05, Failure(ProcessDone(0))) for _ in range(3)], [1.0, 2.0, 4.0])

    def test_delayCountedPerWorker(self) -> None:
        """
        Each worker's restart delay counts its own failures: one worker's
        crash loop neither lengthens another's first restart nor is cut
        short when another, long-lived, dies.
        """
        clock = Clock()
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock)
        pool.running = True
        long_lived = _Worker(pool, 2)
        for _ in range(3):
            pool._ended(_Worker(pool, 1), Failure(ProcessTerminated(exitCode=1)))
            pool._respawns.pop(1).cancel()
        clock.advance(STABLE_AFTER)
        pool._ended(long_lived, Failure(ProcessTerminated(exitCode=1)))
        pool._ended(_Worker(pool, 1), Failure(ProcessTerminated(exitCode=1)))
        delays = {number: call.getTime() - clock.seconds() for number, call in pool._respawns.items()}
        self.assertEqual(delays, {1: 8.0, 2: 0.5})
        for call in pool._respawns.values():
            call.cancel()

    def test_givesUpWhenNoWorkerCanStart(self) -> None:
        """
        Once no worker is running and each has ended within STABLE_AFTER
        GIVE_UP_AFTER times in a row, the pool says how the last one ended,
        then in one critical line that it gives up, and starts none again;
        not while one still runs, however often the others fail.
        """
        clock = Clock()
        gave_up: list[None] = []
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock, give_up=lambda: gave_up.append(None))
        pool.running = True
        survivor = pool.workers[2] = _Worker(pool, 2)
        with capturedLogs() as events:
            for _ in range(GIVE_UP_AFTER + 2):
                pool._ended(_Worker(pool, 1), Failure(ProcessTerminated(exitCode=1)))
                pool._respawns.pop(1).cancel()
            self.assertEqual(gave_up, [])
            for _ in range(GIVE_UP_AFTER - 1):
                pool._ended(_Worker(pool, 2), Failure(ProcessTerminated(exitCode=1)))
                pool._respawns.pop(2).cancel()
            self.assertEqual(gave_up, [])
            pool._ended(survivor, Failure(ProcessTerminated(exitCode=1)))
        self.assertEqual(gave_up, [None])
        self.assertEqual(clock.getDelayedCalls(), [])
        last = [formatEvent(e) for e in events[-2:]]
        self.assertEqual(
            last,
            [
                "worker 2 exited (A process has ended with a probable error condition: process ended with exit code 1.)",
                f"no worker could start: each ended within 10 s, {GIVE_UP_AFTER} times in a row (why is above); stopping",
            ],
        )
        self.assertEqual(events[-1]["log_level"], LogLevel.critical)

    def test_previousSighupHandlerRestored(self) -> None:
        """
        Stopping the pool gives SIGHUP back to the handler it had before
        the pool started (a program's own); SIG_DFL instead would let a
        later SIGHUP end the program.
        """
        def mine(signum: int, frame: object) -> None:
            pass

        previous = signal.signal(signal.SIGHUP, mine)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        pool = WorkerPool([], ["--no-tls"], 0, reactor=Clock())
        pool.startService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), pool._sighup)
        self.successResultOf(pool.stopService())
        self.assertIs(signal.getsignal(signal.SIGHUP), mine)

    def test_stopCancelsRestarts(self) -> None:
        """
        Stopping the pool cancels the restarts still waiting for their
        delay: no worker is started after the supervisor was told to stop.
        """
        clock = Clock()
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock)
        pool.running = True
        pool._previous_hup = signal.getsignal(signal.SIGHUP)
        for number in (1, 2):
            pool._ended(_Worker(pool, number), Failure(ProcessTerminated(exitCode=1)))
        self.assertEqual(len(clock.getDelayedCalls()), 2)
        self.successResultOf(pool.stopService())
        self.assertEqual(clock.getDelayedCalls(), [])


class _SignalsRecorded:
    pid = 4242

    def __init__(self) -> None:
        self.signals: list[str] = []

    def signalProcess(self, name: str) -> None:
        self.signals.append(name)


class SilentWorkerTests(SynchronousTestCase):
    def watched_pool(self, timeout: float = 5.0) -> tuple[WorkerPool, Clock, _Worker, _Worker]:
        """
        A pool watching two workers on a clock, each with a transport that
        records the signals it is sent.
        """
        clock = Clock()
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock, timeout=timeout)
        pool.running = True
        first, second = _Worker(pool, 1), _Worker(pool, 2)
        for worker in (first, second):
            worker.transport = _SignalsRecorded()  # type: ignore[assignment]
            pool.workers[worker.number] = worker
        pool._watch.start(HEARTBEAT, now=False)
        self.addCleanup(pool._watch.stop)
        return pool, clock, first, second

    def test_silentWorkerKilled(self) -> None:
        """
        A worker that has not said it is alive for the pool's timeout at
        two checks in a row is killed, once, with a line saying so; one
        that says it every second is left alone, and its "alive" lines are
        not logged.
        """
        pool, clock, hung, busy = self.watched_pool()
        with capturedLogs() as events:
            hung.childDataReceived(1, ALIVE + b"\n")
            for _ in range(8):
                clock.advance(HEARTBEAT)
                busy.childDataReceived(1, ALIVE + b"\n")
        self.assertEqual(hung.transport.signals, ["KILL"])  # type: ignore[attr-defined]
        self.assertEqual(busy.transport.signals, [])  # type: ignore[attr-defined]
        self.assertEqual([formatEvent(e) for e in events], ["worker 1 has not answered for 7.0 s; killing it"])

    def test_startingGetsLonger(self) -> None:
        """
        A worker that has not said it is alive yet gets STARTUP_ALLOWANCE
        to start, a short timeout notwithstanding: on a busy machine, with
        many workers starting, one was killed while it started, and that
        counted towards giving up on all of them.
        """
        pool, clock, starting, _ = self.watched_pool(timeout=3.0)
        pool.workers.pop(2)
        for _ in range(int(STARTUP_ALLOWANCE) + 1):
            clock.advance(HEARTBEAT)
        self.assertEqual(starting.transport.signals, [])  # type: ignore[attr-defined]
        clock.advance(HEARTBEAT)
        self.assertEqual(starting.transport.signals, ["KILL"])  # type: ignore[attr-defined]

    def test_supervisorPausedKillsNone(self) -> None:
        """
        When the supervisor itself did not run for longer than the timeout
        (stopped, the machine suspended, the clock stepped), no worker is
        killed for it: the lines they wrote meanwhile, read after the
        first check, count before the second.  Every worker was killed at
        once.
        """
        pool, clock, first, second = self.watched_pool()
        for worker in (first, second):
            worker.childDataReceived(1, ALIVE + b"\n")
        clock.advance(HEARTBEAT)
        # The watch's next turn comes 40 s late.
        [watch] = clock.getDelayedCalls()
        watch.delay(39.0)
        clock.advance(40.0)
        self.assertEqual([w.transport.signals for w in (first, second)], [[], []])  # type: ignore[attr-defined]
        for worker in (first, second):
            worker.childDataReceived(1, ALIVE + b"\n")
        clock.advance(HEARTBEAT)
        self.assertEqual([w.transport.signals for w in (first, second)], [[], []])  # type: ignore[attr-defined]

    def test_timeoutOption(self) -> None:
        """
        C{--worker-timeout} takes 0 (never) or from 3 seconds to a day,
        saying so otherwise.
        """
        self.assertEqual([worker_timeout(t) for t in ("0", "3", "30", "86400")], [0, 3, 30, 86400])
        for bad in ("1", "-5", "86401", "nan", "soon"):
            self.assertRaises(ValueError, worker_timeout, bad)


class WorkerLogLineTests(SynchronousTestCase):
    def test_failureKeptAndEveryLineTagged(self) -> None:
        """
        A worker writes an event with a failure (an error in a timed call,
        say) with its traceback, every line tagged with the event's level,
        so that the supervisor relays all of it as that level: the
        traceback was left out, and only the summary reached the log.
        """
        try:
            1 / 0
        except ZeroDivisionError:
            failure = Failure()
        with capturedLogs() as events:
            Logger(namespace="some.where").failure("while handling timed call", failure)
        self.flushLoggedErrors(ZeroDivisionError)
        lines = _tagged(events[0]).splitlines()
        self.assertEqual(lines[0], "[some.where#critical] while handling timed call")
        self.assertEqual(lines[-1], "[some.where#critical] builtins.ZeroDivisionError: division by zero")
        self.assertTrue(all(line.startswith("[some.where#critical] ") for line in lines), lines)
        self.assertGreater(len(lines), 3)


class WorkerOutputTests(SynchronousTestCase):
    def test_linesKeptApartAndFlushed(self) -> None:
        """
        A worker's stdout and stderr are relayed line by line, each pipe's
        unfinished line kept apart from the other's, and a last line
        without a newline (a dying worker's) is relayed when it exits.
        """
        worker = _Worker(WorkerPool([], ["--no-tls"], 1, reactor=Clock()), 3)
        with capturedLogs() as events:
            worker.childDataReceived(1, b"out one\nout par")
            worker.childDataReceived(2, b"err one\nValueError: bad")
            worker.childDataReceived(1, b"tial\n")
            worker.processEnded(Failure(ProcessTerminated(exitCode=1)))
        self.assertEqual(
            [formatEvent(e) for e in events],
            ["worker 3: out one", "worker 3: err one", "worker 3: out partial", "worker 3: ValueError: bad"],
        )


    def test_levelsKept(self) -> None:
        """
        A line the worker tagged with its level is logged at that level
        (a failed reload is an error in the supervisor's log too); one
        without a tag, a traceback's, at info.
        """
        worker = _Worker(WorkerPool([], ["--no-tls"], 1, reactor=Clock()), 1)
        with capturedLogs() as events:
            worker.childDataReceived(
                1,
                b"[pingproto.reload#error] TLS reload (SIGHUP) failed\n"
                b"[pingproto.service#warn] expires soon\n"
                b"[pingproto.service#info] pingproto listening on ws://127.0.0.1:1/\n"
                b"Traceback (most recent call last):\n",
            )
        self.assertEqual(
            [e["log_level"] for e in events], [LogLevel.error, LogLevel.warn, LogLevel.info, LogLevel.info]
        )
        self.assertEqual(formatEvent(events[0]), "worker 1: [pingproto.reload#error] TLS reload (SIGHUP) failed")

    def test_standardErrorIsAnError(self) -> None:
        """
        An untagged line on a worker's standard error (why it could not
        start: a TLS file it cannot read after -u; a traceback) is an
        error, the last one without its newline too; on standard output,
        info.
        """
        worker = _Worker(WorkerPool([], ["--no-tls"], 1, reactor=Clock()), 1)
        with capturedLogs() as events:
            worker.childDataReceived(1, b"a line\n")
            worker.childDataReceived(2, b"pingproto: cannot read /etc/tls/tls.key: Permission denied")
            worker.processEnded(Failure(ProcessDone(0)))
        relayed = [(e["log_level"], formatEvent(e)) for e in events if formatEvent(e).startswith("worker 1: ")]
        self.assertEqual(
            relayed,
            [
                (LogLevel.info, "worker 1: a line"),
                (LogLevel.error, "worker 1: pingproto: cannot read /etc/tls/tls.key: Permission denied"),
            ],
        )


class WorkerPoolListenTests(TestCase):
    """
    A pool's listeners on the real reactor: a trial L{TestCase}, so that the
    reactor runs while Twisted closes its ports (a turn after
    C{stopListening}) and a test that leaves one open is failed.
    """

    @inlineCallbacks
    def test_boundBeforeStart(self) -> Generator[Deferred[Any], Any, None]:
        """
        privilegedStartService binds every listener (twistd calls it before
        shedding privileges with -u/-g, then startService): the addresses
        are known and held, and no worker is started yet.  stopService
        closes them even so, and fires once the addresses are free again.
        """
        from twisted.internet import reactor

        path = os.path.join(socket_dir(self), "s.sock")
        pool = WorkerPool(["tcp:0:interface=127.0.0.1", "unix:" + path], ["--no-tls"], 2, reactor=reactor)
        pool.privilegedStartService()
        self.addCleanup(pool.stopService)
        tcp, unix = pool.listeners
        port = tcp.getHost().port
        self.assertNotEqual(port, 0)
        self.assertTrue(os.path.exists(path))
        self.assertEqual((pool.workers, pool.running), ({}, False))
        taken = socket.socket()
        self.addCleanup(taken.close)
        self.assertRaises(OSError, taken.bind, ("127.0.0.1", port))
        yield pool.stopService()
        self.assertEqual(pool.listeners, [])
        self.assertFalse(os.path.exists(path))
        taken.bind(("127.0.0.1", port))

    def test_secondPoolOnSamePortRefused(self) -> None:
        """
        A second pool on the port of one whose workers listen (another
        --workers instance, same user) fails to start with Twisted's
        CannotListenError naming the address, instead of taking a share
        of the connections.
        """
        from twisted.internet import reactor

        first = WorkerPool(["tcp:0:interface=127.0.0.1"], ["--no-tls"], 2, reactor=reactor)
        first.privilegedStartService()
        self.addCleanup(first.stopService)
        worker_socket = first.listeners[0].worker_socket()
        self.addCleanup(worker_socket.close)
        worker_socket.listen(first.listeners[0].backlog)
        port = first.listeners[0].getHost().port
        second = WorkerPool([f"tcp:{port}:interface=127.0.0.1"], ["--no-tls"], 2, reactor=reactor)
        self.addCleanup(second.stopService)
        with self.assertRaises(CannotListenError) as caught:
            second.privilegedStartService()
        self.assertIn(f"127.0.0.1:{port}", str(caught.exception))


    def test_processThatCannotStart(self) -> None:
        """
        A worker process that cannot be started at all (the Python it
        runs with not there, or not executable by the user twistd became)
        stops twistd's start-up with one line saying so: it was told as
        "Couldn't listen on .../python3", a listening problem.
        """
        from twisted.internet import reactor

        self.patch(sys, "executable", "/nonexistent/python3")
        pool = WorkerPool(["tcp:0:interface=127.0.0.1"], ["--no-tls"], 2, reactor=reactor)
        previous = signal.getsignal(signal.SIGHUP)
        self.addCleanup(signal.signal, signal.SIGHUP, previous)
        self.addCleanup(pool.stopService)
        # What twistd's root service does with what starting raises.
        with self.assertRaises(tap.CannotStart) as caught, tap._exit_if_cannot_listen():
            pool.privilegedStartService()
            pool.startService()
        self.assertEqual(
            str(caught.exception), "cannot start worker process /nonexistent/python3: No such file or directory"
        )
        self.assertEqual(pool.workers, {})


class InheritedUnixSocketTests(TestCase):
    """
    A worker's endpoint for a UNIX socket its supervisor bound: the file,
    its mode and the listening are the supervisor's.
    """

    def adopt(self, address: str | bytes) -> Deferred[Any]:
        from twisted.internet import reactor

        bound = socket.socket(socket.AF_UNIX)
        self.addCleanup(bound.close)
        bound.bind(address)
        bound.listen()
        bound.setblocking(False)
        endpoint = inherited_endpoint(reactor, os.dup(bound.fileno()), socket.AF_UNIX, False)
        return endpoint.listen(Factory())

    @inlineCallbacks
    def test_fileKept(self) -> Generator[Deferred[Any], Any, None]:
        """
        Served and stopped, the socket's file keeps its mode and stays,
        and the socket still listens for the other workers.
        """
        path = os.path.join(socket_dir(self), "ping.sock")
        port = yield self.adopt(path)
        os.chmod(path, 0o600)
        yield port.stopListening()
        self.assertEqual(oct(os.stat(path).st_mode & 0o777), oct(0o600))
        client = socket.socket(socket.AF_UNIX)
        self.addCleanup(client.close)
        client.connect(path)

    @inlineCallbacks
    def test_abstractName(self) -> Generator[Deferred[Any], Any, None]:
        """
        A socket in the abstract namespace, which has no file, is served.
        """
        name = b"\0pingproto-test-%d" % os.getpid()
        port = yield self.adopt(name)
        self.assertEqual(port.getHost().name, name)
        yield port.stopListening()
