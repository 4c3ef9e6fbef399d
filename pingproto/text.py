"""
Text from a peer made safe to show: one rule for what the server logs and
what C{pingproto ping} prints.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """
    C{text}, from a peer, safe for a log line or a terminal: control
    characters are escaped, so that a header or a close reason cannot
    write to an operator's terminal or forge a line of its own.
    """
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
