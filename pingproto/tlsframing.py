"""
Where TLS records end in a stream of reads, without decrypting them.

OpenSSL takes every record handed to it in one call, and some records
cost the server work while carrying no data that any limit counts (TLS
1.3 key updates).  Handing OpenSSL a read a few records at a time lets
the TLS layer count them and stop between them (L{pingproto.tls.TLSProtocol}).
Every TLS record, from a connection's first, starts with the same five
bytes: its type, its version and the length of what follows.
"""

from __future__ import annotations

__all__ = ["BOUNDARY", "HEADER", "Position", "records_end"]

# A record's header: type (1 byte), version (2), length (2).
HEADER = 5

# Where a connection's stream is, record-wise, between reads: the bytes
# still to come of the record under way, and the first bytes of a header
# cut by the end of a read.  A tuple, and one shared value for the common
# place between two records, so that an idle connection holds nothing of
# its own for it.
Position = tuple[int, bytes]
BOUNDARY: Position = (0, b"")


def records_end(position: Position, data: bytes, most: int) -> tuple[int, int, Position]:
    """
    How many bytes of C{data}, a connection's next read, to hand on so
    that at most C{most} records end in them (all of it if fewer end in
    it), how many records end in them, and where the stream is after
    them.  The rest of C{data} is the next read's beginning.
    """
    size = len(data)
    ended = 0
    # Where the next header (or the rest of one) begins.
    at, head = position
    if at:
        if at > size:
            return size, 0, (at - size, b"")
        ended = 1
        if ended == most:
            return at, ended, BOUNDARY
    while True:
        missing = HEADER - len(head)
        if at + missing > size:
            rest = head + data[at:]
            return size, ended, (0, rest) if rest else BOUNDARY
        header = head + data[at : at + missing] if head else data[at : at + HEADER]
        head = b""
        end = at + missing + ((header[3] << 8) | header[4])
        if end > size:
            return size, ended, (end - size, b"")
        ended += 1
        at = end
        if ended == most:
            return at, ended, BOUNDARY
