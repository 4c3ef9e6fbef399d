"""
C{pingproto ping}: its options, its output lines and records, how it names
failures, and the real command against a real server.
"""

from __future__ import annotations

import datetime
import errno
import importlib.metadata
import io
import json
import os
import subprocess
import sys
from typing import Any

import trustme
from OpenSSL.SSL import Error as SSLError
from service_identity import VerificationError
from service_identity.exceptions import DNSMismatch
from service_identity.hazmat import DNS_ID
from twisted.internet import reactor, ssl
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.protocol import Factory, ProcessProtocol, Protocol
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.internet.utils import getProcessOutputAndValue
from twisted.python.failure import Failure
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from pingproto.cli import main
from pingproto.client import ConnectionState, HandshakeError, PingMonitor, StateChange, TLSHandshakeIncomplete
from pingproto.pingcmd import PingOptions, Reporter, _open_log, _PingRun, describe_failure
from pingproto.records import read_records
from pingproto.server import EchoServerProtocol
from pingproto.session import Loss, LossReason, Sample

from .sockets import refusing_port
from .test_endtoend import ServerTestCase
from .test_protocols import StalledServerProtocol
from .commands import environment
from .tlsdir import write_ca_file


def parse(*args: str) -> PingOptions:
    options = PingOptions()
    options.parseOptions(list(args))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        One ping a second, a 5 s reply timeout, a 10 s flatline, no count.
        """
        options = parse("wss://example.com:1234/")
        self.assertEqual(
            (options["url"], options["count"], options["interval"], options["timeout"], options["flatline"]),
            ("wss://example.com:1234/", None, 1.0, 5.0, 10.0),
        )

    def test_flatlineAndTimeout(self) -> None:
        """
        The flatline is never shorter than the reply timeout, unless off:
        not given, it is 10 s or the timeout if longer; as long as the
        timeout, or 0, it is taken.
        """
        for args, flatline in (
            (["-W", "20"], 20.0),
            (["-W", "0.5"], 10.0),
            (["-W", "20", "--flatline", "0"], 0.0),
            (["-W", "3", "--flatline", "3"], 3.0),
            (["-W", "0.05", "--flatline", "0.1"], 0.1),
        ):
            self.assertEqual(parse(*args, "ws://h/")["flatline"], flatline, args)

    def test_helpSecondsAsGiven(self) -> None:
        """
        The help gives each option's minimum as a number is written, not as
        Python's float (it said "at least 0.0" for --flatline).
        """
        text = str(PingOptions())
        self.assertNotIn(".0)", text)
        self.assertIn("(at least 0.01)", text)
        self.assertIn("Seconds, at least 0.1;", text)

    def test_optionsAfterUrl(self) -> None:
        """
        Options may follow the URL, as with ping.
        """
        options = parse("ws://h:1/", "-c", "5", "-i", "0.2", "--json", "-W", "0.5")
        self.assertEqual((options["count"], options["interval"], options["json"], options["timeout"]), (5, 0.2, 1, 0.5))

    def test_badInput(self) -> None:
        """
        Each bad option or URL is refused with a message naming it.
        """
        cases = [
            (["http://h/"], "not a ws:// or wss:// URL"),
            (["ws://h:99999/"], "ws://h:99999/"),
            (["ws://h/#x"], "fragment"),
            (["ws://h:1234/#"], "fragment"),
            (["ws://a b:1234/"], "not a ws:// or wss:// URL"),
            # urlsplit drops tabs and newlines without a word: not a URL.
            (["ws://exa\tmple.com:1234/"], "not a ws:// or wss:// URL"),
            (["ws://example.com:1234/\n"], "not a ws:// or wss:// URL"),
            (["wss://:1234/"], "names no host"),
            (["ws://127.0.0.1:0/"], "port 0 cannot be connected to"),
            (["wss://h:0/"], "port 0 cannot be connected to"),
            (["ws://[::1]:0/"], "port 0 cannot be connected to"),
            # Sent to the server as it is, it would be refused there (400).
            (["ws://h:1/\x01"], "'ws://h:1/\\x01': a URL cannot have control"),
            (["-c", "0", "ws://h/"], "--count: '0' must be 1 or more"),
            (["-i", "0", "ws://h/"], "--interval: '0' must be from 0.01 s to under a day"),
            (["-W", "x", "ws://h/"], "--timeout: 'x' is not a number of seconds"),
            (["--flatline", "-1", "ws://h/"], "--flatline: '-1' seconds is out of range: 0 (off), or from 0.1 up to a year"),
            # The server's floor for such timers.
            (["--flatline", "0.0001", "ws://h/"], "--flatline: '0.0001' seconds is out of range: 0 (off), or from 0.1"),
            (["--flatline", "2", "ws://h/"], "--flatline 2 is shorter than --timeout (-W) 5: give --flatline 5 or more, or 0 for never"),
            (["-W", "0.5", "--flatline", "0.2", "ws://h/"], "--flatline 0.2 is shorter than --timeout (-W) 0.5"),
            (["--ca", "ca.pem", "ws://h/"], "--ca only applies to wss://"),
            ([], "give one ws:// or wss:// URL"),
            (["ws://a:1/", "ws://b:1/"], "give one ws:// or wss:// URL"),
            # The option took the URL as its value: say so.
            (["--ca", "wss://h:1/"], "--ca took the URL 'wss://h:1/' as its FILE: give --ca FILE, then the URL"),
            (["--log", "WS://h:1/"], "--log took the URL 'WS://h:1/' as its FILE"),
        ]
        for args, message in cases:
            with self.assertRaises(UsageError, msg=args) as caught:
                parse(*args)
            self.assertIn(message, str(caught.exception))

    def test_usageExitStatus(self) -> None:
        """
        A usage error exits 2 with one line naming the command, then a hint.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.assertEqual(main(["ping", "http://x/"]), 2)
        self.assertTrue(stderr.getvalue().startswith("pingproto ping: 'http://x/' is not a ws:// or wss:// URL\n"))

    def test_urlErrorsQuoteTheUrl(self) -> None:
        """
        A URL urlsplit cannot read is a usage error in one line that
        quotes it, not Python's bare "Invalid IPv6 URL".
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.assertEqual(main(["ping", "ws://[::1/"]), 2)
        self.assertEqual(
            stderr.getvalue().splitlines()[0],
            "pingproto ping: 'ws://[::1/': brackets in the host must enclose an IPv6 address, as in ws://[::1]:1234/",
        )

    def test_caFileNamed(self) -> None:
        """
        A --ca file that cannot be read, or is no CA certificate, exits 2
        with one line that names the option as well as the file.
        """
        junk = self.mktemp()
        with open(junk, "w") as f:
            f.write("junk\n")
        missing = os.path.abspath(self.mktemp())
        for path, why in ((missing, f"cannot read {missing}: No such file or directory"),
                          (junk, f"{junk} is not PEM")):
            stderr = io.StringIO()
            self.patch(sys, "stderr", stderr)
            self.assertEqual(main(["ping", "--ca", path, "wss://127.0.0.1:1/"]), 2)
            self.assertEqual(len(stderr.getvalue().splitlines()), 1, stderr.getvalue())
            self.assertTrue(stderr.getvalue().startswith(f"pingproto ping: --ca: {why}"), stderr.getvalue())

    def test_portZeroExitStatus(self) -> None:
        """
        Port 0 is a usage error (2, one line), not a traceback from the
        WebSocket library when the connection is made.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        self.assertEqual(main(["ping", "-c", "1", "ws://127.0.0.1:0/"]), 2)
        self.assertEqual(
            stderr.getvalue().splitlines()[0], "pingproto ping: 'ws://127.0.0.1:0/': port 0 cannot be connected to"
        )


