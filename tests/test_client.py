"""
L{PingMonitor}: connecting, reconnecting with backoff, and finishing, on a
memory reactor whose clock the tests move.
"""

from __future__ import annotations

import math
import tracemalloc
from typing import Any, Callable

from twisted.application.internet import backoffPolicy
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP4ServerEndpoint
from twisted.internet.error import ConnectionLost, ConnectionRefusedError
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test.iosim import ConnectionCompleter, IOPump, connectedServerAndClient
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer

from pingproto.client import (
    ConnectionState,
    HandshakeError,
    PingClientFactory,
    PingMonitor,
    PingRecorder,
    TLSHandshakeIncomplete,
    UNMATCHED_ALLOWANCE,
    UNMATCHED_PER_PING,
    ping,
)
from pingproto.pingcmd import describe_failure
from pingproto.server import EchoServerFactory
from pingproto.config import ServerLimits
from pingproto.session import Loss, LossReason, PingSession
from pingproto.stats import RttSummary
from pingproto.tls import client_tls_options, wrap_client_tls

from .test_protocols import _ADDRESS, _EPOCH_MS, upgrade_answer
from .waiting import Watcher

_EPOCH_MS = 1_700_000_000_000


class MonitorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.reactor = MemoryReactorClock()
        TCP4ServerEndpoint(self.reactor, 4321).listen(EchoServerFactory(reactor=self.reactor))
        self.completer = ConnectionCompleter(self.reactor)
        self.recorder = PingRecorder()

    def monitor(self, port: int = 4321, **kwargs: object) -> PingMonitor:
        monitor = PingMonitor(
            f"ws://127.0.0.1:{port}/",
            self.recorder,
            reactor=self.reactor,
            endpoint=TCP4ClientEndpoint(self.reactor, "127.0.0.1", port),
            retry_policy=backoffPolicy(initialDelay=0.5, factor=2.0, maxDelay=8.0, jitter=lambda: 0.0),
            monotonic=self.reactor.seconds,
            wall_ms=lambda: _EPOCH_MS + int(self.reactor.seconds() * 1000),
            **kwargs,  # type: ignore[arg-type]
        )
        monitor.startService()
        self.addCleanup(self.stop, monitor)
        return monitor

    def stop(self, monitor: PingMonitor) -> None:
        if monitor.running:
            monitor.stopService()
            self.reactor.advance(60)

    def attempts(self) -> int:
        return len(self.reactor.tcpClients)

    def connect(self) -> IOPump:
        pump = self.completer.succeedOnce()
        assert pump is not None
        pump.flush()
        return pump

    def advance(self, pump: IOPump | None, seconds: float, step: float = 0.125) -> None:
        _advance(self.reactor, pump, seconds, step)

    def states(self) -> list[ConnectionState]:
        return [change.state for change in self.recorder.result.states]

    def test_backoffBetweenFailedAttempts(self) -> None:
        """
        Refused connections are retried after 1, 2, 4, then at most 8
        seconds, and each attempt is reported as CONNECTING then CLOSED
        with the cause.
        """
        self.monitor()
        self.assertEqual(self.attempts(), 1)
        for delay in (1.0, 2.0, 4.0, 8.0, 8.0):
            self.completer.failOnce(Failure(ConnectionRefusedError()))
            self.reactor.advance(delay - 0.001)
            self.assertEqual(self.attempts(), 0, f"no attempt before {delay} s")
            self.reactor.advance(0.001)
            self.assertEqual(self.attempts(), 1, f"an attempt after {delay} s")
        self.assertEqual(self.states()[:2], [ConnectionState.CONNECTING, ConnectionState.CLOSED])
        self.assertIn("refused", self.recorder.result.states[1].detail)

    def test_reconnectAfterDrop(self) -> None:
        """
        When an open connection drops, its outstanding ping is lost to the
        disconnect, the monitor reconnects after the initial delay, and
        sequence numbers carry on, the next ping going out at its time.
        """
        self.monitor(interval=1.0, timeout=5.0)
        pump = self.connect()
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.OPEN])
        self.advance(pump, 1.0)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2])
        # The server stops answering, then the connection is cut.
        pump.server.onMessage = lambda payload, isBinary: None
        self.advance(pump, 1.0)
        pump.server.transport.abortConnection()
        pump.flush()
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [(3, LossReason.DISCONNECT)],
        )
        self.assertEqual(self.states()[-1], ConnectionState.CLOSED)
        self.reactor.advance(0.499)
        self.assertEqual(self.attempts(), 0)
        self.reactor.advance(0.001)
        self.assertEqual(self.attempts(), 1)
        pump = self.connect()
        self.advance(pump, 0.125)
        self.assertEqual(self.states()[-1], ConnectionState.OPEN)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2])
        self.advance(pump, 0.375)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2, 4])

    def test_pingDueAfterProtocolError(self) -> None:
        """
        A server that breaks the protocol (a frame with a reserved opcode)
        is dropped; a ping that falls due before the connection is gone is
        not sent but lost as not connected, and nothing raises ("Attempt
        to send on a closed protocol"); the monitor reconnects and the
        next ping carries the next sequence number.
        """
        self.monitor(interval=1.0, timeout=5.0)
        pump = self.connect()
        pump.server.transport.write(b"\x8f\x05hello")
        # The client reads the frame and fails the connection, whose
        # transport is not gone yet when the next ping is due.
        pump.pump()
        self.reactor.advance(1.0)
        self.assertEqual(self.flushLoggedErrors(), [])
        pump.flush()
        self.assertEqual(self.states()[-1], ConnectionState.CLOSED)
        self.reactor.advance(0.5)
        self.advance(self.connect(), 0.5)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 3])
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses], [(2, LossReason.NOT_CONNECTED)]
        )

    def closed_by(self, end: Callable[[IOPump], object]) -> str:
        """
        The detail of the CLOSED that follows C{end} on an open connection.
        """
        self.monitor(interval=1.0, timeout=5.0, flatline=2.0)
        pump = self.connect()
        self.advance(pump, 0.125)
        self.assertEqual(self.states()[-1], ConnectionState.OPEN)
        end(pump)
        pump.flush()
        self.assertEqual(self.states()[-1], ConnectionState.CLOSED)
        return self.recorder.result.states[-1].detail

    def test_serverClosedTcp(self) -> None:
        """
        A server that ends the TCP connection without a WebSocket close is
        reported as that, with code 1006, in pingproto's words rather than
        Autobahn's ("connection was closed uncleanly ("peer dropped the
        TCP connection without previous WebSocket closing handshake")").
        """
        detail = self.closed_by(lambda pump: pump.server.transport.loseConnection())
        self.assertEqual(detail, "code 1006: the server closed the connection without a WebSocket close")

    def test_connectionLost(self) -> None:
        """
        A connection cut (reset) is reported as lost, with code 1006.
        """

        def reset(pump: IOPump) -> None:
            pump.clientIO.disconnectReason = ConnectionLost("Connection reset by peer")
            pump.serverIO.abortConnection()

        detail = self.closed_by(reset)
        self.assertEqual(detail, "code 1006: the connection was lost")

    def test_closeUnanswered(self) -> None:
        """
        A close the server never answers (here the flatline's, on a path
        that stalled) is reported as that once the client gives up on it,
        with code 1006, not as Autobahn's "WebSocket closing handshake
        timeout (peer did not finish the closing handshake in time)".
        """
        # A flatline 2 s after the ping sent at 1 s, then the close times
        # out after 1 s.
        detail = self.closed_by(lambda pump: self.advance(None, 4.125))
        self.assertEqual(detail, "code 1006: the server did not answer the close in time")

    def test_protocolBroken(self) -> None:
        """
        A server that breaks the WebSocket protocol is reported as that,
        with what it did, and not as Autobahn's "I dropped the WebSocket
        TCP connection: ...".
        """
        detail = self.closed_by(lambda pump: pump.server.transport.write(b"\x8f\x05hello"))
        self.assertEqual(detail, "code 1006: the server broke the WebSocket protocol (control frame using reserved opcode 15)")

    def test_messageTooLarge(self) -> None:
        """
        A server that sends a message over the client's size limit (64 KiB)
        is reported as that, with code 1006.
        """
        frame = b"\x81\x7f" + (70_000).to_bytes(8, "big") + b"x" * 70_000
        detail = self.closed_by(lambda pump: pump.server.transport.write(frame))
        self.assertEqual(detail, "code 1006: the server sent a message over the limit of 65536 bytes")

    def test_dropAfterFailuresRetriedAtInitialDelay(self) -> None:
        """
        Failed attempts are forgotten once a WebSocket opens: after two
        refusals (waits of 1 and 2 s) and an open, a drop is retried after
        the initial 0.5 s, not the 4 s a third failure in a row would wait.
        """
        self.monitor()
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(1.0)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(2.0)
        pump = self.connect()
        self.advance(pump, 0.125)
        self.assertEqual(self.states()[-1], ConnectionState.OPEN)
        pump.server.transport.abortConnection()
        pump.flush()
        self.assertEqual(self.states()[-1], ConnectionState.CLOSED)
        self.reactor.advance(0.499)
        self.assertEqual(self.attempts(), 0)
        self.reactor.advance(0.001)
        self.assertEqual(self.attempts(), 1)

    def test_countFinishesAndCloses(self) -> None:
        """
        With a count, C{done} fires after the last echo and the connection
        is closed cleanly with code 1000; no reconnect follows.
        """
        monitor = self.monitor(interval=0.5, count=3)
        done: list[object] = []
        monitor.done.addCallback(done.append)
        pump = self.connect()
        self.advance(pump, 1.5)
        self.advance(pump, 5.0)
        self.assertEqual(done, [None])
        self.assertEqual(len(self.recorder.result.samples), 3)
        self.assertEqual(
            self.states(),
            [
                ConnectionState.CONNECTING,
                ConnectionState.OPEN,
                ConnectionState.CLOSING,
                ConnectionState.CLOSED,
            ],
        )
        self.assertEqual(self.recorder.result.states[-1].detail, "code 1000")
        self.reactor.advance(60)
        self.assertEqual(self.attempts(), 0)

    def test_flatlineClosesAndReconnects(self) -> None:
        """
        When the link goes silent while open, the client reports a flatline
        once the oldest unanswered ping has waited the flatline time,
        closes with code 4000, and the service reconnects; the silent pings
        are lost.
        """
        self.monitor(interval=1.0, timeout=2.0, flatline=2.5)
        pump = self.connect()
        self.advance(pump, 1.0)
        self.assertEqual(len(self.recorder.result.samples), 2)
        # The path stalls: time passes but no bytes move.  Ping 3, sent at
        # 2 s, is the first to go unanswered; it is lost at 4 s, and the
        # flatline comes 2.5 s after it was sent, not 2.5 s after the last
        # echo (at 1 s).
        self.advance(None, 3.375)
        self.assertEqual(self.recorder.result.flatlines, [])
        self.advance(None, 0.125)
        self.assertEqual(self.recorder.result.flatlines, [2.5])
        self.assertEqual(self.recorder.result.states[-1].state, ConnectionState.CLOSING)
        self.assertEqual(self.recorder.result.states[-1].detail, "flatline")
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [(3, LossReason.TIMEOUT)],
        )
        # The close handshake cannot complete either; the client drops the
        # connection after its close timeout, then reconnects.  Pings 4 and
        # 5 time out at 5 and 6 s, as pings 6 and 7 fall due on the closing
        # connection.
        self.advance(None, 2.0)
        pump.flush()
        self.assertEqual(self.recorder.result.states[-1].state, ConnectionState.CLOSED)
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [
                (3, LossReason.TIMEOUT),
                (4, LossReason.TIMEOUT),
                (6, LossReason.NOT_CONNECTED),
                (5, LossReason.TIMEOUT),
                (7, LossReason.NOT_CONNECTED),
            ],
        )
        self.advance(None, 0.5)
        self.assertEqual(self.attempts(), 1)

    def test_outageCountsAsLoss(self) -> None:
        """
        Pings fall due every interval from the first open, connected or
        not, as ping(8) counts them: with a count of 5 every 0.5 s and the
        server gone after 3 replies (dropped, then refused), pings 4 and 5
        are lost as not connected and C{done} fires after the fifth
        interval, where the run used to go on reconnecting for ever; no
        reconnect follows.
        """
        monitor = self.monitor(interval=0.5, timeout=5.0, count=5)
        done: list[object] = []
        monitor.done.addCallback(done.append)
        pump = self.connect()
        self.advance(pump, 1.0)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2, 3])
        pump.server.transport.abortConnection()
        pump.flush()
        self.reactor.advance(0.5)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.assertEqual(done, [])
        self.reactor.advance(0.5)
        self.assertEqual(done, [None])
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [(4, LossReason.NOT_CONNECTED), (5, LossReason.NOT_CONNECTED)],
        )
        self.assertEqual((monitor.session.sent, monitor.session.received, monitor.session.lost), (5, 3, 2))
        self.reactor.advance(60)
        self.assertEqual(self.attempts(), 0)

    def test_outageCountsAsLossWithoutCount(self) -> None:
        """
        Without a count, likewise: every ping due while the link is down
        is lost as not connected, and pinging goes on at the same pace
        once it is back.
        """
        self.monitor(interval=1.0, timeout=5.0)
        pump = self.connect()
        self.advance(pump, 1.0)
        pump.server.transport.abortConnection()
        pump.flush()
        # Refused at 1.5 s, again at 2.5 s; connected at 4.5 s.
        self.reactor.advance(0.5)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.advance(None, 1.0)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.advance(None, 2.0)
        self.advance(self.connect(), 1.0)
        self.assertEqual(
            [(loss.seq, loss.reason) for loss in self.recorder.result.losses],
            [(3, LossReason.NOT_CONNECTED), (4, LossReason.NOT_CONNECTED), (5, LossReason.NOT_CONNECTED)],
        )
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2, 6])

    def test_firstConnectionIsSetup(self) -> None:
        """
        No ping falls due before the first WebSocket opens: that is setup,
        timed apart (as ping(8)'s name lookup comes before its first
        packet), and its failure ends the run as an error.  A count of 1
        with a first connection 3 s slow is one reply, no loss.
        """
        monitor = self.monitor(interval=0.5, timeout=5.0, count=1)
        done: list[object] = []
        monitor.done.addCallback(done.append)
        self.reactor.advance(3.0)
        self.advance(self.connect(), 0.125)
        self.assertEqual(done, [None])
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1])
        self.assertEqual(self.recorder.result.losses, [])

    def test_flatlineCloseSaysOurCode(self) -> None:
        """
        A flatline close the server answers is reported with the code and
        reason the client closed with (4000, flatline), not the code of the
        server's answer to it (Autobahn's remote close code).
        """
        self.monitor(interval=1.0, timeout=2.0, flatline=2.0)
        pump = self.connect()
        pump.server.onMessage = lambda payload, isBinary: None
        self.advance(pump, 3.0)
        self.assertEqual(self.recorder.result.flatlines, [2.0])
        self.assertEqual(self.states()[-2:], [ConnectionState.CLOSING, ConnectionState.CLOSED])
        closed = self.recorder.result.states[-1]
        self.assertEqual((closed.detail, closed.requested), ("closed with code 4000: flatline", False))

    def test_intervalLongerThanFlatline(self) -> None:
        """
        A healthy link pinged less often than the flatline time never
        flatlines: the flatline counts silence while a ping waits for its
        echo, not the time since the last echo.
        """
        self.monitor(interval=12.0, timeout=5.0, flatline=10.0)
        pump = self.connect()
        self.advance(pump, 60.0)
        self.assertEqual(self.recorder.result.flatlines, [])
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.OPEN])
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2, 3, 4, 5, 6])

    def test_flatlineZeroIsNever(self) -> None:
        """
        C{flatline=0} means never, as C{--flatline 0} does on the command
        line; a negative or NaN time is refused.
        """
        self.monitor(interval=1.0, timeout=5.0, flatline=0)
        pump = self.connect()
        pump.server.onMessage = lambda payload, isBinary: None
        self.advance(pump, 30.0)
        self.assertEqual(self.recorder.result.flatlines, [])
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.OPEN])
        for bad in (-1.0, math.nan):
            with self.assertRaises(ValueError):
                PingMonitor("ws://127.0.0.1:1/", PingRecorder(), flatline=bad, reactor=self.reactor)

    def test_badArguments(self) -> None:
        """
        A NaN interval (which compared as neither too small nor not) and a
        C{give_up_after} under one attempt are refused, each saying what
        it takes.
        """
        make = PingMonitor
        e = self.assertRaises(ValueError, make, "ws://h:1/", PingRecorder(), interval=math.nan, reactor=self.reactor)
        self.assertEqual(str(e), "the ping interval must be positive")
        e = self.assertRaises(ValueError, make, "ws://h:1/", PingRecorder(), give_up_after=0, reactor=self.reactor)
        self.assertEqual(str(e), "give_up_after must be 1 or more attempts, or None (never give up)")

    def test_flatlineTimedFromAfterTheLatestAnswer(self) -> None:
        """
        A ping whose echo never came but which is older than one answered
        does not time the flatline: ping 2's echo is lost, 3 and 4 are
        answered, then nothing from ping 5 (sent at 4 s) on; the flatline
        comes 10 s after ping 5 was sent, not 10 s after ping 2.
        """
        self.monitor(interval=1.0, timeout=5.0, flatline=10.0)
        pump = self.connect()
        server = pump.server
        echo = server.onMessage
        seen: list[bytes] = []

        def drop_some(payload: bytes, isBinary: bool) -> None:
            seen.append(payload)
            if len(seen) == 1 or len(seen) >= 4:
                return
            echo(payload, isBinary)

        server.onMessage = drop_some
        self.advance(pump, 4.0)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 3, 4])
        while not self.recorder.result.flatlines and self.reactor.seconds() < 20:
            self.advance(pump, 0.125)
        self.assertAlmostEqual(self.reactor.seconds(), 14.0, delta=0.25)

    def test_echoPastItsTimeoutIsALoss(self) -> None:
        """
        An echo read after its ping's timeout, but before the timer that
        gives up on the ping has run (a busy reactor, a long read), is a
        lost ping and a reply that answers none: not a round trip longer
        than the timeout.
        """
        monitor = self.monitor(interval=1.0, timeout=2.0, flatline=0)
        pump = self.connect()
        server = pump.server
        echo = server.onMessage
        held: list[bytes] = []
        server.onMessage = lambda payload, isBinary: held.append(payload)
        # Ping 1 went at the open, and came back; ping 2 goes at 1 s.
        self.advance(pump, 1.0)
        self.assertEqual(len(held), 1)
        # Time passes with no timer run, then the echo is read.
        self.reactor.rightNow += 2.5
        echo(held[0], False)
        pump.flush(advanceClock=False)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1])
        self.assertEqual([(loss.seq, loss.reason) for loss in self.recorder.result.losses], [(2, LossReason.TIMEOUT)])
        self.assertEqual(monitor.session.unmatched, 1)

    def test_serverSendingWhatAnswersNoPing(self) -> None:
        """
        A server that sends messages answering no ping is allowed
        L{UNMATCHED_ALLOWANCE} of them and L{UNMATCHED_PER_PING} more per
        ping sent; past that, the client closes with code 4001, and
        reconnects.
        """
        monitor = self.monitor(interval=1.0, timeout=2.0, flatline=0)
        pump = self.connect()
        server = pump.server
        # Ping 1 went at the open: 20 strays are within bounds.
        allowed = UNMATCHED_ALLOWANCE + UNMATCHED_PER_PING
        for _ in range(allowed):
            server.sendMessage(b"stray")
        pump.flush()
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.OPEN])
        for _ in range(50):
            server.sendMessage(b"stray")
        pump.flush()
        # The rest of the read that went past the bound is not counted.
        self.assertEqual(monitor.session.unmatched, allowed + 1)
        # Told why (in memory, the server's answer to the close is read
        # all the same: test_straysWithoutEnd has a real socket).
        self.assertEqual(server.remoteCloseCode, 4001)
        self.assertEqual(self.states()[-2:], [ConnectionState.CLOSING, ConnectionState.CLOSED])
        self.assertEqual(
            self.recorder.result.states[-1].detail, "closed with code 4001: the server sends messages that answer no ping"
        )
        self.assertFalse(self.recorder.result.states[-1].requested)
        self.assertEqual(self.attempts(), 0)
        self.reactor.advance(10.0)
        self.assertEqual(self.attempts(), 1)

    def test_stopAsTheLinkDrops(self) -> None:
        """
        Stopped while the connection is going (the close sent, the link
        then gone before the server's answer), the monitor leaves no timer
        behind: Autobahn's close-handshake timer went with the connection.
        """
        monitor = self.monitor(interval=1.0, timeout=2.0, flatline=0)
        pump = self.connect()
        stopped: list[object] = []
        monitor.stopService().addCallback(stopped.append)
        # The server's side goes without reading the close.
        pump.server.transport.abortConnection()
        pump.flush()
        self.assertEqual(stopped, [None])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_giveUpAfterFailures(self) -> None:
        """
        C{done} fails with the connection error when the first connection
        fails C{give_up_after} times in a row, and retries stop.
        """
        monitor = self.monitor(count=1, give_up_after=2)
        failures: list[Failure] = []
        monitor.done.addErrback(failures.append)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(1.0)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(60)
        self.assertEqual(len(failures), 1)
        failures[0].trap(ConnectionRefusedError)
        self.assertEqual(self.attempts(), 0)
        self.assertFalse(monitor.running)

    def test_stoppedAsItOpens(self) -> None:
        """
        An observer may stop the monitor when told the connection opened:
        no ping is sent on the closing connection, which closes cleanly
        with code 1000, and nothing fails.
        """
        monitor = self.monitor(interval=1.0)
        told = self.recorder.state_changed

        def state_changed(change):  # type: ignore[no-untyped-def]
            told(change)
            if change.state is ConnectionState.OPEN:
                monitor.stopService()

        self.recorder.state_changed = state_changed  # type: ignore[method-assign]
        pump = self.connect()
        self.advance(pump, 3.0)
        self.assertEqual(
            self.states(),
            [ConnectionState.CONNECTING, ConnectionState.OPEN, ConnectionState.CLOSING, ConnectionState.CLOSED],
        )
        self.assertEqual(self.recorder.result.states[-1].detail, "code 1000")
        self.assertEqual((self.recorder.result.samples, self.recorder.result.losses), ([], []))
        self.assertEqual(self.attempts(), 0)

    def test_closeAnsweredButKeptOpen(self) -> None:
        """
        A server that answers the client's close but never ends the TCP
        connection is cut off 1 s later on the monitor's own reactor, not
        the global one Autobahn times it on (on which, with another
        reactor, the stop would wait for ever), and it is said so.
        """
        monitor = self.monitor(interval=1.0)
        pump = self.connect()
        self.advance(pump, 0.125)
        pump.server.dropConnection = lambda abort=False: None  # keeps the socket open
        stopped: list[object] = []
        monitor.stopService().addCallback(stopped.append)
        pump.flush()
        self.assertEqual((stopped, self.states()[-1]), ([], ConnectionState.CLOSING))
        self.advance(pump, 1.0)
        self.assertEqual(stopped, [None])
        self.assertEqual(
            self.recorder.result.states[-1].detail, "code 1006: the server did not end the connection after the close"
        )

    def test_stopDuringHandshake(self) -> None:
        """
        Stopping while the WebSocket handshake is under way drops the
        connection at once and fires when it is gone: the WebSocket never
        opens, no ping is sent, and the close is reported as asked for.
        """
        # A server that accepts TCP but never answers the upgrade.
        TCP4ServerEndpoint(self.reactor, 4322).listen(Factory.forProtocol(Protocol))
        monitor = self.monitor(port=4322, interval=1.0)
        pump = self.connect()
        stopped: list[object] = []
        monitor.stopService().addCallback(stopped.append)
        pump.flush()
        self.assertEqual(stopped, [None])
        self.advance(pump, 5.0)
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.CLOSED])
        self.assertTrue(self.recorder.result.states[-1].requested)
        self.assertEqual(self.recorder.result.samples, [])
        self.assertEqual(monitor.session.sent, 0)
        self.assertEqual(self.attempts(), 0)

    def test_upgradeUnanswered(self) -> None:
        """
        A server that never answers the upgrade fails the attempt once the
        handshake timeout (10 s) passes, said in pingproto's words, not
        Autobahn's ("WebSocket opening handshake timeout (peer did not
        finish the opening handshake in time)").
        """
        TCP4ServerEndpoint(self.reactor, 4322).listen(Factory.forProtocol(Protocol))
        monitor = self.monitor(port=4322, give_up_after=1)
        failures: list[Failure] = []
        monitor.done.addErrback(failures.append)
        self.advance(self.connect(), 10.125)
        [failure] = failures
        failure.trap(HandshakeError)
        self.assertEqual(failure.getErrorMessage(), "the server did not complete the handshake within 10 s")

    def test_stopWhileConnecting(self) -> None:
        """
        Stopping while TCP is still connecting cancels the attempt, fires at
        once, and reports the CLOSED as asked for, not as a failure (C{done}
        fires with L{None}, as for any stop): with
        no failure as its reason, nor the cancellation's text (it read "DNS
        lookup failed", as HostnameEndpoint words a cancelled attempt).
        """
        monitor = self.monitor(give_up_after=1)
        stopped: list[object] = []
        monitor.stopService().addCallback(stopped.append)
        self.assertEqual(stopped, [None])
        self.assertEqual(self.states(), [ConnectionState.CONNECTING, ConnectionState.CLOSED])
        closed = self.recorder.result.states[-1]
        self.assertEqual((closed.requested, closed.detail, closed.reason), (True, "stopped while connecting", None))
        self.reactor.advance(60)
        # A stop, not a failed attempt to give up over.
        self.assertIsNone(self.successResultOf(monitor.done))

    def test_restart(self) -> None:
        """
        A monitor started again after a stop connects again, and the next
        stop closes that connection and fires; no ping follows it.
        """
        monitor = self.monitor(interval=0.5)
        pump = self.connect()
        self.advance(pump, 1.0)
        first = monitor.stopService()
        self.advance(pump, 2.0)
        self.assertTrue(first.called)
        monitor.startService()
        pump = self.connect()
        self.advance(pump, 1.0)
        sent = monitor.session.sent
        second = monitor.stopService()
        self.assertIsNot(second, first)
        stopped: list[object] = []
        second.addCallback(stopped.append)
        self.advance(pump, 5.0)
        self.assertEqual(stopped, [None])
        self.assertEqual(monitor.session.sent, sent)
        self.assertEqual(self.states()[-2:], [ConnectionState.CLOSING, ConnectionState.CLOSED])
        self.assertEqual(self.attempts(), 0)

    def test_stoppedBeforeCountFiresDone(self) -> None:
        """
        A monitor with a count stopped before its count (by its owner, or
        a parent service stopping) fires C{done} with L{None} once its
        connection is gone, not before, and not never.
        """
        monitor = self.monitor(interval=0.5, count=100)
        done: list[object] = []
        monitor.done.addCallback(done.append)
        pump = self.connect()
        self.advance(pump, 1.0)
        monitor.stopService()
        self.assertEqual(done, [])
        self.advance(pump, 2.0)
        self.assertEqual(self.states()[-1], ConnectionState.CLOSED)
        self.assertEqual(done, [None])
        self.assertLess(monitor.session.sent, 100)

    def test_restartAfterCountIsANewRun(self) -> None:
        """
        Started again after its count was done, the monitor makes a new
        run of as many pings, with a C{done} of its own; the finished
        run's C{done} stays as it fired.
        """
        monitor = self.monitor(interval=0.5, count=2)
        first = monitor.done
        pump = self.connect()
        self.advance(pump, 3.0)
        self.assertIsNone(self.successResultOf(first))
        monitor.startService()
        self.assertIsNot(monitor.done, first)
        self.assertNoResult(monitor.done)
        pump = self.connect()
        self.advance(pump, 3.0)
        self.assertIsNone(self.successResultOf(monitor.done))
        self.assertEqual((monitor.session.sent, monitor.session.received), (2, 2))
        self.assertEqual(len(self.recorder.result.samples), 4)
        self.assertFalse(monitor.running)

    def test_restartedAtOnceSameRun(self) -> None:
        """
        Stopped and started again at once, before the connection closed,
        the monitor goes on with the same run: C{done} fires at the end of
        its count, not when the old connection closes.
        """
        monitor = self.monitor(interval=0.5, count=10)
        done: list[object] = []
        monitor.done.addCallback(done.append)
        pump = self.connect()
        self.advance(pump, 1.0)
        monitor.stopService()
        monitor.startService()
        self.advance(pump, 2.0)
        self.assertEqual(done, [])
        self.assertTrue(monitor.running)
        pump = self.connect()
        self.advance(pump, 10.0)
        self.assertEqual(done, [None])
        self.assertEqual(monitor.session.sent, 10)

    def test_newRunAfterGivingUp(self) -> None:
        """
        Started again after it gave up, the monitor makes as many attempts
        as the first run could, with the first retry's delay, before it
        gives up again.
        """
        monitor = self.monitor(count=5, give_up_after=3)
        for delay in (1.0, 2.0, 0.0):
            self.completer.failOnce(Failure(ConnectionRefusedError()))
            self.reactor.advance(delay)
        self.failureResultOf(monitor.done, ConnectionRefusedError)
        monitor.startService()
        self.assertEqual(self.attempts(), 1)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(0)
        self.assertNoResult(monitor.done)
        self.reactor.advance(0.999)
        self.assertEqual(self.attempts(), 0)
        self.reactor.advance(0.001)
        self.assertEqual(self.attempts(), 1)

    def test_restartWhileStopping(self) -> None:
        """
        Started again before its stop has finished (the closing handshake
        under way), the monitor stays running: the earlier stop fires
        without stopping the new run, which connects again once the old
        connection has closed, and pings.
        """
        monitor = self.monitor(interval=0.5)
        pump = self.connect()
        self.advance(pump, 1.0)
        first = monitor.stopService()
        self.assertFalse(first.called)
        monitor.startService()
        self.advance(pump, 2.0)
        self.assertTrue(first.called)
        self.assertTrue(monitor.running)
        sent = monitor.session.sent
        pump = self.connect()
        self.advance(pump, 1.0)
        self.assertEqual(self.states()[-1], ConnectionState.OPEN)
        self.assertGreater(monitor.session.sent, sent)

    def test_giveUpAnyTime(self) -> None:
        """
        With C{give_up_any_time}, C{done} fails with the connection error
        when C{give_up_after} attempts in a row fail after a connection had
        opened, and retries stop.
        """
        monitor = self.monitor(interval=1.0, count=5, give_up_after=2, give_up_any_time=True)
        failures: list[Failure] = []
        monitor.done.addErrback(failures.append)
        pump = self.connect()
        self.advance(pump, 1.0)
        pump.server.transport.abortConnection()
        pump.flush()
        for _ in range(2):
            self.reactor.advance(5)
            self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(5)
        self.assertEqual(len(failures), 1)
        failures[0].trap(ConnectionRefusedError)
        self.assertEqual([s.seq for s in self.recorder.result.samples], [1, 2])
        self.assertEqual(self.attempts(), 0)
        self.assertFalse(monitor.running)

    def test_cancelStops(self) -> None:
        """
        Cancelling L{ping}'s result closes the connection with code 1000
        and stops pinging and reconnecting.
        """
        d = ping("ws://127.0.0.1:4321/", 100, interval=1.0, reactor=self.reactor)
        pump = self.connect()
        self.advance(pump, 1.0)
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.advance(pump, 5.0)
        self.assertEqual(pump.server.state, pump.server.STATE_CLOSED)
        self.assertEqual(pump.server.remoteCloseCode, 1000)
        self.reactor.advance(60)
        self.assertEqual(self.attempts(), 0)

    def test_cancelBeforeOpen(self) -> None:
        """
        Cancelling L{ping}'s result before a WebSocket opens, while TCP
        connects or while waiting to retry, fails it with
        L{CancelledError} too, and stops reconnecting: it fired with an
        empty result, as if the server had answered nothing, since the
        stop was over at once.
        """
        connecting = ping("ws://127.0.0.1:4321/", 5, reactor=self.reactor)
        connecting.cancel()
        self.failureResultOf(connecting, CancelledError)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        waiting = ping("ws://127.0.0.1:4321/", 5, reactor=self.reactor)
        self.completer.failOnce(Failure(ConnectionRefusedError()))
        self.reactor.advance(0.25)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.reactor.advance(60)
        self.assertEqual(self.attempts(), 0)

    def test_wssToPlainServer(self) -> None:
        """
        A wss:// connection to a server that does not speak TLS and never
        answers the TLS hello fails with L{TLSHandshakeIncomplete} once the
        handshake times out, not with a bare "peer dropped the
        connection".
        """
        TCP4ServerEndpoint(self.reactor, 4322).listen(Factory.forProtocol(Protocol))
        failure = self.wss_failure(4322, 15.0)
        failure.trap(TLSHandshakeIncomplete)
        self.assertIs(self.recorder.result.states[-1].reason, failure)

    def test_wsToWrongServer(self) -> None:
        """
        A ws:// attempt that the server ends without an HTTP answer says
        what the server did instead: answered in TLS (a TLS server's alert
        to a hello it cannot read), or nothing at all, each with a hint at
        the scheme.
        """
        alert = b"\x15\x03\x01\x00\x02\x02\x46"
        for port, answer, words in (
            (4322, alert, "the server answered in TLS (try wss://)"),
            (4323, b"", "the server closed the connection without answering the upgrade (does it expect wss://?)"),
        ):
            factory = Factory.forProtocol(_AnswersThenCloses)
            factory.answer = answer  # type: ignore[attr-defined]
            TCP4ServerEndpoint(self.reactor, port).listen(factory)
            monitor = self.monitor(port=port, give_up_after=1)
            failures: list[Failure] = []
            monitor.done.addErrback(failures.append)
            self.advance(self.connect(), 0.125)
            [failure] = failures
            failure.trap(HandshakeError)
            self.assertEqual(failure.getErrorMessage(), words)

    def wss_failure(self, port: int, seconds: float) -> Failure:
        """
        How a wss:// monitor of the plain server on C{port}, giving up at
        the first failure, failed within C{seconds}.
        """
        monitor = PingMonitor(
            f"wss://localhost:{port}/",
            self.recorder,
            reactor=self.reactor,
            endpoint=wrap_client_tls(client_tls_options("localhost"), TCP4ClientEndpoint(self.reactor, "127.0.0.1", port)),
            give_up_after=1,
        )
        monitor.startService()
        failures: list[Failure] = []
        monitor.done.addErrback(failures.append)
        self.advance(self.connect(), seconds)
        self.assertEqual(len(failures), 1)
        return failures[0]

    def test_wssToPingprotoPlain(self) -> None:
        """
        pingproto's own plain server answers a TLS hello at once (400),
        which the client's TLS takes for what it is: a server that does
        not speak TLS on that port.
        """
        failure = self.wss_failure(4321, 1.0)
        self.assertEqual(describe_failure(failure), "TLS: the server does not speak TLS here (try ws://)")


