"""
Assembling a listening pingproto server from endpoint strings.

TLS is applied by wrapping the protocol factory in L{TLSMemoryBIOFactory}
rather than by choosing C{ssl:} endpoints, so it covers every kind of
listener alike, inherited systemd sockets included, and the certificate
can be replaced in one place (L{ServerTLS.replace}).
"""

from __future__ import annotations

from typing import Sequence

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IProtocolFactory
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory

from pingproto.config import ServerLimits
from pingproto.server import EchoServerFactory
from pingproto.tls import ServerTLS
from pingproto.tlsfiles import TLSMaterial

__all__ = ["ListeningService", "make_server_service"]

_log = Logger()


class ListeningService(StreamServerEndpointService):
    """
    A listener that says where it listens once it does, and fails loudly
    at start-up (not later, in a log) when it cannot.
    """

    def __init__(self, endpoint: object, factory: IProtocolFactory, scheme: str) -> None:
        super().__init__(endpoint, factory)
        self._raiseSynchronously = True
        self.scheme = scheme
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        self._waitingForPort.addCallback(self._listening)

    def _listening(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", None)
        where = f"{host}:{address.port}" if host is not None else str(address)
        if host is not None and ":" in host:
            where = f"[{host}]:{address.port}"
        _log.info("pingproto listening on {scheme}://{where}/", scheme=self.scheme, where=where)
        return port


def make_server_service(
    listen: Sequence[str],
    tls: TLSMaterial | ServerTLS | None = None,
    limits: ServerLimits = ServerLimits(),
    reactor: object = None,
) -> MultiService:
    """
    A service listening on each endpoint string in C{listen}, serving the
    echo over TLS when C{tls} is given.

    The returned service has C{factory} (the L{EchoServerFactory}) and
    C{tls} (the L{ServerTLS} or L{None}) attributes for embedding programs.
    """
    if reactor is None:
        from twisted.internet import reactor  # type: ignore[no-redef]
    if isinstance(tls, TLSMaterial):
        tls = ServerTLS(tls)
    factory = EchoServerFactory(limits, reactor=reactor)
    wrapped: IProtocolFactory = factory
    if tls is not None:
        wrapped = TLSMemoryBIOFactory(tls, False, factory)
    service = MultiService()
    service.factory = factory  # type: ignore[attr-defined]
    service.tls = tls  # type: ignore[attr-defined]
    for description in listen:
        ListeningService(
            serverFromString(reactor, description), wrapped, "wss" if tls else "ws"
        ).setServiceParent(service)
    return service
