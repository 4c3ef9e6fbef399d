"""
The reactor as pingproto's public functions take it: optional, defaulting
to the global one, and typed by what it must do.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, Sequence, TypeVar, cast

from twisted.internet.interfaces import IConnector, IDelayedCall, IListeningPort, IReactorTime
from twisted.internet.protocol import ClientFactory, ServerFactory
from twisted.internet.task import LoopingCall

__all__ = ["TimeTCPReactor", "looping_call", "or_global_reactor"]

_R = TypeVar("_R")


def or_global_reactor(reactor: _R | None) -> _R:
    """
    C{reactor}, or the global reactor if it is L{None}: imported only then,
    so that a program that passes its own reactor never installs the
    default one.
    """
    if reactor is None:
        from twisted.internet import reactor as global_reactor

        # The global reactor provides every reactor interface that
        # pingproto asks of a reactor.
        return cast(_R, global_reactor)
    return reactor


def looping_call(clock: IReactorTime, f: Callable[[], object]) -> LoopingCall:
    """
    A L{LoopingCall} of C{f} timed by C{clock}.

    L{LoopingCall}'s constructor imports the global reactor for its default
    clock, and that import installs the default reactor: a program that
    passed its own reactor could then install no other.  So the call is
    made without it, setting what it would (the documented C{f}, C{a},
    C{kw} and C{clock}; the rest are class attributes).
    """
    call = LoopingCall.__new__(LoopingCall)
    call.f, call.a, call.kw, call.clock = f, (), {}, clock
    return call


class TimeTCPReactor(Protocol):
    """
    A reactor that provides both L{IReactorTime
    <twisted.internet.interfaces.IReactorTime>} and L{IReactorTCP
    <twisted.internet.interfaces.IReactorTCP>}, as every real reactor and
    L{MemoryReactorClock <twisted.internet.testing.MemoryReactorClock>} do:
    what it takes to time things and to build TCP endpoints on.  Python's
    type system has no intersection of two interfaces: this protocol spells
    out the methods of both, as the interfaces declare them.
    """

    # IReactorTime

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., Any], *args: object, **kwargs: object
    ) -> IDelayedCall: ...

    def getDelayedCalls(self) -> Sequence[IDelayedCall]: ...

    # IReactorTCP

    def listenTCP(
        self, port: int, factory: ServerFactory, backlog: int = ..., interface: str = ...
    ) -> IListeningPort: ...

    def connectTCP(
        self,
        host: str,
        port: int,
        factory: ClientFactory[Any],
        timeout: float = ...,
        bindAddress: tuple[str, int] | None = ...,
    ) -> IConnector: ...
