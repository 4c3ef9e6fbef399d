"""
Waiting on events in tests without polling or sleeping.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from pingproto import PingRecorder, PingResult
from pingproto.server import EchoServerFactory


class Conditions:
    """
    Deferreds that fire once a condition holds; whoever changes the state
    the conditions read calls L{check}.
    """

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def until(self, condition: Callable[[], bool]) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        if condition():
            d.callback(None)
        else:
            self._waiting.append((condition, d))
        return d

    def check(self) -> None:
        for entry in list(self._waiting):
            condition, d = entry
            if condition():
                self._waiting.remove(entry)
                d.callback(None)

    def fail(self, reason: Exception) -> None:
        """
        Fail everything still waiting: its condition can no longer come.
        """
        waiting, self._waiting = self._waiting, []
        for _, d in waiting:
            d.errback(reason)


class Watcher(PingRecorder):
    """
    Records like L{PingRecorder}, and fires waiters as things happen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.waiters = Conditions()

    def when(self, condition: Callable[[PingResult], bool]) -> Deferred[None]:
        return self.waiters.until(lambda: condition(self.result))

    def ping_replied(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().ping_replied(*args, **kwargs)
        self.waiters.check()

    def ping_lost(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().ping_lost(*args, **kwargs)
        self.waiters.check()

    def state_changed(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().state_changed(*args, **kwargs)
        self.waiters.check()


class FactoryBooks:
    """
    Waits on an L{EchoServerFactory}'s books (its sockets, open WebSockets
    and addresses counted), which shrink as connections go: the factory
    calls C{notify_if_idle} for every socket it loses, and the test
    listens there.  Conditions are checked on the next reactor turn, once
    that connection's C{connectionLost}, still on the stack, has finished
    and let go of it.
    """

    def __init__(self, test: TestCase, factory: EchoServerFactory) -> None:
        self._conditions = Conditions()
        notify = factory.notify_if_idle

        def lost() -> None:
            notify()
            reactor.callLater(0, self._conditions.check)

        test.patch(factory, "notify_if_idle", lost)

    def until(self, condition: Callable[[], bool]) -> Deferred[None]:
        return self._conditions.until(condition)


def sockets_closed(test: TestCase, factory: EchoServerFactory) -> Deferred[None]:
    """
    Fire once C{factory} holds no socket, and on a reactor turn after the
    last one went even if none was open when asked: the read that ended
    it may still be unwinding, its stack holding the connection.
    """
    gone = FactoryBooks(test, factory).until(lambda: factory.sockets == 0)
    return gone.addCallback(lambda _: deferLater(reactor, 0, lambda: None))
