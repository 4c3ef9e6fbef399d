"""
The server's TLS profile, by real OpenSSL handshakes in memory against
clients configured to try what the profile forbids.
"""

from __future__ import annotations

import dataclasses
from typing import Any
import os
import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.ssl import Certificate, optionsForClientTLS
from twisted.logger import capturedLogs, formatEvent
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from pingproto.tls import (
    BYTES_PER_TURN,
    GROUPS,
    HANDSHAKE_BYTES,
    NO_DATA_BURST,
    NO_DATA_RATE,
    RECORDS_PER_TURN,
    ServerTLS,
    TLSFactory,
    TLSProtocol,
    _set_groups,
    client_tls_options,
    release_bio_buffers,
    server_context,
)
from pingproto.tlsfiles import TLSConfigError, load_tls_dir

from .tlsdir import write_tls_dir


def handshake(server: SSL.Context, client: SSL.Context) -> tuple[SSL.Connection, SSL.Connection]:
    """
    Run a TLS handshake between two memory-BIO connections; raise the
    OpenSSL error if either side refuses.
    """
    s = SSL.Connection(server, None)
    s.set_accept_state()
    c = SSL.Connection(client, None)
    c.set_connect_state()
    c.set_tlsext_host_name(b"localhost")
    for _ in range(20):
        for side in (c, s):
            try:
                side.do_handshake()
            except SSL.WantReadError:
                pass
        moved = False
        for src, dst in ((c, s), (s, c)):
            try:
                data = src.bio_read(65536)
            except SSL.WantReadError:
                continue
            dst.bio_write(data)
            moved = True
        if not moved:
            break
    c.do_handshake()
    s.do_handshake()
    return s, c


def relay(source: SSL.Connection, sink: SSL.Connection) -> None:
    """
    Move what C{source} has sent into C{sink}'s incoming BIO.
    """
    sink.bio_write(source.bio_read(1 << 20))


def client(
    minimum: int = SSL.TLS1_VERSION,
    maximum: int | None = None,
    ciphers: bytes | None = None,
    groups: bytes | None = None,
) -> SSL.Context:
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if groups is not None:
        _set_groups(ctx, groups)
    ctx.set_min_proto_version(minimum)
    if maximum is not None:
        ctx.set_max_proto_version(maximum)
    if ciphers is not None:
        ctx.set_cipher_list(b"@SECLEVEL=0:" + ciphers)
    return ctx


