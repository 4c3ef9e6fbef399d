"""
C{pingproto report}: reading a log back, windows, the summary, and the
pictures.
"""

from __future__ import annotations

import datetime
import io
import json
import math
import os
import sys
import tracemalloc
import xml.etree.ElementTree as ElementTree
from typing import Any

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from pingproto.records import RecordError, RecordFolder, read_records, summary_record
from pingproto.report import ReportOptions, Timeline, draw, parse_time, timeline

T0 = 1_764_000_000.0


def when(t: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc)


def sample_log() -> list[dict]:
    """
    Ten minutes at one ping a second: replies around 20 ms rising to 60 ms
    in the fifth minute, losses and a flatline in the seventh, a 30 s
    outage in the eighth, then a clean end.
    """
    records: list[dict] = [
        {"event": "start", "t": T0, "target": "wss://example.com:1234/", "interval": 1.0, "timeout": 5.0},
        {"event": "state", "t": T0, "state": "CONNECTING", "detail": ""},
        {"event": "state", "t": T0 + 0.01, "state": "OPEN", "detail": "", "setup_ms": 12.5},
    ]
    seq = 0
    for second in range(600):
        t = T0 + 1 + second
        seq += 1
        if second == 419:
            records.append({"event": "state", "t": t + 0.5, "state": "CLOSED", "detail": "code 1006"})
            records.append({"event": "state", "t": t + 1, "state": "CONNECTING", "detail": ""})
        if second == 449:
            records.append({"event": "state", "t": t + 0.5, "state": "OPEN", "detail": "", "setup_ms": 14.5})
        if 360 <= second < 370:
            records.append({"event": "loss", "t": t + 5, "seq": seq, "reason": "timeout"})
            continue
        if 419 < second <= 449:
            continue
        rtt = 20.0 + (second % 7) + (40.0 if 240 <= second < 300 else 0.0)
        records.append({"event": "reply", "t": t + rtt / 1000, "seq": seq, "rtt_ms": rtt})
        if second == 370:
            records.append({"event": "flatline", "t": t, "silence_s": 10.0})
    records.append({"event": "state", "t": T0 + 602, "state": "CLOSED", "detail": "code 1000", "deliberate": True})
    return records