class OpenLogTests(SynchronousTestCase):
    def test_pipe(self) -> None:
        """
        --log may name a pipe (C{/dev/stdout} piped on, a FIFO), which has
        no end to look for a cut-off line at: records go to it.
        """
        fifo = os.path.abspath(self.mktemp())
        os.mkfifo(fifo)
        reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.addCleanup(os.close, reader)
        log = _open_log(fifo)
        log.write('{"event": "start"}\n')
        log.close()
        self.assertEqual(os.read(reader, 100), b'{"event": "start"}\n')


class VersionTests(SynchronousTestCase):
    def test_version(self) -> None:
        """
        C{pingproto --version} prints pingproto's version, from the
        package metadata, not Twisted's, and exits 0.
        """
        stdout = io.StringIO()
        self.patch(sys, "stdout", stdout)
        with self.assertRaises(SystemExit) as caught:
            main(["--version"])
        self.assertEqual(caught.exception.code, 0)
        self.assertEqual(stdout.getvalue(), f"pingproto {importlib.metadata.version('pingproto')}\n")


    def test_everyCommand(self) -> None:
        """
        Each command's C{--version} is pingproto's too, and its help begins
        with how to call it.
        """
        for command in ("ping", "report", "app"):
            stdout = io.StringIO()
            self.patch(sys, "stdout", stdout)
            with self.assertRaises(SystemExit):
                main([command, "--version"])
            self.assertEqual(stdout.getvalue(), f"pingproto {importlib.metadata.version('pingproto')}\n")
            stdout = io.StringIO()
            self.patch(sys, "stdout", stdout)
            with self.assertRaises(SystemExit):
                main([command, "--help"])
            self.assertTrue(stdout.getvalue().startswith(f"pingproto {command} ["), stdout.getvalue()[:60])

    def test_readerGone(self) -> None:
        """
        Output into a pipe nobody reads any more (C{pingproto ... | head})
        ends the command quietly, without a traceback.
        """
        read, write = os.pipe()
        os.close(read)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pingproto", "ping", "--help"],
                stdout=write, stderr=subprocess.PIPE, env=environment(), timeout=60,
            )
        finally:
            os.close(write)
        self.assertEqual(done.stderr, b"")
        self.assertEqual(done.returncode, 1)


def pingproto_command(*args: str) -> Deferred[tuple[bytes, bytes, int]]:
    """
    Run C{python -m pingproto ARGS} as a user does, on the reactor: its
    standard output, standard error and exit status.
    """
    return getProcessOutputAndValue(sys.executable, ["-m", "pingproto", *args], env=environment())


def _pingproto(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "pingproto", *args], stderr=subprocess.PIPE, env=environment(), timeout=60, **kwargs
    )