class ProfileTests(SynchronousTestCase):
    def setUp(self) -> None:
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        self.material = load_tls_dir(tlsdir)
        self.server = server_context(self.material)

    def test_alpnWithoutHttp(self) -> None:
        """
        A client offering only protocols the server does not speak (h2
        alone) gets no ALPN answer and a handshake, not an internal_error
        alert; one offering HTTP/1.1 among them gets it.
        """
        for offered, chosen in [([b"h2"], b""), ([b"h2", b"http/1.1"], b"http/1.1"), ([b"http/1.0"], b"http/1.0")]:
            ctx = client()
            ctx.set_alpn_protos(offered)
            s, c = handshake(self.server, ctx)
            self.assertEqual(c.get_alpn_proto_negotiated(), chosen, offered)

    def test_tls13Preferred(self) -> None:
        """
        A modern client gets TLS 1.3.
        """
        s, c = handshake(self.server, client())
        self.assertEqual(c.get_protocol_version_name(), "TLSv1.3")

    def test_tls12WithEcdheAead(self) -> None:
        """
        A TLS 1.2 client gets an ECDHE key exchange with an AEAD cipher.
        """
        s, c = handshake(self.server, client(maximum=SSL.TLS1_2_VERSION))
        self.assertEqual(c.get_protocol_version_name(), "TLSv1.2")
        name = c.get_cipher_name()
        self.assertTrue(name.startswith("ECDHE-"), name)
        self.assertTrue("GCM" in name or "CHACHA20" in name, name)

    def test_oldVersionsRefused(self) -> None:
        """
        TLS 1.0 and 1.1 clients are refused.
        """
        for version in (SSL.TLS1_VERSION, SSL.TLS1_1_VERSION):
            with self.assertRaises(SSL.Error):
                handshake(self.server, client(minimum=version, maximum=version, ciphers=b"ALL"))

    def test_nonForwardSecretOrCbcRefused(self) -> None:
        """
        TLS 1.2 with static RSA key exchange or a CBC cipher is refused.
        """
        for ciphers in (b"AES128-GCM-SHA256", b"AES256-SHA", b"ECDHE-RSA-AES128-SHA", b"ECDHE-ECDSA-AES128-SHA"):
            with self.assertRaises(SSL.Error, msg=ciphers):
                handshake(self.server, client(maximum=SSL.TLS1_2_VERSION, ciphers=ciphers))

    def test_onlyProfileGroups(self) -> None:
        """
        Key exchange is over X25519, P-256 or P-384 only: a client that
        offers nothing else gets through, one offering only X448 or P-521
        (in OpenSSL's defaults) is refused.
        """
        for group in (b"X25519", b"prime256v1", b"secp384r1"):
            handshake(self.server, client(groups=group))
        for group in (b"X448", b"secp521r1"):
            with self.assertRaises(SSL.Error, msg=group):
                handshake(self.server, client(groups=group))

    def test_groupsThatCannotBeSetRefused(self) -> None:
        """
        OpenSSL bindings without the call that sets the groups give a
        configuration error naming what to upgrade, not a server on
        OpenSSL's default groups.
        """
        with self.assertRaises(TLSConfigError) as raised:
            _set_groups(SSL.Context(SSL.TLS_SERVER_METHOD), GROUPS, lib=object())
        self.assertIn("cryptography 47", str(raised.exception))

    def test_noCompressionNoRenegotiation(self) -> None:
        """
        The context turns off TLS compression and renegotiation.
        """
        options = self.server.set_options(0)
        self.assertTrue(options & SSL.OP_NO_COMPRESSION)
        self.assertTrue(options & SSL.OP_NO_RENEGOTIATION)

    def test_chainSent(self) -> None:
        """
        The certificate chain from ca.pem is sent after the certificate.
        """
        s, c = handshake(self.server, client())
        chain = c.get_peer_cert_chain()
        self.assertEqual(len(chain), 2)
        self.assertEqual(chain[1].to_cryptography(), self.material.chain[0])

    def test_replaceServesNewCertificate(self) -> None:
        """
        After L{ServerTLS.replace}, new connections get the new certificate.
        """
        tls = ServerTLS(self.material)
        other = self.mktemp()
        write_tls_dir(other)
        newer = load_tls_dir(other)
        tls.replace(newer)
        connection = tls.serverConnectionForTLS(None)
        s, c = handshake(connection.get_context(), client())
        self.assertEqual(c.get_peer_certificate().to_cryptography(), newer.certificate)

    def test_keyOpenSSLRefusesIsConfigError(self) -> None:
        """
        A key OpenSSL refuses (a 1024-bit RSA key, in material an embedding
        program built itself) is a L{TLSConfigError} in one line naming the
        key file and OpenSSL's reason, not OpenSSL's own error, and
        L{ServerTLS.replace} keeps serving the certificate it had.
        """
        key = rsa.generate_private_key(65537, 1024)
        weak = dataclasses.replace(
            self.material, key=key, certificate=self_signed(key), chain=()
        )
        with self.assertRaises(TLSConfigError) as raised:
            server_context(weak)
        message = str(raised.exception)
        self.assertIn(self.material.files.key, message)
        self.assertIn("ee key too small", message)
        self.assertNotIn("\n", message)
        tls = ServerTLS(self.material)
        self.assertRaises(TLSConfigError, tls.replace, weak)
        self.assertIs(tls.material, self.material)
        s, c = handshake(tls.serverConnectionForTLS(None).get_context(), client())
        self.assertEqual(c.get_peer_certificate().to_cryptography(), self.material.certificate)