class ReadRecordsTests(SynchronousTestCase):
    def test_truncatedLastLineSkipped(self) -> None:
        """
        A last line cut short by an interrupted run is skipped; what was
        written before it is read.
        """
        lines = ['{"event":"start","t":1}', '{"event":"reply","t":2,"seq":1,"rtt_ms":1.5}', '{"event":"rep']
        self.assertEqual([r["event"] for r in read_records(lines)], ["start", "reply"])

    def test_garbageInTheMiddle(self) -> None:
        """
        A line that is no record, or not even the beginning of one, is an
        error naming the line, wherever it is.
        """
        with self.assertRaises(RecordError) as caught:
            list(read_records(["{}", "x"], "f.jsonl"))
        self.assertIn("f.jsonl:1", str(caught.exception))
        with self.assertRaises(RecordError) as caught:
            list(read_records(["nonsense", '{"event":"start","t":1}'], "f.jsonl"))
        self.assertIn("f.jsonl:1: not a JSON record", str(caught.exception))


    def test_cutOffRunThenAppended(self) -> None:
        """
        A record cut short by a killed run, with another run's records
        appended after it (on the next line, or on the end of the cut-off
        one when nothing ended it), is skipped and its line counted; every
        whole record is read.
        """
        lines = [
            '{"event":"start","t":1}',
            '{"event":"reply","t":2,"seq":1,"rtt_ms":1.5}',
            '{"event":"rep{"event":"start","t":10}',
            '{"event":"reply","t":11,"seq":1,"rtt_ms":2.5}',
            '{"event":"state","t":12,"sta',
            "",
            '{"event":"reply","t":13,"seq":2,"rtt_ms":2.5}',
        ]
        skipped: list[int] = []
        self.assertEqual([r["t"] for r in read_records(lines, "f.jsonl", skipped)], [1, 2, 10, 11, 13])
        self.assertEqual(skipped, [3, 5])
        # Cut within the nine characters every record begins with.
        skipped = []
        lines = ['{"event":"start","t":1}', '{"ev{"event":"reply","t":2,"seq":1,"rtt_ms":1.5}']
        self.assertEqual([r["t"] for r in read_records(lines, "f.jsonl", skipped)], [1, 2])
        self.assertEqual(skipped, [2])

    def test_fieldsChecked(self) -> None:
        """
        A record without a field its event needs, or with one of the wrong
        type, is an error naming the line and the field.
        """
        for bad, words in [
            ('{"event":"reply","t":2,"seq":1}', "needs 'rtt_ms'"),
            ('{"event":"reply","t":2,"rtt_ms":"x"}', "'rtt_ms' must be a number"),
            ('{"event":"reply","t":2,"rtt_ms":true}', "'rtt_ms' must be a number"),
            ('{"event":"state","t":2,"state":"OPEN","setup_ms":null}', "'setup_ms' must be a number"),
            ('{"event":"state","t":2,"state":"OPEN"}', "needs 'setup_ms'"),
            ('{"event":"state","t":2}', "needs 'state'"),
            ('{"event":"start","t":2,"target":7}', "'target' must be a string"),
            ('{"event":"loss","t":"5"}', "numeric 't'"),
        ]:
            with self.assertRaises(RecordError, msg=bad) as caught:
                list(read_records(['{"event":"start","t":1}', bad], "f.jsonl"))
            self.assertIn("f.jsonl:2: ", str(caught.exception))
            self.assertIn(words, str(caught.exception))


    def test_outOfRange(self) -> None:
        """
        A number beyond any a run writes is refused like any bad field,
        naming the line: a time before 1970 or from the year 3000 on
        (even one too large for a float, or NaN or Infinity, which Python
        reads), a round trip or setup time of a day or more; the bounds
        themselves are read.
        """
        for bad, words in [
            ('{"event":"reply","t":2,"rtt_ms":1e308}', "'rtt_ms' must be a number of ms from 0 to under 86400000"),
            ('{"event":"reply","t":2,"rtt_ms":86400000}', "'rtt_ms' must be"),
            ('{"event":"reply","t":2,"rtt_ms":NaN}', "'rtt_ms' must be"),
            ('{"event":"state","t":2,"state":"OPEN","setup_ms":1e308}', "'setup_ms' must be"),
            ('{"event":"reply","t":1e300,"rtt_ms":1}', "'t' must be seconds since 1970 before the year 3000, "
                                                       "not 1e+300"),
            ('{"event":"reply","t":-1e12,"rtt_ms":1}', "'t' must be"),
            ('{"event":"loss","t":-1}', "'t' must be"),
            ('{"event":"loss","t":32503680000}', "'t' must be"),
            ('{"event":"loss","t":1' + "0" * 400 + "}", "'t' must be"),
            ('{"event":"loss","t":Infinity}', "'t' must be"),
            ('{"event":"loss","t":NaN}', "'t' must be"),
        ]:
            with self.assertRaises(RecordError, msg=bad) as caught:
                list(read_records(['{"event":"start","t":1}', bad], "f.jsonl"))
            self.assertIn("f.jsonl:2: ", str(caught.exception))
            self.assertIn(words, str(caught.exception))
        lines = ['{"event":"loss","t":0}', '{"event":"reply","t":32503679999.999996,"rtt_ms":86399999.99999999}']
        self.assertEqual([r["event"] for r in read_records(lines)], ["loss", "reply"])

    def test_nestedTooDeeply(self) -> None:
        """
        A line nested deeper than Python's JSON decoder recurses, a
        record's field or a bare array, is refused naming the line, as any
        other line that is no record (it raised RecursionError).
        """
        deep = "[" * 100_000 + "]" * 100_000
        for bad in ("[" * 100_000, '{"event":"reply","t":2,"rtt_ms":1,"x":' + deep + "}",
                    '{"event":' * 100_000):
            with self.assertRaises(RecordError) as caught:
                list(read_records(['{"event":"start","t":1}', bad, '{"event":"loss","t":3}'], "f.jsonl"))
            self.assertEqual(str(caught.exception), "f.jsonl:2: not a pingproto record: nested too deeply")

    def test_garbageBeginningAsAnObject(self) -> None:
        """
        A line that begins with "{" but not as pingproto's records do
        is not a record cut short: it is refused naming the line, last in
        the file or not (it was skipped, the only line of a log quietly,
        leaving an empty summary), and so is such a line with a record
        after it.
        """
        for lines, number in [
            (["{garbage"], 1),
            (['{"event":"start","t":1}', "{garbage"], 2),
            (['{"event":"start","t":1}', "{garbage", '{"event":"loss","t":3}'], 2),
            (['{"event":"start","t":1}', '{garbage{"event":"loss","t":3}'], 2),
            (['{"event":"start","t":1}', '{"t":1,"event":"lo'], 2),
        ]:
            with self.assertRaises(RecordError, msg=lines) as caught:
                list(read_records(lines, "f.jsonl"))
            self.assertIn(f"f.jsonl:{number}: not a JSON record: ", str(caught.exception))

    def test_cutInsideAToken(self) -> None:
        """
        A last record cut inside a string, an escape (of a surrogate pair
        too), a word or a number is still taken for a record cut short,
        and skipped.
        """
        for cut in ('{"event":"sta', '{"event":"start","target":"ws://\\u00', '{"event":"x","s":"\\ud83d\\ude',
                    '{"event":"x","a":tr', '{"event":"x","a":-Inf', '{"event":"x","t":1.', '{"event":"x","t":1e-',
                    '{"event":"x","t":-'):
            self.assertEqual(list(read_records(['{"event":"start","t":1}', cut])), [{"event": "start", "t": 1}], cut)

    def test_zeroAccepted(self) -> None:
        """
        A round trip or a setup time of 0 ms is read: pingproto writes
        one itself when the clock did not move (a round trip is clamped to
        0, never negative), so its own log must read back.
        """
        lines = ['{"event":"state","t":1,"state":"OPEN","setup_ms":0}',
                 '{"event":"reply","t":2,"seq":1,"rtt_ms":0.0}']
        self.assertEqual([r["event"] for r in read_records(lines)], ["state", "reply"])


