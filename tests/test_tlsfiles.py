"""
Tests for L{pingproto.tlsfiles}: every broken TLS directory is refused at
start-up with a message naming the file and the problem, and every good
layout loads.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import shutil
import subprocess
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.x509.oid import NameOID
from twisted.trial.unittest import SkipTest, SynchronousTestCase

from pingproto.tlsfiles import (
    EXPIRY_WARNING,
    MAX_PEM_SIZE,
    TLSConfigError,
    TLSMaterial,
    expiry_warnings,
    find_tls_files,
    load_certificates,
    load_tls_dir,
)
from tests.tlsdir import write_tls_dir

UTC = datetime.timezone.utc
# A fixed "now" for the validity checks, so that no test depends on the date.
NOW = datetime.datetime(2031, 3, 15, 12, 0, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def _der(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _certs(path: str) -> list[x509.Certificate]:
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificates(f.read())


def _write(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


class _Helpers(SynchronousTestCase):
    def tls_dir(self, **kwargs: object) -> str:
        directory = self.mktemp()
        write_tls_dir(directory, **kwargs)  # type: ignore[arg-type]
        return directory

    def assertRefused(self, directory: str, *fragments: str) -> str:
        """
        Loading C{directory} raises L{TLSConfigError} with all of
        C{fragments} in its message; return the message.
        """
        e = self.assertRaises(TLSConfigError, load_tls_dir, directory, now=NOW)
        message = str(e)
        for fragment in fragments:
            self.assertIn(fragment, message)
        return message


class MissingFilesTests(_Helpers):
    """
    Directories without a usable pair of key and certificate are refused.
    """

    def test_directory_missing(self) -> None:
        """
        A path that does not exist is reported as such, by name.
        """
        missing = self.mktemp()
        message = self.assertRefused(missing, missing, "does not exist or is not a directory")
        self.assertEqual(
            message, f"TLS directory {missing} does not exist or is not a directory"
        )

    def test_path_is_a_file(self) -> None:
        """
        A regular file given as the TLS directory is refused the same way.
        """
        path = self.mktemp()
        _write(path, b"not a directory")
        self.assertRefused(path, path, "does not exist or is not a directory")

    def test_empty_directory(self) -> None:
        """
        An empty directory is refused with the two layouts it could hold.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        self.assertRefused(
            directory,
            directory,
            "holds neither tls.key + tls.cert (+ ca.pem) nor privkey.pem + fullchain.pem",
        )

    def test_key_without_cert(self) -> None:
        """
        tls.key without tls.cert names tls.cert as missing.
        """
        directory = self.tls_dir()
        os.remove(os.path.join(directory, "tls.cert"))
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{os.path.join(directory, 'tls.cert')} is missing (found tls.key without it)",
        )

    def test_cert_without_key(self) -> None:
        """
        tls.cert without tls.key names tls.key as missing.
        """
        directory = self.tls_dir()
        os.remove(os.path.join(directory, "tls.key"))
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{os.path.join(directory, 'tls.key')} is missing (found tls.cert without it)",
        )

    def test_letsencrypt_key_without_fullchain(self) -> None:
        """
        privkey.pem without fullchain.pem names fullchain.pem as missing.
        """
        directory = self.tls_dir(layout="letsencrypt")
        os.remove(os.path.join(directory, "fullchain.pem"))
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{os.path.join(directory, 'fullchain.pem')} is missing "
            "(found privkey.pem without it)",
        )

    def test_unreadable_cert(self) -> None:
        """
        A tls.cert that cannot be read (here: a directory) is reported as
        "cannot read" with its path and the system's reason.
        """
        directory = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        os.remove(cert)
        os.mkdir(cert)
        message = self.assertRefused(directory)
        self.assertEqual(message, f"cannot read {cert}: Is a directory")

    def test_unreadable_key(self) -> None:
        """
        A tls.key that cannot be read is reported as "cannot read" with its
        path.
        """
        directory = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        os.remove(key)
        os.mkdir(key)
        message = self.assertRefused(directory)
        self.assertEqual(message, f"cannot read {key}: Is a directory")

    def test_unreadable_chain(self) -> None:
        """
        An unreadable ca.pem is reported as "cannot read" with its path.
        """
        directory = self.tls_dir()
        chain = os.path.join(directory, "ca.pem")
        os.remove(chain)
        os.mkdir(chain)
        message = self.assertRefused(directory)
        self.assertEqual(message, f"cannot read {chain}: Is a directory")


