"""
C{twistd pingproto}: the command-line face of the server.
"""

from __future__ import annotations


from twisted.application.service import IService
from twisted.internet.endpoints import serverFromString
from twisted.logger import Logger
from twisted.python import usage

from pingproto.config import (
    ServerLimits,
    listen_descriptions,
    port_number,
    positive_int,
    positive_seconds,
)
from pingproto.service import make_server_service
from pingproto.tlsfiles import TLSConfigError, load_tls_dir

_log = Logger()
_defaults = ServerLimits()


class Options(usage.Options):
    synopsis = "[--port N] [--interface ADDR] [--listen ENDPOINT ...] [--tls-dir DIR | --no-tls]"
    longdesc = (
        "Serve a WebSocket echo for latency probes. With no options it serves "
        "plain ws:// on 127.0.0.1:1234; give --tls-dir to serve wss://."
    )

    optParameters = [
        ["port", "p", None, "TCP port to listen on [default: 1234].", port_number],
        ["interface", "i", None, "Address to listen on [default: 127.0.0.1]."],
        [
            "tls-dir",
            "t",
            None,
            "Directory with tls.key, tls.cert and ca.pem (or certbot's "
            "privkey.pem and fullchain.pem); serves wss:// on every listener.",
        ],
        [
            "max-message-size",
            None,
            _defaults.max_message_size,
            "Largest message in bytes; larger ones are closed with 1009.",
            positive_int,
        ],
        [
            "handshake-timeout",
            None,
            _defaults.handshake_timeout,
            "Seconds a client has to finish the WebSocket opening handshake.",
            positive_seconds,
        ],
        [
            "ping-interval",
            None,
            _defaults.ping_interval,
            "Seconds between keepalive pings to each client (0: none).",
            positive_seconds,
        ],
        [
            "ping-timeout",
            None,
            _defaults.ping_timeout,
            "Seconds to wait for a keepalive pong before closing (0: forever).",
            positive_seconds,
        ],
    ]
    optFlags = [
        [
            "no-tls",
            None,
            "Serve plain ws:// on a non-loopback address, for running behind "
            "a TLS-terminating reverse proxy.",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []

    def opt_listen(self, description: str) -> None:
        """
        Listen on a Twisted endpoint, e.g. tcp:8443:interface=127.0.0.1 or
        systemd:domain=INET:index=0 (repeatable; replaces --port/--interface).
        """
        from twisted.internet import reactor

        try:
            serverFromString(reactor, description)
        except IndexError:
            # Twisted's systemd endpoint looks its socket up at once.
            raise usage.UsageError(
                f"--listen {description!r}: no such socket was inherited "
                "(is this run from a systemd socket unit?)"
            )
        except (ValueError, TypeError, KeyError) as e:
            raise usage.UsageError(f"--listen {description!r} is not a valid endpoint: {e}")
        self["listen"].append(description)

    def postOptions(self) -> None:
        try:
            self["endpoints"] = listen_descriptions(
                self["port"],
                self["interface"],
                self["listen"],
                tls=self["tls-dir"] is not None,
                no_tls=bool(self["no-tls"]),
            )
            self["limits"] = ServerLimits(
                max_message_size=self["max-message-size"],
                handshake_timeout=self["handshake-timeout"],
                ping_interval=self["ping-interval"],
                ping_timeout=self["ping-timeout"],
            )
        except ValueError as e:
            raise usage.UsageError(str(e))


def makeService(options: Options) -> IService:
    """
    Check the TLS directory, then build the listening service.

    A bad TLS directory ends the process here, before anything listens,
    with one line naming the file and the problem.
    """
    tls = None
    if options["tls-dir"] is not None:
        try:
            tls = load_tls_dir(options["tls-dir"])
        except TLSConfigError as e:
            raise SystemExit(f"pingproto: {e}")
        for warning in tls.warnings:
            _log.warn("{text}", text=warning)
    else:
        _log.info(
            "TLS is off: serving plain ws://. Give --tls-dir DIR "
            "(tls.key, tls.cert, ca.pem) to serve wss://."
        )
    return make_server_service(options["endpoints"], tls, options["limits"])