class RecordFolderTests(SynchronousTestCase):
    """
    L{RecordFolder}: records folded into the run's statistics.
    """

    def fold(self, records: list[dict]) -> RecordFolder:
        folder = RecordFolder()
        for record in records:
            folder.feed(record)
        return folder

    def test_failedReconnectIsNoSecondDisconnect(self) -> None:
        """
        A reconnect attempt that fails before opening is reported as a
        CLOSED record too; it is not a second disconnect and does not
        restart the outage, which runs from the drop at 10 s to the open
        at 15 s: 1 disconnect, 5 s disconnected.
        """
        folder = self.fold([
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "state", "t": 10.0, "state": "CLOSED", "detail": "code 1006"},
            {"event": "state", "t": 10.5, "state": "CONNECTING"},
            {"event": "state", "t": 11.0, "state": "CLOSED", "detail": "connection refused"},
            {"event": "state", "t": 15.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "state", "t": 20.0, "state": "CLOSED", "detail": "code 1000", "deliberate": True},
        ])
        self.assertEqual(folder.outages(), [(10.0, 15.0)])
        summary = folder.summary()
        self.assertEqual((summary.disconnects, summary.disconnected, summary.opens), (1, 5.0, 2))

    def test_summaryRunsToNow(self) -> None:
        """
        The summary asked for at a moment after the last record (a run
        stopped while waiting to reconnect writes nothing more) lasts until
        that moment, and so does an outage still going on: a drop at 10 s
        summarised at 30 s is 30 s long with 20 s disconnected.  Without a
        moment it ends at the last record.
        """
        folder = self.fold([
            {"event": "start", "t": 0.0, "target": "ws://h/"},
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "state", "t": 10.0, "state": "CLOSED", "detail": "code 1006"},
        ])
        summary = folder.summary(30.0)
        self.assertEqual((summary.duration, summary.disconnected), (30.0, 20.0))
        summary = folder.summary()
        self.assertEqual((summary.duration, summary.disconnected), (10.0, 0.0))

    def test_clockSteppedBack(self) -> None:
        """
        The records' wall clock may step back (NTP, a clock set by hand)
        during an outage: the connection dropped at 10 s, the clock went
        back 6 s, and it opened again at what reads as 7 s.  No time passes
        until the clock reads later than before, so the outage lasts 0 s
        (not -3 s) and the run 10 s; after that, time counts again.  A
        moment asked for before the last record is the last record.
        """
        folder = self.fold([
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "state", "t": 10.0, "state": "CLOSED", "detail": "code 1006"},
            {"event": "state", "t": 7.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "reply", "t": 9.0, "seq": 1, "rtt_ms": 1.0},
        ])
        self.assertEqual(folder.outages(), [(10.0, 10.0)])
        summary = folder.summary()
        self.assertEqual((summary.duration, summary.disconnected), (10.0, 0.0))
        self.assertEqual(folder.summary(5.0).duration, 10.0)
        folder.feed({"event": "state", "t": 12.0, "state": "CLOSED", "detail": "code 1006"})
        folder.feed({"event": "state", "t": 14.0, "state": "OPEN", "setup_ms": 1.0})
        self.assertEqual(folder.outages(), [(10.0, 10.0), (12.0, 14.0)])
        self.assertEqual(folder.summary().duration, 14.0)

    def test_runsAppended(self) -> None:
        """
        Runs appended to one log are counted as runs, not as one run with
        gaps: a run stopped (Ctrl-C) while reconnecting ends its outage
        with it, and the ten minutes until the next run began are neither
        disconnected nor the runs' time.  Before, that read as 598 s
        disconnected in a run of 601.5 s.
        """
        folder = self.fold([
            {"event": "start", "t": 0.0, "target": "ws://h/"},
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "reply", "t": 1.0, "seq": 1, "rtt_ms": 1.0},
            {"event": "state", "t": 2.0, "state": "CLOSED", "detail": "code 1006"},
            {"event": "state", "t": 3.0, "state": "CLOSED", "detail": "connection refused"},
            {"event": "start", "t": 600.0, "target": "ws://h/"},
            {"event": "state", "t": 600.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "reply", "t": 601.0, "seq": 1, "rtt_ms": 1.0},
            {"event": "state", "t": 601.5, "state": "CLOSED", "detail": "code 1000", "deliberate": True},
        ])
        self.assertEqual(folder.outages(), [(2.0, 3.0)])
        summary = folder.summary()
        self.assertEqual((summary.disconnects, summary.disconnected, summary.duration), (1, 1.0, 4.5))

    def test_runKilledWhileConnected(self) -> None:
        """
        A run killed while connected (kill -9, a reboot) writes no close:
        the next run's first failed attempt is not a drop of that
        connection, and its hour after the kill is no outage.
        """
        folder = self.fold([
            {"event": "start", "t": 0.0, "target": "ws://h/"},
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 1.0},
            {"event": "reply", "t": 1.0, "seq": 1, "rtt_ms": 1.0},
            {"event": "start", "t": 3600.0, "target": "ws://h/"},
            {"event": "state", "t": 3600.5, "state": "CLOSED", "detail": "connection refused"},
        ])
        summary = folder.summary()
        self.assertEqual((summary.disconnects, summary.disconnected, summary.duration), (0, 0.0, 1.5))
        self.assertEqual(folder.outages(), [])


