"""
The bookkeeping behind the server's limits, free of any reactor: a token
bucket for message and data rates, the real client address behind trusted proxies,
which browser origins may connect, concurrent connections per address, the
open files a server needs, and when a refusal is worth a warning.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from functools import lru_cache

__all__ = [
    "AddressCounter",
    "RefusalTally",
    "TokenBucket",
    "address_group",
    "client_address",
    "files_needed",
    "origin_allowed",
    "socket_bound",
]

# File descriptors a server keeps besides its clients' sockets: listeners,
# log files, the TLS files it reads, epoll, the reactor's waker, a worker's
# pipes.  Some 20 in practice.
SPARE_FILES = 128
# Sockets past --max-connections a server may hold at once while it answers
# them 503 and closes them: each is held for a reactor turn or two.
REFUSING_ROOM = 128


class TokenBucket:
    """
    Allows C{rate} events a second on average and bursts of C{burst}.

    A browser's ping is one message a second; a flood is thousands.  The
    bucket lets a client speed up briefly (a tab waking from the
    background sends its backlog) while a sustained flood runs it dry.
    """

    __slots__ = ("rate", "burst", "_tokens", "_last")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        if not (rate > 0 and burst >= 1):  # also refuses NaN
            raise ValueError("a rate limit needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._last = now

    # take and spend run for every message and every read a server gets,
    # so each refills inline: a call to a shared method and min() were
    # nearly half of their time (0.28 -> 0.16 us).

    def take(self, now: float) -> bool:
        """
        Spend one token if there is one.
        """
        if now > self._last:
            tokens = self._tokens + (now - self._last) * self.rate
            self._tokens = tokens if tokens < self.burst else self.burst
            self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True
        return False

    def spend(self, amount: float, now: float) -> float:
        """
        Spend C{amount} tokens, going into debt if there are too few, and
        return how many seconds from C{now} until the debt is paid (0 if
        there is none): for shaping, where what arrived cannot be refused,
        only the next arrival delayed.
        """
        if now > self._last:
            tokens = self._tokens + (now - self._last) * self.rate
            self._tokens = tokens if tokens < self.burst else self.burst
            self._last = now
        self._tokens -= amount
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


def client_address(peer: str, forwarded_for: str | None, trusted_proxies: int) -> str:
    """
    The address a request came from.

    Behind C{trusted_proxies} reverse proxies, each of which appends the
    address it got the request from to C{X-Forwarded-For}, the real client
    is the entry that many places from the end; anything before it could
    have been written by the client itself.  With too few entries the
    header is not trusted at all.
    """
    if trusted_proxies <= 0 or not forwarded_for:
        return peer
    entries = [entry.strip() for entry in forwarded_for.split(",")]
    if len(entries) < trusted_proxies or not entries[-trusted_proxies]:
        return peer
    return entries[-trusted_proxies]


def origin_allowed(origin: str | None, patterns: tuple[str, ...], allow_null: bool) -> bool:
    """
    Whether a browser page from C{origin} may open a WebSocket.

    C{patterns} are origins as browsers send them (C{https://example.com},
    with a port only when it is not the scheme's default) where C{*}
    stands for any run of characters, so C{https://*.example.com} covers
    the subdomains.  A request without an Origin header is not from a
    browser page and passes; C{null} is what a page opened from a file or
    a data: URL sends.  Nothing else in a pattern is special: an IPv6
    origin (C{https://[::1]:8443}) is written as it is sent.
    """
    if not origin:
        return True
    origin = origin.strip().lower()
    if origin == "null":
        return allow_null
    return any(_glob_match(_pieces(pattern), origin) for pattern in patterns)


@lru_cache(maxsize=256)
def _pieces(pattern: str) -> tuple[str, ...]:
    """
    An origin pattern split at its C{*}s, made once per pattern (the
    patterns are the server's configuration; every WebSocket request
    matches against them).  Not L{fnmatch}, where C{[}, C{]} and C{?} are
    syntax too.
    """
    return tuple(pattern.lower().split("*"))


def _glob_match(pieces: tuple[str, ...], text: str) -> bool:
    """
    Whether C{text} is C{pieces} joined by runs of any characters.

    In one pass, each middle piece taken where it first fits: that is
    enough when C{*} is the only wildcard.  A regular expression
    (C{.*} for each C{*}) backtracks: a pattern with two C{*}s against a
    hostile Origin of 16,000 dots took 0.8 s of the reactor's thread.
    """
    if len(pieces) == 1:
        return text == pieces[0]
    first, *middle, last = pieces
    end = len(text) - len(last)
    if end < len(first) or not text.startswith(first) or not text.endswith(last):
        return False
    position = len(first)
    for piece in middle:
        found = text.find(piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def address_group(address: str) -> str:
    """
    What a client address is counted as under the per-address cap: an
    IPv6 address by its /64, which is one client's as an IPv4 address is
    (a household or a host is given a whole /64, and can take any address
    in it: counted one by one, one client could fill every cap).  An IPv4
    address, one mapped into IPv6 and anything that is not an address
    count as themselves.
    """
    if ":" not in address:
        return address
    try:
        ip = ipaddress.IPv6Address(address.split("%", 1)[0])
    except ValueError:
        return address
    if ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ipaddress.IPv6Network((int(ip) >> 64 << 64, 64)))


class AddressCounter:
    """
    Concurrent connections per client address (an IPv6 one by its /64:
    L{address_group}), with a cap.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._counts)

    def count(self, address: str) -> int:
        """
        How many connections from C{address} are counted now.
        """
        return self._counts[address_group(address)]

    def acquire(self, address: str) -> bool:
        """
        Count a connection from C{address} unless it is at the cap
        (0: no cap).
        """
        group = address_group(address)
        if self.limit and self._counts[group] >= self.limit:
            return False
        self._counts[group] += 1
        return True

    def release(self, address: str) -> None:
        """
        Forget one connection from C{address}; an address down to none is
        dropped, so the counter holds only the addresses connected now.
        """
        group = address_group(address)
        self._counts[group] -= 1
        if self._counts[group] <= 0:
            del self._counts[group]


def files_needed(max_connections: int) -> int:
    """
    The open-file limit a server capped at C{max_connections} (0: no cap)
    asks for: one file per connection, room for refusing more
    (L{REFUSING_ROOM}), and its other files (L{SPARE_FILES}).
    """
    return (max_connections or 65_536) + REFUSING_ROOM + SPARE_FILES


def socket_bound(open_files: int) -> int:
    """
    The most sockets a server may hold at once, served or being refused,
    under a soft open-file limit of C{open_files}; one more is closed as it
    is accepted, without an answer.

    Past the limit itself, C{accept} fails with EMFILE, and Twisted then
    closes every waiting client, whatever its address, and the server
    cannot open a file (a renewed certificate) either: one address, or a
    crowd, could take the server from everyone.  The bound keeps
    L{SPARE_FILES} free for the server's own files, or half the limit if
    it is that low.  Under the limit a server asks for
    (L{files_needed}), that leaves L{REFUSING_ROOM} sockets past
    C{--max-connections} to be answered 503.
    """
    return max(open_files - SPARE_FILES, open_files // 2)


class RefusalTally:
    """
    When refusals at a cap are worth a warning: at the first, so that the
    operator learns the cap is being reached, then at most once every
    C{interval} seconds, with how many were refused since the last one.

    One warning per refusal buried the log under identical lines (300
    retries, 300 warnings); one warning only at the first would not say
    whether it goes on.  Each refusal is still logged, at info.
    """

    __slots__ = ("interval", "_warned_at", "_since")

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._warned_at: float | None = None
        self._since = 0

    def refused(self, now: float) -> tuple[int, float | None] | None:
        """
        Count one refusal at C{now}; if it is time to warn, return how
        many refusals the warning is for and the seconds since the last
        warning (L{None} for the first), else L{None}.
        """
        self._since += 1
        last = self._warned_at
        if last is not None and 0 <= now - last < self.interval:
            return None
        count, self._since, self._warned_at = self._since, 0, now
        return count, None if last is None else now - last
