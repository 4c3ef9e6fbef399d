"""
The C{pingproto} command: one entry point, a subcommand per job.

Each subcommand lives in its own module as a L{usage.Options} subclass with
a C{run()} method returning the exit status; this module only dispatches and
turns usage errors into ping-style exit status 2 with one clear line.
"""

from __future__ import annotations

import getopt
import sys
from typing import Sequence

from twisted.python import usage

__all__ = ["InterspersedOptions", "Options", "main"]

EXIT_USAGE = 2


class InterspersedOptions(usage.Options):
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
            if (name[1:] + ":" in self.shortOpt) if not name.startswith("--") else (name[2:] + "=" in self.longOpt):
                ordered.append(value)
        super().parseOptions(ordered + ["--"] + positional)


class Options(usage.Options):
    synopsis = "pingproto COMMAND [options]"
    longdesc = "Measure the WebSocket link to a pingproto (or any echo) server."

    @property
    def subCommands(self):  # type: ignore[no-untyped-def, override]
        # Imported lazily so that `pingproto app` does not pay for the
        # plotting libraries `report` needs, and the other way round.
        from pingproto.pingcmd import PingOptions
        from pingproto.report import ReportOptions
        from pingproto.webapp import AppOptions

        return [
            ["ping", None, PingOptions, "Ping a server once per interval, like ping(8)."],
            ["report", None, ReportOptions, "Summarize or plot a --log file."],
            ["app", None, AppOptions, "Write the web page, or print it as a data: URL."],
        ]

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
        sys.stderr.write(f"{command}: {e}\nTry '{command} --help'.\n")
        return EXIT_USAGE
    return int(options.subOptions.run())


def entry_point() -> None:
    sys.exit(main())
