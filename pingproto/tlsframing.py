"""
Where TLS records end in a stream of reads, without decrypting them.

OpenSSL takes every record handed to it in one call, and some records
cost the server work while carrying no data that any limit counts (TLS
1.3 key updates).  Handing OpenSSL a read a few records at a time lets
the TLS layer stop between them (L{pingproto.tls.TLSProtocol}).  Every
TLS record, from a connection's first, starts with the same five bytes:
its type, its version and the length of what follows.
"""

from __future__ import annotations

__all__ = ["HEADER", "RecordCursor", "records_end"]

# A record's header: type (1 byte), version (2), length (2).
HEADER = 5


class RecordCursor:
    """
    Where a connection's stream is, record-wise, between reads: the bytes
    still to come of the record under way (C{body}), or the first bytes of
    a header cut by the end of a read (C{head}).
    """

    __slots__ = ("body", "head")

    def __init__(self) -> None:
        self.body = 0
        self.head = b""


def records_end(cursor: RecordCursor, data: bytes, most: int) -> tuple[int, int]:
    """
    How many bytes of C{data}, a connection's next read, to hand on so
    that at most C{most} records end in them (all of it if fewer end in
    it), and how many records end in them.  C{cursor} is moved over those
    bytes, and not past them: the rest of C{data} is the next read's
    beginning.
    """
    size = len(data)
    ended = 0
    # Where the next header (or the rest of one) begins.
    position = cursor.body
    if position:
        if position > size:
            cursor.body = position - size
            return size, 0
        ended = 1
        if ended == most:
            cursor.body = 0
            return position, ended
    head = cursor.head
    while True:
        missing = HEADER - len(head)
        if position + missing > size:
            cursor.body, cursor.head = 0, head + data[position:]
            return size, ended
        header = head + data[position : position + missing] if head else data[position : position + HEADER]
        head = b""
        end = position + missing + ((header[3] << 8) | header[4])
        if end > size:
            cursor.body, cursor.head = end - size, b""
            return size, ended
        ended += 1
        position = end
        if ended == most:
            cursor.body, cursor.head = 0, b""
            return position, ended
