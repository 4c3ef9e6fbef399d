"""
The ping client: a WebSocket client protocol that sends a timestamp every
interval and reports what comes back, kept connected by L{ClientService}.

The protocol is thin: the bookkeeping is L{PingSession}'s, and what happens
is told to an L{IPingObserver}.  L{PingMonitor} is the service another
Twisted program mounts; L{ping} is the one-call helper ("ping N times and
give me the results") for scripts and tests on the same reactor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, Callable, cast

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.util import parse_url
from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, succeed
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IProtocol,
    IProtocolFactory,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import Interface, implementer

from pingproto._autobahn import ReactorTimer, settle_lost
from pingproto._reactor import TimeTCPReactor, looping_call, or_global_reactor
from pingproto.readgate import ReadGate
from pingproto.session import Loss, PingSession, Sample
from pingproto.stats import RttSummary, summarize
from pingproto.text import shortened
from pingproto.tls import client_tls_options, openssl_queue, openssl_reasons, wrap_client_tls

if TYPE_CHECKING:
    from pingproto._autobahn import _IConnectionTransport

__all__ = [
    "FLATLINE_CLOSE_CODE",
    "ConnectionState",
    "HandshakeError",
    "IPingObserver",
    "PingClientFactory",
    "PingClientProtocol",
    "PingMonitor",
    "PingRecorder",
    "PingResult",
    "StateChange",
    "TLSHandshakeIncomplete",
    "client_endpoint",
    "ping",
]


_log = Logger()

# Private-use close codes (RFC 6455 7.4.2) that say why we closed.
FLATLINE_CLOSE_CODE = 4000
UNMATCHED_CLOSE_CODE = 4001

# Seconds a server that sent a close frame has to drop the connection.
CLOSE_LINGER = 1.0

# Messages that answer no ping a connection may bring: this many, and this
# many more for each ping sent on it.  An echo server's late, repeated or
# stray replies stay far below; a server that sends without end (not an
# echo server, or a hostile one) would otherwise keep the client reading
# at the full speed of a core, the flatline never coming while it answers
# the pings too.  Past it, the client stops reading, closes with
# UNMATCHED_CLOSE_CODE and reconnects.
UNMATCHED_ALLOWANCE = 16
UNMATCHED_PER_PING = 4


class HandshakeError(ConnectionError):
    """
    The server did not accept the WebSocket (a non-101 answer, a bad
    handshake, or the handshake timed out).
    """


class TLSHandshakeIncomplete(HandshakeError):
    """
    A C{wss://} connection ended, or timed out, before the server finished
    the TLS handshake: most often a server that does not speak TLS on that
    port, which waits for an HTTP request and never answers the TLS hello.
    """


def _may_be_http(received: bytes) -> bool:
    """
    Whether C{received}, the start of a server's answer, may be the start
    of an HTTP response: it begins with C{HTTP/}, or with as much of it as
    has come.
    """
    return b"HTTP/".startswith(received[:5])


def _may_be_tls(received: bytes) -> bool:
    """
    Whether C{received}, the start of a server's answer, is a TLS record:
    an alert (0x15) or handshake (0x16) whose version begins with 3, as a
    TLS server's answer to bytes it cannot read as a hello does.
    """
    return received[:1] in (b"\x15", b"\x16") and received[1:2] == b"\x03"


# What Autobahn's reason for a connection it failed begins with; the rule
# the server broke follows.
_AUTOBAHN_FAILED = "I dropped the WebSocket TCP connection: "

_NOT_HTTP = "the server's answer is not HTTP (is it a WebSocket server?)"

# The library named in the entry added to an OpenSSL error queue for why
# the server's certificate did not verify (L{_with_verify_reason}).
VERIFY_ENTRY = "X509 certificate verification"


def _with_verify_reason(reason: Failure, connection: object) -> Failure:
    """
    C{reason}, an OpenSSL "certificate verify failed", with why it failed
    added to its error queue, in OpenSSL's words ("certificate has
    expired", "unable to get local issuer certificate"): the queue says
    only that it failed, and the why is the TLS connection's own.
    """
    error = reason.value
    if not isinstance(error, SSL.Error) or not isinstance(connection, SSL.Connection):
        return reason
    queue = openssl_queue(error)
    if not any(entry[-1:] == ("certificate verify failed",) for entry in queue):
        return reason
    # pyOpenSSL has no call for it: the binding it is built on has.
    ssl = getattr(connection, "_ssl", None)
    if ssl is None:
        return reason
    lib, ffi = Binding.lib, Binding.ffi
    code = lib.SSL_get_verify_result(ssl)
    if code == 0:  # X509_V_OK
        return reason
    why = ffi.string(lib.X509_verify_cert_error_string(code)).decode("ascii", "replace")
    return Failure(type(error)([*queue, (VERIFY_ENTRY, "", why)]))


# The longest HTTP answer head taken, the size of the server's default
# limit on a request head (ServerLimits.max_request_head): Autobahn buffers
# a head until it ends, however long, and searches all of it for its end
# at every read.
MAX_ANSWER_HEAD = 16 * 1024


class ConnectionState(IntEnum):
    """
    The WebSocket C{readyState} values, as the web page shows them.
    """

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


@dataclass(frozen=True)
class StateChange:
    """
    C{detail} says why, or is empty; C{setup_time} is, for C{OPEN}, the
    seconds from the start of the attempt to the open WebSocket (TCP, TLS
    and the upgrade together).  C{requested} is true for C{CLOSING} and
    C{CLOSED} when this program asked for the close (the run is over), as
    opposed to a drop, a server close or a flatline.  C{reason} is, for a
    C{CLOSED} attempt that never opened, why it failed, for callers that
    word it themselves (C{detail} is its raw text).
    """

    state: ConnectionState
    detail: str = ""
    setup_time: float | None = None
    requested: bool = False
    reason: Failure | None = field(default=None, compare=False, repr=False)


class IPingObserver(Interface):
    """
    Receives what a ping client sees, as it happens.
    """

    def ping_replied(sample: Sample) -> None:
        """
        An echo came back.
        """

    def ping_lost(loss: Loss) -> None:
        """
        A ping timed out, its connection went away, or it fell due while no
        connection was open (L{PingMonitor}, which counts an outage so).
        """

    def state_changed(change: StateChange) -> None:
        """
        The connection moved to another state.
        """

    def flatline(silence: float) -> None:
        """
        The connection is open but nothing has come back for C{silence}
        seconds; it is being closed so that a new one can be made.
        """


def _wall_ms() -> int:
    return int(time.time() * 1000)


def _cancel(call: IDelayedCall | None) -> None:
    if call is not None and call.active():
        call.cancel()


@implementer(IHandshakeListener)
class PingClientProtocol(WebSocketClientProtocol):
    """
    Send the pings its factory's schedule asks for while open; match
    echoes; time out the rest.
    """

    factory: PingClientFactory

    def __init__(self) -> None:
        super().__init__()
        self._was_open = False
        self._requested_close = False
        self._tls_done = False
        self._lost_reason: Failure | None = None
        self._setup_failure: Failure | None = None
        # Whether a ping that falls due goes out on this connection: from
        # the open until a close begins.
        self._pinging = False
        self._deadline: IDelayedCall | None = None
        self._silence: IDelayedCall | None = None
        # The latest ping answered: the link worked when it was sent.
        self._answered = 0
        # Pings sent on this connection, and messages that answered none;
        # why the client closed it on the server, if it did.
        self._sent = 0
        self._unmatched = 0
        self._gave_up: str | None = None
        # The code and reason of a close this client started for a reason
        # of its own (a flatline), as the detail of its CLOSED.
        self._closed_with: str | None = None
        self._linger: IDelayedCall | None = None
        self._gate: ReadGate | None = None
        # Why the upgrade was refused (L{failHandshake}), if it was.
        self._refusal: str | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.current = self

    def handshakeCompleted(self) -> None:
        """
        The TLS handshake is done (called by Twisted's TLS layer only).
        """
        self._tls_done = True

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        factory = self.factory
        if factory.current is self:
            factory.current = None
        self._lost_reason = reason
        if self._gate is not None:
            self._gate.detach()
        super().connectionLost(reason)
        settle_lost(self)
        if not self._was_open and not self._requested_close:
            factory.on_failed(self._setup_failure or self._why_not_opened(reason))

    def _why_not_opened(self, reason: Failure) -> Failure:
        """
        Why a connection ended before its WebSocket opened, as precisely as
        can be told: Autobahn's words for a bare TCP close or timeout say
        nothing of TLS, which is the usual cause when the URL's scheme does
        not match what the server speaks.
        """
        if reason.check(SSL.Error):
            # Twisted's TLS layer: its handle is the SSL.Connection.
            handle = getattr(self.transport, "getHandle", None)
            return _with_verify_reason(reason, handle() if handle is not None else None)
        if not reason.check(ConnectionDone, ConnectionLost):
            return reason
        if self.factory.isSecure and not self._tls_done:
            return Failure(TLSHandshakeIncomplete(f"the TLS handshake did not finish: {self._unclean_end()}"))
        return Failure(HandshakeError(self._not_an_answer() or self._unclean_end()))

    def _not_an_answer(self) -> str | None:
        """
        What the server did instead of answering the upgrade in HTTP
        (answered in TLS, said nothing, said something else), or L{None}:
        that says more than how the connection ended, mostly that the
        URL's scheme is the wrong one for the port.
        """
        received = getattr(self, "data", b"") or b""
        plain = not self.factory.isSecure
        if plain and _may_be_tls(received):
            return "the server answered in TLS (try wss://)"
        if self.droppedByMe:
            # The client cut the connection (a refused answer, a timeout):
            # its reason is the one to give.
            return None
        if plain and not received:
            return "the server closed the connection without answering the upgrade (does it expect wss://?)"
        if received and not _may_be_http(received):
            return _NOT_HTTP
        return None

    def processHandshake(self) -> None:
        """
        Refuse an answer that is not HTTP from its first bytes on, and one
        whose head is not UTF-8 before Autobahn reads it:
        Autobahn decodes the head for a debug line first, and its
        UnicodeDecodeError would escape as an unhandled error.  Refuse one
        whose head goes on past L{MAX_ANSWER_HEAD} as soon as it does: a
        server sending a head without end would otherwise have the client
        hold and search all of it until the handshake timeout.  A whole
        head that long is refused alike, however it came.
        """
        if not _may_be_http(self.data.lstrip(b" ")):
            # No more bytes can make it an HTTP answer (Autobahn strips
            # leading spaces): said now, not as a handshake timeout when
            # the server then says nothing.
            self.failHandshake(_NOT_HTTP)
            return
        end = self.data.find(b"\r\n\r\n")
        if (len(self.data) if end < 0 else end) > MAX_ANSWER_HEAD:
            self.failHandshake(f"the server's HTTP answer head is over {MAX_ANSWER_HEAD // 1024} KiB")
            return
        if end >= 0:
            try:
                self.data[:end].decode("utf-8")
            except UnicodeDecodeError:
                self.failHandshake("the server's HTTP answer is not UTF-8 text")
                return
        super().processHandshake()

    def failHandshake(self, reason: str) -> None:
        """
        Fail the upgrade for C{reason}, cut to L{QUOTED_MAX
        <pingproto.text.QUOTED_MAX>} characters: Autobahn's reasons quote
        what the server said (its status line, a header), which a user
        then reads in every message that names the failure.
        """
        status_line = getattr(self, "http_status_line", None)
        if reason.startswith("Unsupported HTTP version") and status_line:
            # Autobahn's words for any answer not in HTTP/1.1 (an HTTP/1.0
            # server's "200 OK", say): what matters is that it is no upgrade.
            reason = f'the server answered "{status_line}", not a WebSocket upgrade (HTTP/1.1 101)'
        self._refusal = shortened(reason)
        super().failHandshake(self._refusal)

    def _unclean_end(self) -> str:
        """
        What ended the connection without a clean close, in words of
        pingproto's, for the user: Autobahn's (C{wasNotCleanReason}) speak
        of its own workings ("I dropped the WebSocket TCP connection: ...",
        "peer did not finish the closing handshake").
        """
        if self._refusal is not None:
            return self._refusal
        if self.wasOpenHandshakeTimeout:
            return f"the server did not complete the handshake within {self.factory.openHandshakeTimeout:g} s"
        if self.wasCloseHandshakeTimeout:
            return "the server did not answer the close in time"
        if self.wasServerConnectionDropTimeout:
            return "the server did not end the connection after the close"
        if self.wasMaxFramePayloadSizeExceeded or self.wasMaxMessagePayloadSizeExceeded:
            return f"the server sent a message over the limit of {self.factory.maxMessagePayloadSize} bytes"
        if self.failedByMe:
            # Autobahn's reason names the rule the server broke.
            broken = shortened((self.wasNotCleanReason or "").partition(_AUTOBAHN_FAILED)[2])
            return f"the server broke the WebSocket protocol{f' ({broken})' if broken else ''}"
        lost = self._lost_reason
        if lost is not None and lost.check(SSL.Error):
            return f"the connection was lost to a TLS error: {openssl_reasons(lost.value)}"
        if lost is not None and lost.check(ConnectionDone) and not self.droppedByMe:
            return "the server closed the connection" + (" without a WebSocket close" if self._was_open else "")
        return "the connection was lost"

    def abandon(self) -> None:
        """
        Drop the connection now, as asked for: one whose WebSocket has not
        opened yet (a handshake may take as long as its timeout, and
        stopping should not), or one whose clean close nobody will wait for.
        """
        self._requested_close = True
        self.dropConnection(abort=True)

    def onOpen(self) -> None:
        factory = self.factory
        self._was_open = True
        self._read_only_while_sending()
        setup = factory.monotonic() - factory.attempt_started
        factory.observer.state_changed(StateChange(ConnectionState.OPEN, setup_time=setup))
        factory.on_open()
        if self.state != self.STATE_OPEN:
            # Whoever was told closed it already (stopping the monitor, say).
            return
        self._pinging = True
        factory.start_pinging()

    def _read_only_while_sending(self) -> None:
        """
        Have the transport stop reading while its write buffer is full.

        Every ping from the server is answered with a pong: a server that
        sends pings without end and reads none of the answers would have
        them pile up in the client's send buffer for as long as it went on.
        Not reading it instead leaves the bytes in the kernel's buffers and
        the server's own.
        """
        # TCP's or TLS's: a consumer, and the producer of what is read.
        transport = cast("_IConnectionTransport", self.transport)
        self._gate = ReadGate(transport)
        transport.registerProducer(self._gate, True)

    def takes_pings(self) -> bool:
        """
        Whether a ping due now can be sent on this connection: it is open
        and no close has begun.  Autobahn fails a connection (a server that
        broke the protocol) before the transport is gone and onClose is
        called: a ping due in between has nowhere to go either.
        """
        return self._pinging and self.state == self.STATE_OPEN

    def send_ping(self) -> None:
        """
        Send the ping that is due; call only when L{takes_pings}.
        """
        factory = self.factory
        payload = factory.session.send(factory.monotonic(), factory.wall_ms())
        self._sent += 1
        self.sendMessage(payload, isBinary=False)
        if self._silence is None:
            # Nothing older is waiting for an answer: the silence starts now.
            self._arm_silence()
        self._arm_deadline()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self._gave_up is not None:
            # The rest of the read that brought it past its bound.
            return
        factory = self.factory
        now = factory.monotonic()
        # An echo can be read before the timer that gives up on its ping
        # has run (a busy reactor, a long read): past the timeout, the
        # ping is lost all the same, and the echo answers none.
        for loss in factory.session.expire(now):
            factory.observer.ping_lost(loss)
        sample = factory.session.receive(payload, now)
        if sample is None:
            self._unmatched += 1
            if self._unmatched > UNMATCHED_ALLOWANCE + UNMATCHED_PER_PING * self._sent and self.state == self.STATE_OPEN:
                why = "the server sends messages that answer no ping"
                self._gave_up = f"closed with code {UNMATCHED_CLOSE_CODE}: {why}"
                if self._gate is not None:
                    # Nothing more is read: the server's answer to the
                    # close would come behind the rest of what it sends,
                    # so the close handshake's timeout ends it.
                    self._gate.hold("gave up")
                self.close(UNMATCHED_CLOSE_CODE, why, requested=False)
                return
        else:
            factory.observer.ping_replied(sample)
            self._answered = max(self._answered, sample.seq)
            self._arm_silence()
        self._arm_deadline()
        factory.check_finished()

    def onMessageFrameData(self, payload: bytes) -> None:
        # Autobahn keeps an entry for every fragment, empty or not: a server
        # that sends empty continuation frames without end (they add
        # nothing to the size it checks) would grow the client for ever.
        if payload:
            super().onMessageFrameData(payload)

    def _arm_silence(self) -> None:
        """
        Time the flatline from the oldest ping sent after the latest one
        answered that has no answer, or stop timing it if there is none.

        A flatline is silence while a ping waits, not time since the last
        echo: that would close a healthy link whenever the interval is as
        long as the flatline time.  A ping lost to its timeout still counts
        (a dead link loses every ping, and must still be replaced); one
        older than a ping just answered does not, as an echo server answers
        in order and the link plainly works.
        """
        _cancel(self._silence)
        self._silence = None
        factory = self.factory
        if not factory.flatline or self.state != self.STATE_OPEN:
            return
        sent_at = factory.session.oldest_sent_at(after_seq=self._answered)
        if sent_at is not None:
            self._silence = self._call_at(sent_at + factory.flatline, self._flatlined)

    def _arm_deadline(self) -> None:
        _cancel(self._deadline)
        when = self.factory.session.next_deadline()
        self._deadline = None if when is None else self._call_at(when, self._expire)

    def _call_at(self, when: float, f: Callable[[], object]) -> IDelayedCall:
        """
        Call C{f} at C{when}, a time on the factory's C{monotonic} clock,
        which the session's times are on: the reactor that schedules the
        call counts in its own time, so only the delay can be handed over.
        """
        factory = self.factory
        return factory.clock.callLater(max(0.0, when - factory.monotonic()), f)

    def _expire(self) -> None:
        self._deadline = None
        factory = self.factory
        for loss in factory.session.expire(factory.monotonic()):
            factory.observer.ping_lost(loss)
        self._arm_deadline()
        factory.check_finished()

    def _flatlined(self) -> None:
        """
        Open but silent: a stalled path or a half-open connection that TCP
        will not notice for minutes.  Give up on it and let the service
        reconnect.
        """
        self._silence = None
        flatline = self.factory.flatline
        assert flatline is not None  # armed only with a flatline time
        self.factory.observer.flatline(flatline)
        self.close(FLATLINE_CLOSE_CODE, "flatline", requested=False)

    def _stop_pinging(self) -> None:
        """
        No more pings go out on this connection: a close has begun.  A
        factory used on its own, which nobody connects again, ends its
        schedule here too: pings due while the close goes on would be lost
        as 'not connected', for as long as a dead link takes to close.
        """
        self._pinging = False
        if not self.factory.across_outages:
            self.factory.stop_pinging()

    def close(self, code: int = 1000, reason: str = "", requested: bool = True) -> None:
        """
        Start a clean close and tell the observer.
        """
        self._stop_pinging()
        self._requested_close = requested
        if not requested and self.state == self.STATE_OPEN:
            self._closed_with = f"closed with code {code}: {reason}" if reason else f"closed with code {code}"
        if self.state == self.STATE_OPEN:
            self.factory.observer.state_changed(
                StateChange(ConnectionState.CLOSING, reason, requested=requested)
            )
        self.sendClose(code, reason or None)

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        if self.state == self.STATE_OPEN:
            self.factory.observer.state_changed(StateChange(ConnectionState.CLOSING, "server closing"))
            # No more pings on a closing connection; and a server that said
            # goodbye but keeps the socket open (Autobahn waits for it for
            # ever when answering a close) is cut off after a second.
            self._stop_pinging()
            self._linger = self.factory.clock.callLater(CLOSE_LINGER, self.dropConnection, True)
        # Autobahn's types say int and bytes; it passes None for a close
        # without a code, as here.
        handled = super().onCloseFrame(code, reasonRaw)  # type: ignore[arg-type]
        self._retime_drop_timeout()
        return handled

    def _retime_drop_timeout(self) -> None:
        """
        Move the wait for the server to end the connection after answering
        our close onto the factory's clock: Autobahn times it with
        C{txaio.call_later}, on the global reactor, where a program on
        another reactor (or a test on a L{Clock}) would wait for ever, and
        its stop with it.
        """
        call = self.serverConnectionDropTimeoutCall
        if call is not None and call.active():
            call.cancel()
            self.serverConnectionDropTimeoutCall = self.factory.clock.callLater(
                self.factory.serverConnectionDropTimeout, self.onServerConnectionDropTimeout
            )

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if not self._was_open and not self._requested_close and self._lost_reason is not None:
            # Autobahn has set wasNotCleanReason by now; the observer is
            # told the cause along with the CLOSED below.
            self._setup_failure = self._why_not_opened(self._lost_reason)
        self._stop_pinging()
        for call in (self._deadline, self._silence, self._linger):
            _cancel(call)
        self._deadline = self._silence = self._linger = None
        factory = self.factory
        for loss in factory.session.disconnect():
            factory.observer.ping_lost(loss)
        if self._gave_up is not None:
            # Whatever the server answered, or not, this is why it ended.
            detail = self._gave_up
        elif not wasClean:
            # Autobahn reports every unclean end as 1006, with words of its
            # own for the reason.
            detail = f"code {code or 1006}: {self._unclean_end()}"
        elif self._closed_with is not None:
            # The server's answer carries a code of its own choosing
            # (Autobahn's remote close code, commonly 1000): why it ended
            # is the code this client closed with.
            detail = self._closed_with
        elif code is None:
            # A close frame without a code: RFC 6455's 1005, as a
            # browser's close event says.
            detail = "code 1005 (no code given)"
        else:
            detail = f"code {code}: {reason}" if reason else f"code {code}"
        factory.observer.state_changed(
            StateChange(ConnectionState.CLOSED, detail, requested=self._requested_close, reason=self._setup_failure)
        )
        factory.check_finished()


class PingClientFactory(WebSocketClientFactory):
    """
    Shares one L{PingSession} and observer across reconnections, and
    keeps the pings' schedule: one ping falls due every interval from the
    first open (L{start_pinging}) on.

    With C{across_outages} (L{PingMonitor}, which reconnects, sets it),
    pings keep falling due while no connection is open, as ping(8)'s do,
    and one that no connection takes (reconnecting, closing) is lost as
    L{LossReason.NOT_CONNECTED <pingproto.session.LossReason>}: an outage
    then shows as loss, and a count is reached however the link goes.
    The first connection is not timed so: like ping's name lookup, it is
    setup, and its failure an error.  Without it (a factory used on its
    own, which nobody may connect again), the schedule ends with each
    connection, and the next one starts it again.

    @param monotonic: the clock round trips are measured with; tests pass
        their L{Clock}'s C{seconds}.
    @param wall_ms: the wall clock the pings carry, in milliseconds.
    @param flatline: seconds an open connection may go without an echo
        before it is closed and replaced (L{None} or 0: never, as with the
        command line's C{--flatline 0}).
    @param on_open: called when a WebSocket opens.
    @param on_failed: called with the reason when an attempt fails
        before its WebSocket opens: by the protocol for a connection that
        closes first (TLS or WebSocket handshake failed), and by
        L{PingMonitor}'s endpoint for one never made (refused, unknown
        host).  Not for what was asked for (a stop, an abandon).
    @param on_finished: called once every ping asked for is accounted for.
    @param across_outages: whether the schedule outlives a connection
        (above).
    """

    # Autobahn's factories derive from Twisted's generic Factory without
    # naming their protocol type, which no protocol whose factory attribute
    # is its own factory class then fits.
    protocol = PingClientProtocol  # type: ignore[assignment]
    # Twisted's "Starting factory <...>" and "Stopping factory" lines at
    # every connection: the observer is told of each state change.
    noisy = False

    def __init__(
        self,
        url: str,
        session: PingSession,
        observer: IPingObserver,
        *,
        interval: float = 1.0,
        flatline: float | None = None,
        clock: IReactorTime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
        on_open: Callable[[], object] = lambda: None,
        on_failed: Callable[[Failure], object] = lambda reason: None,
        on_finished: Callable[[], object] = lambda: None,
        max_message_size: int = 64 * 1024,
        handshake_timeout: float = 10.0,
        across_outages: bool = False,
    ) -> None:
        if not interval > 0:  # also refuses NaN
            raise ValueError("the ping interval must be positive")
        if flatline is not None and not flatline >= 0:  # also refuses NaN
            raise ValueError("the flatline time must be 0 (never) or more")
        clock = or_global_reactor(clock)
        super().__init__(url, reactor=clock)
        # Read by Autobahn's protocol, not here: its handshake and close
        # timeouts then run on this clock (all but the wait for the server
        # to drop the connection: PingClientProtocol._retime_drop_timeout).
        self._batched_timer = ReactorTimer(clock)
        self.session = session
        self.observer = observer
        self.current: PingClientProtocol | None = None
        # True while the owner is stopping: what fails then was asked for.
        self.stopping = False
        self.interval = interval
        self.flatline = flatline or None
        self.clock = clock
        self.monotonic = monotonic
        self.wall_ms = wall_ms
        self.attempt_started = monotonic()
        self.on_open = on_open
        self.on_failed = on_failed
        self._on_finished = on_finished
        self.across_outages = across_outages
        self._ticker: LoopingCall | None = None
        self.setProtocolOptions(
            maxMessagePayloadSize=max_message_size,
            maxFramePayloadSize=max_message_size,
            openHandshakeTimeout=handshake_timeout,
        )

    def attempting(self) -> None:
        """
        A connection attempt starts now: setup time is measured from here.
        """
        self.attempt_started = self.monotonic()
        self.observer.state_changed(StateChange(ConnectionState.CONNECTING))

    def start_pinging(self) -> None:
        """
        A WebSocket opened: start the schedule with a ping now, unless it
        runs already (a reconnection), when the next ping is due at its
        time.
        """
        if self._ticker is None and not self.session.done_sending:
            ticker = self._ticker = looping_call(self.clock, self._ping_due)
            ticker.start(self.interval, now=True).addErrback(self._schedule_failed, ticker)

    def _schedule_failed(self, reason: Failure, ticker: LoopingCall) -> None:
        """
        A ping's bookkeeping raised (an observer's, most likely): say so,
        and let the next open start the schedule again.  Left as it was,
        the schedule stopped for good while seeming to run: the monitor
        reconnected and sent nothing.
        """
        _log.failure("pinging stopped by an error; it starts again at the next open", reason)
        if self._ticker is ticker:
            self._ticker = None
        # The error may have come after the last ping fell due, before the
        # owner was told the run was over: no later open would tell it.
        self.check_finished()

    def stop_pinging(self) -> None:
        """
        No more pings fall due (the run is stopping, or all were sent).
        """
        if self._ticker is not None and self._ticker.running:
            self._ticker.stop()
        self._ticker = None

    def _ping_due(self) -> None:
        # Never once all were due: the schedule stops at the last.
        session = self.session
        protocol = self.current
        if protocol is not None and protocol.takes_pings():
            protocol.send_ping()
        else:
            self.observer.ping_lost(session.missed(self.wall_ms()))
        if session.done_sending:
            self.stop_pinging()
        self.check_finished()

    def check_finished(self) -> None:
        """
        Tell the owner once every ping asked for is answered or lost: the
        session cannot, having no I/O, so each protocol event that may
        settle a ping asks here.
        """
        if self.session.finished:
            self._on_finished()


def client_endpoint(
    reactor: TimeTCPReactor, url: str, ca_file: str | None = None, timeout: float = 10.0
) -> IStreamClientEndpoint:
    """
    The endpoint for a C{ws://} or C{wss://} URL, verifying the server's
    certificate against C{ca_file} or the system's trust store.  The
    C{reactor} connects it: L{IReactorTCP
    <twisted.internet.interfaces.IReactorTCP>} and L{IReactorTime}.
    """
    secure, host, port = parse_url(url)[:3]
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port, timeout=timeout)
    if secure:
        endpoint = wrap_client_tls(client_tls_options(host, ca_file), endpoint, cast(IReactorTime, reactor))
    return endpoint


@implementer(IStreamClientEndpoint)
class _AnnouncingEndpoint:
    """
    Tells the observer when a connection attempt starts and when it fails,
    which L{ClientService} does not.
    """

    def __init__(self, endpoint: IStreamClientEndpoint, factory: PingClientFactory) -> None:
        self._endpoint = endpoint
        self._factory = factory

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        self._factory.attempting()

        def failed(reason: Failure) -> Failure:
            if self._factory.stopping:
                # An attempt cancelled by stopping is no failed attempt,
                # and its cancellation says nothing true of the server
                # (HostnameEndpoint words it "DNS lookup failed").
                self._factory.observer.state_changed(
                    StateChange(ConnectionState.CLOSED, "stopped while connecting", requested=True)
                )
                return reason
            self._factory.observer.state_changed(
                StateChange(ConnectionState.CLOSED, reason.getErrorMessage(), reason=reason)
            )
            self._factory.on_failed(reason)
            return reason

        return self._endpoint.connect(factory).addErrback(failed)


class PingMonitor(Service):
    """
    Ping a server every interval for as long as the service runs,
    reconnecting with exponential backoff when the connection drops.

    A connection that fails before its WebSocket opens (refused, TLS or
    handshake failure) counts as a failed attempt and lengthens the wait;
    one that opened and later dropped is retried after the initial delay.
    Pings fall due every interval from the first open on, and one due
    while the link is down is lost (L{PingClientFactory}).
    C{done} fires with L{None} when C{count} pings are answered or lost,
    or fails with the reason when C{give_up_after} attempts in a row fail
    before any WebSocket ever opened (with C{give_up_any_time}, at any
    time).  Stopped before either, it fires with L{None} once the
    connection is gone (C{session} tells how far the run got).
    Cancelling C{done} stops the service.  Started again after C{done}
    fired, the monitor makes a new run: a new C{done}, and with a
    C{count}, a new L{PingSession} of as many pings.

    C{reactor} (the global one by default) times everything: it provides
    L{IReactorTime}, and L{IReactorTCP
    <twisted.internet.interfaces.IReactorTCP>} too unless C{endpoint} is
    given, for the endpoint made from C{url} then.
    """

    def __init__(
        self,
        url: str,
        observer: IPingObserver,
        *,
        interval: float = 1.0,
        timeout: float = 5.0,
        count: int | None = None,
        flatline: float | None = None,
        ca_file: str | None = None,
        reactor: TimeTCPReactor | None = None,
        endpoint: IStreamClientEndpoint | None = None,
        retry_policy: Callable[[int], float] | None = None,
        give_up_after: int | None = None,
        give_up_any_time: bool = False,
        monotonic: Callable[[], float] = time.monotonic,
        wall_ms: Callable[[], int] = _wall_ms,
    ) -> None:
        reactor = or_global_reactor(reactor)
        # Its IReactorTime side, as Twisted's APIs ask for it.
        clock = cast(IReactorTime, reactor)
        self._reactor = clock
        self.session = PingSession(timeout, count)
        self.factory = PingClientFactory(
            url,
            self.session,
            observer,
            across_outages=True,
            interval=interval,
            flatline=flatline,
            clock=clock,
            monotonic=monotonic,
            wall_ms=wall_ms,
            on_open=self._opened,
            on_failed=self._attempt_failed,
            on_finished=self._finished,
        )
        if endpoint is None:
            endpoint = client_endpoint(reactor, url, ca_file)
        self._policy = retry_policy or backoffPolicy(initialDelay=0.5, maxDelay=30.0)
        self._failures = 0
        self._ever_opened = False
        if give_up_after is not None and give_up_after < 1:
            raise ValueError("give_up_after must be 1 or more attempts, or None (never give up)")
        self._give_up_after = give_up_after
        self._give_up_any_time = give_up_any_time
        self._client = ClientService(
            _AnnouncingEndpoint(endpoint, self.factory),
            self.factory,
            # ClientService counts only endpoint failures; ours also counts
            # connections whose TLS or WebSocket handshake failed.
            retryPolicy=lambda attempt: self._policy(self._failures),
            clock=clock,
        )
        self.done: Deferred[None] = Deferred(self._cancel_done)
        self._stopping: Deferred[None] | None = None
        # What done fires with when the run's stop is over.
        self._outcome: Failure | None = None

    def _cancel_done(self, done: Deferred[None]) -> None:
        # A stop with no connection to close is over at once, and would
        # fire done with None inside the canceller: a cancelled run would
        # read as one that ended.
        if self._stopping is None:
            self._outcome = Failure(CancelledError())
        self.stopService()

    def startService(self) -> None:
        # A service may be started again after a stop: the next stop must
        # close that run's connection, not return the last stop's result.
        self._stopping = None
        self._outcome = None
        self._failures = 0
        self.factory.stopping = False
        if self.done.called:
            self.done = Deferred(self._cancel_done)
            self._ever_opened = False
            if self.session.count is not None:
                self.session = self.factory.session = PingSession(self.session.timeout, self.session.count)
        super().startService()
        # Started again before a stop has finished, the client service is
        # still running: it reconnects once the old connection has closed.
        if not self._client.running:
            self._client.startService()

    def drop_connection(self) -> None:
        """
        Drop the connection at once, without a close handshake: for a stop
        that will not wait for a clean close (a second Ctrl-C).  Call after
        L{stopService}, which then fires as soon as the connection is gone.
        """
        protocol = self.factory.current
        if protocol is not None:
            protocol.abandon()

    @property
    def ever_opened(self) -> bool:
        """
        Whether a WebSocket opened since the service was made.
        """
        return self._ever_opened

    def _opened(self) -> None:
        self._failures = 0
        self._ever_opened = True

    def _attempt_failed(self, reason: Failure) -> None:
        self._failures += 1
        if (
            self._give_up_after is not None
            and (self._give_up_any_time or not self._ever_opened)
            and self._failures >= self._give_up_after
        ):
            # Called from inside ClientService's state machine, which cannot
            # be stopped re-entrantly: stop on the next turn of the reactor.
            self._reactor.callLater(0, self._give_up, reason)

    def _give_up(self, reason: Failure) -> None:
        if not self.done.called:
            self._end_run(reason)

    def _finished(self) -> None:
        self._end_run(None)

    def _end_run(self, reason: Failure | None) -> None:
        """
        Stop, then fire C{done}: with L{None} when every ping is accounted
        for, or else with C{reason}.  C{done} is fired only once the
        connection is gone, so that its callbacks find the run over; and
        only if nothing fired it meanwhile (it may be cancelled).
        """
        if not self.running:
            return
        self._outcome = reason
        self.stopService()

    def stopService(self) -> Deferred[None]:
        """
        Close an open WebSocket cleanly (code 1000), drop one still in its
        handshake, cancel an attempt under way, and stop reconnecting; fire
        once the connection is gone, and C{done} then.
        """
        if self._stopping is not None:
            return self._stopping
        super().stopService()
        self.factory.stopping = True
        self.factory.stop_pinging()
        protocol = self.factory.current
        closed: Deferred[object] = succeed(None)
        if protocol is not None:
            if protocol.state == protocol.STATE_OPEN:
                protocol.close(1000, "done")
            elif protocol.state == protocol.STATE_CONNECTING:
                protocol.abandon()
            closed = protocol.is_closed
        self._stopping = closed.addBoth(self._stop_client).addCallback(self._fire_done)
        return self._stopping

    def _stop_client(self, _: object) -> Deferred[None] | None:
        # Not if the monitor was started again meanwhile: that run goes on.
        return None if self.running else self._client.stopService()

    def _fire_done(self, _: object) -> None:
        """
        End the run once the connection is gone, so that C{done}'s
        callbacks find it over: not if the monitor was started again
        meanwhile (the run goes on, with the same C{done}), nor if
        something fired C{done} already (it may be cancelled).
        """
        if self.running or self.done.called:
            return
        if self._outcome is None:
            self.done.callback(None)
        else:
            self.done.errback(self._outcome)


@dataclass
class PingResult:
    """
    Everything a finished run saw.
    """

    samples: list[Sample] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    states: list[StateChange] = field(default_factory=list)
    flatlines: list[float] = field(default_factory=list)

    @property
    def summary(self) -> RttSummary | None:
        return summarize([s.rtt for s in self.samples])


@implementer(IPingObserver)
class PingRecorder:
    """
    An observer that keeps everything, for short runs and tests.
    """

    def __init__(self) -> None:
        self.result = PingResult()

    def ping_replied(self, sample: Sample) -> None:
        self.result.samples.append(sample)

    def ping_lost(self, loss: Loss) -> None:
        self.result.losses.append(loss)

    def state_changed(self, change: StateChange) -> None:
        self.result.states.append(change)

    def flatline(self, silence: float) -> None:
        self.result.flatlines.append(silence)


def ping(
    url: str,
    count: int,
    *,
    interval: float = 1.0,
    timeout: float = 5.0,
    ca_file: str | None = None,
    reactor: TimeTCPReactor | None = None,
    give_up_after: int = 3,
) -> Deferred[PingResult]:
    """
    Ping C{url} C{count} times and fire with what came back.

    Fails with the connection error (refused, unknown host, certificate not
    trusted) if the first connection fails C{give_up_after} times in a row.
    If the server goes away later, the pings due meanwhile are lost (not
    connected) and the connection is retried as often, then the result
    fires with what came back until then (fewer pings than C{count} if it
    gave up first; C{states} ends with why).  Cancelling the result stops
    pinging.  C{reactor} (the global one by default) times the pings and
    makes the connections: L{IReactorTime} and L{IReactorTCP
    <twisted.internet.interfaces.IReactorTCP>}.
    """
    recorder = PingRecorder()
    monitor = PingMonitor(
        url,
        recorder,
        interval=interval,
        timeout=timeout,
        count=count,
        ca_file=ca_file,
        reactor=reactor,
        give_up_after=give_up_after,
        give_up_any_time=True,
    )

    def gave_up(reason: Failure) -> PingResult | Failure:
        if monitor.ever_opened and not reason.check(CancelledError):
            return recorder.result
        return reason

    monitor.startService()
    return monitor.done.addCallbacks(lambda _: recorder.result, gave_up)
