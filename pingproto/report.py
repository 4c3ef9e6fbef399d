"""
C{pingproto report FILE}: the summary of a C{--log} file over any window,
and a picture of it.

The picture follows SmokePing: per time bin, the median round trip as a
line inside bands of the spread (10th to 90th and 25th to 75th percentile),
losses as red marks along the top, outages (from a disconnect to the next
open) shaded red, and flatlines as orange lines.
"""

from __future__ import annotations

import datetime
import importlib.util
import json
import math
import sys
from dataclasses import dataclass, field
from typing import IO, Any, Iterable, Iterator, Sequence

from twisted.python import usage

from pingproto.cli import EXIT_ERROR, EXIT_NO_REPLY, EXIT_OK, InterspersedOptions
from pingproto.config import naming_options
from pingproto.records import (
    Record,
    RecordError,
    RecordFolder,
    counted_time,
    format_summary,
    is_moment,
    plural,
    read_records,
    summary_record,
)
from pingproto.stats import LinkSummary, percentile
from pingproto.text import printable

__all__ = ["ReportOptions", "Timeline", "draw", "parse_time", "timeline", "plot"]


def parse_time(text: str) -> float:
    """
    A moment as epoch seconds from ISO 8601 (UTC unless it says otherwise)
    or from a plain number of epoch seconds.
    """
    try:
        # Eight digits are ISO 8601's basic form of a date (20251124); as
        # epoch seconds they would be a moment in 1970 to 1973.
        if len(text) == 8 and text.isdigit():
            raise ValueError(text)
        value = float(text)
    except ValueError:
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{text!r} is neither ISO 8601 (2026-11-25T10:00) nor epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        value = moment.timestamp()
    # The records' own range, outside which a window would start at a
    # moment the report cannot show as a date; NaN and inf fail it too.
    if not is_moment(value):
        raise ValueError(f"{text!r} is not a time from 1970 to before the year 3000")
    return value


parse_time.coerceDoc = "ISO 8601 (UTC unless given) or epoch seconds."  # type: ignore[attr-defined]


@dataclass
class Timeline:
    """
    What happened when, for plotting: round trips in ms, losses, flatlines
    and outages, on the records' wall clock.
    """

    samples: list[tuple[float, float]] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    flatlines: list[float] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    start: float | None = None
    end: float | None = None


def timeline(records: Iterable[Record], folder: RecordFolder | None = None) -> Timeline:
    """
    The timeline of C{records}, which C{folder} (a new one by default)
    folds as they go by: its outages are the ones the summary counts.  A
    window of a log passes the folder that has read the records before it
    and started the window (L{RecordFolder.start_window}), so that the
    window begins in the state they left the link, down from its first
    moment if they ended in an outage.
    """
    if folder is None:
        folder = RecordFolder()
    line = Timeline()
    for record in records:
        # Events are drawn at their own time, and the picture ends at the
        # latest, where the summary ends too.
        line.end = folder.feed(record)
        t = float(record["t"])
        event = record["event"]
        if event == "reply":
            line.samples.append((t, float(record["rtt_ms"])))
        elif event == "loss":
            line.losses.append(t)
        elif event == "flatline":
            line.flatlines.append(t)
    # Read last: a window's records may start it as they are read.
    line.start = folder.first
    if line.end is not None:
        line.outages = folder.outages()
    return line


def _bins(samples: Sequence[tuple[float, float]], start: float, end: float, count: int) -> list[tuple[float, list[float]]]:
    """
    Sorted round trips per time bin, each with the time it starts at, then
    C{end} with none: the last bin's far edge.  Empty bins stay, so lines
    break there.
    """
    width = max((end - start) / count, 1e-9)
    bins: list[list[float]] = [[] for _ in range(count)]
    for t, rtt in samples:
        bins[max(0, min(count - 1, int((t - start) / width)))].append(rtt)
    return [(start + i * width, sorted(b)) for i, b in enumerate(bins)] + [(end, [])]


def _at(values: list[float], fraction: float) -> float:
    return percentile(values, fraction) if values else math.nan


def plot(line: Timeline, path: str, title: str, subtitle: str) -> None:
    """
    Draw the timeline to C{path}; the format follows its extension.
    """
    draw(line, title, subtitle).savefig(path)