class BadContentTests(_Helpers):
    """
    Files that are present but hold the wrong thing are refused.
    """

    def test_key_not_pem(self) -> None:
        """
        A tls.key of random bytes is reported as not PEM.
        """
        directory = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        _write(key, b"\x00\x9f\x13garbage\xff" * 10)
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{key} is not PEM: expected a '-----BEGIN ... PRIVATE KEY-----' block",
        )

    def test_cert_not_pem(self) -> None:
        """
        A tls.cert of random bytes is reported as not PEM.
        """
        directory = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        _write(cert, b"\x30\x82\x01\x0a garbage" * 10)
        message = self.assertRefused(directory)
        self.assertEqual(
            message, f"{cert} is not PEM: expected '-----BEGIN CERTIFICATE-----' blocks"
        )

    def test_chain_not_pem(self) -> None:
        """
        A ca.pem of random bytes is reported as not PEM, naming ca.pem.
        """
        directory = self.tls_dir()
        chain = os.path.join(directory, "ca.pem")
        _write(chain, b"hello world\n")
        self.assertRefused(directory, chain, "is not PEM")

    def test_empty_key(self) -> None:
        """
        An empty tls.key is reported as not PEM.
        """
        directory = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        _write(key, b"")
        self.assertRefused(directory, key, "is not PEM")

    def test_damaged_key(self) -> None:
        """
        A PEM block whose body is not a key is reported as not holding a
        PEM private key.
        """
        directory = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        _write(key, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        message = self.assertRefused(directory)
        self.assertEqual(message, f"{key} does not hold a PEM private key")

    def test_damaged_cert(self) -> None:
        """
        A certificate PEM with a line of its body cut out is reported as a
        damaged PEM certificate.
        """
        directory = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        lines = _read(cert).splitlines(keepends=True)
        self.assertGreater(len(lines), 4)
        _write(cert, b"".join(lines[:2] + lines[3:]))
        message = self.assertRefused(directory)
        self.assertEqual(message, f"{cert} holds a damaged PEM certificate")

    def test_damaged_cert_bad_base64(self) -> None:
        """
        A certificate PEM whose body is not base64 is reported as damaged.
        """
        directory = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        _write(
            cert,
            b"-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n",
        )
        self.assertRefused(directory, cert, "holds a damaged PEM certificate")

    def test_cut_off_in_the_chain(self) -> None:
        """
        A file of certificates cut off after the first (the leaf whole, the
        next one begun and never ended: half written) is refused naming
        it, for tls.cert holding the chain, fullchain.pem and ca.pem; the
        leaf alone loaded, with no chain, and no client could verify it.
        """
        end = b"-----END CERTIFICATE-----"
        for layout, name in (("bundled", "tls.cert"), ("letsencrypt", "fullchain.pem"), ("pingproto", "ca.pem")):
            directory = self.tls_dir(layout=layout, intermediate=True)
            path = os.path.join(directory, name)
            data = _read(path)
            _write(path, data[: data.index(end) + len(end) + 200])
            message = self.assertRefused(directory)
            self.assertEqual(
                message,
                f"{path} holds a damaged or incomplete PEM certificate (a BEGIN without its END: half written?)",
            )

    def test_bundle_with_negative_serial_quiet(self) -> None:
        """
        A CA file holding a certificate whose serial number is negative, as
        old roots of the system's CA bundle have, loads without the
        deprecation warning cryptography printed on stderr for it (given
        as --ca or ca.pem).
        """
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Old Root")])
        der = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(128)
            .not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=UTC))
            .not_valid_after(datetime.datetime(3000, 1, 1, tzinfo=UTC))
            .sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.DER)
        )
        # The serial, 128 (02 02 00 80), made -129 (02 02 ff 7f): the
        # signature no longer matches, which loading does not check.
        negative = der.replace(b"\x02\x02\x00\x80", b"\x02\x02\xff\x7f", 1)
        self.assertNotEqual(negative, der)
        pem = x509.load_der_x509_certificate(negative).public_bytes(serialization.Encoding.PEM)
        # The warning of the load just above.
        self.assertEqual(len(self.flushWarnings()), 1)
        path = self.mktemp()
        _write(path, pem + _read(os.path.join(self.tls_dir(), "ca.pem")))
        self.assertEqual(len(load_certificates(path)), 2)
        self.assertEqual(self.flushWarnings(), [])

    def test_encrypted_key(self) -> None:
        """
        A key protected by a passphrase is refused with a message saying so.
        """
        directory = self.tls_dir()
        keyPath = os.path.join(directory, "tls.key")
        key = serialization.load_pem_private_key(_read(keyPath), password=None)
        _write(
            keyPath,
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"correct horse"),
            ),
        )
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{keyPath} is encrypted with a passphrase; pingproto needs an unencrypted key",
        )

    def test_key_does_not_match(self) -> None:
        """
        A key from another directory is refused as not matching the
        certificate, naming both files.
        """
        directory = self.tls_dir()
        other = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        _write(key, _read(os.path.join(other, "tls.key")))
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{key} does not match the certificate in "
            f"{os.path.join(directory, 'tls.cert')} (their public keys differ)",
        )

    def test_key_and_cert_swapped(self) -> None:
        """
        A tls.key holding a certificate says so, and asks whether the two
        files were swapped (it said only "does not hold a PEM private
        key"); a tls.cert holding a key says that.
        """
        directory = self.tls_dir()
        key = os.path.join(directory, "tls.key")
        cert = os.path.join(directory, "tls.cert")
        keyData, certData = _read(key), _read(cert)
        _write(key, certData)
        _write(cert, keyData)
        message = self.assertRefused(directory)
        self.assertEqual(
            message, f"{key} holds a certificate, not a private key: are the key and the certificate swapped?"
        )
        _write(key, keyData)
        message = self.assertRefused(directory)
        self.assertEqual(message, f"{cert} holds a private key, not a certificate")


