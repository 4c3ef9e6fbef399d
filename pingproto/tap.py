"""
C{twistd pingproto}: the command-line face of the server.
"""

from __future__ import annotations

import atexit
import os
import resource
import signal
import socket
import sys
from contextlib import contextmanager, suppress
from functools import partial
from typing import Any, Iterator, Sequence, cast

from twisted.application.service import IService, MultiService
from twisted.internet.endpoints import serverFromString
from twisted.internet.error import CannotListenError, ReactorNotRunning
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.logger import Logger
from twisted.python import usage

from pingproto.cli import CommandOptions
from pingproto.config import (
    DEFAULT_INTERFACE,
    DEFAULT_PORT,
    ServerLimits,
    check_endpoint,
    check_origin,
    interface_address,
    listen_descriptions,
    message_rate,
    naming_options,
    port_number,
    positive_int,
    seconds_or_off,
    unix_socket_path,
    whole_number,
)
from pingproto.limits import files_needed, socket_bound
from pingproto.server import FRAME_COST
from pingproto.service import make_server_service
from pingproto.tls import server_context
from pingproto.tlsfiles import TLSConfigError, TLSMaterial, describe, load_tls_dir
from pingproto.workers import WORKER_TIMEOUT, CannotSpawn, WorkerPool, worker_count, worker_timeout

_log = Logger()
_defaults = ServerLimits()

# The options that set a field of ServerLimits each, and the field: read
# into the limits (Options.postOptions) and back out for the workers
# (worker_args) from this one list, so that no limit reaches one and not
# the other.  The origin options, a list and a flag, are apart.
_LIMIT_OPTIONS = (
    ("max-message-size", "max_message_size"),
    ("handshake-timeout", "handshake_timeout"),
    ("ping-interval", "ping_interval"),
    ("ping-timeout", "ping_timeout"),
    ("max-message-rate", "max_message_rate"),
    ("max-data-rate", "max_data_rate"),
    ("max-connections", "max_connections"),
    ("max-per-address", "max_per_address"),
    ("trust-proxy", "trusted_proxies"),
)


