"""
Tests for L{pingproto.config}: server limits, option coercers and the rules
that turn listening options into endpoint strings.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import os
import socket
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.endpoints import (
    TCP4ServerEndpoint,
    TCP6ServerEndpoint,
    serverFromString,
)
from twisted.internet.testing import MemoryReactor
from twisted.trial.unittest import SynchronousTestCase

from pingproto.config import (
    DEFAULT_INTERFACE,
    DEFAULT_PORT,
    UNIX_PATH_MAX,
    ServerLimits,
    check_authority,
    check_endpoint,
    check_origin,
    behind_proxy,
    check_ws_url,
    interface_address,
    is_loopback_endpoint,
    listen_descriptions,
    message_rate,
    port_number,
    positive_int,
    seconds_or_off,
    tls_endpoint_kind,
    whole_number,
)

from .sockets import socket_dir

YEAR = 86400 * 365


class ServerLimitsTests(SynchronousTestCase):
    """
    L{ServerLimits} keeps its documented defaults and refuses nonsense.
    """

    def test_defaults(self) -> None:
        """
        The defaults are 16 MiB messages, a 10 s handshake, keepalive pings
        every 20 s closing after 20 s of silence, and a 16 KiB request head.
        """
        limits = ServerLimits()
        self.assertEqual(limits.max_message_size, 16 * 1024 * 1024)
        self.assertEqual(limits.handshake_timeout, 10.0)
        self.assertEqual(limits.ping_interval, 20.0)
        self.assertEqual(limits.ping_timeout, 20.0)
        self.assertEqual(limits.max_request_head, 16384)
        self.assertEqual((limits.max_data_rate, limits.data_burst), (1024 * 1024, 32 * 1024 * 1024))

    def test_data_burst(self) -> None:
        """
        The data burst is two of the largest messages, or a second's worth
        of the data rate if that is more.
        """
        self.assertEqual(ServerLimits(max_message_size=1000, max_data_rate=500).data_burst, 2000)
        self.assertEqual(ServerLimits(max_message_size=1000, max_data_rate=5000).data_burst, 5000)

    def test_message_burst(self) -> None:
        """
        The message burst is ten seconds' worth of the message rate (400
        at 40 a second, 1000 by default), but never less than one message,
        or a slow rate would refuse every message: 0.1 a second, the
        least allowed, still lets one through.
        """
        self.assertEqual(ServerLimits().message_burst, 1000)
        self.assertEqual(ServerLimits(max_message_rate=40).message_burst, 400)
        self.assertEqual(ServerLimits(max_message_rate=0.1).message_burst, 1)

    def test_negative_caps(self) -> None:
        """
        A negative connection cap, per-address cap or proxy count is
        refused; 0 lifts the caps and trusts no proxy.
        """
        for name in ("max_connections", "max_per_address", "trusted_proxies"):
            e = self.assertRaises(ValueError, ServerLimits, **{name: -1})
            self.assertEqual(str(e), "connection caps and the proxy count must not be negative", name)
        limits = ServerLimits(max_connections=0, max_per_address=0, trusted_proxies=0)
        self.assertEqual((limits.max_connections, limits.max_per_address, limits.trusted_proxies), (0, 0, 0))

    def test_data_rate_below_one(self) -> None:
        """
        A data rate under one byte a second is refused, saying which limit.
        """
        e = self.assertRaises(ValueError, ServerLimits, max_data_rate=0)
        self.assertEqual(str(e), "the data rate limit must be at least 1 byte a second")

    def test_smallest_accepted_values(self) -> None:
        """
        A 1-byte message limit, a 256-byte request head and 0 for every
        timer (timer off) are accepted and kept as given.
        """
        limits = ServerLimits(
            max_message_size=1,
            handshake_timeout=0,
            ping_interval=0,
            ping_timeout=0,
            max_request_head=256,
        )
        self.assertEqual(
            (limits.max_message_size, limits.handshake_timeout,
             limits.ping_interval, limits.ping_timeout, limits.max_request_head),
            (1, 0, 0, 0, 256),
        )

    def test_message_size_below_one(self) -> None:
        """
        A maximum message size of 0 is refused with a ValueError naming the
        maximum message size.
        """
        e = self.assertRaises(ValueError, ServerLimits, max_message_size=0)
        self.assertEqual(str(e), "the maximum message size must be at least 1 byte")

    def test_request_head_below_256(self) -> None:
        """
        A maximum request head of 255 bytes is refused with a ValueError
        naming the request head.
        """
        e = self.assertRaises(ValueError, ServerLimits, max_request_head=255)
        self.assertEqual(str(e), "the maximum request head must be at least 256 bytes")

    def test_origins_as_one_string(self) -> None:
        """
        One string given for the allowed origins is refused, saying how to
        write it: it was read as its letters, and refused for the first
        of them ("allowed origin 'h': give a scheme").
        """
        e = self.assertRaises(TypeError, ServerLimits, allowed_origins="https://a.example")
        self.assertEqual(str(e), "allowed_origins is a tuple of origins: ('https://a.example',), not one string")

    def test_origin_without_scheme(self) -> None:
        """
        An allowed origin without a scheme is refused, as C{--allow-origin}
        refuses it: a browser's C{Origin} always has one, so the server
        would answer every page 403 without saying why.  C{*} and patterns
        with a scheme are kept.
        """
        e = self.assertRaises(ValueError, ServerLimits, allowed_origins=("https://a.example", "example.com"))
        self.assertEqual(str(e), "allowed origin 'example.com': give a scheme, e.g. https://example.com")
        origins = ("*", "https://*.example.com", "http://[::1]:8080", "https://a.example:8443", "http://a.example:443")
        self.assertEqual(ServerLimits(allowed_origins=origins).allowed_origins, origins)

    def test_summary(self) -> None:
        """
        The limits in one line, each with its unit; 0 said as off or no
        cap, the origins as given, a refused null origin said.
        """
        self.assertEqual(
            ServerLimits().summary(),
            "messages up to 16,777,216 bytes; per client 100 messages and 1,048,576 bytes a second; "
            "connections 10,000, 256 per address; handshake timeout 10 s; keepalive every 20 s, "
            "answered within 20 s; origins any; trusted proxies 0",
        )
        limits = ServerLimits(
            max_message_size=100, max_message_rate=0.5, max_data_rate=2048, max_connections=0, max_per_address=0,
            handshake_timeout=0, ping_interval=0.5, ping_timeout=0, allowed_origins=("https://a.example", "https://b.example"),
            allow_null_origin=False, trusted_proxies=2,
        )
        self.assertIn("; connections 10,000, 256 per address, in each of 3 workers; ", ServerLimits().summary(workers=3))
        self.assertEqual(
            limits.summary(),
            "messages up to 100 bytes; per client 0.5 messages and 2,048 bytes a second; "
            "connections no cap, no cap per address; handshake timeout off; keepalive every 0.5 s, "
            "no answer awaited; origins https://a.example, https://b.example (not null); trusted proxies 2",
        )

    def test_origin_no_browser_sends(self) -> None:
        """
        An allowed origin that no browser's Origin can match is refused,
        saying what to write: the address bar's trailing slash or a path,
        the scheme's default port (browsers leave it out), a space, no
        host; and C{null}, which has an option of its own.
        """
        cases = {
            "https://example.com/": "'https://example.com/': an origin has no path, not even '/': give https://example.com",
            "https://*.example.com/app": "'https://*.example.com/app': an origin has no path, not even '/': "
            "give https://*.example.com",
            "https://other.example:443": "'https://other.example:443': browsers leave the default port out of "
            "an origin: give https://other.example",
            "HTTP://other.example:80": "'HTTP://other.example:80': browsers leave the default port out of "
            "an origin: give HTTP://other.example",
            " https://third.example": "' https://third.example': an origin has no spaces",
            "https://": "'https://': give a host after the scheme, e.g. https://example.com",
            "null": "'null' (a page opened from a file or a data: URL) is allowed unless --no-null-origin refuses it",
        }
        for pattern, message in cases.items():
            e = self.assertRaises(ValueError, check_origin, pattern)
            self.assertEqual(str(e), message)

    def test_timers_out_of_range(self) -> None:
        """
        A timer that is negative, NaN, shorter than 0.1 s but not 0, or a
        year or more is refused, as its option is (L{seconds_or_off}), and
        the message names the timer and the value.  Before, only negative
        values were: a program embedding the server could set a keepalive
        ping every microsecond.
        """
        for name in ("handshake_timeout", "ping_interval", "ping_timeout"):
            for value in (-0.5, math.nan, 1e-6, 0.099, float(YEAR), math.inf):
                e = self.assertRaises(ValueError, ServerLimits, **{name: value})
                self.assertEqual(
                    str(e),
                    f"{name.replace('_', ' ')} must be 0 (off) or from 0.1 s up to a year, not {value!r}",
                )
            for value in (0, 0.1, YEAR - 1):
                self.assertEqual(getattr(ServerLimits(**{name: value}), name), value)

    def test_message_rate_out_of_range(self) -> None:
        """
        A message rate under 0.1 a second, NaN, or a billion or more is
        refused, as C{--max-message-rate} refuses it (L{message_rate});
        0.1 and just under a billion are kept.
        """
        for value in (0, -1, 0.05, math.nan, 1e9, math.inf):
            e = self.assertRaises(ValueError, ServerLimits, max_message_rate=value)
            self.assertEqual(
                str(e), f"the message rate limit must be from 0.1 up to a billion a second, not {value!r}"
            )
        for value in (0.1, 1e9 - 1):
            self.assertEqual(ServerLimits(max_message_rate=value).max_message_rate, value)

    def test_frozen(self) -> None:
        """
        Limits cannot be changed after they were checked.
        """
        limits = ServerLimits()
        self.assertRaises(
            dataclasses.FrozenInstanceError, setattr, limits, "max_message_size", 0
        )
        self.assertEqual(limits.max_message_size, 16 * 1024 * 1024)


class WholeNumberCheckerTests(SynchronousTestCase):
    """
    L{positive_int} reads whole numbers of at least 1, and L{whole_number}
    counts where 0 means no limit.
    """

    def test_good(self) -> None:
        """
        Whole numbers in range read as themselves: "1" and "250" as
        positive_int's, "0" (no limit) and "256" as whole_number's.
        """
        for check, text, value in ((positive_int, "1", 1), (positive_int, "250", 250),
                                   (whole_number, "0", 0), (whole_number, "256", 256)):
            self.assertEqual(check(text), value)

    def test_refused(self) -> None:
        """
        A number under the least (1 for positive_int, 0 for whole_number)
        is refused as such, and one that is not whole ("1.5", "ten",
        "2.5") as not a whole number.
        """
        for check, text, message in (
            (positive_int, "0", "'0' must be 1 or more"),
            (positive_int, "-3", "'-3' must be 1 or more"),
            (positive_int, "1.5", "'1.5' is not a whole number"),
            (positive_int, "ten", "'ten' is not a whole number"),
            (whole_number, "-1", "'-1' must be 0 or more"),
            (whole_number, "2.5", "'2.5' is not a whole number"),
            # What Python's int() takes but no one writes as a number.
            (positive_int, "1_000", "'1_000' is not a whole number"),
            (positive_int, " 2", "' 2' is not a whole number"),
            (whole_number, "\u0661\u0660", "'\u0661\u0660' is not a whole number"),
        ):
            e = self.assertRaises(ValueError, check, text)
            self.assertEqual(str(e), message)


class MessageRateTests(SynchronousTestCase):
    """
    L{message_rate} reads rates per second from 0.1 up to a billion.
    """

    def test_good(self) -> None:
        """
        "0.1" (one every 10 s), "0.4" and "100" read as those rates.
        """
        self.assertEqual(message_rate("0.1"), 0.1)
        self.assertEqual(message_rate("0.4"), 0.4)
        self.assertEqual(message_rate("100"), 100.0)

    def test_out_of_range(self) -> None:
        """
        0, a negative rate, a billion and NaN are refused: none is a rate
        a bucket can be made from; nor is a rate under 0.1, at which a
        client's second message closes it.
        """
        for text in ("0", "-1", "1e9", "nan", "0.05", "1e-300"):
            e = self.assertRaises(ValueError, message_rate, text)
            self.assertEqual(str(e), f"{text!r} is out of range: from 0.1 up to a billion a second")

    def test_not_a_number(self) -> None:
        """
        "fast" is refused as not a number.
        """
        e = self.assertRaises(ValueError, message_rate, "fast")
        self.assertEqual(str(e), "'fast' is not a number")


class PositiveSecondsTests(SynchronousTestCase):
    """
    L{seconds_or_off} reads 0 (off), or durations from 0.1 s up to, not
    including, a year.
    """

    def out_of_range(self, text: str) -> None:
        e = self.assertRaises(ValueError, seconds_or_off, text)
        self.assertEqual(str(e), f"{text!r} seconds is out of range: 0 (off), or from 0.1 up to a year")

    def test_good(self) -> None:
        """
        "0" (off), "0.1", "2.5" and "20" read as the same number of seconds.
        """
        self.assertEqual(seconds_or_off("0"), 0.0)
        self.assertEqual(seconds_or_off("0.1"), 0.1)
        self.assertEqual(seconds_or_off("2.5"), 2.5)
        self.assertEqual(seconds_or_off("20"), 20.0)

    def test_negative(self) -> None:
        """
        "-1" is out of range.
        """
        self.out_of_range("-1")

    def test_too_short(self) -> None:
        """
        Under 0.1 s, other than 0, is out of range: no handshake or pong
        comes back in 1e-300 s, and pings every 5 ms are a flood.
        """
        for text in ("1e-300", "0.000001", "0.005", "0.0999"):
            self.out_of_range(text)

    def test_a_year(self) -> None:
        """
        A year of seconds is out of range, one second less is accepted.
        """
        self.out_of_range(str(YEAR))
        self.assertEqual(seconds_or_off(str(YEAR - 1)), YEAR - 1)

    def test_not_finite(self) -> None:
        """
        "nan" and "inf" are refused as out of range.
        """
        self.out_of_range("nan")
        self.out_of_range("inf")

    def test_not_a_number(self) -> None:
        """
        "soon" is refused as not a number of seconds.
        """
        e = self.assertRaises(ValueError, seconds_or_off, "soon")
        self.assertEqual(str(e), "'soon' is not a number of seconds")

    @settings(deadline=None)
    @given(st.one_of(st.just(0.0), st.floats(min_value=0.1, max_value=YEAR, exclude_max=True)))
    def test_round_trip(self, seconds: float) -> None:
        """
        0, and any duration in [0.1, one year), written with repr() reads
        back as exactly the same float.
        """
        self.assertEqual(seconds_or_off(repr(seconds)), seconds)


class PortNumberTests(SynchronousTestCase):
    """
    L{port_number} reads TCP ports 0 to 65535.
    """

    def test_good(self) -> None:
        """
        "0" (any free port), "1234" and "65535" are read as those ports.
        """
        self.assertEqual(port_number("0"), 0)
        self.assertEqual(port_number("1234"), 1234)
        self.assertEqual(port_number("65535"), 65535)

    def test_too_big(self) -> None:
        """
        65536 is refused, and the message gives the range.
        """
        e = self.assertRaises(ValueError, port_number, "65536")
        self.assertEqual(str(e), "port 65536 is not between 0 and 65535")

    def test_negative(self) -> None:
        """
        -1 is refused, and the message gives the range.
        """
        e = self.assertRaises(ValueError, port_number, "-1")
        self.assertEqual(str(e), "port -1 is not between 0 and 65535")

    def test_not_a_number(self) -> None:
        """
        "http" is refused as not a number.
        """
        e = self.assertRaises(ValueError, port_number, "http")
        self.assertEqual(str(e), "port 'http' is not a number")

    @settings(deadline=None)
    @given(st.integers(min_value=-(10**6), max_value=10**6))
    def test_exactly_the_port_range(self, n: int) -> None:
        """
        An integer written as text is accepted, as itself, exactly when it
        lies in 0..65535; any other is refused with the range in the message.
        """
        if 0 <= n <= 65535:
            self.assertEqual(port_number(str(n)), n)
        else:
            e = self.assertRaises(ValueError, port_number, str(n))
            self.assertEqual(str(e), f"port {n} is not between 0 and 65535")


class InterfaceAddressTests(SynchronousTestCase):
    """
    L{interface_address} reads IP addresses and host names, and nothing
    else that could be mistaken for one.
    """

    @settings(deadline=None)
    @given(st.ip_addresses())
    def test_every_address(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        """
        Every IPv4 and IPv6 address, as Python writes it, is read as itself.
        """
        self.assertEqual(interface_address(str(address)), str(address))

    def test_host_names(self) -> None:
        """
        Host names, "localhost" among them, are read as themselves.
        """
        for name in ("localhost", "example.com", "pp-1.example.com.", "ip6-localhost"):
            self.assertEqual(interface_address(name), name)

    def test_not_addresses(self) -> None:
        """
        An address with a port, in brackets, or in one of inet_aton's other
        forms (127.1 and the like, which ipaddress does not read), and
        text no host name can be, are refused, each saying so.
        """
        for text in ("127.0.0.1:80", "[::1]", "127.1", "0x7f.0.0.1", "2130706433", "0177.0.0.1", "1.2.3.256",
                     "", "my_host", "-x.example", "a b"):
            e = self.assertRaises(ValueError, interface_address, text)
            self.assertTrue(str(e).startswith(f"{text!r} is not an IP address or host name"), str(e))


class CheckEndpointTests(SynchronousTestCase):
    """
    L{check_endpoint} refuses the endpoint strings Twisted would take and
    then fail on, and passes those it would serve.
    """

    @settings(deadline=None)
    @given(st.integers(min_value=-(10**6), max_value=10**6), st.sampled_from(["tcp", "tcp6", "haproxy:tcp"]))
    def test_exactly_the_port_range(self, port: int, kind: str) -> None:
        """
        A tcp:, tcp6: (or haproxy:tcp:) port is accepted exactly when it
        lies in 0..65535; Twisted takes the others and fails only as it
        listens.
        """
        if 0 <= port <= 65535:
            check_endpoint(f"{kind}:{port}")
        else:
            e = self.assertRaises(ValueError, check_endpoint, f"{kind}:{port}")
            self.assertEqual(str(e), f"port {port} is not between 0 and 65535")

    def test_accepted_are_served(self) -> None:
        """
        What it accepts, Twisted makes an endpoint of.
        """
        for description in (
            "tcp:0:interface=127.0.0.1",
            "tcp:0:127.0.0.1:50",
            r"tcp6:0:interface=\:\:1:backlog=10",
            r"tcp6:0:50:\:\:1",
            "tcp:port=0",
            "unix:/tmp/x.sock",
            "systemd:domain=INET:index=0",
        ):
            check_endpoint(description)
            if not description.startswith("systemd"):
                serverFromString(MemoryReactor(), description)

    def test_refused(self) -> None:
        """
        Too many fields (an IPv6 address's colons not escaped), no port, an
        interface that is not an address, no socket path, a trailing
        backslash: each refused saying which.
        """
        cases = [
            ("tcp:5102:interface=::1", "too many fields: escape the colons in a value, e.g. interface=\\:\\:1"),
            ("tcp:1:2:3:4", "too many fields"),
            ("tcp:port=1:2", "too many fields"),
            ("tcp", "tcp: needs a port, e.g. tcp:1234"),
            ("tcp6:backlog=5", "tcp6: needs a port, e.g. tcp6:1234"),
            ("tcp:1:interface=127.1", "'127.1' is not an IP address or host name"),
            ("tcp:1:interface=127.0.0.1:backlog=999999999999", "backlog=999999999999: give a listen queue of 1 to 65535"),
            ("tcp:1:backlog=-5", "backlog=-5: give a listen queue of 1 to 65535 connections"),
            ("tcp6:1:backlog=abc", "backlog='abc' is not a whole number"),
            ("unix:", "unix: needs the path of the socket"),
            ("tcp:1\\", "it ends in a backslash that escapes nothing"),
            ("haproxy:ssl:443", "ssl: endpoints bring TLS of their own"),
            # Behind haproxy:, read as Twisted reads it: "\=" unescaped.
            ("haproxy:unix:/tmp/a\\=b.sock", "unix: needs the path of the socket"),
            ("haproxy:tcp:1:interface=127.0.0.1:interface\\=203.0.113.9=x", "'203.0.113.9=x' is not an IP address"),
        ]
        for description, message in cases:
            e = self.assertRaises(ValueError, check_endpoint, description)
            self.assertIn(message, str(e), description)

    def test_unixPathLength(self) -> None:
        """
        A UNIX socket's path longer than the kernel takes is refused with
        its length, before anything listens; the longest one the kernel
        takes is taken, and binds.
        """
        directory = socket_dir(self)
        fits = os.path.join(directory, "s" * (UNIX_PATH_MAX - len(directory) - 1))
        too_long = fits + "s"
        self.assertEqual(len(fits), UNIX_PATH_MAX)
        check_endpoint("unix:" + fits)
        e = self.assertRaises(ValueError, check_endpoint, "unix:" + too_long)
        self.assertEqual(
            str(e), f"the socket's path is {UNIX_PATH_MAX + 1} bytes, and this system takes at most {UNIX_PATH_MAX}; "
            "choose a shorter one"
        )
        # What the limit stands for: the kernel's own.
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(fits)
        with socket.socket(socket.AF_UNIX) as sock:
            self.assertRaises(OSError, sock.bind, too_long)
class CheckWsUrlTests(SynchronousTestCase):
    """
    L{check_ws_url}: the URLs a client can open.
    """

    def test_port_zero(self) -> None:
        """
        Port 0 ("any free port" to a listener) is refused, however the host
        is written, with the URL in the message.
        """
        for url in ("ws://127.0.0.1:0/", "wss://example.com:0/", "ws://[::1]:0/", "ws://h:00/"):
            e = self.assertRaises(ValueError, check_ws_url, url)
            self.assertEqual(str(e), f"{url!r}: port 0 cannot be connected to")

    def test_port_zero_for_the_page(self) -> None:
        """
        The page's server (C{pingproto app -s}) goes by the same rule:
        C{check_authority} refuses port 0 too.
        """
        e = self.assertRaises(ValueError, check_authority, urlsplit("//h:0"), "h:0")
        self.assertEqual(str(e), "'h:0': port 0 cannot be connected to")

    def test_url_errors_in_own_words(self) -> None:
        """
        A URL that urlsplit cannot read, an IPv6 address without its
        brackets and a port that is no number from 1 to 65535 are each
        refused in one line of pingproto's words that quotes the URL, not
        Python's ("Invalid IPv6 URL", "Port could not be cast to integer
        value as '-1'") nor "names no host".
        """
        cases = [
            ("ws://::1:57721/", "'ws://::1:57721/': an IPv6 address goes in brackets: ws://[::1]:57721/"),
            ("ws://::1/", "'ws://::1/': an IPv6 address goes in brackets: ws://[::1]/"),
            ("wss://2001:db8::1/p", "'wss://2001:db8::1/p': an IPv6 address goes in brackets: wss://[2001:db8::1]/p"),
            ("ws://[::1/", "'ws://[::1/': brackets in the host must enclose an IPv6 address, as in ws://[::1]:1234/"),
            ("ws://h]:1/", "'ws://h]:1/': brackets in the host must enclose an IPv6 address, as in ws://[::1]:1234/"),
            ("ws://h:-1/", "'ws://h:-1/': the port must be a number from 1 to 65535, not '-1'"),
            ("ws://h:abc/", "'ws://h:abc/': the port must be a number from 1 to 65535, not 'abc'"),
            ("ws://h:99999/", "'ws://h:99999/': the port must be a number from 1 to 65535, not '99999'"),
            ("ws://[::1]:x/", "'ws://[::1]:x/': the port must be a number from 1 to 65535, not 'x'"),
            # Credentials, which pingproto does not send, left out of the
            # message that refuses them.
            ("wss://user:secret@h:1234/p", "'wss://h:1234/p': give the URL without a user name or password "
             "(pingproto sends none)"),
            ("ws://user@h/", "'ws://h/': give the URL without a user name or password (pingproto sends none)"),
            # Before any other check quotes the URL whole.
            ("ws://u:secret@h:1/#x", "'ws://h:1/#x': give the URL without a user name or password "
             "(pingproto sends none)"),
            ("ws://u:secret@h:1/ x", "'ws://h:1/ x': give the URL without a user name or password "
             "(pingproto sends none)"),
            ("ws://h\u2100x:1/", "'ws://h\u2100x:1/': the host has characters that read as others once normalized"),
            # Credentials in a URL urlsplit refuses too.
            ("wss://user:hunter2@[example.com]:1234/", "'wss://[example.com]:1234/': give the URL without a user "
             "name or password (pingproto sends none)"),
            ("ws://us\uff0fer:secret@host/", "'ws://host/': give the URL without a user name or password "
             "(pingproto sends none)"),
        ]
        for url, message in cases:
            e = self.assertRaises(ValueError, check_ws_url, url)
            self.assertEqual(str(e), message)

    def test_lowest_and_highest_ports(self) -> None:
        """
        Ports 1 and 65535 are accepted.
        """
        for url in ("ws://h:1/", "wss://h:65535/"):
            self.assertEqual(check_ws_url(url), url)

    def test_control_characters(self) -> None:
        """
        A C0 control, DEL, a C1 control or another unprintable character
        anywhere in the URL is refused, not sent to the server; the message
        shows it escaped.
        """
        for url in ("ws://h:1/\x01", "ws://h\x1b:1/", "\x01ws://h:1/", "ws://h:1/\x7f", "ws://h:1/\x9b",
                    "ws://h:1/a\u200bb"):
            e = self.assertRaises(ValueError, check_ws_url, url)
            self.assertEqual(str(e), f"{url!r}: a URL cannot have control or other unprintable characters")
            self.assertTrue(str(e).isprintable())

    def test_non_ascii_host(self) -> None:
        """
        Printable characters beyond ASCII are not control characters: an
        internationalized host name is accepted.
        """
        self.assertEqual(check_ws_url("ws://b\u00fccher.example:1/"), "ws://b\u00fccher.example:1/")


class IsLoopbackEndpointTests(SynchronousTestCase):
    """
    L{is_loopback_endpoint} says whether an endpoint string is reachable
    only from this machine.
    """

    def test_tcp_ipv4_loopback(self) -> None:
        """
        TCP bound to 127.0.0.1, or any other 127/8 address, is loopback.
        """
        self.assertTrue(is_loopback_endpoint("tcp:1234:interface=127.0.0.1"))
        self.assertTrue(is_loopback_endpoint("tcp:1234:interface=127.9.8.7"))

    def test_tcp_positional_interface(self) -> None:
        """
        The interface given positionally counts like the keyword form, in
        the order Twisted reads each kind's fields: tcp:port:interface and
        tcp6:port:backlog:interface (tcp:1234:50:127.0.0.1 is interface
        50, backlog 127.0.0.1, which Twisted refuses).
        """
        self.assertTrue(is_loopback_endpoint("tcp:1234:127.0.0.1"))
        self.assertFalse(is_loopback_endpoint("tcp:1234:0.0.0.0"))
        self.assertTrue(is_loopback_endpoint(r"tcp6:1234:50:\:\:1"))
        self.assertFalse(is_loopback_endpoint(r"tcp6:1234:50:\:\:"))
        self.assertFalse(is_loopback_endpoint("tcp:1234:50:127.0.0.1"))

    def test_tcp6_ipv6_loopback(self) -> None:
        """
        TCP6 bound to ::1, written with escaped colons, is loopback.
        """
        self.assertTrue(is_loopback_endpoint(r"tcp6:1234:interface=\:\:1"))

    def test_localhost(self) -> None:
        """
        The interface name "localhost" is loopback.
        """
        self.assertTrue(is_loopback_endpoint("tcp:1234:interface=localhost"))

    def test_kind_is_case_insensitive(self) -> None:
        """
        "TCP" is read as "tcp".
        """
        self.assertTrue(is_loopback_endpoint("TCP:1234:interface=127.0.0.1"))

    def test_no_interface(self) -> None:
        """
        TCP without an interface listens everywhere, so it is public.
        """
        self.assertFalse(is_loopback_endpoint("tcp:1234"))
        self.assertFalse(is_loopback_endpoint("tcp6:1234"))

    def test_any_address(self) -> None:
        """
        0.0.0.0, :: and a LAN address are public.
        """
        self.assertFalse(is_loopback_endpoint("tcp:1234:interface=0.0.0.0"))
        self.assertFalse(is_loopback_endpoint(r"tcp6:1234:interface=\:\:"))
        self.assertFalse(is_loopback_endpoint("tcp:1234:interface=192.168.1.10"))

    def test_host_name(self) -> None:
        """
        A host name other than localhost is treated as public, even one
        that begins with "localhost" (a public name anyone may register
        under a domain of theirs).
        """
        self.assertFalse(is_loopback_endpoint("tcp:1234:interface=example.com"))
        self.assertFalse(is_loopback_endpoint("tcp:1234:interface=localhost.example.com"))
        self.assertFalse(is_loopback_endpoint("tcp:1234:interface=localhostile"))

    def test_unix(self) -> None:
        """
        A UNIX socket is reachable only from this machine.
        """
        self.assertTrue(is_loopback_endpoint("unix:/run/pingproto.sock"))

    def test_behindProxy(self) -> None:
        """
        Behind haproxy:, the endpoint it wraps decides: loopback or not.
        """
        self.assertTrue(is_loopback_endpoint("haproxy:tcp:1234:interface=127.0.0.1"))
        self.assertTrue(is_loopback_endpoint("haproxy:unix:/run/p.sock"))
        self.assertFalse(is_loopback_endpoint("haproxy:tcp:1234"))
        self.assertEqual([behind_proxy(d) for d in ("HAProxy:tcp:1", "tcp:1", "unix:/haproxy")], [True, False, False])

    def test_systemd(self) -> None:
        """
        An inherited systemd socket could be anything, so it is public.
        """
        self.assertFalse(is_loopback_endpoint("systemd:domain=INET:index=0"))


class TlsEndpointKindTests(SynchronousTestCase):
    """
    L{tls_endpoint_kind} finds endpoints that would do TLS of their own.
    """

    def test_tls_kinds(self) -> None:
        """
        ssl: and tls:, in any case, and either behind haproxy: or inside
        autobahn:, are TLS endpoints; tcp:, unix:, systemd: and haproxy:tcp:
        are not.
        """
        cases = {
            "ssl:443:privateKey=k.pem": "ssl",
            "SSL:443": "ssl",
            "tls:/etc/certs:443": "tls",
            "haproxy:ssl:443:privateKey=k.pem": "ssl",
            "haproxy:haproxy:tls:/etc/certs": "tls",
            "autobahn:ssl\\:443\\:privateKey\\=k.pem:url=ws\\://localhost": "ssl",
            "tcp:443": None,
            "tcp6:443:interface=\\:\\:1": None,
            "unix:/run/p.sock": None,
            "systemd:domain=INET:index=0": None,
            "haproxy:tcp:443": None,
        }
        for description, kind in cases.items():
            self.assertEqual(tls_endpoint_kind(description), kind, description)


class ListenDescriptionsTests(SynchronousTestCase):
    """
    L{listen_descriptions} builds endpoint strings and refuses unsafe or
    contradictory options.
    """

    def test_default(self) -> None:
        """
        With no options the server listens on tcp:1234:interface=127.0.0.1,
        with a listen queue of 1024 instead of Twisted's 50.
        """
        self.assertEqual(
            listen_descriptions(None, None, [], tls=False, no_tls=False),
            ["tcp:1234:interface=127.0.0.1:backlog=1024"],
        )
        self.assertEqual((DEFAULT_PORT, DEFAULT_INTERFACE), (1234, "127.0.0.1"))

    def test_port_short_form(self) -> None:
        """
        --port alone keeps the default loopback interface.
        """
        self.assertEqual(
            listen_descriptions(8080, None, [], tls=False, no_tls=False),
            ["tcp:8080:interface=127.0.0.1:backlog=1024"],
        )

    def test_port_zero(self) -> None:
        """
        --port 0 is kept as 0, not replaced by the default port.
        """
        self.assertEqual(
            listen_descriptions(0, None, [], tls=False, no_tls=False),
            ["tcp:0:interface=127.0.0.1:backlog=1024"],
        )

    def test_interface_short_form(self) -> None:
        """
        --interface alone keeps the default port.
        """
        self.assertEqual(
            listen_descriptions(None, "127.0.0.2", [], tls=False, no_tls=False),
            ["tcp:1234:interface=127.0.0.2:backlog=1024"],
        )

    def test_ipv6_interface(self) -> None:
        """
        An IPv6 interface selects tcp6 and has its colons escaped.
        """
        self.assertEqual(
            listen_descriptions(4321, "::1", [], tls=False, no_tls=False),
            [r"tcp6:4321:interface=\:\:1:backlog=1024"],
        )

    def test_listen_passed_through(self) -> None:
        """
        --listen values are returned as given, in order.
        """
        listen = ["tcp:1234:interface=127.0.0.1", "unix:/run/ping.sock"]
        self.assertEqual(
            listen_descriptions(None, None, listen, tls=False, no_tls=False), listen
        )

    def test_listen_twice(self) -> None:
        """
        One address given twice to --listen, however it is spelt, is an
        error: without workers the second would fail to bind, with them
        both would be served.
        """
        for first, again in [
            ("tcp:1234:interface=127.0.0.1", "tcp:1234:interface=127.0.0.1"),
            ("tcp:1234:interface=127.0.0.1", "tcp:port=1234:interface=127.0.0.1"),
            ("tcp:1234:127.0.0.1", "haproxy:tcp:interface=127.0.0.1:port=1234"),
            ("unix:/run/p.sock", "unix:/run/p.sock"),
            ("unix:/run/p.sock", "haproxy:UNIX:address=/run/p.sock"),
            ("systemd:domain=INET:index=0", "systemd:index=0:domain=INET"),
            ("tcp:1234", "tcp:1234:interface=0.0.0.0"),
            ("tcp6:1234", "tcp6:1234:interface=0\\:\\:0"),
        ]:
            e = self.assertRaises(
                ValueError, listen_descriptions, None, None, [first, "unix:/run/other.sock", again],
                tls=False, no_tls=False,
            )
            self.assertEqual(str(e), f"--listen {again!r} is the address of --listen {first!r} again")
        # Overlapping: one of them on every address of the other's family.
        for first, again, wildcard in [
            ("tcp:1234:interface=127.0.0.1", "tcp:01234", "0.0.0.0 takes every IPv4 address"),
            ("tcp:1234:interface=\\:\\:", "tcp6:1234:interface=\\:\\:1", ":: takes every IPv6 address"),
            ("tcp6:1234:interface=\\:\\:1", "tcp6:1234", ":: takes every IPv6 address"),
            ("tcp6:1234:interface=0\\:\\:0", "tcp6:1234:interface=\\:\\:1", ":: takes every IPv6 address"),
        ]:
            e = self.assertRaises(
                ValueError, listen_descriptions, None, None, [first, again], tls=True, no_tls=False
            )
            self.assertEqual(
                str(e), f"--listen {again!r} overlaps --listen {first!r}: {wildcard} on the port; give one of the two"
            )
        distinct = [
            "tcp:1234:interface=127.0.0.1",
            "tcp:1235:interface=127.0.0.1",
            "tcp6:1234:interface=\\:\\:1",
            "tcp:1234:interface=127.0.0.2",
            # Port 0: a port of its own each.
            "tcp:0",
            "tcp:0:interface=127.0.0.1",
            # Both families, as a host with net.ipv6.bindv6only=1 needs.
            "tcp:4443",
            "tcp6:4443",
        ]
        self.assertEqual(listen_descriptions(None, None, distinct, tls=True, no_tls=False), distinct)

    def test_listen_with_port(self) -> None:
        """
        --listen together with --port is an error pointing at --listen.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, 1234, None,
            ["tcp:1234:interface=127.0.0.1"], tls=False, no_tls=False,
        )
        self.assertIn("--listen replaces --port and --interface", str(e))

    def test_listen_with_interface(self) -> None:
        """
        --listen together with --interface is an error too.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, None, "127.0.0.1",
            ["tcp:1234:interface=127.0.0.1"], tls=False, no_tls=False,
        )
        self.assertIn("--listen replaces --port and --interface", str(e))

    def test_tls_and_no_tls(self) -> None:
        """
        --tls-dir and --no-tls together are a contradiction.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, None, None, [], tls=True, no_tls=True
        )
        self.assertEqual(str(e), "--tls-dir and --no-tls contradict each other; give one")

    def test_plain_on_public_refused(self) -> None:
        """
        Plain ws:// on 0.0.0.0 without --no-tls is refused, naming the
        endpoint and the two ways out.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, 1234, "0.0.0.0", [], tls=False, no_tls=False
        )
        message = str(e)
        self.assertIn("refusing to serve plain ws://", message)
        self.assertIn("'tcp:1234:interface=0.0.0.0:backlog=1024'", message)
        self.assertIn("--tls-dir", message)
        self.assertIn("--no-tls", message)

    def test_plain_public_listen_refused(self) -> None:
        """
        Among several --listen values, the public one is named in the refusal.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, None, None,
            ["tcp:1234:interface=127.0.0.1", "tcp:443"], tls=False, no_tls=False,
        )
        self.assertIn("'tcp:443'", str(e))

    def test_plain_inherited_refused(self) -> None:
        """
        An inherited socket is refused plain as public whatever it is bound
        to, and the message says so rather than that it is not loopback:
        systemd may have bound it to loopback.
        """
        e = self.assertRaises(
            ValueError, listen_descriptions, None, None, ["systemd:domain=INET:index=0"], tls=False, no_tls=False
        )
        self.assertTrue(
            str(e).startswith(
                "refusing to serve plain ws:// on 'systemd:domain=INET:index=0': an inherited socket counts as "
                "public, whatever it is bound to now: give --tls-dir DIR"
            ),
            str(e),
        )

    def test_plain_on_public_with_no_tls(self) -> None:
        """
        --no-tls allows plain ws:// on a public address.
        """
        self.assertEqual(
            listen_descriptions(80, "0.0.0.0", [], tls=False, no_tls=True),
            ["tcp:80:interface=0.0.0.0:backlog=1024"],
        )

    def test_public_with_tls(self) -> None:
        """
        A public address is allowed when TLS is served.
        """
        self.assertEqual(
            listen_descriptions(None, None, ["tcp:443"], tls=True, no_tls=False),
            ["tcp:443"],
        )

    @settings(deadline=None)
    @given(
        port=st.integers(min_value=0, max_value=65535),
        host=st.one_of(
            st.just("localhost"),
            st.just("::1"),
            st.ip_addresses(network="127.0.0.0/8").map(str),
        ),
    )
    def test_loopback_descriptions_parse(self, port: int, host: str) -> None:
        """
        For any port and loopback host, the plain description is accepted
        and parses with serverFromString into a TCP endpoint on that very
        port and interface.
        """
        [description] = listen_descriptions(port, host, [], tls=False, no_tls=False)
        endpoint = serverFromString(MemoryReactor(), description)
        expected = TCP6ServerEndpoint if ":" in host else TCP4ServerEndpoint
        self.assertIsInstance(endpoint, expected)
        self.assertEqual(endpoint._port, port)
        self.assertEqual(endpoint._interface, host)

    @settings(deadline=None)
    @given(
        port=st.integers(min_value=0, max_value=65535),
        address=st.ip_addresses(),
    )
    def test_any_address_with_tls_parses(
        self, port: int, address: ipaddress.IPv4Address | ipaddress.IPv6Address
    ) -> None:
        """
        With TLS any IPv4 or IPv6 address is allowed, and the escaping keeps
        the interface intact through serverFromString.
        """
        [description] = listen_descriptions(
            port, str(address), [], tls=True, no_tls=False
        )
        endpoint = serverFromString(MemoryReactor(), description)
        self.assertEqual(endpoint._port, port)
        self.assertEqual(endpoint._interface, str(address))
        self.assertEqual(is_loopback_endpoint(description), address.is_loopback)
