"""
The public API, and the README's embedding example working for real.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IHandshakeListener
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import MemoryReactor, MemoryReactorClock
from zope.interface import implementer
from twisted.trial.unittest import SynchronousTestCase, TestCase
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

import pingproto
from pingproto import ping
from pingproto.tls import client_tls_options, wrap_client_tls

from .commands import environment
from .tlsdir import write_ca_file, write_tls_dir

_EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def load_example(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, os.path.join(_EXAMPLES, name + ".py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class PublicAPITests(SynchronousTestCase):
    def test_allNamesExist(self) -> None:
        """
        Every name in the public API (C{pingproto.__all__}, and the
        C{__all__} of L{pingproto.tls} and L{pingproto.testing}) is
        importable, and the pieces an embedding program needs are among
        them: what C{PingClientFactory} takes too.
        """
        import pingproto.testing
        import pingproto.tls

        for module in (pingproto, pingproto.tls, pingproto.testing):
            for name in module.__all__:
                self.assertTrue(hasattr(module, name), (module.__name__, name))
        for name in ("EchoServerFactory", "PingClientFactory", "PingSession", "load_tls_dir", "make_server_service"):
            self.assertIn(name, pingproto.__all__)
        self.assertIn("TLSProtocol", pingproto.tls.__all__)
        self.assertIn("wrap_client_tls", pingproto.tls.__all__)
        self.assertEqual(pingproto.testing.__all__, ["FaultProxy"])

    def test_examplesImport(self) -> None:
        """
        The client example loads against the public API.
        """
        self.assertTrue(callable(load_example("monitor").main))


class ListeningLineTests(SynchronousTestCase):
    """
    The listening line names where a client connects: a URL, or a UNIX
    socket's path.
    """

    def test_addresses(self) -> None:
        """
        An IPv4 and an IPv6 address in a URL, the latter bracketed; a UNIX
        socket by its path, an abstract one's NUL escaped, not written to
        the log as it is.
        """
        from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress

        from pingproto.service import listening_at

        self.assertEqual(listening_at("wss", IPv4Address("TCP", "127.0.0.1", 443)), "wss://127.0.0.1:443/")
        self.assertEqual(listening_at("ws", IPv6Address("TCP", "::1", 80)), "ws://[::1]:80/")
        self.assertEqual(listening_at("ws", UNIXAddress(b"/run/ws.sock")), "ws:// on the UNIX socket /run/ws.sock")
        self.assertEqual(listening_at("ws", UNIXAddress(b"\0ping")), "ws:// on the UNIX socket \\x00ping")


class FactoryArgumentTests(SynchronousTestCase):
    def test_onePathAsAString(self) -> None:
        """
        One string for C{paths} is that one path; it was read as its
        letters, a set of one-letter "paths" that no request asks for but
        C{/}, and only the mistyped path was refused (404).
        """
        self.assertEqual(pingproto.EchoServerFactory(paths="/ping").paths, frozenset({"/ping"}))
        self.assertEqual(pingproto.EchoServerFactory(paths=["/a", "/b"]).paths, frozenset({"/a", "/b"}))

    def test_pathWithoutSlash(self) -> None:
        """
        A path that does not start with C{/}, which no request's path
        can match, is refused with a L{ValueError} saying so.
        """
        e = self.assertRaises(ValueError, pingproto.EchoServerFactory, paths=("/ok", "ping"))
        self.assertEqual(str(e), "a WebSocket path starts with '/', as a request's path does: not 'ping'")

    def test_pathsAsBytesOrNone(self) -> None:
        """
        Paths given as bytes are refused saying so (they were read as
        numbers: "not 47"), and no path at all, which refused every
        WebSocket, saying how to allow any.
        """
        e = self.assertRaises(TypeError, pingproto.EchoServerFactory, paths=b"/ping")
        self.assertEqual(str(e), "WebSocket paths are text: '/ping', not b'/ping'")
        e = self.assertRaises(ValueError, pingproto.EchoServerFactory, paths=())
        self.assertEqual(str(e), "no WebSocket path given: name one or more, or None for any")


class MountInSiteTests(TestCase):
    @inlineCallbacks
    def test_echoUnderPath(self):  # type: ignore[no-untyped-def]
        """
        Mounted at /ping of a twisted.web site, the echo answers pings while
        the site still serves its own pages.
        """
        site = load_example("mount_in_site").make_site()
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
        self.addCleanup(port.stopListening)
        base = f"127.0.0.1:{port.getHost().port}"
        result = yield ping(f"ws://{base}/ping", 2, interval=0.05)
        self.assertEqual(len(result.samples), 2)
        response = yield Agent(reactor).request(b"GET", f"http://{base}/".encode())
        body = yield readBody(response)
        self.assertEqual(body, b"my existing site\n")

    @inlineCallbacks
    def test_hintNamesNoPageOfTheSite(self):  # type: ignore[no-untyped-def]
        """
        Mounted, the echo answers a plain request, a browser's too, with
        the hint alone: no link to an /app page, which is the site's
        namespace, not pingproto's.
        """
        site = load_example("mount_in_site").make_site()
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(site)
        self.addCleanup(port.stopListening)
        url = f"http://127.0.0.1:{port.getHost().port}/ping".encode()
        response = yield Agent(reactor).request(b"GET", url, Headers({b"Accept": [b"text/html"]}))
        body = yield readBody(response)
        self.assertEqual(body, b"connect a WebSocket please")
        self.assertFalse(response.headers.hasHeader(b"Link"))


class MakeServerServiceTests(TestCase):
    @inlineCallbacks
    def test_oneStringWithoutSignals(self):  # type: ignore[no-untyped-def]
        """
        C{make_server_service} takes one endpoint string as well as a list,
        and with C{handle_sighup=False} serves and reloads without taking
        SIGHUP from the program around it.
        """
        tlsdir = self.mktemp()
        ca = write_tls_dir(tlsdir)
        before = signal.getsignal(signal.SIGHUP)
        service = pingproto.make_server_service(
            "tcp:0:interface=127.0.0.1", pingproto.load_tls_dir(tlsdir), handle_sighup=False
        )
        service.startService()
        self.addCleanup(service.stopService)
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
        [listener] = service.listeners
        # Passed on, not taken: stopService needs the port the Deferred holds.
        bound: Deferred[Any] = Deferred()
        listener._waitingForPort.addCallback(lambda port: bound.callback(port) or port)
        port = yield bound
        url = f"wss://localhost:{port.getHost().port}/"
        result = yield ping(url, 1, ca_file=write_ca_file(self.mktemp(), ca))
        self.assertEqual(len(result.samples), 1)
        self.assertFalse(service.reloader.reload("asked"))

    def serve(self, listen: str = "tcp:0:interface=127.0.0.1", **kwargs: Any) -> tuple[pingproto.ServerService, str]:
        """
        A started TLS service on loopback, and the CA file its clients trust.
        """
        tlsdir = self.mktemp()
        ca = write_tls_dir(tlsdir)
        service = pingproto.make_server_service(listen, pingproto.load_tls_dir(tlsdir), **kwargs)
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        return service, write_ca_file(self.mktemp(), ca)

    @inlineCallbacks
    def test_stopLetsGoOfSocketsNotYetWebSockets(self):  # type: ignore[no-untyped-def]
        """
        Stopping the service lets go of a connection that has done its TLS
        handshake and sent no request, even with no handshake timeout to
        end it: the stop fires once no socket is left, the client sees its
        connection end, and no timer or socket of the server is left over.
        """
        service, ca_file = self.serve(limits=pingproto.ServerLimits(handshake_timeout=0))
        port = service.listeners[0].port.getHost().port
        handshaken: Deferred[None] = Deferred()
        lost: Deferred[None] = Deferred()

        @implementer(IHandshakeListener)
        class Silent(Protocol):
            def handshakeCompleted(self) -> None:
                handshaken.callback(None)

            def connectionLost(self, reason: object = None) -> None:
                lost.callback(None)

        endpoint = wrap_client_tls(
            client_tls_options("localhost", ca_file), TCP4ClientEndpoint(reactor, "127.0.0.1", port)
        )
        yield endpoint.connect(Factory.forProtocol(Silent))
        yield handshaken
        self.assertEqual(service.factory.sockets, 1)
        yield service.stopService()
        self.assertEqual((service.factory.sockets, service.factory.protocols), (0, set()))
        yield lost

    @inlineCallbacks
    def test_startedAgainListensAgain(self):  # type: ignore[no-untyped-def]
        """
        A service stopped and started again listens again, and serves; a
        stop of a stopped service fires at once.
        """
        service, ca_file = self.serve()
        yield service.stopService()
        self.assertIsNone(service.listeners[0].port)
        self.assertIsNone(self.successResultOf(service.listeners[0].stopService()))
        service.startService()
        port = service.listeners[0].port.getHost().port
        result = yield ping(f"wss://localhost:{port}/", 1, ca_file=ca_file)
        self.assertEqual(len(result.samples), 1)

    @inlineCallbacks
    def test_startedAgainWhereItCannotListen(self):  # type: ignore[no-untyped-def]
        """
        Started again when its port has been taken meanwhile, the service
        fails that start with Twisted's CannotListenError, as its first
        start would have, not with a log line later.
        """
        probe, _ = self.serve()
        port = probe.listeners[0].port.getHost().port
        yield probe.stopService()
        service, _ = self.serve(f"tcp:{port}:interface=127.0.0.1")
        yield service.stopService()
        taken = yield serverFromString(reactor, f"tcp:{port}:interface=127.0.0.1").listen(Factory())
        self.addCleanup(taken.stopListening)
        self.assertRaises(CannotListenError, service.startService)
        self.assertIsNone(service.listeners[0].port)

    @inlineCallbacks
    def test_startedAgainAtOnce(self):  # type: ignore[no-untyped-def]
        """
        Started again in the same turn as its stop (the old port not yet
        closed), a service on port 0 listens on a new port and serves.
        """
        service, ca_file = self.serve()
        old = service.listeners[0].port.getHost().port
        stopped = service.stopService()
        service.startService()
        yield stopped
        new = service.listeners[0].port.getHost().port
        self.assertNotEqual(new, old)
        result = yield ping(f"wss://localhost:{new}/", 1, ca_file=ca_file)
        self.assertEqual(len(result.samples), 1)

    def test_plainOnlyOnLoopbackUnlessAllowed(self) -> None:
        """
        Without TLS, an endpoint string that is not loopback is refused,
        as twistd pingproto refuses it without --no-tls, and taken with
        C{allow_plain}; a loopback one is taken as it is.
        """
        memory = MemoryReactor()
        with self.assertRaises(ValueError) as raised:
            pingproto.make_server_service(["tcp:1234:interface=127.0.0.1", "tcp:1235"], reactor=memory)
        self.assertIn("'tcp:1235', which is not loopback", str(raised.exception))
        allowed = pingproto.make_server_service(["tcp:1235"], reactor=memory, allow_plain=True)
        local = pingproto.make_server_service("tcp:1234:interface=127.0.0.1", reactor=memory)
        self.assertEqual([listener.scheme for listener in (*allowed.listeners, *local.listeners)], ["ws", "ws"])

    def test_tlsTimesOnTheGivenReactor(self) -> None:
        """
        The TLS layers time what they leave for a later turn on the reactor
        the program gives, the server's and a client's, not on the global
        reactor (Twisted's TLS factory takes that unless told).
        """
        memory = MemoryReactorClock()
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        service = pingproto.make_server_service(
            "tcp:1234:interface=127.0.0.1", pingproto.load_tls_dir(tlsdir), reactor=memory
        )
        self.assertIs(service.listeners[0].factory._clock, memory)
        endpoint = wrap_client_tls(client_tls_options("localhost"), TCP4ClientEndpoint(memory, "127.0.0.1", 1), memory)
        endpoint.connect(Factory.forProtocol(Protocol))
        # TCP4ClientEndpoint's own wrapper around the TLS factory.
        self.assertIs(memory.tcpClients[0][2]._wrappedFactory._clock, memory)

    def test_wrongArguments(self) -> None:
        """
        Arguments of the wrong kind are refused when the service is made,
        each saying what was expected: a number for an endpoint failed
        only at C{startService} (C{'int' object has no attribute
        'listen'}), a directory's path for C{tls} with Twisted's words
        about a context factory, and a kind of endpoint Twisted does not
        know was refused as plain ws:// off loopback.
        """
        memory = MemoryReactorClock()
        cases: list[tuple[type[Exception], str, Any, dict[str, Any]]] = [
            (TypeError, "listen takes endpoint strings or IStreamServerEndpoint providers, not 1234", [1234], {}),
            (TypeError, "tls takes what load_tls_dir(directory) returns, not '/etc/pingproto'", ["tcp:0"],
             {"tls": "/etc/pingproto"}),
            (TypeError, "limits takes a ServerLimits, not None", ["tcp:0"], {"limits": None}),
            (ValueError, "Unknown endpoint type: 'tcpx'", ["tcpx:0"], {}),
        ]
        for error, message, listen, kwargs in cases:
            e = self.assertRaises(error, pingproto.make_server_service, listen, reactor=memory, **kwargs)
            self.assertEqual(str(e), message)

    def test_generatorOfEndpointsChecked(self) -> None:
        """
        Endpoints given as a generator are checked as a list is: plain
        ws:// off loopback is refused (the generator was used up by the
        first look, and the check saw nothing).
        """
        public = (d for d in ["tcp:0:interface=0.0.0.0"])
        self.assertRaises(ValueError, pingproto.make_server_service, public, reactor=MemoryReactorClock())
        service = pingproto.make_server_service((d for d in ["tcp:0:interface=127.0.0.1"]), reactor=MemoryReactorClock())
        self.assertEqual(len(service.listeners), 1)

    def test_ownReactorInstallsNoOther(self) -> None:
        """
        A program that gives the server service and a ping monitor its own
        reactor can still install the reactor it wants: building them and
        a connection's pings never import the global reactor, which
        installs the default one (Twisted's L{LoopingCall} did, for the
        certificate checks and the ping ticker).
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        child = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ownreactor_child.py")
        done = subprocess.run(
            [sys.executable, child, tlsdir], capture_output=True, env=environment(), timeout=60, check=True
        )
        self.assertEqual(json.loads(done.stdout), {"echoes": 5, "installed": False}, done.stderr)

    def test_sighupOnlyWhenAsked(self) -> None:
        """
        The SIGHUP handler is the program's unless C{handle_sighup} asks
        for a reload on it, and is given back on stop.
        """
        before = signal.getsignal(signal.SIGHUP)
        service, _ = self.serve()
        self.assertIs(signal.getsignal(signal.SIGHUP), before)
        service.stopService()
        service, _ = self.serve(handle_sighup=True)
        self.assertEqual(signal.getsignal(signal.SIGHUP), service.reloader._sighup)
        service.stopService()
        self.assertIs(signal.getsignal(signal.SIGHUP), before)

    @inlineCallbacks
    def test_largeCertificate(self):  # type: ignore[no-untyped-def]
        """
        A certificate whose handshake flight is over 32 KiB (1,500 names)
        is sent whole at once: the rest of the flight waited in OpenSSL's
        buffer for bytes from the client that never came, until the
        handshake timeout.
        """
        tlsdir = self.mktemp()
        names = ("localhost", *(f"host{n}.example.com" for n in range(1500)))
        ca = write_tls_dir(tlsdir, identities=names)
        self.assertGreater(os.path.getsize(os.path.join(tlsdir, "tls.cert")), 40_000)
        service = pingproto.make_server_service(
            "tcp:0:interface=127.0.0.1",
            pingproto.load_tls_dir(tlsdir),
            pingproto.ServerLimits(handshake_timeout=60),
        )
        service.startService()
        self.addCleanup(service.stopService)
        port = service.listeners[0].port.getHost().port
        result = yield ping(f"wss://localhost:{port}/", 1, ca_file=write_ca_file(self.mktemp(), ca))
        self.assertEqual(len(result.samples), 1)

    test_largeCertificate.timeout = 10  # type: ignore[attr-defined]
