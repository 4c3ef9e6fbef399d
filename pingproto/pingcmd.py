"""
C{pingproto ping URL}: what ping(8) is, for a WebSocket echo server.

One line per reply, loss, disconnect and reconnect, a summary on Ctrl-C or
after C{-c COUNT}, and ping's exit status: 0 when replies came, 1 when none
did, 2 on a usage or connection-setup error or a log that could not be
written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import threading
import time
from typing import IO, Any, Callable
from urllib.parse import urlsplit

from OpenSSL.SSL import Error as SSLError
from service_identity import VerificationError
from twisted.internet.error import ConnectionRefusedError, DNSLookupError, TimeoutError
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from pingproto._reactor import or_global_reactor
from pingproto.cli import EXIT_ERROR, EXIT_NO_REPLY, EXIT_OK, InterspersedOptions
from pingproto.client import (
    ConnectionState,
    HandshakeError,
    IPingObserver,
    PingMonitor,
    StateChange,
    TLSHandshakeIncomplete,
    VERIFY_ENTRY,
)
from pingproto.config import check_ws_url, naming_options, positive_int, read_number, seconds_or_off
from pingproto.records import Record, RecordFolder, format_summary, summary_record
from pingproto.session import Loss, LossReason, Sample
from pingproto.text import printable
from pingproto.tls import openssl_queue, openssl_reasons
from pingproto.tlsfiles import TLSConfigError

__all__ = ["PingOptions", "Reporter", "describe_failure"]


def _seconds(minimum: float) -> Callable[[str], float]:
    def coerce(text: str) -> float:
        value = read_number(text, float, "a number of seconds")
        if not minimum <= value < 86400:
            raise ValueError(f"{text!r} must be from {minimum:g} s to under a day")
        return value

    coerce.coerceDoc = f"Seconds, fractions allowed (at least {minimum:g})."  # type: ignore[attr-defined]
    return coerce


# The flatline when --flatline is not given, unless the reply timeout is
# longer (PingOptions.postOptions).
DEFAULT_FLATLINE = 10.0


class PingOptions(InterspersedOptions):
    synopsis = "[options] ws[s]://HOST:PORT[/PATH]"
    longdesc = (
        "Send one ping per interval to a WebSocket echo server and print each "
        "round trip, like ping(8). Ctrl-C prints the summary."
    )
    optFlags = [
        ["json", None, "Print one JSON object per event and one for the summary."],
        ["quiet", "q", "Print only the summary."],
    ]
    optParameters = naming_options([
        ["count", "c", None, "Stop after this many pings, answered or lost", positive_int],
        ["interval", "i", 1.0, "Seconds between pings.", _seconds(0.01)],
        ["timeout", "W", 5.0, "A reply later than this counts as lost.", _seconds(0.001)],
        [
            "flatline",
            None,
            None,
            "Close and reconnect when an open connection has echoed nothing "
            f"for this long; no shorter than --timeout. [default: {DEFAULT_FLATLINE:g}, "
            "or --timeout if longer]",
            # The server's timers' rule: 0, or 0.1 s at least, a slip such as
            # 1e-3 would close every link.
            seconds_or_off,
        ],
        ["ca", None, None, "Trust this CA certificate file (PEM) instead of the system's."],
        ["log", None, None, "Append every event to FILE as JSON lines, flushed as it goes."],
    ])

    # Twisted's Options calls parseArgs() with the positional arguments;
    # counting them here lets the message say what went wrong.
    def parseArgs(self, *urls: str) -> None:
        if not urls:
            for name in ("ca", "log"):
                value = self[name]
                if urlsplit(value or "").scheme.lower() in ("ws", "wss"):
                    # "ping --ca ws://...": the option took the URL as its value.
                    raise usage.UsageError(f"--{name} took the URL {value!r} as its FILE: give --{name} FILE, then the URL")
        if len(urls) != 1:
            raise usage.UsageError("give one ws:// or wss:// URL")
        [url] = urls
        try:
            self["url"] = check_ws_url(url)
        except ValueError as e:
            raise usage.UsageError(str(e)) from None

    def postOptions(self) -> None:
        if self["ca"] is not None and urlsplit(self["url"]).scheme != "wss":
            raise usage.UsageError("--ca only applies to wss:// URLs")
        flatline, timeout = self["flatline"], self["timeout"]
        if flatline is None:
            # Not asked for: a long timeout is not refused for it.
            self["flatline"] = max(DEFAULT_FLATLINE, timeout)
        elif 0 < flatline < timeout:
            # The flatline would close the connection under a ping still
            # within its timeout: a slow echo would count as lost to the
            # connection going away.
            raise usage.UsageError(
                f"--flatline {flatline:g} is shorter than --timeout (-W) {timeout:g}: "
                f"give --flatline {timeout:g} or more, or 0 for never"
            )

    def run(self, reactor: Any = None, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
        reactor = or_global_reactor(reactor)
        # Closed by the shell (2>&-), Python's stderr is None: nothing to say there.
        return _PingRun(self, reactor, stdout or sys.stdout, stderr or sys.stderr or io.StringIO()).run()


def describe_failure(reason: Failure) -> str:
    """
    Why a connection could not be set up, in words a user can act on, and
    safe to print: what the server said is escaped.
    """
    return printable(_describe_failure(reason))


def _describe_failure(reason: Failure) -> str:
    if reason.check(DNSLookupError):
        return "unknown host"
    if reason.check(ConnectionRefusedError):
        return "connection refused (is the server running on that port?)"
    if reason.check(TimeoutError):
        return "connection timed out"
    if reason.check(VerificationError):
        return "TLS: the server's certificate is not for this host name"
    if reason.check(SSLError):
        text = str(reason.value)
        if "certificate verify failed" in text:
            return _not_verified(reason.value)
        if "wrong version number" in text or "packet length too long" in text:
            return "TLS: the server does not speak TLS here (try ws://)"
        if "alert protocol version" in text or "unsupported protocol" in text:
            # The server refused the client's versions, or the client the
            # server's.
            return "TLS: the server speaks no TLS version the client does (TLS 1.2 or 1.3)"
        return f"TLS handshake failed: {openssl_reasons(reason.value)}"
    if reason.check(TLSHandshakeIncomplete):
        return "TLS: the server did not complete a TLS handshake (does it speak TLS on this port? try ws://)"
    if reason.check(HandshakeError):
        return f"WebSocket handshake failed: {reason.getErrorMessage()}"
    return reason.getErrorMessage()


def _not_verified(error: SSLError) -> str:
    """
    Why the server's certificate did not verify, as the client found it
    (L{VERIFY_ENTRY}); the hint to name the right CA unless it is the
    certificate's dates, which no CA mends.
    """
    queue = openssl_queue(error)
    why = next((entry[-1] for entry in queue if entry[:1] == (VERIFY_ENTRY,)), "")
    if "expired" in why or "not yet valid" in why:
        return f"TLS: the server's certificate does not verify: {why}"
    return f"TLS: the server's certificate does not verify{': ' + why if why else ''} (wrong CA? use --ca FILE)"


# The records that end a run, which -q prints: its summary, or the error
# that stopped it before it began.
_FINAL_EVENTS = ("summary", "error")

# How a loss's line says why, by its reason.
_LOSS_WORDS = {
    LossReason.TIMEOUT: "no echo in time",
    LossReason.DISCONNECT: "connection went away",
    LossReason.NOT_CONNECTED: "not connected",
}


@implementer(IPingObserver)
class Reporter:
    """
    Turns what the client sees into records, prints them as text or JSON,
    appends them to the log, and folds them into the statistics.

    It is called back from the client's protocol, where an exception would
    only be logged: a write that fails stops the writing to that stream
    (C{out} or C{log} becomes L{None}) and is told to C{write_failed}, with
    C{"output"} or C{"log"} and the error, or raised when there is none.
    """

    def __init__(
        self,
        out: IO[str],
        *,
        json_output: bool = False,
        quiet: bool = False,
        log: IO[str] | None = None,
        wall: Callable[[], float] = time.time,
        write_failed: Callable[[str, OSError], object] | None = None,
    ) -> None:
        self.out: IO[str] | None = out
        self.json_output = json_output
        self.quiet = quiet
        self.log = log
        self.wall = wall
        self.write_failed = write_failed
        self.folder = RecordFolder()
        self.stopping = False
        self._was_open = False
        self._ever_open = False
        self._setup = ""

    def emit(self, record: Record, text: str | None) -> None:
        self.folder.feed(record)
        line = json.dumps(record, separators=(",", ":"))
        if self.log is not None:
            try:
                self.log.write(line + "\n")
                self.log.flush()
            except OSError as e:
                self.log = None
                self._failed("log", e)
        if self.out is None or (self.quiet and record["event"] not in _FINAL_EVENTS):
            return
        try:
            if self.json_output:
                self.out.write(line + "\n")
            elif text is not None:
                self.out.write(text + "\n")
            self.out.flush()
        except OSError as e:
            self.out = None
            self._failed("output", e)

    def _failed(self, stream: str, error: OSError) -> None:
        if self.write_failed is None:
            raise error
        self.write_failed(stream, error)

    def start(self, target: str, interval: float, timeout: float) -> None:
        tls = target.lower().startswith("wss:")
        self._setup = "TCP + TLS + WebSocket upgrade" if tls else "TCP + WebSocket upgrade"
        self.emit(
            {"event": "start", "t": self.wall(), "target": target, "interval": interval, "timeout": timeout},
            f"PING {target}: one ping every {interval:g} s, reply timeout {timeout:g} s",
        )

    def ping_replied(self, sample: Sample) -> None:
        self.emit(
            {"event": "reply", "t": self.wall(), "seq": sample.seq, "rtt_ms": round(sample.rtt * 1000, 6)},
            f"seq={sample.seq} time={sample.rtt * 1000:.3f} ms",
        )

    def ping_lost(self, loss: Loss) -> None:
        why = _LOSS_WORDS.get(loss.reason, loss.reason.value)
        self.emit(
            {"event": "loss", "t": self.wall(), "seq": loss.seq, "reason": loss.reason.value},
            f"seq={loss.seq} lost ({why})",
        )

    def flatline(self, silence: float) -> None:
        self.emit(
            {"event": "flatline", "t": self.wall(), "silence_s": silence},
            f"flatline: open but no echo for {silence:g} s; reconnecting",
        )

    def state_changed(self, change: StateChange) -> None:
        record: Record = {"event": "state", "t": self.wall(), "state": change.state.name, "detail": change.detail}
        text: str | None = None
        if change.state is ConnectionState.OPEN:
            record["setup_ms"] = round((change.setup_time or 0.0) * 1000, 6)
            text = f"connected in {record['setup_ms']:.3f} ms ({self._setup})"
            self._was_open = self._ever_open = True
        elif change.state is ConnectionState.CLOSED:
            if change.requested or self.stopping:
                record["deliberate"] = True
            elif self._was_open:
                # The detail may carry the server's close reason.
                text = f"disconnected: {printable(change.detail)}"
            elif self._ever_open:
                # The first failure ends the run with its own message.
                why = describe_failure(change.reason) if change.reason is not None else printable(change.detail)
                text = f"cannot connect: {why}"
            self._was_open = False
        elif change.state is ConnectionState.CONNECTING and self._ever_open:
            text = "reconnecting"
        self.emit(record, text)

    def error(self, target: str, message: str) -> None:
        """
        The run ends without a summary, for C{message}: a record for
        C{--json} and the log, as the summary would have been; the text
        is for standard error, which the caller writes.
        """
        self.emit({"event": "error", "t": self.wall(), "target": target, "message": message}, None)

    def finish(self, target: str, unmatched: int = 0) -> int:
        """
        Print the summary; return ping's exit status.

        @param unmatched: replies that answered no ping outstanding (too
            late, repeated, or not an echo of ours), as the session
            counted them: no record says so, and a server that sends
            them is worth knowing about.
        """
        summary = self.folder.summary(self.wall())
        record = summary_record(target, summary, self.wall())
        record["unmatched"] = unmatched
        lines = format_summary(target, summary)
        if unmatched:
            replies = "1 reply" if unmatched == 1 else f"{unmatched} replies"
            lines.append(f"{replies} matched no ping (too late, repeated, or not an echo)")
        self.emit(record, "\n".join(lines))
        return EXIT_OK if summary.received else EXIT_NO_REPLY


def _open_log(path: str) -> IO[str]:
    """
    Open the log for appending, on a line of its own: a run killed while
    writing leaves its last line without a newline, and this run's first
    record must not be glued onto it.
    """
    log = open(path, "a", encoding="utf-8")
    try:
        # A pipe or a terminal (--log /dev/stdout) has no end to look at.
        if log.seekable() and log.tell():
            with open(path, "rb") as written:
                written.seek(-1, os.SEEK_END)
                if written.read(1) != b"\n":
                    log.write("\n")
    except OSError:
        log.close()
        raise
    return log


class _PingRun:
    """
    One run of the command, which owns the reactor it is given: it runs it
    until the count is reached, the first connection fails, a write fails,
    or SIGINT/SIGTERM, then stops it.
    """

    def __init__(self, options: PingOptions, reactor: Any, stdout: IO[str], stderr: IO[str]) -> None:
        self.options = options
        self.reactor = reactor
        self.stdout = stdout
        self.stderr = stderr
        self.status = EXIT_ERROR
        self.target = options["url"]
        self._stopping = False
        self._summarized = False
        self._log_error: OSError | None = None
        self._output_error: OSError | None = None

    def run(self) -> int:
        options = self.options
        log = None
        if options["log"] is not None:
            try:
                log = _open_log(options["log"])
            except OSError as e:
                self._warn(f"pingproto ping: cannot open log file {options['log']}: {e.strerror or e}\n")
                return EXIT_ERROR
        try:
            return self._run(log)
        finally:
            if log is not None:
                # Every record was flushed as it was written: closing can
                # fail only on what a failed write left behind, and that
                # failure was told when it happened.
                with contextlib.suppress(OSError):
                    log.close()

    def _run(self, log: IO[str] | None) -> int:
        options = self.options
        self.reporter = Reporter(
            self.stdout, json_output=options["json"], quiet=options["quiet"], log=log, write_failed=self._write_failed
        )
        try:
            monitor = PingMonitor(
                self.target,
                self.reporter,
                interval=options["interval"],
                timeout=options["timeout"],
                count=options["count"],
                flatline=options["flatline"] or None,
                ca_file=options["ca"],
                reactor=self.reactor,
                give_up_after=1,
            )
        except TLSConfigError as e:
            # Only the CA file is read here: the line names its option, as
            # the options' own errors do.
            self._warn(f"pingproto ping: --ca: {e}\n")
            return EXIT_ERROR
        self.monitor = monitor
        self.reporter.start(self.target, options["interval"], options["timeout"])
        if self._log_error is None and self._output_error is None:
            monitor.done.addCallbacks(self._finished, self._failed)
            self.reactor.addSystemEventTrigger("before", "shutdown", self._interrupted)
            self.reactor.callWhenRunning(monitor.startService)
            self.reactor.callWhenRunning(self._handle_signals)
            self.reactor.run()
        if self._output_error is not None:
            # What it means is the entry point's to decide, for every
            # command alike (pingproto.cli.OutputError).
            raise self._output_error
        # A log that stops short is an error whatever came back: the run
        # was asked to keep a record, and did not.
        return EXIT_ERROR if self._log_error is not None else self.status

    def _write_failed(self, stream: str, error: OSError) -> None:
        """
        Standard output or the log could not be written.  The log's
        failure is said on standard error and ends the run as Ctrl-C does,
        with the summary; standard output's ends it at once, since there
        is nothing left to show the summary on.
        """
        if stream == "log":
            self._log_error = error
            self._warn(f"pingproto ping: cannot write log file {self.options['log']}: {error.strerror or error}\n")
            stop = self._stop
        else:
            self._output_error = error
            stop = self._abort
        if self.reactor.running:
            # On the next turn: this may be a call from inside the client's
            # service, which cannot be stopped re-entrantly.
            self.reactor.callLater(0, stop)

    def _warn(self, text: str) -> None:
        """
        Say C{text} on standard error if it takes it: a run whose standard
        error is gone (C{2>&1 | head -1}, C{2>/dev/full}) still ends, with
        its exit status.
        """
        try:
            self.stderr.write(text)
            self.stderr.flush()
        except (OSError, ValueError):
            pass

    def _handle_signals(self) -> None:
        """
        Take SIGINT and SIGTERM over from the reactor, whose handler calls
        C{reactor.stop()} for each: a second signal while the close is
        pending (C{timeout} sends two) then raises C{ReactorNotRunning}
        and prints its traceback.
        """
        if threading.current_thread() is not threading.main_thread():
            return
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, lambda number, frame: self.reactor.callFromThread(self._signalled))

    def _signalled(self) -> None:
        """
        The first signal closes cleanly, then prints the summary; another
        one drops the connection at once, so the summary follows now.
        """
        if not self._stopping:
            self._stop()
            return
        self._abort()

    def _abort(self) -> None:
        """
        Stop without waiting for the close handshake.
        """
        self.reporter.stopping = True
        self.monitor.stopService()
        self.monitor.drop_connection()
        self._stop()

    def _stop(self) -> None:
        if not self._stopping:
            self._stopping = True
            self.reactor.stop()

    def _finished(self, _: object) -> None:
        self._summarize()
        self._stop()

    def _summarize(self) -> None:
        # Once: a signal while the last close is pending stops the monitor
        # (_interrupted) just before its count-limited run is done
        # (_finished), and both then ask for the summary.
        if self._summarized:
            return
        self._summarized = True
        self.status = self.reporter.finish(self.target, unmatched=self.monitor.session.unmatched)

    def _failed(self, reason: Failure) -> None:
        self.reporter.stopping = True
        message = f"cannot connect to {self.target}: {describe_failure(reason)}"
        self._warn(f"pingproto ping: {message}\n")
        self.reporter.error(self.target, message)
        self.status = EXIT_ERROR
        self._stop()

    def _interrupted(self) -> Any:
        """
        Ctrl-C or SIGTERM: close cleanly, then print the summary.
        """
        if self.monitor.done.called:
            return None
        self.reporter.stopping = True
        return self.monitor.stopService().addCallback(lambda _: self._summarize())

