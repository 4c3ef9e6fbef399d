"""
The worker pool's listening sockets, on real sockets on loopback; whole
pools of worker processes are in tests/test_twistd.py.
"""

from __future__ import annotations

import errno
import socket

from twisted.internet.error import CannotListenError
from twisted.internet.task import Clock
from twisted.logger import LogLevel, capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from pingproto.workers import ReusePortGroup, WorkerPool, reuse_port_group


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
        sock = group.listening_socket()
        self.addCleanup(sock.close)
        return sock

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
        tcp: and tcp6: descriptions get a group with their address and
        listen queue; a UNIX socket is shared instead.
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
        self.assertIsNone(reuse_port_group(Clock(), "unix:" + self.mktemp()))


class RespawnTests(SynchronousTestCase):
    def test_noSocketTriedAgainLater(self) -> None:
        """
        A worker whose listening socket cannot be made is not started; the
        log says why and when it will be tried again, and it is.
        """
        clock = Clock()
        group = ReusePortGroup(socket.AF_INET, "127.0.0.1", 0, 128)
        self.addCleanup(group.close)
        # Point the group at a port another program holds: binding fails.
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        group.address = taken.getsockname()
        pool = WorkerPool([], ["--no-tls"], 2, reactor=clock)
        pool.listeners = [group]
        pool.running = True
        with capturedLogs() as events:
            pool._respawn(1)
        self.assertEqual(pool.workers, {})
        errors = [formatEvent(e) for e in events if e["log_level"] == LogLevel.error]
        self.assertEqual(errors, ["worker 1 not started (Address already in use); trying again in 1.0 s"])
        [retry] = clock.getDelayedCalls()
        self.assertEqual((retry.getTime(), retry.func, retry.args), (1.0, pool._respawn, (1,)))
