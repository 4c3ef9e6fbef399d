"""
The JSON-lines record of a ping run, and the summary made from it.

C{pingproto ping --json} prints these records, C{--log FILE} appends them,
and C{pingproto report} reads them back; one L{RecordFolder} turns a stream
of records into a L{LinkSummary} for both, so a live run and a report over
its log agree.  Every record has C{event} and C{t} (wall-clock seconds since
the epoch); the rest depends on the event:

    {"event": "start", "t": ..., "target": "wss://h:1234/", "interval": 1.0, "timeout": 5.0}
    {"event": "state", "t": ..., "state": "OPEN", "detail": "", "setup_ms": 3.1}
    {"event": "reply", "t": ..., "seq": 1, "rtt_ms": 0.412}
    {"event": "loss", "t": ..., "seq": 2, "reason": "timeout"}    (or "disconnect", "not_connected")
    {"event": "flatline", "t": ..., "silence_s": 10.0}
    {"event": "state", "t": ..., "state": "CLOSED", "detail": "code 1000", "deliberate": true}
    {"event": "summary", "t": ..., "target": ..., "sent": 5, ...}
    {"event": "error", "t": ..., "target": ..., "message": "cannot connect to ...: connection refused ..."}

A run ends with its summary, or, when its first connection failed, with
the error, whose message is the line C{pingproto ping} said on standard
error.
"""

from __future__ import annotations

import datetime
import json
from typing import Any, Iterable, Iterator

from pingproto.stats import LinkStats, LinkSummary

__all__ = [
    "RecordError",
    "RecordFolder",
    "format_summary",
    "is_moment",
    "plural",
    "read_records",
    "summary_record",
]

Record = dict[str, Any]


class RecordError(ValueError):
    """
    A log line that is not a pingproto record.
    """


def read_records(
    lines: Iterable[str], source: str = "log", skipped: list[int] | None = None
) -> Iterator[Record]:
    """
    Parse JSON lines, skipping blank ones, and check that each record has
    what its event needs (L{RecordError} naming the line if not).

    A line cut short by a killed run is skipped: quietly when it is the
    last (a run may be writing it still), and with its number added to
    C{skipped} when more records follow, as when another run appended to
    the log.  Such a run may have written its first record on the end of
    the cut-off line, which is read.  A line that is not the beginning of
    a JSON object is not a cut-off one: that is not a log, and an error.
    """
    # A cut-off line with no record after it: skipped if more follow.
    pending: int | None = None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if pending is not None:
            if skipped is not None:
                skipped.append(pending)
            pending = None
        try:
            record, cut = _parse(line)
        except RecursionError:
            # Python's JSON decoder recurses for each level of nesting.
            raise RecordError(f"{source}:{number}: not a pingproto record: nested too deeply") from None
        except ValueError:
            raise RecordError(f"{source}:{number}: not a JSON record: {line[:60]!r}") from None
        if cut:
            if record is None:
                pending = number
                continue
            if skipped is not None:
                skipped.append(number)
        _check(record, source, number)
        yield record


def _parse(line: str) -> tuple[Any, bool]:
    """
    The JSON value on a line, and whether a record cut short comes first
    on it, in which case the value is the record another run appended
    after it, or L{None} if none did.  L{ValueError} if the line is
    neither.
    """
    try:
        return json.loads(line), False
    except ValueError:
        if not line.startswith("{"):
            raise
    found = _appended(line)
    if not _begins_record(line if found is None else line[: found[0]]):
        raise ValueError("not JSON")
    return (None if found is None else found[1]), True


# pingproto writes its records compact, each beginning with its event: a
# record cut short begins so too, or is cut within these nine characters.
_RECORD_START = '{"event":'


def _begins_record(text: str) -> bool:
    """
    Whether C{text} could be a record of pingproto's cut short, rather
    than something that never was one (C{{garbage}).
    """
    return text.startswith(_RECORD_START) or _RECORD_START.startswith(text)


def _appended(line: str) -> tuple[int, Any] | None:
    """
    Where the record another run appended after a cut-off one on the
    same line begins, and that record; or L{None}.

    No string in a record holds an unescaped quote, so the appended
    record is the last C{{"event":} on the line.  One place to try keeps
    a hostile line of a million C{{} from costing a parse at each.
    """
    start = line.rfind(_RECORD_START, 1)
    if start == -1:
        return None
    try:
        record = json.loads(line[start:])
    except ValueError:
        return None
    return (start, record) if isinstance(record, dict) else None


