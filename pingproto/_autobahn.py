"""
Small, documented overrides of Autobahn internals, in one place.

Each exists for a reason stated beside it, and each is covered by tests
that would fail if an Autobahn release changed the behaviour it relies on.
"""

from __future__ import annotations

from collections import deque
from functools import cached_property
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from autobahn.twisted.util import create_transport_details
from autobahn.util import _is_tls_error, _maybe_tls_reason
from autobahn.wamp.types import TransportDetails
from autobahn.websocket.protocol import FrameHeader, TrafficStats, WebSocketProtocol
from autobahn.websocket.utf8validator import Utf8Validator
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import connectionDone
from twisted.python.failure import Failure

from pingproto.eagerwrite import write_now
from pingproto.sharedkeys import share_names

if TYPE_CHECKING:
    from autobahn.twisted.websocket import WebSocketServerProtocol
    from autobahn.websocket.protocol import Timings
    from twisted.internet.interfaces import IConsumer, IPushProducer, ITransport

    class _IConnectionTransport(ITransport, IConsumer, IPushProducer):
        """
        A server connection's transport (TCP, TLS, or the transport of the
        web site the echo is mounted in): it takes a producer, and can be
        paused.
        """

    class _Connection(WebSocketServerProtocol):
        """
        What the overrides below are mixed into, for the type checker: an
        Autobahn server protocol, with what Autobahn sets on each
        connection without declaring it.  At run time they derive from
        C{object}, as mixins do.
        """

        # Connected before any of the overrides runs.
        transport: _IConnectionTransport
        _transport_details: TransportDetails

        # What Autobahn sets these to, which its own types for them leave
        # out: mypy infers each from one assignment in Autobahn's code (the
        # None alone, for the timers and the close code and reason), and
        # its Twisted adapter and its protocol disagree on peer.
        peer: str | None  # type: ignore[assignment]
        trackedTimings: Timings | None  # type: ignore[assignment]
        wasNotCleanReason: str | None  # type: ignore[assignment]
        current_frame: FrameHeader | None  # type: ignore[assignment]
        localCloseCode: int | None  # type: ignore[assignment]
        localCloseReason: bytes | None  # type: ignore[assignment]
        openHandshakeTimeoutCall: _Call | None  # type: ignore[assignment]
        closeHandshakeTimeoutCall: _Call | None  # type: ignore[assignment]
        autoPingTimeoutCall: _Call | None  # type: ignore[assignment]

        # The protocol options that _connectionMade copies from the factory
        # (CONFIG_ATTRS), those used here.
        logOctets: bool
        logFrames: bool
        trackTimings: bool
        utf8validateIncoming: bool
        applyMask: bool
        maskServerFrames: bool
        maxFramePayloadSize: int
        maxMessagePayloadSize: int
        autoFragmentSize: int
        openHandshakeTimeout: float
        closeHandshakeTimeout: float
        tcpNoDelay: bool
        autoPingRestartOnAnyTraffic: bool

else:
    _Connection = object

_OPEN = WebSocketProtocol.STATE_OPEN
_GROUND = WebSocketProtocol.SEND_STATE_GROUND
_BEFORE_OPEN = (WebSocketProtocol.STATE_CONNECTING, WebSocketProtocol.STATE_PROXY_CONNECTING)


class _Call:
    """
    A delayed call that may be cancelled any number of times, as Autobahn
    does with its timers (it sometimes cancels one that already ran).
    """

    __slots__ = ("_call",)

    def __init__(self, call: IDelayedCall) -> None:
        self._call = call

    def cancel(self) -> None:
        if self._call.active():
            self._call.cancel()


def _forget(result: object) -> None:
    return None