class SpecialFileTests(_Helpers):
    """
    Only regular files are read, and only so much of them: a FIFO hung
    start-up, a link to /dev/zero ran out of memory, and a broken link
    passed for an absent file.
    """

    def test_fifo(self) -> None:
        """
        A FIFO in place of any of the three files is refused at once,
        naming it, without waiting for a writer (start-up hung in open()).
        """
        for name in ("tls.key", "tls.cert", "ca.pem"):
            directory = self.tls_dir()
            path = os.path.join(directory, name)
            os.remove(path)
            os.mkfifo(path)
            message = self.assertRefused(directory)
            self.assertEqual(message, f"cannot read {path}: it is a FIFO, not a regular file")

    def test_device(self) -> None:
        """
        A symbolic link to a device, /dev/zero (read without end: a
        MemoryError) or /dev/null, is refused naming the link.
        """
        for name, device in (("ca.pem", "/dev/zero"), ("tls.key", "/dev/zero"), ("tls.cert", "/dev/null")):
            directory = self.tls_dir()
            path = os.path.join(directory, name)
            os.remove(path)
            os.symlink(device, path)
            message = self.assertRefused(directory)
            self.assertEqual(message, f"cannot read {path}: it is a character device, not a regular file")

    def test_too_large(self) -> None:
        """
        A file larger than 1 MiB is refused naming it and the limit; one
        of exactly 1 MiB (a good chain and comment lines, which PEM
        allows between blocks) loads.
        """
        directory = self.tls_dir()
        chain = os.path.join(directory, "ca.pem")
        data = _read(chain)
        padding = b"# " + b"x" * 1021 + b"\n"
        padded = data + padding * ((MAX_PEM_SIZE - len(data)) // len(padding))
        padded += b"#" * (MAX_PEM_SIZE - len(padded) - 1) + b"\n"
        self.assertEqual(len(padded), MAX_PEM_SIZE)
        _write(chain, padded)
        self.assertEqual(len(load_tls_dir(directory, now=NOW).chain), 1)
        _write(chain, padded + b"\n")
        message = self.assertRefused(directory)
        self.assertEqual(
            message, f"{chain} is larger than 1 MiB, too large for a PEM key, certificate or CA bundle"
        )

    def test_broken_links(self) -> None:
        """
        A symbolic link that leads nowhere, dangling or in a loop, is
        refused naming it as a broken link, for any of the three files: a
        broken ca.pem let the server start without its chain, and a broken
        tls.key was said to be missing.
        """
        for name in ("tls.key", "tls.cert", "ca.pem"):
            directory = self.tls_dir()
            path = os.path.join(directory, name)
            os.remove(path)
            nowhere = os.path.join(directory, "nowhere")
            os.symlink(nowhere, path)
            message = self.assertRefused(directory)
            self.assertEqual(message, f"{path} is a broken symbolic link (to {nowhere}): No such file or directory")
            os.remove(path)
            os.symlink(name, path)
            message = self.assertRefused(directory)
            self.assertEqual(message, f"{path} is a broken symbolic link (to {name}): Too many levels of symbolic links")

    def test_links_followed(self) -> None:
        """
        Symbolic links to regular files load, as certbot's live directory
        holds them (relative links into ../archive).
        """
        directory = self.tls_dir(layout="letsencrypt")
        archive = self.mktemp()
        os.makedirs(archive)
        for name in ("privkey.pem", "fullchain.pem"):
            os.rename(os.path.join(directory, name), os.path.join(archive, name))
            os.symlink(os.path.relpath(os.path.join(archive, name), directory), os.path.join(directory, name))
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(len(material.chain), 1)


def _without_dac_override() -> None:
    """
    In the child, before it runs: if root, give up the capabilities that
    let root read and search what its modes forbid, as the user of twistd
    -u has none of them.  (PR_CAPBSET_DROP: the program run next gets no
    capability outside the bounding set.)
    """
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "PR_CAPBSET_DROP")


_LOAD_IN_CHILD = """
import sys
from pingproto.tlsfiles import TLSConfigError, load_tls_dir
try:
    load_tls_dir(sys.argv[1])
except TLSConfigError as e:
    print(e)
else:
    print("loaded")
"""


class NoPermissionTests(_Helpers):
    """
    Files the server may not reach are said to be so: the TLS directory
    under certbot's 0700 live/, or links into its archive/, read by twistd
    -u's user, were reported as a directory that does not exist, as a
    directory holding no key, and as a broken link.  Loaded in a child
    without root's power over modes (L{_without_dac_override}).
    """

    def load_unprivileged(self, directory: str) -> str:
        source = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        try:
            done = subprocess.run(
                [sys.executable, "-c", _LOAD_IN_CHILD, directory],
                capture_output=True,
                text=True,
                timeout=60,
                preexec_fn=_without_dac_override,
                env={**os.environ, "PYTHONPATH": source},
            )
        except subprocess.SubprocessError as e:
            if os.geteuid() == 0:
                raise SkipTest(f"cannot drop root's CAP_DAC_OVERRIDE here: {e}")
            raise
        self.assertEqual(done.stderr, "")
        return done.stdout.strip()

    def locked(self, path: str) -> None:
        """
        Take every permission from C{path}, and give them back at the end,
        so that the test's directory can be removed.
        """
        os.chmod(path, 0)
        self.addCleanup(os.chmod, path, 0o700)

    def test_directory_not_reachable(self) -> None:
        """
        A TLS directory inside one the server cannot search is one it
        cannot read, not one that does not exist.
        """
        parent = self.mktemp()
        os.mkdir(parent)
        directory = os.path.join(parent, "tls")
        write_tls_dir(directory)
        self.locked(parent)
        self.assertEqual(
            self.load_unprivileged(directory), f"cannot read TLS directory {directory}: Permission denied"
        )

    def test_files_not_reachable(self) -> None:
        """
        A TLS directory the server may see, and list, but not search (another
        user's 0700 directory) is one it cannot read, rather than one
        holding no key; a key it cannot read is named.
        """
        directory = self.tls_dir()
        os.chmod(directory, 0o600)
        self.addCleanup(os.chmod, directory, 0o700)
        self.assertEqual(
            self.load_unprivileged(directory), f"cannot read TLS directory {directory}: Permission denied"
        )
        os.chmod(directory, 0o700)
        key = os.path.join(directory, "tls.key")
        self.locked(key)
        self.assertEqual(self.load_unprivileged(directory), f"cannot read {key}: Permission denied")

    def test_link_not_reachable(self) -> None:
        """
        certbot's layout: live/ links into archive/.  A link the server
        cannot follow for want of permission is no broken link.
        """
        top = self.mktemp()
        os.mkdir(top)
        archive, live = os.path.join(top, "archive"), os.path.join(top, "live")
        write_tls_dir(archive)
        os.mkdir(live)
        for name in ("tls.key", "tls.cert", "ca.pem"):
            os.symlink(os.path.join("..", "archive", name), os.path.join(live, name))
        self.assertEqual(self.load_unprivileged(live), "loaded")
        self.locked(archive)
        self.assertEqual(
            self.load_unprivileged(live),
            f"cannot read {os.path.join(live, 'tls.key')} (a symbolic link to ../archive/tls.key): Permission denied",
        )