def self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
    """
    A certificate for localhost signed by C{key} itself.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )


class ReleaseBioBuffersTests(SynchronousTestCase):
    """
    L{release_bio_buffers} renews a connection's memory BIOs only when
    nothing is lost by it, and the connection goes on as before.
    """

    def setUp(self) -> None:
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        self.server = server_context(load_tls_dir(tlsdir))

    def test_connectionGoesOn(self) -> None:
        """
        After a handshake, TLS 1.3 or 1.2, the server's BIOs are empty and
        are renewed; the connection then carries data both ways, and
        renewing between messages changes nothing.
        """
        for maximum in (None, SSL.TLS1_2_VERSION):
            s, c = handshake(self.server, client(maximum=maximum))
            bios = (s._into_ssl, s._from_ssl)  # noqa: SLF001
            self.assertTrue(release_bio_buffers(s))
            self.assertNotIn(s._into_ssl, bios)  # noqa: SLF001
            self.assertNotIn(s._from_ssl, bios)  # noqa: SLF001
            for n in range(3):
                c.send(b"ping %d" % n)
                relay(c, s)
                self.assertEqual(s.recv(100), b"ping %d" % n)
                self.assertTrue(release_bio_buffers(s))
                s.sendall(b"x" * 40_000)
                relay(s, c)
                self.assertTrue(release_bio_buffers(s))
                echoed = b""
                while len(echoed) < 40_000:
                    echoed += c.recv(65536)
                self.assertEqual(echoed, b"x" * 40_000)

    def test_keptWhileHoldingBytes(self) -> None:
        """
        A BIO that holds bytes not yet read, incoming or outgoing, is kept
        with its bytes.
        """
        s, c = handshake(self.server, client())
        c.send(b"ping")
        relay(c, s)
        self.assertFalse(release_bio_buffers(s))
        self.assertEqual(s.recv(100), b"ping")
        s.send(b"pong")
        self.assertFalse(release_bio_buffers(s))
        relay(s, c)
        self.assertEqual(c.recv(100), b"pong")
        self.assertTrue(release_bio_buffers(s))


class ClientCAFileTests(SynchronousTestCase):
    """
    C{pingproto ping --ca FILE} reads its CA file as the server reads its
    certificates, and says the same of a bad one.
    """

    def test_badCAFile(self) -> None:
        directory = self.mktemp()
        os.makedirs(directory)
        not_pem = os.path.join(directory, "ca.der")
        with open(not_pem, "wb") as f:
            f.write(b"\x30\x82\x01\x0a")
        damaged = os.path.join(directory, "damaged.pem")
        with open(damaged, "wb") as f:
            f.write(b"-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
        cases = [
            (os.path.join(directory, "missing.pem"), "cannot read"),
            (not_pem, "is not PEM"),
            (damaged, "holds a damaged PEM certificate"),
        ]
        for path, words in cases:
            with self.assertRaises(TLSConfigError, msg=path) as caught:
                client_tls_options("localhost", path)
            self.assertIn(path, str(caught.exception))
            self.assertIn(words, str(caught.exception))


class _Records(Protocol):
    """
    Keeps each call of C{dataReceived}.
    """

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def dataReceived(self, data: bytes) -> None:
        self.calls.append(data)


class HandshakeBytesTests(SynchronousTestCase):
    def server(
        self, identities: tuple[str, ...] = ("localhost",), protocol: type[TLSProtocol] = TLSProtocol
    ) -> tuple[TLSProtocol, StringTransport, Clock]:
        """
        A server's TLSProtocol on an in-memory transport and a clock
        (C{self.ca} issued its certificate).
        """
        tlsdir = self.mktemp()
        self.ca = write_tls_dir(tlsdir, identities=identities)
        clock = Clock()
        factory = TLSMemoryBIOFactory(ServerTLS(load_tls_dir(tlsdir)), False, Factory.forProtocol(Protocol), clock=clock)
        factory.protocol = protocol
        server = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        transport = StringTransport()
        server.makeConnection(transport)
        return server, transport, clock

    def test_helloSplitAtALetter(self) -> None:
        """
        A ClientHello that comes in two reads, the second beginning with a
        letter, is TLS, answered with the server's hello: only the
        connection's first byte tells plain HTTP (it was answered 400 at
        about a fifth of the places a 1.5 KB hello can be split), with a
        handshake limit or without one.
        """

        class Unlimited(TLSProtocol):
            handshake_limit = 0

        hello_from = SSL.Connection(client(), None)
        hello_from.set_connect_state()
        with self.assertRaises(SSL.WantReadError):
            hello_from.do_handshake()
        hello = hello_from.bio_read(1 << 16)
        split = next(i for i in range(1, len(hello)) if hello[i : i + 1].isalpha())
        for protocol in (TLSProtocol, Unlimited):
            server, transport, clock = self.server(protocol=protocol)
            server.dataReceived(hello[:split])
            server.dataReceived(hello[split:])
            self.assertTrue(transport.value().startswith(b"\x16\x03"), (protocol, transport.value()[:40]))
            self.assertFalse(transport.disconnecting)

    def test_noLimitOnAClientsSide(self) -> None:
        """
        TLSProtocol on a client's side (any TLSMemoryBIOFactory for a
        client, not only wrap_client_tls) takes a server's handshake of
        over HANDSHAKE_BYTES (a certificate with 1,500 names): the limit
        is a server's, for what its clients send.
        """
        names = ("localhost", *(f"host{n}.example.com" for n in range(1500)))
        server, to_client, clock = self.server(names)
        factory = TLSMemoryBIOFactory(
            optionsForClientTLS("localhost", trustRoot=Certificate.loadPEM(self.ca.cert_pem.bytes())),
            True,
            Factory.forProtocol(Protocol),
            clock=clock,
        )
        factory.protocol = TLSProtocol
        tls_client = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 2))
        to_server = StringTransport()
        tls_client.makeConnection(to_server)
        received = 0
        for _ in range(50):
            for source, sink in ((to_server, server), (to_client, tls_client)):
                data = source.value()
                source.clear()
                if data:
                    sink.dataReceived(data)
                    received += len(data) if sink is tls_client else 0
            clock.advance(0)
        self.assertGreater(received, HANDSHAKE_BYTES)
        self.assertTrue(tls_client._handshakeDone)
        self.assertFalse(tls_client._aborted)

    def test_overLimitInALaterTurn(self) -> None:
        """
        A client whose one read crosses the limit on a later turn, as the
        read is handed to OpenSSL a piece at a time, is cut off then and
        not read again.
        """
        server, transport, clock = self.server()
        fragment = b"\x01" + (100_000).to_bytes(3, "big") + bytes(16_380)
        record = b"\x16\x03\x01" + len(fragment).to_bytes(2, "big") + fragment
        with capturedLogs():
            server.dataReceived(record + record + record[:5000])
            self.assertFalse(transport.disconnecting)
            clock.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(transport.producerState, "paused")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_overLimitBeforeHandshake(self) -> None:
        """
        A client that sends over HANDSHAKE_BYTES before its handshake is
        done (a hello declared 100,000 bytes long, sent in part: OpenSSL
        buffers up to 128 KiB of one until the handshake timeout) is cut
        off, with one line at info saying why; under the limit, it is not.
        """
        server, transport, clock = self.server()
        fragment = b"\x01" + (100_000).to_bytes(3, "big") + bytes(16_380)
        records = [b"\x16\x03\x01" + len(fragment).to_bytes(2, "big") + fragment]
        records += [b"\x16\x03\x01\x27\x10" + bytes(10_000), b"\x16\x03\x01\x40\x00" + bytes(16_384)]
        with capturedLogs() as events:
            for record in records[:2]:
                server.dataReceived(record)
                clock.advance(0)
            self.assertFalse(transport.disconnecting)
            server.dataReceived(records[2])
            clock.advance(0)
        self.assertTrue(transport.disconnecting)
        self.assertEqual(clock.getDelayedCalls(), [])
        [line] = [formatEvent(e) for e in events if "handshake" in formatEvent(e)]
        self.assertEqual(line, f"tcp4:{transport.getPeer().host}:{transport.getPeer().port}: closed: sent over {HANDSHAKE_BYTES // 1024} KiB before its TLS handshake was done")
        self.assertEqual(HANDSHAKE_BYTES, 32 * 1024)


class NoDataBudgetTests(SynchronousTestCase):
    def test_burstThenOneAMinute(self) -> None:
        """
        A connection takes a burst of L{NO_DATA_BURST} records without data
        from its peer, then one every minute on average: one more marks it
        for cutting off, and none is marked before the burst is spent,
        however the records come.  (tests/test_hardening.py's
        KeyUpdateTests send real key updates.)
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        clock = Clock()
        factory = TLSFactory(ServerTLS(load_tls_dir(tlsdir)), False, Factory.forProtocol(Protocol), clock=clock)
        calm, eager = (factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1)) for _ in range(2))
        for protocol in (calm, eager):
            self.assertFalse(protocol._spendNoData(NO_DATA_BURST - 3))
            self.assertFalse(protocol._spendNoData(3))
        self.assertTrue(eager._spendNoData(1))
        clock.advance(1 / NO_DATA_RATE)
        self.assertFalse(calm._spendNoData(1))
        self.assertTrue(calm._spendNoData(1))