class StandardOutputTests(SynchronousTestCase):
    """
    Every command, when standard output cannot take what it prints.
    """

    def setUp(self) -> None:
        self.log = os.path.abspath(self.mktemp())
        with open(self.log, "w") as f:
            f.write('{"event":"start","t":1,"target":"ws://h:1/","interval":1,"timeout":5}\n')
        # Nothing listens there: ping fails at its first line, before it connects.
        self.commands = [["ping", "-c", "1", f"ws://127.0.0.1:{refusing_port(self)}/"], ["report", self.log], ["app", "-s", "h:1"]]

    def test_closed(self) -> None:
        """
        Started with standard output closed (C{>&-}), each command says so
        in one line and exits 2, without a traceback.
        """
        for args in self.commands:
            done = _pingproto(args, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
            self.assertEqual((done.returncode, done.stderr), (2, b"pingproto: standard output is closed\n"), args)

    def test_full(self) -> None:
        """
        Output into a device that takes nothing (C{>/dev/full}) ends each
        command with one line saying so and exit 2, without a traceback.
        """
        for args in [*self.commands, ["--version"]]:
            with open("/dev/full", "w") as full:
                done = _pingproto(args, stdout=full)
            self.assertEqual(
                done.stderr.decode().splitlines(),
                ["pingproto: cannot write to standard output: No space left on device"],
                args,
            )
            self.assertEqual(done.returncode, 2, args)


class StandardErrorTests(SynchronousTestCase):
    """
    C{pingproto ping} when standard error cannot take the line saying why
    the connection failed: it used to hang, its reactor idle, since the
    failed write skipped the stop.
    """

    def exit_status(self, stderr: Any, preexec_fn: Any = None) -> int:
        # The first connection is refused.
        done = subprocess.run(
            [sys.executable, "-m", "pingproto", "ping", f"ws://127.0.0.1:{refusing_port(self)}/"],
            stdout=subprocess.DEVNULL, stderr=stderr, env=environment(), timeout=30, preexec_fn=preexec_fn,
        )
        return done.returncode

    def test_readerGone(self) -> None:
        """
        Into a pipe nobody reads (C{2>&1 | head -1}), the run still ends
        with exit status 2.
        """
        read, write = os.pipe()
        os.close(read)
        try:
            self.assertEqual(self.exit_status(write), 2)
        finally:
            os.close(write)

    def test_full(self) -> None:
        """
        Into a device that takes nothing (C{2>/dev/full}), likewise.
        """
        with open("/dev/full", "w") as full:
            self.assertEqual(self.exit_status(full), 2)

    def test_closed(self) -> None:
        """
        With standard error closed (C{2>&-}), likewise.
        """
        self.assertEqual(self.exit_status(subprocess.DEVNULL, preexec_fn=lambda: os.close(2)), 2)

    def test_usageErrorUnwritten(self) -> None:
        """
        A usage error that cannot be written (C{2>/dev/full}, or into a
        pipe nobody reads) still ends with status 2, not a traceback at
        exit (status 120) or 1.
        """
        read, write = os.pipe()
        os.close(read)
        try:
            with open("/dev/full", "w") as full:
                for stderr in (full, write):
                    done = subprocess.run(
                        [sys.executable, "-m", "pingproto", "ping", "--no-such-option"],
                        stdout=subprocess.DEVNULL, stderr=stderr, env=environment(), timeout=30,
                    )
                    self.assertEqual(done.returncode, 2, stderr)
        finally:
            os.close(write)


class SummaryOnceTests(SynchronousTestCase):
    def test_summaryOnce(self) -> None:
        """
        C{_summarize} writes the summary once however often it is asked:
        a signal while a count-limited run's last close is pending asks for
        it (C{_interrupted}, once the monitor has stopped) after the run's
        end did (C{_finished}), and it was printed twice.
        """
        options = PingOptions()
        options.parseOptions(["-c", "1", "ws://127.0.0.1:1/"])
        out = io.StringIO()
        run = _PingRun(options, reactor=None, stdout=out, stderr=io.StringIO())
        run.reporter = Reporter(out)
        run.monitor = PingMonitor(run.target, run.reporter)
        run._summarize()
        run._summarize()
        self.assertEqual(out.getvalue().count("pingproto statistics"), 1)


class DescribeFailureTests(SynchronousTestCase):
    def test_tlsNotSpoken(self) -> None:
        """
        A wss:// handshake the server never completed is named as a TLS
        problem, with the hint to try ws://.
        """
        text = describe_failure(Failure(TLSHandshakeIncomplete("opening handshake timeout")))
        self.assertIn("TLS", text)
        self.assertIn("try ws://", text)

    def test_causes(self) -> None:
        """
        Each setup failure is named by its cause: a port that never
        answers (a firewall dropping the SYN) times out; a server that
        answers a TLS hello in plain text shows as OpenSSL's "wrong version
        number" or "packet length too long", either way the hint to try
        ws://; any other TLS failure is named as one, with OpenSSL's words
        (its reasons, not Python's repr of its error queue).
        """
        cases = [
            (DNSLookupError("nope.invalid"), "unknown host"),
            (ConnectionRefusedError(), "connection refused"),
            (TimeoutError(), "connection timed out"),
            (SSLError([("SSL routines", "", "certificate verify failed")]), "certificate does not verify"),
            (SSLError([("SSL routines", "", "wrong version number")]), "does not speak TLS here (try ws://)"),
            (SSLError([("SSL routines", "", "packet length too long")]), "does not speak TLS here (try ws://)"),
            (SSLError([("SSL routines", "", "sslv3 alert handshake failure")]),
             "TLS handshake failed: sslv3 alert handshake failure"),
            (HandshakeError("HTTP 404"), "WebSocket handshake failed: HTTP 404"),
        ]
        for error, words in cases:
            self.assertIn(words, describe_failure(Failure(error)))
        self.assertEqual(
            describe_failure(Failure(SSLError([("SSL routines", "", "bad record type"),
                                               ("SSL routines", "", "record layer failure")]))),
            "TLS handshake failed: bad record type; record layer failure",
        )


    def test_tlsCauses(self) -> None:
        """
        TLS failures that are not the usual wrong CA are named as what
        they are, in words, not as Python's repr of the error: a
        certificate for another host, no TLS version in common (the
        server's alert, or the client refusing the server's choice), and a
        certificate that does not verify for a reason other than its CA.
        """
        cases = [
            (VerificationError(errors=[DNSMismatch(mismatched_id=DNS_ID("localhost"))]),
             "TLS: the server's certificate is not for this host name"),
            (SSLError([("SSL routines", "", "tlsv1 alert protocol version")]),
             "TLS: the server speaks no TLS version the client does (TLS 1.2 or 1.3)"),
            (SSLError([("SSL routines", "", "unsupported protocol")]),
             "TLS: the server speaks no TLS version the client does (TLS 1.2 or 1.3)"),
            (SSLError([("SSL routines", "", "certificate verify failed"),
                       ("X509 certificate verification", "", "certificate has expired")]),
             "TLS: the server's certificate does not verify: certificate has expired"),
        ]
        for error, words in cases:
            self.assertEqual(describe_failure(Failure(error)), words)


class ReporterTests(SynchronousTestCase):
    """
    The reporter's text and JSON, on a fixed wall clock.
    """

    def setUp(self) -> None:
        self.now = 1_764_000_000.0
        self.out = io.StringIO()
        self.log = io.StringIO()

    def reporter(self, **kwargs: object) -> Reporter:
        return Reporter(self.out, log=self.log, wall=lambda: self.now, **kwargs)  # type: ignore[arg-type]

    def play(self, reporter: Reporter, unmatched: int = 0) -> int:
        """
        A run with two replies, a timeout, a disconnect, a flatline and a
        reconnect, then the summary (with C{unmatched} replies that matched
        no ping).
        """
        reporter.start("wss://h:1/", 1.0, 5.0)
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.0042))
        reporter.ping_replied(Sample(1, 0, 0.0010))
        reporter.ping_replied(Sample(2, 1000, 0.0030))
        reporter.ping_lost(Loss(3, 2000, LossReason.TIMEOUT))
        self.now += 10
        reporter.flatline(10.0)
        reporter.state_changed(StateChange(ConnectionState.CLOSED, "closed with code 4000: flatline"))
        self.now += 2
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.0058))
        self.now += 1
        reporter.state_changed(StateChange(ConnectionState.CLOSED, "code 1000", requested=True))
        return reporter.finish("wss://h:1/", unmatched=unmatched)

    def test_text(self) -> None:
        """
        One line per event as ping would print it, and a summary with the
        figures that follow from the events.
        """
        status = self.play(self.reporter())
        self.assertEqual(status, 0)
        self.assertEqual(
            self.out.getvalue().splitlines(),
            [
                "PING wss://h:1/: one ping every 1 s, reply timeout 5 s",
                "connected in 4.200 ms (TCP + TLS + WebSocket upgrade)",
                "seq=1 time=1.000 ms",
                "seq=2 time=3.000 ms",
                "seq=3 lost (no echo in time)",
                "flatline: open but no echo for 10 s; reconnecting",
                "disconnected: closed with code 4000: flatline",
                "reconnecting",
                "connected in 5.800 ms (TCP + TLS + WebSocket upgrade)",
                "--- wss://h:1/ pingproto statistics ---",
                "3 sent, 2 received, 33.3% lost, time 13.0 s",
                "rtt min/avg/max/mdev = 1.000/2.000/3.000/1.000 ms",
                "rtt median/p95/p99 = 1.000/3.000/3.000 ms, jitter 0.125 ms",
                "2 opens, setup min/avg/max = 4.200/5.000/5.800 ms; 1 disconnect (2.0 s disconnected), 1 flatline",
            ],
        )

    def test_setupTimeSaysWhatItCovers(self) -> None:
        """
        The connect line names TLS only for a wss:// target.
        """
        for target, setup in (("ws://h:1/", "TCP + WebSocket upgrade"), ("WSS://h:1/", "TCP + TLS + WebSocket upgrade")):
            self.out = io.StringIO()
            reporter = self.reporter()
            reporter.start(target, 1.0, 5.0)
            reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.0042))
            self.assertEqual(self.out.getvalue().splitlines()[1], f"connected in 4.200 ms ({setup})")

    def test_jsonAndLogAgree(self) -> None:
        """
        --json prints exactly the records the log gets; every line parses,
        and the summary record carries the same figures.
        """
        self.play(self.reporter(json_output=True))
        self.assertEqual(self.out.getvalue(), self.log.getvalue())
        records = list(read_records(self.log.getvalue().splitlines()))
        self.assertEqual(records[0]["event"], "start")
        summary = records[-1]
        self.assertEqual(summary["event"], "summary")
        self.assertEqual(
            {k: summary[k] for k in ("sent", "received", "lost", "disconnects", "flatlines", "opens")},
            {"sent": 3, "received": 2, "lost": 1, "disconnects": 1, "flatlines": 1, "opens": 2},
        )
        self.assertEqual(summary["rtt_median_ms"], 1.0)
        self.assertEqual(summary["disconnected_s"], 2.0)

    def test_quiet(self) -> None:
        """
        -q prints only the summary, while the log still gets everything.
        """
        self.play(self.reporter(quiet=True))
        self.assertTrue(self.out.getvalue().startswith("--- wss://h:1/ pingproto statistics ---"))
        self.assertEqual(len(self.log.getvalue().splitlines()), 12)

    def test_reconnectFailureNamedByCause(self) -> None:
        """
        A reconnect that fails after the first open is named by its cause,
        in the same words as a first connection's failure, not in
        Twisted's.
        """
        reporter = self.reporter()
        reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.001))
        reporter.state_changed(StateChange(ConnectionState.CLOSED, "code 1001: going away"))
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        refused = Failure(ConnectionRefusedError())
        reporter.state_changed(StateChange(ConnectionState.CLOSED, refused.getErrorMessage(), reason=refused))
        self.assertEqual(
            self.out.getvalue().splitlines()[-1],
            "cannot connect: connection refused (is the server running on that port?)",
        )

    def test_summaryRunsToTheEnd(self) -> None:
        """
        The summary covers the run to the moment it ends, though nothing
        was recorded since the last failed reconnect (a Ctrl-C while
        waiting to try again): dropped at 5 s, refused again at 6 s and
        stopped at 30 s is a 30 s run with one disconnect (the refusal is
        no second one) and 25 s disconnected.
        """
        reporter = self.reporter(json_output=True)
        reporter.start("wss://h:1/", 1.0, 5.0)
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.001))
        reporter.ping_replied(Sample(1, 0, 0.0010))
        self.now += 5
        reporter.state_changed(StateChange(ConnectionState.CLOSED, "code 1006"))
        self.now += 1
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        refused = Failure(ConnectionRefusedError())
        reporter.state_changed(StateChange(ConnectionState.CLOSED, refused.getErrorMessage(), reason=refused))
        self.now += 24
        reporter.stopping = True
        self.assertEqual(reporter.finish("wss://h:1/"), 0)
        summary = json.loads(self.out.getvalue().splitlines()[-1])
        self.assertEqual(
            (summary["t"], summary["duration_s"], summary["disconnects"], summary["disconnected_s"]),
            (1_764_000_030.0, 30.0, 1, 25.0),
        )

    def test_serverTextEscaped(self) -> None:
        """
        What the server said (a close reason, a refused upgrade's status
        line) is printed with its control characters escaped, C0, DEL and
        C1 alike: it cannot colour the terminal or forge a line.
        """
        reporter = self.reporter()
        reporter.state_changed(StateChange(ConnectionState.OPEN, setup_time=0.001))
        reporter.state_changed(StateChange(ConnectionState.CLOSED, "code 1000: \x1b[31mRED\x1b[0m\nfake: line\r"))
        reporter.state_changed(StateChange(ConnectionState.CONNECTING))
        refused = Failure(HandshakeError('Bad HTTP response status line "\x9b2J\x7f"'))
        reporter.state_changed(StateChange(ConnectionState.CLOSED, refused.getErrorMessage(), reason=refused))
        self.assertEqual(
            self.out.getvalue().splitlines()[1:],
            [
                "disconnected: code 1000: \\x1b[31mRED\\x1b[0m\\nfake: line\\r",
                "reconnecting",
                'cannot connect: WebSocket handshake failed: Bad HTTP response status line "\\x9b2J\\x7f"',
            ],
        )

    def test_serverTextEscapedInJson(self) -> None:
        """
        --json output and the log carry no control character but the
        newline ending each record (JSON, as written, escapes DEL and
        everything past ASCII too), and the record reads back as what was
        said.
        """
        reporter = self.reporter(json_output=True)
        detail = "code 1000: \x1b[31m\x7f\x9b\nfake"
        reporter.state_changed(StateChange(ConnectionState.CLOSED, detail))
        for output in (self.out.getvalue(), self.log.getvalue()):
            self.assertTrue(output[:-1].isprintable(), output)
            self.assertEqual(json.loads(output)["detail"], detail)

    def test_writeFailureTold(self) -> None:
        """
        A write that fails (the reporter is called back from the client,
        where an exception would only be logged) is told once to
        C{write_failed}, and that stream is written no more; the log goes
        on taking every record.
        """

        class Full(io.StringIO):
            def write(self, text: str) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

        told: list[tuple[str, int | None]] = []
        reporter = Reporter(
            Full(), log=self.log, wall=lambda: self.now, write_failed=lambda stream, e: told.append((stream, e.errno))
        )
        reporter.start("ws://h:1/", 1.0, 5.0)
        reporter.ping_replied(Sample(1, 0, 0.001))
        self.assertEqual(told, [("output", errno.ENOSPC)])
        self.assertEqual([json.loads(line)["event"] for line in self.log.getvalue().splitlines()], ["start", "reply"])

    def test_lossReasonsSaid(self) -> None:
        """
        Each loss says why in words, a ping due while not connected too,
        and its record carries the reason's word; all count as lost.
        """
        reporter = self.reporter(json_output=False)
        reporter.ping_replied(Sample(1, 0, 0.001))
        for seq, reason in enumerate(LossReason, 2):
            reporter.ping_lost(Loss(seq, 0, reason))
        self.assertEqual(
            self.out.getvalue().splitlines(),
            ["seq=1 time=1.000 ms", "seq=2 lost (no echo in time)", "seq=3 lost (connection went away)",
             "seq=4 lost (not connected)"],
        )
        self.assertEqual(
            [r.get("reason") for r in read_records(self.log.getvalue().splitlines())],
            [None, "timeout", "disconnect", "not_connected"],
        )
        self.assertEqual(reporter.finish("ws://h/"), 0)
        self.assertIn("4 sent, 1 received, 75.0% lost", self.out.getvalue())

    def test_noReplyExitsOne(self) -> None:
        """
        A run in which nothing came back exits 1.
        """
        reporter = self.reporter()
        reporter.ping_lost(Loss(1, 0, LossReason.TIMEOUT))
        self.assertEqual(reporter.finish("ws://h/"), 1)

    def test_unmatchedSaid(self) -> None:
        """
        Replies that matched no ping end the summary with a line that says
        how many, in the singular for one; none, and there is no such line.
        """
        for unmatched, last in (
            (3, "3 replies matched no ping (too late, repeated, or not an echo)"),
            (1, "1 reply matched no ping (too late, repeated, or not an echo)"),
            (0, "2 opens, setup min/avg/max = 4.200/5.000/5.800 ms; 1 disconnect (2.0 s disconnected), 1 flatline"),
        ):
            self.out = io.StringIO()
            reporter = self.reporter()
            self.play(reporter, unmatched)
            self.assertEqual(self.out.getvalue().splitlines()[-1], last)

    def test_unmatchedInJson(self) -> None:
        """
        The summary record says how many replies matched no ping, none
        included.
        """
        for unmatched in (3, 0):
            self.out = io.StringIO()
            self.play(self.reporter(json_output=True), unmatched)
            self.assertEqual(json.loads(self.out.getvalue().splitlines()[-1])["unmatched"], unmatched)