class ValidityTests(_Helpers):
    """
    Certificates outside their validity period are refused; those about to
    leave it are loaded with a warning.
    """

    def test_short_lived_warned_in_its_last_third(self) -> None:
        """
        A certificate of six days (Let's Encrypt's short-lived ones) is
        about to expire in the last third of its life, not whenever it has
        under 14 days left, which is always: a warning at every start,
        reload and day would be a false alarm.
        """
        directory = self.tls_dir(not_before=NOW - DAY, not_after=NOW + 5 * DAY)
        self.assertEqual(load_tls_dir(directory, now=NOW).warnings, ())
        [warning] = load_tls_dir(directory, now=NOW + 4 * DAY - datetime.timedelta(hours=1)).warnings
        self.assertIn("expires in 1 day 1 hour, on", warning)

    def test_expired(self) -> None:
        """
        A leaf that expired before now is refused, naming tls.cert and the
        expiry date.
        """
        directory = self.tls_dir(not_before=NOW - 90 * DAY, not_after=NOW - DAY)
        cert = os.path.join(directory, "tls.cert")
        message = self.assertRefused(directory, cert, "expired on 2031-03-14 12:00 UTC")
        self.assertTrue(message.startswith("certificate "), message)

    def test_expired_at_now(self) -> None:
        """
        A certificate whose last valid moment is exactly now counts as
        expired.
        """
        directory = self.tls_dir(not_before=NOW - 90 * DAY, not_after=NOW)
        self.assertRefused(directory, "expired on 2031-03-15 12:00 UTC")

    def test_expired_letsencrypt(self) -> None:
        """
        In the certbot layout an expired leaf names fullchain.pem.
        """
        directory = self.tls_dir(
            layout="letsencrypt", not_before=NOW - 90 * DAY, not_after=NOW - DAY
        )
        self.assertRefused(directory, os.path.join(directory, "fullchain.pem"), "expired on")

    def test_expired_by_the_real_clock(self) -> None:
        """
        Without C{now}, the current time is used: a certificate that ran
        out in 2002 is refused.
        """
        directory = self.tls_dir(
            not_before=datetime.datetime(2001, 1, 1, tzinfo=UTC),
            not_after=datetime.datetime(2002, 1, 1, tzinfo=UTC),
        )
        e = self.assertRaises(TLSConfigError, load_tls_dir, directory)
        self.assertIn("expired on 2002-01-01 00:00 UTC", str(e))

    def test_not_yet_valid(self) -> None:
        """
        A leaf whose validity starts tomorrow is refused, naming tls.cert
        and the start date.
        """
        directory = self.tls_dir(not_before=NOW + DAY, not_after=NOW + 90 * DAY)
        self.assertRefused(
            directory,
            os.path.join(directory, "tls.cert"),
            "is not valid until 2031-03-16 12:00 UTC",
        )

    def test_valid_from_now(self) -> None:
        """
        A leaf whose validity starts exactly now is valid: it is loaded
        without a word.
        """
        directory = self.tls_dir(not_before=NOW, not_after=NOW + 90 * DAY)
        self.assertEqual(load_tls_dir(directory, now=NOW).warnings, ())

    def test_expired_ca(self) -> None:
        """
        A CA in the chain that has expired is refused like a leaf, naming
        the file it is in: tls.cert + ca.pem, or tls.cert alone where the
        chain is bundled after the leaf.  (trustme's CAs are valid from
        2000-01-01 to 3000-01-01; the leaf here until 3001.)
        """
        now = datetime.datetime(3000, 6, 1, tzinfo=UTC)
        leaf = {"not_before": datetime.datetime(2999, 1, 1, tzinfo=UTC),
                "not_after": datetime.datetime(3001, 1, 1, tzinfo=UTC)}
        for layout, files in (("pingproto", ("tls.cert", "ca.pem")), ("bundled", ("tls.cert",))):
            directory = self.tls_dir(layout=layout, **leaf)
            where = " + ".join(os.path.join(directory, name) for name in files)
            e = self.assertRaises(TLSConfigError, load_tls_dir, directory, now=now)
            self.assertIn(f" in {where} expired on 3000-01-01 00:00 UTC", str(e))

    def test_intermediate_not_yet_valid(self) -> None:
        """
        An intermediate CA not valid yet is refused, named, and said to be
        in the file that holds the chain: tls.cert + ca.pem, or
        fullchain.pem alone for certbot's layout.  (trustme's CAs are valid
        from 2000-01-01; the leaf here from 1999.)
        """
        now = datetime.datetime(1999, 6, 1, tzinfo=UTC)
        leaf = {"not_before": datetime.datetime(1999, 1, 1, tzinfo=UTC),
                "not_after": datetime.datetime(2001, 1, 1, tzinfo=UTC)}
        for layout, files in (("pingproto", ("tls.cert", "ca.pem")), ("letsencrypt", ("fullchain.pem",))):
            directory = self.tls_dir(layout=layout, intermediate=True, **leaf)
            where = " + ".join(os.path.join(directory, name) for name in files)
            # The chain file holds the intermediate, then the root.
            intermediate = _certs(os.path.join(directory, files[-1]))[-2]
            e = self.assertRaises(TLSConfigError, load_tls_dir, directory, now=now)
            self.assertEqual(
                str(e),
                f"certificate {intermediate.subject.rfc4514_string()!r} in {where} "
                "is not valid until 2000-01-01 00:00 UTC",
            )

    def test_expiring_soon_warns(self) -> None:
        """
        A leaf with 10 days left loads, with one warning saying it expires
        in 10 days and naming tls.cert.
        """
        directory = self.tls_dir(not_before=NOW - 80 * DAY, not_after=NOW + 10 * DAY)
        material = load_tls_dir(directory, now=NOW)
        self.assertIsInstance(material, TLSMaterial)
        self.assertEqual(len(material.warnings), 1)
        [warning] = material.warnings
        self.assertIn("expires in 10 days, on 2031-03-25 12:00 UTC", warning)
        self.assertIn(os.path.join(directory, "tls.cert"), warning)
        self.assertEqual(material.not_after, NOW + 10 * DAY)

    def test_just_inside_warning_period(self) -> None:
        """
        A leaf with one second less than 14 days left is warned about.
        """
        left = EXPIRY_WARNING - datetime.timedelta(seconds=1)
        directory = self.tls_dir(not_before=NOW - 80 * DAY, not_after=NOW + left)
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(len(material.warnings), 1)
        self.assertIn("expires in 13 days 23 hours, on", material.warnings[0])

    def test_time_left_in_days_and_hours(self) -> None:
        """
        The time left is said in days and hours, one of each in the
        singular, under an hour as that: 2 days 23 hours was said as
        "2 days".
        """
        for left, said in (
            (2 * DAY + datetime.timedelta(hours=23, minutes=59), "2 days 23 hours"),
            (DAY + datetime.timedelta(minutes=59), "1 day"),
            (datetime.timedelta(hours=1), "1 hour"),
            (datetime.timedelta(minutes=59), "under an hour"),
        ):
            directory = self.tls_dir(not_before=NOW - 80 * DAY, not_after=NOW + left)
            [warning] = load_tls_dir(directory, now=NOW).warnings
            self.assertIn(f" expires in {said}, on ", warning)

    def test_exactly_fourteen_days(self) -> None:
        """
        A leaf with exactly 14 days left is not warned about.
        """
        self.assertEqual(EXPIRY_WARNING, 14 * DAY)
        directory = self.tls_dir(not_before=NOW - 80 * DAY, not_after=NOW + 14 * DAY)
        self.assertEqual(load_tls_dir(directory, now=NOW).warnings, ())

    def test_twenty_days_no_warning(self) -> None:
        """
        A leaf with 20 days left loads without any warning.
        """
        directory = self.tls_dir(not_before=NOW - 70 * DAY, not_after=NOW + 20 * DAY)
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(material.warnings, ())
        self.assertEqual(material.not_after, NOW + 20 * DAY)