class _MemorySocket:
    """
    What tlslite-ng's client takes for a socket: what it sends goes to a
    server protocol on an in-memory transport, at once or, while held,
    when asked; what it reads is what the server wrote.
    """

    def __init__(self, server: TLSProtocol, transport: StringTransport) -> None:
        self.server, self.transport = server, transport
        self.held: list[bytes] | None = None

    def send(self, data: bytes) -> int:
        self.sendall(data)
        return len(data)

    def sendall(self, data: bytes) -> None:
        if self.held is None:
            self.server.dataReceived(bytes(data))
        else:
            self.held.append(bytes(data))

    def recv(self, size: int) -> bytes:
        pending = self.transport.value()
        self.transport.clear()
        self.transport.write(pending[size:])
        return pending[:size]


class _PausableAfterAbort(StringTransport):
    """
    A transport that, as a TCP one does, can be paused after an abort.
    """

    def _checkState(self) -> None:
        pass


class _AbortsOnMark(Protocol):
    def dataReceived(self, data: bytes) -> None:
        if b"ABORT" in data:
            self.transport.abortConnection()


def _tlslite_client(case: SynchronousTestCase, protocol: type[Protocol]) -> tuple[Any, TLSProtocol, StringTransport, _MemorySocket, Clock]:
    """
    A tlslite-ng TLS 1.3 client connected to a server's L{TLSProtocol}
    around C{protocol}, on an in-memory transport and a clock.
    """
    from tlslite import HandshakeSettings, TLSConnection

    tlsdir = case.mktemp()
    write_tls_dir(tlsdir)
    clock = Clock()
    factory = TLSFactory(ServerTLS(load_tls_dir(tlsdir)), False, Factory.forProtocol(protocol), clock=clock)
    server = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
    transport = _PausableAfterAbort()
    server.makeConnection(transport)
    sock = _MemorySocket(server, transport)
    client = TLSConnection(sock)
    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 4)
    client.handshakeClientCert(settings=settings, serverName="localhost")
    return client, server, transport, sock, clock