class Options(CommandOptions):
    synopsis = "[--port N] [--interface ADDR] [--listen ENDPOINT ...] [--tls-dir DIR | --no-tls]"
    longdesc = (
        "Serve a WebSocket echo for latency probes. With no options it serves "
        f"plain ws:// on {DEFAULT_INTERFACE}:{DEFAULT_PORT}; give --tls-dir to serve wss://."
    )

    optParameters = naming_options([
        ["port", "p", None, f"TCP port to listen on [default: {DEFAULT_PORT}]", port_number],
        ["interface", "i", None, f"Address to listen on [default: {DEFAULT_INTERFACE}]", interface_address],
        [
            "tls-dir",
            "t",
            None,
            "Directory with tls.key and tls.cert, and ca.pem with the chain "
            "if the certificate needs one (or certbot's privkey.pem and "
            "fullchain.pem); serves wss:// on every listener.",
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
            "Seconds a client has to connect (the TLS handshake, the request "
            "and the WebSocket opening handshake), and to let go once the "
            "server has closed.",
            seconds_or_off,
        ],
        [
            "ping-interval",
            None,
            _defaults.ping_interval,
            "Seconds between keepalive pings to each client.",
            seconds_or_off,
        ],
        [
            "ping-timeout",
            None,
            _defaults.ping_timeout,
            "Seconds to wait for a keepalive pong before closing.",
            seconds_or_off,
        ],
        [
            "max-message-rate",
            None,
            _defaults.max_message_rate,
            "Messages a second one client may send, pings and pongs included "
            "(not those answering the server's keepalive pings; bursts of ten "
            "seconds' worth); past it the connection is closed with 1008.",
            message_rate,
        ],
        [
            "max-data-rate",
            None,
            _defaults.max_data_rate,
            f"Bytes a second one client may send, a message or fragment counting as {FRAME_COST} at "
            "least (bursts of two of the largest messages, or of a second's "
            "worth if more); past it the client is read more slowly.",
            positive_int,
        ],
        [
            "max-connections",
            None,
            _defaults.max_connections,
            "Connections served at once, by each worker with --workers; more "
            "get HTTP 503 as they connect (over TLS, are closed) (0: no cap).",
            whole_number,
        ],
        [
            "max-per-address",
            None,
            _defaults.max_per_address,
            "Connections served at once from one client address, by each "
            "worker with --workers; more get HTTP 503 as they connect (over "
            "TLS, are closed) (0: no cap).",
            whole_number,
        ],
        [
            "workers",
            None,
            # None: not given, which --worker-timeout needs to know; 1 after
            # postOptions.
            None,
            "Serve with this many processes sharing the listeners; twistd "
            "supervises them (1 by default: the twistd process serves)",
            worker_count,
        ],
        [
            "worker-timeout",
            None,
            None,
            "With --workers, kill and restart a worker that has not said it "
            f"is alive (once a second) for this many seconds ({WORKER_TIMEOUT:.0f} by default)",
            worker_timeout,
        ],
        [
            "trust-proxy",
            None,
            _defaults.trusted_proxies,
            "Number of reverse proxies in front whose X-Forwarded-For header "
            "names the real client (for logs and per-address caps).",
            whole_number,
        ],
    ])
    optFlags = [
        [
            "no-tls",
            None,
            "Serve plain ws:// on a non-loopback address, for running behind "
            "a TLS-terminating reverse proxy.",
        ],
        [
            "no-null-origin",
            None,
            "Refuse browsers that send 'Origin: null' (the page opened from a "
            "file or a data: URL).",
        ],
    ]

    def __init__(self) -> None:
        super().__init__()
        self["listen"] = []
        self["allow-origin"] = []
        # usage.Options keeps the line breaks of opt_ docstrings as runs of
        # spaces in the middle of --help's lines.
        self.docs = {name: " ".join(doc.split()) if doc else doc for name, doc in self.docs.items()}

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        """
        Under twistd, say a mistake in one line and a hint, as pingproto's
        own commands do: twistd prints the whole of --help first, some 60
        lines, with the one that matters last.  Parsed on their own (no
        C{parent}), the options raise L{usage.UsageError} as usual.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            if self.parent is None:
                raise
            sys.stderr.write(f"twistd pingproto: {e}\nTry 'twistd pingproto --help'.\n")
            raise SystemExit(1) from None

    def opt_allow_origin(self, pattern: str) -> None:
        """
        Accept WebSockets from browser pages of this origin only, e.g.
        https://example.com or https://*.example.com (repeatable; others get
        HTTP 403; clients that send no Origin are not browsers and pass).
        """
        try:
            self["allow-origin"].append(check_origin(pattern))
        except ValueError as e:
            raise usage.UsageError(f"--allow-origin {e}")

    def opt_listen(self, description: str) -> None:
        """
        Listen on a Twisted endpoint, e.g. tcp:8443:interface=127.0.0.1 or
        systemd:domain=INET6:index=0 (repeatable; replaces --port/--interface).
        """
        from twisted.internet import reactor

        try:
            check_endpoint(description)
        except ValueError as e:
            raise usage.UsageError(f"--listen {description!r}: {e}")
        path = unix_socket_path(description)
        if path and os.path.isdir(path):
            # The socket could not be made there: "Address already in use".
            raise usage.UsageError(
                f"--listen {description!r}: {path} is a directory; give the path of the socket to make in it"
            )
        try:
            endpoint = serverFromString(reactor, description)
        except IndexError:
            # Twisted's systemd endpoint looks its socket up at once.
            raise usage.UsageError(
                f"--listen {description!r}: no such socket was inherited "
                "(is this run from a systemd socket unit?)"
            )
        except OSError as e:
            # A file an endpoint plugin reads at once.
            raise usage.UsageError(f"--listen {description!r}: {e}")
        except Exception as e:
            # Whatever an endpoint's parser raises for fields it cannot
            # take: ValueError, TypeError, even a bare Exception
            # (autobahn:'s "URL needed").
            raise usage.UsageError(f"--listen {description!r} is not a valid endpoint: {e}")
        problem = _inherited_family_problem(endpoint)
        if problem is not None:
            raise usage.UsageError(f"--listen {description!r}: {problem}")
        self["listen"].append(description)

    def postOptions(self) -> None:
        if self["tls-dir"] == "":
            # os.path.abspath("") is the current directory, whatever it holds.
            raise usage.UsageError("--tls-dir: give a directory; an empty one would be the current directory")
        if self["tls-dir"] is not None:
            # Read again on every reload and by every worker: from the
            # directory it was given in, not twistd's --rundir.
            self["tls-dir"] = os.path.abspath(self["tls-dir"])
        try:
            self["endpoints"] = listen_descriptions(
                self["port"],
                self["interface"],
                self["listen"],
                tls=self["tls-dir"] is not None,
                no_tls=bool(self["no-tls"]),
            )
            self["limits"] = ServerLimits(
                **{field: self[option] for option, field in _LIMIT_OPTIONS},
                allowed_origins=tuple(self["allow-origin"]) or _defaults.allowed_origins,
                allow_null_origin=not self["no-null-origin"],
            )
        except ValueError as e:
            raise usage.UsageError(str(e))
        # Refused only when --workers is not given: "--workers auto" is one
        # worker on a machine of one core, and the same command line should
        # start everywhere.
        if self["workers"] is None and self["worker-timeout"] is not None:
            raise usage.UsageError("--worker-timeout needs --workers: one process has no supervisor to watch it")
        if self["workers"] is None:
            self["workers"] = 1
        if self["worker-timeout"] is None:
            self["worker-timeout"] = WORKER_TIMEOUT


def makeService(options: Options) -> IService:
    """
    twistd's entry point: L{build_service}, with a listener that cannot
    listen ending the process in one line (L{_ExitIfCannotListen}).
    """
    command = _ExitIfCannotListen()
    build_service(options).setServiceParent(command)
    return command


def raise_open_file_limit(max_connections: int) -> tuple[int, int]:
    """
    Raise the soft open-file limit as far as C{max_connections} needs and
    the hard limit allows; return the soft limit then in force and how
    many files the connections need (L{files_needed}).

    Every connection is a file.  systemd starts services with a soft limit
    of 1024 (and a hard one of 524288): left there, a server reset clients
    at about 1,020 connections instead of answering 503 at its cap.  The
    server holds no more sockets than the limit in force leaves room for
    (L{socket_bound}), closing the rest as they are accepted.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = files_needed(max_connections)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft, needed
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft, needed


