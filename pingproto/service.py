"""
Assembling a listening pingproto server from endpoint strings.

TLS is applied by wrapping the protocol factory in L{TLSFactory
<pingproto.tls.TLSFactory>} (Twisted's C{TLSMemoryBIOFactory} with
pingproto's TLS layer) rather than by choosing C{ssl:} endpoints, so it covers every kind of
listener alike, inherited systemd sockets included, and the certificate
can be replaced in one place (L{ServerTLS.replace}).
"""

from __future__ import annotations

import os
from typing import Any, Sequence, cast

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService, Service
from twisted.internet.defer import Deferred, TimeoutError, succeed
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory, IReactorTime, IStreamServerEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from pingproto._reactor import TimeTCPReactor, or_global_reactor
from pingproto.config import ServerLimits, refuse_public_plain
from pingproto.reload import CertificateReloader
from pingproto.server import EchoServerFactory
from pingproto.text import printable
from pingproto.tls import ServerTLS, TLSFactory
from pingproto.tlsfiles import TLSMaterial

__all__ = ["GOODBYE_GRACE", "ListeningService", "ServerService", "make_server_service"]

# Seconds open WebSockets get to finish their closing handshake on stop.
GOODBYE_GRACE = 3.0

_log = Logger()


class ListeningService(StreamServerEndpointService):
    """
    A listener that says where it listens once it does, and fails loudly
    at start-up (not later, in a log) when it cannot.
    """

    def __init__(self, endpoint: IStreamServerEndpoint, factory: IProtocolFactory, scheme: str) -> None:
        super().__init__(endpoint, factory)
        self.scheme = scheme
        self.port: IListeningPort | None = None

    def privilegedStartService(self) -> None:
        # At every start, not only the first (Twisted's stops raising
        # after it): a port taken when the service is started again fails
        # that start, not a log line later.
        self._raiseSynchronously = True
        super().privilegedStartService()
        self._waitingForPort.addCallback(self._listening)

    def stopService(self) -> Deferred[None]:
        """
        Stop as Twisted's service does, and forget the port at once, so
        that a service started again listens again: Twisted's keeps the
        stopped port's Deferred and, started again, only says it is
        running.  (Started again before the old port has closed, on the
        same fixed port, it fails to listen, and says so.)
        """
        if self._waitingForPort is None:
            # Stopped already (a stop twice over).
            Service.stopService(self)
            return succeed(None)
        stopped: Deferred[None] = super().stopService()
        self._waitingForPort = None
        self.port = None
        return stopped

    def _listening(self, port: IListeningPort | None) -> IListeningPort | None:
        if port is None:
            # Failed later than its start, and logged by Twisted's service.
            return None
        self.port = port
        _log.info("pingproto listening on {where}", where=listening_at(self.scheme, port.getHost()))
        return port


def listening_at(scheme: str, address: object) -> str:
    """
    Where a listener serves, for its log line: the URL a client opens
    (C{wss://host:port/}, C{ws://[v6]:port/}), or the path of a UNIX
    socket, which has none (Twisted's text for it was
    C{UNIXAddress('/run/ws.sock')}).
    """
    host = getattr(address, "host", None)
    if host is None:
        name = getattr(address, "name", None)
        # printable: an abstract socket's name begins with a NUL.
        path = printable(os.fsdecode(name)) if name is not None else str(address)
        return f"{scheme}:// on the UNIX socket {path}"
    port = address.port  # type: ignore[attr-defined]
    return f"{scheme}://[{host}]:{port}/" if ":" in host else f"{scheme}://{host}:{port}/"


def _soft_open_files() -> int | None:
    """
    The soft open-file limit, or L{None} if there is none (unlimited, or
    no C{resource} module to read it with, as on Windows).
    """
    try:
        import resource
    except ImportError:
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else soft


class _Goodbye(Service):
    """
    On stop (SIGTERM under twistd), after the listeners have closed, tell
    every client the server is going away (close code 1001) and wait a
    little for them to answer; whoever has not is cut off, so stopping
    never hangs.
    """

    def __init__(self, factory: EchoServerFactory, reactor: Any) -> None:
        self.factory = factory
        self.reactor = reactor

    def stopService(self) -> Deferred[None]:
        super().stopService()
        idle = self.factory.going_away()
        idle.addTimeout(GOODBYE_GRACE, self.reactor)

        def cut_off(reason: Failure) -> None:
            reason.trap(TimeoutError)
            for protocol in list(self.factory.protocols):
                protocol.abort()

        return idle.addErrback(cut_off)


