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
    {"event": "loss", "t": ..., "seq": 2, "reason": "timeout"}
    {"event": "flatline", "t": ..., "silence_s": 10.0}
    {"event": "state", "t": ..., "state": "CLOSED", "detail": "code 1000", "deliberate": true}
    {"event": "summary", "t": ..., "target": ..., "sent": 5, ...}
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Iterator

from pingproto.stats import LinkStats, LinkSummary

__all__ = [
    "RecordError",
    "RecordFolder",
    "format_summary",
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
    the cut-off line, which is read.  A line that does not begin as a
    record does is not a cut-off one: that is not a log, and an error.
    """
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        if pending is not None:
            if skipped is not None:
                skipped.append(pending[0])
            pending = None
        try:
            record = json.loads(line)
        except ValueError:
            if not line.startswith("{"):
                raise RecordError(f"{source}:{number}: not a JSON record: {line[:60]!r}") from None
            record = _appended(line)
            if record is None:
                pending = (number, line)
                continue
            if skipped is not None:
                skipped.append(number)
        _check(record, source, number)
        yield record


def _appended(line: str) -> Any:
    """
    The record another run appended after a cut-off one on the same line,
    or L{None}.
    """
    start = line.find("{", 1)
    while start != -1:
        try:
            record = json.loads(line[start:])
        except ValueError:
            pass
        else:
            if isinstance(record, dict) and "event" in record:
                return record
        start = line.find("{", start + 1)
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# What the folder and the plot read of each event, beyond 'event' and 't':
# field -> (required, check, what it must be).  Other events pass unchecked,
# so a newer pingproto's records do not stop an older report.
_FIELDS: dict[str, dict[str, tuple[bool, Any, str]]] = {
    "start": {"target": (False, lambda v: isinstance(v, str), "a string")},
    "reply": {"rtt_ms": (True, lambda v: _number(v) and v >= 0, "a number of ms, 0 or more")},
    "state": {"state": (True, lambda v: isinstance(v, str), "a string")},
}
_OPEN_FIELDS = {"setup_ms": (True, lambda v: _number(v) and v >= 0, "a number of ms, 0 or more")}


def _check(record: Any, source: str, number: int) -> None:
    if not isinstance(record, dict) or "event" not in record or not _number(record.get("t")):
        raise RecordError(f"{source}:{number}: not a pingproto record (needs 'event' and a numeric 't')")
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

    def feed(self, record: Record) -> None:
        t = float(record["t"])
        if self.stats is None:
            self.stats = LinkStats(t)
            self.first = t
        self.last = t
        event = record["event"]
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

    def outages(self) -> list[tuple[float, float]]:
        """
        The outages so far, as (from, to), the last to the latest record.
        """
        if self.stats is None or self.last is None:
            return []
        return self.stats.outages_until(self.last)

    def summary(self, now: float | None = None) -> LinkSummary:
        if self.stats is None or self.last is None:
            return LinkStats(0.0).summary(0.0)
        return self.stats.summary(self.last if now is None else now)


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
