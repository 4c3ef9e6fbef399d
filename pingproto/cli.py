"""
The C{pingproto} command: one entry point, a subcommand per job.

Each subcommand lives in its own module as a L{usage.Options} subclass with
a C{run()} method returning the exit status; this module only dispatches and
turns usage errors into ping-style exit status 2 with one clear line.  What
standard output's failures mean is decided here too, once for every
command: a C{run()} lets them out (L{BrokenPipeError}, L{OutputError}).
"""

from __future__ import annotations

import contextlib
import getopt
import importlib
import importlib.metadata
import os
import signal
import sys
from typing import Any, Callable, Iterator, Sequence, TextIO, cast

from twisted.python import usage

__all__ = [
    "EXIT_ERROR",
    "EXIT_NO_REPLY",
    "EXIT_OK",
    "CommandOptions",
    "InterspersedOptions",
    "Options",
    "OutputError",
    "main",
]

# Every command's exit statuses, as ping(8)'s: 0 when replies came, 1 when
# none did, 2 for anything else (a usage error, a connection or TLS set-up
# that failed, a file that could not be read or written).
EXIT_OK = 0
EXIT_NO_REPLY = 1
EXIT_ERROR = 2


class OutputError(OSError):
    """
    Standard output cannot be written (a full disk, C{>/dev/full}): the
    command ends with one line saying so and L{EXIT_ERROR}.  A reader that
    went away is a L{BrokenPipeError} instead, which ends it quietly.
    """


@contextlib.contextmanager
def _as_output_error() -> Iterator[None]:
    try:
        yield
    except (BrokenPipeError, OutputError):
        raise
    except OSError as e:
        raise OutputError(e.errno, e.strerror) from e


class _CheckedOutput:
    """
    Standard output, whose write failures raise L{OutputError}: told apart
    from any other L{OSError} a command lets out, which is a bug to show.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        with _as_output_error():
            return self._stream.write(text)

    def flush(self) -> None:
        with _as_output_error():
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class CommandOptions(usage.Options):
    """
    What every C{pingproto} command's options have: a C{--version} that
    names pingproto's version (L{usage.Options}' own names Twisted's).
    """

    def opt_version(self) -> None:
        """
        Print pingproto's version and exit.
        """
        print(f"pingproto {version()}")
        sys.exit(0)


class InterspersedOptions(CommandOptions):
    """
    Options that may come after the positional arguments, as in
    C{pingproto report FILE -o OUT.png}; L{usage.Options} stops at the
    first positional argument.
    """

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        argv = list(sys.argv[1:] if options is None else options)
        try:
            found, positional = getopt.gnu_getopt(argv, self.shortOpt, self.longOpt)
        except getopt.error as e:
            raise usage.UsageError(str(e)) from None
        ordered: list[str] = []
        for name, value in found:
            ordered.append(name)
            if name.startswith("--"):
                takes_value = name[2:] + "=" in self.longOpt
            else:
                takes_value = name[1:] + ":" in self.shortOpt
            if takes_value:
                ordered.append(value)
        super().parseOptions(ordered + ["--"] + positional)


def version() -> str:
    """
    The installed distribution's version; the package's own when it runs
    from a source tree that was never installed.
    """
    try:
        return importlib.metadata.version("pingproto")
    except importlib.metadata.PackageNotFoundError:
        from pingproto import __version__

        return __version__


def _lazy(module: str, name: str) -> Callable[[], usage.Options]:
    def make() -> usage.Options:
        return getattr(importlib.import_module(module), name)()

    return make


class Options(CommandOptions):
    synopsis = "pingproto COMMAND [options]"
    longdesc = "Measure the WebSocket link to a pingproto (or any echo) server."

    # Each subcommand's module is imported only when it is the one asked
    # for, so `pingproto app` does not pay for the plotting libraries
    # `report` needs.
    subCommands = [
        ["ping", None, _lazy("pingproto.pingcmd", "PingOptions"), "Ping a server once per interval, like ping(8)."],
        ["report", None, _lazy("pingproto.report", "ReportOptions"), "Summarize or plot a --log file."],
        ["app", None, _lazy("pingproto.webapp", "AppOptions"), "Write the web page, or print it as a data: URL."],
    ]

    def getSynopsis(self) -> str:
        # A command's help begins "pingproto ping [options] URL", not with
        # this synopsis and then the command's.
        return "pingproto" if self.subCommand else self.synopsis

    def postOptions(self) -> None:
        if self.subCommand is None:
            raise usage.UsageError("give a command: ping, report or app")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Run the command line; return the exit status.
    """
    options = Options()
    try:
        options.parseOptions(list(sys.argv[1:] if argv is None else argv))
    except usage.UsageError as e:
        command = f"pingproto {options.subCommand}" if options.subCommand else "pingproto"
        with contextlib.suppress(OSError):
            # Standard error gone (2>/dev/full): the status still says it.
            sys.stderr.write(f"{command}: {e}\nTry '{command} --help'.\n")
        return EXIT_ERROR
    return int(options.subOptions.run())


def entry_point() -> None:
    """
    The C{pingproto} console script and C{python -m pingproto}: L{main},
    with standard output's failures turned into one line and an exit
    status rather than a traceback.  L{main} itself leaves C{sys.stdout}
    alone, for callers (tests) that swap it.
    """
    if sys.stdout is None:
        # Started with standard output closed (>&-): every command prints
        # its result there, and a file it opened would take its place.
        _complain("pingproto: standard output is closed")
        sys.exit(EXIT_ERROR)
    sys.stdout = cast(TextIO, _CheckedOutput(sys.stdout))
    status: int | str | None
    try:
        try:
            status = main()
        except SystemExit as e:
            # --help and --version print, then exit: what they printed is
            # flushed below too, not at the interpreter's exit, where a
            # failure is a traceback and exit status 120.
            status = e.code
        sys.stdout.flush()
        # The command is over: a signal now (the second of two quick
        # Ctrl-Cs) must not change how it ended.  Python puts the default
        # handlers back as it shuts down, and a SIGINT then killed the
        # process (status 130) after the summary.
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
    except BrokenPipeError:
        # The reader went away (pingproto ping ... | head): nothing more to
        # say, and no traceback about it.
        _send_nowhere(sys.stdout)
        status = 1
    except OutputError as e:
        _complain(f"pingproto: cannot write to standard output: {e.strerror}")
        _send_nowhere(sys.stdout)
        status = EXIT_ERROR
    _flush_stderr()
    sys.exit(status)


def _flush_stderr() -> None:
    """
    Flush standard error now, and send it nowhere if that fails (C{2>&1 |
    head -1}, C{2>/dev/full}): a line that could not be written stays in
    its buffer, and the interpreter's flush at exit would fail on it again,
    with a traceback where nobody reads and exit status 120 rather than
    the command's own.
    """
    if sys.stderr is None:
        return
    try:
        sys.stderr.flush()
    except OSError:
        _send_nowhere(sys.stderr)


def _send_nowhere(stream: TextIO) -> None:
    """
    Send C{stream} nowhere from here on, so that the flush at exit, of
    what could not be written, cannot fail again.
    """
    os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())


def _complain(line: str) -> None:
    if sys.stderr is not None:
        sys.stderr.write(line + "\n")