class ServerService(MultiService):
    """
    What L{make_server_service} builds: a L{MultiService} of the
    listeners, the certificate reloader and the goodbye on stop, with the
    parts an embedding program may need to reach.

    @ivar factory: the L{EchoServerFactory} every listener serves.
    @ivar tls: the L{ServerTLS}, or L{None} for plain ws://.
    @ivar reloader: the L{CertificateReloader}, or L{None} when the TLS
        material did not come from a directory.
    @ivar listeners: the L{ListeningService}s, in the order given.
    """

    def __init__(self, factory: EchoServerFactory, tls: ServerTLS | None, reloader: CertificateReloader | None) -> None:
        super().__init__()
        self.factory = factory
        self.tls = tls
        self.reloader = reloader
        self.listeners: list[ListeningService] = []


def make_server_service(
    listen: Sequence[str | IStreamServerEndpoint],
    tls: TLSMaterial | ServerTLS | None = None,
    limits: ServerLimits = ServerLimits(),
    reactor: TimeTCPReactor | None = None,
    *,
    handle_sighup: bool = False,
    allow_plain: bool = False,
) -> ServerService:
    """
    A service listening on each endpoint (or endpoint string) in C{listen}, serving the
    echo over TLS when C{tls} is given.  Given L{TLSMaterial} (as loaded
    from a directory), the service also reloads that directory when its
    files change, when asked (C{service.reloader.reload()}), and on
    SIGHUP with C{handle_sighup}: off by default, since the signal is the
    program's, which twistd's is (L{pingproto.tap}).

    Without C{tls}, an endpoint string that is not loopback is refused
    with a L{ValueError} unless C{allow_plain} says a TLS-terminating
    proxy stands in front, as C{twistd pingproto} refuses one without
    C{--no-tls} (L{pingproto.config.is_loopback_endpoint}).  Endpoint
    objects are taken as they are.

    C{reactor} (the global one by default) is the clock of every timer and
    the reactor of endpoint strings, which need what their kind needs
    (C{IReactorTCP} for C{tcp:}, C{IReactorUNIX} for C{unix:}).
    """
    reactor = or_global_reactor(reactor)
    # Its IReactorTime side, as Twisted's APIs ask for it.
    clock = cast(IReactorTime, reactor)
    # One endpoint string, not a sequence of one-letter ones; and read
    # once, as a list: a generator would be used up by the first look.
    listen = [listen] if isinstance(listen, str) else list(listen)
    # Checked here, or they would fail only at startService, or with
    # Twisted's words about a context factory.
    if tls is not None and not isinstance(tls, (TLSMaterial, ServerTLS)):
        raise TypeError(f"tls takes what load_tls_dir(directory) returns, not {tls!r}")
    if not isinstance(limits, ServerLimits):
        raise TypeError(f"limits takes a ServerLimits, not {limits!r}")
    # Parsed first: a kind Twisted does not know is refused as that.
    endpoints = [serverFromString(reactor, d) if isinstance(d, str) else d for d in listen]
    for endpoint in endpoints:
        if not IStreamServerEndpoint.providedBy(endpoint):
            raise TypeError(f"listen takes endpoint strings or IStreamServerEndpoint providers, not {endpoint!r}")
    if tls is None and not allow_plain:
        refuse_public_plain(listen, "give tls, or allow_plain=True if a TLS-terminating proxy stands in front")
    reloader = None
    if isinstance(tls, TLSMaterial):
        directory = os.path.dirname(tls.files.key)
        tls = ServerTLS(tls)
        reloader = CertificateReloader(tls, directory, clock=clock, handle_sighup=handle_sighup)
    factory = EchoServerFactory(limits, reactor=clock)
    open_files = _soft_open_files()
    if open_files is not None:
        # Under the limit in force now, which twistd pingproto raises first
        # (tap.raise_open_file_limit).
        factory.bound_sockets(open_files)
    wrapped: IProtocolFactory = factory
    if tls is not None:
        wrapped = TLSFactory(tls, False, factory, clock=clock)
    service = ServerService(factory, tls, reloader)
    # Added first, so stopped last: the listeners close before the goodbyes.
    _Goodbye(factory, reactor).setServiceParent(service)
    for endpoint in endpoints:
        listener = ListeningService(endpoint, wrapped, "wss" if tls else "ws")
        listener.setServiceParent(service)
        service.listeners.append(listener)
    if reloader is not None:
        reloader.setServiceParent(service)
    return service
