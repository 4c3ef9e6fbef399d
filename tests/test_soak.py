"""
The soak benchmark, C{benchmarks/soak.py}, in a version short enough for
CI: the real C{twistd pingproto} over TLS on 127.0.0.1, a few hundred
connections for a few seconds.  The long run and its figures are in
C{docs/reliability.md}.
"""

from __future__ import annotations

import os
import re
import sys

from twisted.internet.defer import inlineCallbacks
from twisted.internet.utils import getProcessOutputAndValue
from twisted.trial.unittest import SkipTest, TestCase

from .commands import SOURCE, environment

SCRIPT = os.path.join(SOURCE, "benchmarks", "soak.py")

_FIGURE = re.compile(r"^  (connections opened|connections failed|echoes sent|echoes answered|"
                     r"echoes lost|echoes lost at disconnect|echoes unmatched|disconnects)\s+(\d+)",
                     re.MULTILINE)


def figures(output: str) -> dict[str, int]:
    """
    The counts in the table C{soak.py} prints at the end.
    """
    return {name: int(value) for name, value in _FIGURE.findall(output)}


class SoakTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("soak.py reads /proc and pins CPUs: Linux only")

    def soak(self, *args: str):  # type: ignore[no-untyped-def]
        d = getProcessOutputAndValue(
            sys.executable, [SCRIPT, *args], env=environment(), path=SOURCE
        )
        return d.addCallback(lambda r: (r[0].decode(errors="replace") + r[1].decode(errors="replace"), r[2]))

    @inlineCallbacks
    def test_everyEchoAnswered(self):  # type: ignore[no-untyped-def]
        """
        200 concurrent wss:// connections to the real server, each pinging
        once a second for 8 seconds: all open, none drops, every ping is
        echoed within the timeout, and the script says so with exit status 0.
        """
        output, status = yield self.soak(
            "--connections", "200", "--duration", "8", "--sample-every", "2"
        )
        self.assertEqual(status, 0, output)
        counts = figures(output)
        self.assertEqual(counts["connections opened"], 200, output)
        self.assertEqual(counts["connections failed"], 0, output)
        # Once a second for at least the 8 s hold, on every connection.
        self.assertGreaterEqual(counts["echoes sent"], 200 * 8, output)
        self.assertEqual(counts["echoes answered"], counts["echoes sent"], output)
        self.assertEqual(counts["echoes lost"], 0, output)
        self.assertEqual(counts["echoes lost at disconnect"], 0, output)
        self.assertEqual(counts["echoes unmatched"], 0, output)
        self.assertEqual(counts["disconnects"], 0, output)
        self.assertIn("verdict: PASS", output)
        # The server saw them too: 200 WebSockets logged as they closed, no errors.
        self.assertRegex(output, r"server log +200 WebSockets logged at their close, 0 tracebacks")

    @inlineCallbacks
    def test_failsWhenConnectionsDrop(self):  # type: ignore[no-untyped-def]
        """
        The verdict can fail: a server that closes every connection on its
        first ping (a message size limit below a ping's 13 bytes) makes
        the script count the drops and lost echoes, say FAIL and exit 1.
        """
        output, status = yield self.soak(
            "--connections", "20", "--duration", "2",
            "--server-arg=--max-message-size=5",
        )
        self.assertEqual(status, 1, output)
        counts = figures(output)
        self.assertEqual(counts["connections opened"], 20, output)
        self.assertEqual(counts["disconnects"], 20, output)
        self.assertEqual(counts["echoes answered"], 0, output)
        self.assertEqual(counts["echoes lost at disconnect"], counts["echoes sent"], output)
        self.assertGreater(counts["echoes sent"], 0, output)
        self.assertIn("verdict: FAIL: 20 connections dropped", output)
        self.assertIn("1009", output)
