"""
C{pingproto report}: reading a log back, windows, the summary, and the
pictures.
"""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ElementTree

from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from pingproto.records import RecordError, read_records
from pingproto.report import ReportOptions, parse_time, timeline

T0 = 1_764_000_000.0


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
        A bad line followed by more lines is an error naming the line.
        """
        with self.assertRaises(RecordError) as caught:
            list(read_records(["{}", "x"], "f.jsonl"))
        self.assertIn("f.jsonl:1", str(caught.exception))
        with self.assertRaises(RecordError) as caught:
            list(read_records(["nonsense", '{"event":"start","t":1}'], "f.jsonl"))
        self.assertIn("f.jsonl:1: not a JSON record", str(caught.exception))


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

    def test_badInput(self) -> None:
        """
        A missing file or a bad option is a clear error with status 2.
        """
        options = ReportOptions()
        options.parseOptions([self.mktemp()])
        err = io.StringIO()
        self.assertEqual(options.run(io.StringIO(), err), 2)
        self.assertIn("cannot read", err.getvalue())
        for args in (["-o", "x.gif", self.log], ["--since", "soon", self.log], ["--since", "5", "--until", "4", self.log]):
            with self.assertRaises(UsageError, msg=args):
                ReportOptions().parseOptions(args)