class SummaryRecordTests(SynchronousTestCase):
    def test_everyField(self) -> None:
        """
        The summary record carries each figure under its own name, times
        in ms.  Replies of 1..200 ms (in that order) give min 1, avg 100.5,
        median 100 (rank 100), p95 190 (rank 190), p99 198 (rank 198), max
        200, mdev sqrt((200^2 - 1) / 12) and jitter 1 - (15/16)^199 after
        199 steps of 1 ms, all different, so that no figure can stand in
        for another; with 50 losses, 250 sent and 20 % lost; setups of 2
        and 4 ms give 2/3/4; a drop at 4 s and an open at 6.5 s are 2.5 s
        disconnected; the run lasts from 0 to 10 s.
        """
        records: list[dict] = [
            {"event": "start", "t": 0.0, "target": "wss://h:1/"},
            {"event": "state", "t": 0.0, "state": "OPEN", "setup_ms": 2.0},
        ]
        records += [{"event": "reply", "t": i / 100, "seq": i, "rtt_ms": float(i)} for i in range(1, 201)]
        records += [{"event": "loss", "t": 2.5, "seq": 200 + i, "reason": "timeout"} for i in range(1, 51)]
        records += [
            {"event": "flatline", "t": 3.0, "silence_s": 10.0},
            {"event": "state", "t": 4.0, "state": "CLOSED", "detail": "code 4000: flatline"},
            {"event": "state", "t": 6.0, "state": "CONNECTING"},
            {"event": "state", "t": 6.5, "state": "OPEN", "setup_ms": 4.0},
            {"event": "state", "t": 10.0, "state": "CLOSED", "detail": "code 1000", "deliberate": True},
        ]
        folder = RecordFolder()
        for record in records:
            folder.feed(record)
        record = summary_record(folder.target, folder.summary(), 10.0)
        mdev, jitter = record.pop("rtt_mdev_ms"), record.pop("jitter_ms")
        self.assertAlmostEqual(mdev, math.sqrt((200**2 - 1) / 12), places=5)
        self.assertAlmostEqual(jitter, 1 - (15 / 16) ** 199, places=5)
        self.assertEqual(
            record,
            {
                "event": "summary", "t": 10.0, "target": "wss://h:1/",
                "sent": 250, "received": 200, "lost": 50, "loss_percent": 20.0,
                "rtt_min_ms": 1.0, "rtt_avg_ms": 100.5, "rtt_max_ms": 200.0,
                "rtt_median_ms": 100.0, "rtt_p95_ms": 190.0, "rtt_p99_ms": 198.0,
                "disconnects": 1, "disconnected_s": 2.5, "flatlines": 1,
                "opens": 2, "open_min_ms": 2.0, "open_avg_ms": 3.0, "open_max_ms": 4.0,
                "duration_s": 10.0,
            },
        )

    def test_noReplies(self) -> None:
        """
        Without replies or opens the round-trip and setup figures are
        null, not 0, which would read as a measurement.
        """
        folder = RecordFolder()
        folder.feed({"event": "loss", "t": 1.0, "seq": 1, "reason": "timeout"})
        record = summary_record("ws://h/", folder.summary(), 1.0)
        for name in ("rtt_min_ms", "rtt_avg_ms", "rtt_max_ms", "rtt_mdev_ms", "rtt_median_ms", "rtt_p95_ms",
                     "rtt_p99_ms", "jitter_ms", "open_min_ms", "open_avg_ms", "open_max_ms"):
            self.assertIsNone(record[name], name)
        self.assertEqual((record["sent"], record["loss_percent"]), (1, 100.0))


class ParseTimeTests(SynchronousTestCase):
    def test_forms(self) -> None:
        """
        ISO 8601 without a zone is UTC; with one it is honoured; epoch
        seconds pass through.
        """
        self.assertEqual(parse_time("2025-11-24T16:00:00"), 1764000000.0)
        self.assertEqual(parse_time("2025-11-24T17:00:00+01:00"), 1764000000.0)
        self.assertEqual(parse_time("1764000000"), 1764000000.0)
        with self.assertRaises(ValueError):
            parse_time("yesterday")

    def test_basicForm(self) -> None:
        """
        ISO 8601's basic form is read as a date, though it is a number too:
        20251124 was read as epoch seconds, a moment in 1970.
        """
        self.assertEqual(parse_time("20251124"), 1763942400.0)
        self.assertEqual(parse_time("20251124T1600"), 1764000000.0)

    def test_outOfRange(self) -> None:
        """
        NaN, the infinities and moments outside the range of a record's
        time (1970 to before the year 3000) are refused, quoting the text;
        float() had taken NaN and inf, and the report printed "time nan s".
        """
        for text in ("nan", "inf", "-inf", "Infinity", "1e300", "-1", "32503680000", "1969-12-31T23:59:59",
                     "3000-01-01T00:00"):
            with self.assertRaises(ValueError, msg=text) as caught:
                parse_time(text)
            self.assertEqual(str(caught.exception), f"{text!r} is not a time from 1970 to before the year 3000")
        self.assertEqual(parse_time("0"), 0.0)
        self.assertEqual(parse_time("2999-12-31T23:59:59"), 32503679999.0)


class TimelineTests(SynchronousTestCase):
    def test_events(self) -> None:
        """
        The timeline holds each reply, loss and flatline, and the outage
        from the unrequested close to the next open.
        """
        line = timeline(sample_log())
        self.assertEqual(len(line.samples), 560)
        self.assertEqual(len(line.losses), 10)
        self.assertEqual(line.flatlines, [T0 + 371])
        self.assertEqual(line.outages, [(T0 + 420.5, T0 + 450.5)])

    def test_endsAtTheLatest(self) -> None:
        """
        After the wall clock stepped back, the picture still ends at the
        latest moment, where the summary ends: it ended at the last
        record's, and the replies after the latest fell outside it.
        """
        line = timeline([
            {"event": "reply", "t": T0, "seq": 1, "rtt_ms": 1.0},
            {"event": "reply", "t": T0 + 100, "seq": 2, "rtt_ms": 1.0},
            {"event": "reply", "t": T0 + 50, "seq": 3, "rtt_ms": 1.0},
        ])
        self.assertEqual((line.start, line.end), (T0, T0 + 100))

    def test_window(self) -> None:
        """
        A window's timeline starts at its start, in the state the records
        before it left the link: a drop while it was up is an outage, and a
        window that begins in an outage is down from its first moment.
        """
        def window(since: float) -> Timeline:
            folder = RecordFolder()
            for record in sample_log():
                if record["t"] < since:
                    folder.feed(record)
            folder.start_window(since)
            return timeline([r for r in sample_log() if r["t"] >= since], folder)

        up = window(T0 + 400)
        self.assertEqual((up.start, up.outages), (T0 + 400, [(T0 + 420.5, T0 + 450.5)]))
        down = window(T0 + 430)
        self.assertEqual((down.start, down.outages), (T0 + 430, [(T0 + 430, T0 + 450.5)]))

    def test_outagesAsSummarised(self) -> None:
        """
        The outages plotted are the time the summary counts disconnected:
        the sample's one drop at T0+420.5, open again at T0+450.5, is one
        outage of 30 s on the plot and in the summary of the same folding.
        """
        folder = RecordFolder()
        line = timeline(sample_log(), folder)
        self.assertEqual(line.outages, [(T0 + 420.5, T0 + 450.5)])
        summary = folder.summary()
        self.assertEqual((summary.disconnects, summary.disconnected), (1, 30.0))