class CommandTests(ServerTestCase):
    """
    The real command, as a user runs it, against a real server.
    """

    def command(self, *args: str):  # type: ignore[no-untyped-def]
        return pingproto_command(*args)

    def caPath(self) -> str:
        return os.path.abspath(self.caFile)

    @inlineCallbacks
    def test_countSummary(self):  # type: ignore[no-untyped-def]
        """
        C{pingproto ping -c 3 wss://...} prints three replies and a summary
        with 3 sent, 3 received, and exits 0.
        """
        out, err, code = yield self.command("ping", "-c", "3", "-i", "0.1", "--ca", self.caPath(), self.url())
        lines = out.decode().splitlines()
        self.assertEqual(code, 0, err)
        self.assertEqual([line.split(" ")[0] for line in lines[2:5]], ["seq=1", "seq=2", "seq=3"])
        self.assertIn("3 sent, 3 received, 0.0% lost", out.decode())
        self.assertIn("0 disconnects", out.decode())

    @inlineCallbacks
    def test_jsonParses(self):  # type: ignore[no-untyped-def]
        """
        --json output is one JSON object per line, ending in the summary.
        """
        log = os.path.abspath(self.mktemp())
        out, err, code = yield self.command(
            "ping", "--json", "-c", "2", "-i", "0.1", "--log", log, "--ca", self.caPath(), self.url()
        )
        self.assertEqual(code, 0, err)
        records = [json.loads(line) for line in out.decode().splitlines()]
        self.assertEqual([r["event"] for r in records if r["event"] == "reply"], ["reply", "reply"])
        self.assertEqual(records[-1]["received"], 2)
        with open(log) as f:
            self.assertEqual(f.read(), out.decode())

    @inlineCallbacks
    def test_logAfterKilledRun(self):  # type: ignore[no-untyped-def]
        """
        --log appends after a run killed mid-line on a line of its own:
        the cut-off line stays as it was and every new record reads whole.
        """
        log = os.path.abspath(self.mktemp())
        cut = '{"event": "reply", "t": 1764000000.5, "se'
        with open(log, "w") as f:
            f.write(cut)
        out, err, code = yield self.command("ping", "-c", "1", "--log", log, "--ca", self.caPath(), self.url())
        self.assertEqual(code, 0, err)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines[0], cut)
        self.assertEqual([json.loads(line)["event"] for line in lines[1:]][:1], ["start"])
        self.assertEqual(json.loads(lines[-1])["event"], "summary")

    @inlineCallbacks
    def test_refused(self):  # type: ignore[no-untyped-def]
        """
        A refused connection exits 2 with one line that says so.
        """
        yield self.service.stopService()
        out, err, code = yield self.command("ping", "-c", "1", "--ca", self.caPath(), self.url())
        self.assertEqual(code, 2)
        self.assertEqual(err.decode().splitlines(), [f"pingproto ping: cannot connect to {self.url()}: connection refused (is the server running on that port?)"])

    @inlineCallbacks
    def test_refusedJson(self):  # type: ignore[no-untyped-def]
        """
        With --json, a first connection that fails ends standard output
        with an error record carrying the line standard error says (less
        the program's name), as a run that went on ends with its summary;
        with -q too, it is all standard output holds.  The log gets it.
        """
        yield self.service.stopService()
        log = os.path.abspath(self.mktemp())
        message = f"cannot connect to {self.url()}: connection refused (is the server running on that port?)"
        for args in ((), ("-q",)):
            out, err, code = yield self.command("ping", "--json", *args, "--log", log, "--ca", self.caPath(), self.url())
            self.assertEqual((code, err.decode()), (2, f"pingproto ping: {message}\n"))
            records = [json.loads(line) for line in out.decode().splitlines()]
            self.assertEqual(len(records), 1 if args else 4, records)
            self.assertEqual(
                {k: records[-1].get(k) for k in ("event", "target", "message")},
                {"event": "error", "target": self.url(), "message": message},
            )
            self.assertIsInstance(records[-1]["t"], float)
        with open(log) as f:
            self.assertEqual([r["event"] for r in read_records(f)].count("error"), 2)

    @inlineCallbacks
    def test_untrusted(self):  # type: ignore[no-untyped-def]
        """
        A certificate that does not verify exits 2 and says so.
        """
        out, err, code = yield self.command("ping", "-c", "1", self.url())
        self.assertEqual(code, 2)
        self.assertIn(b"certificate does not verify", err)


