"""
OpenSSL contexts for both ends, configured to Mozilla's "intermediate"
profile.

Twisted's stock L{CertificateOptions} already turns off compression and
SSLv2/3; on top of it the server allows only TLS 1.2 and 1.3, only
forward-secret AEAD cipher suites, only the X25519, P-256 and P-384 groups,
and no renegotiation.  L{ServerTLS} hands out connections from a context it
can swap, so that a renewed certificate reaches new connections while the
open ones keep theirs.  L{TLSProtocol} is the TLS layer the server wraps
its connections in, and the client too (L{wrap_client_tls}).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, cast

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL, crypto
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
    IProtocol,
    IProtocolFactory,
    IPushProducer,
    IReactorTime,
    IStreamClientEndpoint,
    ITransport,
)
from twisted.internet.protocol import connectionDone
from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    TLSVersion,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.protocols.policies import ProtocolWrapper
from twisted.protocols.tls import TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from pingproto.eagerwrite import write_now
from pingproto.limits import TokenBucket
from pingproto.tlsframing import BOUNDARY, Position, records_end
from pingproto.text import peer_text
from pingproto.tlsfiles import TLSConfigError, TLSMaterial, load_certificates

__all__ = [
    "CIPHERS",
    "GROUPS",
    "ServerTLS",
    "TLSFactory",
    "TLSProtocol",
    "client_tls_options",
    "server_context",
    "wrap_client_tls",
]

_log = Logger()

# Mozilla's intermediate list for TLS 1.2: ECDHE key exchange, AEAD only.
# TLS 1.3 suites are all AEAD and forward secret, so OpenSSL's defaults stand.
CIPHERS = ":".join(
    [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ]
)
GROUPS = b"X25519:prime256v1:secp384r1"


def server_context(material: TLSMaterial) -> SSL.Context:
    """
    Build the server's context from a checked key and chain.

    OpenSSL has checks of its own that L{load_tls_dir} does not repeat, and
    its security level can be raised by the system's configuration (a
    2048-bit RSA key is "too small" at level 3): what it refuses is a
    L{TLSConfigError} naming the files and OpenSSL's reason, so that
    start-up and reload can say it in one line.
    """
    try:
        return _server_context(material)
    except SSL.Error as e:
        raise TLSConfigError(
            f"OpenSSL refuses the key in {material.files.key} with the certificate in "
            f"{material.files.cert}: {openssl_reasons(e)}"
        ) from None


def openssl_queue(error: SSL.Error) -> list[Any]:
    """
    The error queue pyOpenSSL puts in an L{SSL.Error}: (library, function,
    reason) entries, or nothing if it made the error otherwise.
    """
    return error.args[0] if error.args and isinstance(error.args[0], list) else []


def openssl_reasons(error: SSL.Error) -> str:
    """
    The reasons in an OpenSSL error queue, e.g. C{ee key too small}.
    """
    queue = openssl_queue(error)
    reasons = [entry[-1] for entry in queue if isinstance(entry, tuple) and entry and entry[-1]]
    return "; ".join(dict.fromkeys(reasons)) or str(error) or "no reason given"


# The ALPN protocols a server takes, in its order of preference.
_HTTP = (b"http/1.1", b"http/1.0")


def _server_context(material: TLSMaterial) -> SSL.Context:
    options = CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(material.key),  # type: ignore[arg-type]
        certificate=crypto.X509.from_cryptography(material.certificate),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in material.chain],
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(CIPHERS),
        # Browsers offer h2 first; a WebSocket upgrade needs HTTP/1.1, and a
        # plain HTTP/1.0 request still deserves its answer.
        acceptableProtocols=list(_HTTP),
    )
    context = options.getContext()
    # Twisted's ALPN choice answers an offer with neither (h2 alone) with
    # an empty protocol, which OpenSSL turns into an internal_error alert:
    # RFC 7301 wants no_application_protocol, or no ALPN answer at all.
    context.set_alpn_select_callback(_choose_http)
    context.set_options(SSL.OP_NO_RENEGOTIATION)
    _set_groups(context, GROUPS)
    return context


def _choose_http(connection: SSL.Connection, offered: list[bytes]) -> Any:
    """
    HTTP/1.1 if offered, else HTTP/1.0, else no ALPN answer, and the
    handshake goes on without one.
    """
    for protocol in _HTTP:
        if protocol in offered:
            return protocol
    return SSL.NO_OVERLAPPING_PROTOCOLS


def _set_groups(context: SSL.Context, groups: bytes, lib: Any = Binding.lib) -> None:
    """
    Restrict key exchange groups; pyOpenSSL has no public call for the list
    (only C{set_tmp_ecdh} for a single curve), so use the binding it is
    built on.  Bindings without the call (cryptography before 47) are
    refused rather than left with OpenSSL's defaults, which add X448 and
    P-521 to what the profile offers.
    """
    setter = getattr(lib, "SSL_CTX_set1_curves_list", None)
    if setter is None:
        raise TLSConfigError(
            "this cryptography's OpenSSL bindings cannot restrict the key exchange groups"
            " (SSL_CTX_set1_curves_list): pingproto needs cryptography 47 or later"
        )
    if setter(context._context, groups) != 1:  # noqa: SLF001
        raise TLSConfigError(f"OpenSSL refused the key exchange groups {groups.decode()}")


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    The server side of TLS for L{TLSMemoryBIOFactory}, with a replaceable
    certificate.

    Each connection is made from the context in force when it is
    accepted, and keeps it: a certificate replaced (L{replace}) reaches
    new connections, while open ones keep their session.

    @ivar material: the L{TLSMaterial} served to new connections; the
        reloader (L{pingproto.reload.CertificateReloader}) replaces it
        only with files that differ from it.
    """

    def __init__(self, material: TLSMaterial) -> None:
        self.material = material
        self._context = server_context(material)

    def replace(self, material: TLSMaterial) -> None:
        """
        Serve C{material} to connections made from now on.

        @raise TLSConfigError: OpenSSL refuses it (L{server_context}); the
            material served before stays.
        """
        self._context = server_context(material)
        self.material = material

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