# The range a record's numbers must lie in, beyond which they are no
# measurement but a damaged or hostile log (1e308 ms, a time in the year
# -29719), and would break the arithmetic or the dates of the report.
#
# A record's time is the wall clock of the run that wrote it: never before
# the epoch (a negative time is also one Windows cannot turn into a date),
# and taken to be before the year 3000, which leaves the plot's dates far
# inside what a datetime holds (the year 9999).
EARLIEST = 0.0
LATEST = datetime.datetime(3000, 1, 1, tzinfo=datetime.timezone.utc).timestamp()
# A round trip or a connection's setup takes less than a day: ping's
# --timeout is under a day, and a reply later than that is a loss.
LONGEST_MS = 86_400_000
_MOMENTS = "seconds since 1970 before the year 3000"


def is_moment(value: Any) -> bool:
    """
    Whether C{value} is a time a record may be at, in epoch seconds.
    """
    return _within(value, EARLIEST, LATEST)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _within(value: Any, low: float, high: float) -> bool:
    # Compared as they are: an int too large for a float still compares
    # (math.isfinite would raise), and NaN and the infinities fail.
    return _is_number(value) and low <= value < high


# What the folder and the plot read of each event, beyond 'event' and 't':
# field -> (required, check, what it must be).  Other events pass unchecked,
# so a newer pingproto's records do not stop an older report.
_MS = (lambda v: _within(v, 0, LONGEST_MS), f"a number of ms from 0 to under {LONGEST_MS} (a day)")
_FIELDS: dict[str, dict[str, tuple[bool, Any, str]]] = {
    "start": {"target": (False, lambda v: isinstance(v, str), "a string")},
    "reply": {"rtt_ms": (True, *_MS)},
    "state": {"state": (True, lambda v: isinstance(v, str), "a string")},
}
_OPEN_FIELDS = {"setup_ms": (True, *_MS)}


def _check(record: Any, source: str, number: int) -> None:
    if not isinstance(record, dict) or "event" not in record or not _is_number(record.get("t")):
        raise RecordError(f"{source}:{number}: not a pingproto record (needs 'event' and a numeric 't')")
    if not is_moment(record["t"]):
        raise RecordError(f"{source}:{number}: 't' must be {_MOMENTS}, not {json.dumps(record['t'])[:40]}")
    event = record["event"]
    fields = _FIELDS.get(event, {}) if isinstance(event, str) else {}
    if event == "state" and record.get("state") == "OPEN":
        fields = {**fields, **_OPEN_FIELDS}
    for name, (required, valid, what) in fields.items():
        if name not in record:
            if required:
                raise RecordError(f"{source}:{number}: a {event!r} record needs {name!r} ({what})")
        elif not valid(record[name]):
            raise RecordError(f"{source}:{number}: {name!r} must be {what}, not {json.dumps(record[name])[:40]}")


def counted_time(record: Record, latest: float | None) -> float:
    """
    The time a record counts at: its own, or C{latest} (the latest of the
    records before it) where the wall clock stepped back, so that no time
    passes until it reads later than before and nothing lasts less than
    0 s.
    """
    t = float(record["t"])
    return t if latest is None or t >= latest else latest