class _AnswersThenCloses(Protocol):
    """
    Answers the first bytes that come with the factory's C{answer}, then
    ends the connection.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(self.factory.answer)  # type: ignore[attr-defined]
        self.transport.loseConnection()


class PublicAPITests(SynchronousTestCase):
    def test_typesUsersReceive(self) -> None:
        """
        The types the client's public API hands out are in
        C{pingproto.__all__}: the handshake errors, the loss reason and the
        RTT summary.
        """
        import pingproto

        for name, value in (
            ("HandshakeError", HandshakeError),
            ("TLSHandshakeIncomplete", TLSHandshakeIncomplete),
            ("LossReason", LossReason),
            ("RttSummary", RttSummary),
        ):
            self.assertIn(name, pingproto.__all__)
            self.assertIs(getattr(pingproto, name), value)


def _frame(opcode: int, payload: bytes = b"", fin: bool = True) -> bytes:
    """
    An unmasked server frame of at most 125 bytes.
    """
    return bytes(((0x80 if fin else 0) | opcode, len(payload))) + payload


class _HostileServer(Protocol):
    """
    A WebSocket server in bytes: it accepts the upgrade, then does what
    C{upgraded} does instead of echoing.
    """

    factory: Factory

    def connectionMade(self) -> None:
        self.received = b""
        self.is_upgraded = False
        self.factory.connections.append(self)  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        if self.is_upgraded:
            self.frames_received(data)
            return
        self.received += data
        if b"\r\n\r\n" in self.received:
            self.is_upgraded = True
            self.transport.write(upgrade_answer(self.received))
            self.upgraded()

    def upgraded(self) -> None:
        pass

    def frames_received(self, data: bytes) -> None:
        pass


class HostileServerTests(TestCase):
    """
    The client against servers that break the rules, on 127.0.0.1: it
    neither grows without bound nor hangs.
    """

    timeout = 30

    @inlineCallbacks
    def serve(self, protocol: type[_HostileServer]):  # type: ignore[no-untyped-def]
        """
        Listen with C{protocol}; fire with the URL and the factory, whose
        C{connections} are cut when the test ends.
        """
        factory = Factory.forProtocol(protocol)
        factory.connections = []  # type: ignore[attr-defined]
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)

        def hang_up() -> None:
            for connection in factory.connections:  # type: ignore[attr-defined]
                connection.transport.abortConnection()

        self.addCleanup(hang_up)
        return f"ws://127.0.0.1:{port.getHost().port}/", factory

    def monitor(self, url: str, watcher: Watcher, **kwargs: object) -> PingMonitor:
        monitor = PingMonitor(url, watcher, retry_policy=lambda failures: 60.0, **kwargs)  # type: ignore[arg-type]
        monitor.startService()
        self.addCleanup(monitor.stopService)
        return monitor

    @inlineCallbacks
    def test_endlessEmptyFragments(self):  # type: ignore[no-untyped-def]
        """
        A server that starts a message and then sends empty continuation
        frames without end makes the client hold nothing more for them:
        an empty fragment adds nothing to the message, and memory stays
        flat however long the message goes on (here, with no flatline to
        end the connection, as the API runs by default).
        """
        fragments = 100_000
        answered: Deferred[None] = Deferred()

        class EmptyFragments(_HostileServer):
            def upgraded(self) -> None:
                self.transport.write(_frame(0x1, b"1", fin=False))
                self.transport.write(_frame(0x0, fin=False) * fragments)
                # Its pong says every fragment before it has been read.
                self.transport.write(_frame(0x9, b"done"))

            def frames_received(self, data: bytes) -> None:
                # The client's pong: masked, with the ping's payload.
                if data[:1] == b"\x8a" and not answered.called:
                    answered.callback(None)

        url, _ = yield self.serve(EmptyFragments)
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        before = tracemalloc.get_traced_memory()[0]
        self.monitor(url, Watcher(), interval=60.0)
        yield answered
        grown = tracemalloc.get_traced_memory()[0] - before
        # 8 bytes a fragment were kept: 800 KB.
        self.assertLess(grown, 200_000)

    @inlineCallbacks
    def test_answerAfterSpaces(self):  # type: ignore[no-untyped-def]
        """
        An answer whose status line begins with spaces, which Autobahn
        strips, is HTTP all the same: the WebSocket opens.
        """

        class Spaced(_HostileServer):
            def dataReceived(self, data: bytes) -> None:
                self.received += data
                if b"\r\n\r\n" in self.received and not self.is_upgraded:
                    self.is_upgraded = True
                    self.transport.write(b"  " + upgrade_answer(self.received))

        url, _ = yield self.serve(Spaced)
        watcher = Watcher()
        self.monitor(url, watcher, interval=60.0)
        yield watcher.when(lambda result: bool(result.states) and result.states[-1].state is not ConnectionState.CONNECTING)
        self.assertEqual(watcher.result.states[-1].state, ConnectionState.OPEN)

    @inlineCallbacks
    def test_straysWithoutEnd(self):  # type: ignore[no-untyped-def]
        """
        A server that sends messages answering no ping as fast as it can
        is told why with close code 4001 past the client's bound, and
        read no further: the connection ends at the close handshake's
        timeout, the client not having read the server's own flood.
        """
        closed_with: Deferred[int] = Deferred()

        class Strays(_HostileServer):
            flooding = True
            frames = b""

            def upgraded(self) -> None:
                reactor.callLater(0, self.flood)

            def flood(self) -> None:
                if self.flooding:
                    self.transport.write(_frame(0x1, b"stray") * 64)
                    reactor.callLater(0, self.flood)

            def frames_received(self, data: bytes) -> None:
                # The client's frames, masked, each under 126 bytes.
                self.frames += data
                while len(self.frames) >= 6 and len(self.frames) >= 6 + (self.frames[1] & 0x7F):
                    size = self.frames[1] & 0x7F
                    mask, payload = self.frames[2:6], self.frames[6 : 6 + size]
                    opcode, self.frames = self.frames[0] & 0x0F, self.frames[6 + size :]
                    if opcode == 0x8 and not closed_with.called:
                        plain = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                        closed_with.callback(int.from_bytes(plain[:2], "big"))

            def connectionLost(self, reason: object = None) -> None:
                self.flooding = False

        url, _ = yield self.serve(Strays)
        watcher = Watcher()
        monitor = self.monitor(url, watcher, interval=60.0)
        code = yield closed_with
        self.assertEqual(code, 4001)
        yield watcher.when(lambda result: result.states[-1].state is ConnectionState.CLOSED)
        self.assertEqual(
            watcher.result.states[-1].detail, "closed with code 4001: the server sends messages that answer no ping"
        )
        self.assertEqual(monitor.session.unmatched, UNMATCHED_ALLOWANCE + UNMATCHED_PER_PING + 1)

    @inlineCallbacks
    def test_pingFloodUnread(self):  # type: ignore[no-untyped-def]
        """
        A server that sends pings as fast as it can and reads nothing back
        makes the client stop reading once its pongs back up, instead of
        answering into a send buffer that grows without bound: the server
        finds the client's side full after a few megabytes of kernel
        buffers.
        """
        limit = 48 * 1024 * 1024
        paused: Deferred[int] = Deferred()

        @implementer(IPushProducer)
        class PingFlood(_HostileServer):
            sent = 0

            def upgraded(self) -> None:
                # Never reads the client's pongs; writes until told to stop.
                self.transport.pauseProducing()
                self.transport.registerProducer(self, True)
                self.resumeProducing()

            def resumeProducing(self) -> None:
                self.flooding = True
                reactor.callLater(0, self.flood)

            def flood(self) -> None:
                # A batch a turn, so that the socket takes each before the
                # next: the transport says pause only when it cannot.
                if not self.flooding or paused.called:
                    return
                if self.sent > limit:
                    paused.errback(AssertionError(f"the client read {self.sent} bytes and went on"))
                    return
                batch = _frame(0x9, b"x" * 125) * 64
                self.transport.write(batch)
                self.sent += len(batch)
                reactor.callLater(0, self.flood)

            def pauseProducing(self) -> None:
                self.flooding = False
                if not paused.called:
                    paused.callback(self.sent)

            def stopProducing(self) -> None:
                self.flooding = False

        url, _ = yield self.serve(PingFlood)
        self.monitor(url, Watcher(), interval=60.0)
        sent = yield paused
        self.assertLess(sent, limit)

    @inlineCallbacks
    def test_closeWithoutCode(self):  # type: ignore[no-untyped-def]
        """
        A server that closes cleanly with a close frame that holds no code
        is reported as that, with the code RFC 6455 reserves for it (1005,
        as a browser's close event shows), not as a connection lost.
        """

        class CloseWithoutCode(_HostileServer):
            def upgraded(self) -> None:
                self.transport.write(_frame(0x8))

            def frames_received(self, data: bytes) -> None:
                # The client's answering close: the closing handshake is done.
                self.transport.loseConnection()

        url, _ = yield self.serve(CloseWithoutCode)
        watcher = Watcher()
        self.monitor(url, watcher, interval=60.0)
        yield watcher.when(lambda result: result.states[-1].state is ConnectionState.CLOSED)
        self.assertEqual(watcher.result.states[-1].detail, "code 1005 (no code given)")


def _advance(clock: Clock, pump: IOPump | None, seconds: float, step: float = 0.125) -> None:
    """
    Advance C{clock} by C{seconds} a C{step} at a time, moving the bytes
    C{pump} holds after each.
    """
    for _ in range(round(seconds / step)):
        clock.advance(step)
        if pump is not None:
            pump.flush()


def _standalone(clock: Clock, recorder: PingRecorder) -> tuple[Any, IOPump]:
    """
    A L{PingClientFactory}'s protocol, used on its own, connected to an
    echo server in memory on C{clock}: the protocol and the pump.
    """
    server = EchoServerFactory(ServerLimits(), reactor=clock)
    client = PingClientFactory(
        "ws://localhost:1234/", PingSession(timeout=2.0), recorder, interval=1.0, clock=clock,
        monotonic=clock.seconds, wall_ms=lambda: _EPOCH_MS + int(clock.seconds() * 1000),
    )
    c, _, pump = connectedServerAndClient(
        lambda: server.buildProtocol(_ADDRESS), lambda: client.buildProtocol(_ADDRESS), greet=False, clock=clock
    )
    return c, pump


class FactoryOnItsOwnTests(SynchronousTestCase):
    """
    A L{PingClientFactory} used without L{PingMonitor} (public API): its
    pings end with its connection, as nobody may connect it again.
    """

    def test_scheduleEndsWithTheConnection(self) -> None:
        """
        Once its connection is closed, no more pings fall due: none is
        lost as 'not connected', and no timer is left in the reactor (it
        reported a loss every interval for ever, once the schedule was the
        factory's).
        """
        clock, recorder = Clock(), PingRecorder()
        c, pump = _standalone(clock, recorder)
        pump.flush()
        _advance(clock, pump, 3.0)
        self.assertEqual([sample.seq for sample in recorder.result.samples], [1, 2, 3, 4])
        c.close(1000, "bye")
        _advance(clock, pump, 10.0)
        self.assertEqual(recorder.result.losses, [])
        self.assertEqual(clock.getDelayedCalls(), [])


class _RaisesOnce(PingRecorder):
    """
    A recorder whose first loss raises, as an observer with a bug would.
    """

    raised = False

    def ping_lost(self, loss: Loss) -> None:
        super().ping_lost(loss)
        if not self.raised:
            self.raised = True
            raise RuntimeError("observer bug")


class ObserverErrorTests(SynchronousTestCase):
    """
    An observer that raises while a ping falls due during an outage does
    not stop the pings for good.
    """

    def monitor(self, count: int) -> tuple[MemoryReactorClock, ConnectionCompleter, _RaisesOnce, list[object]]:
        """
        A started monitor of C{count} pings to an echo server on a memory
        reactor, whose observer raises at its first loss; what its C{done}
        fired with.
        """
        reactor = MemoryReactorClock()
        TCP4ServerEndpoint(reactor, 4321).listen(EchoServerFactory(reactor=reactor))
        recorder = _RaisesOnce()
        monitor = PingMonitor(
            "ws://127.0.0.1:4321/", recorder, interval=1.0, timeout=5.0, count=count, reactor=reactor,
            endpoint=TCP4ClientEndpoint(reactor, "127.0.0.1", 4321),
            retry_policy=backoffPolicy(initialDelay=0.5, factor=2.0, maxDelay=8.0, jitter=lambda: 0.0),
            monotonic=reactor.seconds, wall_ms=lambda: _EPOCH_MS + int(reactor.seconds() * 1000),
        )
        monitor.startService()
        self.addCleanup(lambda: (monitor.stopService(), reactor.advance(60)))
        done: list[object] = []
        monitor.done.addBoth(done.append)
        return reactor, ConnectionCompleter(reactor), recorder, done

    def test_scheduleStartsAgain(self) -> None:
        """
        The error is logged, and the next open starts the schedule again:
        every ping asked for is accounted for and C{done} fires.  (The
        schedule stopped for good while seeming to run: the monitor
        reconnected and sent nothing.)
        """
        reactor, completer, recorder, done = self.monitor(10)

        pump = completer.succeedOnce()
        pump.flush()
        _advance(reactor, pump, 1.0)
        pump.server.transport.abortConnection()
        pump.flush()
        _advance(reactor, None, 1.0)  # a ping falls due while down; the observer raises
        pump = completer.succeedOnce()
        pump.flush()
        _advance(reactor, pump, 20.0)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(len(recorder.result.samples) + len(recorder.result.losses), 10)
        self.assertEqual(recorder.result.samples[-1].seq, 10)
        self.assertEqual(done, [None])

    def test_errorAtTheLastPing(self) -> None:
        """
        When the error comes with the last ping asked for, the run is over:
        C{done} fires, though no ping or echo follows to say so (the
        monitor sat on a new open connection for ever).
        """
        reactor, completer, recorder, done = self.monitor(3)
        pump = completer.succeedOnce()
        pump.flush()
        _advance(reactor, pump, 1.5)  # pings 1 and 2 answered
        pump.server.transport.abortConnection()
        pump.flush()
        reactor.advance(1.0)  # ping 3 falls due while down; the observer raises
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual([loss.seq for loss in recorder.result.losses], [3])
        self.assertEqual(done, [None])


class FactoryCloseTests(SynchronousTestCase):
    """
    A factory used on its own stops its pings as its close begins.
    """

    def test_noLossWhileClosing(self) -> None:
        """
        While a close goes unanswered (a dead link), no ping falls due: none
        is lost as 'not connected' for as long as the close takes.
        """
        clock, recorder = Clock(), PingRecorder()
        c, pump = _standalone(clock, recorder)
        pump.flush()
        _advance(clock, pump, 1.5)
        c.close(1000, "bye")
        # Nothing reaches the server: its answer never comes.
        clock.advance(5.0)
        self.assertEqual([loss.reason for loss in recorder.result.losses if loss.reason is LossReason.NOT_CONNECTED], [])
