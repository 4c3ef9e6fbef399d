"""
The live page as the package ships it, as C{pingproto app} hands it out,
and as the server answers C{GET /app} over a real loopback listener.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import sys
from urllib.parse import unquote, urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import SynchronousTestCase

from pingproto.cli import main
from pingproto.client import client_endpoint
from pingproto.server import PLAIN_ANSWER
from pingproto.webapp import check_server, content_security_policy, data_url, page, preset

from .test_endtoend import Exchange, ServerTestCase

EMPTY_PRESET = b'<meta name="pingproto-server" content="">'


def split_response(response: bytes) -> tuple[str, dict[str, str], bytes]:
    """
    The status line, the headers (names in lower case) and the body of a
    whole HTTP/1.1 response.
    """
    head, _, body = response.partition(b"\r\n\r\n")
    status, *lines = head.decode("ascii").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def inline(document: bytes, tag: bytes) -> list[bytes]:
    return re.findall(rb"<" + tag + rb">(.*?)</" + tag + rb">", document, re.DOTALL)


class PageTests(SynchronousTestCase):
    def test_selfContained(self) -> None:
        """
        The page loads nothing from anywhere: no script, style, font or
        image by URL, and its own policy forbids fetching any, so it works
        from a file or a data: URL with no network but the WebSocket.
        """
        document = page()
        self.assertTrue(document.startswith(b"<!DOCTYPE html>"))
        self.assertIsNone(re.search(rb"(?i)<(script|img|iframe|object|embed|audio|video)[^>]+src=", document))
        for style in inline(document, b"style"):
            self.assertIsNone(re.search(rb"(?i)@import|url\(", style))
        for href in re.findall(rb'(?i)href="([^"]*)"', document):
            self.assertTrue(href.startswith(b"data:"), href)
        self.assertIn(b"default-src 'none'", document)
        self.assertIn(b"connect-src ws: wss:", document)
        self.assertEqual(len(inline(document, b"script")), 1)
        self.assertEqual(len(inline(document, b"style")), 1)

    def test_onePresetSlot(self) -> None:
        """
        The shipped page has exactly one empty preset tag for C{preset} to
        fill.
        """
        self.assertEqual(page().count(EMPTY_PRESET), 1)


    def test_oneColourPerMeaning(self) -> None:
        """
        The legend (the style's C{--NAME} colours) and the canvas (the
        script's C{C.NAME}) paint each thing in the same colour, the four
        states as the page promises: connecting green, open blue, closing
        orange, closed red.  Both lists are written out by hand.
        """
        document = page()
        legend = dict(re.findall(rb"--([a-z-]+): *(#[0-9a-f]{6})", inline(document, b"style")[0]))
        canvas = dict(re.findall(rb'([A-Za-z]+): "(#[0-9a-f]{6})"', inline(document, b"script")[0]))
        names = {
            b"connecting": "#16a34a",
            b"open": "#2563eb",
            b"closing": "#ea580c",
            b"closed": "#dc2626",
            b"flatline": None,
            b"waiting": None,
            b"lost": None,
            b"lost-cap": None,
        }
        for name, expected in names.items():
            key = re.sub(rb"-([a-z])", lambda m: m.group(1).upper(), name)
            self.assertEqual(legend[name], canvas[key], name)
            if expected is not None:
                self.assertEqual(legend[name].decode(), expected, name)
        self.assertEqual(canvas[b"reply"], canvas[b"open"], "the legend draws a reply in the open colour")

class CheckServerTests(SynchronousTestCase):
    def test_accepted(self) -> None:
        """
        host:port, a bare host, a path, an IPv6 address and ws:// or wss://
        URLs are servers the page can connect to.
        """
        for server in (
            "example.com:1234",
            "example.com",
            "127.0.0.1:1234/sock/websocket",
            "[::1]:1234",
            "ws://127.0.0.1:1234/",
            "wss://example.com:443/sock/websocket",
        ):
            self.assertEqual(check_server(f"  {server} "), server)

    def test_refused(self) -> None:
        """
        What the page could not connect to is refused with the reason.
        """
        cases = [
            ("", "not a host:port"),
            ("a b:1", "not a host:port"),
            # urlsplit would drop these silently, and connect elsewhere.
            ("exa\tmple.com:1234", "not a host:port"),
            ("example.com:12\n34", "not a host:port"),
            ("ws://exa\rmple.com:1234/", "not a host:port"),
            ("http://example.com/", "not http://"),
            ("wss://h:1/#x", "fragment"),
            ("h:1#x", "fragment"),
            ("h:99999", "'h:99999': the port must be a number from 1 to 65535, not '99999'"),
            # In pingproto's words, quoting what was given.
            ("::1:1234", "'::1:1234': an IPv6 address goes in brackets: [::1]:1234"),
            ("[::1", "'[::1': brackets in the host must enclose an IPv6 address"),
            ("wss://:1/", "names no host"),
            ("h:0", "port 0 cannot be connected to"),
            # As pingproto ping refuses them: the page would send them on.
            ("h:1/\x01", "a URL cannot have control"),
            ("ws://h:1/\x9b", "a URL cannot have control"),
        ]
        for server, words in cases:
            with self.assertRaises(ValueError, msg=server) as caught:
                check_server(server)
            self.assertIn(words, str(caught.exception))
        # Credentials, refused before anything else quotes them.
        for server, bare in [
            ("https://user:hunter2@example.com/", "https://example.com/"),
            ("u:hunter2@h:1/ x", "h:1/ x"),
            ("wss://user:hunter2@[example.com]:1234/", "wss://[example.com]:1234/"),
        ]:
            with self.assertRaises(ValueError, msg=server) as caught:
                check_server(server)
            self.assertEqual(
                str(caught.exception), f"{bare!r}: give the URL without a user name or password (pingproto sends none)"
            )


class PresetTests(SynchronousTestCase):
    def test_preset(self) -> None:
        """
        The server goes into the preset tag, and nothing else changes: the
        script, and so the server's hash-based policy, is the same.
        """
        document = preset(page(), "wss://example.org:8443/sock/websocket")
        self.assertIn(b'<meta name="pingproto-server" content="wss://example.org:8443/sock/websocket">', document)
        self.assertNotIn(EMPTY_PRESET, document)
        self.assertEqual(inline(document, b"script"), inline(page(), b"script"))
        self.assertEqual(content_security_policy(document), content_security_policy(page()))

    def test_escaped(self) -> None:
        """
        A server that contains HTML's special characters cannot break out
        of the attribute.
        """
        document = preset(page(), 'wss://h:1/"><script>x</script>')
        self.assertIn(b'content="wss://h:1/&quot;&gt;&lt;script&gt;x&lt;/script&gt;"', document)
        self.assertEqual(len(inline(document, b"script")), 1)

    def test_onlyOnce(self) -> None:
        """
        A page that has been preset, or is not the page, is refused rather
        than silently left as it was.
        """
        once = preset(page(), "h:1")
        self.assertRaises(ValueError, preset, once, "h:2")
        self.assertRaises(ValueError, preset, b"<html></html>", "h:1")

    def test_badServer(self) -> None:
        """
        C{preset} checks the server as C{check_server} does.
        """
        self.assertRaises(ValueError, preset, page(), "http://h/")


class DataUrlTests(SynchronousTestCase):
    def test_roundTrip(self) -> None:
        """
        The data: URL is base64 HTML that decodes to the page, byte for
        byte, with no character a shell or an address bar would mangle.
        """
        url = data_url(page())
        prefix = "data:text/html;base64,"
        self.assertTrue(url.startswith(prefix))
        self.assertRegex(url[len(prefix) :], r"^[A-Za-z0-9+/]+=*$")
        self.assertEqual(base64.b64decode(url[len(prefix) :]), page())


def source_hash(text: bytes) -> str:
    """
    A policy's source for an inline element whose text is C{text}.
    """
    return "'sha256-" + base64.b64encode(hashlib.sha256(text).digest()).decode() + "'"


class PolicyTests(SynchronousTestCase):
    def test_hashes(self) -> None:
        """
        The policy allows each inline script and style by its SHA-256, as
        a browser computes it (after newline normalization), and nothing
        else but WebSocket connections.
        """
        document = b"<style>b{}</style><script>a()\r\n</script>"

        self.assertEqual(
            content_security_policy(document),
            f"default-src 'none'; script-src {source_hash(b'a()' + bytes([10]))}; "
            f"style-src {source_hash(b'b{}')}; "
            "connect-src ws: wss:; img-src data:; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'",
        )

    def test_bareCarriageReturns(self) -> None:
        """
        A page saved with bare CRs for line ends is hashed as the browser
        parses it, each CR an LF (two CRs two LFs, not one CRLF), so that
        its script and style are not blocked.
        """
        policy = content_security_policy(b"<style>b{\r}</style><script>a()\rb()\r\r</script>")
        self.assertIn(f"script-src {source_hash(b'a()' + bytes([10]) + b'b()' + bytes([10, 10]))};", policy)
        self.assertIn(f"style-src {source_hash(b'b{' + bytes([10]) + b'}')};", policy)

    def test_noInlineLoophole(self) -> None:
        """
        The page's policy names its script and style by hash and never
        allows arbitrary inline code or evaluation.
        """
        policy = content_security_policy(page())
        self.assertNotIn("unsafe", policy)
        self.assertEqual(policy.count("'sha256-"), 2)


class AppCommandTests(SynchronousTestCase):
    def run_app(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        self.patch(sys, "stdout", out)
        self.patch(sys, "stderr", err)
        status = main(["app", *args])
        return status, out.getvalue(), err.getvalue()

    def test_dataUrlPreset(self) -> None:
        """
        C{pingproto app --server HOST:PORT} prints one line: a data: URL of
        the page preset to that server, and nothing else to stdout.
        """
        status, out, err = self.run_app("--server", "127.0.0.1:1234")
        self.assertEqual(status, 0)
        self.assertEqual(out.count("\n"), 1)
        self.assertEqual(out.strip(), data_url(preset(page(), "127.0.0.1:1234")))
        self.assertEqual(err, "")

    def test_dataUrlWithoutServer(self) -> None:
        """
        Without --server the page is printed as shipped, with a note on
        stderr that it will start at example.com:1234.
        """
        status, out, err = self.run_app()
        self.assertEqual(status, 0)
        self.assertEqual(out.strip(), data_url(page()))
        self.assertIn("example.com:1234", err)

    def test_writeFile(self) -> None:
        """
        C{-o FILE} writes the preset page to FILE and prints its file://
        URL, ready to open.
        """
        path = os.path.abspath(self.mktemp() + ".html")
        status, out, err = self.run_app("--server", "wss://example.org/sock/websocket", "-o", path)
        self.assertEqual(status, 0)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), preset(page(), "wss://example.org/sock/websocket"))
        url = urlsplit(out.strip())
        self.assertEqual((url.scheme, unquote(url.path)), ("file", path))

    def test_writeStdout(self) -> None:
        """
        C{-o -} writes the page itself to stdout, for a pipe.
        """
        status, out, err = self.run_app("-s", "h:1", "-o", "-")
        self.assertEqual(status, 0)
        self.assertEqual(out.encode("utf-8"), preset(page(), "h:1"))

    def test_badServer(self) -> None:
        """
        A server the page cannot use is a usage error: status 2 and one
        line saying why.
        """
        status, out, err = self.run_app("--server", "https://example.org/")
        self.assertEqual(status, 2)
        self.assertEqual(out, "")
        self.assertTrue(err.startswith("pingproto app: --server 'https://example.org/': the page speaks"), err)

    def test_unwritable(self) -> None:
        """
        A file that cannot be written is reported with the reason and
        status 2, and nothing is printed as if it had worked.
        """
        path = os.path.join(self.mktemp(), "missing-dir", "page.html")
        status, out, err = self.run_app("-s", "h:1", "-o", path)
        self.assertEqual(status, 2)
        self.assertEqual(out, "")
        self.assertEqual(err, f"pingproto app: cannot write {path}: No such file or directory\n")


class ServedPageTests(ServerTestCase):
    """
    The page and the hint over a real wss:// listener on 127.0.0.1.
    """

    def get(self, target: bytes, method: bytes = b"GET", extra: bytes = b""):  # type: ignore[no-untyped-def]
        request = method + b" " + target + b" HTTP/1.1\r\nHost: localhost\r\n" + extra + b"\r\n"
        return self.plain(request).addCallback(split_response)

    @inlineCallbacks
    def test_app(self):  # type: ignore[no-untyped-def]
        """
        GET /app (with or without a query) is the page, as HTML, not to be
        cached without asking, not to be sniffed, and under a policy that
        runs only its own inline script and style and connects only to
        WebSockets.
        """
        for target in (b"/app", b"/app?host=example.org:1234"):
            status, headers, body = yield self.get(target)
            self.assertEqual(status, "HTTP/1.1 200 OK")
            self.assertEqual(body, page())
            self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
            self.assertEqual(headers["content-length"], str(len(page())))
            self.assertEqual(headers["cache-control"], "no-cache")
            self.assertEqual(headers["x-content-type-options"], "nosniff")
            self.assertEqual(headers["content-security-policy"], content_security_policy(page()))
            self.assertNotIn("server", headers)

    @inlineCallbacks
    def test_headApp(self):  # type: ignore[no-untyped-def]
        """
        HEAD /app gets the page's headers and no body.
        """
        status, headers, body = yield self.get(b"/app", b"HEAD")
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertEqual(headers["content-length"], str(len(page())))
        self.assertEqual(body, b"")

    @inlineCallbacks
    def test_otherMethodsGetHint(self):  # type: ignore[no-untyped-def]
        """
        Only GET and HEAD fetch the page; a POST to /app is answered like
        any other plain request.
        """
        status, headers, body = yield self.get(b"/app", b"POST", b"Content-Length: 0\r\n")
        self.assertEqual(body, PLAIN_ANSWER)

    @inlineCallbacks
    def test_hintLinksToApp(self):  # type: ignore[no-untyped-def]
        """
        The plain answer is still exactly the hint, and names the page in
        a Link header.
        """
        status, headers, body = yield self.get(b"/")
        self.assertEqual(body, PLAIN_ANSWER)
        self.assertEqual(headers["content-type"], "text/plain; charset=utf-8")
        self.assertEqual(headers["link"], '</app>; rel="alternate"; type="text/html"')

    @inlineCallbacks
    def test_browserHintLinksToApp(self):  # type: ignore[no-untyped-def]
        """
        A browser, which asks for HTML, is shown a link to the page above
        the same words; a script-free policy covers that answer.
        """
        status, headers, body = yield self.get(b"/", extra=b"Accept: text/html,application/xhtml+xml,*/*;q=0.8\r\n")
        self.assertEqual(status, "HTTP/1.1 200 OK")
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn(b'<a href="/app">', body)
        self.assertTrue(body.endswith(PLAIN_ANSWER))
        self.assertIn("default-src 'none'", headers["content-security-policy"])
        self.assertEqual(headers["vary"], "Accept")

    @inlineCallbacks
    def test_nullOrigin(self):  # type: ignore[no-untyped-def]
        """
        The page opened from a file or a data: URL sends "Origin: null";
        the server echoes for it as for any other origin.
        """
        url = self.url("/sock/websocket")
        factory = WebSocketClientFactory(url, origin="null")
        factory.protocol = Exchange
        factory.messages = [(b"1700000000123", False)]
        factory.done = Deferred()
        yield client_endpoint(reactor, url, self.caFile).connect(factory)
        replies, code = yield factory.done
        self.assertEqual((replies, code), (factory.messages, 1000))
