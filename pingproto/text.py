"""
Text from a peer made safe to show: one rule for what the server logs and
what C{pingproto ping} prints.
"""

from __future__ import annotations

__all__ = ["QUOTED_MAX", "peer_text", "printable", "shortened"]

# The most characters of a peer's text a message quotes: more than any
# honest reason phrase or header needs, and one line however long the
# peer's was.
QUOTED_MAX = 200


def printable(text: str) -> str:
    """
    C{text}, from a peer, safe for a log line or a terminal: control
    characters are escaped, so that a header or a close reason cannot
    write to an operator's terminal or forge a line of its own.
    """
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def shortened(text: str, limit: int = QUOTED_MAX) -> str:
    """
    C{text}, from a peer, cut to its first C{limit} characters and
    C{"..."} if it is longer: a server may answer with a status line or a
    header as long as the answer head it may send (16 KiB).
    """
    return text if len(text) <= limit else text[:limit] + "..."


def peer_text(address: object) -> str:
    """
    A peer as Autobahn names it in the log (its C{peer2str}), from the
    address alone: a socket refused as it is accepted has no transport.
    """
    host = getattr(address, "host", None)
    if host is None:
        return "unix"
    return f"{'tcp6' if ':' in host else 'tcp4'}:{host}:{getattr(address, 'port', '')}"