def _inherited_family_problem(endpoint: object) -> str | None:
    """
    What is wrong with the address family a C{systemd:} endpoint gives its
    inherited socket, or L{None}.

    Twisted takes the C{domain=} on trust.  Read as INET, the IPv6 socket
    that systemd's C{ListenStream=PORT} makes gives every client a made-up
    address: in the log, and in the per-address cap, which then holds no
    longer.
    """
    fileno = getattr(endpoint, "fileno", None)
    family = getattr(endpoint, "addressFamily", None)
    if not isinstance(fileno, int) or not isinstance(family, int):
        return None
    try:
        with socket.socket(fileno=os.dup(fileno)) as inherited:
            actual = inherited.family
    except OSError as e:
        return f"the inherited file descriptor {fileno} is not a socket ({e.strerror})"
    if actual == family:
        return None
    domain = actual.name.removeprefix("AF_")
    return f"the inherited socket is {domain}, not {socket.AddressFamily(family).name.removeprefix('AF_')}: write domain={domain}"


# twistd's exit status when no worker could start (WorkerPool's give_up).
WORKERS_FAILED = 3


def _stop_failed() -> None:
    """
    Stop twistd, to exit with L{WORKERS_FAILED}: twistd exits 0 once its
    reactor has stopped, whatever stopped it, and a service manager that
    restarts a failed server (systemd's C{Restart=on-failure}) would take
    it for a clean stop.  Set at interpreter exit, after twistd has
    stopped its services and removed its pidfile; L{os._exit} skips the
    exit handlers registered before this one (a coverage tool's, say).
    """
    from twisted.internet import reactor

    def exit_failed() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(WORKERS_FAILED)

    atexit.register(exit_failed)
    with suppress(ReactorNotRunning):
        # Already stopping: a SIGTERM came in the same turn.
        cast(IReactorCore, reactor).stop()


