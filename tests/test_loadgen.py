"""
The handshake test of the benchmark harness, C{benchmarks/loadgen.py
handshake} (its client is C{benchmarks/handshakes.py}), against real
servers on 127.0.0.1 in this process: what it counts must be what
happened, or the CPU per handshake of C{docs/performance.md} means nothing.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.protocol import Factory
from twisted.internet.utils import getProcessOutputAndValue
from twisted.logger import globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.protocols.wire import Echo
from twisted.trial.unittest import SkipTest, TestCase

from pingproto.tls import ServerTLS
from pingproto.tlsfiles import load_tls_dir

from .commands import SOURCE, environment
from .test_endtoend import ServerTestCase

LOADGEN = os.path.join(SOURCE, "benchmarks", "loadgen.py")
COUNT = 30


class LoadgenCase(ServerTestCase):
    timeout = 60

    def setUp(self) -> None:
        if not sys.platform.startswith("linux"):
            raise SkipTest("loadgen.py reads /proc: Linux only")
        super().setUp()

    @inlineCallbacks
    def handshakes(self, proto: str, port: int):  # type: ignore[no-untyped-def]
        """
        Run C{loadgen.py handshake} for C{COUNT} connections (after as many
        to warm up) and return its figures and what it wrote to stderr.
        """
        out, err, status = yield getProcessOutputAndValue(
            sys.executable,
            [LOADGEN, "handshake", "--proto", proto, "--port", str(port), "--server-pid", str(os.getpid()),
             "--count", str(COUNT), "--duration", "20"],
            env=environment(), path=SOURCE, reactor=reactor,
        )
        self.assertEqual(status, 0, err)
        return json.loads(out.decode().splitlines()[-1]), err.decode()

    def clean_closes(self) -> list[int]:
        """
        Counts, once the test has run, the WebSockets pingproto logged as
        closed cleanly with code 1000, in a one-element list.
        """
        count = [0]

        def observe(event: dict) -> None:
            if "closed: code" in event.get("log_format", "") and event.get("code") == 1000 and not event.get("unclean"):
                count[0] += 1

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        return count


class PingprotoTests(LoadgenCase):
    @inlineCallbacks
    def test_wss(self):  # type: ignore[no-untyped-def]
        """
        Over wss every connection completes TLS, the upgrade and a clean
        close: none fails, and the figures are per connection.
        """
        closes = self.clean_closes()
        figures, err = yield self.handshakes("wss", self.port)
        self.assertEqual((figures["count"], figures["failures"]), (COUNT, 0), err)
        self.assertEqual(closes, [2 * COUNT])  # the warm-up's and the measured ones
        self.assertGreater(figures["us_cpu_per_handshake"], 0)
        self.assertIn("pyOpenSSL", figures["client"])

    @inlineCallbacks
    def test_notAWebSocketServer(self):  # type: ignore[no-untyped-def]
        """
        A server that does not upgrade counts as failures, with the reason,
        not as handshakes: here a wss request to a TLS echo, which answers
        the request with itself.
        """
        material = load_tls_dir(self.make_tls_dir()[0])
        factory = TLSMemoryBIOFactory(ServerTLS(material), False, Factory.forProtocol(Echo))
        port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
        self.addCleanup(port.stopListening)
        figures, err = yield self.handshakes("wss", port.getHost().port)
        self.assertEqual((figures["count"], figures["failures"]), (0, COUNT))
        self.assertIn("no upgrade, the answer began: GET / HTTP/1.1", err)


class PlainTests(LoadgenCase):
    tls = False

    @inlineCallbacks
    def test_ws(self):  # type: ignore[no-untyped-def]
        """
        Over ws, the same without TLS.
        """
        closes = self.clean_closes()
        figures, err = yield self.handshakes("ws", self.port)
        self.assertEqual((figures["count"], figures["failures"]), (COUNT, 0), err)
        self.assertEqual(closes, [2 * COUNT])

    @inlineCallbacks
    def test_rawEchoes(self):  # type: ignore[no-untyped-def]
        """
        The baselines' handshakes, a TCP connection or a TLS session opened
        and closed, complete against Twisted's echo, plain and over TLS.
        """
        echo = Factory.forProtocol(Echo)
        material = load_tls_dir(self.make_tls_dir()[0])
        for proto, factory in [("tcp", echo), ("tls", TLSMemoryBIOFactory(ServerTLS(material), False, echo))]:
            port = yield TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1").listen(factory)
            self.addCleanup(port.stopListening)
            figures, err = yield self.handshakes(proto, port.getHost().port)
            self.assertEqual((figures["count"], figures["failures"]), (COUNT, 0), (proto, err))


class MicroSuspectsTests(TestCase):
    """
    C{benchmarks/micro_suspects.py}, which docs/performance.md cites, still
    runs against the code and the test helpers it borrows.
    """

    timeout = 60

    @inlineCallbacks
    def test_runs(self):  # type: ignore[no-untyped-def]
        """
        It prints a figure for each of its nine rows, and nothing on
        standard error.
        """
        out, err, code = yield getProcessOutputAndValue(
            sys.executable, [os.path.join(SOURCE, "benchmarks", "micro_suspects.py")], env=environment()
        )
        self.assertEqual((code, err), (0, b""))
        rows = out.decode().splitlines()[1:]
        self.assertEqual(len(rows), 9, out)
        for row in rows:
            self.assertGreater(float(row.split()[-1]), 0, row)


def load_harness() -> Any:
    """
    C{benchmarks/harness.py}, the body of C{benchmarks/run}, as its scripts
    import it.
    """
    benchmarks = os.path.join(SOURCE, "benchmarks")
    if benchmarks not in sys.path:
        sys.path.insert(0, benchmarks)
    import harness

    return harness


class TableTests(TestCase):
    """
    The table C{benchmarks/run} prints.
    """

    def test_roundsRange(self) -> None:
        """
        A row gives each server's lowest and highest CPU per round trip at
        one connection over the rounds, beside the median the ratios use.
        """
        run = load_harness()

        def rounds(*cpu: float) -> list[dict[str, float]]:
            other = {"rt_per_s": 1.0, "rtt_p50_us": 1.0, "rtt_p99_us": 1.0, "gen_cpu_pct": 1.0, "server_cpu_pct": 1.0}
            return [dict(other, us_cpu_per_rt=v, other_load_cpus=0.0) for v in cpu]

        tcp = run.Server("tcp", "raw", "tcp", [], {})
        tcp.results["echo1"] = rounds(45.9, 41.1, 43.2)
        once = run.Server("tls", "raw TLS", "tls", [], {})
        once.results["echo1"] = rounds(102.4)
        lines = {line.split("|")[1].strip(): line for line in run.table([tcp, once]).splitlines()}
        self.assertEqual([c.strip() for c in lines["CPU us / rt, 1 conn, rounds' range"].split("|")[2:4]], ["41.1-45.9", "-"])
        self.assertEqual([c.strip() for c in lines["CPU us / round trip, 1 conn"].split("|")[2:4]], ["43.2", "102"])

