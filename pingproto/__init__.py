"""
pingproto: measure how reliable the WebSocket link to your server is.

The public API, for programs that mount pingproto's protocols in their own
Twisted services: the names in C{__all__} here, and in the C{__all__} of
L{pingproto.tls} (the TLS policy and layer, C{TLSProtocol} and
C{wrap_client_tls} among them) and of L{pingproto.testing}
(C{FaultProxy}), which the README shows in use.  Everything else may
change.
"""

from pingproto._reactor import TimeTCPReactor
from pingproto.client import (
    ConnectionState,
    HandshakeError,
    IPingObserver,
    PingClientFactory,
    PingClientProtocol,
    PingMonitor,
    PingRecorder,
    PingResult,
    StateChange,
    TLSHandshakeIncomplete,
    ping,
)
from pingproto.config import ServerLimits
from pingproto.server import EchoServerFactory, EchoServerProtocol
from pingproto.service import ServerService, make_server_service
from pingproto.session import Loss, LossReason, PingSession, Sample
from pingproto.stats import RttSummary
from pingproto.tls import ServerTLS, client_tls_options
from pingproto.tlsfiles import TLSConfigError, TLSMaterial, load_tls_dir

__version__ = "0.1.0"

__all__ = [
    "ConnectionState",
    "EchoServerFactory",
    "EchoServerProtocol",
    "HandshakeError",
    "IPingObserver",
    "Loss",
    "LossReason",
    "PingClientFactory",
    "PingClientProtocol",
    "PingMonitor",
    "PingRecorder",
    "PingResult",
    "PingSession",
    "RttSummary",
    "Sample",
    "ServerLimits",
    "ServerService",
    "ServerTLS",
    "StateChange",
    "TLSConfigError",
    "TLSHandshakeIncomplete",
    "TLSMaterial",
    "TimeTCPReactor",
    "client_tls_options",
    "load_tls_dir",
    "make_server_service",
    "ping",
]