class NoReplyCommandTests(ServerTestCase):
    tls = False

    @inlineCallbacks
    def test_closeReasonEscaped(self):  # type: ignore[no-untyped-def]
        """
        A server's close reason with escape codes and a line break is
        printed escaped, on the one line that says the connection closed.
        """

        class Closes(EchoServerProtocol):
            def onOpen(self) -> None:
                self.sendClose(1000, "\x1b[31mRED\x1b[0m\nfake: line\r")

        self.service.listeners[0].factory.protocol = Closes
        out, err, code = yield pingproto_command("ping", "-c", "1", self.url())
        self.assertEqual(code, 1, err)
        lines = out.decode().splitlines()
        self.assertIn("disconnected: code 1000: \\x1b[31mRED\\x1b[0m\\nfake: line\\r", lines)
        self.assertFalse(any(line.startswith("fake") for line in lines), lines)
        self.assertNotIn(b"\x1b", out)

    @inlineCallbacks
    def test_noReplyExitsOne(self):  # type: ignore[no-untyped-def]
        """
        A server that accepts the WebSocket but never echoes: every ping is
        lost and the command exits 1.
        """
        listener = self.service.listeners[0]
        listener.factory.protocol = StalledServerProtocol
        out, err, code = yield pingproto_command("ping", "-c", "2", "-i", "0.1", "-W", "0.2", self.url())
        self.assertEqual(code, 1, err)
        self.assertIn(b"2 sent, 0 received, 100.0% lost", out)

    @inlineCallbacks
    def test_unmatchedCounted(self):  # type: ignore[no-untyped-def]
        """
        A server that sends something besides each echo: the summary says
        how many replies matched no ping, and so does the --json summary.
        """

        class Chatty(EchoServerProtocol):
            def onMessage(self, payload: bytes, isBinary: bool) -> None:
                # Before the echo, so that the run cannot end between them.
                self.sendMessage(b"hello", isBinary)
                super().onMessage(payload, isBinary)

        self.service.listeners[0].factory.protocol = Chatty
        for args in ((), ("--json",)):
            out, err, code = yield pingproto_command("ping", *args, "-c", "2", "-i", "0.05", self.url())
            self.assertEqual(code, 0, err)
            if args:
                self.assertEqual(json.loads(out.decode().splitlines()[-1])["unmatched"], 2)
            else:
                self.assertIn("2 replies matched no ping (too late, repeated, or not an echo)", out.decode().splitlines())