def settle_lost(protocol: WebSocketProtocol) -> None:
    """
    What Autobahn's C{connectionLost} leaves undone; call after it.

    Its close-handshake timer keeps running when the connection ends
    before the peer's answer to a close (a connection it failed, e.g. with
    1007; a peer gone while a client's stop was closing): nothing is left
    to time out, and a trial test would find the reactor dirty.

    And the closed connection is let be freed by reference counting, as
    soon as nothing else holds it.  Autobahn fires C{is_closed} with the
    protocol itself: a cycle (the protocol holds the Deferred, the
    Deferred its result) that only the cycle collector frees, at its next full pass, which in a busy process
    can be minutes away.  Until then each closed connection's objects stay
    allocated between the memory freed around them: after 10,000 clients
    left a server at once, every later echo cost a third more CPU, in
    glibc's malloc (docs/performance.md).  Whoever waited on C{is_closed}
    has had the protocol by now; callbacks added later get C{None}.
    """
    # Autobahn's types say the attribute is only ever None.
    call: Any = protocol.closeHandshakeTimeoutCall
    if call is not None:
        call.cancel()
        protocol.closeHandshakeTimeoutCall = None
    if protocol.is_closed.called:
        protocol.is_closed.addCallback(_forget)


class ReactorTimer:
    """
    Stands in for Autobahn's per-factory C{_batched_timer}, which always
    schedules on txaio's global loop: this one uses the factory's own
    reactor, so the handshake timeout and keepalive run on a test's L{Clock}
    and an embedding program's reactor alike.  Twisted keeps delayed calls
    in a heap, so there is no need to batch them.
    """

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor

    def call_later(self, delay: float, func: Callable[..., Any], *args: Any, **kwargs: Any) -> _Call:
        return _Call(self._reactor.callLater(delay, func, *args, **kwargs))


class QuietDataPath(_Connection):
    """
    Autobahn's C{dataReceived} and C{sendData} with their debug log lines
    left out.

    Autobahn formats the arguments of those lines (eight C{click.style}
    calls through C{hltype}/C{hlval}) on every read and every write, even
    with debug logging off: 15 us of the 132 us a wss echo costs here
    (docs/performance.md).  The behaviour is otherwise Autobahn's own:
    anything but a plain write (chopped or synchronous sends, a queue,
    octet logging) still goes through it.  A plain write waits for the
    reactor's next turn, as Twisted's TCP transport has it: sent at once
    (L{write_now}), the handshake's answer and the close frames cost a ws
    handshake 205 -> 243 us (the echo gains, L{FastSend}).
    """

    # Autobahn gives every connection a deque (760 bytes) for the chopped
    # and synchronous sends that only its own sendData queues; here it is
    # an empty tuple, which reads as an empty queue, until such a send.
    send_queue: deque[Any] | tuple[()] = ()  # type: ignore[assignment]

    def dataReceived(self, data: bytes) -> None:
        self._dataReceived(data)

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        if sync or chopsize or self.send_queue or self.logOctets:
            if not isinstance(self.send_queue, deque):
                self.send_queue = deque()
            super().sendData(data, sync, chopsize)
            return
        self.transport.write(data)
        if self.state == self.STATE_OPEN:
            self.trafficStats.outgoingOctetsWireLevel += len(data)
        elif self.state in _BEFORE_OPEN:
            # As Autobahn: what is sent once closing is counted nowhere.
            self.trafficStats.preopenOutgoingOctetsWireLevel += len(data)