# The most TLS records of a connection decrypted in one reactor turn: a
# client sending one-byte records (some 2,800 in a 64 KiB read, at
# a few microseconds each) held every other client's echo for as long as
# its read took.  A read of full records, or of a browser's pings, is far
# under it.
RECORDS_PER_TURN = 256
# Bytes of a read handed to OpenSSL a turn, once the handshake is done:
# records that carry no data never reach the count above.  A 16 KiB record
# takes two turns.  (Before RECORDS_PER_FEED, a client sending 64 KiB reads
# of TLS 1.3 key updates held every other client's echoes 40 ms a read; 8
# KiB at a time, about 6 ms a turn.)
BYTES_PER_TURN = 8 * 1024
# Records without data a client may send once its handshake is done:
# bursts of NO_DATA_BURST, and NO_DATA_RATE a second on average past them.
# TLS 1.3 key updates above all: each costs the server a key derivation,
# and one the client asks to be answered, a second (about 17 us), while no
# limit on what a client sends counts it, and OpenSSL reads every one a
# read holds in one call.  Sixty clients sending nothing else held every
# other client's echoes 290-550 ms (800-970 at worst).  A browser sends a
# key update after gigabytes, if ever, and a close_notify at the end.
NO_DATA_BURST = 16
NO_DATA_RATE = 1 / 60
# Records of a read handed to OpenSSL at a time, so that a connection past
# those is cut off after a few more, not after all a read holds.
RECORDS_PER_FEED = 16
# Bytes a client may send before its TLS handshake is done: its hello (a
# few KiB, post-quantum key shares included) and its Finished; no client
# certificate is asked for.  OpenSSL buffers a hello of up to 128 KiB
# until it is whole: half-sent, one held 185 KiB until the handshake
# timeout.
HANDSHAKE_BYTES = 32 * 1024

# A read or write into a connection's memory BIOs larger than this may have
# grown their buffers enough to be worth giving back (about 1 us).
RELEASE_OVER = 4096