class OutageCommandTests(ServerTestCase):
    """
    The real command against a real server on 127.0.0.1 that goes away
    partway through the run.
    """

    tls = False

    def spawn(self, *args: str) -> _Command:
        command = _Command()
        reactor.spawnProcess(
            command, sys.executable, [sys.executable, "-m", "pingproto", "ping", *args, self.url()], env=environment()
        )

        def kill() -> None:
            if not command.ended.called:
                command.transport.signalProcess("KILL")

        self.addCleanup(kill)
        return command

    @inlineCallbacks
    def test_countReachedThroughOutage(self):  # type: ignore[no-untyped-def]
        """
        C{-c 5 -i 0.5} with the server stopped after the third reply ends
        after the fifth interval, as ping(8) would, with pings 4 and 5 lost
        as not connected: 5 sent, 3 received, 40% lost, exit 0 (replies
        came).  It used to reconnect for ever, the count never reached.
        The log holds the same, and C{pingproto report} reads it alike.
        """
        log = os.path.abspath(self.mktemp())
        command = self.spawn("-c", "5", "-i", "0.5", "--log", log)
        yield command.saw(b"seq=3 ")
        yield self.service.stopService()
        code = yield command.ended
        lines = command.out.decode().splitlines()
        self.assertEqual((code, command.err), (0, b""))
        self.assertIn("seq=5 lost (not connected)", lines)
        self.assertIn("5 sent, 3 received, 40.0% lost", command.out.decode())
        with open(log) as f:
            reasons = [r["reason"] for r in read_records(f) if r["event"] == "loss"]
        self.assertEqual(reasons[-1], "not_connected")
        out, err, code = yield pingproto_command("report", log)
        self.assertEqual((code, err), (0, b""))
        self.assertIn(b"5 sent, 3 received, 40.0% lost", out)

    test_countReachedThroughOutage.timeout = 30  # type: ignore[attr-defined]

    @inlineCallbacks
    def test_interruptedDuringOutage(self):  # type: ignore[no-untyped-def]
        """
        Without a count, Ctrl-C during the outage gives a summary that
        shows it as loss, the pings due while not connected counted, where
        it used to say 0.0% lost.
        """
        command = self.spawn("-i", "0.2")
        yield command.saw(b"seq=2 ")
        yield self.service.stopService()
        yield command.saw(b"lost (not connected)")
        command.transport.signalProcess("INT")
        code = yield command.ended
        self.assertEqual((code, command.err), (0, b""))
        summary = next(line for line in command.out.decode().splitlines() if " sent, " in line)
        sent, received = (int(word) for word in summary.split()[0:3:2])
        self.assertGreater(sent, received)
        self.assertNotIn(" 0.0% lost", summary)

    test_interruptedDuringOutage.timeout = 30  # type: ignore[attr-defined]