def draw(line: Timeline, title: str, subtitle: str) -> Any:
    """
    The timeline as a matplotlib C{Figure}, whose C{axes[0]} holds the
    picture.  It is made without pyplot, so that drawing touches neither
    the backend nor the figures of a program that uses matplotlib itself
    (a notebook keeps its own), and is freed as any object is.
    """
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    # A datetime, which matplotlib plots through its date converter; Any,
    # because its type hints take only numbers for the x values.
    def when(t: float) -> Any:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)

    figure = Figure(figsize=(11, 4.8), dpi=100)
    axes = figure.subplots()
    start = line.start or 0.0
    end = max(line.end or 1.0, start + 1e-3)
    for a, b in line.outages:
        axes.axvspan(when(a), when(b), color="#d62728", alpha=0.15, lw=0, label="_outage")
    for t in line.flatlines:
        axes.axvline(when(t), color="#ff7f0e", lw=1.5)
    top = 1.0
    if line.samples:
        # Like SmokePing, enough pings per bin for the spread to mean something.
        # Drawn from bin edges, each value held to the next edge and the
        # last to the end, so every bin is covered edge to edge (one bin,
        # with under 20 pings, too).
        bins = _bins(line.samples, start, end, min(200, max(1, len(line.samples) // 10)))
        x = [when(edge) for edge, _ in bins]

        def at(fraction: float) -> list[float]:
            values = [_at(v, fraction) for _, v in bins[:-1]]
            return values + values[-1:]

        axes.fill_between(x, at(0.10), at(0.90), color="#1f77b4", alpha=0.15, lw=0, step="post",
                          label="10-90th percentile")
        axes.fill_between(x, at(0.25), at(0.75), color="#1f77b4", alpha=0.35, lw=0, step="post",
                          label="25-75th percentile")
        axes.plot(x, at(0.5), color="#0b3d91", lw=1.4, drawstyle="steps-post", label="median")
        if len(line.samples) <= 3000:
            axes.scatter([when(t) for t, _ in line.samples], [r for _, r in line.samples], s=3,
                         color="#0b3d91", alpha=0.4, lw=0)
        # Replies all of 0 ms (a coarse clock) keep the 1 ms axis: a top
        # of 0 is no range, and matplotlib warns at the user about it.
        top = max(r for _, r in line.samples) * 1.15 or top
    axes.set_ylim(0, top)
    if line.losses:
        axes.scatter([when(t) for t in line.losses], [top * 0.97] * len(line.losses), marker="|", s=120,
                     color="#d62728", label="lost ping", zorder=5)
    axes.plot([], [], color="#ff7f0e", lw=1.5, label="flatline")
    axes.fill_between([], [], color="#d62728", alpha=0.15, label="disconnected")
    axes.set_xlim(when(start), when(end))
    axes.set_ylabel("round-trip time (ms)")
    axes.set_xlabel("time (UTC)")
    # Ticks and labels for any span, a second of pings to weeks of them:
    # the date once (to the right), then the time of day, to the second
    # (and a fraction of it, when the ticks are closer) when it changes.
    locator = mdates.AutoDateLocator()
    seconds = "%H:%M:%S.%f"  # trailing zeros are trimmed
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator,
        formats=["%Y", "%b", "%d", "%H:%M", "%H:%M", seconds],
        zero_formats=["", "%Y", "%b", "%b-%d", "%H:%M", seconds],
        offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d"],
    ))
    axes.grid(True, color="#dddddd", lw=0.6)
    axes.set_title(f"{title}\n{subtitle}", fontsize=10, loc="left")
    axes.legend(loc="upper left", fontsize=8, ncol=3, framealpha=0.9)
    figure.tight_layout()
    return figure


class ReportOptions(InterspersedOptions):
    synopsis = "[options] FILE"
    longdesc = "Summarize a `pingproto ping --log FILE` over a window, and plot it with -o."
    optFlags = [["json", None, "Print the summary as one JSON object."]]
    optParameters = naming_options([
        ["since", None, None, "Only events at or after this time", parse_time],
        ["until", None, None, "Only events before this time", parse_time],
        ["output", "o", None, "Write a plot to this .png or .svg file."],
    ])

    # Twisted's Options calls parseArgs() with the positional arguments;
    # counting them here lets the message say what went wrong, not
    # Twisted's "Wrong number of arguments".
    def parseArgs(self, *paths: str) -> None:
        if len(paths) != 1:
            raise usage.UsageError("give one log file, written by pingproto ping --log FILE")
        self["path"] = paths[0]

    def postOptions(self) -> None:
        output = self["output"]
        if output is not None and not output.lower().endswith((".png", ".svg")):
            raise usage.UsageError(f"-o {output!r}: the plot is written as .png or .svg")
        if output is not None and importlib.util.find_spec("matplotlib") is None:
            raise usage.UsageError("-o needs matplotlib: pip install 'pingproto[plot]'")
        if self["since"] is not None and self["until"] is not None and self["since"] >= self["until"]:
            raise usage.UsageError("--since must be before --until")

    def run(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
        out = stdout or sys.stdout
        err = stderr or sys.stderr
        since, until = self["since"], self["until"]
        window = _Window(since, until)
        read, line = self._read(window, err)
        if not read:
            return EXIT_ERROR
        folder = window.folder
        if until is not None and window.run_goes_on:
            # The run goes on past the window: it ends at --until, not at
            # its last record inside it (a reconnect attempt before it,
            # maybe half a minute earlier, in an outage).
            folder.end_window(until)
            if line is not None and line.start is not None:
                line.end = until
                line.outages = folder.outages()
        target = folder.target or self["path"]
        # Anyone may have written the log: shown, its target is escaped,
        # so that it cannot write to the terminal, nor hold what a strict
        # UTF-8 stdout refuses (a lone surrogate).  JSON escapes its own.
        shown = printable(target)
        summary = folder.summary()
        if self["json"]:
            out.write(json.dumps(summary_record(target, summary, folder.last or 0.0)) + "\n")
        else:
            out.write("\n".join(format_summary(shown, summary)) + "\n")
        if line is not None and line.end is None:
            # Not a picture of nothing, dated 1970.
            err.write(f"pingproto report: no records {_asked(since, until)}to plot; did not write {self['output']}\n")
        elif line is not None:
            try:
                plot(line, self["output"], *_titles(shown, folder, summary))
            except OSError as e:
                err.write(f"pingproto report: cannot write {self['output']}: {e.strerror or e}\n")
                return EXIT_ERROR
            # With --json, stdout holds the JSON alone.
            (err if self["json"] else out).write(f"wrote {self['output']}\n")
        return EXIT_OK if summary.received else EXIT_NO_REPLY

    def _read(self, window: _Window, err: IO[str]) -> tuple[bool, Timeline | None]:
        """
        Read the log through C{window} into its folder, and into a timeline
        when a picture is asked for, a record at a time: a month of pings
        is not held in memory.  False once C{err} says why the log cannot be
        read; lines skipped as cut short are named on C{err} too.
        """
        path = self["path"]
        skipped: list[int] = []
        line = None
        try:
            # utf-8-sig: a log saved by a Windows editor begins with a BOM.
            with open(path, encoding="utf-8-sig") as f:
                # Not the summaries runs wrote: the report makes its own.
                records = window.records(r for r in read_records(f, path, skipped) if r["event"] != "summary")
                if self["output"] is not None:
                    line = timeline(records, window.folder)
                else:
                    for record in records:
                        window.folder.feed(record)
        except OSError as e:
            err.write(f"pingproto report: cannot read {path}: {e.strerror}\n")
            return False, None
        except UnicodeDecodeError:
            err.write(f"pingproto report: {path} is not a pingproto log (not UTF-8 text)\n")
            return False, None
        except RecordError as e:
            err.write(f"pingproto report: {e}\n")
            return False, None
        if skipped:
            lines = ", ".join(map(str, skipped[:5])) + (", ..." if len(skipped) > 5 else "")
            err.write(f"pingproto report: {path}: skipped {plural(len(skipped), 'line')} cut short "
                      f"by an interrupted run (line{'s' if len(skipped) > 1 else ''} {lines})\n")
        return True, line


class _Window:
    """
    The window of a log from C{since} to before C{until} (either open),
    read as the records come: those before it go to L{folder}, which then
    starts the window (L{RecordFolder.start_window}) so that the window
    begins in the state they left the link, and to what; those in it are
    handed on, for the folder to read next; reading stops at the first
    record after it.

    Records are placed by the time they count at (L{counted_time}), which
    never goes back along the log: where the wall clock stepped back, the
    window stays one stretch of it, as the folder reads it.

    @ivar run_goes_on: whether the run of the window's last record went on
        past C{until} (the record after the window is not a run's start).
    """

    def __init__(self, since: float | None, until: float | None) -> None:
        self.since = since
        self.until = until
        self.folder = RecordFolder()
        self.run_goes_on = False

    def records(self, records: Iterable[Record]) -> Iterator[Record]:
        since, until, folder = self.since, self.until, self.folder
        latest: float | None = None
        in_window = since is None
        for record in records:
            latest = counted_time(record, latest)
            if since is not None and not in_window and latest >= since:
                folder.start_window(since)
                in_window = True
            if until is not None and latest >= until:
                self.run_goes_on = record["event"] != "start"
                return
            if in_window:
                yield record
            else:
                folder.feed(record)
        if since is not None and not in_window:
            folder.start_window(since)


def _titles(target: str, folder: RecordFolder, summary: LinkSummary) -> tuple[str, str]:
    """
    The plot's title (what was pinged, and when) and subtitle (how it went).
    """
    loss = f"{summary.loss_percent:.1f}% lost" if summary.sent else "no pings"
    median = f", median {summary.rtt.median * 1000:.3f} ms" if summary.rtt else ""
    return (
        f"pingproto: {target}  {_window(folder.first, folder.last)}",
        f"{summary.sent} pings, {loss}{median}, {plural(summary.disconnects, 'disconnect')}, "
        f"{plural(summary.flatlines, 'flatline')}",
    )


def _asked(since: float | None, until: float | None) -> str:
    """
    The window asked for, as the words after "no records".
    """
    fmt = "%Y-%m-%d %H:%M:%S UTC "
    words = ""
    if since is not None:
        words += f"from {datetime.datetime.fromtimestamp(since, datetime.timezone.utc):{fmt}}"
    if until is not None:
        words += f"before {datetime.datetime.fromtimestamp(until, datetime.timezone.utc):{fmt}}"
    return words


def _window(first: float | None, last: float | None) -> str:
    if first is None or last is None:
        return "(empty)"
    fmt = "%Y-%m-%d %H:%M:%S"
    a = datetime.datetime.fromtimestamp(first, datetime.timezone.utc).strftime(fmt)
    b = datetime.datetime.fromtimestamp(last, datetime.timezone.utc).strftime(fmt)
    return f"{a} to {b} UTC"