class RecordFolder:
    """
    Folds records into link statistics.

    L{start_window} begins the statistics afresh at a moment while keeping
    what the records before it said (the target, whether the link was up),
    so that a window of a log reads as a live run over that time would.
    """

    def __init__(self) -> None:
        self.stats: LinkStats | None = None
        self.target = ""
        self.first: float | None = None
        self.last: float | None = None
        self._open = False

    def start_window(self, t: float) -> None:
        """
        Count from C{t} on, in the state the records so far left the link.
        """
        if self.stats is None:
            return
        self.stats = LinkStats(t, down=self.stats.down)
        self.first = self.last = t

    def end_window(self, t: float) -> None:
        """
        Count to C{t}, where the records go on past it: a window ends
        there, as a live run stopped at that moment would, with an outage
        still going on lasting until then.
        """
        if self.last is not None and t > self.last:
            self.last = t

    def feed(self, record: Record) -> float:
        """
        Fold one record in, and return the time it was counted at: its
        own, or the latest before it where the wall clock stepped back.  It
        must be one L{read_records} passed, or one pingproto wrote: the
        fields the folder reads are taken to be there and of their type, as
        that check makes sure.
        """
        t = counted_time(record, self.last)
        event = record["event"]
        if self.stats is None:
            self.stats = LinkStats(t)
            self.first = t
        elif event == "start" and self.last is not None:
            # A later run appended to the log: the one before stopped at
            # its last record, with its connection.
            self.stats.between_runs(self.last, t)
            self._open = False
        self.last = t
        stats = self.stats
        if event == "start":
            self.target = record.get("target", self.target)
        elif event == "reply":
            stats.replied(record["rtt_ms"] / 1000)
        elif event == "loss":
            stats.lost_one()
        elif event == "flatline":
            stats.flatline()
        elif event == "state":
            state = record["state"]
            if state == "OPEN":
                self._open = True
                stats.opened(t, record["setup_ms"] / 1000)
            elif state == "CLOSED" and self._open:
                self._open = False
                stats.closed(t, bool(record.get("deliberate")))
        return t

    def outages(self) -> list[tuple[float, float]]:
        """
        The outages so far, as (from, to), the last to the latest record.
        """
        if self.stats is None or self.last is None:
            return []
        return self.stats.outages_until(self.last)

    def summary(self, now: float | None = None) -> LinkSummary:
        """
        The summary of what was fed, to C{now}: a live run that stops
        while waiting to reconnect writes no record for that time, but its
        duration and the outage still going on last until it stops.  A
        log's summary (no C{now}) ends at its last record.
        """
        if self.stats is None or self.last is None:
            return LinkStats(0.0).summary(0.0)
        return self.stats.summary(self.last if now is None else max(now, self.last))


def summary_record(target: str, summary: LinkSummary, t: float) -> Record:
    """
    The summary as one JSON-ready record; times in milliseconds.
    """
    rtt = summary.rtt

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 6)

    return {
        "event": "summary",
        "t": t,
        "target": target,
        "sent": summary.sent,
        "received": summary.received,
        "lost": summary.lost,
        "loss_percent": round(summary.loss_percent, 3),
        "rtt_min_ms": ms(rtt.min if rtt else None),
        "rtt_avg_ms": ms(rtt.avg if rtt else None),
        "rtt_max_ms": ms(rtt.max if rtt else None),
        "rtt_mdev_ms": ms(rtt.mdev if rtt else None),
        "rtt_median_ms": ms(rtt.median if rtt else None),
        "rtt_p95_ms": ms(rtt.p95 if rtt else None),
        "rtt_p99_ms": ms(rtt.p99 if rtt else None),
        "jitter_ms": ms(rtt.jitter if rtt else None),
        "disconnects": summary.disconnects,
        "disconnected_s": round(summary.disconnected, 3),
        "flatlines": summary.flatlines,
        "opens": summary.opens,
        "open_min_ms": ms(summary.open_min),
        "open_avg_ms": ms(summary.open_avg),
        "open_max_ms": ms(summary.open_max),
        "duration_s": round(summary.duration, 3),
    }


def format_summary(target: str, summary: LinkSummary) -> list[str]:
    """
    The summary as ping(8) would print it, with pingproto's additions.
    """
    lines = [
        f"--- {target} pingproto statistics ---",
        f"{summary.sent} sent, {summary.received} received, "
        f"{summary.loss_percent:.1f}% lost, time {summary.duration:.1f} s",
    ]
    rtt = summary.rtt
    if rtt is not None:
        lines.append(
            "rtt min/avg/max/mdev = "
            f"{rtt.min * 1000:.3f}/{rtt.avg * 1000:.3f}/{rtt.max * 1000:.3f}/{rtt.mdev * 1000:.3f} ms"
        )
        lines.append(
            "rtt median/p95/p99 = "
            f"{rtt.median * 1000:.3f}/{rtt.p95 * 1000:.3f}/{rtt.p99 * 1000:.3f} ms, "
            f"jitter {rtt.jitter * 1000:.3f} ms"
        )
    opens = "no connection opened"
    if summary.opens:
        opens = (
            f"{plural(summary.opens, 'open')}, setup "
            f"min/avg/max = {summary.open_min * 1000:.3f}/{summary.open_avg * 1000:.3f}/"  # type: ignore[operator]
            f"{summary.open_max * 1000:.3f} ms"  # type: ignore[operator]
        )
    lines.append(
        f"{opens}; {plural(summary.disconnects, 'disconnect')} "
        f"({summary.disconnected:.1f} s disconnected), {plural(summary.flatlines, 'flatline')}"
    )
    return lines


def plural(n: int, noun: str) -> str:
    """
    C{n} and C{noun}, plural unless C{n} is 1.
    """
    return f"{n} {noun}{'' if n == 1 else 's'}"