class WriteFailureTests(ServerTestCase):
    """
    The real command, against a real server, when standard output or the
    log stops taking what it writes mid-run.
    """

    tls = False

    def spawn(self, *args: str, script: str | None = None) -> _Command:
        """
        Run C{pingproto ping ARGS}, by C{python -c SCRIPT} if given; a run
        still going when the test ends (one that never stops) is killed.
        """
        command = _Command()
        start = ["-m", "pingproto"] if script is None else ["-c", script]
        reactor.spawnProcess(command, sys.executable, [sys.executable, *start, "ping", *args], env=environment())

        def kill() -> Deferred[int] | None:
            if command.ended.called:
                return None
            command.transport.signalProcess("KILL")
            return command.ended

        self.addCleanup(kill)
        return command

    @inlineCallbacks
    def test_readerGoneMidRun(self):  # type: ignore[no-untyped-def]
        """
        A reader that goes away mid-run (C{pingproto ping URL | head -1})
        ends the run at once and quietly, with no count to end it: no
        traceback, and exit 1, as for any command whose reader went away.
        """
        command = self.spawn("-i", "0.05", self.url())
        yield command.saw(b"PING ")
        command.transport.closeStdout()
        code = yield command.ended
        self.assertEqual((code, command.err), (1, b""))

    @inlineCallbacks
    def test_logFull(self):  # type: ignore[no-untyped-def]
        """
        A log that cannot take the first record (C{--log /dev/full}): one
        line naming it and why, exit 2, and no connection made.
        """
        command = self.spawn("-c", "1", "--log", "/dev/full", self.url())
        code = yield command.ended
        self.assertEqual(
            command.err.decode().splitlines(), ["pingproto ping: cannot write log file /dev/full: No space left on device"]
        )
        self.assertEqual(code, 2)
        self.assertNotIn(b"connected", command.out)

    @inlineCallbacks
    def test_logStopsMidRun(self):  # type: ignore[no-untyped-def]
        """
        A log that stops taking records mid-run (a file size limit here, a
        full disk alike) ends the run, which has no count to end it: one
        line naming the log and why, the summary as for Ctrl-C, and exit 2
        though replies came (the run was to be recorded, and was not).
        """
        log = os.path.abspath(self.mktemp())
        # Python ignores SIGXFSZ: a write past the limit fails with EFBIG.
        script = (
            "import resource\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (600, 600))\n"
            "from pingproto.cli import entry_point\n"
            "entry_point()\n"
        )
        command = self.spawn("-i", "0.05", "--log", log, self.url(), script=script)
        code = yield command.ended
        self.assertEqual(command.err.decode().splitlines(), [f"pingproto ping: cannot write log file {log}: File too large"])
        self.assertEqual(code, 2)
        self.assertIn(b"seq=1 time=", command.out)
        self.assertIn(b"pingproto statistics", command.out)


class _Answer(Protocol):
    """
    Answers whatever comes with the factory's bytes, then, if the factory
    says so, closes.
    """

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(self.factory.answer)
        if self.factory.close:
            self.transport.loseConnection()


