"""
Waiting on events in tests without polling or sleeping.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred


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
