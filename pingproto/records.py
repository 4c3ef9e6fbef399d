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
    "read_records",
    "summary_record",
]

Record = dict[str, Any]


class RecordError(ValueError):
    """
    A log line that is not a pingproto record.
    """


def read_records(lines: Iterable[str], source: str = "log") -> Iterator[Record]:
    """
    Parse JSON lines, skipping blank ones; a line cut short by an
    interrupted run (only ever the last) is skipped too.
    """
    pending: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        if pending is not None:
            raise RecordError(f"{source}:{pending[0]}: not a JSON record: {pending[1][:60]!r}")
        line = line.strip()
        if not line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pending = (number, line)
            continue
        t = record.get("t") if isinstance(record, dict) else None
        if "event" not in (record if isinstance(record, dict) else {}) or isinstance(t, bool) or not isinstance(t, (int, float)):
            raise RecordError(f"{source}:{number}: not a pingproto record (needs 'event' and 't')")
        yield record


class RecordFolder:
    """
    Folds records into link statistics.
    """

    def __init__(self) -> None:
        self.stats: LinkStats | None = None
        self.target = ""
        self.first: float | None = None
        self.last: float | None = None
        self._open = False

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
                stats.opened(t, record.get("setup_ms", math.nan) / 1000)
            elif state == "CLOSED" and self._open:
                self._open = False
                stats.closed(t, bool(record.get("deliberate")))

    def summary(self, now: float | None = None) -> LinkSummary:
        if self.stats is None:
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
        "rtt_min_ms": ms(rtt and rtt.min),
        "rtt_avg_ms": ms(rtt and rtt.avg),
        "rtt_max_ms": ms(rtt and rtt.max),
        "rtt_mdev_ms": ms(rtt and rtt.mdev),
        "rtt_median_ms": ms(rtt and rtt.median),
        "rtt_p95_ms": ms(rtt and rtt.p95),
        "rtt_p99_ms": ms(rtt and rtt.p99),
        "jitter_ms": ms(rtt and rtt.jitter),
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
            f"{summary.opens} open{'s' if summary.opens != 1 else ''}, setup "
            f"min/avg/max = {summary.open_min * 1000:.3f}/{summary.open_avg * 1000:.3f}/"  # type: ignore[operator]
            f"{summary.open_max * 1000:.3f} ms"  # type: ignore[operator]
        )
    lines.append(
        f"{opens}; {summary.disconnects} disconnect{'s' if summary.disconnects != 1 else ''} "
        f"({summary.disconnected:.1f} s disconnected), "
        f"{summary.flatlines} flatline{'s' if summary.flatlines != 1 else ''}"
    )
    return lines