def build_service(options: Options, quiet: bool = False) -> IService:
    """
    Check the TLS directory, then build the listening service (or, with
    C{--workers}, the supervisor of the processes that serve).

    A bad TLS directory ends the process here, before anything listens,
    with one line naming the file and the problem.  C{quiet} leaves out
    the start-up advice, for workers whose supervisor already gave it.
    """
    tls = _load_tls(options["tls-dir"], quiet)
    if not quiet:
        _log.info("limits: {summary}", summary=options["limits"].summary(options["workers"]))
    max_connections = options["limits"].max_connections
    files, needed = raise_open_file_limit(max_connections)
    if files < needed and max_connections and not quiet:
        _warn_open_file_limit(files, needed, max_connections)
    if options["workers"] > 1:
        return WorkerPool(
            options["endpoints"],
            worker_args(options),
            options["workers"],
            scheme="wss" if tls else "ws",
            give_up=_stop_failed,
            timeout=options["worker-timeout"],
        )
    return make_server_service(
        options["endpoints"], tls, options["limits"], handle_sighup=True, allow_plain=bool(options["no-tls"])
    )


def _load_tls(directory: str | None, quiet: bool) -> TLSMaterial | None:
    """
    The checked TLS material in C{directory}, or L{None} without one;
    L{SystemExit} saying in one line what is wrong with it.
    """
    if directory is None:
        if not quiet:
            _log.info(
                "TLS is off: serving plain ws://. Give --tls-dir DIR "
                "(tls.key, tls.cert, and ca.pem if there is a chain) to serve wss://."
            )
        return None
    try:
        tls = load_tls_dir(directory)
        # Built once here, and thrown away, so that what OpenSSL alone
        # refuses also ends start-up in one line, in this process:
        # with --workers, before a worker is started only to fail.
        server_context(tls)
    except TLSConfigError as e:
        raise SystemExit(f"pingproto: {e}")
    if not quiet:
        _log.info(
            "TLS: serving the certificate {certificate}{chain}, from {directory}",
            certificate=describe(tls.certificate),
            chain=f", with {len(tls.chain)} more in its chain" if tls.chain else "",
            directory=directory,
        )
        for warning in tls.warnings:
            _log.warn("{text}", text=warning)
    return tls


def _warn_open_file_limit(files: int, needed: int, max_connections: int) -> None:
    _log.warn(
        "The open-file limit is {files}, too low for --max-connections {cap}: past {bound} sockets, "
        "new connections are closed unanswered instead of answered 503. Raise the hard limit "
        "(LimitNOFILE= in a systemd unit, ulimit -Hn) to {needed} or more, or lower --max-connections.",
        files=files,
        cap=max_connections,
        bound=socket_bound(files),
        needed=needed,
    )


def take_stop_signals_once(reactor: Any) -> None:
    """
    Once the reactor runs, pass only the first SIGTERM or SIGINT on to its
    handler, and take any more quietly.

    Twisted's handler stops the reactor for every one, and one that comes
    while it is stopping raises C{ReactorNotRunning}, logged as CRITICAL
    with a traceback.  Two are common: Ctrl-C in a terminal and C{timeout}
    signal the whole process group, and a worker also gets the one its
    supervisor passes on.
    """
    taken: list[int] = []

    def install() -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            handler = signal.getsignal(number)
            if callable(handler):
                signal.signal(number, partial(once, handler))

    def once(handler: Any, number: int, frame: Any) -> None:
        if not taken:
            taken.append(number)
            handler(number, frame)

    reactor.callWhenRunning(install)