def _key_update(client: Any) -> None:
    from tlslite.constants import KeyUpdateMessageType

    for _ in client.send_keyupdate_request(KeyUpdateMessageType.update_requested):
        pass


class NoDataBehindRecordBoundTests(SynchronousTestCase):
    def test_keyUpdatesAfterEvery256thRecordCounted(self) -> None:
        """
        Key updates placed right after the 256th record of a turn (where
        the turn's reading stops, RECORDS_PER_TURN) are counted as the next
        turn reads them: a client repeating 254 data records, a key update,
        a data record, 15 key updates and a data record was counted one in
        each 16, and 64 of them went by.
        """
        client, server, transport, sock, clock = _tlslite_client(self, Protocol)
        sock.held = []
        for _ in range(4):
            for _ in range(254):
                client.write(b"d")
            _key_update(client)
            client.write(b"d")
            for _ in range(15):
                _key_update(client)
            client.write(b"d")
        with capturedLogs() as events:
            server.dataReceived(b"".join(sock.held))
            for _ in range(100):
                clock.advance(0)
        self.assertTrue(server._aborted)
        self.assertEqual(len([e for e in events if "without data" in e.get("log_format", "")]), 1)


class NoDataAfterAbortTests(SynchronousTestCase):
    def test_keyUpdatesLeftOverNotReadAfterAbort(self) -> None:
        """
        Key updates left over from a read (past L{BYTES_PER_TURN}) when the
        protocol above aborts are not handed to OpenSSL as the connection
        ends: they all were, at once, whatever their number, and each
        answered (here, 2,000 of them: some 50 KB of answers).
        """
        client, server, transport, sock, _ = _tlslite_client(self, _AbortsOnMark)
        sock.held = []
        # One record that fits in the first turn's bytes, with a few key updates.
        client.write(b"ABORT" + b"x" * (BYTES_PER_TURN - 200))
        for _ in range(2000):
            _key_update(client)
        server.dataReceived(b"".join(sock.held))
        self.assertTrue(server._aborted)
        transport.clear()
        server.connectionLost(Failure(ConnectionDone()))
        self.assertLess(len(transport.value()), 1000)