def release_bio_buffers(connection: SSL.Connection) -> bool:
    """
    Give C{connection}'s memory BIOs back to the allocator, if both are
    empty, by putting fresh ones in their place.

    An OpenSSL memory BIO never shrinks its buffer: it keeps room for the
    most it ever held.  A server connection's pair keeps about 3.8 KiB
    from the TLS handshake, and after one large message some 120 KiB more
    (Twisted hands OpenSSL up to 64 KiB read at once), for as long as the
    connection lives, idle or not.  C{MODE_RELEASE_BUFFERS}, which
    Twisted sets, frees OpenSSL's record buffers but not the BIOs.
    pyOpenSSL has no call for this, so it swaps the BIOs with
    C{SSL_set_bio}, which frees the old ones, and updates the two private
    attributes pyOpenSSL 26 keeps them in (tests/test_tls.py fails if
    that changes).  Returns whether it did.
    """
    incoming = getattr(connection, "_into_ssl", None)
    outgoing = getattr(connection, "_from_ssl", None)
    if incoming is None or outgoing is None:
        return False
    lib, ffi = Binding.lib, Binding.ffi
    data = ffi.new("char **")
    if lib.BIO_get_mem_data(incoming, data) or lib.BIO_get_mem_data(outgoing, data):
        return False
    fresh_in = lib.BIO_new(lib.BIO_s_mem())
    fresh_out = lib.BIO_new(lib.BIO_s_mem())
    if fresh_in == ffi.NULL or fresh_out == ffi.NULL:
        for bio in (fresh_in, fresh_out):
            if bio != ffi.NULL:
                lib.BIO_free(bio)
        return False
    lib.SSL_set_bio(connection._ssl, fresh_in, fresh_out)  # noqa: SLF001
    connection._into_ssl, connection._from_ssl = fresh_in, fresh_out  # noqa: SLF001
    return True


# What a plain HTTP request begins with, any method in any case (HTTP/2's
# "PRI *" too), whether or not the rest came in the same segment; no TLS
# connection does: its first byte is a record's type (0x14-0x17) or, from
# an SSLv2-style hello, 0x80 or over.
_HTTP_REQUEST_START = re.compile(rb"[A-Za-z]").match
# What _flushSendBIO takes out of the outgoing BIO at a time.
_SEND_CHUNK = 2**15
_PLAIN_HTTP_BODY = b"This server speaks TLS: use https:// (or wss:// for a WebSocket).\n"
_PLAIN_HTTP_ANSWER = (
    # The reason phrase says it too: clients that show only the status
    # line (pingproto ping, Autobahn) pass it on.
    b"HTTP/1.1 400 Plain HTTP to a TLS port: use https:// or wss://\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_PLAIN_HTTP_BODY), _PLAIN_HTTP_BODY)
)


