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
