"""
The bookkeeping of a ping session, without I/O.

A ping is the current wall-clock time in milliseconds as decimal text, the
wire format of the classic page (C{Date.now()} sent, C{parseInt} on the
echo), so any echo server answers it.  Round-trip times, though, are
measured on a monotonic clock the caller passes in, so a clock step during
a run cannot distort them.  An echo is matched to its ping by its exact
bytes; one that matches nothing outstanding (too late, or not ours) is
counted, not trusted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

__all__ = ["Loss", "LossReason", "PingSession", "Sample"]


@dataclass(frozen=True)
class Sample:
    """
    One answered ping: C{rtt} in seconds, C{sent_ms} the wall time it carried.
    """

    seq: int
    sent_ms: int
    rtt: float


class LossReason(str, Enum):
    """
    Why a ping is lost.  The values are the C{reason} words of a C{loss}
    record; being a C{str}, a reason equals its word and is written as it
    by C{json.dumps}.
    """

    TIMEOUT = "timeout"
    DISCONNECT = "disconnect"
    # Due while there was no open connection to send it on.
    NOT_CONNECTED = "not_connected"


@dataclass(frozen=True)
class Loss:
    """
    A ping that will never be answered, and why.
    """

    seq: int
    sent_ms: int
    reason: LossReason


@dataclass(frozen=True)
class _Pending:
    seq: int
    sent_ms: int
    sent_at: float


class PingSession:
    """
    Outstanding pings and their fate.

    C{sent} counts the pings that fell due, as ping(8)'s count does: one
    due while there was no connection to send it on (L{missed}) is one of
    them, lost at once, so that an outage shows as loss and a count ends.

    @param timeout: seconds after which an unanswered ping is lost.
    @param count: stop after this many pings (L{None}: never).
    """

    def __init__(self, timeout: float, count: int | None = None) -> None:
        if not timeout > 0:  # also refuses NaN
            raise ValueError("the reply timeout must be positive")
        if count is not None and count < 1:
            raise ValueError("the ping count must be 1 or more")
        self.timeout = timeout
        self.count = count
        self.sent = 0
        self.received = 0
        self.lost = 0
        self.unmatched = 0
        self._pending: dict[bytes, _Pending] = {}

    @property
    def done_sending(self) -> bool:
        return self.count is not None and self.sent >= self.count

    @property
    def finished(self) -> bool:
        """
        Every ping asked for was sent and is answered or lost.
        """
        return self.done_sending and not self._pending

    @property
    def outstanding(self) -> int:
        return len(self._pending)

    def send(self, now: float, wall_ms: int) -> bytes:
        """
        Record a ping sent at monotonic time C{now} and return its payload.

        Two pings within one millisecond would carry the same text, so the
        later one is moved on by a millisecond until it is unique.
        """
        if self.done_sending:
            raise RuntimeError(f"all {self.count} pings were already sent")
        payload = str(wall_ms).encode("ascii")
        while payload in self._pending:
            wall_ms += 1
            payload = str(wall_ms).encode("ascii")
        self.sent += 1
        self._pending[payload] = _Pending(self.sent, wall_ms, now)
        return payload

    def missed(self, wall_ms: int) -> Loss:
        """
        Record a ping that fell due at C{wall_ms} while there was no open
        connection to send it on: counted as sent, and lost.
        """
        if self.done_sending:
            raise RuntimeError(f"all {self.count} pings were already sent")
        self.sent += 1
        self.lost += 1
        return Loss(self.sent, wall_ms, LossReason.NOT_CONNECTED)

    def receive(self, payload: bytes, now: float) -> Sample | None:
        """
        Match an echo received at C{now}; L{None} if it answers no
        outstanding ping.
        """
        pending = self._pending.pop(payload, None)
        if pending is None:
            self.unmatched += 1
            return None
        self.received += 1
        return Sample(pending.seq, pending.sent_ms, max(0.0, now - pending.sent_at))

    def next_deadline(self) -> float | None:
        """
        When the oldest outstanding ping times out.
        """
        sent_at = self.oldest_sent_at()
        return None if sent_at is None else sent_at + self.timeout

    def oldest_sent_at(self, after_seq: int = 0) -> float | None:
        """
        When the oldest outstanding ping later than ping C{after_seq} was
        sent (L{None}: none is).
        """
        for pending in self._pending.values():
            if pending.seq > after_seq:
                return pending.sent_at
        return None

    def expire(self, now: float) -> list[Loss]:
        """
        Give up on pings older than the timeout.
        """
        # The same sum as next_deadline(), so a timer set for the deadline
        # always finds the ping due (now - sent_at can round below timeout).
        return self._drop(lambda p: now >= p.sent_at + self.timeout, LossReason.TIMEOUT)

    def disconnect(self) -> list[Loss]:
        """
        The connection is gone: nothing outstanding can come back.
        """
        return self._drop(lambda p: True, LossReason.DISCONNECT)

    def _drop(self, due: Callable[[_Pending], bool], reason: LossReason) -> list[Loss]:
        # Pings are kept in the order sent, so the due ones are a prefix.
        losses = []
        for payload, pending in list(self._pending.items()):
            if not due(pending):
                break
            del self._pending[payload]
            self.lost += 1
            losses.append(Loss(pending.seq, pending.sent_ms, reason))
        return losses
