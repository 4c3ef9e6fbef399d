"""
L{pingproto.tlsframing}: where TLS records end, read by read.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from pingproto.tlsframing import BOUNDARY, records_end


def record(length: int) -> bytes:
    return bytes([23, 3, 3, length >> 8, length & 0xFF]) + b"r" * length


class RecordsEndTests(SynchronousTestCase):
    @given(
        lengths=st.lists(st.integers(0, 300) | st.integers(16_000, 16_700), max_size=40),
        cuts=st.lists(st.integers(0, 20_000), max_size=12),
        at_ends=st.lists(st.integers(0, 39), max_size=12),
        most=st.integers(1, 5),
    )
    def test_cutAtRecordEnds(self, lengths: list[int], cuts: list[int], at_ends: list[int], most: int) -> None:
        """
        However a stream of records comes in reads (split anywhere, a
        header too; at a record's end too), the pieces handed on are the
        stream, in order; each holds at most C{most} record ends, as many
        as it says, and a piece cut short of its read's end holds exactly
        C{most} and ends where a record does.
        """
        stream = b"".join(record(n) for n in lengths)
        ends, position = set(), 0
        for n in lengths:
            position += 5 + n
            ends.add(position)
        aligned = [sorted(ends)[i] for i in at_ends if i < len(ends)]
        bounds = sorted({0, len(stream), *(c for c in cuts + aligned if c < len(stream))})
        position = BOUNDARY
        handed = 0
        for start, stop in zip(bounds, bounds[1:]):
            data = stream[start:stop]
            while data:
                cut, ended, position = records_end(position, data, most)
                self.assertGreater(cut, 0)
                within = sum(1 for end in ends if handed < end <= handed + cut)
                self.assertEqual(ended, within)
                self.assertLessEqual(within, most)
                if cut < len(data):
                    self.assertEqual(within, most)
                    self.assertIn(handed + cut, ends)
                handed += cut
                data = data[cut:]
        self.assertEqual(handed, len(stream))

    def test_oneWholeRecord(self) -> None:
        """
        A read of one whole record is handed on whole, and leaves the
        stream at the shared boundary (nothing of a connection's own), the
        next read taken from its first byte as a header.
        """
        self.assertEqual(records_end(BOUNDARY, record(40), 1), (45, 1, BOUNDARY))
        self.assertIs(records_end(BOUNDARY, record(40), 16)[2], BOUNDARY)
        self.assertEqual(records_end(BOUNDARY, record(2) * 3, 2), (14, 2, BOUNDARY))
        self.assertEqual(records_end(BOUNDARY, record(9)[:3], 2), (3, 0, (0, record(9)[:3])))
