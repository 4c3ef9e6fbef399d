"""
The echo server: an Autobahn WebSocket protocol that sends every message
back unchanged, and answers plain HTTP requests with a short hint.

Autobahn's own answer to a request without C{Upgrade} is a status page that
names its version and follows C{?redirect=} to any site; a server on the
open internet should do neither, so L{EchoServerProtocol} answers such
requests itself before Autobahn sees them: C{GET /app} with the live page
(L{pingproto.webapp}), anything else with the hint, which points to it.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, ClassVar, Collection, Sequence
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.protocol import parseHttpHeader
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IDelayedCall, IReactorTime, ISSLTransport
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure

from pingproto._autobahn import OptionsOnClass, ReactorTimer, ServerOverrides, settle_lost
from pingproto.config import ServerLimits
from pingproto.limits import AddressCounter, RefusalTally, TokenBucket, client_address, origin_allowed, socket_bound
from pingproto.readgate import ReadGate
from pingproto.sharedkeys import share_transport_names
from pingproto.text import peer_text as _peer_of
from pingproto.text import printable as _printable
from pingproto.text import shortened
from pingproto.webapp import content_security_policy, page

__all__ = ["APP_PATH", "PLAIN_ANSWER", "WEBSOCKET_PATHS", "EchoServerFactory", "EchoServerProtocol"]

PLAIN_ANSWER = b"connect a WebSocket please"
APP_PATH = "/app"

# A browser asking for the hint is shown a link to the page; the text it
# ends with is the plain answer's, word for word.
_PLAIN_HTML = (
    b'<!DOCTYPE html><meta charset="utf-8"><title>pingproto</title>'
    + f'<p><a href="{APP_PATH}">Live ping graph of this server</a>'.encode()
    + b"<p>"
    + PLAIN_ANSWER
)
_PLAIN_HEADERS = (
    ("Link", f'<{APP_PATH}>; rel="alternate"; type="text/html"'),
    ("Vary", "Accept"),
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"),
)

# Mounted in another program's site, the page at /app is not ours to
# point to.
_MOUNTED_HEADERS = tuple(header for header in _PLAIN_HEADERS if header[0] not in ("Link", "Vary"))

# "/sock/websocket" is the raw WebSocket path of the original SockJS server,
# which the classic page opens.
WEBSOCKET_PATHS = frozenset({"/", "/sock/websocket"})

_MALFORMED = b"malformed HTTP request\n"
_TOO_MANY = b"too many connections, try again later\n"

# Answers of 5xx that are not the server failing, logged at info as other
# refusals are: 503 is a connection cap, whose warnings the factory gives
# (EchoServerFactory.refused), and 505 the client's HTTP version.
_NOT_SERVER_FAULTS = frozenset({503, 505})

# Seconds between two warnings that a connection cap refused connections
# (RefusalTally); the first warning's text says "once a minute".
REFUSAL_WARNING_INTERVAL = 60.0

# A private-use code would do, but 1008 (policy violation) is what RFC 6455
# has for "you broke a rule of this server".
_POLICY_VIOLATION = 1008
_GOING_AWAY = 1001

# A message up to this size is echoed whole once it has arrived; a larger
# one is echoed piece by piece as it arrives.  Either way a connection holds
# at most about this much of a message, whatever the message size limit.
ECHO_BUFFER = 64 * 1024

# What a data frame costs of the data rate at least, whatever its length:
# about what a frame costs to take apart, in bytes of a large frame's time.
# 16 MiB sent in 256-byte fragments costs no more than its bytes.
FRAME_COST = 256

# Steps of Autobahn's frame parser (a frame's header, or as much of its
# payload as has come) that one connection's buffered bytes get in one
# turn of the reactor.  A frame that is not a whole small message (those
# take the fast path) costs one or two, and each step copies what is left
# of the read: ten clients sending one-byte fragments held other clients'
# echoes up to 600 ms at 256 steps, 31 ms at 64.  A large message's few
# frames are hardly slowed.
STEPS_PER_TURN = 64


class _PeerFaultsAsInfo:
    """
    Autobahn's logger for the echo's connections, with its warnings about
    what a peer did brought down to what they are: a client that breaks the
    protocol, stalls or is refused is an event in an access log, not
    something for the operator to act on, and on a server open to the
    internet warnings about peers would bury the ones about the server.

    Autobahn's "failing WebSocket connection" goes to debug, because the
    line C{onClose} logs for every WebSocket repeats its code and reason;
    its "dropping connection to peer" to info, because for a peer that
    never finished its opening handshake it is the only line.  Every other
    message keeps its level.
    """

    __slots__ = ("_log",)

    def __init__(self, log: Any) -> None:
        self._log = log

    def warn(self, format: str, **kwargs: object) -> None:
        if format.startswith("failing WebSocket connection"):
            self._log.debug(format, **kwargs)
        elif format.startswith("dropping connection to peer"):
            self._log.info(format, **kwargs)
        else:
            self._log.warn(format, **kwargs)

    def __getattr__(self, name: str) -> Any:
        # Every other method, looked up on each call: txaio replaces a
        # logger's methods when its level changes.
        if name == "_log":
            # Not set yet (a copy, say): not looked up in itself.
            raise AttributeError(name)
        return getattr(self._log, name)


def _host_of(address: IAddress) -> str:
    """
    Whom the connection caps count a socket by: its host, or C{"unix"} for
    a UNIX socket, which has none.
    """
    return getattr(address, "host", "unix")


def _phrase(code: int) -> str:
    """
    The reason phrase for C{code}; an embedding program's C{onConnect} may
    refuse with any code.
    """
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Refused"


def open_for(seconds: float) -> str:
    """
    How long a connection was open, to the precision a reader of the log
    wants: tenths of a second under a minute, then whole seconds, then
    minutes.
    """
    if seconds < 59.95:
        return f"{max(0.0, seconds):.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    minutes = whole // 60
    return f"{minutes // 60} h {minutes % 60:02d} min"


# METHOD TARGET HTTP/x.y: methods are case-sensitive (RFC 9110 9.1), so
# "get" is not GET, and every method registered is in capitals.
_REQUEST_LINE = re.compile(r"[A-Z]+ [^ ]+ HTTP/[0-9]\.[0-9]")


def _looks_like_http(request_line: str) -> bool:
    """
    Whether a request line has the shape C{METHOD TARGET HTTP/x.y}.
    """
    return _REQUEST_LINE.fullmatch(request_line) is not None


def _never_http(start: bytes) -> bool:
    """
    Whether the start of a request head, not yet ended, can never become an
    HTTP request: its first byte is not a method's (a TLS hello, wss://
    sent to a ws:// port), its first line is not a request line (another
    protocol), or it has ended its head with a bare LF, so the head will
    never end as HTTP wants (CRLF CRLF).
    """
    first = start[:1]
    if first and not b"A" <= first <= b"Z":
        return True
    line_end = start.find(b"\n")
    if line_end >= 0 and not _looks_like_http(start[:line_end].rstrip(b"\r").decode("latin-1")):
        return True
    return b"\n\n" in start


def _request_paths(paths: str | Collection[str]) -> frozenset[str]:
    """
    C{paths} as a set, refusing a path no request can ask for: a string
    taken for a collection of paths is one of its letters each.
    """
    # Typed as text, but a program without a type checker may pass bytes,
    # read as numbers otherwise.
    given: object = paths
    if isinstance(given, bytes):
        raise TypeError(f"WebSocket paths are text: {given.decode('latin-1')!r}, not {given!r}")
    chosen = frozenset([paths] if isinstance(paths, str) else paths)
    if not chosen:
        raise ValueError("no WebSocket path given: name one or more, or None for any")
    for path in chosen:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"a WebSocket path starts with '/', as a request's path does: not {path!r}")
    return chosen


class EchoServerProtocol(ServerOverrides, WebSocketServerProtocol):
    """
    Echo each message, text as text and binary as binary, byte for byte.

    Memory per connection stays small whatever the message size limit: a
    message over L{ECHO_BUFFER} is streamed back as it arrives (one frame
    per piece received, so a close can always follow a whole frame), and
    the connection stops reading while its echoes wait to be sent, so a
    client that sends without reading fills its own buffers, not the
    server's.  It also stops reading, for as long as it takes, from a
    client over its data rate, so that one client cannot take the CPU the
    others need.

    Every whole message, once the limits let it through, goes to L{echo}:
    the one method for a subclass to override to see or change what is
    sent back (C{onMessage} sees only the small messages of the fast path).
    A message over L{ECHO_BUFFER} is never whole here, and never reaches it.
    """

    factory: EchoServerFactory
    log = _PeerFaultsAsInfo(WebSocketServerProtocol.log)
    _log = Logger()
    _opened = False
    _opened_at = 0.0
    _echo_overridden = False
    _counted: str | None = None
    _bucket: TokenBucket | None = None
    _data_bucket: TokenBucket | None = None
    _gate: ReadGate | None = None
    _throttle: IDelayedCall | None = None
    _backlog: IDelayedCall | None = None
    _keepalive: bytes | None = None
    _in_backlog = False
    _linger: IDelayedCall | None = None
    _answering_bad_close = False
    _over_cap = False
    _pieces: bytearray
    _streaming = False
    # Whole small messages taken on the fast path from one read, at most:
    # about what STEPS_PER_TURN takes apart of them on Autobahn's path,
    # which has the rest.
    fast_frames_per_read = STEPS_PER_TURN // 2
    # Given to an open connection after it is made (at the upgrade, at the
    # first keepalive, when it streams or is slowed down): named before the
    # first, for OptionsOnClass's protocol class (pingproto/sharedkeys.py).
    late_names: ClassVar[tuple[str, ...]] = (
        "_counted", "_opened", "_gate", "_bucket", "_data_bucket", "_opened_at", "_keepalive", "control_frame_data",
        "_throttle", "_backlog", "_in_backlog", "_pieces", "_streaming",
    )

    def connectionMade(self) -> None:
        factory = self.factory
        factory.protocols.add(self)
        super().connectionMade()
        limits = factory.limits
        host = _host_of(self.transport.getPeer())
        if not limits.trusted_proxies:
            # Counted by address from the start: sockets that never send a
            # request would otherwise escape their address's cap and could
            # fill --max-connections for everyone.  (Behind a proxy the
            # client's address comes with the request.)
            if not factory.per_address.acquire(host):
                self._refuse_at_once(f"--max-per-address {limits.max_per_address}", host)
                return
            self._counted = host
        if limits.max_connections and factory.sockets - factory.over_cap > limits.max_connections:
            self._refuse_at_once(f"--max-connections {limits.max_connections}", host)

    def _refuse_at_once(self, cap: str, address: str) -> None:
        """
        Refuse a socket over a connection cap as it is accepted, and let go
        of it at once.

        Held until its request came (or, for one that sent none, until the
        handshake timeout), sockets over the caps counted against nothing
        and took every file descriptor the server had: one address could
        shut everyone out.  Refused here, each is held a reactor turn or
        two, counted apart meanwhile (L{over_cap}).  It is answered 503
        before its request, which a client that sends one reads all the
        same.  Over TLS the answer would wait for a TLS handshake, which
        a silent client never starts and which is the dearest part of a
        connection for the server: the socket is closed unanswered.
        (Mounted in a site, the request has come, over TLS too: answered.)
        """
        factory = self.factory
        self._over_cap = True
        factory.over_cap += 1
        self._release_address()
        factory.refused(cap, address)
        if factory.paths is not None and ISSLTransport.providedBy(self.transport):
            self._log.info(
                "{peer}: closed unanswered: too many connections ({cap}; over TLS the answer would wait for a handshake)",
                peer=self.peer,
                cap=cap,
            )
            # The line above says it all; Autobahn's would say it again.
            self.wasClean = True
            self.dropConnection(abort=True)
        else:
            self._answer_too_many()

    def _release_address(self) -> None:
        """
        Give back this socket's place under C{--max-per-address}, once: a
        socket refused over a cap gives it back as it is refused, and its
        C{connectionLost} comes later.
        """
        if self._counted is not None:
            self.factory.per_address.release(self._counted)
            self._counted = None

    def _answer_too_many(self) -> None:
        self._answer(503, _TOO_MANY, headers=(("Retry-After", "10"),))

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        factory = self.factory
        if self._over_cap:
            factory.over_cap -= 1
        self._release_address()
        for call in (self._throttle, self._linger, self._backlog):
            if call is not None and call.active():
                call.cancel()
        if self._gate is not None:
            self._gate.detach()
        try:
            super().connectionLost(reason)
            settle_lost(self)
        finally:
            # Last: a stop waiting for the server to be idle must find every
            # connection over, its onClose run and its timers cancelled.
            factory.protocols.discard(self)
            factory.notify_if_idle()

    def dropConnection(self, abort: bool = False) -> None:
        """
        Close the connection; when Autobahn closes it gently (after a plain
        HTTP answer, a refused handshake, or the reply to the peer's
        close), make sure it ends even if the peer never does its part.

        A gentle close waits for the peer: over TLS for its close_notify,
        over TCP for it to take the last bytes.  The WebSocket is CLOSED by
        then, so no Autobahn timer and no 1001 on stop acts on it any more,
        and a peer gone quiet would keep its socket, and its place under
        the connection caps, for ever.  So reading resumes (backed-up
        echoes may have stopped it, and once the gate is unregistered
        nothing else would resume it) and the connection is cut after a
        grace period: the time a client gets for its opening handshake, or
        the time Autobahn gives a peer to answer a close if that is longer.
        The cut is armed first, so that a C{connectionLost} that comes
        at once cancels it, and goes through Autobahn's C{_closeConnection},
        which copes with a transport that cannot abort.
        """
        if abort and self._answering_bad_close and self.failedByMe:
            # Autobahn has just queued a 1002 or 1007 for the peer's close,
            # and takes that close for the answer to its own: closed gently,
            # the frame reaches the peer (L{onCloseFrame}).
            abort = False
        if abort or self.state == self.STATE_CLOSED:
            super().dropConnection(abort)
            return
        if self._gate is not None:
            self._gate.release_all()
        grace = max(self.openHandshakeTimeout, self.closeHandshakeTimeout)
        self._linger = self.factory.reactor.callLater(grace, self._closeConnection, True)
        super().dropConnection(abort)

    def abort(self) -> None:
        """
        Let go of the socket at once, whatever its stage: on stop, for a
        connection that never became a WebSocket or did not finish closing
        in time.
        """
        self._closeConnection(True)

    def onOpenHandshakeTimeout(self) -> None:
        """
        Answer a request begun but not finished in time with 408, as HTTP
        servers do, so that whoever sent it (a proxy, curl, a hand-typed
        request) learns why, instead of seeing the connection reset.  A
        client that sent nothing, or no TLS handshake, gets no answer it
        could read, and is dropped as Autobahn drops it.
        """
        if self.state != self.STATE_CONNECTING or not self.data:
            super().onOpenHandshakeTimeout()
            return
        self.openHandshakeTimeoutCall = None
        self._answer(408, f"the request did not arrive within {self.openHandshakeTimeout:g} s\n".encode("ascii"))

    def processHandshake(self) -> None:
        """
        Read the request head within limits Autobahn does not set: it
        buffers a head of any size until its blank line comes, and answers
        a request without C{Upgrade} with its own status page.  Here a head
        over C{max_request_head} is answered 431, bytes that can never
        become a request 400 at once rather than 408 at the handshake
        timeout, and only an upgrade within the caps (L{_admit}) reaches
        Autobahn.
        """
        head_end = self.data.find(b"\r\n\r\n")
        limit = self.factory.limits.max_request_head
        if head_end < 0 and len(self.data) <= limit:
            # Said now, not after the handshake timeout.
            if _never_http(self.data):
                self._answer(400, _MALFORMED)
            return
        if head_end < 0 or head_end + 4 > limit:
            self._answer(431, b"request head too large\n")
            return
        try:
            status_line, headers, _ = parseHttpHeader(self.data[: head_end + 4])
        except Exception:
            self._answer(400, _MALFORMED)
            return
        if not _looks_like_http(status_line):
            self._answer(400, _MALFORMED)
        elif not self._admit(headers):
            self._answer_too_many()
        elif "upgrade" in headers:
            super().processHandshake()
        else:
            self._plain(status_line, headers)

    def _admit(self, headers: dict[str, str]) -> bool:
        """
        Apply the per-address cap behind a trusted proxy, where the request
        names the client, before any WebSocket work is done; the other caps
        were applied as the socket was accepted (L{connectionMade}).
        """
        factory = self.factory
        limits = factory.limits
        if self._counted is not None:
            return True
        host = _host_of(self.transport.getPeer())
        address = client_address(host, headers.get("x-forwarded-for"), limits.trusted_proxies)
        if address != host:
            # The log names whom the caps count: a forwarded client by its
            # address alone (the port is the proxy's), anyone else as
            # Autobahn does.
            self.peer = address
        if not factory.per_address.acquire(address):
            factory.refused(f"--max-per-address {limits.max_per_address}", address)
            return False
        self._counted = address
        return True

    def _plain(self, request_line: str, headers: dict[str, str]) -> None:
        """
        Answer a request that is not an upgrade: the page, or the hint.
        """
        method, target, version = request_line.split(" ")
        body = method != "HEAD"
        if version == "HTTP/1.1" and "host" not in headers:
            # RFC 9112 3.2: a server MUST answer it 400.  (An upgrade
            # without one Autobahn refuses, saying the same.)
            self._answer(400, b"HTTP/1.1 request without a Host header\n", body)
            return
        factory = self.factory
        try:
            path = urlsplit(target).path
        except ValueError:
            self._answer(400, b"malformed request target\n")
            return
        if factory.paths is None:
            # Mounted (WebSocketResource): the site around it owns the rest.
            self._answer(200, PLAIN_ANSWER, body, headers=_MOUNTED_HEADERS)
        elif method in ("GET", "HEAD") and path == APP_PATH:
            self._answer(200, factory.app_page, body, "text/html", factory.app_headers)
        elif "text/html" in headers.get("accept", ""):
            self._answer(200, _PLAIN_HTML, body, "text/html", _PLAIN_HEADERS)
        else:
            self._answer(200, PLAIN_ANSWER, body, headers=_PLAIN_HEADERS)

    def _answer(
        self,
        code: int,
        text: bytes,
        body: bool = True,
        media_type: str = "text/plain",
        headers: Sequence[tuple[str, str]] = (),
    ) -> None:
        """
        Send a complete HTTP response and close, with one line in the log
        (L{_log_answer}).
        """
        phrase = _phrase(code)
        head = (
            f"HTTP/1.1 {code} {phrase}\r\n"
            f"Content-Type: {media_type}; charset=utf-8\r\n"
            f"Content-Length: {len(text)}\r\n"
            + "".join(f"{name}: {value}\r\n" for name, value in headers)
            + "Connection: close\r\n\r\n"
        ).encode("ascii")
        self._log_answer(code, phrase, text)
        # The exchange ended as HTTP means it to: an answer, then the close.
        self.wasClean = True
        self.sendData(head + text if body else head)
        self.dropConnection(abort=False)

    def _log_answer(self, code: int, phrase: str, text: bytes) -> None:
        """
        Log an HTTP answer at debug if it served the request, at info if it
        refused it (the client's mistake, or one of many over a connection
        cap: an access-log line, not a warning), and at warn only for a 5xx
        that is the server failing.  A connection cap being reached is
        warned of apart, not once per refusal (L{EchoServerFactory.refused}).
        """
        if code < 400:
            self._log.debug("{peer}: answered {code} {phrase}", peer=self.peer, code=code, phrase=phrase)
            return
        self._log.emit(
            LogLevel.warn if code >= 500 and code not in _NOT_SERVER_FAULTS else LogLevel.info,
            "{peer}: answered {code} {phrase}: {why}",
            peer=self.peer,
            code=code,
            phrase=phrase,
            why=_printable(text.decode("utf-8", "replace").strip()),
        )

    def failHandshake(
        self, reason: str, code: int = 400, responseHeaders: Sequence[tuple[str, str]] | None = None
    ) -> None:
        """
        Refuse an upgrade as any other request is refused (L{_answer}): a
        standard status line with the reason as the body, and one line in
        the log.  Autobahn's own puts the reason, with whatever of the
        request it quotes, in the status line, sends no body, and logs the
        refusal twice, once as a warning.
        """
        self._answer(code, f"{reason}\n".encode("utf-8"), headers=responseHeaders or ())

    def onConnect(self, request: ConnectionRequest) -> None:
        paths = self.factory.paths
        if paths is not None and request.path not in paths:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "no WebSocket at this path")
        limits = self.factory.limits
        origin = self.http_headers.get("origin")
        if not origin_allowed(origin, limits.allowed_origins, limits.allow_null_origin):
            # Named, for the operator reading the log line of the refusal:
            # a browser's page it meant to allow, refused, shows why.
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, f"origin {_printable(shortened(origin or ''))} not allowed")

    def onOpen(self) -> None:
        self._opened = True
        self._read_only_while_sending()
        limits, now = self.factory.limits, self.factory.reactor.seconds()
        self._bucket = TokenBucket(limits.max_message_rate, limits.message_burst, now)
        self._data_bucket = TokenBucket(limits.max_data_rate, limits.data_burst, now)
        self._opened_at = now

    def _read_only_while_sending(self) -> None:
        """
        Have the transport stop reading while its write buffer is full
        (Twisted's producer protocol, through a L{ReadGate}); Autobahn
        unregisters it before it drops the connection.
        """
        transport = self.transport
        self._gate = ReadGate(transport)
        try:
            transport.registerProducer(self._gate, True)
        except RuntimeError:
            # Mounted in a twisted.web site: the HTTP channel that handed
            # the transport over is still its producer, and never pauses it
            # while a request (the upgrade) is in progress.
            transport.unregisterProducer()
            transport.registerProducer(self._gate, True)

    def dataReceived(self, data: bytes) -> None:
        if self.state == self.STATE_CLOSED:
            # Closed by this side and waiting for the peer to let go (over
            # TLS, for its close_notify): Autobahn would keep appending
            # whatever still comes to a buffer nothing reads again.
            return
        self._spend_data(len(data))
        if self.autoPingTimeoutCall is not None and (self.current_frame is not None or self.data):
            # More of a frame under way says the client is there, as
            # Autobahn takes any whole frame to: one sending a large
            # message slowly cannot answer a keepalive before the message
            # ends, and was dropped.  (Not any bytes: a read that begins
            # with the pong must still find the ping it answers.)
            if self.autoPingRestartOnAnyTraffic:
                self._cancelAutoPingTimeoutCall()
        super().dataReceived(data)

    def _spend_data(self, cost: int) -> None:
        """
        Count C{cost} bytes against the data rate; over it, read no more
        from this client until it is back within, then go on.
        """
        bucket = self._data_bucket
        if bucket is not None and self._gate is not None:
            wait = bucket.spend(cost, self.factory.reactor.seconds())
            if wait > 0 and "rate" not in self._gate.holding:
                self._gate.hold("rate")
                self._throttle = self.factory.reactor.callLater(wait, self._rate_regained)

    def _rate_regained(self) -> None:
        # One read of the transport can be several dataReceived calls
        # (Twisted's own TLS layer, around a mounted echo, hands on a record
        # at a time), each adding debt after the first set the wait: read
        # again only once all of it is paid.
        bucket, gate = self._data_bucket, self._gate
        if bucket is None or gate is None:
            return
        wait = bucket.spend(0, self.factory.reactor.seconds())
        if wait > 0:
            self._throttle = self.factory.reactor.callLater(wait, self._rate_regained)
        else:
            gate.release("rate")
            if "backlog" in gate.holding:
                self._work_backlog()

    def consumeData(self) -> None:
        """
        Work through the frames a read brought a turn's worth at a time
        (L{STEPS_PER_TURN}), and no further than this client's data rate
        allows; what is left waits for a later turn, or for the rate, and
        nothing more is read meanwhile.

        Autobahn works through all of it at once: 64 KiB of one-byte
        fragments is some 9,000 frames, and while one client's were taken
        apart every other client's echoes waited, 160-400 ms.
        """
        gate = self._gate
        if gate is None or (self.state != self.STATE_OPEN and self.state != self.STATE_CLOSING):
            # Not open (the handshake), or opened without pingproto's onOpen
            # (a subclass's that does not call it): as Autobahn.
            super().consumeData()
            return
        if "backlog" in gate.holding and not self._in_backlog:
            # Bytes that came while a backlog waits its turn (Twisted's own
            # TLS layer hands on the records of a read one by one, paused
            # or not): Autobahn has added them to it.
            return
        for _ in range(STEPS_PER_TURN):
            if not self.processData() or self.state == self.STATE_CLOSED:
                gate.release("backlog")
                return
            if "rate" in gate.holding:
                break
        gate.hold("backlog")
        if "rate" not in gate.holding and self._backlog is None:
            # The other connections' reads first; then more of this one's.
            self._backlog = self.factory.reactor.callLater(0, self._work_backlog)

    def _work_backlog(self) -> None:
        """
        Go on with the backlog, on a later turn or once the rate allows.

        Called from a timer, not from a read: what the parser raises would
        go to the reactor's log and leave the connection holding its read
        for ever, so it ends the connection, as Twisted ends one whose
        C{dataReceived} raises.
        """
        if self._backlog is not None and self._backlog.active():
            self._backlog.cancel()
        self._backlog = None
        self._in_backlog = True
        try:
            self.consumeData()
        except Exception:
            self._log.failure("{peer}: taking a backlog of frames apart failed", peer=self.peer)
            self.dropConnection(abort=True)
        finally:
            self._in_backlog = False

    def _within_rate(self) -> bool:
        """
        Count a message against the rate limit; close with 1008 past it.
        """
        if self._bucket is not None and not self._bucket.take(self.factory.reactor.seconds()):
            self.close_with(_POLICY_VIOLATION, "message rate limit exceeded")
            return False
        return True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._echo_overridden = cls.echo is not EchoServerProtocol.echo

    def echo(self, payload: bytes, isBinary: bool) -> None:
        """
        Send back C{payload}, a whole message of up to L{ECHO_BUFFER} bytes
        that the limits let through.
        """
        self.sendMessage(payload, isBinary)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        # Reached only from the fast path for small whole messages
        # (L{ServerOverrides}), which send_back relies on; Autobahn's own
        # path ends in onMessageEnd.
        if self.state == self.STATE_OPEN and self._within_rate():
            if len(payload) < FRAME_COST:
                # As onMessageFrameBegin charges on Autobahn's path.
                self._spend_data(FRAME_COST - len(payload))
            if self._echo_overridden:
                self.echo(payload, isBinary)
            else:
                # echo's own work, less the checks the fast path made.
                self.send_back(payload, isBinary)

    def processControlFrame(self) -> bool:
        """
        Count a ping or a pong as a message against the rate limit, and
        take an unsolicited pong in silence; the pong that answers this
        server's own keepalive ping is free.

        Each costs a frame's work (and a ping a pong back) for a few bytes:
        a flood of empty pings held other clients' echoes at 100 ms while
        well within the data rate.  RFC 6455 allows a pong nobody asked
        for (a one-way heartbeat), for which Autobahn logs a warning every
        time: a log line per frame a client sends.  But how often the
        answers to keepalives come is the server's choice (one at a time,
        one per C{--ping-interval}): counted, they closed every client with
        1008 once the interval was under a message's share of the rate.
        """
        frame = self.current_frame
        assert frame is not None  # the one being processed
        opcode = frame.opcode
        if opcode == 10:
            payload = b"".join(self.control_frame_data)
            keepalive, self._keepalive = self._keepalive, None
            # Autobahn's own type for it is None, its first value.
            pending: bytes | None = self.autoPingPending
            if payload == pending:
                return super().processControlFrame()
            self.control_frame_data = None  # type: ignore[assignment]  # as Autobahn does
            if payload != keepalive and not self._within_rate():
                return False
            self._onPong(payload)
            return True
        if opcode == 9 and not self._within_rate():
            self.control_frame_data = None  # type: ignore[assignment]  # as Autobahn does
            return False
        return super().processControlFrame()

    def _sendAutoPing(self) -> None:
        super()._sendAutoPing()
        # Kept apart from Autobahn's autoPingPending, which any frame from
        # the client clears, taking it for the answer: the pong that still
        # comes answers this server's asking all the same, and is free.
        self._keepalive = self.autoPingPending

    def onCloseFrame(self, code: int | None, reasonRaw: bytes | None) -> bool | None:
        """
        As Autobahn, except that a close this server answers with 1002 or
        1007 (a reserved close code, a reason that is not UTF-8) reaches
        the client: Autobahn queues that close and then aborts the
        connection in the same call, which throws it away.
        """
        failed = self.failedByMe
        try:
            self._answering_bad_close = True
            # Autobahn's types say int and bytes; it passes None for a close
            # without a code, as here.
            return super().onCloseFrame(code, reasonRaw)  # type: ignore[arg-type]
        finally:
            self._answering_bad_close = False
            if not failed and self.failedByMe:
                self.wasClean = False

    # Autobahn's message hooks, replaced so that nothing collects a large
    # message whole.  Its size checks (1009) stay: they are in the
    # onMessageBegin and onMessageFrameBegin called here.

    def onMessageFrameBegin(self, length: int) -> None:
        # A frame costs at least FRAME_COST bytes of the data rate: a flood
        # of tiny fragments costs CPU out of all proportion to its bytes.
        if length < FRAME_COST:
            self._spend_data(FRAME_COST - length)
        super().onMessageFrameBegin(length)

    def onMessageBegin(self, isBinary: bool) -> None:
        super().onMessageBegin(isBinary)
        # One buffer, not a list of pieces: held as a list, a message of
        # 1-byte fragments costs many times the bytes it holds.
        self._pieces = bytearray()
        self._streaming = False
        if self.state == self.STATE_OPEN:
            self._within_rate()

    def onMessageFrameData(self, payload: bytes) -> None:
        # An empty fragment adds nothing to the echo (and nothing to
        # Autobahn's size count), so it must add nothing to memory either.
        if not payload or self.state != self.STATE_OPEN or self.failedByMe:
            return
        if self._streaming:
            self._echo_piece(payload)
            return
        self._pieces += payload
        if len(self._pieces) > ECHO_BUFFER:
            self._streaming = True
            self.beginMessage(self.message_is_binary)
            self._echo_piece(bytes(self._pieces))
            self._pieces = bytearray()

    def _echo_piece(self, data: bytes) -> None:
        self.beginMessageFrame(len(data))
        self.sendMessageFrameData(data)

    def onMessageFrameEnd(self) -> None:
        pass

    def onMessageEnd(self) -> None:
        if self.state == self.STATE_OPEN and not self.failedByMe:
            if self._streaming:
                self.endMessage()
            else:
                self.echo(bytes(self._pieces), self.message_is_binary)
        self._pieces = bytearray()

    def close_with(self, code: int, reason: str) -> None:
        """
        Start the closing handshake with any code RFC 6455 allows a server
        (Autobahn's C{sendClose} takes only 1000 and 3000-4999).
        """
        if self.state == self.STATE_OPEN:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8"), isReply=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        # One line per WebSocket, when it ends, as an access log has one
        # per request: a line at open as well cost 70 us of the 800 us a
        # wss connection costs the server (docs/performance.md).
        if self._opened:
            # The code that ended it: ours if we closed first, else theirs.
            if self.closedByMe and self.localCloseCode is not None:
                code, local_reason = self.localCloseCode, self.localCloseReason
                reason = local_reason.decode("utf-8", "replace") if isinstance(local_reason, bytes) else local_reason
            seconds = self.factory.reactor.seconds() - self._opened_at
            self._log.info(
                "{peer} at {path}, open {open_for}, closed: code {code}{reason}{unclean}",
                peer=self.peer,
                path=_printable(self.http_request_path),
                seconds=seconds,
                open_for=open_for(seconds),
                code=code if code is not None else "none",
                # The client's words: one line, and no terminal escapes.
                reason=f" ({_printable(reason)})" if reason else "",
                unclean="" if wasClean else ", not clean",
            )


class EchoServerFactory(OptionsOnClass, WebSocketServerFactory):
    """
    Build echo connections with pingproto's safe limits.

    @param limits: everything a connection may cost the server (see
        L{ServerLimits}).
    @param paths: request paths that may open a WebSocket (one string is
        one path); L{None} allows any, for mounting with
        L{autobahn.twisted.resource.WebSocketResource} where the site
        already chose the path.
    @param reactor: what every timer of the connections (handshake and
        close timeouts, keepalive, rate limits) runs on, and the refusal
        warnings read the time from; the global reactor if L{None}.
    """

    # Autobahn's factories derive from Twisted's generic Factory without
    # naming their protocol type, which no protocol whose factory attribute
    # is its own factory class then fits.
    protocol = EchoServerProtocol  # type: ignore[assignment]
    # Twisted's "Starting factory <... object at 0x...>" and "Stopping
    # factory" lines: the service's "pingproto listening on ..." says it.
    noisy = False
    # Autobahn's factory sets it: the reactor given, or the global one.
    reactor: IReactorTime
    _log = Logger()

    def __init__(
        self,
        limits: ServerLimits = ServerLimits(),
        paths: str | Collection[str] | None = WEBSOCKET_PATHS,
        *,
        reactor: IReactorTime | None = None,
    ) -> None:
        super().__init__(server=None, reactor=reactor)
        # Before the first connection, or it is too late (sharedkeys.py).
        share_transport_names()
        self._batched_timer = ReactorTimer(self.reactor)
        self.limits = limits
        self.paths = None if paths is None else _request_paths(paths)
        # Every socket's protocol, whatever its stage (to say goodbye to on
        # stop); how many of them were refused over a cap and are closing;
        # per address, every socket served (behind a trusted proxy, once
        # its request has been read).
        self.protocols: set[EchoServerProtocol] = set()
        self.over_cap = 0
        self.per_address = AddressCounter(limits.max_per_address)
        # The most sockets held at once, counted or not (0: no bound; see
        # buildProtocol), and the open-file limit it was set under.
        self.max_sockets = 0
        self.open_files: int | None = None
        self._refusals: dict[str, RefusalTally] = {}
        self._idle_waiters: list[Deferred[None]] = []
        # Read once here: a request must not touch the disk.
        self.app_page = page()
        self.app_headers = (
            ("Cache-Control", "no-cache"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", content_security_policy(self.app_page)),
            ("Referrer-Policy", "no-referrer"),
        )
        self.setProtocolOptions(
            maxMessagePayloadSize=limits.max_message_size,
            maxFramePayloadSize=limits.max_message_size,
            openHandshakeTimeout=limits.handshake_timeout,
            autoPingInterval=limits.ping_interval,
            autoPingTimeout=limits.ping_timeout,
            # permessage-deflate: a ping needs no compression, and inflating
            # untrusted data is attack surface.
            perMessageCompressionAccept=lambda offers: None,
            # Tell a misbehaving peer why (1007, 1009, ...) instead of
            # silently dropping the TCP connection.
            failByDrop=False,
            # Origins are checked in onConnect, with a 403 and patterns as
            # browsers write origins; Autobahn's check answers 400 and
            # compares with default ports filled in.
            allowedOrigins=["*"],
            allowNullOrigin=True,
            # trustXForwardedFor stays 0: Autobahn's rule for the forwarded
            # address is not the caps' (client_address), and the log must
            # name whom the caps count; _admit sets the peer.
        )

    def bound_sockets(self, open_files: int) -> None:
        """
        Hold at most as many sockets at once, counted or not, as a soft
        open-file limit of C{open_files} leaves room for (L{socket_bound}):
        whatever comes, the server stays short of EMFILE, where Twisted
        resets every client waiting to be accepted.  Past the bound
        L{buildProtocol} builds no protocol, which only a wrapping factory
        that passes the L{None} on can take (L{make_server_service}'s do;
        Twisted's own TLS factory does not): off unless set.
        """
        self.open_files = open_files
        self.max_sockets = socket_bound(open_files)

    def buildProtocol(self, addr: IAddress) -> EchoServerProtocol | None:  # type: ignore[override]
        """
        Refuse a socket past L{max_sockets}: with no protocol for it,
        Twisted closes it as it is accepted, unanswered (an answer would
        hold it longer; the alternative is EMFILE for everyone).
        """
        if self.max_sockets and self.sockets >= self.max_sockets:
            peer = _peer_of(addr)
            self.refused(
                f"{self.max_sockets} sockets open, as many as the open-file limit ({self.open_files}) leaves room for",
                _host_of(addr),
            )
            self._log.info(
                "{peer}: closed unanswered: the server holds {sockets} sockets, "
                "as many as its open-file limit leaves room for",
                peer=peer,
                sockets=self.sockets,
            )
            return None
        protocol: EchoServerProtocol = super().buildProtocol(addr)
        return protocol

    def refused(self, cap: str, address: str) -> None:
        """
        Note a connection from C{address} refused at C{cap}, and warn that
        the cap is reached at the first refusal and then at most once every
        L{REFUSAL_WARNING_INTERVAL} seconds, with how many were refused
        since: the operator may want to raise the cap, but not to read a
        warning per retry.  Each refusal has its own line at info.
        """
        tally = self._refusals.get(cap)
        if tally is None:
            tally = self._refusals[cap] = RefusalTally(REFUSAL_WARNING_INTERVAL)
        due = tally.refused(self.reactor.seconds())
        if due is None:
            return
        count, since = due
        if since is None:
            self._log.warn(
                "Connection cap reached: {cap}; refused {address}. Refusals are logged at info; "
                "this warning repeats at most once a minute while they go on.",
                cap=cap,
                address=address,
            )
        else:
            self._log.warn(
                "Connection cap reached: {cap}; {count} refused in the last {period}, the latest {address}.",
                cap=cap,
                count=count,
                period=open_for(since),
                address=address,
            )

    @property
    def sockets(self) -> int:
        """
        How many sockets the server holds, whatever their stage.
        """
        return len(self.protocols)

    @property
    def open_protocols(self) -> set[EchoServerProtocol]:
        """
        The connections that became WebSockets and have not ended yet,
        closing ones included.
        """
        return {protocol for protocol in self.protocols if protocol._opened}

    def going_away(self) -> Deferred[None]:
        """
        Tell every open WebSocket the server is going away (1001), and
        let go at once of every socket that has not become one (a TLS
        handshake, a request on its way, a plain answer being sent):
        stopping must not wait for a handshake timeout, or forever where
        there is none.  Fires when no socket is left.
        """
        for protocol in list(self.protocols):
            if protocol._opened:
                protocol.close_with(_GOING_AWAY, "server shutting down")
            else:
                protocol.abort()
        idle: Deferred[None] = Deferred()
        self._idle_waiters.append(idle)
        self.notify_if_idle()
        return idle

    def notify_if_idle(self) -> None:
        """
        Fire what L{going_away} returned once no socket is left; called
        as each one ends.
        """
        if not self.protocols:
            waiters, self._idle_waiters = self._idle_waiters, []
            for waiter in waiters:
                waiter.callback(None)