def unmask(mask: bytes, masked: bytes) -> bytes:
    """
    XOR a frame's payload with its 4-byte mask (RFC 6455 5.3), as one
    operation on Python ints: for a small frame a fraction of a microsecond,
    where Autobahn's C{create_xor_masker(...).process(...)} builds a native
    masker and copies the payload in and out of a cffi buffer (about 4 us,
    docs/performance.md).
    """
    n = len(masked)
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(masked, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


# The largest payload the fast paths take: what the 16-bit length form can
# say.  Larger messages are rare here and go through Autobahn.
FAST_PAYLOAD_MAX = 0xFFFF


class FastReceive(_Connection):
    """
    Deliver whole small messages straight from the received bytes to
    C{onMessage}, without Autobahn's per-frame machinery.

    For every frame Autobahn's C{processData} builds a L{FrameHeader} and a
    native XOR masker (9.8 us of a 132 us wss echo), then walks
    C{onFrameBegin}, C{onMessageBegin}, C{onMessageFrameBegin},
    C{onFrameData}, an incremental UTF-8 validator, C{onMessageFrameData},
    C{onFrameEnd}, C{onMessageFrameEnd}, C{onMessageFrame} and
    C{onMessageEnd}: about 40 us per echo in all.  A ping is one small
    masked text frame, so here the common case is taken apart in one loop.

    The loop runs when the connection is open, no frame or fragmented
    message is under way, nothing is buffered, nothing is watching (octet
    or frame logging, timing tracking, compression, C{.on("message")}
    listeners), and C{applyMask} is on (off, Autobahn hands a masked
    payload on still masked).  It takes the complete masked frames at the
    start of the read with FIN set, no RSV bits, opcode text or binary
    and a payload of at most L{FAST_PAYLOAD_MAX} bytes within
    C{maxFramePayloadSize} and C{maxMessagePayloadSize}.  Each is unmasked
    with L{unmask}; text is checked, if C{utf8validateIncoming}, with a
    strict C{bytes.decode("utf-8")}, which accepts exactly the UTF-8 that
    Autobahn's validator accepts; then C{onMessage(payload, isBinary)} is
    called.

    Around that call goes Autobahn's bookkeeping for a received data
    frame.  Before it, with C{autoPingRestartOnAnyTraffic}, a pending
    auto-ping timeout is cancelled (as C{onFrameEnd} does).  After it the
    C{trafficStats} counters are counted, if the connection is still open:
    Autobahn counts only while it is, and pingproto's rate limit, which
    the fast path meets in C{onMessage}, closes on Autobahn's path in
    C{onMessageBegin}, before anything is counted.  Autobahn's own
    C{onMessageEnd} would also C{fire("message")}: with no listeners
    (C{_listeners is None}) that does nothing.

    A close, ping or pong that is whole in the read, masked, and not one
    Autobahn refuses (over 125 bytes, a close of one byte) is unmasked here
    too and handed to Autobahn's own C{onFrameEnd}, as its C{processData}
    would leave it (C{current_frame}, C{control_frame_data}), which answers
    it.  On Autobahn's path the frame parser and the native masker it
    builds make the client's close, the one frame in a connection that is
    not a message, cost 24 us in process instead of 13.

    At the first byte that does not fit (another control frame, a fragment,
    RSV bits, an unmasked or oversized frame, a frame split across reads,
    invalid UTF-8) or once a frame has left the connection not open, the
    rest of the read goes to Autobahn's C{consumeData} exactly as its
    C{_dataReceived} would hand it on, so whatever Autobahn does with it
    (buffer a partial frame, close with 1002, 1007 or 1009) is what
    happens.

    At most L{fast_frames_per_read} frames of a read are taken here (0:
    no bound); the rest goes to C{consumeData} as above, where the server
    takes it apart a turn's worth at a time.  Unbounded, a read of 1,000
    empty pings held every other client's echoes 40 ms over TLS (each
    answer is a record and a C{send}).

    Relies on Autobahn's receive state living in C{state}, C{data},
    C{current_frame}, C{control_frame_data} and C{inside_message}, on
    C{_dataReceived} doing nothing but count, log and C{consumeData}, and
    on C{onFrameEnd} doing all a whole control frame needs;
    tests/test_overrides.py checks the outcomes against Autobahn's own
    path.
    """

    fast_frames_per_read: ClassVar[int] = 0

    def _dataReceived(self, data: bytes) -> None:
        if (
            self.state != _OPEN
            or self.current_frame is not None
            or self.data
            or self.inside_message
            or self.logOctets
            or self.logFrames
            or self.trackedTimings
            or self._perMessageCompress is not None
            or self._listeners is not None
            or not self.applyMask
        ):
            super()._dataReceived(data)
            return
        stats = self.trafficStats
        stats.incomingOctetsWireLevel += len(data)
        max_frame = self.maxFramePayloadSize
        max_message = self.maxMessagePayloadSize
        validate = self.utf8validateIncoming
        end = len(data)
        i = 0
        # As many frames as the bound lets through; without one, more
        # than a read can hold.
        left = self.fast_frames_per_read or end
        while end - i >= 6 and left:
            left -= 1
            b0 = data[i]
            b1 = data[i + 1]
            if b1 < 0x80:
                break
            length = b1 & 0x7F
            control = b0 != 0x81 and b0 != 0x82
            # Not text or binary: a close, ping or pong, unless Autobahn
            # would refuse it (1002: a reserved opcode, over 125 bytes, a
            # close of 1 byte).
            if control and (b0 < 0x88 or b0 > 0x8A or length > 125 or (length == 1 and b0 == 0x88)):
                break
            if length < 126:
                start = i + 6
            elif length == 126 and end - i >= 8:
                length = (data[i + 2] << 8) | data[i + 3]
                if length < 126:
                    break  # not the minimal length encoding: Autobahn's 1002
                start = i + 8
            else:
                break
            stop = start + length
            if stop > end:
                break
            mask = data[start - 4 : start]
            if control:
                # Autobahn's FrameHeader says str for the mask: it holds bytes.
                self.current_frame = FrameHeader(b0 & 0x0F, True, 0, length, mask)  # type: ignore[arg-type]
                self.control_frame_data = [unmask(mask, data[start:stop])]
                i = stop
                self.onFrameEnd()
                if self.state != _OPEN:
                    break
                continue
            if 0 < max_frame < length or 0 < max_message < length:
                break
            payload = unmask(mask, data[start:stop])
            binary = b0 == 0x82
            if validate and not binary:
                try:
                    payload.decode("utf-8")
                except UnicodeDecodeError:
                    break
            i = stop
            if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                self._cancelAutoPingTimeoutCall()
            self.onMessage(payload, binary)
            if self.state != _OPEN:
                break
            stats.incomingOctetsWebSocketLevel += length
            stats.incomingOctetsAppLevel += length
            stats.incomingWebSocketFrames += 1
            stats.incomingWebSocketMessages += 1
        if i < end:
            self.data = data[i:] if i else data
            self.consumeData()


# The first two bytes of an unmasked, unfragmented text or binary frame
# with a payload of 0 to 125 bytes, by payload length.
_TEXT_HEADS = tuple(bytes((0x81, n)) for n in range(126))
_BINARY_HEADS = tuple(bytes((0x82, n)) for n in range(126))


class FastSend(_Connection):
    """
    Send a small message as one frame in one write.

    Autobahn's C{sendMessage} checks its argument types, picks a compressor
    and a fragment size, then C{sendFrame} assembles the header field by
    field with C{struct} and a C{b"".join}, and C{sendData} writes it: 12
    us of a wss echo.  For a message of at most L{FAST_PAYLOAD_MAX} bytes,
    sent unfragmented, unsynchronised and uncompressed on an open
    connection with nothing queued and nothing logged or tracked, this
    writes the same bytes and counts the same C{trafficStats}.  Anything
    else, including what Autobahn refuses (a closed connection, a message
    over C{maxMessagePayloadSize}, arguments of the wrong type), is
    Autobahn's own C{sendMessage}.

    The frame goes to the socket at once (L{write_now}), not on the
    reactor's next turn: two C{epoll_ctl} calls and a turn of the loop
    fewer per echo (ws echo 51 -> 41 us, wss 91 -> 70, in interleaved
    A/Bs; docs/performance.md).

    Relies on a server frame being unmasked unless C{maskServerFrames}.
    """

    def sendMessage(
        self,
        payload: bytes,
        isBinary: bool = False,
        fragmentSize: int | None = None,
        sync: bool = False,
        doNotCompress: bool = False,
    ) -> None:
        if not (
            type(payload) is bytes
            and (isBinary is False or isBinary is True)
            and fragmentSize is None
            and sync is False
            and self.state == _OPEN
            and self._perMessageCompress is None
            and not self.logOctets
            and not self.logFrames
            and not self.trackedTimings
            and len(payload) <= FAST_PAYLOAD_MAX
            and not 0 < self.maxMessagePayloadSize < len(payload)
            and self._write_message(payload, isBinary)
        ):
            super().sendMessage(payload, isBinary, fragmentSize, sync, doNotCompress)

    def send_back(self, payload: bytes, isBinary: bool) -> None:
        """
        Send back a message that L{FastReceive} has just handed to
        C{onMessage}, from within that call, on a connection still open.

        As C{sendMessage}, less the checks L{FastReceive} made before it
        delivered the message: that the connection uses no compression and
        nothing logs or tracks it, and that the payload is bytes no larger
        than L{FAST_PAYLOAD_MAX} and C{maxMessagePayloadSize}.  An echo
        server sends every message back, and those checks are a third of
        the send (0.55 us through C{sendMessage}, 0.38 here).
        """
        if not self._write_message(payload, isBinary):
            super().sendMessage(payload, isBinary)

    def _write_message(self, payload: bytes, isBinary: bool) -> bool:
        """
        Write C{payload} as one frame and count it, if the send side allows
        (nothing queued, no masking, no fragmenting); return whether it did.
        A message sent in the middle of a C{beginMessage} is written whole,
        as Autobahn writes it.
        """
        n = len(payload)
        if (
            self.send_queue
            or self.maskServerFrames
            or 0 < self.autoFragmentSize < n
        ):
            return False
        if n < 126:
            frame = (_BINARY_HEADS if isBinary else _TEXT_HEADS)[n] + payload
        else:
            frame = bytes((0x82 if isBinary else 0x81, 126, n >> 8, n & 0xFF)) + payload
        write_now(self.transport, frame)
        stats = self.trafficStats
        stats.outgoingWebSocketMessages += 1
        stats.outgoingOctetsAppLevel += n
        stats.outgoingOctetsWebSocketLevel += n
        stats.outgoingWebSocketFrames += 1
        stats.outgoingOctetsWireLevel += len(frame)
        return True


class QuietSetup(_Connection):
    """
    Autobahn's connection set-up and tear-down without the debug lines
    whose arguments it formats even with debug logging off.

    C{WebSocketProtocol._connectionMade} pretty-prints its 29 configuration
    attributes (C{pprint.pformat}, about 100 us per connection) for a debug
    line, and the Twisted adapter's C{connectionMade}/C{connectionLost} and
    the server's C{_connectionMade}/C{_connectionLost} colour theirs with
    C{hltype}/C{hlval} (C{click.style}; some 40 us per connection).  The
    methods below do what Autobahn 26.10's do, in the same order, without
    those lines: copy the factory's options onto the connection unless it
    has its own, set up the receive, send and close state (all but the
    send queue, which L{QuietDataPath} makes only when a send needs it,
    and the UTF-8 validator, made at first use), start the
    opening-handshake timer, and count the connection on the factory.  A
    TLS error at close is logged, at info.

    Relies on the attribute set of those methods:
    tests/test_overrides.py compares a connection set up here with one set
    up by Autobahn, attribute by attribute, so an Autobahn release that
    adds or changes one fails there.
    """

    # Writable, as Autobahn's attribute is, but mypy takes a cached_property
    # for a read-only property.
    @cached_property
    def utf8validator(self) -> Utf8Validator:  # type: ignore[override]
        # Made at first use, not in set-up as Autobahn makes it: only a text
        # message on Autobahn's own frame path needs one, and a validator
        # costs 4 us and some 300 bytes per connection.
        return Utf8Validator()

    def connectionMade(self) -> None:
        details = create_transport_details(self.transport, self.is_server)
        details.channel_framing = TransportDetails.CHANNEL_FRAMING_WEBSOCKET
        self._transport_details = details
        self.peer = details.peer
        try:
            self.transport.setTcpNoDelay(self.tcpNoDelay)  # type: ignore[attr-defined]
        except Exception:  # as Autobahn: not every transport has it
            pass
        self._connectionMade()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if _is_tls_error(reason.value):
            # Logged by Autobahn as an error; here a line at info, as for
            # any other mistake of a client's (garbage or an old TLS
            # version on the port, a certificate it does not trust).
            self.log.info("{peer}: {why}", peer=self.peer, why=_maybe_tls_reason(reason.value))
        self._connectionLost(reason)

    def _connectionMade(self) -> None:
        factory = self.factory
        for name in self.CONFIG_ATTRS:
            if not hasattr(self, name):
                setattr(self, name, getattr(factory, name))
        self._perMessageCompress = None
        self.trackedTimings = None
        self.setTrackTimings(self.trackTimings)
        self.trafficStats = TrafficStats()
        self.state = WebSocketProtocol.STATE_CONNECTING
        self.send_state = _GROUND
        self.data = b""
        self.triggered = False
        self.wasMaxFramePayloadSizeExceeded = False
        self.wasMaxMessagePayloadSizeExceeded = False
        self.closedByMe = False
        self.failedByMe = False
        self.droppedByMe = False
        self.wasClean = False
        self.wasNotCleanReason = None
        self.wasServerConnectionDropTimeout = False
        self.wasOpenHandshakeTimeout = False
        self.wasCloseHandshakeTimeout = False
        self.wasServingFlashSocketPolicyFile = False
        self.localCloseCode = None
        self.localCloseReason = None
        self.remoteCloseCode = None
        self.remoteCloseReason = None
        self.openHandshakeTimeoutCall = None
        self.closeHandshakeTimeoutCall = None
        self.autoPingTimeoutCall = None
        self.autoPingPending = None
        self.autoPingPendingCall = None
        self.autoPingPendingSeq = 0
        self.autoPingPendingSent = None
        if self.openHandshakeTimeout > 0:
            self.openHandshakeTimeoutCall = factory._batched_timer.call_later(
                self.openHandshakeTimeout,
                self.onOpenHandshakeTimeout,
            )
        factory.countConnections += 1

    def _connectionLost(self, reason: Any) -> None:
        WebSocketProtocol._connectionLost(self, reason)
        self.factory.countConnections -= 1


class OptionsOnClass:
    """
    A factory mixin: hand each connection the factory's protocol options as
    class attributes of a protocol class made for the factory, instead of
    as attributes of every connection.

    Autobahn's C{_connectionMade} copies each of the options in
    C{CONFIG_ATTRS} (29 for a server) that the protocol class lacks from
    the factory onto the connection: an instance dictionary of 92 entries,
    3.3 KiB, where 63 take 1.6 KiB, about 5 % of an idle wss connection.
    A protocol class that has them all gets none copied.  The class made
    here derives from C{self.protocol} and holds the factory's value of
    each option that class lacks, so a protocol's own option still wins,
    as in Autobahn; it is made again when C{self.protocol} or the value of
    any option has changed since (C{setProtocolOptions}, or an attribute
    set directly), so each connection sees what Autobahn's copy would have
    given it, and one already made keeps what it had.

    Relies on Autobahn reading the options with plain attribute access
    and on its factories building connections in C{buildProtocol};
    tests/test_overrides.py checks both.
    """

    protocol: type[Any]
    _options_key: tuple[Any, ...] | None = None
    _options_class: type[Any] | None = None
    _options_names: tuple[type[Any], list[str], Callable[[Any], tuple[Any, ...]]] | None = None

    def buildProtocol(self, addr: Any) -> Any:
        base = self.protocol
        if self._options_names is None or self._options_names[0] is not base:
            # Looked up once per protocol class: a missing attribute costs
            # an exception inside hasattr.
            names = [name for name in base.CONFIG_ATTRS if not hasattr(base, name)]
            # The key: the protocol class, then the options it lacks.  For a
            # class that lacks none, attrgetter("protocol") alone would give
            # the class, not a tuple.
            getter: Callable[[Any], tuple[Any, ...]] = (
                attrgetter("protocol", *names) if names else lambda factory: (factory.protocol,)
            )
            self._options_names = (base, names, getter)
        _, names, protocol_and_options = self._options_names
        key = protocol_and_options(self)
        if self._options_class is None or key != self._options_key:
            # A value that would bind as a method (perMessageCompressionAccept
            # is a function) is stored as it is.
            namespace: dict[str, Any] = {
                name: staticmethod(value) if hasattr(type(value), "__get__") else value
                for name, value in zip(names, key[1:])
            }
            # Named as its base, so that its Logger's namespace is too.
            namespace.update(__module__=base.__module__, __qualname__=base.__qualname__)
            self._options_class = type(base.__name__, (base,), namespace)
            self._options_key = key
            share_names(self._options_class, getattr(base, "late_names", ()))
        protocol = self._options_class()
        protocol.factory = self
        return protocol


class SlottedState:
    """
    Autobahn's per-connection state in slots, not in the instance
    dictionary.

    CPython 3.11 lets instances share their dictionary's keys with their
    class only up to 30 attributes; Autobahn's set-up and opening handshake
    give a connection 61, so every connection held a dictionary of its own,
    1,584 bytes.  The 49 below, which no class gives a default, take 392
    bytes as slots, and the dictionary keeps the dozen that have one
    (C{transport}, C{factory}, C{peer}, ...: a slot would hide the
    default), in a shared-key dictionary of 168 bytes: 1.07 KiB less per
    connection (docs/performance.md).  An unset slot reads as a missing
    attribute does, so nothing else changes; an attribute that is not named
    here still goes to the dictionary.

    Relies on the names Autobahn sets (the same from 24.4.2 to 26.11.1):
    tests/test_overrides.py checks that an open connection holds nothing
    else without a default, and that no slot hides one.
    """

    __slots__ = (
        # WebSocketProtocol._connectionMade
        "is_closed", "is_open", "_transport_details", "_perMessageCompress", "trackedTimings", "trafficStats",
        "state", "send_state", "data", "triggered", "inside_message", "current_frame",
        "wasMaxFramePayloadSizeExceeded", "wasMaxMessagePayloadSizeExceeded",
        "closedByMe", "failedByMe", "droppedByMe", "wasClean", "wasNotCleanReason",
        "wasServerConnectionDropTimeout", "wasOpenHandshakeTimeout", "wasCloseHandshakeTimeout",
        "wasServingFlashSocketPolicyFile", "localCloseCode", "localCloseReason", "remoteCloseCode",
        "remoteCloseReason", "openHandshakeTimeoutCall", "closeHandshakeTimeoutCall", "autoPingTimeoutCall",
        "autoPingPending", "autoPingPendingCall", "autoPingPendingSeq", "autoPingPendingSent",
        # WebSocketServerProtocol.processHandshake and succeedHandshake
        "http_request_data", "http_status_line", "http_headers", "http_request_uri", "http_request_path",
        "http_request_params", "http_request_host", "websocket_version", "websocket_protocols",
        "websocket_origin", "websocket_extensions", "_wskey", "websocket_protocol_in_use",
        "websocket_extensions_in_use", "http_response_data",
    )


class ServerOverrides(FastReceive, FastSend, QuietSetup, QuietDataPath, SlottedState):
    """
    Every override the echo server's protocol takes, in MRO order; the
    server's protocol class lists only this.
    """