def _nothing_to_reload() -> None:
    _log.info("SIGHUP: nothing to reload without --tls-dir")


class _ExitIfCannotListen(MultiService):
    """
    twistd's root service.  Under twistd, a listener that cannot listen
    (the port in use, a port below 1024 without the right) ends the
    process with one line saying so (L{CannotStart}; daemonized, the
    twistd command prints it and exits 1), not with a traceback, and a
    second stop signal is taken quietly
    (L{take_stop_signals_once}).  An embedding program calling
    L{make_server_service} gets Twisted's L{CannotListenError}, and keeps
    its own signal handling.
    """

    _started = False
    _hangup_waiting = False

    def privilegedStartService(self) -> None:
        # SIGHUP's default is to end the process.  From here on it does
        # not: the listeners bind, and say so, before startService, where
        # the reloader (or the workers' supervisor) takes the signal over;
        # a SIGHUP in between waits for it.  Without either, it stays
        # here, for a `systemctl reload` that has nothing to reload.
        signal.signal(signal.SIGHUP, self._sighup)
        with _exit_if_cannot_listen():
            super().privilegedStartService()

    def _sighup(self, signum: int, frame: object) -> None:
        from twisted.internet import reactor

        if self._started:
            cast(IReactorFromThreads, reactor).callFromThread(_nothing_to_reload)
        else:
            self._hangup_waiting = True

    def startService(self) -> None:
        from twisted.internet import reactor

        take_stop_signals_once(reactor)
        if signal.getsignal(signal.SIGHUP) != self._sighup:
            # Started without privilegedStartService (not by twistd).
            signal.signal(signal.SIGHUP, self._sighup)
        # Whatever binds only once started.
        with _exit_if_cannot_listen():
            super().startService()
        self._started = True
        if self._hangup_waiting:
            self._hangup_waiting = False
            # To whichever handler is in place now.
            os.kill(os.getpid(), signal.SIGHUP)


class CannotStart(SystemExit, Exception):
    """
    A start-up failure, said in one line, that twistd handles as it does
    its own.

    twistd catches an L{Exception} from starting the service, removes its
    pidfile and, daemonized, writes it to the status pipe that its
    parent, still attached to the terminal, waits on and prints; then it
    raises it again, and as a L{SystemExit} it ends the process with
    its message and status 1 instead of a traceback.  A bare
    L{SystemExit} escapes that handler: the pidfile stayed, and the
    daemon's parent waited on the pipe for ever.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(f"pingproto: {reason}")
        self.reason = reason

    def __str__(self) -> str:
        # The status pipe carries 100 bytes, this class's name included:
        # no room for a second "pingproto".
        return self.reason


@contextmanager
def _exit_if_cannot_listen() -> Iterator[None]:
    try:
        yield
    except (CannotListenError, CannotSpawn) as e:
        raise CannotStart(str(e)) from None
    except OSError as e:
        # Not every listener wraps its errors: a UNIX socket's lock file
        # in a directory that does not exist, say (a symlink, whose
        # second file name is the one that failed).
        path = e.filename2 if e.filename2 is not None else e.filename
        where = f" on {os.fsdecode(path)}" if path is not None else ""
        raise CannotStart(f"Couldn't listen{where}: {e.strerror or e}") from None


def worker_args(options: Options) -> list[str]:
    """
    The options a worker needs to serve as this process would have: the
    TLS directory, and every limit, read back from the L{ServerLimits} it
    will rebuild (tests/test_tap.py checks each field makes the trip).
    """
    limits = options["limits"]
    args = ["--tls-dir", options["tls-dir"]] if options["tls-dir"] else ["--no-tls"]
    for option, field in _LIMIT_OPTIONS:
        # repr: a float's text that reads back as the same float.
        args += [f"--{option}", repr(getattr(limits, field))]
    if limits.allowed_origins != ServerLimits.allowed_origins:
        for origin in limits.allowed_origins:
            args += ["--allow-origin", origin]
    if not limits.allow_null_origin:
        args.append("--no-null-origin")
    return args