class ChainSentTests(_Helpers):
    """
    A certificate issued by a CA and sent without its chain loads with a
    warning: clients that do not hold its issuer cannot verify it.
    """

    def test_leaf_alone_warns(self) -> None:
        """
        A tls.cert holding only a certificate issued by a CA, with no
        ca.pem (cert.pem given where fullchain.pem belongs), loads with one
        warning naming tls.cert and the issuer, and saying what to do; so
        does a fullchain.pem holding the leaf alone.  It loaded without a
        word, and clients failed with "unable to get local issuer
        certificate".
        """
        directory = self.tls_dir(intermediate=True)
        os.remove(os.path.join(directory, "ca.pem"))
        cert = os.path.join(directory, "tls.cert")
        issuer = repr(_certs(cert)[0].issuer.rfc4514_string())
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(material.chain, ())
        self.assertEqual(
            material.warnings,
            (
                f"only the server's certificate is sent, {cert} holding no chain: it was issued by {issuer}, "
                f"and clients that do not hold {issuer} cannot verify it "
                '("unable to get local issuer certificate"): '
                "give fullchain.pem as tls.cert rather than cert.pem, or put the chain in ca.pem",
            ),
        )
        directory = self.tls_dir(layout="letsencrypt")
        fullchain = os.path.join(directory, "fullchain.pem")
        _write(fullchain, _certs(fullchain)[0].public_bytes(serialization.Encoding.PEM))
        [warning] = load_tls_dir(directory, now=NOW).warnings
        self.assertTrue(warning.startswith(f"only the server's certificate is sent, {fullchain} holding no chain"))
        self.assertTrue(warning.endswith(": fullchain.pem should hold the chain after it"), warning)

    def test_self_issued_or_chained_no_warning(self) -> None:
        """
        A self-signed certificate alone, which has no chain to send, loads
        without a warning; so does a certificate with its chain, in
        ca.pem or after it in tls.cert.
        """
        directory = self_signed_dir(self.mktemp(), ec.generate_private_key(ec.SECP256R1()))
        self.assertEqual(load_tls_dir(directory, now=NOW).warnings, ())
        for layout in ("pingproto", "bundled", "letsencrypt"):
            directory = self.tls_dir(layout=layout, intermediate=True)
            self.assertEqual(load_tls_dir(directory, now=NOW).warnings, (), layout)


