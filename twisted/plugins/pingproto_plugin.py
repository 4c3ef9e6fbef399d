"""
The twistd dropin for pingproto: a declaration only, so that importing it
while twistd scans its plugins costs nothing.  Everything else lives in
L{pingproto.tap}.
"""

from twisted.application.service import ServiceMaker

pingproto = ServiceMaker(
    "pingproto",
    "pingproto.tap",
    "A WebSocket echo server for measuring round-trip time (wss:// with --tls-dir)",
    "pingproto",
)