class BadAnswerTests(TestCase):
    """
    The real command against a listener that answers the upgrade with
    something other than HTTP.
    """

    def answering(self, answer: bytes, close: bool) -> str:
        factory = Factory.forProtocol(_Answer)
        factory.answer = answer  # type: ignore[attr-defined]
        factory.close = close  # type: ignore[attr-defined]
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"ws://127.0.0.1:{port.getHost().port}/"

    @inlineCallbacks
    def test_notHttp(self):  # type: ignore[no-untyped-def]
        """
        An answer that is not HTTP, whether or not it is UTF-8 text and
        ends a head, is named as such in one line, exit 2, no traceback;
        so is an HTTP answer whose head is not UTF-8.  A server that says
        something else and then nothing (another protocol's greeting) is
        named at once, not at the 10 s handshake timeout.
        """
        not_http = "WebSocket handshake failed: the server's answer is not HTTP (is it a WebSocket server?)"
        for answer, close, words in (
            (b"\x00\xffgarbage\r\n\r\n", False, not_http),
            (b"\x00\xffgarbage", True, not_http),
            (b"SSH-2.0-OpenSSH_9.2\r\n", False, not_http),
            (b"HTTP/1.1 200 OK\r\nX: \xe9\r\n\r\n", False,
             "WebSocket handshake failed: the server's HTTP answer is not UTF-8 text"),
        ):
            url = self.answering(answer, close)
            started = reactor.seconds()
            out, err, code = yield pingproto_command("ping", "-c", "1", url)
            self.assertEqual(code, 2, answer)
            self.assertEqual(err.decode().splitlines(), [f"pingproto ping: cannot connect to {url}: {words}"])
            self.assertLess(reactor.seconds() - started, 5.0, answer)


    @inlineCallbacks
    def test_answerCutShort(self):  # type: ignore[no-untyped-def]
        """
        A server that ends the connection partway through its answer's
        head is named as that in pingproto's words, not in Autobahn's
        ("peer dropped the TCP connection without previous WebSocket
        closing handshake").
        """
        url = self.answering(b"HTTP/1.1 101 Switching Protocols\r\n", True)
        out, err, code = yield pingproto_command("ping", "-c", "1", url)
        self.assertEqual(code, 2)
        self.assertEqual(
            err.decode().splitlines(),
            [f"pingproto ping: cannot connect to {url}: WebSocket handshake failed: the server closed the connection"],
        )

    @inlineCallbacks
    def test_endlessHead(self):  # type: ignore[no-untyped-def]
        """
        An HTTP answer whose head goes on past 16 KiB without ending (a
        header without end, or header lines without end) is refused as
        soon as it passes that, in one line that says so, exit 2: not read
        for as long as the handshake timeout lets it go on (10 s, and as
        much memory as the server sends meanwhile), then named a timeout.
        A whole head over 16 KiB is refused alike.
        """
        head = b"HTTP/1.1 101 Switching Protocols\r\nX-Junk: " + b"a" * 20_000
        for answer in (head, head + b"\r\n\r\n"):
            url = self.answering(answer, False)
            started = reactor.seconds()
            out, err, code = yield pingproto_command("ping", "-c", "1", url)
            self.assertEqual(code, 2)
            self.assertEqual(
                err.decode().splitlines(),
                [f"pingproto ping: cannot connect to {url}: WebSocket handshake failed: "
                 "the server's HTTP answer head is over 16 KiB"],
            )
            self.assertLess(reactor.seconds() - started, 5.0)

    @inlineCallbacks
    def test_http10Answer(self):  # type: ignore[no-untyped-def]
        """
        An HTTP/1.0 server's answer (Python's http.server answers so) is
        said to be no upgrade, quoting it, not an "unsupported HTTP
        version", which sent the user looking at versions.
        """
        url = self.answering(b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6\r\n\r\n<html>", False)
        out, err, code = yield pingproto_command("ping", "-c", "1", url)
        self.assertEqual(code, 2)
        self.assertEqual(
            err.decode().splitlines(),
            [f'pingproto ping: cannot connect to {url}: WebSocket handshake failed: the server answered '
             '"HTTP/1.0 200 OK", not a WebSocket upgrade (HTTP/1.1 101)'],
        )

    @inlineCallbacks
    def test_longReasonCut(self):  # type: ignore[no-untyped-def]
        """
        A refused upgrade whose reason phrase is 10 KB long is quoted to
        its first 200 characters (of the message that quotes it) and
        "...", escaped as ever: one line a user can read, not a screenful.
        """
        # Autobahn reads a status line as Latin-1 and refuses C0 controls
        # in it: a C1 control (CSI) comes as UTF-8 "\xc2\x9b".
        phrase = b"\xc2\x9b" + b"x" * 10_000
        url = self.answering(b"HTTP/1.1 400 " + phrase + b"\r\n\r\n", False)
        out, err, code = yield pingproto_command("ping", "-c", "1", url)
        said = f"WebSocket connection upgrade failed [400]: {phrase.decode('latin-1')}"
        self.assertEqual(code, 2)
        self.assertEqual(
            err.decode().splitlines(),
            [f"pingproto ping: cannot connect to {url}: WebSocket handshake failed: "
             + said[:200].replace("\x9b", "\\x9b") + "..."],
        )


class CertificateTests(TestCase):
    """
    The real command against TLS listeners whose certificates a client
    must refuse, each refusal named in one line by why.
    """

    def serving(self, cert: trustme.LeafCert) -> str:
        options = ssl.PrivateCertificate.loadPEM(cert.private_key_and_cert_chain_pem.bytes().decode()).options()
        port = reactor.listenSSL(0, Factory.forProtocol(Protocol), options, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        return f"wss://localhost:{port.getHost().port}/"

    @inlineCallbacks
    def refusal(self, ca: trustme.CA, cert: trustme.LeafCert):  # type: ignore[no-untyped-def]
        """
        What C{pingproto ping --ca CA} says on standard error, having
        exited 2, against a server with C{cert}; the prefix left out.
        """
        url = self.serving(cert)
        ca_file = write_ca_file(os.path.abspath(self.mktemp()), ca)
        out, err, code = yield pingproto_command("ping", "-c", "1", "--ca", ca_file, url)
        self.assertEqual(code, 2, err)
        prefix = f"pingproto ping: cannot connect to {url}: "
        [line] = err.decode().splitlines()
        self.assertTrue(line.startswith(prefix), line)
        return line[len(prefix):]

    @inlineCallbacks
    def test_expired(self):  # type: ignore[no-untyped-def]
        """
        An expired certificate from a trusted CA is named as expired, not
        as a CA the client does not trust.
        """
        ca = trustme.CA()
        cert = ca.issue_cert(
            "localhost", not_before=datetime.datetime(2020, 1, 1), not_after=datetime.datetime(2021, 1, 1)
        )
        said = yield self.refusal(ca, cert)
        self.assertEqual(said, "TLS: the server's certificate does not verify: certificate has expired")

    @inlineCallbacks
    def test_otherHost(self):  # type: ignore[no-untyped-def]
        """
        A trusted certificate for another host name is named as such.
        """
        ca = trustme.CA()
        said = yield self.refusal(ca, ca.issue_cert("example.org"))
        self.assertEqual(said, "TLS: the server's certificate is not for this host name")

    @inlineCallbacks
    def test_otherCA(self):  # type: ignore[no-untyped-def]
        """
        A certificate from a CA that C{--ca} does not name gets the hint to
        give the right one, with OpenSSL's words for what was missing.
        """
        said = yield self.refusal(trustme.CA(), trustme.CA().issue_cert("localhost"))
        self.assertEqual(
            said,
            "TLS: the server's certificate does not verify: unable to get local issuer certificate"
            " (wrong CA? use --ca FILE)",
        )


class _Command(ProcessProtocol):
    """
    Collects a command's output; C{saw(text)} fires once stdout holds it.
    """

    def __init__(self) -> None:
        self.out = b""
        self.err = b""
        self.waiting: list[tuple[bytes, Deferred[None]]] = []
        self.ended: Deferred[int] = Deferred()

    def saw(self, text: bytes) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self.waiting.append((text, d))
        self.outReceived(b"")
        return d

    def outReceived(self, data: bytes) -> None:
        self.out += data
        for entry in list(self.waiting):
            if entry[0] in self.out:
                self.waiting.remove(entry)
                entry[1].callback(None)

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason: Failure) -> None:
        # Not if the test timed out waiting, which cancelled it.
        if not self.ended.called:
            self.ended.callback(reason.value.exitCode)


class SignalTests(ServerTestCase):
    tls = False

    @inlineCallbacks
    def test_secondSignalWhileClosing(self):  # type: ignore[no-untyped-def]
        """
        A second SIGTERM while the close is pending (C{timeout} sends two)
        drops the connection at once: no traceback, the summary is printed,
        and the exit status is as for one interrupt.
        """
        closing: Deferred[None] = Deferred()

        class DeafToClose(EchoServerProtocol):
            """
            A server that echoes but never answers a close frame.
            """

            def onCloseFrame(self, code, reasonRaw):  # type: ignore[no-untyped-def]
                if not closing.called:
                    closing.callback(None)
                return False

        self.service.listeners[0].factory.protocol = DeafToClose
        command = _Command()
        reactor.spawnProcess(
            command,
            sys.executable,
            [sys.executable, "-m", "pingproto", "ping", "-i", "0.05", self.url()],
            env=environment(),
        )
        yield command.saw(b"seq=1 ")
        command.transport.signalProcess("TERM")
        # The client's close frame has arrived, and will not be answered.
        yield closing
        command.transport.signalProcess("TERM")
        code = yield command.ended
        self.assertEqual(command.err, b"")
        self.assertEqual(code, 0)
        self.assertIn(b"pingproto statistics", command.out)

    @inlineCallbacks
    def test_signalAsPythonEnds(self):  # type: ignore[no-untyped-def]
        """
        A SIGINT that comes once the run is over, as Python shuts down (the
        second of two quick Ctrl-Cs), changes nothing: exit 0 for a run
        with replies.  Python puts the default handler back as it shuts
        down, which would kill the process (exit 130).
        """
        script = (
            "import os, signal\n"
            "from pingproto.cli import entry_point\n"
            "class Late:\n"
            "    def __del__(self):\n"
            "        os.kill(os.getpid(), signal.SIGINT)\n"
            # Deleted with __main__'s globals, after Python's signal
            # handling has shut down.
            "late = Late()\n"
            "entry_point()\n"
        )
        command = _Command()
        reactor.spawnProcess(
            command, sys.executable, [sys.executable, "-c", script, "ping", "-c", "1", self.url()], env=environment()
        )
        code = yield command.ended
        self.assertEqual((code, command.err), (0, b""))
        self.assertIn(b"1 sent, 1 received", command.out)