def _issue(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: str, issuer_key: ec.EllipticCurvePrivateKey,
    not_after: datetime.datetime, ca: bool = True,
) -> bytes:
    """
    A certificate for C{subject}'s C{key}, signed by C{issuer_key} in
    C{issuer}'s name, valid from 2000 to C{not_after}, as PEM.
    """
    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    builder = (
        x509.CertificateBuilder()
        .subject_name(name(subject))
        .issuer_name(name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class ChainEndTests(_Helpers):
    """
    A chain may end in certificates out of date that clients stop before
    (an expired cross-signed root), which is served with a warning; a
    certificate out of date that clients need is refused.
    """

    def write(self, intermediate_until: datetime.datetime, *chain_end: bytes) -> str:
        """
        A directory whose tls.cert, for localhost, was issued by 'Issuing
        CA' (valid until C{intermediate_until}), issued by 'Root X', and
        whose ca.pem holds the issuing CA then C{chain_end}.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        _write(
            os.path.join(directory, "tls.key"),
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        far = datetime.datetime(2999, 1, 1, tzinfo=UTC)
        _write(os.path.join(directory, "tls.cert"), _issue("localhost", leaf_key, "Issuing CA", self.issuing, far, ca=False))
        _write(
            os.path.join(directory, "ca.pem"),
            _issue("Issuing CA", self.issuing, "Root X", self.root, intermediate_until) + b"".join(chain_end),
        )
        return directory

    def setUp(self) -> None:
        self.issuing, self.root, self.old = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        far = datetime.datetime(2999, 1, 1, tzinfo=UTC)
        # Root X cross-signed by Old Root, as ISRG Root X1 was by DST Root
        # CA X3: the cross-sign expired yesterday, and Old Root with it.
        self.cross = _issue("Root X", self.root, "Old Root", self.old, NOW - DAY)
        self.old_root = _issue("Old Root", self.old, "Old Root", self.old, NOW - DAY)
        self.old_root_valid = _issue("Old Root", self.old, "Old Root", self.old, far)
        self.far = far

    def test_expired_cross_sign_at_the_end_warns(self) -> None:
        """
        An expired cross-signed root ending ca.pem, alone or with its
        expired root after it, loads with one warning naming it, saying
        which clients stop before it and to take it out; it stopped the
        server, which every client that trusts Root X verifies.
        """
        for end, those in (((self.cross,), "it"), ((self.cross, self.old_root), "it and the one after it")):
            directory = self.write(self.far, *end)
            material = load_tls_dir(directory, now=NOW)
            self.assertEqual(len(material.chain), 1 + len(end))
            where = f"{os.path.join(directory, 'tls.cert')} + {os.path.join(directory, 'ca.pem')}"
            self.assertEqual(
                material.warnings,
                (
                    f"certificate 'Root X' in {where} expired on 2031-03-14 12:00 UTC, served all the same as it "
                    "ends the chain (an old cross-signed root?): clients that trust 'Root X' stop before it, "
                    f"others cannot verify the server's certificate: take {those} out of the chain",
                ),
            )
            # Not a date coming: the periodic check, which repeats the
            # warnings of certificates about to expire once a day, does
            # not repeat it (it would for as long as the server ran).
            self.assertEqual(expiry_warnings(material, NOW), ())

    def test_needed_certificate_out_of_date_refused(self) -> None:
        """
        An expired certificate that clients need is refused as before: the
        leaf's issuer, even ending the chain, and one with a certificate in
        date after it.
        """
        directory = self.write(NOW - DAY)
        self.assertRefused(directory, "certificate 'Issuing CA' in ", "expired on 2031-03-14 12:00 UTC")
        directory = self.write(self.far, self.cross, self.old_root_valid)
        self.assertRefused(directory, "certificate 'Root X' in ", "expired on 2031-03-14 12:00 UTC")


def _display_name(cert: x509.Certificate) -> str:
    """
    A certificate as the messages name it: its common name, or its whole
    name, quoted.
    """
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return repr(names[0].value if names else cert.subject.rfc4514_string())


class ChainTests(_Helpers):
    """
    The certificates must form a chain in the order TLS sends them.
    """

    def test_chain_from_another_ca(self) -> None:
        """
        A ca.pem holding a different CA is a wrong chain, reported against
        ca.pem.
        """
        directory = self.tls_dir()
        other = self.tls_dir()
        chain = os.path.join(directory, "ca.pem")
        _write(chain, _read(os.path.join(other, "ca.pem")))
        message = self.assertRefused(directory)
        self.assertTrue(message.startswith(f"wrong chain in {chain}: "), message)
        self.assertIn("was not issued by", message)
        self.assertIn("the certificate after it", message)

    def test_bundled_chain_from_another_ca(self) -> None:
        """
        In the bundled layout a wrong CA after the leaf is reported against
        tls.cert.
        """
        directory = self.tls_dir(layout="bundled")
        other = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        leaf = _certs(cert)[0]
        _write(
            cert,
            leaf.public_bytes(serialization.Encoding.PEM)
            + _read(os.path.join(other, "ca.pem")),
        )
        message = self.assertRefused(directory)
        self.assertTrue(message.startswith(f"wrong chain in {cert}: "), message)

    def test_wrong_ca_bundled_beside_ca_pem(self) -> None:
        """
        A wrong CA after the leaf in tls.cert is reported against tls.cert,
        where it is, even when ca.pem is there too: not against ca.pem,
        which may hold the right chain.
        """
        directory = self.tls_dir()
        other = self.tls_dir()
        cert = os.path.join(directory, "tls.cert")
        _write(cert, _read(cert) + _read(os.path.join(other, "ca.pem")))
        message = self.assertRefused(directory)
        # Its issuer is in ca.pem, after the stray CA.
        self.assertTrue(message.startswith(f"wrong order in {cert}: "), message)
        self.assertTrue(message.endswith(", which must come right after it"), message)

    def test_intermediate_missing(self) -> None:
        """
        With an intermediate CA, a ca.pem holding only the root is a wrong
        chain: the leaf was not issued by the root.
        """
        directory = self.tls_dir(intermediate=True)
        chain = os.path.join(directory, "ca.pem")
        intermediate, root = _certs(chain)
        _write(chain, root.public_bytes(serialization.Encoding.PEM))
        message = self.assertRefused(directory, f"wrong chain in {chain}: ")
        self.assertIn("was not issued by", message)
        self.assertIn(root.subject.rfc4514_string(), message)

    def test_chain_in_wrong_order(self) -> None:
        """
        Root before intermediate is a wrong chain.
        """
        directory = self.tls_dir(intermediate=True)
        chain = os.path.join(directory, "ca.pem")
        intermediate, root = _certs(chain)
        _write(
            chain,
            root.public_bytes(serialization.Encoding.PEM)
            + intermediate.public_bytes(serialization.Encoding.PEM),
        )
        message = self.assertRefused(directory)
        self.assertTrue(message.startswith(f"wrong order in {chain}: "), message)
        self.assertTrue(message.endswith(", which must come right after it"), message)
        self.assertIn(f"was issued by {_display_name(intermediate)}", message)

    def test_chain_twice(self) -> None:
        """
        certbot's fullchain.pem given as tls.cert and its chain.pem as
        ca.pem: the intermediate twice.  Said so, with what to leave out,
        not as an intermediate "not issued by" itself.
        """
        directory = self.tls_dir(layout="bundled", intermediate=True)
        cert = os.path.join(directory, "tls.cert")
        leaf, intermediate, root = _certs(cert)
        _write(cert, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, intermediate)))
        chain = os.path.join(directory, "ca.pem")
        _write(chain, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (intermediate, root)))
        self.assertEqual(
            self.assertRefused(directory),
            f"wrong chain: {_display_name(intermediate)} is both in {cert} and first in {chain}: "
            "tls.cert holds the chain already, so leave ca.pem out",
        )

    def test_bundle_of_cas(self) -> None:
        """
        A ca.pem that is a bundle of CAs, not the chain, is refused saying
        which issuer is missing and what ca.pem holds.
        """
        directory = self.tls_dir(intermediate=True)
        chain = os.path.join(directory, "ca.pem")
        _write(chain, _read(os.path.join(self.tls_dir(), "ca.pem")) + _read(os.path.join(self.tls_dir(), "ca.pem")))
        message = self.assertRefused(directory)
        self.assertTrue(message.startswith(f"wrong chain in {chain}: "), message)
        self.assertTrue(
            message.endswith(
                "which does not follow it (ca.pem holds the certificates from it up to a root, in order: "
                "not a bundle of CAs)"
            ),
            message,
        )

    def test_leaf_not_first(self) -> None:
        """
        A fullchain.pem (or bundled tls.cert) with the intermediate before
        the server's certificate is said to be in the wrong order, not to
        hold a certificate that does not match the key.
        """
        for layout, name in (("letsencrypt", "fullchain.pem"), ("bundled", "tls.cert")):
            directory = self.tls_dir(layout=layout, intermediate=True)
            cert = os.path.join(directory, name)
            leaf, *chain = _certs(cert)
            _write(cert, b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [*chain, leaf]))
            self.assertRefused(directory, f"wrong order in {cert}: the certificate of ", "must come first")


class GoodLayoutTests(_Helpers):
    """
    The supported layouts load, giving the leaf, its key and the chain.
    """

    def assertKeyMatches(self, material: TLSMaterial) -> None:
        self.assertEqual(
            _der(material.key.public_key()), _der(material.certificate.public_key())
        )

    def test_pingproto_layout(self) -> None:
        """
        tls.key + tls.cert + ca.pem loads: the leaf is tls.cert's, the chain
        is the root from ca.pem, and there are no warnings.
        """
        directory = self.tls_dir()
        files = find_tls_files(directory)
        self.assertEqual(
            (files.key, files.cert, files.chain),
            (
                os.path.join(directory, "tls.key"),
                os.path.join(directory, "tls.cert"),
                os.path.join(directory, "ca.pem"),
            ),
        )
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(material.files, files)
        self.assertEqual(material.certificate, _certs(files.cert)[0])
        self.assertEqual(material.chain, tuple(_certs(files.chain)))
        self.assertEqual(len(material.chain), 1)
        self.assertEqual(material.warnings, ())
        self.assertKeyMatches(material)

    def test_pingproto_layout_real_clock(self) -> None:
        """
        Without C{now} a certificate valid from 2000 to 3000 loads cleanly.
        """
        material = load_tls_dir(self.tls_dir())
        self.assertEqual(material.warnings, ())
        self.assertKeyMatches(material)

    def test_without_chain(self) -> None:
        """
        tls.key + tls.cert without ca.pem loads with an empty chain.
        """
        directory = self.tls_dir()
        os.remove(os.path.join(directory, "ca.pem"))
        material = load_tls_dir(directory, now=NOW)
        self.assertIsNone(material.files.chain)
        self.assertEqual(material.chain, ())
        self.assertKeyMatches(material)

    def test_bundled_layout(self) -> None:
        """
        tls.cert holding leaf + root, no ca.pem, loads with the root as
        chain.
        """
        directory = self.tls_dir(layout="bundled")
        cert = os.path.join(directory, "tls.cert")
        material = load_tls_dir(directory, now=NOW)
        self.assertIsNone(material.files.chain)
        leaf, root = _certs(cert)
        self.assertEqual(material.certificate, leaf)
        self.assertEqual(material.chain, (root,))
        self.assertKeyMatches(material)

    def test_letsencrypt_layout(self) -> None:
        """
        privkey.pem + fullchain.pem loads from those files.
        """
        directory = self.tls_dir(layout="letsencrypt")
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(material.files.key, os.path.join(directory, "privkey.pem"))
        self.assertEqual(material.files.cert, os.path.join(directory, "fullchain.pem"))
        self.assertIsNone(material.files.chain)
        self.assertEqual(len(material.chain), 1)
        self.assertKeyMatches(material)

    def test_intermediate_chain(self) -> None:
        """
        With an intermediate CA the chain is intermediate then root, and
        the leaf was issued by the intermediate.
        """
        directory = self.tls_dir(intermediate=True)
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(len(material.chain), 2)
        intermediate, root = material.chain
        self.assertEqual(material.certificate.issuer, intermediate.subject)
        self.assertEqual(intermediate.issuer, root.subject)
        self.assertEqual(root.issuer, root.subject)
        self.assertKeyMatches(material)

    def test_intermediate_chain_letsencrypt(self) -> None:
        """
        The certbot layout with an intermediate loads with a chain of two.
        """
        directory = self.tls_dir(layout="letsencrypt", intermediate=True)
        material = load_tls_dir(directory, now=NOW)
        self.assertEqual(len(material.chain), 2)
        self.assertKeyMatches(material)


def self_signed_dir(directory: str, key: PrivateKeyTypes) -> str:
    """
    Write C{key} and a certificate for localhost it signed itself, valid
    from 2000 to 3000, as tls.key and tls.cert.
    """
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    digest = None if isinstance(key, (ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)) else hashes.SHA256()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2000, 1, 1, tzinfo=UTC))
        .not_valid_after(datetime.datetime(3000, 1, 1, tzinfo=UTC))
        .sign(key, digest)  # type: ignore[arg-type]
    )
    os.makedirs(directory, exist_ok=True)
    _write(
        os.path.join(directory, "tls.key"),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )
    _write(os.path.join(directory, "tls.cert"), cert.public_bytes(serialization.Encoding.PEM))
    return directory


class KeyTypeTests(_Helpers):
    """
    Only keys the TLS policy can serve every client with load.
    """

    def test_only_policy_key_types(self) -> None:
        """
        A DSA key (no allowed cipher suite signs with it: every handshake
        fails), RSA under 2048 bits (OpenSSL refuses it), an EC key on a
        curve outside the policy (P-521, secp256k1), an Ed25519 key (which
        browsers cannot verify: Chromium fails with
        ERR_SSL_VERSION_OR_CIPHER_MISMATCH; it loaded) and an Ed448 key are
        refused in one line naming the file, the key and what to give
        instead; RSA 2048 and EC on P-256 or P-384 load.
        """
        refused = [
            (dsa.generate_private_key(2048), "holds a DSA key"),
            (rsa.generate_private_key(65537, 1024), "holds a 1024-bit RSA key, too small"),
            (ec.generate_private_key(ec.SECP521R1()), "holds an EC key on secp521r1, a curve outside the TLS policy"),
            (ec.generate_private_key(ec.SECP256K1()), "holds an EC key on secp256k1"),
            (ed25519.Ed25519PrivateKey.generate(), "holds an Ed25519 key"),
            (ed448.Ed448PrivateKey.generate(), "holds an Ed448 key"),
        ]
        for key, what in refused:
            directory = self_signed_dir(self.mktemp(), key)
            message = self.assertRefused(
                directory,
                os.path.join(directory, "tls.key"),
                what,
                "give an RSA key of 2048 bits or more, or an EC key on P-256 or P-384",
            )
            self.assertNotIn("\n", message)
        served = [
            rsa.generate_private_key(65537, 2048),
            ec.generate_private_key(ec.SECP256R1()),
            ec.generate_private_key(ec.SECP384R1()),
        ]
        for key in served:
            material = load_tls_dir(self_signed_dir(self.mktemp(), key), now=NOW)
            self.assertEqual(_der(material.key.public_key()), _der(key.public_key()))

    def test_rsa_pss(self) -> None:
        """
        An RSA-PSS key, with the certificate for it that OpenSSL makes
        (id-RSASSA-PSS), is refused in one line saying so and what to give
        instead.  It loaded, and OpenSSL then said only "no certificate
        assigned": cryptography reads the key as a plain RSA one, which
        OpenSSL keeps apart from the RSA-PSS certificate.
        """
        openssl = shutil.which("openssl")
        if openssl is None:
            raise SkipTest("needs the openssl command to make an RSA-PSS key")
        directory = self.mktemp()
        os.makedirs(directory)
        key = os.path.join(directory, "tls.key")
        cert = os.path.join(directory, "tls.cert")
        for command in (
            ["genpkey", "-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key],
            ["req", "-x509", "-new", "-key", key, "-subj", "/CN=localhost", "-days", "36500", "-out", cert],
        ):
            subprocess.run([openssl, *command], check=True, capture_output=True)
        message = self.assertRefused(directory)
        self.assertEqual(
            message,
            f"{key} is an RSA-PSS key (its certificate in {cert} says so), which the TLS policy does not serve: "
            "give an RSA key of 2048 bits or more, or an EC key on P-256 or P-384 "
            "(a plain RSA key signs with PSS in TLS 1.3 all the same)",
        )
