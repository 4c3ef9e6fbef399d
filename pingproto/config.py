"""
Settings and the checks on them, free of any reactor.

The command line (L{pingproto.tap}) and programs that embed pingproto both
describe a server with L{ServerLimits} and a list of endpoint strings; the
rules that keep such a description safe (no plain WebSocket on a public
address by accident, no nonsensical limit) live here so that they can be
tested directly and are the same whichever way the server is built.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Sequence, TypeVar
from urllib.parse import SplitResult, urlsplit

from twisted.internet.endpoints import _parse as _parseEndpoint
from twisted.internet.endpoints import quoteStringArgument
from twisted.protocols.haproxy._parser import unparseEndpoint
from twisted.python.usage import UsageError

__all__ = [
    "DEFAULT_INTERFACE",
    "DEFAULT_PORT",
    "UNIX_PATH_MAX",
    "ServerLimits",
    "behind_proxy",
    "check_authority",
    "check_endpoint",
    "check_origin",
    "check_ws_url",
    "interface_address",
    "is_loopback_endpoint",
    "listen_descriptions",
    "message_rate",
    "naming_options",
    "port_number",
    "positive_int",
    "read_number",
    "refuse_credentials",
    "refuse_public_plain",
    "seconds_or_off",
    "split_url",
    "tls_endpoint_kind",
    "unix_socket_path",
    "whole_number",
]

N = TypeVar("N", int, float)
T = TypeVar("T")

DEFAULT_PORT = 1234
DEFAULT_INTERFACE = "127.0.0.1"
# Twisted's tcp: endpoint queues 50 connections; after a restart every
# client reconnects at once, and each SYN dropped at a full queue costs its
# client a retransmission a second or more later (docs/reliability.md).
LISTEN_BACKLOG = 1024
# The bytes a UNIX socket's path may have: sockaddr_un's sun_path less
# its closing NUL (108 on Linux, 104 on the BSDs and macOS).
UNIX_PATH_MAX = 107 if sys.platform.startswith("linux") else 103

# The shortest timer a server may set, and the lowest message rate.
# Near zero a server closes every client (no handshake or pong comes
# back in a microsecond; at 1e-300 messages a second a client's second
# message is its last) or floods them (a keepalive ping a microsecond).
# These refuse such slips and are far from any useful setting (the
# defaults are 10 s, 20 s and 100 a second).
MIN_SECONDS = 0.1
MAX_SECONDS = 86400 * 365
MIN_MESSAGE_RATE = 0.1
MAX_MESSAGE_RATE = 1e9


def timer_in_range(seconds: float) -> bool:
    """
    Whether a server's timer may be set to C{seconds}: 0 (off), or from
    L{MIN_SECONDS} up to a year.  Also refuses NaN.
    """
    return seconds == 0 or MIN_SECONDS <= seconds < MAX_SECONDS


def rate_in_range(rate: float) -> bool:
    """
    Whether a server's message rate limit may be C{rate} a second.  Also
    refuses NaN.
    """
    return MIN_MESSAGE_RATE <= rate < MAX_MESSAGE_RATE


@dataclass(frozen=True)
class ServerLimits:
    """
    What one connection may cost the server.

    The defaults are chosen for a ping server facing the internet.  A ping
    is a dozen bytes, but a message may have up to 16 MiB, the largest a
    WebSocket conformance suite sends: the server streams large messages
    back as they arrive, so a connection costs it the same few dozen KiB
    whatever they weigh (L{pingproto.server.ECHO_BUFFER}), and the limit
    only bounds how long one message can keep a connection busy.  A client
    that has not finished its opening handshake in 10 s is not a browser on
    a slow link but a stalled or hostile peer; and keepalive pings every
    20 s, closing after a further 20 s of silence, free the connections of
    clients that vanished without closing (browsers do not notice a dead
    TCP connection by themselves).

    A client may send 100 messages a second, in bursts of up to ten
    seconds' worth, before it is closed with 1008: a ping a second is the
    normal use (and a test suite's thousand quick echoes fit a burst), a
    sustained flood is not.  It may send 1 MiB a second, in bursts of two of
    the largest messages; past that it is not refused but read more slowly,
    so that one client cannot take the server's CPU from the others.  At
    most 10,000 connections are served at once and 256 from one address (0
    lifts either cap); more get HTTP 503 as they connect (over TLS, are
    closed unanswered).  Every browser origin may connect unless
    C{allowed_origins} names some, each with its scheme (L{check_origin});
    C{Origin: null}, sent by the page opened from a file or a data: URL,
    is allowed unless C{allow_null_origin} is off.  C{trusted_proxies}
    reverse proxies in front are believed about the client address
    (C{X-Forwarded-For}).
    """

    max_message_size: int = 16 * 1024 * 1024
    handshake_timeout: float = 10.0
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    max_request_head: int = 16 * 1024
    max_message_rate: float = 100.0
    max_data_rate: int = 1024 * 1024
    max_connections: int = 10_000
    max_per_address: int = 256
    allowed_origins: tuple[str, ...] = ("*",)
    allow_null_origin: bool = True
    trusted_proxies: int = 0

    @property
    def message_burst(self) -> float:
        """
        How many messages may arrive at once: ten seconds' worth.
        """
        return max(1.0, 10 * self.max_message_rate)

    @property
    def data_burst(self) -> int:
        """
        How many bytes may arrive at once: two of the largest messages, or
        a second's worth if that is more.
        """
        return max(2 * self.max_message_size, self.max_data_rate)

    def summary(self, workers: int = 1) -> str:
        """
        The limits in one line, for the start-up log: an operator can see
        there that what they set took effect (an origin, a cap), and what
        the defaults they did not set are.  With C{workers}, the connection
        caps are each worker's.
        """

        def seconds(value: float) -> str:
            return "off" if value == 0 else f"{value:g} s"

        def cap(value: int) -> str:
            return "no cap" if value == 0 else f"{value:,}"

        origins = "any" if self.allowed_origins == ("*",) else ", ".join(self.allowed_origins)
        keepalive = "keepalive off"
        if self.ping_interval:
            answer = f"answered within {seconds(self.ping_timeout)}" if self.ping_timeout else "no answer awaited"
            keepalive = f"keepalive every {seconds(self.ping_interval)}, {answer}"
        return (
            f"messages up to {self.max_message_size:,} bytes; per client {self.max_message_rate:g} messages "
            f"and {self.max_data_rate:,} bytes a second; connections {cap(self.max_connections)}, "
            f"{cap(self.max_per_address)} per address{'' if workers == 1 else f', in each of {workers} workers'}; "
            f"handshake timeout {seconds(self.handshake_timeout)}; "
            f"{keepalive}; "
            f"origins {origins}{'' if self.allow_null_origin else ' (not null)'}; "
            f"trusted proxies {self.trusted_proxies}"
        )

    def __post_init__(self) -> None:
        if self.max_message_size < 1:
            raise ValueError("the maximum message size must be at least 1 byte")
        if not rate_in_range(self.max_message_rate):
            raise ValueError(
                f"the message rate limit must be from {MIN_MESSAGE_RATE} up to a billion a second,"
                f" not {self.max_message_rate!r}"
            )
        if self.max_data_rate < 1:
            raise ValueError("the data rate limit must be at least 1 byte a second")
        if self.max_connections < 0 or self.max_per_address < 0 or self.trusted_proxies < 0:
            raise ValueError("connection caps and the proxy count must not be negative")
        if self.max_request_head < 256:
            raise ValueError("the maximum request head must be at least 256 bytes")
        for name in ("handshake_timeout", "ping_interval", "ping_timeout"):
            value = getattr(self, name)
            if not timer_in_range(value):
                raise ValueError(
                    f"{name.replace('_', ' ')} must be 0 (off) or from {MIN_SECONDS} s up to a year, not {value!r}"
                )
        # Typed as a tuple, but a program without a type checker may pass
        # one string, read as its letters otherwise.
        origins: object = self.allowed_origins
        if isinstance(origins, str):
            raise TypeError(f"allowed_origins is a tuple of origins: ({origins!r},), not one string")
        for pattern in self.allowed_origins:
            try:
                check_origin(pattern)
            except ValueError as e:
                raise ValueError(f"allowed origin {e}") from None


# The ports browsers leave out of an Origin, by scheme.
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def check_origin(pattern: str) -> str:
    """
    Return C{pattern}, an allowed origin, if a browser's C{Origin} can
    match it: C{*}, or an origin as browsers send it, C{*} standing for any
    run of characters (C{https://*.example.com}); raise L{ValueError}
    saying what to write otherwise.  A pattern no Origin can match refuses
    every page (HTTP 403) and says nothing of why: one without a scheme,
    one copied from the address bar with its C{/}, one with the scheme's
    default port, which browsers leave out, or with a space.
    """
    if pattern == "*":
        return pattern
    if pattern == "null":
        raise ValueError(
            "'null' (a page opened from a file or a data: URL) is allowed unless --no-null-origin refuses it"
        )
    if pattern != pattern.strip() or " " in pattern:
        raise ValueError(f"{pattern!r}: an origin has no spaces")
    scheme, sep, rest = pattern.partition("://")
    if not sep:
        raise ValueError(f"{pattern!r}: give a scheme, e.g. https://{pattern}")
    if not rest:
        raise ValueError(f"{pattern!r}: give a host after the scheme, e.g. {scheme}://example.com")
    host, slash, _ = rest.partition("/")
    if slash:
        raise ValueError(f"{pattern!r}: an origin has no path, not even '/': give {scheme}://{host}")
    default = _DEFAULT_PORTS.get(scheme.lower())
    if default is not None and host.endswith(f":{default}"):
        raise ValueError(
            f"{pattern!r}: browsers leave the default port out of an origin: give {scheme}://{host[: -len(default) - 1]}"
        )
    return pattern


def read_number(text: str, kind: Callable[[str], N], what: str, prefix: str = "") -> N:
    """
    Convert an option's text, or say what was expected instead.

    Python's C{int} and C{float} also take spaces around the number, C{_}
    between its digits and digits of other scripts ("١٠"): none is how a
    number is written on a command line, and taking them would hide a
    slip.
    """
    if not text.isascii() or "_" in text or text != text.strip():
        raise ValueError(f"{prefix}{text!r} is not {what}")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{prefix}{text!r} is not {what}") from None


def naming_options(parameters: list[list[Any]]) -> list[list[Any]]:
    """
    L{usage.Options.optParameters} whose checkers' errors name their
    option: C{--ping-interval: '-1' ...}.  Twisted words every checker's
    error alike, C{Parameter type enforcement failed: '-1' ...}, which
    leaves the reader to guess which of several options was wrong.
    """
    return [
        [*parameter[:4], _naming(f"--{parameter[0]}", parameter[4]), *parameter[5:]]
        if len(parameter) > 4 and parameter[4] is not None
        else parameter
        for parameter in parameters
    ]


def _naming(option: str, check: Callable[[str], T]) -> Callable[[str], T]:
    def coerce(text: str) -> T:
        try:
            return check(text)
        except ValueError as e:
            # Not a ValueError, which usage.Options would word as above.
            raise UsageError(f"{option}: {e}") from None

    coerce.coerceDoc = getattr(check, "coerceDoc", "")  # type: ignore[attr-defined]
    return coerce


def positive_int(text: str) -> int:
    """
    Read a whole number greater than zero, for L{usage.Options} coercion.
    """
    value = read_number(text, int, "a whole number")
    if value < 1:
        raise ValueError(f"{text!r} must be 1 or more")
    return value


positive_int.coerceDoc = "A whole number, 1 or more."  # type: ignore[attr-defined]



def seconds_or_off(text: str) -> float:
    """
    Read a duration in seconds; 0 switches the timer off.
    """
    value = read_number(text, float, "a number of seconds")
    if not timer_in_range(value):
        raise ValueError(f"{text!r} seconds is out of range: 0 (off), or from {MIN_SECONDS} up to a year")
    return value


seconds_or_off.coerceDoc = f"Seconds, at least {MIN_SECONDS}; 0 turns it off."  # type: ignore[attr-defined]


def whole_number(text: str) -> int:
    """
    Read a count where 0 means "no limit".
    """
    value = read_number(text, int, "a whole number")
    if value < 0:
        raise ValueError(f"{text!r} must be 0 or more")
    return value


whole_number.coerceDoc = "A whole number, 0 or more."  # type: ignore[attr-defined]


def message_rate(text: str) -> float:
    """
    Read a rate of messages per second.
    """
    value = read_number(text, float, "a number")
    if not rate_in_range(value):
        raise ValueError(f"{text!r} is out of range: from {MIN_MESSAGE_RATE} up to a billion a second")
    return value


message_rate.coerceDoc = f"A number, at least {MIN_MESSAGE_RATE}; fractions allowed."  # type: ignore[attr-defined]


def port_number(text: str) -> int:
    """
    Read a TCP port; 0 asks the system for a free one.
    """
    value = read_number(text, int, "a number", prefix="port ")
    if not 0 <= value <= 65535:
        raise ValueError(f"port {value} is not between 0 and 65535")
    return value


port_number.coerceDoc = "A TCP port, 0 to 65535."  # type: ignore[attr-defined]


def check_ws_url(text: str) -> str:
    """
    Return C{text} if a client can open it: a C{ws://} or C{wss://} URL
    with a host, a port it can connect to if any, no fragment and nothing
    unprintable; raise L{ValueError} saying why not otherwise.  One rule
    for C{pingproto ping} and the page (L{pingproto.webapp.check_server}),
    so that what one takes the other does.
    """
    refuse_credentials(text)
    parts = split_url(text)
    if parts.scheme not in ("ws", "wss") or any(c.isspace() for c in text):
        raise ValueError(f"{text!r} is not a ws:// or wss:// URL")
    if not text.isprintable():
        # It would go to the server as it is, in the request line or the
        # Host header, to be refused there with a bare HTTP 400.
        raise ValueError(f"{text!r}: a URL cannot have control or other unprintable characters")
    check_authority(parts, text)
    return text


def split_url(url: str, text: str | None = None) -> SplitResult:
    """
    C{urlsplit(url)}, with its L{ValueError} for brackets in the host that
    are not closed or hold no IP address in pingproto's words, quoting
    C{text} (C{url} by default), rather than Python's ("Invalid IPv6
    URL").
    """
    try:
        return urlsplit(url)
    except ValueError:
        shown = url if text is None else text
        if "[" in url or "]" in url:
            raise ValueError(
                f"{shown!r}: brackets in the host must enclose an IPv6 address, as in ws://[::1]:1234/"
            ) from None
        # urlsplit's other refusal: a host with characters that Unicode
        # normalization (NFKC) turns into '/', '?', '#', '@' or ':'.
        raise ValueError(f"{shown!r}: the host has characters that read as others once normalized") from None


# A URL's authority, or a host:port's: from after "//" (or the start) to
# the first "/", "?" or "#"; read from the text itself, as a URL that
# urlsplit refuses may hold credentials too.
_AUTHORITY = re.compile(r"^(?:[^:/?#]*://|//)?([^/?#]*)")


def refuse_credentials(text: str) -> None:
    """
    Refuse a URL (or host:port) with a user name or password, quoting it
    without them: pingproto sends none, and what is quoted is printed and
    logged.  Checked before anything else quotes it.
    """
    match = _AUTHORITY.match(text)
    assert match is not None  # every part of the pattern may be empty
    user, at, _ = match.group(1).rpartition("@")
    if at:
        start = match.start(1)
        bare = text[:start] + text[start + len(user) + 1 :]
        raise ValueError(f"{bare!r}: give the URL without a user name or password (pingproto sends none)")


def _unbracketed_ipv6(host_port: str) -> str | None:
    """
    C{host_port} as it should have been written if it is an IPv6 address
    without its brackets, with a port after it or not (C{::1:1234} is
    taken as port 1234, which is what it most likely means); else
    L{None}.
    """
    if host_port.startswith("[") or host_port.count(":") < 2:
        return None
    address, _, port = host_port.rpartition(":")
    for candidate, suffix in ((address, f":{port}"), (host_port, "")):
        if suffix and not port.isdigit():
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        return f"[{candidate}]{suffix}"
    return None


def check_authority(parts: SplitResult, text: str) -> None:
    """
    Raise L{ValueError} unless C{parts} (of C{text}) name a host, with a
    port a client can connect to if any, and no fragment, which a
    WebSocket URL cannot have (RFC 6455, 3): a C{#} alone counts, though
    C{urlsplit} drops it.

    Port 0 means "any free port" to a listener, and nothing to a client.
    """
    refuse_credentials(text)
    if parts.fragment or "#" in text:
        raise ValueError(f"{text!r}: a WebSocket URL has no #fragment")
    host_port = parts.netloc
    bracketed = _unbracketed_ipv6(host_port)
    if bracketed is not None:
        raise ValueError(f"{text!r}: an IPv6 address goes in brackets: {text.replace(host_port, bracketed, 1)}")
    if not parts.hostname:
        raise ValueError(f"{text!r} names no host")
    try:
        port = parts.port
    except ValueError:
        # Python's words ("Port could not be cast to integer value as
        # '-1'") name its workings; the port is what follows the host.
        given = host_port.rpartition("]")[2] if host_port.startswith("[") else host_port
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535, not {given.partition(':')[2]!r}") from None
    if port == 0:
        raise ValueError(f"{text!r}: port 0 cannot be connected to")


_HOST_NAME = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.?", re.IGNORECASE)


def interface_address(text: str) -> str:
    """
    Read an address to listen on: an IP address or a host name.

    IPv4 is taken as four numbers only: C{inet_aton}'s other forms
    (C{127.1}, C{0x7f.1}, C{2130706433}) are read as addresses by some
    tools and not by others (L{ipaddress}, which the loopback check
    uses), so a value that could be one of them is refused, not guessed
    at.
    """
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    if _HOST_NAME.fullmatch(text) and not text.rstrip(".").rsplit(".", 1)[-1].isdigit():
        return text
    if not text:
        hint = ": give 0.0.0.0 or :: for every interface"
    elif "[" in text or "]" in text:
        hint = ": write an IPv6 address without brackets, e.g. ::1"
    elif text.count(":") == 1:
        hint = ": an address has no port"
    elif re.fullmatch(r"[0-9a-fA-FxX.]+", text):
        hint = ": write an IPv4 address as four numbers from 0 to 255, e.g. 127.0.0.1"
    else:
        hint = ""
    raise ValueError(f"{text!r} is not an IP address or host name{hint}")


interface_address.coerceDoc = "An IP address or a host name."  # type: ignore[attr-defined]


def _parse_endpoint(description: str) -> tuple[list[str], dict[str, str]]:
    """
    An endpoint string's positional and named fields, as Twisted reads
    them; L{ValueError} for the one string it cannot read, which ends in
    a lone backslash (it raises C{RuntimeError: generator raised
    StopIteration}).
    """
    try:
        return _parseEndpoint(description)
    except RuntimeError:
        raise ValueError("it ends in a backslash that escapes nothing (write \\\\ for a backslash)") from None


def _listener(description: str) -> tuple[str, list[str], dict[str, str]]:
    """
    The kind (lower case), positional fields and named fields of the
    endpoint that listens: behind C{haproxy:}, the one it wraps.
    """
    args, kwargs = _parse_endpoint(description)
    while len(args) > 1 and args[0].lower() == "haproxy":
        # As Twisted's haproxy: parser does: the rest written out again
        # (an escaped "=" unescaped) and read anew.
        args, kwargs = _parse_endpoint(unparseEndpoint(tuple(args[1:]), kwargs))
    return (args[0].lower() if args else ""), args, kwargs


# The positional fields of Twisted's tcp: and tcp6: server endpoints, in
# their order, which differs.
_TCP_FIELDS = {"tcp": ("port", "interface", "backlog"), "tcp6": ("port", "backlog", "interface")}


def _tcp_fields(kind: str, args: Sequence[str], kwargs: dict[str, str]) -> dict[str, str]:
    """
    A tcp: or tcp6: endpoint's fields by name, or L{ValueError} if there
    are too many: an IPv6 address whose colons were not escaped splits
    into several (Twisted says C{got multiple values for argument
    'interface'}).
    """
    names = _TCP_FIELDS[kind]
    fields = dict(zip(names, args[1:]))
    if len(args) - 1 > len(names) or any(name in fields for name in kwargs):
        raise ValueError("too many fields: escape the colons in a value, e.g. interface=\\:\\:1")
    return {**fields, **kwargs}


def check_endpoint(description: str) -> None:
    """
    Raise L{ValueError} saying what is wrong with a server endpoint string
    for pingproto to listen on: one that brings a TLS of its own
    (L{tls_endpoint_kind}), or a C{tcp:}, C{tcp6:} or C{unix:} one (also
    behind C{haproxy:}) that Twisted would take and then fail on
    puzzlingly or with a traceback: a port out of range (only when it
    listens: C{OverflowError}), too many fields, no port, an interface
    that is not an address, no path or one too long.
    """
    tls_kind = tls_endpoint_kind(description)
    if tls_kind is not None:
        # Outside pingproto's TLS policy and its reload, or TLS inside
        # pingproto's own with --tls-dir.
        raise ValueError(
            f"{tls_kind}: endpoints bring TLS of their own; "
            "listen on tcp:, unix: or systemd: and give --tls-dir DIR to serve wss://"
        )
    kind, args, kwargs = _listener(description)
    if kind == "unix":
        path = _unix_path(args, kwargs)
        if not path:
            raise ValueError("unix: needs the path of the socket, e.g. unix:/run/pingproto/ws.sock")
        size = len(os.fsencode(path))
        if size > UNIX_PATH_MAX:
            # Twisted would say only "AF_UNIX path too long", after the
            # workers (if any) were already on their way.
            raise ValueError(
                f"the socket's path is {size} bytes, and this system takes at most {UNIX_PATH_MAX}; "
                "choose a shorter one"
            )
    elif kind in _TCP_FIELDS:
        fields = _tcp_fields(kind, args, kwargs)
        if "port" not in fields:
            raise ValueError(f"{kind}: needs a port, e.g. {kind}:1234")
        port_number(fields["port"])
        if fields.get("interface"):
            interface_address(fields["interface"])
        if "backlog" in fields:
            _backlog(fields["backlog"])


def _backlog(text: str) -> int:
    """
    Read a C{tcp:} endpoint's C{backlog}: Twisted passes it to C{listen()}
    as it is, which raises C{OverflowError} past a C int, and the kernel
    cuts it to C{net.core.somaxconn} anyway.
    """
    value = read_number(text, int, "a whole number", "backlog=")
    if not 1 <= value <= 65535:
        raise ValueError(f"backlog={text}: give a listen queue of 1 to 65535 connections")
    return value


def unix_socket_path(description: str) -> str | None:
    """
    The path of a C{unix:} endpoint string (also behind C{haproxy:});
    L{None} for another kind.
    """
    kind, args, kwargs = _listener(description)
    return _unix_path(args, kwargs) if kind == "unix" else None


def _unix_path(args: Sequence[str], kwargs: dict[str, str]) -> str:
    return args[1] if len(args) > 1 else kwargs.get("address", "")


def is_loopback_endpoint(description: str) -> bool:
    """
    Whether a server endpoint string can only be reached from this machine.

    Only C{tcp}/C{tcp6} endpoints bound to a loopback address and C{unix}
    sockets qualify; anything else (no interface means every interface, an
    inherited systemd socket could be anything) is treated as public.
    """
    kind, args, kwargs = _listener(description)
    if kind == "unix":
        return True
    if kind not in _TCP_FIELDS:
        return False
    try:
        interface = _tcp_fields(kind, args, kwargs).get("interface", "")
    except ValueError:
        return False
    if interface == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface).is_loopback
    except ValueError:
        return False


def behind_proxy(description: str) -> bool:
    """
    Whether a server endpoint string reads the PROXY protocol (C{haproxy:}).
    """
    args, _ = _parse_endpoint(description)
    return bool(args) and args[0].lower() == "haproxy"


# Server endpoint kinds that do TLS themselves.
_TLS_KINDS = ("ssl", "tls")


def tls_endpoint_kind(description: str) -> str | None:
    """
    The kind of endpoint that would wrap connections in a TLS of its own
    (C{ssl}, C{tls}, also behind C{haproxy:}), or L{None}.

    pingproto applies TLS itself, to every listener, with its policy and
    its certificate reload; such an endpoint would bypass the policy (with
    C{--no-tls}) or add TLS inside TLS (with C{--tls-dir}).
    """
    kind, args, _ = _listener(description)
    if kind in _TLS_KINDS:
        return kind
    if kind == "autobahn" and len(args) > 1:
        # autobahn:ssl\:443\:...:url=... : the first argument is.
        return tls_endpoint_kind(args[1])
    return None


def listen_descriptions(
    port: int | None,
    interface: str | None,
    listen: Sequence[str],
    *,
    tls: bool,
    no_tls: bool,
) -> list[str]:
    """
    Turn the listening options into endpoint strings, refusing unsafe or
    contradictory combinations with a C{ValueError} that says which.

    C{--port} and C{--interface} are a short form of one C{--listen}; mixing
    the two forms would leave the reader guessing which wins, so it is an
    error.  Plain WebSocket is served on loopback without ceremony, and
    elsewhere only when C{--no-tls} says a TLS-terminating proxy stands in
    front.
    """
    if tls and no_tls:
        raise ValueError("--tls-dir and --no-tls contradict each other; give one")
    if listen and (port is not None or interface is not None):
        raise ValueError(
            "--listen replaces --port and --interface; "
            "put the interface in the endpoint, e.g. tcp:1234:interface=127.0.0.1"
        )
    if listen:
        descriptions = list(listen)
        seen: list[tuple[object, str]] = []
        for description in descriptions:
            # With --workers, each would be a socket of its own on the
            # address, and every worker would serve both.
            address = _listening_address(description)
            for earlier, given in seen:
                if earlier == address:
                    raise ValueError(f"--listen {description!r} is the address of --listen {given!r} again")
                wildcard = _overlap(earlier, address)
                if wildcard is not None:
                    raise ValueError(
                        f"--listen {description!r} overlaps --listen {given!r}: {wildcard} takes every "
                        f"{'IPv6' if ':' in wildcard else 'IPv4'} address on the port; give one of the two"
                    )
            seen.append((address, description))
    else:
        host = DEFAULT_INTERFACE if interface is None else interface
        chosen = DEFAULT_PORT if port is None else port
        descriptions = [
            f"tcp{'6' if ':' in host else ''}:{chosen}:interface={quoteStringArgument(host)}:backlog={LISTEN_BACKLOG}"
        ]
    if not tls and not no_tls:
        refuse_public_plain(descriptions, "give --tls-dir DIR, or --no-tls if a TLS-terminating proxy stands in front")
    return descriptions


def refuse_public_plain(descriptions: Sequence[object], remedy: str) -> None:
    """
    Raise L{ValueError} at the first endpoint string that is not loopback
    (L{is_loopback_endpoint}), for a server without TLS, saying C{remedy}.
    Endpoints given as objects are the program's own business.
    """
    for description in descriptions:
        if isinstance(description, str) and not is_loopback_endpoint(description):
            if _listener(description)[0] == "systemd":
                # Bound by systemd, perhaps to loopback: it can be rebound
                # elsewhere without pingproto's options changing.
                raise ValueError(
                    f"refusing to serve plain ws:// on {description!r}: an inherited socket counts as public, "
                    f"whatever it is bound to now: {remedy}"
                )
            raise ValueError(f"refusing to serve plain ws:// on {description!r}, which is not loopback: {remedy}")


def _listening_address(description: str) -> object:
    """
    What a server endpoint string listens on, alike however it is spelt:
    a C{tcp:} or C{tcp6:} port and interface or a C{unix:} path, given by
    position or by name (C{haproxy:} in front or not), or else its kind
    and fields.
    """
    kind, args, kwargs = _listener(description)
    if kind in _TCP_FIELDS:
        with contextlib.suppress(ValueError):
            fields = _tcp_fields(kind, args, kwargs)
            port = fields.get("port", "").strip()
            # No interface: every address of the endpoint's family.
            interface = fields.get("interface", "") or ("::" if kind == "tcp6" else "0.0.0.0")
            with contextlib.suppress(ValueError):
                # One spelling per address: 0::0 is ::.
                interface = str(ipaddress.ip_address(interface))
            return ("tcp", int(port) if port.isdigit() else port, interface)
    if kind == "unix":
        return (kind, _unix_path(args, kwargs))
    return (kind, tuple(args[1:]), tuple(sorted(kwargs.items())))


def _overlap(a: object, b: object) -> str | None:
    """
    The wildcard address by which two different listening addresses
    (L{_listening_address}) take the same connections, or L{None}: the
    same TCP port with one of them on every address of the other's
    family, C{0.0.0.0} for IPv4 or C{::} for IPv6.  Without workers the
    second would fail to bind; with them (C{SO_REUSEPORT}) both would
    bind, each taking some of the connections.  Port 0 is a port of its
    own for each listener (only the same address twice is refused, by
    the caller).  C{::} with an IPv4 address is not refused: on a host
    with C{net.ipv6.bindv6only=1}, C{tcp:P} and C{tcp6:P} are how to
    serve both families; elsewhere, where C{::} takes IPv4 too, the
    second fails to bind without workers, and with them both bind.
    """
    if not (isinstance(a, tuple) and isinstance(b, tuple) and a[0] == b[0] == "tcp" and a[1] == b[1] != 0):
        return None
    for wildcard, other in ((a[2], b[2]), (b[2], a[2])):
        if wildcard in ("0.0.0.0", "::") and (":" in wildcard) == (":" in other):
            return str(wildcard)
    return None