class CoalescedReadTests(SynchronousTestCase):
    """
    L{TLSProtocol} hands the protocol what all the records of one read
    hold in one call.
    """

    def setUp(self) -> None:
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        self.inner = _Records()
        self.clock = Clock()
        factory = TLSMemoryBIOFactory(
            ServerTLS(load_tls_dir(tlsdir)), False, Factory.forProtocol(lambda: self.inner), clock=self.clock
        )
        factory.protocol = TLSProtocol
        self.server = factory.buildProtocol(IPv4Address("TCP", "127.0.0.1", 1))
        self.transport = StringTransport()
        self.server.makeConnection(self.transport)
        self.client = SSL.Connection(client(), None)
        self.client.set_connect_state()
        for _ in range(10):
            try:
                self.client.do_handshake()
            except SSL.WantReadError:
                pass
            else:
                break
            self.server.dataReceived(self.client.bio_read(65536))
            self.client.bio_write(self.transport.value())
            self.transport.clear()

    def test_oneCallPerRead(self) -> None:
        """
        A hundred one-byte records in one read are one call of the
        protocol (they were a hundred: a client could make the server
        spend its time on calls, not bytes).
        """
        for n in range(100):
            self.client.send(b"%d" % (n % 10))
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.assertEqual(self.inner.calls, [b"0123456789" * 10])
        self.assertEqual(self.transport.producerState, "producing")

    def test_recordsPerTurn(self) -> None:
        """
        Of a thousand one-byte records in one read, RECORDS_PER_TURN are
        taken now and the rest on later turns, a call of the protocol a
        turn; the socket is not read meanwhile, and reading resumes once
        the last are taken: one client's records cannot hold the others'
        for as long as it likes (five such clients held every other
        client's echo up to 224 ms).
        """
        self.assertEqual(RECORDS_PER_TURN, 256)
        for n in range(1000):
            self.client.send(b"%d" % (n % 10))
        self.server.dataReceived(self.client.bio_read(1 << 20))
        sent = b"0123456789" * 100
        self.assertEqual(self.inner.calls, [sent[:256]])
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(len(self.clock.getDelayedCalls()), 1)
        self.clock.advance(0)
        self.assertEqual(self.inner.calls, [sent[:256], sent[256:512], sent[512:768], sent[768:]])
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bytesPerTurn(self) -> None:
        """
        Of a 40 KB read, BYTES_PER_TURN bytes go to OpenSSL now and the
        rest a turn's worth at a time, the socket not read meanwhile: TLS
        1.3 KeyUpdates, which carry no data, never reach RECORDS_PER_TURN,
        and one read of 64 KiB of them held every other client for 40 ms.
        Everything arrives, in order, and reading resumes after it.
        """
        sent = bytes(range(256)) * 160
        for n in range(0, len(sent), 4096):
            self.client.send(sent[n : n + 4096])
        blob = self.client.bio_read(1 << 20)
        self.assertGreater(len(blob), 4 * BYTES_PER_TURN)
        self.server.dataReceived(blob)
        self.assertLess(len(b"".join(self.inner.calls)), BYTES_PER_TURN)
        self.assertEqual(self.transport.producerState, "paused")
        self.clock.advance(0)
        self.assertEqual(b"".join(self.inner.calls), sent)
        self.assertGreaterEqual(len(self.inner.calls), 5)
        self.assertEqual(self.transport.producerState, "producing")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_pauseAboveOutlastsBacklog(self) -> None:
        """
        A resume from the protocol above while a backlog of records is
        being taken waits for its end, and a pause from above made
        meanwhile still holds after it.
        """
        for n in range(600):
            self.client.send(b"x")
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.server.resumeProducing()
        self.assertEqual(self.transport.producerState, "paused")
        self.server.pauseProducing()
        self.clock.advance(0)
        self.assertEqual(b"".join(self.inner.calls), b"x" * 600)
        self.assertEqual(self.transport.producerState, "paused")
        self.server.resumeProducing()
        self.assertEqual(self.transport.producerState, "producing")

    def test_closeNotifyInBacklog(self) -> None:
        """
        The peer's close_notify found on a later turn of a backlog: the
        bytes before it are delivered, TLS ends and the connection closes,
        and reading is not resumed on the closing transport.
        """
        for n in range(600):
            self.client.send(b"z")
        self.client.shutdown()
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.clock.advance(0)
        self.assertEqual(b"".join(self.inner.calls), b"z" * 600)
        self.assertTrue(self.transport.disconnecting)
        self.assertEqual(self.transport.producerState, "paused")
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_abortDuringBacklog(self) -> None:
        """
        A connection aborted with records still to take takes no more of
        them, and does not read again.
        """
        for n in range(600):
            self.client.send(b"a")
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.server.abortConnection()
        self.clock.advance(0)
        self.assertEqual(self.inner.calls, [b"a" * 256])
        self.assertEqual(self.transport.producerState, "paused")

    def test_backlogAtTheEnd(self) -> None:
        """
        A connection lost with records still to take hands them all to the
        protocol before it ends, and leaves no timer behind.
        """
        for n in range(1000):
            self.client.send(b"y")
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.server.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(b"".join(self.inner.calls), b"y" * 1000)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_bytesBeforeTheEnd(self) -> None:
        """
        Records followed by the client's close_notify in the same read:
        the protocol gets their bytes, and the server ends TLS in turn and
        closes the connection.
        """
        for _ in range(3):
            self.client.send(b"x")
        self.client.shutdown()
        self.server.dataReceived(self.client.bio_read(1 << 20))
        self.assertEqual(self.inner.calls, [b"xxx"])
        self.assertTrue(self.transport.disconnecting)
        self.client.bio_write(self.transport.value())
        self.assertRaises(SSL.ZeroReturnError, self.client.recv, 100)
