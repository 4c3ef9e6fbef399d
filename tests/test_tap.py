"""
C{twistd pingproto}'s options and the service they build, and the dropin.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import re
import resource
import socket

import trustme
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.application.service import IServiceMaker
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.internet.testing import MemoryReactor
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.plugin import getPlugins
from twisted.protocols.tls import BufferingTLSTransport, TLSMemoryBIOFactory, TLSMemoryBIOProtocol
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from pingproto.config import ServerLimits
from pingproto.pingcmd import PingOptions
from pingproto.report import ReportOptions
from pingproto.server import EchoServerFactory
from pingproto.tap import Options, build_service, makeService, worker_args
from pingproto.tls import TLSProtocol
from pingproto.webapp import AppOptions
from pingproto.worker import WorkerOptions
from pingproto.workers import WORKER_TIMEOUT, WorkerPool

from .sockets import socket_dir
from .tlsdir import write_tls_dir


def parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


class OptionsTests(SynchronousTestCase):
    def test_defaults(self) -> None:
        """
        With no options: plain ws on 127.0.0.1:1234 with the safe limits.
        """
        options = parse()
        self.assertEqual(options["endpoints"], ["tcp:1234:interface=127.0.0.1:backlog=1024"])
        self.assertIsNone(options["tls-dir"])
        self.assertEqual(options["limits"], ServerLimits())

    def test_shortForm(self) -> None:
        """
        --port and --interface make one TCP endpoint.
        """
        options = parse("--port", "8443", "--interface", "::1")
        self.assertEqual(options["endpoints"], ["tcp6:8443:interface=\\:\\:1:backlog=1024"])

    def test_listenRepeatable(self) -> None:
        """
        --listen may be given several times, in order.
        """
        options = parse("--listen", "tcp:1:interface=127.0.0.1", "--listen", "unix:/tmp/p.sock")
        self.assertEqual(options["endpoints"], ["tcp:1:interface=127.0.0.1", "unix:/tmp/p.sock"])

    def test_limits(self) -> None:
        """
        Each limit option reaches L{ServerLimits}.
        """
        options = parse(
            "--max-message-size", "1000",
            "--handshake-timeout", "2.5",
            "--ping-interval", "0",
            "--ping-timeout", "7",
            "--max-data-rate", "4096",
        )
        self.assertEqual(
            options["limits"],
            ServerLimits(
                max_message_size=1000, handshake_timeout=2.5, ping_interval=0, ping_timeout=7, max_data_rate=4096
            ),
        )

    def test_badCombinations(self) -> None:
        """
        Each contradictory or unsafe combination is refused with a message
        that says what to do.
        """
        cases = [
            (["--interface", "0.0.0.0"], "--no-tls"),
            (["--listen", "tcp:1234"], "not loopback"),
            (["--listen", "systemd:domain=INET:index=0"], "systemd socket unit"),
            (["--port", "1", "--listen", "tcp:2:interface=127.0.0.1"], "--listen replaces"),
            (["--tls-dir", "/x", "--no-tls"], "contradict"),
            (["--tls-dir", ""], "--tls-dir: give a directory; an empty one would be the current directory"),
            (["--port", "70000"], "between 0 and 65535"),
            (["--port", "http"], "not a number"),
            (["--max-message-size", "0"], "1 or more"),
            (["--handshake-timeout", "soon"], "not a number of seconds"),
            (["--listen", "nonsense:1"], "not a valid endpoint"),
            (["--workers", "0"], "must be 1 to 256"),
            (["--workers", "many"], "a number or 'auto'"),
            (["--allow-origin", "example.com"], "give a scheme"),
            (["--max-per-address", "-1"], "0 or more"),
            (["--max-message-rate", "0"], "--max-message-rate: '0' is out of range: from 0.1"),
            (["--max-message-rate", "1e-300"], "--max-message-rate: '1e-300' is out of range: from 0.1"),
            (["--ping-interval", "0.005"], "--ping-interval: '0.005' seconds is out of range: 0 (off), or from 0.1"),
            (["--ping-timeout", "0.000001"], "--ping-timeout: '0.000001' seconds is out of range"),
            (["--handshake-timeout", "1e-300"], "--handshake-timeout: '1e-300' seconds is out of range"),
            (["--bogus"], "bogus"),
        ]
        for args, message in cases:
            with self.assertRaises(UsageError, msg=args) as caught:
                parse(*args)
            self.assertIn(message, str(caught.exception), args)

    def test_errorsNameTheirOption(self) -> None:
        """
        A value an option's checker refuses, not a number or out of range,
        is refused in a message that begins with the option's name and
        holds the value, not with Twisted's "Parameter type enforcement
        failed", which names no option.
        """
        checked = [p[0] for p in Options.optParameters if len(p) > 4 and p[4] is not None]
        self.assertIn("ping-interval", checked)
        for name in checked:
            for value in ("x y", "-1"):
                with self.assertRaises(UsageError, msg=(name, value)) as caught:
                    parse(f"--{name}", value)
                message = str(caught.exception)
                self.assertTrue(message.startswith(f"--{name}: "), message)
                self.assertIn(value, message[len(name) + 4 :])
                self.assertNotIn("enforcement", message)

    def test_listenUnusable(self) -> None:
        """
        An endpoint Twisted would parse and then fail on, with a traceback
        as it listens (a port out of range) or a puzzle (an unescaped
        IPv6 address, no port, a lone backslash, a directory for a UNIX
        socket), is refused at once in one line naming --listen, the
        value and what is wrong.
        """
        directory = self.mktemp()
        os.makedirs(directory)
        cases = [
            ("tcp:99999:interface=127.0.0.1", "port 99999 is not between 0 and 65535"),
            ("tcp:-5", "port -5 is not between 0 and 65535"),
            ("haproxy:tcp:70000:interface=127.0.0.1", "port 70000 is not between 0 and 65535"),
            ("tcp:5102:interface=127.0.0.1\\", "ends in a backslash that escapes nothing"),
            ("tcp:5102:interface=::1", "escape the colons in a value, e.g. interface=\\:\\:1"),
            ("tcp6:5102:50:::1", "escape the colons"),
            ("tcp", "tcp: needs a port"),
            ("tcp:5102:interface=127.1", "'127.1' is not an IP address or host name"),
            ("unix:", "unix: needs the path of the socket"),
            ("unix:" + directory, f"{directory} is a directory"),
            ("haproxy:unix:" + directory, f"{directory} is a directory"),
            ("unix:/" + "s" * 200, "the socket's path is 201 bytes"),
        ]
        for description, problem in cases:
            with self.assertRaises(UsageError, msg=description) as caught:
                parse("--no-tls", "--listen", description)
            message = str(caught.exception)
            self.assertTrue(message.startswith(f"--listen {description!r}: "), message)
            self.assertIn(problem, message)
            self.assertNotIn("\n", message)

    @settings(max_examples=500, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [":", "=", "\\", "tcp", "tcp6", "unix", "haproxy", "systemd", "autobahn", "interface", "backlog",
                 "port", "url", "1", "-5", "99999", "::1", "127.0.0.1", "127.1", "/tmp/p.sock", "x", "domain=INET",
                 "index=0"]
            ),
            max_size=8,
        ).map("".join),
        st.booleans(),
    )
    def test_listenNeverTraceback(self, description: str, no_tls: bool) -> None:
        """
        Any --listen value, pieced from the words of endpoint strings, is
        taken or refused with a usage error: never another exception, a
        traceback at the user.  One taken is served as given, and is an
        endpoint Twisted can listen on.
        """
        try:
            options = parse(*(["--no-tls"] if no_tls else []), "--listen", description)
        except UsageError as e:
            self.assertTrue(str(e))
            return
        self.assertEqual(options["endpoints"], [description])
        if not description.lower().startswith("systemd"):
            self.assertTrue(IStreamServerEndpoint.providedBy(serverFromString(MemoryReactor(), description)))

    def test_listenPositionalInterface(self) -> None:
        """
        A loopback interface given as a positional field (tcp:PORT:ADDR,
        tcp6:PORT:BACKLOG:ADDR, Twisted's orders) is loopback: plain ws://
        is served there without --no-tls.
        """
        for description in ("tcp:1234:127.0.0.1", "tcp6:1234:50:\\:\\:1"):
            self.assertEqual(parse("--listen", description)["endpoints"], [description])

    def test_interfaceNotAnAddress(self) -> None:
        """
        An --interface that is not an address is refused as such, with a
        hint at what was meant, not as a public address needing TLS; so
        is 127.1, which only some tools read as 127.0.0.1.
        """
        cases = [
            ("127.0.0.1:80", "an address has no port"),
            ("[::1]", "without brackets, e.g. ::1"),
            ("127.1", "four numbers from 0 to 255"),
            ("", "0.0.0.0 or :: for every interface"),
        ]
        for value, hint in cases:
            with self.assertRaises(UsageError, msg=value) as caught:
                parse("--interface", value)
            message = str(caught.exception)
            self.assertTrue(message.startswith(f"--interface: {value!r} is not an IP address or host name: "), message)
            self.assertIn(hint, message)
        for value in ("127.0.0.1", "::1", "localhost"):
            parse("--interface", value)

    def test_workers(self) -> None:
        """
        --workers takes a count or 'auto', one per core this process may
        use; with more than one, makeService builds the supervisor, which
        passes the TLS dir and every limit on to the workers.
        """
        self.assertEqual(parse()["workers"], 1)
        self.assertEqual(parse("--workers", "auto")["workers"], len(os.sched_getaffinity(0)))
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        service = build_service(
            parse(
                "--workers", "3", "--tls-dir", tlsdir, "--max-per-address", "7", "--allow-origin", "https://a.example",
                "--max-data-rate", "4096",
            )
        )
        self.assertIsInstance(service, WorkerPool)
        self.assertEqual(service.count, 3)
        args = service.worker_args
        # Absolute, for workers and reloads in another directory (--rundir).
        self.assertEqual(args[:2], ["--tls-dir", os.path.abspath(tlsdir)])
        self.assertNotEqual(tlsdir, os.path.abspath(tlsdir))
        self.assertEqual(args[args.index("--max-per-address") + 1], "7")
        self.assertEqual(args[args.index("--allow-origin") + 1], "https://a.example")
        worker = WorkerOptions()
        worker.parseOptions(["--inherit", "3:INET", *args])
        self.assertEqual(
            worker["limits"],
            parse(
                "--tls-dir", tlsdir, "--max-per-address", "7", "--allow-origin", "https://a.example",
                "--max-data-rate", "4096",
            )["limits"],
        )

    def test_workerTimeoutNeedsWorkers(self) -> None:
        """
        C{--worker-timeout} without C{--workers} is refused, saying why: a
        single process has no supervisor to watch it, and the option was
        taken and did nothing.  The default given by hand is refused too;
        with C{--workers} of any count (C{auto} is 1 on one core) it is
        taken, so that one command line starts on every machine.
        """
        for value in ("5", str(WORKER_TIMEOUT)):
            with self.assertRaises(UsageError) as caught:
                parse("--no-tls", "--worker-timeout", value)
            self.assertEqual(
                str(caught.exception), "--worker-timeout needs --workers: one process has no supervisor to watch it"
            )
        for workers in ("1", "2"):
            options = parse("--no-tls", "--workers", workers, "--worker-timeout", "5")
            self.assertEqual((options["workers"], options["worker-timeout"]), (int(workers), 5.0))
        self.assertEqual((parse()["workers"], parse()["worker-timeout"]), (1, WORKER_TIMEOUT))

    def test_inheritedSockets(self) -> None:
        """
        C{--inherit} names a descriptor, its family, C{:haproxy} for one
        behind the PROXY protocol and C{:listen=N} for one only bound,
        listened on with a backlog of N once the worker is ready; anything
        else is refused in one line saying what is expected.
        """
        worker = WorkerOptions()
        worker.parseOptions(
            ["--inherit", "3:INET:listen=50", "--inherit", "4:INET6:haproxy:listen=7", "--inherit", "5:UNIX", "--no-tls"]
        )
        self.assertEqual(
            worker["inherit"],
            [(3, socket.AF_INET, False, 50), (4, socket.AF_INET6, True, 7), (5, socket.AF_UNIX, False, None)],
        )
        for bad in ("3", "x:INET", "3:IPX", "3:INET:listen=", "3:INET:listen=0", "3:INET:listen=5:listen=6", "3:INET:tls"):
            with self.assertRaises(UsageError) as caught:
                WorkerOptions().parseOptions(["--inherit", bad])
            self.assertIn(f"--inherit {bad!r}: expected FD:INET", str(caught.exception))

    def test_workersGetEveryLimit(self) -> None:
        """
        Every limit a twistd option sets reaches the workers: each field of
        L{ServerLimits} set away from its default makes the trip through
        L{worker_args} and the worker's own options unchanged.  (A new
        limit left out of L{worker_args} would leave the workers on its
        default while the supervisor believed otherwise.)
        """
        # The limits no twistd option sets.
        no_option = {"max_request_head"}
        changed = {}
        for field in dataclasses.fields(ServerLimits):
            if field.name in no_option:
                continue
            default = field.default
            if isinstance(default, bool):
                changed[field.name] = not default
            elif isinstance(default, tuple):
                changed[field.name] = ("https://a.example", "https://b.example")
            else:
                changed[field.name] = default + 7 if default else 7
        limits = ServerLimits(**changed)
        for name, value in changed.items():
            self.assertNotEqual(getattr(limits, name), getattr(ServerLimits(), name), name)
        options = parse("--no-tls")
        options["limits"] = limits
        worker = WorkerOptions()
        worker.parseOptions(["--inherit", "3:INET", *worker_args(options)])
        self.assertEqual(worker["limits"], limits)

    def test_tlsEndpointsRefused(self) -> None:
        """
        Endpoints that do TLS of their own (ssl:, tls:, also behind
        haproxy:) are refused in one line pointing to --tls-dir, whether
        their files exist or not: with --no-tls they would serve TLS
        outside pingproto's policy (CBC suites and all), with --tls-dir
        TLS inside TLS.
        """
        key = self.mktemp()
        with open(key, "wb") as f:
            f.write(trustme.CA().issue_cert("localhost").private_key_and_cert_chain_pem.bytes())
        cases = [
            (["--no-tls", "--listen", f"ssl:0:privateKey={key}"], "ssl:"),
            (["--no-tls", "--listen", "ssl:0:privateKey=nope.pem"], "ssl:"),
            (["--tls-dir", "/x", "--listen", f"ssl:0:interface=127.0.0.1:privateKey={key}"], "ssl:"),
            (["--no-tls", "--listen", f"tls:{self.mktemp()}:0"], "tls:"),
            (["--no-tls", "--listen", f"haproxy:ssl:0:privateKey={key}"], "ssl:"),
        ]
        for args, kind in cases:
            with self.assertRaises(UsageError, msg=args) as caught:
                parse(*args)
            message = str(caught.exception)
            self.assertIn(f"{kind} endpoints bring TLS of their own", message, args)
            self.assertIn("--tls-dir", message)
            self.assertNotIn("\n", message)

    def test_capsPerWorkerInHelp(self) -> None:
        """
        The help of the connection caps says they count per worker with
        --workers: each worker process keeps its own count.
        """
        options = Options()
        for name in ("max-connections", "max-per-address"):
            self.assertIn("by each worker with --workers", options.docs[name])

    def test_noTlsAllowsPublic(self) -> None:
        """
        --no-tls allows plain ws on every interface, for a proxy in front.
        """
        options = parse("--no-tls", "--listen", "tcp:8080")
        self.assertEqual(options["endpoints"], ["tcp:8080"])

    def test_helpNamesEveryOption(self) -> None:
        """
        Every command's help names each of its options with a text of its
        own.
        """
        for options in (Options(), WorkerOptions(), PingOptions(), ReportOptions(), AppOptions()):
            text = options.getUsage(width=80)
            for name in set(options.synonyms.values()):
                self.assertIn(f"--{name}", text)
                self.assertNotEqual(options.docs.get(name, "").strip(), "", f"--{name} has no help")

    def test_helpReadsAsProse(self) -> None:
        """
        No command's help has a run of spaces inside an option's text
        (usage.Options keeps a docstring's line breaks as such runs) or a
        doubled full stop (it appends its coercer's text after ". ").
        """
        for options in (Options(), WorkerOptions(), PingOptions(), ReportOptions(), AppOptions()):
            for line in options.getUsage(width=80).splitlines():
                # The option's name and the space that aligns its text.
                text = re.sub(r"^\s*(-\w, )?--[\w-]+=?\s+", "", line).strip()
                self.assertNotRegex(text, r"\S {2,}\S|\.\.", f"{type(options).__name__}: {line}")


class MakeServiceTests(SynchronousTestCase):
    def events(self) -> list[dict]:
        events: list[dict] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        return events

    def test_openFileLimitRaised(self) -> None:
        """
        Built under a soft open-file limit of 1024 (systemd's), the server
        raises it as far as --max-connections needs and the hard limit
        allows, and says so in one line when that is not far enough.
        """
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, soft), hard))
        events = self.events()
        build_service(parse("--port", "0", "--max-connections", "5000"))
        needed = 5000 + 256
        reached = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.assertEqual(reached, needed if hard == resource.RLIM_INFINITY else min(needed, hard))
        warnings = [formatEvent(e) for e in events if "open-file limit" in e.get("log_format", "")]
        self.assertEqual(len(warnings), 0 if reached >= needed else 1, warnings)

    def test_plainService(self) -> None:
        """
        Without TLS one listener serves the echo factory directly, and the
        log says TLS is off and how to turn it on.
        """
        events = self.events()
        service = build_service(parse("--port", "0"))
        [listener] = service.listeners
        self.assertIsInstance(listener.factory, EchoServerFactory)
        self.assertEqual(listener.factory.limits, ServerLimits())
        self.assertTrue(any("TLS is off" in e.get("log_format", "") and "--tls-dir" in e["log_format"] for e in events))

    def test_startupSaysWhatItServes(self) -> None:
        """
        The start-up log says which certificate is served from where, and
        the limits in force in one line, so that an operator sees there
        that what they set took effect; workers, whose supervisor said it,
        do not say it again.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir, intermediate=True)
        events = self.events()
        build_service(
            parse("--tls-dir", tlsdir, "--port", "0", "--allow-origin", "https://*.a.example", "--max-per-address", "0")
        )
        lines = [formatEvent(e) for e in events]
        [served] = [line for line in lines if line.startswith("TLS: serving")]
        self.assertRegex(
            served,
            r"^TLS: serving the certificate 'localhost', valid from \d{4}-\d\d-\d\d \d\d:\d\d to "
            r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, with 2 more in its chain, from " + re.escape(os.path.abspath(tlsdir)) + "$",
        )
        [limits] = [line for line in lines if line.startswith("limits: ")]
        self.assertIn("origins https://*.a.example;", limits)
        self.assertIn("connections 10,000, no cap per address;", limits)
        # With workers, the caps are each worker's.
        events.clear()
        build_service(parse("--tls-dir", tlsdir, "--port", "0", "--workers", "2"))
        [limits] = [formatEvent(e) for e in events if formatEvent(e).startswith("limits")]
        self.assertIn("; connections 10,000, 256 per address, in each of 2 workers; ", limits)
        events.clear()
        build_service(parse("--tls-dir", tlsdir, "--port", "0"), quiet=True)
        self.assertEqual([formatEvent(e) for e in events if "serving" in formatEvent(e) or "limits" in formatEvent(e)], [])

    def test_tlsWrapsEveryListener(self) -> None:
        """
        With a TLS dir, every listener, including an inherited socket, is
        wrapped in TLS around the same echo factory.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir)
        service = build_service(
            parse("--tls-dir", tlsdir, "--listen", "tcp:0:interface=127.0.0.1", "--listen", "unix:" + os.path.join(socket_dir(self), "s.sock"))
        )
        listeners = service.listeners
        self.assertEqual(len(listeners), 2)
        for listener in listeners:
            self.assertIsInstance(listener.factory, TLSMemoryBIOFactory)
            self.assertIs(listener.factory.wrappedFactory, service.factory)
            # Each echo is written at once, not held for the next turn
            # (TLSProtocol is Twisted's unbuffered TLSMemoryBIOProtocol).
            self.assertIs(listener.factory.protocol, TLSProtocol)
            self.assertTrue(issubclass(TLSProtocol, TLSMemoryBIOProtocol))
            self.assertFalse(issubclass(TLSProtocol, BufferingTLSTransport))

    def test_portInUseExits(self) -> None:
        """
        twistd's service ends start-up with one line naming the address a
        listener could not listen on; the service it wraps, for programs,
        raises Twisted's error.
        """
        from twisted.internet.error import CannotListenError

        # A plain socket: a port of the global reactor would leave its
        # stopListening's callLater pending in this synchronous test, and
        # other tests that check the reactor is untouched would fail.
        taken = socket.socket()
        self.addCleanup(taken.close)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = makeService(parse("--port", str(port)))
        with self.assertRaises(SystemExit) as caught:
            command.privilegedStartService()
        self.assertEqual(
            caught.exception.code,
            f"pingproto: Couldn't listen on 127.0.0.1:{port}: [Errno 98] Address already in use.",
        )
        self.assertRaises(CannotListenError, build_service(parse("--port", str(port))).privilegedStartService)

    def test_cannotCreateUnixSocketExits(self) -> None:
        """
        A UNIX socket in a directory that does not exist ends start-up,
        with or without workers, with one line naming the path, not a
        traceback.
        """
        path = os.path.join(socket_dir(self), "missing", "s.sock")
        for extra in ([], ["--workers", "2"]):
            command = makeService(parse("--listen", "unix:" + path, *extra))
            with self.assertRaises(SystemExit, msg=extra) as caught:
                command.privilegedStartService()
            message = str(caught.exception.code)
            self.assertEqual(message, f"pingproto: Couldn't listen on {path}.lock: No such file or directory")
            self.assertNotIn("\n", message)

    def test_badTlsDirExits(self) -> None:
        """
        A bad TLS dir ends start-up with one line naming the problem.
        """
        tlsdir = self.mktemp()
        os.makedirs(tlsdir)
        with self.assertRaises(SystemExit) as caught:
            makeService(parse("--tls-dir", tlsdir))
        message = str(caught.exception.code)
        self.assertTrue(message.startswith("pingproto: TLS directory"))
        self.assertNotIn("\n", message)

    def test_expiryWarningLogged(self) -> None:
        """
        A certificate that expires within 14 days starts the server with a
        warning in the log.
        """
        tlsdir = self.mktemp()
        write_tls_dir(tlsdir, not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=5))
        events = self.events()
        makeService(parse("--tls-dir", tlsdir))
        warnings = [e for e in events if e.get("log_level") == LogLevel.warn]
        self.assertEqual(len(warnings), 1)
        self.assertIn("renew it", warnings[0]["text"])


class PluginTests(SynchronousTestCase):
    def test_discovered(self) -> None:
        """
        twistd's plugin scan finds pingproto and its module.
        """
        makers = {maker.tapname: maker for maker in getPlugins(IServiceMaker)}
        self.assertIn("pingproto", makers)
        self.assertEqual(makers["pingproto"].module, "pingproto.tap")

    def test_shippedInDistribution(self) -> None:
        """
        The installed distribution (an ordinary, non-editable install) holds
        the dropin, so C{pip install .} makes C{twistd pingproto} work, and
        the PEP 561 marker, so an embedding program's type checker reads
        pingproto's hints.
        """
        try:
            dist = importlib.metadata.distribution("pingproto")
        except importlib.metadata.PackageNotFoundError:
            self.skipTest("pingproto is not installed; run the README's test command")
        direct = dist.read_text("direct_url.json")
        if direct and json.loads(direct).get("dir_info", {}).get("editable"):
            self.skipTest("an editable install does not copy the dropin")
        files = [str(f) for f in dist.files or []]
        self.assertIn("twisted/plugins/pingproto_plugin.py", files)
        self.assertIn("pingproto/tap.py", files)
        self.assertIn("pingproto/py.typed", files)
