"""
Reading and checking a TLS directory, before anything listens.

A server that starts with a key that does not match its certificate, or an
expired certificate, fails every handshake while looking healthy.  So every
such mistake is found here, at start-up, and reported as one sentence that
names the file and the problem (L{TLSConfigError}).  Nothing here needs a
reactor or OpenSSL contexts: it reads files and inspects them with
C{cryptography}.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass, field
from typing import Sequence
from warnings import catch_warnings, simplefilter

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes
from cryptography.utils import CryptographyDeprecationWarning

__all__ = [
    "EXPIRY_WARNING",
    "MAX_PEM_SIZE",
    "LAYOUT_FILES",
    "TLSConfigError",
    "TLSMaterial",
    "describe",
    "expired_certificate",
    "expiry_warnings",
    "find_tls_files",
    "load_certificates",
    "load_tls_dir",
]

EXPIRY_WARNING = datetime.timedelta(days=14)

# The two layouts we read: pingproto's own (chain in ca.pem, which may be
# absent when tls.cert holds it) and certbot's live directory.
_LAYOUTS = (
    ("tls.key", "tls.cert", "ca.pem"),
    ("privkey.pem", "fullchain.pem", None),
)
# Every file name a TLS directory may hold, for whoever watches one.
LAYOUT_FILES = tuple(name for layout in _LAYOUTS for name in layout if name)


class TLSConfigError(Exception):
    """
    The TLS directory cannot be served; the message says why in one line.
    """


@dataclass(frozen=True)
class TLSFiles:
    """
    Where the key, the certificate and (optionally) the rest of the chain are.
    """

    key: str
    cert: str
    chain: str | None


@dataclass(frozen=True)
class TLSMaterial:
    """
    A checked key, its certificate and the chain to send after it.

    C{warnings} holds sentences worth logging (a certificate about to expire)
    that do not stop the server.
    """

    files: TLSFiles
    key: PrivateKeyTypes
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    warnings: tuple[str, ...] = field(default=())

    @property
    def not_after(self) -> datetime.datetime:
        return self.certificate.not_valid_after_utc


def find_tls_files(directory: str) -> TLSFiles:
    """
    Find which layout C{directory} uses.
    """
    # Not os.path.isdir, which says no for a directory the server may not
    # reach: twistd -u's user and certbot's 0700 live/, the usual mistake,
    # was told the directory did not exist.
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
        if is_dir:
            # One the server may see but not search (certbot's 0700
            # live/example.com, another user's): its files would each be
            # said to be unreadable, not it.
            os.stat(os.path.join(directory, os.curdir))
    except PermissionError as e:
        raise TLSConfigError(f"cannot read TLS directory {directory}: {e.strerror}") from None
    except OSError:
        is_dir = False
    if not is_dir:
        raise TLSConfigError(f"TLS directory {directory} does not exist or is not a directory")
    for key, cert, chain in _LAYOUTS:
        keyPath = os.path.join(directory, key)
        certPath = os.path.join(directory, cert)
        present = [p for p in (keyPath, certPath) if _present(p)]
        if len(present) == 1:
            missing = certPath if present[0] == keyPath else keyPath
            raise TLSConfigError(
                f"{missing} is missing (found {os.path.basename(present[0])} without it)"
            )
        if present:
            chainPath = os.path.join(directory, chain) if chain else None
            if chainPath is not None and not _present(chainPath):
                chainPath = None
            return TLSFiles(keyPath, certPath, chainPath)
    raise TLSConfigError(
        f"TLS directory {directory} holds neither tls.key + tls.cert (+ ca.pem) "
        "nor privkey.pem + fullchain.pem"
    )


def load_tls_dir(directory: str, now: datetime.datetime | None = None) -> TLSMaterial:
    """
    Read and check the TLS directory, raising L{TLSConfigError} on any
    problem a client would otherwise discover at its first handshake.
    """
    files = find_tls_files(directory)
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    key = _load_key(files.key)
    _check_key(files.key, key)
    certs = load_certificates(files.cert)
    in_cert_file = len(certs)
    if files.chain is not None:
        certs += load_certificates(files.chain)
    _check_leaf(files, key, certs)
    leaf, chain = certs[0], tuple(certs[1:])
    _check_rsa_pss(files, leaf)
    _check_chain(files, certs, in_cert_file)
    warnings = _check_dates(files, certs, now) + _check_chain_sent(files, leaf, chain)
    return TLSMaterial(files, key, leaf, chain, warnings)


def _check_leaf(files: TLSFiles, key: PrivateKeyTypes, certs: Sequence[x509.Certificate]) -> None:
    """
    Refuse certificates whose first is not the key's: TLS sends the first
    as the server's own.  If the key's comes later, the chain was pasted
    together by hand, the intermediate first, and the message says so.
    """
    if _same_public_key(key, certs[0]):
        return
    if any(_same_public_key(key, cert) for cert in certs[1:]):
        raise TLSConfigError(
            f"wrong order in {files.cert}: the certificate of {files.key} "
            "must come first, then the chain"
        )
    raise TLSConfigError(
        f"{files.key} does not match the certificate in {files.cert} "
        "(their public keys differ)"
    )


def _check_dates(files: TLSFiles, certs: Sequence[x509.Certificate], now: datetime.datetime) -> tuple[str, ...]:
    """
    Refuse a certificate of the chain that clients refuse at C{now}, having
    expired or not being valid yet (L{_dates}); return the warnings.
    """
    refused, expiring, chain_end = _dates(files, certs, now)
    if refused is not None:
        raise TLSConfigError(f"{_what(files, refused, certs[0])} {_out_of_date(refused, now)}")
    return expiring + ((chain_end,) if chain_end is not None else ())


def _dates(
    files: TLSFiles, certs: Sequence[x509.Certificate], now: datetime.datetime
) -> tuple[x509.Certificate | None, tuple[str, ...], str | None]:
    """
    The first certificate of C{certs} (the leaf, then the chain) outside its
    validity at C{now} that clients need, or L{None}; a warning for each
    needed certificate about to expire (L{_renew_within}), while there is
    time to renew it; and one for the end of the chain out of date, if any.

    Clients build a path up from the leaf and stop at the first
    certificate whose issuer they trust (OpenSSL, browsers), taking the
    issuer from their own store: a certificate sent after that one is not
    used.  Those they need are the leaf, its issuer, and every certificate
    with one in date after it, which is sent to lead to a root.  But a
    chain may end in certificates out of date, past the leaf's issuer: a
    cross-signed root such as Let's Encrypt's old long chain (ISRG Root X1
    signed by DST Root CA X3, expired in 2024) or Sectigo's USERTrust by
    AddTrust (expired in 2020), with or without the old root after it.
    Clients that trust the new root stop before them; others, which
    needed them, cannot be served by them any more whether they are sent
    or not.  So the chain's end out of date, from its third certificate
    on, is served with a warning; anywhere before, it is refused: an
    expired intermediate fails every client.  (A second intermediate
    ending the chain out of date looks the same, and gets the warning:
    nothing in a certificate says whether clients trust its subject.)
    """

    def outside(cert: x509.Certificate) -> bool:
        return not cert.not_valid_before_utc <= now < cert.not_valid_after_utc

    end = len(certs)
    while end > 2 and outside(certs[end - 1]):
        end -= 1
    refused = next((cert for cert in certs[:end] if outside(cert)), None)
    expiring = []
    for cert in certs[:end]:
        left = cert.not_valid_after_utc - now
        if datetime.timedelta(0) < left < _renew_within(cert):
            expiring.append(
                f"{_what(files, cert, certs[0])} expires in {_time_left(left)}, "
                f"on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC: renew it"
            )
    chain_end = None
    if end < len(certs):
        cert = certs[end]
        when = _out_of_date(cert, now)
        after = len(certs) - end - 1
        those = {0: "it", 1: "it and the one after it"}.get(after, f"it and the {after} after it")
        chain_end = (
            f"{_what(files, cert, certs[0])} {when}, served all the same as it ends the chain (an old "
            f"cross-signed root?): clients that trust {_name(cert)} stop before it, others cannot verify "
            f"the server's certificate: take {those} out of the chain"
        )
    return refused, tuple(expiring), chain_end


def _out_of_date(cert: x509.Certificate, now: datetime.datetime) -> str:
    """
    How C{cert}, outside its dates at C{now}, is: "expired on ..." or "is
    not valid until ...".
    """
    if cert.not_valid_after_utc <= now:
        return f"expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return f"is not valid until {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"


def _renew_within(cert: x509.Certificate) -> datetime.timedelta:
    """
    How close to its end a certificate is said to be about to expire:
    L{EXPIRY_WARNING}, or a third of its life if that is shorter.  A
    certificate of six days (Let's Encrypt's short-lived ones) always has
    less than 14 days left, and is renewed after two or three: warned
    about at every start, reload and day, it would be a false alarm.
    """
    return min(EXPIRY_WARNING, (cert.not_valid_after_utc - cert.not_valid_before_utc) / 3)


def _time_left(left: datetime.timedelta) -> str:
    """
    C{left} in days and hours: "2 days 23 hours", which whole days alone
    said as "2 days".
    """
    hours = left.seconds // 3600
    parts = [f"{n} {unit}{'s' if n != 1 else ''}" for n, unit in ((left.days, "day"), (hours, "hour")) if n]
    return " ".join(parts) or "under an hour"


def expiry_warnings(material: TLSMaterial, now: datetime.datetime) -> tuple[str, ...]:
    """
    The warnings L{load_tls_dir} would give at C{now} that certificates of
    C{material} are about to expire: for a server that has served them
    since long before, whose renewal may have stopped.  Not the one for
    an out-of-date end of the chain, which waits for no date.
    """
    return _dates(material.files, (material.certificate, *material.chain), now)[1]


def expired_certificate(material: TLSMaterial, now: datetime.datetime) -> str | None:
    """
    A sentence saying that a certificate of C{material} that clients need,
    valid when it was loaded, is not by C{now}, so that clients refuse it;
    or L{None}.
    """
    certs = (material.certificate, *material.chain)
    refused = _dates(material.files, certs, now)[0]
    if refused is None:
        return None
    # "is not valid until" when the clock went back.
    return (
        f"the certificate served {_out_of_date(refused, now)} ({_what(material.files, refused, certs[0])}): "
        "clients refuse it until it is renewed"
    )


def _check_chain_sent(files: TLSFiles, leaf: x509.Certificate, chain: Sequence[x509.Certificate]) -> tuple[str, ...]:
    """
    A warning when a certificate issued by a CA is sent without a chain:
    clients that do not hold its issuer fail with "unable to get local
    issuer certificate".  That is the classic cert.pem given instead of
    fullchain.pem; but a certificate whose issuer every client holds
    (issued by a root, or by an intermediate shipped in a private trust
    store) is served rightly so, hence a warning, not a refusal.  A
    self-issued certificate has no chain to send.
    """
    if chain or leaf.issuer == leaf.subject:
        return ()
    issuer = _display(leaf.issuer)
    if os.path.basename(files.cert) == "fullchain.pem":
        advice = "fullchain.pem should hold the chain after it"
    else:
        advice = f"give fullchain.pem as {os.path.basename(files.cert)} rather than cert.pem, or put the chain in ca.pem"
    return (
        f"only the server's certificate is sent, {files.cert} holding no chain: it was issued by {issuer}, "
        f"and clients that do not hold {issuer} cannot verify it (\"unable to get local issuer certificate\"): "
        f"{advice}",
    )


def _present(path: str) -> bool:
    """
    Whether there is a file at C{path}.  A symbolic link that leads nowhere
    (to nothing, or round in a loop) is no absence but a mistake, which
    would otherwise pass for one: an optional ca.pem left out, and the
    server started without its chain.  Nor is a file the server may not
    reach (a directory it cannot search, a link into certbot's 0700
    archive/), which would pass for absent or for a broken link.
    """
    try:
        os.stat(path)
        return True
    except OSError as e:
        error = e
    try:
        target: str | None = os.readlink(path)
    except OSError:
        target = None
    if isinstance(error, PermissionError):
        link = "" if target is None else f" (a symbolic link to {target})"
        raise TLSConfigError(f"cannot read {path}{link}: {error.strerror}")
    if target is None:
        return False  # nothing there
    raise TLSConfigError(f"{path} is a broken symbolic link (to {target}): {error.strerror}")


# The most read of a key, certificate or CA file.  A certificate is one or
# two KiB of PEM, a 16384-bit RSA key about 12 KiB, and even the system's
# whole CA bundle (about 200 KiB) fits: a larger file is none of these,
# and reading it whole could take the server's memory (a link to
# /dev/zero has no end at all).
MAX_PEM_SIZE = 1024 * 1024

# What stat says a file is, for the one line refusing it.
_KINDS = (
    (stat.S_ISDIR, "Is a directory"),
    (stat.S_ISFIFO, "it is a FIFO, not a regular file"),
    (stat.S_ISCHR, "it is a character device, not a regular file"),
    (stat.S_ISBLK, "it is a block device, not a regular file"),
    (stat.S_ISSOCK, "it is a socket, not a regular file"),
)


# Windows has no O_NONBLOCK (nor FIFOs), and needs O_BINARY for bytes as
# they are.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def _read(path: str) -> bytes:
    """
    The contents of the regular file at C{path} (symbolic links followed),
    of at most L{MAX_PEM_SIZE} bytes.

    Anything else is refused before it is read, and without blocking: a
    FIFO would hang start-up or the reactor until something wrote to it,
    a device would be read forever.  O_NONBLOCK keeps opening a FIFO from
    waiting for a writer, and the file's kind is taken from what was
    opened (fstat), not from a look at the path beforehand: the file
    could be replaced in between.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        raise TLSConfigError(f"cannot read {path}: {e.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = next((what for test, what in _KINDS if test(mode)), "it is not a regular file")
            raise TLSConfigError(f"cannot read {path}: {kind}")
        with open(fd, "rb", closefd=False) as f:
            data = f.read(MAX_PEM_SIZE + 1)
    except OSError as e:
        raise TLSConfigError(f"cannot read {path}: {e.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_PEM_SIZE:
        raise TLSConfigError(
            f"{path} is larger than {MAX_PEM_SIZE // (1024 * 1024)} MiB, too large for a PEM key, "
            "certificate or CA bundle"
        )
    return data


def _load_key(path: str) -> PrivateKeyTypes:
    data = _read(path)
    if b"-----BEGIN" not in data:
        raise TLSConfigError(f"{path} is not PEM: expected a '-----BEGIN ... PRIVATE KEY-----' block")
    try:
        return serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TLSConfigError(
            f"{path} is encrypted with a passphrase; pingproto needs an unencrypted key"
        ) from None
    except Exception:
        if b"-----BEGIN CERTIFICATE-----" in data and b"PRIVATE KEY-----" not in data:
            raise TLSConfigError(
                f"{path} holds a certificate, not a private key: are the key and the certificate swapped?"
            ) from None
        raise TLSConfigError(f"{path} does not hold a PEM private key") from None


# The curves of pingproto's TLS policy (pingproto.tls.GROUPS, less X25519,
# which only exchanges keys), by the names cryptography gives them.
_CURVES = ("secp256r1", "secp384r1")
_KEYS_SERVED = "give an RSA key of 2048 bits or more, or an EC key on P-256 or P-384"


def _check_key(path: str, key: PrivateKeyTypes) -> None:
    """
    Refuse a key outside the TLS policy, which some or all clients refuse.

    A DSA key loads and matches its certificate, but TLS 1.3 has no DSA
    signatures and the TLS 1.2 suites allowed are all ECDHE-RSA or
    ECDHE-ECDSA: every handshake would fail with "no shared cipher".  An
    EC key on a curve outside the policy fails the same way with clients
    that offer only the policy's curves (TLS 1.2 wants the certificate's
    curve among the client's), Chrome among them, which also takes no
    P-521 signature in TLS 1.3; OpenSSL itself refuses RSA under 2048 bits.
    Ed25519 and Ed448 keys load and OpenSSL serves them, but browsers
    offer neither signature (Chromium fails with
    ERR_SSL_VERSION_OR_CIPHER_MISMATCH): only OpenSSL-based clients could
    connect, so they are left out with the rest.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise TLSConfigError(f"{path} holds a {key.key_size}-bit RSA key, too small: {_KEYS_SERVED}")
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name not in _CURVES:
            raise TLSConfigError(
                f"{path} holds an EC key on {key.curve.name}, a curve outside the TLS policy: {_KEYS_SERVED}"
            )
    else:
        # Ed25519, Ed448, X25519 and X448 keys: each name takes "an".
        what = "a DSA key"
        if not isinstance(key, dsa.DSAPrivateKey):
            what = f"an {type(key).__name__.removesuffix('PrivateKey')} key"
        raise TLSConfigError(f"{path} holds {what}, which the TLS policy does not serve: {_KEYS_SERVED}")


def _check_rsa_pss(files: TLSFiles, leaf: x509.Certificate) -> None:
    """
    Refuse a certificate for an RSA-PSS key (id-RSASSA-PSS), which
    OpenSSL refused with no more than "no certificate assigned".

    cryptography reads an RSA-PSS key as a plain RSA key, and OpenSSL
    keeps a context's key and certificate by their type: given the plain
    RSA key and the RSA-PSS certificate, it finds no certificate beside
    the key.  Serving one would take the key's PEM past cryptography; but
    clients need not take it either: the CA/Browser Forum's Baseline
    Requirements (7.1.3.1.1) forbid such certificates, browsers have long
    refused them, and a plain RSA key signs with PSS in TLS 1.3 all the
    same.
    """
    if leaf.public_key_algorithm_oid == x509.oid.PublicKeyAlgorithmOID.RSASSA_PSS:
        raise TLSConfigError(
            f"{files.key} is an RSA-PSS key (its certificate in {files.cert} says so), which the TLS policy "
            f"does not serve: {_KEYS_SERVED} (a plain RSA key signs with PSS in TLS 1.3 all the same)"
        )


# The PEM blocks cryptography reads as certificates.
_CERTIFICATE_BEGINS = (b"-----BEGIN CERTIFICATE-----", b"-----BEGIN X509 CERTIFICATE-----")


def load_certificates(path: str) -> list[x509.Certificate]:
    """
    The certificates in the PEM file at C{path}, in order; raise
    L{TLSConfigError} saying what is wrong with the file otherwise.

    cryptography skips a block that begins and never ends: a fullchain.pem
    cut off in the intermediate (half written, or copied short) read as
    the leaf alone, which was served, and no client could verify it.  So
    every block begun must have been read.
    """
    data = _read(path)
    if b"-----BEGIN CERTIFICATE-----" not in data:
        if b"PRIVATE KEY-----" in data:
            raise TLSConfigError(f"{path} holds a private key, not a certificate")
        raise TLSConfigError(f"{path} is not PEM: expected '-----BEGIN CERTIFICATE-----' blocks")
    try:
        with catch_warnings():
            # A CA bundle, the system's above all (as ca.pem or --ca),
            # holds old roots with serial numbers RFC 5280 forbids, and
            # cryptography printed a deprecation warning on stderr for
            # them: nothing the user could act on.
            simplefilter("ignore", CryptographyDeprecationWarning)
            certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise TLSConfigError(f"{path} holds a damaged PEM certificate") from None
    if len(certs) < sum(data.count(begin) for begin in _CERTIFICATE_BEGINS):
        raise TLSConfigError(
            f"{path} holds a damaged or incomplete PEM certificate (a BEGIN without its END: half written?)"
        )
    return certs


def _same_public_key(key: PrivateKeyTypes, cert: x509.Certificate) -> bool:
    def der(public: PublicKeyTypes) -> bytes:
        return public.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )

    return der(key.public_key()) == der(cert.public_key())


def _check_chain(files: TLSFiles, certs: Sequence[x509.Certificate], in_cert_file: int) -> None:
    """
    Each certificate must be issued by the one after it, as TLS sends them.

    A break is reported in the file that holds the certificate after it,
    the one that should have issued the other: the first C{in_cert_file}
    certificates are in the certificate file, the rest in the chain file.
    """
    for index, (child, parent) in enumerate(zip(certs, certs[1:]), 1):
        if _issued_by(child, parent):
            continue
        in_chain_file = index >= in_cert_file
        where = str(files.chain) if in_chain_file else files.cert
        if child == parent:
            # certbot's fullchain.pem as tls.cert, and its chain.pem as
            # ca.pem: the intermediate twice.
            if index == in_cert_file:
                raise TLSConfigError(
                    f"wrong chain: {_name(child)} is both in {files.cert} and first in {files.chain}: "
                    f"{os.path.basename(files.cert)} holds the chain already, so leave "
                    f"{os.path.basename(str(files.chain))} out"
                )
            raise TLSConfigError(f"wrong chain in {where}: {_name(child)} comes twice in a row: leave one out")
        issuer = next((cert for cert in certs[index + 1 :] if _issued_by(child, cert)), None)
        if issuer is not None:
            raise TLSConfigError(
                f"wrong order in {where}: {_name(child)} was issued by {_name(issuer)}, "
                "which must come right after it"
            )
        raise TLSConfigError(
            f"wrong chain in {where}: {_name(child)} was not issued by {_name(parent)}, the certificate "
            f"after it, but by {_display(child.issuer)}, which does not follow it"
            + (
                f" ({os.path.basename(where)} holds the certificates from it up to a root, in order: "
                "not a bundle of CAs)"
                if in_chain_file
                else ""
            )
        )


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _name(cert: x509.Certificate) -> str:
    """
    C{cert} in a message: its common name; else, as a server's certificate
    may have no name but its subject alternative names (Let's Encrypt's
    recent ones, an IP address's), the first of those; else its whole
    name, or its serial if it has none.
    """
    if not cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
        try:
            alternatives = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except Exception:
            # None, or malformed (twice, or of a kind cryptography cannot
            # read): the name is for a message, which must not fail.
            alternatives = None
        if alternatives is not None:
            names = [*alternatives.get_values_for_type(x509.DNSName)]
            names += [str(ip) for ip in alternatives.get_values_for_type(x509.IPAddress)]
            if names:
                return repr(names[0])
    # The serial only when the name is empty: reading an old root's
    # negative serial makes cryptography warn.
    return _display(cert.subject) if len(cert.subject) else repr(f"serial {cert.serial_number}")


def describe(cert: x509.Certificate) -> str:
    """
    C{cert} in a log line: its name, and when it is valid, which tells
    one renewal from the one before.
    """
    return (
        f"{_name(cert)}, valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} "
        f"to {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )


def _display(name: x509.Name) -> str:
    """
    C{name} in a log line: its common name, or the whole of it.
    """
    names = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    if names:
        return repr(names[0].value)
    return repr(name.rfc4514_string() or "an empty name")


def _what(files: TLSFiles, cert: x509.Certificate, leaf: x509.Certificate) -> str:
    return f"certificate {_name(cert)} in {_where(files, cert, leaf)}"


def _where(files: TLSFiles, cert: x509.Certificate, leaf: x509.Certificate) -> str:
    if cert is leaf or files.chain is None:
        return files.cert
    return f"{files.cert} + {files.chain}"
