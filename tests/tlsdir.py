"""
TLS directories made by the tests, with certificates from C{trustme}.
"""

from __future__ import annotations

import datetime
import os

import trustme


def write_tls_dir(
    directory: str,
    ca: trustme.CA | None = None,
    *,
    layout: str = "pingproto",
    intermediate: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    identities: tuple[str, ...] = ("localhost", "127.0.0.1"),
) -> trustme.CA:
    """
    Fill C{directory} with a key and certificate for C{identities} issued by
    C{ca} (a new one if not given), and return the root CA.

    C{layout} is C{"pingproto"} (tls.key, tls.cert, ca.pem holding the
    chain), C{"bundled"} (tls.cert holding the chain, no ca.pem) or
    C{"letsencrypt"} (privkey.pem, fullchain.pem).
    """
    root = ca or trustme.CA()
    issuer = root.create_child_ca() if intermediate else root
    leaf = issuer.issue_cert(*identities, not_before=not_before, not_after=not_after)
    os.makedirs(directory, exist_ok=True)
    key = leaf.private_key_pem.bytes()
    cert = leaf.cert_chain_pems[0].bytes()
    # The chain sent after the leaf: intermediates, then the root.
    chain = b"".join(p.bytes() for p in leaf.cert_chain_pems[1:]) or root.cert_pem.bytes()
    if intermediate:
        chain += root.cert_pem.bytes()
    files = {
        "pingproto": {"tls.key": key, "tls.cert": cert, "ca.pem": chain},
        "bundled": {"tls.key": key, "tls.cert": cert + chain},
        "letsencrypt": {"privkey.pem": key, "fullchain.pem": cert + chain},
    }[layout]
    for name, data in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(data)
    return root


def write_ca_file(path: str, ca: trustme.CA) -> str:
    """
    Write the root certificate a client should trust.
    """
    ca.cert_pem.write_to_path(path)
    return path


def write_strict_tls_dir(directory: str, ca: trustme.CA, days: int = 90) -> None:
    """
    A key and certificate that strict validators (cryptography's, which
    sslyze uses) accept, which trustme's are not: its leaves mark the
    subjectAltName critical beside a non-empty subject.  Issued by C{ca},
    for localhost and 127.0.0.1, valid for C{days}.
    """
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    issuer_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    issuer = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key()),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(issuer_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "tls.key"), "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(os.path.join(directory, "tls.cert"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(directory, "ca.pem"), "wb") as f:
        f.write(ca.cert_pem.bytes())
