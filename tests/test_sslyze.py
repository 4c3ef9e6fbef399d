"""
The running server scanned by sslyze against Mozilla's "intermediate"
TLS configuration.

sslyze needs an older cryptography than pingproto, so C{tools/test}
installs it into a virtualenv of its own, C{.tools/sslyze-venv}, and it runs
here as a separate process with that virtualenv's Python.
"""

from __future__ import annotations

import os

import trustme
from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue

from .test_endtoend import ServerTestCase
from .tlsdir import write_ca_file, write_strict_tls_dir

_SSLYZE = os.environ.get(
    "PINGPROTO_SSLYZE",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".tools", "sslyze-venv"),
)
_PYTHON = os.path.join(_SSLYZE, "bin", "python")


class MozillaIntermediateTests(ServerTestCase):
    timeout = 120

    def setUp(self) -> None:
        if not os.path.exists(os.path.join(_SSLYZE, "bin", "sslyze")):
            message = f"sslyze is not installed in {_SSLYZE}; run tools/test"
            # In CI (.ci/run sets CI=true, as CI services do) a missing
            # scanner is a broken setup, as test_browser's missing browser.
            if os.environ.get("CI") == "true":
                self.fail(message)
            self.skipTest(message)
        return super().setUp()

    def make_tls_dir(self):  # type: ignore[no-untyped-def]
        # Mozilla's profile also checks the certificate: a lifespan under
        # 398 days and a chain a strict validator accepts.
        tlsdir = self.mktemp()
        ca = trustme.CA()
        write_strict_tls_dir(tlsdir, ca, days=90)
        return tlsdir, ca

    @inlineCallbacks
    def test_compliant(self):  # type: ignore[no-untyped-def]
        """
        sslyze finds the server compliant with Mozilla's intermediate
        profile: TLS 1.2 and 1.3 only, ECDHE with AEAD ciphers, the X25519,
        P-256 and P-384 curves, no compression, no client renegotiation.
        """
        ca_file = os.path.abspath(write_ca_file(self.mktemp(), self.ca))
        out, err, code = yield getProcessOutputAndValue(
            _PYTHON,
            ["-m", "sslyze", "--mozilla_config=intermediate", "--certinfo_ca_file", ca_file, f"localhost:{self.port}"],
            env=os.environ,
        )
        text = out.decode(errors="replace")
        self.assertIn("Supported curves:                  X25519, secp256r1, secp384r1", text)
        self.assertIn("OK - Compression disabled", text)
        self.assertIn("Client Renegotiation DoS Attack:   OK - Not vulnerable", text)
        self.assertIn(f"localhost:{self.port}: OK - Compliant.", text, text[-2500:] + err.decode(errors="replace"))
        self.assertEqual(code, 0)
