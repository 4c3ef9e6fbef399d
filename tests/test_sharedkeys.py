"""
None of a connection's objects (Twisted's TCP connection, the TLS layer,
pingproto's protocol) needs a dictionary of its own, neither when many
clients connect at once nor once keepalives are answered
(pingproto/sharedkeys.py).  Real wss:// connections on loopback, in a
fresh interpreter (tests/sharedkeys_child.py).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from .commands import SOURCE, environment
from .tlsdir import write_tls_dir

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sharedkeys_child.py")
CONNECTIONS = 40


class SharedKeysTests(TestCase):
    def setUp(self) -> None:
        self.tlsDir = os.path.abspath(self.mktemp())
        os.mkdir(self.tlsDir)
        write_tls_dir(self.tlsDir)

    @inlineCallbacks
    def storm(self, *args: str) -> Deferred[dict[str, Any]]:  # type: ignore[misc]
        out, err, status = yield getProcessOutputAndValue(
            sys.executable, [CHILD, "--connections", str(CONNECTIONS), "--tls-dir", self.tlsDir, *args],
            env=environment(), path=SOURCE, reactor=reactor,
        )
        self.assertEqual(status, 0, err)
        result: dict[str, Any] = json.loads(out)
        self.assertEqual(result["open"], CONNECTIONS)
        return result

    @inlineCallbacks
    def test_stormShares(self):  # type: ignore[no-untyped-def]
        """
        Forty clients connected before any asks for the upgrade, then all
        upgraded and each answered two keepalives: no object of the
        server's connections has a dictionary of its own.
        """
        result = yield self.storm()
        self.assertEqual(result["own_dictionaries"], {"tcp": [0, 0], "tls": [0, 0], "protocol": [0, 0]})

    @inlineCallbacks
    def test_stormUnshared(self):  # type: ignore[no-untyped-def]
        """
        The same without pingproto naming the late names first: on the
        Pythons whose key-sharing the module works around, every one of
        them does (so the test above can tell).
        """
        if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 12):
            raise SkipTest("key-sharing that shrinks with each instance: CPython 3.11 and 3.12")
        result = yield self.storm("--unshared")
        counts = {kind: n for kind, (n, _) in result["own_dictionaries"].items()}
        self.assertEqual(counts, {"tcp": CONNECTIONS, "tls": CONNECTIONS, "protocol": CONNECTIONS})
