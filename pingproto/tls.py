"""
OpenSSL contexts for both ends, configured to Mozilla's "intermediate"
profile.

Twisted's stock L{CertificateOptions} already turns off compression and
SSLv2/3; on top of it the server allows only TLS 1.2 and 1.3, only
forward-secret AEAD cipher suites, only the X25519, P-256 and P-384 groups,
and no renegotiation.  L{ServerTLS} hands out connections from a context it
can swap, so that a renewed certificate reaches new connections while the
open ones keep theirs.  L{TLSServerProtocol} is the TLS layer the server
wraps its connections in.
"""

from __future__ import annotations

from cryptography import x509
from OpenSSL import SSL, crypto
from twisted.internet.interfaces import (
    IOpenSSLClientConnectionCreator,
    IOpenSSLServerConnectionCreator,
)
from twisted.internet.ssl import (
    AcceptableCiphers,
    Certificate,
    CertificateOptions,
    TLSVersion,
    optionsForClientTLS,
    platformTrust,
    trustRootFromCertificates,
)
from twisted.protocols.tls import TLSMemoryBIOProtocol
from twisted.python.failure import Failure
from zope.interface import implementer

from pingproto.tlsfiles import TLSConfigError, TLSMaterial

__all__ = ["CIPHERS", "GROUPS", "ServerTLS", "TLSServerProtocol", "client_tls_options", "server_context"]

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
    """
    options = CertificateOptions(
        privateKey=crypto.PKey.from_cryptography_key(material.key),  # type: ignore[arg-type]
        certificate=crypto.X509.from_cryptography(material.certificate),
        extraCertChain=[crypto.X509.from_cryptography(c) for c in material.chain],
        raiseMinimumTo=TLSVersion.TLSv1_2,
        acceptableCiphers=AcceptableCiphers.fromOpenSSLCipherString(CIPHERS),
        # Browsers offer h2 first; a WebSocket upgrade needs HTTP/1.1, and a
        # plain HTTP/1.0 request still deserves its answer.
        acceptableProtocols=[b"http/1.1", b"http/1.0"],
    )
    context = options.getContext()
    context.set_options(SSL.OP_NO_RENEGOTIATION)
    _set_groups(context, GROUPS)
    return context


def _set_groups(context: SSL.Context, groups: bytes) -> None:
    """
    Restrict key exchange groups; pyOpenSSL has no public call for the list
    (only C{set_tmp_ecdh} for a single curve), so use the binding it is
    built on.
    """
    from cryptography.hazmat.bindings.openssl.binding import Binding

    setter = getattr(Binding.lib, "SSL_CTX_set1_curves_list", None)
    if setter is not None and setter(context._context, groups) != 1:  # noqa: SLF001
        raise TLSConfigError(f"OpenSSL refused the key exchange groups {groups.decode()}")


@implementer(IOpenSSLServerConnectionCreator)
class ServerTLS:
    """
    The server side of TLS for L{TLSMemoryBIOFactory}, with a replaceable
    certificate.
    """

    def __init__(self, material: TLSMaterial) -> None:
        self.material = material
        self._context = server_context(material)

    def replace(self, material: TLSMaterial) -> None:
        """
        Serve C{material} to connections made from now on.
        """
        self._context = server_context(material)
        self.material = material

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        return SSL.Connection(self._context, None)


class TLSServerProtocol(TLSMemoryBIOProtocol):
    """
    Twisted's TLS layer, without write buffering and without leaving a
    dropped connection to the cycle collector.

    Not L{BufferingTLSTransport}, Twisted's default, which holds every
    write until the next reactor turn to coalesce small ones: an echo server
    writes once per message it reads, so that costs a timer per echo, 10-20 %
    of the CPU with 100-1,000 busy connections (docs/performance.md).

    When OpenSSL reports an error, such as a client that vanished without a
    close_notify, C{_flushReceiveBIO} keeps the L{Failure} it makes in a
    local variable of the frame that its own traceback holds: a reference
    cycle, and the frames below hold the C{SSL.Connection}.  Only the cycle
    collector frees it, at its next full pass, which in a long-running
    server can be minutes away; meanwhile each dropped connection's OpenSSL
    state stays allocated between the memory freed around it.  After 10,000
    clients dropped at once that cost every later echo a third more CPU,
    in glibc's malloc (docs/performance.md).  Cleaning the Failure (keeping
    its text, dropping its frames) as Twisted's TLS layer takes it in breaks
    the cycle, so reference counting frees the connection at once.  Relies
    on C{_tlsShutdownFinished} being where Twisted 26.10's TLS layer takes
    every Failure it makes; tests/test_memory.py fails if a dropped
    connection is left to the cycle collector again.
    """

    def _tlsShutdownFinished(self, reason: Failure | None) -> None:
        if reason is not None:
            reason.cleanFailure()
        super()._tlsShutdownFinished(reason)


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
        try:
            with open(ca_file, "rb") as f:
                certs = x509.load_pem_x509_certificates(f.read())
        except OSError as e:
            raise TLSConfigError(f"cannot read CA file {ca_file}: {e.strerror}") from None
        except ValueError:
            raise TLSConfigError(f"{ca_file} holds no PEM certificate") from None
        trust = trustRootFromCertificates(
            [Certificate(crypto.X509.from_cryptography(c)) for c in certs]
        )
    return optionsForClientTLS(
        hostname,
        trustRoot=trust,
        extraCertificateOptions={"raiseMinimumTo": TLSVersion.TLSv1_2},
    )