class TLSProtocol(TLSMemoryBIOProtocol):
    """
    Twisted's TLS layer, without write buffering, without holding on to
    buffers an idle connection no longer needs, and without leaving a
    dropped connection to the cycle collector.  The server's connections
    and the client's use it.

    A read goes to OpenSSL at most L{BYTES_PER_TURN} bytes a turn, and its
    records are decrypted at most L{RECORDS_PER_TURN} a turn; the rest
    wait, with the socket not read, for the
    next turn (C{_holdBacklog}), so that a client sending tiny records
    cannot hold the other clients: with five such clients another client's
    echoes took up to 105 ms before, 13 ms after.  The socket is read
    again when neither the backlog nor the protocol above
    (C{pauseProducing}) holds it.

    A server's client that sends more than C{handshake_limit} bytes
    before its handshake is done is cut off: OpenSSL would hold up to
    128 KiB of a hello for it until the handshake timeout.  So is one
    that sends more records without data than L{NO_DATA_BURST} allows
    (TLS 1.3 key updates): a read goes to OpenSSL L{RECORDS_PER_FEED}
    records at a time, and the records that gave no data are counted.

    Not L{BufferingTLSTransport}, Twisted's default, which holds every
    write until the next reactor turn to coalesce small ones: an echo server
    writes once per message it reads, so that costs a timer per echo, 10-20 %
    of the CPU with 100-1,000 busy connections (docs/performance.md).

    Once the handshake is done (Twisted's C{_handshakeDone} turns true),
    and after any read or write over L{RELEASE_OVER} bytes, the
    connection's memory BIOs are renewed (L{release_bio_buffers}): 3.8 KiB
    less per idle connection, and a connection that once echoed a large
    message holds no more than one that never did (tests/test_memory.py).

    When OpenSSL reports an error, such as a peer that vanished without a
    close_notify, C{_flushReceiveBIO} keeps the L{Failure} it makes in a
    local variable of the frame that its own traceback holds: a reference
    cycle, and the frames below hold the C{SSL.Connection}.  Only the cycle
    collector frees it, at its next full pass, which in a long-running
    process can be minutes away; meanwhile each dropped connection's OpenSSL
    state stays allocated between the memory freed around it.  After 10,000
    clients dropped at once that cost every later echo a third more CPU,
    in glibc's malloc (docs/performance.md).  Cleaning the Failure (keeping
    its text, dropping its frames) as Twisted's TLS layer takes it in breaks
    the cycle, so reference counting frees the connection at once.  Relies
    on C{_tlsShutdownFinished} being where Twisted 26.10's TLS layer takes
    every Failure it makes; tests/test_memory.py fails if a dropped
    connection is left to the cycle collector again.
    """

    # Whether the BIOs may hold more than they need and could not be
    # renewed yet (they held bytes then).
    _biosGrown = False
    # The next turn's work through records left in the incoming BIO, and
    # whether the protocol above has paused reading: the socket is read
    # from again when neither holds (pauseProducing, _flushReceiveBIO).
    _backlog: IDelayedCall | None = None
    # What a read brought past BYTES_PER_TURN, for the turns after.
    _unfed = b""
    # What a server's client may send before the handshake is done (0: no
    # limit).  A client's side has none: a server's certificates may take
    # more.
    handshake_limit: ClassVar[int] = HANDSHAKE_BYTES
    # What a server's client sent before the handshake was done; 0 until
    # the first byte, -1 on a client's side.
    _handshakeBytes = 0
    _pausedAbove = False
    # Off once the connection is lost: what is left is read at once.
    _bounded = True
    # The peer's records without data, from its first; and the records
    # handed to OpenSSL and not read yet when a turn's reading stopped
    # (RECORDS_PER_TURN), counted as the next turn reads them.
    _noData: TokenBucket | None = None
    _fedUnread = 0
    # Where the stream is, record-wise, from the connection's first byte:
    # set only while a record is cut by the end of a read.
    _recordsAt: Position = BOUNDARY
    # Given to an open connection after it is made, by Twisted's TLS layer
    # and by this one: named before the first (pingproto/sharedkeys.py).
    late_names: ClassVar[tuple[str, ...]] = (
        "_handshakeDone", "_producer", "_biosGrown", "_backlog", "_pausedAbove", "_unfed", "_handshakeBytes",
        "_noData", "_recordsAt", "_fedUnread",
    )

    def pauseProducing(self) -> None:
        """
        The protocol above stops reading (its echoes back up): stop reading
        the socket.  As Twisted's, which hands it to the transport, except
        that it is remembered for when a backlog of records is worked off.
        """
        self._pausedAbove = True
        cast(IPushProducer, self.transport).pauseProducing()

    def resumeProducing(self) -> None:
        self._pausedAbove = False
        if self._backlog is None:
            cast(IPushProducer, self.transport).resumeProducing()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._backlog is not None:
            self._backlog.cancel()
            self._backlog = None
        self._bounded = False
        unfed, self._unfed = self._unfed, b""
        if unfed and self._tlsConnection is not None and not (self._lostTLSConnection or self._aborted):
            # What came before the end is delivered before it, as the
            # records already in the BIO are (Twisted's connectionLost);
            # not after an abort, when nothing more is.
            if self._handshakeDone:
                self._readRecords(unfed)
            else:
                self._tlsConnection.bio_write(unfed)
        super().connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        if self._handshakeBytes == 0 and not self._handshakeDone:
            # The connection's first bytes (a server's counts every byte
            # of its handshake): a client has spoken first, and is past
            # "before SSL initialization"; a server is not, and then a
            # letter begins a plain HTTP request, not a TLS record.
            if self._tlsConnection.get_state_string() != b"before SSL initialization":
                self._handshakeBytes = -1  # Not counted: a server's answer may be large.
            elif _HTTP_REQUEST_START(data):
                self._plainHttp()
                return
        if self._bounded:
            if self._unfed:
                # A backlog waits (Twisted's TLS layer under a mounted
                # echo hands on bytes while paused): behind it.
                self._unfed += data
                return
            if len(data) > BYTES_PER_TURN:
                # The handshake's too: a client's Finished and what follows
                # it come in one read.
                data, self._unfed = data[:BYTES_PER_TURN], data[BYTES_PER_TURN:]
        self._feed(data)
        if self._unfed and not self._lostTLSConnection:
            self._holdBacklog()

    def _feed(self, data: bytes) -> bool:
        """
        Hand C{data} to OpenSSL, as Twisted's C{dataReceived} does, unless
        the handshake has taken more than C{handshake_limit} bytes: then
        end the connection, and return false.  (Counted a piece at a time:
        a client's first data may come in its Finished's read.)

        Handed on L{RECORDS_PER_FEED} records at a time (L{_flushReceiveBIO}).
        """
        size = len(data)
        handshaking = not self._handshakeDone
        if handshaking and self._handshakeBytes >= 0:
            self._handshakeBytes += len(data)
            if 0 < self.handshake_limit < self._handshakeBytes and not self._aborted:
                _log.info(
                    "{peer}: closed: sent over {limit} KiB before its TLS handshake was done",
                    peer=peer_text(cast(ITransport, self.transport).getPeer()),
                    limit=self.handshake_limit // 1024,
                )
                self._unfed = b""
                self.abortConnection()
                return False
        # As Twisted's dataReceived, but the bytes go to OpenSSL a few
        # records at a time: key updates may come right after the client's
        # Finished, in the same read.
        while data and not (self._handshakeDone or self._lostTLSConnection or self._aborted):
            cut, _ = self._nextRecords(data)
            self._tlsConnection.bio_write(data[:cut])
            data = data[cut:]
            self._checkHandshakeStatus()
        if self._handshakeDone and not (self._lostTLSConnection or self._aborted):
            if self._appSendBuffer:
                self._unbufferPendingWrites()
            self._readRecords(data)
        if handshaking and self._handshakeDone and self._handshakeBytes > 0:
            # A cached small int, not an object of its own per connection,
            # and not 0, which would say no byte has come.
            self._handshakeBytes = 1
        if self._biosGrown or size > RELEASE_OVER or (handshaking and self._handshakeDone):
            self._releaseBuffers()
        return True

    def write(self, data: bytes) -> None:
        super().write(data)
        if self._biosGrown or len(data) > RELEASE_OVER:
            self._releaseBuffers()

    def _plainHttp(self) -> None:
        """
        Answer a plain HTTP request sent to this TLS server, in plain HTTP,
        as nginx does.

        The usual mistake (http:// or ws:// for https:// or wss://): it
        would get no answer at all, and the log an error line from
        Autobahn for each one ("SSL error: http request").  Logged as the
        server's other refused requests are, at info: the operator of a
        page whose users see only "connection failed" can tell why.
        """
        transport = self.transport
        assert transport is not None  # data came from it
        _log.info(
            "{peer}: answered 400 Bad Request: plain HTTP to a TLS port",
            peer=peer_text(cast(ITransport, transport).getPeer()),
        )
        transport.write(_PLAIN_HTTP_ANSWER)
        transport.loseConnection()

    def _releaseBuffers(self) -> None:
        connection = self._tlsConnection
        grown = connection is not None and not release_bio_buffers(connection)
        if grown is not self._biosGrown:
            # Set only when it changes: most connections never get the
            # attribute in their own dictionary.
            self._biosGrown = grown

    def _flushSendBIO(self) -> None:
        """
        As Twisted 26.10's, except that the bytes go to the socket at once
        (L{write_now}), not on the reactor's next turn, and all of them.
        """
        connection = self._tlsConnection
        try:
            data = connection.bio_read(_SEND_CHUNK)
        except SSL.WantReadError:
            return
        if len(data) == _SEND_CHUNK:
            # More may wait: a handshake flight with a large certificate,
            # answers to a flood of KeyUpdates.  Left in the BIO (Twisted
            # reads 32 KiB a flush), they waited for the peer's next bytes,
            # which might never come.
            pieces = [data]
            try:
                while len(pieces[-1]) == _SEND_CHUNK:
                    pieces.append(connection.bio_read(_SEND_CHUNK))
            except SSL.WantReadError:
                pass
            data = b"".join(pieces)
        # Set from connectionMade on: bytes come after it.
        write_now(cast(ITransport, self.transport), data)

    def _tlsShutdownFinished(self, reason: Failure | None) -> None:
        if reason is not None:
            reason.cleanFailure()
        super()._tlsShutdownFinished(reason)

    def _flushReceiveBIO(self, more: bytes = b"", fed: int = 0) -> None:
        """
        As Twisted 26.10's, except that what all the records of a read hold
        goes to the protocol in one call, not a call per record; and that
        C{more} bytes of the read, not yet handed to OpenSSL, are handed to
        it L{RECORDS_PER_FEED} records at a time as it reads them.  Each
        time OpenSSL has read all it was given, the records that gave no
        data (C{fed}, the records handed to it since, less those read) are
        counted (L{_spendNoData}), so that a client sending key updates is
        cut off a few past its allowance, not after all a read holds (some
        300 in 8 KiB).

        A client sending one-byte records (some 2,800 in one 64 KiB read)
        made as many calls of the protocol, each counting, buffering and
        parsing on its own, while every other client waited: 200-500 ms
        with five such clients.  An end (the peer's close_notify, an
        OpenSSL error) comes after the bytes before it, as before.
        """
        connection = self._tlsConnection
        pieces: list[bytes] = []
        ended = False
        reason: Failure | None = None  # None: the peer's close_notify
        records = 0
        over = False
        if self._fedUnread:
            fed, self._fedUnread = fed + self._fedUnread, 0
        while not self._lostTLSConnection:
            if records == RECORDS_PER_TURN and self._bounded:
                # What OpenSSL has not been given waits with the rest, and
                # what it has is counted as it is read: a client could
                # otherwise put key updates after every 256th record.
                self._unfed = more + self._unfed
                self._fedUnread = max(fed, 0)
                self._holdBacklog()
                break
            records += 1
            try:
                pieces.append(connection.recv(2**15))
                # OpenSSL reads one record with data a call.
                fed -= 1
            except SSL.WantReadError:
                if fed > 0 and self._spendNoData(fed):
                    over = True
                    break
                if not more:
                    break
                cut, fed = self._nextRecords(more)
                connection.bio_write(more[:cut])
                more = more[cut:]
                # That call found no record: the next may.
                records -= 1
            except SSL.ZeroReturnError:
                ended = True
                break
            except SSL.Error:
                ended, reason = True, Failure()
                break
        if over:
            # What this read decrypted goes nowhere: the connection is cut.
            if not self._aborted:
                self._cutOffNoData()
            return
        if pieces and not self._aborted:
            ProtocolWrapper.dataReceived(self, b"".join(pieces))
        if ended:
            if reason is None:
                self._shutdownTLS()
            self._tlsShutdownFinished(reason)
        self._flushSendBIO()

    def _spendNoData(self, count: int) -> bool:
        """
        Count C{count} records from the peer that gave no data; return
        whether that is more than L{NO_DATA_BURST} and L{NO_DATA_RATE}
        allow.
        """
        now = self.factory._clock.seconds()
        if self._noData is None:
            self._noData = TokenBucket(NO_DATA_RATE, NO_DATA_BURST, now)
        return self._noData.spend(count, now) > 0

    def _readRecords(self, data: bytes) -> None:
        """
        Have OpenSSL read C{data}, once the handshake is done: its first
        records at once (a read is one record, most often), the rest as
        it reads them (L{_flushReceiveBIO}).
        """
        cut, fed = self._nextRecords(data)
        if cut:
            self._tlsConnection.bio_write(data[:cut])
        self._flushReceiveBIO(data[cut:], fed)

    def _nextRecords(self, data: bytes) -> tuple[int, int]:
        """
        How much of C{data} to hand OpenSSL next (L{RECORDS_PER_FEED}
        records at most), and how many records end in it.
        """
        cut, ended, at = records_end(self._recordsAt, data, RECORDS_PER_FEED)
        if at is not self._recordsAt:
            self._recordsAt = at
        return cut, ended

    def _cutOffNoData(self) -> None:
        _log.info(
            "{peer}: closed: sent over {burst} TLS records without data (key updates)",
            peer=peer_text(cast(ITransport, self.transport).getPeer()),
            burst=NO_DATA_BURST,
        )
        self._unfed = b""
        self.abortConnection()

    def _holdBacklog(self) -> None:
        """
        Stop reading the socket and take up the records left in the
        incoming BIO on the next turn, after the other connections' reads.
        """
        if self._backlog is None:
            cast(IPushProducer, self.transport).pauseProducing()
            self._backlog = self.factory._clock.callLater(0, self._workBacklog)

    def _workBacklog(self) -> None:
        self._backlog = None
        if self._aborted or self._lostTLSConnection:
            # Aborted, or TLS ended in the backlog (the peer's close_notify,
            # an error): nothing more is read or delivered.
            self._unfed = b""
            return
        if self._unfed:
            chunk, self._unfed = self._unfed[:BYTES_PER_TURN], self._unfed[BYTES_PER_TURN:]
            if not self._feed(chunk):
                # Cut off over the handshake limit: not read again.
                return
        else:
            self._flushReceiveBIO()
        if self._unfed and not self._lostTLSConnection:
            self._holdBacklog()
        if self._backlog is None and not self._lostTLSConnection:
            if not self._pausedAbove:
                cast(IPushProducer, self.transport).resumeProducing()
            if self._biosGrown:
                self._releaseBuffers()