class DrawTests(SynchronousTestCase):
    def drawn(self, count: int) -> tuple[Any, Any, tuple[float, float]]:
        """
        The median line and the bands drawn for C{count} replies, one a
        second from T0, 10 ms and up, with the time axis as numbers.
        """
        import matplotlib.dates as mdates

        line = timeline([{"event": "reply", "t": T0 + i, "rtt_ms": 10.0 + i % 5} for i in range(count)])
        figure = draw(line, "title", "subtitle")
        axes = figure.axes[0]
        median = next(m for m in axes.lines if m.get_label() == "median")
        bands = [c for c in axes.collections if c.get_label().endswith("percentile")]
        start, end = mdates.date2num(when(T0)), mdates.date2num(when(T0 + count - 1))
        return median, bands, (start, end)

    def assertCovers(self, median: Any, bands: Any, span: tuple[float, float]) -> None:
        x, y = median.get_xydata().T
        self.assertEqual((x[0], x[-1]), span, "the median runs from the first ping to the last")
        self.assertTrue(all(v == v for v in y), f"a median for every bin: {y}")
        self.assertEqual(len(bands), 2)
        for band in bands:
            xs = [v[0] for path in band.get_paths() for v in path.vertices]
            self.assertEqual((min(xs), max(xs)), span, band.get_label())

    def test_fewPings(self) -> None:
        """
        Under 20 replies make one bin, which still gets its median line and
        its bands, across the whole time shown.
        """
        median, bands, span = self.drawn(12)
        self.assertCovers(median, bands, span)
        self.assertEqual(list(median.get_xydata()[:, 1]), [11.0, 11.0])

    def test_subSecondTicks(self) -> None:
        """
        A log of under a second (pings every 0.1 s) gets time labels that
        differ from tick to tick: they were all the same second.
        """
        line = timeline([{"event": "reply", "t": T0 + i / 10, "rtt_ms": 10.0} for i in range(8)])
        figure = draw(line, "title", "subtitle")
        figure.canvas.draw()
        labels = [label.get_text() for label in figure.axes[0].get_xticklabels()]
        self.assertGreater(len(labels), 2)
        self.assertEqual(len(set(labels)), len(labels), labels)

    def test_zeroRoundTrips(self) -> None:
        """
        Replies of 0 ms (a clock as coarse as Windows' 15.6 ms ticks, on
        loopback) get an axis from 0 up, without the UserWarning about
        identical limits that matplotlib printed at the user.
        """
        line = timeline([{"event": "reply", "t": T0 + i, "rtt_ms": 0} for i in range(5)])
        figure = draw(line, "title", "subtitle")
        self.assertEqual(self.flushWarnings(), [])
        low, high = figure.axes[0].get_ylim()
        self.assertEqual(low, 0)
        self.assertGreater(high, 0)

    def test_programsMatplotlibLeftAlone(self) -> None:
        """
        Drawing leaves the backend that the program chose and pyplot's
        figures as they were: it used to switch the backend to Agg and add
        a figure that only the caller's close took out of pyplot's list.
        """
        import matplotlib
        import matplotlib.pyplot as plt

        backend = matplotlib.get_backend()
        self.addCleanup(matplotlib.use, backend)
        matplotlib.use("svg")
        figures = plt.get_fignums()
        draw(timeline([{"event": "reply", "t": T0 + i, "rtt_ms": 1.0} for i in range(3)]), "title", "subtitle")
        self.assertEqual((matplotlib.get_backend(), plt.get_fignums()), ("svg", figures))

    def test_edgeToEdge(self) -> None:
        """
        With many bins the median and the bands begin at the first ping
        and end at the last: no half-bin is left blank at either end.
        """
        median, bands, span = self.drawn(300)
        self.assertCovers(median, bands, span)
        self.assertEqual(len(median.get_xydata()), 30 + 1)


class ReportCommandTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.log = self.mktemp()
        with open(self.log, "w") as f:
            for record in sample_log():
                f.write(json.dumps(record) + "\n")

    def run_report(self, *args: str) -> tuple[int, str, str]:
        options = ReportOptions()
        options.parseOptions([self.log, *args])
        out, err = io.StringIO(), io.StringIO()
        return options.run(out, err), out.getvalue(), err.getvalue()

    def test_summary(self) -> None:
        """
        The whole log gives the run's summary, with the outage's length.
        """
        code, out, _ = self.run_report()
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0], "--- wss://example.com:1234/ pingproto statistics ---")
        self.assertEqual(lines[1], "570 sent, 560 received, 1.8% lost, time 602.0 s")
        self.assertIn("1 disconnect (30.0 s disconnected), 1 flatline", lines[-1])
        self.assertIn("setup min/avg/max = 12.500/13.500/14.500 ms", lines[-1])

    def test_window(self) -> None:
        """
        --since and --until keep only that window: the fifth minute's
        replies are all 60-66 ms.
        """
        code, out, _ = self.run_report("--since", str(T0 + 241), "--until", str(T0 + 301), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["sent"], summary["lost"]), (60, 0))
        self.assertGreaterEqual(summary["rtt_min_ms"], 60.0)
        self.assertLessEqual(summary["rtt_max_ms"], 66.0)

    def test_windowBounds(self) -> None:
        """
        --since counts the records at its own moment and --until does not:
        the sample's losses of the seventh minute are written at T0+366,
        T0+367, ... (5 s after pings 361, 362, ...), so a window from
        T0+366 to T0+370 holds the four at T0+366 to T0+369.
        """
        code, out, _ = self.run_report("--since", str(T0 + 366), "--until", str(T0 + 370), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["sent"], summary["received"], summary["lost"]), (4, 0, 4))

    def test_noReplyExitsOne(self) -> None:
        """
        A window in which no reply came back exits 1, as C{pingproto ping}
        does for a run without one, after printing its summary.  The log
        goes on past the window, so it lasts from --since to --until.
        """
        code, out, _ = self.run_report("--since", str(T0 + 366), "--until", str(T0 + 370))
        self.assertEqual(code, 1)
        self.assertEqual(out.splitlines()[1], "4 sent, 0 received, 100.0% lost, time 4.0 s")

    def test_untilInAnOutage(self) -> None:
        """
        A window that ends in an outage, in a log that goes on, counts the
        outage to --until: the sample's drop at T0+420.5 is 19.5 s of a
        window ending at T0+440, not the 0.5 s to the last record before
        it (the reconnect attempt at T0+421).
        """
        code, out, _ = self.run_report("--since", str(T0 + 400), "--until", str(T0 + 440), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["disconnects"], summary["disconnected_s"], summary["duration_s"]), (1, 19.5, 40.0))

    def test_untilAfterTheLog(self) -> None:
        """
        A window that ends after the log does ends at its last record: the
        run stopped there, and what came after is not known.
        """
        code, out, _ = self.run_report("--until", str(T0 + 10_000), "--json")
        self.assertEqual(json.loads(out)["duration_s"], 602.0)

    def test_logReadAsItComes(self) -> None:
        """
        The report holds no more of a log than its picture needs: over
        20,000 replies, Python's allocations peak at well under a
        megabyte (10 MB when it read every record before folding them;
        a month of pings a second took gigabytes).
        """
        with open(self.log, "w") as f:
            f.write(json.dumps({"event": "start", "t": T0, "target": "ws://h/"}) + "\n")
            f.write(json.dumps({"event": "state", "t": T0, "state": "OPEN", "setup_ms": 1.0}) + "\n")
            for i in range(20_000):
                f.write(json.dumps({"event": "reply", "t": T0 + i, "seq": i, "rtt_ms": 1.0 + i % 7}) + "\n")
        tracemalloc.start()
        self.addCleanup(tracemalloc.stop)
        code, out, _ = self.run_report()
        peak = tracemalloc.get_traced_memory()[1]
        self.assertIn("20000 sent, 20000 received", out)
        self.assertLess(peak, 1_000_000)

    def test_readingStopsAfterTheWindow(self) -> None:
        """
        Reading stops at the first record after --until: what follows is
        not read, so a line there that is no record does not stop the
        report.
        """
        with open(self.log, "w") as f:
            for record in sample_log():
                f.write(json.dumps(record) + "\n")
            f.write("not a record\n")
        code, out, err = self.run_report("--until", str(T0 + 100))
        self.assertEqual((code, err), (0, ""))
        code, out, err = self.run_report()
        self.assertEqual(code, 2)
        self.assertIn("not a JSON record", err)

    def test_untilBetweenRuns(self) -> None:
        """
        A window that ends between two runs appended to the log ends where
        the first run stopped, in an outage or not: nothing ran from there
        to --until.
        """
        records = [{"event": "start", "t": T0, "target": "ws://h/"},
                   {"event": "state", "t": T0, "state": "OPEN", "setup_ms": 1.0},
                   {"event": "reply", "t": T0 + 1, "seq": 1, "rtt_ms": 1.0},
                   {"event": "state", "t": T0 + 2, "state": "CLOSED", "detail": "code 1006"},
                   {"event": "state", "t": T0 + 3, "state": "CLOSED", "detail": "connection refused"},
                   {"event": "start", "t": T0 + 600, "target": "ws://h/"}]
        with open(self.log, "w") as f:
            f.writelines(json.dumps(record) + "\n" for record in records)
        code, out, _ = self.run_report("--until", str(T0 + 300), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["disconnected_s"], summary["duration_s"]), (1.0, 3.0))

    def test_windowAfterTheClockSteppedBack(self) -> None:
        """
        A window is one stretch of the log, also where the wall clock
        stepped back: here 30 s back while reconnecting, which succeeded at
        once.  A window from before the drop counts it, and no time
        disconnected; it counted the reopening (written after the step,
        stamped before the window) as before the window, and the drop after
        it as leaving the link down for 171 s while 191 replies came back.
        """
        records = [{"event": "start", "t": T0, "target": "ws://h/"},
                   {"event": "state", "t": T0, "state": "OPEN", "setup_ms": 1.0}]
        records += [{"event": "reply", "t": T0 + i, "seq": i, "rtt_ms": 1.0} for i in range(1, 100)]
        records += [{"event": "state", "t": T0 + 100, "state": "CLOSED", "detail": "code 1006"},
                    {"event": "state", "t": T0 + 70, "state": "CONNECTING"},
                    {"event": "state", "t": T0 + 71, "state": "OPEN", "setup_ms": 1.0}]
        records += [{"event": "reply", "t": T0 + 71 + i, "seq": 100 + i, "rtt_ms": 1.0} for i in range(1, 200)]
        with open(self.log, "w") as f:
            f.writelines(json.dumps(record) + "\n" for record in records)
        code, out, _ = self.run_report("--since", str(T0 + 90), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["received"], summary["disconnects"], summary["disconnected_s"]), (209, 1, 0.0))

    def test_windowWithinAnOutage(self) -> None:
        """
        A window with no record in it, inside an outage of a log that goes
        on, is that outage from end to end, and is plotted as one.
        """
        path = self.mktemp() + ".svg"
        code, out, err = self.run_report("--since", str(T0 + 425), "--until", str(T0 + 445), "--json", "-o", path)
        summary = json.loads(out)
        self.assertEqual((summary["disconnected_s"], summary["duration_s"]), (20.0, 20.0))
        self.assertEqual(err, f"wrote {path}\n")
        self.assertTrue(os.path.getsize(path) > 0)

    def test_sinceAtTheMomentOfADrop(self) -> None:
        """
        A window that starts at the very moment of a drop counts that drop
        as its own: one disconnect and the outage's 30 s.
        """
        code, out, _ = self.run_report("--since", str(T0 + 420.5), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["disconnects"], summary["disconnected_s"]), (1, 30.0))

    def test_sinceWhileConnected(self) -> None:
        """
        A window that starts while the link is up counts the drop within
        it and the outage that follows, and names the target from the
        start record before it.
        """
        code, out, _ = self.run_report("--since", str(T0 + 400), "--until", str(T0 + 500))
        self.assertEqual(code, 0)
        lines = out.splitlines()
        self.assertEqual(lines[0], "--- wss://example.com:1234/ pingproto statistics ---")
        self.assertIn("1 disconnect (30.0 s disconnected)", lines[-1])

    def test_sinceInAnOutage(self) -> None:
        """
        A window that starts in an outage counts its time down from the
        window's start to the next open, and no disconnect: that was
        before the window.
        """
        code, out, _ = self.run_report("--since", str(T0 + 430.5), "--json")
        summary = json.loads(out)
        self.assertEqual((summary["disconnects"], summary["disconnected_s"]), (0, 20.0))
        self.assertEqual(summary["target"], "wss://example.com:1234/")
        self.assertEqual(summary["opens"], 1)
        path = self.mktemp() + ".svg"
        self.run_report("--since", str(T0 + 430.5), "-o", path)
        with open(path) as f:
            self.assertIn("wss://example.com:1234/", f.read())

    def test_cutOffRunThenAppended(self) -> None:
        """
        A log where a killed run's cut-off line is followed by another
        run's records is read whole, with one line saying what was skipped.
        """
        lines = [json.dumps(record) + "\n" for record in sample_log()]
        self.assertEqual(json.loads(lines[100])["event"], "reply")
        cut = lines[100][:30]
        # As an older pingproto appended (nothing ends the cut-off line),
        # and as pingcmd's _open_log does now, beginning a new line first.
        for joint in ("", "\n"):
            with open(self.log, "w") as f:
                f.writelines(lines[:100] + [cut + joint] + lines[101:])
            code, out, err = self.run_report()
            self.assertEqual(code, 0, joint)
            self.assertIn("569 sent, 559 received", out)
            self.assertEqual(err, f"pingproto report: {self.log}: skipped 1 line cut short by an "
                                  "interrupted run (line 101)\n")

    def test_badRecord(self) -> None:
        """
        A record with a field missing or of the wrong type is one clear
        line and status 2, not a traceback.
        """
        for bad in ('{"event":"reply","t":5,"seq":1}', '{"event":"reply","t":5,"rtt_ms":"x"}',
                    '{"event":"state","t":5,"state":"OPEN","setup_ms":null}'):
            with open(self.log, "a") as f:
                f.write(bad + "\n" + '{"event":"loss","t":6}\n')
            code, out, err = self.run_report()
            self.assertEqual(code, 2, bad)
            self.assertEqual(len(err.splitlines()), 1, err)
            self.assertIn(f"{self.log}:{len(sample_log()) + 1}: ", err)
            self.setUp()

    def test_hostileLines(self) -> None:
        """
        Lines that raised a traceback (RecursionError, OverflowError,
        ValueError), with a plot asked for or not, are one line naming
        the line and status 2: nesting deeper than the JSON decoder
        recurses, a round trip of 1e308 ms, and times the plot's dates
        cannot hold.
        """
        number = len(sample_log()) + 1
        for bad in ("[" * 100_000, '{"event":"reply","t":5,"rtt_ms":1e308}',
                    '{"event":"reply","t":1e300,"rtt_ms":1}', '{"event":"reply","t":-1e12,"rtt_ms":1}'):
            for plot in ([], ["-o", self.mktemp() + ".svg"]):
                self.setUp()
                with open(self.log, "a") as f:
                    f.write(bad + "\n")
                code, out, err = self.run_report(*plot)
                self.assertEqual((code, out), (2, ""), bad)
                self.assertEqual(len(err.splitlines()), 1, err)
                self.assertTrue(err.startswith(f"pingproto report: {self.log}:{number}: "), err)

    def test_targetShownEscaped(self) -> None:
        """
        A target that a crafted log gives control characters or a lone
        surrogate is shown escaped, in the summary and the plot's title: it
        cannot write to the terminal, and a strict UTF-8 stdout takes it
        (it was a UnicodeEncodeError traceback, and matplotlib's with -o).
        The JSON summary keeps it as the log has it.
        """
        target = "\x1b[2J\ud800"
        with open(self.log, "w") as f:
            f.write(json.dumps({"event": "start", "t": T0, "target": target}) + "\n")
            f.write(json.dumps({"event": "reply", "t": T0, "rtt_ms": 1.0}) + "\n")
        for args in ([], ["-o", self.mktemp() + ".svg"]):
            options = ReportOptions()
            options.parseOptions([self.log, *args])
            raw = io.BytesIO()
            out = io.TextIOWrapper(raw, encoding="utf-8", errors="strict", write_through=True)
            self.assertEqual(options.run(out, io.StringIO()), 0, args)
            self.assertEqual(raw.getvalue().splitlines()[0], b"--- \\x1b[2J\\ud800 pingproto statistics ---")
        with open(args[-1]) as f:
            self.assertIn("\\x1b[2J\\ud800", f.read())
        code, out, _ = self.run_report("--json")
        self.assertEqual(json.loads(out)["target"], target)

    def test_garbageLastLine(self) -> None:
        """
        A log whose only line is garbage beginning with "{" is refused,
        naming the line, not summarised as empty.
        """
        with open(self.log, "w") as f:
            f.write("{garbage\n")
        code, out, err = self.run_report()
        self.assertEqual((code, out), (2, ""))
        self.assertEqual(err, f"pingproto report: {self.log}:1: not a JSON record: '{{garbage'\n")

    def test_byteOrderMark(self) -> None:
        """
        A log that begins with a UTF-8 byte order mark, as Windows editors
        save one, is read as without it.
        """
        code, expected, _ = self.run_report("--json")
        with open(self.log, "rb") as f:
            data = f.read()
        with open(self.log, "wb") as f:
            f.write(b"\xef\xbb\xbf" + data)
        self.assertEqual(self.run_report("--json"), (code, expected, ""))

    def test_jsonWithPlot(self) -> None:
        """
        With --json and -o, stdout holds the JSON summary alone; the line
        saying the plot was written goes to stderr.
        """
        path = self.mktemp() + ".svg"
        code, out, err = self.run_report("--json", "-o", path)
        self.assertEqual(code, 0)
        self.assertEqual(json.loads(out)["sent"], 570)
        self.assertEqual(err, f"wrote {path}\n")

    def test_emptyWindowNotPlotted(self) -> None:
        """
        With no records in the window there is no plot (it was an empty
        picture dated 1970, titled with the file's name), and stderr says
        why; the summary is still printed.
        """
        path = self.mktemp() + ".png"
        code, out, err = self.run_report("--until", str(T0 - 60), "-o", path)
        self.assertEqual(code, 1)
        self.assertIn("0 sent", out)
        self.assertEqual(
            err,
            f"pingproto report: no records before {when(T0 - 60):%Y-%m-%d %H:%M:%S} UTC to plot; "
            f"did not write {path}\n",
        )
        self.assertFalse(os.path.exists(path))

    def test_png(self) -> None:
        """
        -o OUT.png writes a PNG image.
        """
        path = self.mktemp() + ".png"
        code, out, _ = self.run_report("-o", path)
        self.assertEqual(code, 0)
        with open(path, "rb") as f:
            self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

    def test_svg(self) -> None:
        """
        -o OUT.svg writes an SVG document whose text names the target and
        the legend's marks.
        """
        path = self.mktemp() + ".svg"
        self.run_report("-o", path)
        root = ElementTree.parse(path).getroot()
        self.assertTrue(root.tag.endswith("svg"))
        with open(path) as f:
            text = f.read()
        for words in ("wss://example.com:1234/", "median", "lost ping", "flatline", "disconnected"):
            self.assertIn(words.replace(" ", ""), text.replace(" ", ""), words)

    def test_unwritableOutput(self) -> None:
        """
        A plot that cannot be written is one line and status 2, after the
        summary.
        """
        path = self.mktemp() + "/missing/plot.png"
        code, out, err = self.run_report("-o", path)
        self.assertEqual(code, 2)
        self.assertIn("pingproto statistics", out)
        self.assertEqual(err, f"pingproto report: cannot write {path}: No such file or directory\n")

    def test_plotWithoutMatplotlib(self) -> None:
        """
        Without matplotlib (an install without the [plot] extra), -o is a
        usage error naming the extra, before the log is read.
        """
        saved = sys.modules.get("matplotlib")
        sys.modules["matplotlib"] = None  # type: ignore[assignment]
        if saved is None:
            self.addCleanup(sys.modules.pop, "matplotlib")
        else:
            self.addCleanup(sys.modules.__setitem__, "matplotlib", saved)
        with self.assertRaises(UsageError) as caught:
            ReportOptions().parseOptions([self.log, "-o", "plot.png"])
        self.assertIn("pip install 'pingproto[plot]'", str(caught.exception))

    def test_badInput(self) -> None:
        """
        A missing file or a bad option is a clear error with status 2; so
        is a window that holds no moment (--until at or before --since),
        and a --since or --until that is NaN, infinite, or out of the
        records' range (NaN and inf were taken, and printed "time nan s").
        """
        options = ReportOptions()
        options.parseOptions([self.mktemp()])
        err = io.StringIO()
        self.assertEqual(options.run(io.StringIO(), err), 2)
        self.assertIn("cannot read", err.getvalue())
        # No file, or two: said so, not Twisted's "Wrong number of arguments".
        for args in ([], [self.log, self.log]):
            with self.assertRaises(UsageError) as caught:
                ReportOptions().parseOptions(args)
            self.assertEqual(str(caught.exception), "give one log file, written by pingproto ping --log FILE")
        for args in (["-o", "x.gif", self.log], ["--since", "soon", self.log],
                     ["--since", "nan", self.log], ["--since", "inf", self.log], ["--until", "-inf", self.log],
                     ["--until", "NaN", self.log], ["--since", "1e300", self.log], ["--since", "-1", self.log],
                     ["--until", "3000-01-01", self.log],
                     ["--since", "5", "--until", "4", self.log], ["--since", "5", "--until", "5", self.log]):
            with self.assertRaises(UsageError, msg=args) as caught:
                ReportOptions().parseOptions(args)
            if args[0] in ("--since", "--until") and len(args) == 3:
                # The error names the option it is about.
                self.assertTrue(str(caught.exception).startswith(f"{args[0]}: {args[1]!r} "), str(caught.exception))