class TLSFactory(TLSMemoryBIOFactory):
    """
    Twisted's TLS factory with L{TLSProtocol} for the TLS layer, on both
    sides.  It passes on a wrapped factory's refusal to build a protocol
    (a server's socket past its bound, L{EchoServerFactory.buildProtocol
    <pingproto.server.EchoServerFactory.buildProtocol>}), so that Twisted
    closes the socket as it is accepted; Twisted's own factory wraps the
    L{None} in a TLS layer, which fails on it.
    """

    protocol = TLSProtocol

    def buildProtocol(self, addr: Any) -> TLSProtocol | None:  # type: ignore[override]
        wrapped = self.wrappedFactory.buildProtocol(addr)
        return None if wrapped is None else self.protocol(self, wrapped)


@implementer(IStreamClientEndpoint)
class _TLSClientEndpoint:
    def __init__(
        self, creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint, clock: IReactorTime | None
    ) -> None:
        self._creator = creator
        self._endpoint = endpoint
        self._clock = clock

    def connect(self, factory: IProtocolFactory) -> Deferred[IProtocol]:
        tls = TLSFactory(self._creator, True, factory, clock=self._clock)

        def wrapped(protocol: IProtocol) -> IProtocol:
            # What the endpoint made with the TLS factory: a TLSProtocol.
            return cast(TLSProtocol, protocol).wrappedProtocol

        return self._endpoint.connect(tls).addCallback(wrapped)


def wrap_client_tls(
    creator: IOpenSSLClientConnectionCreator, endpoint: IStreamClientEndpoint, clock: IReactorTime | None = None
) -> IStreamClientEndpoint:
    """
    Twisted's C{wrapClientTLS}, with L{TLSProtocol} for the TLS layer,
    whose timers run on C{clock} (the global reactor by default).
    """
    return _TLSClientEndpoint(creator, endpoint, clock)


def client_tls_options(
    hostname: str, ca_file: str | None = None
) -> IOpenSSLClientConnectionCreator:
    """
    TLS options for a client of C{hostname}: verify its certificate and name
    against the CA certificates in C{ca_file}, or the system's trust store.
    """
    if ca_file is None:
        trust = platformTrust()
    else:
        trust = trustRootFromCertificates(
            [Certificate(crypto.X509.from_cryptography(c)) for c in load_certificates(ca_file)]
        )
    return optionsForClientTLS(
        hostname,
        trustRoot=trust,
        extraCertificateOptions={"raiseMinimumTo": TLSVersion.TLSv1_2},
    )
