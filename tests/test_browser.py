"""
The live page in a real browser: Debian's chromium, driven by Playwright,
against a real pingproto server over wss:// on the trial reactor.

Playwright's sync API runs its own event loop, so each test runs the
browser side in a thread of its own (L{threads.deferToThread}) and reaches
back to the reactor with L{blockingCallFromThread} to stop the server,
start it again, or stall the link.  The browser trusts the test
certificate by its public key (C{--ignore-certificate-errors-spki-list}),
not by ignoring certificate errors.

Checks read the page's own state (C{window.pingproto}) and the pixels of
its graph.  Screenshots go to C{artifacts/} at the top of the source tree.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from twisted.internet import reactor, threads
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import blockingCallFromThread
from twisted.trial.unittest import TestCase

from pingproto.cli import main
from pingproto.server import EchoServerProtocol
from pingproto.tap import Options, build_service
from pingproto.testing import FaultProxy

from .tlsdir import write_tls_dir
from .waiting import sockets_closed

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
WAIT_MS = 15_000


def _missing() -> str | None:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is missing (pip install playwright; no browser download needed)"
    return None


MISSING = _missing()
# In CI a missing browser is a broken setup, not a reason to skip.
IN_CI = os.environ.get("CI") == "true"


def spki_sha256(cert_path: str) -> str:
    """
    The base64 SHA-256 of a certificate's SubjectPublicKeyInfo, as
    Chromium's C{--ignore-certificate-errors-spki-list} wants it.
    """
    with open(cert_path, "rb") as f:
        cert = x509.load_pem_x509_certificate(f.read())
    der = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode("ascii")


def rgb(colour: str) -> tuple[int, int, int]:
    return (int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16))


class Browser:
    """
    One page in a fresh Chromium profile, used from one thread only;
    collects what would show in the browser's console.
    """

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def wait(self, predicate: str, timeout: float = WAIT_MS) -> None:
        """
        Wait until the arrow function C{predicate} is true in the page (as
        a function: the page's policy rightly forbids eval).
        """
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_function(predicate, timeout=timeout)
        except PlaywrightTimeout:
            raise AssertionError(f"still not true after {timeout / 1000:g} s: {predicate}\n{self.describe()}") from None

    def describe(self) -> str:
        """
        What the page shows and has logged, for a failure message.
        """
        try:
            seen = self.js(
                "() => window.pingproto ? {state: pingproto.state, url: pingproto.url,"
                " samples: pingproto.samples, failedAttempts: pingproto.failedAttempts,"
                " notice: document.getElementById('notice').textContent,"
                " marks: pingproto.history.marks.map(m => m.k).join(' ')} : 'no window.pingproto'"
            )
        except Exception as e:
            seen = f"(cannot read the page: {e})"
        return f"page {self.page.url[:80]}: {seen}; console errors: {self.errors}"

    def js(self, expression: str, arg: Any = None) -> Any:
        return self.page.evaluate(expression, arg)

    def column(self, x: int) -> list[tuple[int, int, int, int]]:
        """
        The pixels of column C{x} of the graph, top to bottom, as RGBA.
        """
        data = self.js(
            "(x) => Array.from(document.getElementById('plot').getContext('2d')"
            ".getImageData(x, 0, 1, 1000).data)",
            x,
        )
        return [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]  # type: ignore[misc]

    def colour(self, name: str) -> tuple[int, int, int, int]:
        return (*rgb(self.js(f"pingproto.colors.{name}")), 255)

    def last(self, what: str, key: str, value: Any) -> dict[str, Any]:
        """
        The latest entry of the page's history (C{what}: pings or marks)
        whose C{key} is C{value}.
        """
        entries = [e for e in self.js(f"pingproto.history.{what}") if e[key] == value]
        if not entries:
            raise AssertionError(f"no {what} with {key}={value!r} in the page's history")
        return entries[-1]

    def screenshot(self, name: str) -> Path:
        """
        Save the page as a person sees it, and beside it (as NAME-graph.png)
        the graph at its own 1000x1000 pixels, layers and all, for a close
        look at single seconds.
        """
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path))
        graph = self.js(
            "() => { const out = document.createElement('canvas'); out.width = out.height = 1000;"
            " const ctx = out.getContext('2d');"
            " for (const id of ['grid', 'plot', 'overlay']) ctx.drawImage(document.getElementById(id), 0, 0);"
            " return out.toDataURL('image/png'); }"
        )
        path.with_name(path.stem + "-graph.png").write_bytes(base64.b64decode(graph.split(",", 1)[1]))
        return path


class BrowserTestCase(TestCase):
    """
    A pingproto server as C{twistd pingproto --listen tcp:0:interface=127.0.0.1
    --tls-dir DIR} builds it, and a way to drive Chromium against it.
    """

    skip = MISSING if MISSING and not IN_CI else None

    def setUp(self) -> Deferred[None]:
        if MISSING:
            self.fail(f"CI=true, so the browser tests must run, but {MISSING}")
        self.tlsdir = self.mktemp()
        write_tls_dir(self.tlsdir)
        self.spki = spki_sha256(os.path.join(self.tlsdir, "tls.cert"))
        return self.start_server(0)

    def start_server(self, port: int, tls: bool = True) -> Deferred[None]:
        """
        Listen on C{port} (0: any) of 127.0.0.1 with the test certificate,
        or over plain ws:// and http:// if not C{tls}.
        """
        options = Options()
        options.parseOptions(["--listen", f"tcp:{port}:interface=127.0.0.1", *(["--tls-dir", self.tlsdir] if tls else [])])
        service = build_service(options)
        service.startService()
        self.service = service
        self.listener = service.listeners[0]
        self.addCleanup(self.stop_server, service)

        # A Deferred of our own: whoever waits on it (trial, or a thread
        # in blockingCallFromThread) must not take the port out of the
        # service's, which stopService needs to stop listening.
        ready: Deferred[None] = Deferred()

        def bound(listening: Any) -> Any:
            self.port = listening.getHost().port
            ready.callback(None)
            return listening

        def failed(reason: Any) -> None:
            ready.errback(reason)

        self.listener._waitingForPort.addCallbacks(bound, failed)
        return ready

    @inlineCallbacks
    def stop_server(self, service: Any = None):  # type: ignore[no-untyped-def]
        """
        What a browser sees when the server process goes away: the listener
        closes and so does every connection, and this fires once they have.
        """
        service = service or self.service
        listener = service.listeners[0]
        if service.running:
            yield service.stopService()
        # The TLS wrapper is a WrappingFactory: it knows every connection.
        gone = sockets_closed(self, service.factory)
        for connection in list(listener.factory.protocols):
            connection.transport.abortConnection()
        yield gone

    @inlineCallbacks
    def proxy(self, delay_down: float = 0.0):  # type: ignore[no-untyped-def]
        """
        A L{FaultProxy} in front of the server, its echoes C{delay_down}
        seconds late, stopped after the test.
        """
        proxy = FaultProxy(reactor, "127.0.0.1", self.port)
        yield proxy.listen()
        self.addCleanup(proxy.stop)
        proxy.delay_down = delay_down
        return proxy

    def https(self, path: str = "/app", port: int | None = None) -> str:
        return f"https://127.0.0.1:{port or self.port}{path}"

    def browse(self, scenario: Callable[[Browser], T], back_forward_cache: bool = False) -> Deferred[T]:
        """
        Run C{scenario} with a page in a fresh Chromium, in a thread of its
        own; the browser is closed whatever happens.  Playwright turns
        Chromium's back/forward cache off unless C{back_forward_cache}.
        """
        return threads.deferToThread(self._browse, scenario, back_forward_cache)

    def _browse(self, scenario: Callable[[Browser], T], back_forward_cache: bool = False) -> T:
        from playwright.sync_api import sync_playwright

        # The profile goes with the browser: each one is over 2 MB.
        with (
            tempfile.TemporaryDirectory(prefix="pingproto-chromium-", ignore_cleanup_errors=True) as profile,
            sync_playwright() as playwright,
        ):
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=CHROMIUM,
                headless=True,
                viewport={"width": 1280, "height": 900},
                # Times read as in the United States ("03:04 AM"): the
                # axis's widest clock labels, the same on every machine.
                locale="en-US",
                args=[
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    f"--ignore-certificate-errors-spki-list={self.spki}",
                    # The test server is on loopback, which Chromium keeps a
                    # data: page (an opaque, "public" origin) from reaching
                    # unless a person allows it; a real server is public.
                    "--disable-features=LocalNetworkAccessChecks",
                ],
                ignore_default_args=["--disable-back-forward-cache"] if back_forward_cache else None,
            )
            try:
                page = context.pages[0] if context.pages else context.new_page()
                return scenario(Browser(page))
            finally:
                context.close()

    def on_reactor(self, f: Callable[..., Any], *args: Any) -> Any:
        """
        Call C{f} on the reactor from the browser's thread and wait for it
        (and for the Deferred it returns, if any).
        """
        return blockingCallFromThread(reactor, f, *args)

    def app_command(self, *args: str) -> str:
        """
        Run C{pingproto app ARGS} as the command line would; return what it
        printed.
        """
        out, saved = io.StringIO(), (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = out, io.StringIO()
        try:
            status = main(["app", *args])
        finally:
            sys.stdout, sys.stderr = saved
        self.assertEqual(status, 0)
        return out.getvalue().strip()

    def assert_replies_drawn(self, browser: Browser) -> None:
        """
        The page's last reply is on its graph: a bar in the reply colour
        rising from the bottom of its second's column, under an open
        state mark.
        """
        ping = browser.last("pings", "fate", "reply")
        column = browser.column(ping["x"])
        reply, open_ = browser.colour("reply"), browser.colour("open")
        self.assertEqual(column[-1], reply, f"bottom of column {ping['x']}")
        self.assertEqual(column[-3], reply)
        self.assertEqual(column[0], open_, f"state mark of column {ping['x']}")
        # Round trips on loopback are far under a second: the bar is short.
        self.assertEqual(column[500][3], 0)


class ServedPageTests(BrowserTestCase):
    def test_servedAtApp(self):  # type: ignore[no-untyped-def]
        """
        Opened at https://HOST:PORT/app, the page connects back to the
        same server over wss:// at /sock/websocket, draws each reply, fetches
        nothing but itself, breaks none of its own policy, and keeps its
        history across a reload.
        """
        page_url = self.https("/app")

        def scenario(browser: Browser) -> dict[str, Any]:
            response = browser.page.goto(page_url)
            assert response is not None and response.status == 200
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 3")
            found: dict[str, Any] = browser.js(
                "({field: document.getElementById('server').value, url: pingproto.url,"
                " stats: pingproto.stats, storage: pingproto.storage,"
                " status: document.getElementById('status').textContent})"
            )
            self.assert_replies_drawn(browser)
            found["requests"] = list(browser.requests)
            found["errors"] = list(browser.errors)
            before = browser.js("pingproto.samples")
            old = browser.last("pings", "fate", "reply")
            browser.page.reload()
            found["restored"] = browser.js("pingproto.samples") - before
            column = browser.column(old["x"])
            found["oldBar"] = column[-1] == browser.colour("reply")
            browser.wait("() => pingproto.state === 'open'")
            browser.screenshot("app-served.png")
            return found

        def check(found: dict[str, Any]) -> None:
            self.assertEqual(found["field"], f"127.0.0.1:{self.port}")
            self.assertEqual(found["url"], f"wss://127.0.0.1:{self.port}/sock/websocket")
            self.assertEqual(found["status"], "Open")
            stats = found["stats"]
            self.assertGreaterEqual(stats["count"], 3)
            self.assertEqual(stats["lost"], 0)
            self.assertLess(0, stats["min"])
            self.assertLessEqual(stats["min"], stats["median"])
            self.assertLessEqual(stats["median"], stats["p95"])
            self.assertLessEqual(stats["p95"], stats["max"])
            self.assertLess(stats["max"], 1000)
            self.assertEqual((stats["disconnects"], stats["flatlines"]), (0, 0))
            self.assertEqual(found["storage"], "localStorage")
            self.assertEqual(found["requests"], [page_url])
            self.assertEqual(found["errors"], [])
            self.assertGreaterEqual(found["restored"], 0)
            self.assertTrue(found["oldBar"], "a reply from before the reload is drawn after it")

        return self.browse(scenario).addCallback(check)


    @inlineCallbacks
    def test_plainServersOwnPage(self):  # type: ignore[no-untyped-def]
        """
        At a plain server's /app (C{twistd -n pingproto}'s default), the
        page says under its field what it does: its own host:port opens
        ws://, not the wss:// a bare host:port means elsewhere.
        """
        yield self.stop_server()
        yield self.start_server(0, tls=False)

        def scenario(browser: Browser) -> tuple[str, str]:
            browser.page.goto(f"http://127.0.0.1:{self.port}/app")
            browser.wait("() => pingproto.state === 'open'")
            return browser.js("pingproto.url"), browser.page.locator("#help").text_content() or ""

        url, help_text = yield self.browse(scenario)
        self.assertEqual(url, f"ws://127.0.0.1:{self.port}/sock/websocket")
        self.assertIn(f"127.0.0.1:{self.port}, this page's own server, its ws://", help_text)


class WireFormatTests(BrowserTestCase):
    # Each send moves the page's wall clock (Date.now) a second on.
    SKEWED_CLOCK = """
        (() => {
          const realNow = Date.now.bind(Date);
          const send = WebSocket.prototype.send;
          let skew = 0;
          Date.now = () => realNow() + skew;
          WebSocket.prototype.send = function (data) { send.call(this, data); skew += 1000; };
        })();
    """

    def test_classicWireFormat(self):  # type: ignore[no-untyped-def]
        """
        The page sends its wall clock, C{Date.now()}, as decimal text (what
        any echo server, and the original SockJS raw endpoint, answers),
        and times each round trip with C{performance.now()}: a wall clock
        that moves a second on at every send leaves the round trips on
        loopback far under a second.
        """

        def scenario(browser: Browser) -> dict[str, Any]:
            sent: list[Any] = []
            browser.page.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
            browser.page.add_init_script(self.SKEWED_CLOCK)
            browser.page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 3")
            return {
                "sent": list(sent),
                "pings": browser.js("pingproto.history.pings"),
                "stats": browser.js("pingproto.stats"),
                "errors": list(browser.errors),
            }

        def check(found: dict[str, Any]) -> None:
            sent, stats = found["sent"], found["stats"]
            self.assertGreaterEqual(len(sent), 3)
            for text in sent:
                self.assertRegex(text, r"^[1-9][0-9]{12}$")
            # Each is the page's own time of that ping, a second or more
            # after the one before on the skewed clock.
            self.assertEqual(sent, [str(p["t"]) for p in found["pings"]][: len(sent)])
            self.assertTrue(all(int(b) - int(a) >= 1000 for a, b in zip(sent, sent[1:])), sent)
            self.assertGreaterEqual(stats["count"], 3)
            self.assertLess(0, stats["min"])
            self.assertLess(stats["max"], 500)
            self.assertEqual(found["errors"], [])

        return self.browse(scenario).addCallback(check)


class RoundTripTests(BrowserTestCase):
    # Every label the page writes on its canvas takes 10 ms, as drawing may
    # on a slow machine: the axes' labels, redrawn each second, make some
    # 80 ms of drawing a second.  window.slowDrawing says how much so far.
    SLOW_DRAWING = """
        (() => {
          const fillText = CanvasRenderingContext2D.prototype.fillText;
          window.slowDrawing = { ms: 0 };
          CanvasRenderingContext2D.prototype.fillText = function (...args) {
            const start = performance.now();
            while (performance.now() < start + 10) {}
            window.slowDrawing.ms += performance.now() - start;
            return fillText.apply(this, args);
          };
        })();
    """

    def test_drawingNotTimed(self):  # type: ignore[no-untyped-def]
        """
        A round trip is the link's, not the page's own drawing: with the
        page slow to draw, pings on loopback still come back in a small
        part of the time it draws each second.  (An echo that arrives while
        the page draws waits for it: the page sends each ping, then draws
        once the echo is back.)
        """

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.add_init_script(self.SLOW_DRAWING)
            browser.page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            before = browser.js("[window.slowDrawing.ms, performance.now()]")
            browser.wait("() => pingproto.samples >= 7")
            after = browser.js("[window.slowDrawing.ms, performance.now()]")
            return {
                "drawing_ms_per_s": (after[0] - before[0]) / ((after[1] - before[1]) / 1000),
                "pings": browser.js("pingproto.history.pings"),
                "errors": list(browser.errors),
            }

        def check(found: dict[str, Any]) -> None:
            drawing = found["drawing_ms_per_s"]
            self.assertGreater(drawing, 40, "the page draws slowly")
            rtts = sorted(p["rtt"] for p in found["pings"] if p["fate"] == "reply")
            median = rtts[len(rtts) // 2]
            self.assertLess(median, drawing / 4, f"round trips {rtts} ms, drawing {drawing:.0f} ms a second")
            self.assertEqual(found["errors"], [])

        return self.browse(scenario).addCallback(check)


class ControlsTests(BrowserTestCase):
    def test_fieldErrorStays(self):  # type: ignore[no-untyped-def]
        """
        A server typed wrong while the page is open is refused with a
        notice that stays, and a red field, while the echoes go on (the
        next echo cleared it within a second, leaving the old server's
        "Open" as if the typed one had been taken); put right, the notice
        goes.  A user name and password are refused without being shown
        again (the page connected without sending them, and showed,
        stored and put them in the address bar).
        """
        def scenario(browser: Browser) -> tuple[str, str | None, str, str | None]:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 1")
            field = page.get_by_label("Server")
            field.fill("ftp://127.0.0.1:2121/")
            field.press("Enter")
            samples = browser.js("pingproto.samples")
            browser.wait(f"() => pingproto.samples >= {samples + 2}")
            wrong = (page.locator("#notice").text_content() or "", field.get_attribute("aria-invalid"))
            # Credentials, which the page would never send, are refused
            # without being shown again.
            field.fill(f"ws://alice:s3cret@127.0.0.1:{self.port}/")
            field.press("Enter")
            browser.wait("() => document.querySelector('#notice').textContent.includes('user name')")
            self.assertEqual(
                page.locator("#notice").text_content(),
                f"Give the server without a user name or password (the page sends none): ws://127.0.0.1:{self.port}/",
            )
            self.assertNotIn("s3cret", page.url)
            field.fill(f"127.0.0.1:{self.port}")
            field.press("Enter")
            browser.wait("() => pingproto.state === 'open'")
            return (*wrong, page.locator("#notice").text_content() or "", field.get_attribute("aria-invalid"))

        def check(result: tuple[str, str | None, str, str | None]) -> None:
            self.assertEqual(result, ("Use ws:// or wss://, not ftp://", "true", "", None))

        return self.browse(scenario).addCallback(check)

    def test_shortWindow(self):  # type: ignore[no-untyped-def]
        """
        In a window too short for the graph's least width (a phone on its
        side, 740 x 304; a desktop window 300 px high), the graph keeps to
        its side of the statistics: it overflowed its figure and covered
        the panel's labels.
        """
        def scenario(browser: Browser) -> list[tuple[float, float]]:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open'")
            edges = []
            for width, height in ((740, 304), (1280, 300)):
                page.set_viewport_size({"width": width, "height": height})
                edges.append(browser.js(
                    "[document.querySelector('.graph').getBoundingClientRect().right,"
                    " document.querySelector('aside').getBoundingClientRect().left]"))
            return edges

        def check(edges: list[tuple[float, float]]) -> None:
            for graph_right, aside_left in edges:
                self.assertLessEqual(graph_right, aside_left)

        return self.browse(scenario).addCallback(check)

    def test_keyboardAndPhone(self):  # type: ignore[no-untyped-def]
        """
        Every control has a label and works from the keyboard: arrow keys
        switch the scale to log (redrawing the graph, remembered across a
        reload), and a server typed into the field is connected to on
        Enter and kept in the address.  On a phone-sized screen, down to
        320 px wide, nothing sticks out sideways.
        """
        other = f"wss://localhost:{self.port}/"

        def scenario(browser: Browser) -> None:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            page.get_by_role("radio", name="linear").focus()
            page.keyboard.press("ArrowRight")
            self.assertTrue(page.get_by_role("radio", name="log").is_checked())
            self.assertEqual(browser.js("pingproto.scale"), "log")
            # On the log scale (0.1 ms to 10 s) a bar is a light fill under
            # a solid cap at the round trip's height.
            reply = browser.last("pings", "fate", "reply")
            height = round(math.log10(reply["rtt"] / 0.1) / 5 * 1000)
            column = browser.column(reply["x"])
            self.assertGreater(height, 10, f"a round trip of {reply['rtt']} ms")
            self.assertEqual(column[-1], browser.colour("replyFill"))
            self.assertEqual(column[-height + 1], browser.colour("reply"))
            self.assertEqual(column[-height - 2][3], 0)
            page.reload()
            self.assertEqual(browser.js("pingproto.scale"), "log")

            field = page.get_by_label("Server")
            field.fill(other)
            field.press("Enter")
            browser.wait(f"() => pingproto.url === {other!r} && pingproto.state === 'open' && pingproto.samples >= 1")
            self.assertIn("host=", browser.js("location.hash"))
            self.assertEqual(page.get_by_role("button", name="Reconnect").count(), 1)

            for width, height in ((390, 844), (320, 640)):
                page.set_viewport_size({"width": width, "height": height})
                browser.wait(f"() => document.getElementById('plot').clientWidth < {width}")
                self.assertLessEqual(browser.js("document.documentElement.scrollWidth"), width)
            browser.screenshot("app-phone.png")

        return self.browse(scenario)


class AxisTests(BrowserTestCase):
    # Where the y axis's ticks and the graph's grid lines are on the page,
    # in CSS pixels from its top: the rows of the axis's last column that
    # are drawn (only ticks reach it; labels end 5 px short), and the rows
    # drawn across the overlay in three columns no two minute lines share.
    MARKS = """() => {
      const rows = (canvas, x) => {
        const data = canvas.getContext('2d').getImageData(x, 0, 1, canvas.height).data;
        const box = canvas.getBoundingClientRect(), found = [];
        for (let r = 0; r < canvas.height; r++) {
          if (data[4 * r + 3] > 0) found.push(box.top + (r + 0.5) * box.height / canvas.height);
        }
        return found;
      };
      const axis = document.getElementById('yaxis'), overlay = document.getElementById('overlay');
      const [a, b, c] = [100, 333, 777].map((x) => rows(overlay, x));
      return {ticks: rows(axis, axis.width - 1), grid: a.filter((y) => b.includes(y) && c.includes(y))};
    }"""

    def test_ticksOnGridLines(self):  # type: ignore[no-untyped-def]
        """
        Each tick of the y axis is level with its grid line, the top one
        (10 s, under the state strip) and the bottom one (on the graph's
        last row) included, on either scale and at a phone's width.
        """

        def marks(browser: Browser) -> tuple[list[float], list[float]]:
            found = browser.js(self.MARKS)
            ticks: list[list[float]] = []
            for y in found["ticks"]:
                if ticks and y - ticks[-1][-1] < 1.5:
                    ticks[-1].append(y)
                else:
                    ticks.append([y])
            return [sum(run) / len(run) for run in ticks], found["grid"]

        def scenario(browser: Browser) -> None:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open'")
            for width, height, scale in ((1280, 900, "linear"), (1280, 900, "log"), (320, 640, "log")):
                page.set_viewport_size({"width": width, "height": height})
                page.get_by_role("radio", name=scale).check()
                browser.wait(f"() => document.getElementById('plot').clientWidth < {width}")
                # A frame later, the axis has been redrawn for the new size.
                browser.js("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
                ticks, grid = marks(browser)
                where = f"{scale} scale at {width} px: ticks {ticks}, grid {grid}"
                self.assertGreaterEqual(len(ticks), 5, where)
                for y in ticks:
                    self.assertLessEqual(min(abs(y - g) for g in grid), 1, where)
                self.assertLessEqual(abs(ticks[0] - grid[0]), 1, where)
                self.assertLessEqual(abs(ticks[-1] - grid[-1]), 1, where)
            self.assertEqual(browser.errors, [])

        return self.browse(scenario)


    # The widths of the runs of ink on the x axis's clock-label row, runs
    # apart by 6 pixels or more, and how wide the locale writes a time.
    LABELS = """() => {
      const axis = document.getElementById('xaxis'), k = axis.height / axis.clientHeight;
      const data = axis.getContext('2d').getImageData(0, Math.round(8 * k), axis.width, Math.round(12 * k)).data;
      const rows = Math.round(12 * k), inked = [];
      for (let x = 0; x < axis.width; x++) {
        let ink = false;
        for (let r = 0; r < rows && !ink; r++) ink = data[4 * (r * axis.width + x) + 3] > 0;
        inked.push(ink);
      }
      const runs = [];
      let start = -1, last = -100;
      inked.forEach((ink, x) => {
        if (!ink) return;
        if (x - last > 6) { if (start >= 0) runs.push(last - start + 1); start = x; }
        last = x;
      });
      if (start >= 0) runs.push(last - start + 1);
      const ctx = document.createElement('canvas').getContext('2d');
      ctx.font = '12px system-ui, sans-serif';
      const label = ctx.measureText(new Date().toLocaleTimeString([], {hour: '2-digit', minute: '2-digit'})).width * k;
      return {runs, label};
    }"""

    def test_clockLabelsApart(self):  # type: ignore[no-untyped-def]
        """
        On a wide screen the clock labels under the graph stand apart,
        however wide the locale writes a time: "03:04 AM" labels ran into
        each other at 1920 px, spaced for a fixed 52 px.
        """

        def scenario(browser: Browser) -> dict[str, Any]:
            page = browser.page
            page.set_viewport_size({"width": 1920, "height": 1080})
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open'")
            browser.js("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
            found: dict[str, Any] = browser.js(self.LABELS)
            return found

        def check(found: dict[str, Any]) -> None:
            self.assertGreaterEqual(len(found["runs"]), 3, found)
            self.assertLessEqual(max(found["runs"]), found["label"] * 1.2 + 2, found)

        return self.browse(scenario).addCallback(check)


class UnhostedPageTests(BrowserTestCase):
    def connects(self, address: str, storage: str) -> Callable[[Browser], None]:
        def scenario(browser: Browser) -> None:
            browser.page.goto(address)
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            self.assertEqual(browser.js("pingproto.url"), f"wss://127.0.0.1:{self.port}/sock/websocket")
            self.assertEqual(browser.js("pingproto.storage"), storage)
            self.assert_replies_drawn(browser)
            self.assertEqual(browser.errors, [])

        return scenario

    def test_dataUrl(self):  # type: ignore[no-untyped-def]
        """
        The data: URL that C{pingproto app --server HOST:PORT} prints opens
        and pings wss://HOST:PORT/sock/websocket, with nothing to store its
        history in and nothing going wrong for it.
        """
        address = self.app_command("--server", f"127.0.0.1:{self.port}")
        self.assertTrue(address.startswith("data:text/html;base64,"))
        return self.browse(self.connects(address, "none"))

    def test_dataUrlParametersEdited(self):  # type: ignore[no-untyped-def]
        """
        Parameters edited in the address bar of the data: page, which may
        not reload itself, are not taken silently: the page asks for a
        reload, and goes on asking while the echoes come.
        """
        address = self.app_command("--server", f"127.0.0.1:{self.port}")

        def scenario(browser: Browser) -> str:
            browser.page.goto(address)
            browser.wait("() => pingproto.state === 'open'")
            browser.page.goto(address + "#flatline=3")
            browser.wait("() => document.getElementById('notice').textContent !== ''")
            # It stays while the echoes go on.
            samples = browser.js("pingproto.samples")
            browser.wait(f"() => pingproto.samples >= {samples + 2}")
            return browser.page.locator("#notice").text_content() or ""

        def check(notice: str) -> None:
            self.assertEqual(notice, "Reload the page for the settings after # to take effect.")

        return self.browse(scenario).addCallback(check)

    def test_file(self):  # type: ignore[no-untyped-def]
        """
        The file that C{pingproto app -o FILE} writes opens from disk at
        the file:// URL it prints, and pings the preset server.
        """
        path = os.path.abspath(self.mktemp() + ".html")
        address = self.app_command("--server", f"wss://127.0.0.1:{self.port}/sock/websocket", "-o", path)
        self.assertTrue(address.startswith("file:///"))
        return self.browse(self.connects(address, "localStorage"))


class ReconnectTests(BrowserTestCase):
    def test_crashedTabRestored(self):  # type: ignore[no-untyped-def]
        """
        Reopened after the tab crashed (its history as last saved, every
        5 s, with no goodbye), the page counts the time it watched up to
        the last echo it saved: the away mark came just after the last
        state change, so the replies since then showed no state above them
        and that time no watched time.
        """
        def scenario(browser: Browser) -> tuple[list[Any], list[dict[str, Any]], float]:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 7")
            key = "pingproto:v1:history:" + browser.js("pingproto.url")
            saved = browser.js(f"localStorage.getItem({json.dumps(key)})")
            page.goto(self.https("/elsewhere"))
            page.evaluate("([k, v]) => localStorage.setItem(k, v)", [key, saved])
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open'")
            return json.loads(saved)["p"], browser.js("pingproto.history.marks"), browser.js("pingproto.stats.observedSeconds")

        def check(result: tuple[list[Any], list[dict[str, Any]], float]) -> None:
            pings, marks, watched = result
            self.assertGreaterEqual(len(pings), 3, "the periodic save holds some pings")
            away = next(m for m in marks if m["k"] == "away")
            self.assertGreater(away["t"], pings[-1][0])
            self.assertGreaterEqual(watched, (pings[-1][0] - marks[0]["t"]) / 1000)

        return self.browse(scenario).addCallback(check)

    def test_backForwardCache(self):  # type: ignore[no-untyped-def]
        """
        Left for another page and brought back from Chromium's back/forward
        cache, which closes the page's WebSocket, the page counts no
        disconnect and shows no notice: the link did not fail.  It opens a
        new WebSocket at once and pings on.
        """
        def scenario(browser: Browser) -> list[Any]:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            page.evaluate("addEventListener('pageshow', (e) => { window.restored = e.persisted; })")
            page.goto(self.https("/elsewhere"))
            page.go_back(wait_until="commit")  # a page from the cache fires no load
            browser.wait("() => window.restored !== undefined && pingproto.state === 'open'")
            samples = page.evaluate("pingproto.samples")
            browser.wait(f"() => pingproto.samples > {samples}")
            result: list[Any] = page.evaluate(
                "[window.restored, pingproto.disconnects, document.getElementById('notice').textContent,"
                " pingproto.history.marks.filter((m) => m.lost).length]")
            return result

        def check(result: list[Any]) -> None:
            restored, disconnects, notice, lost = result
            self.assertTrue(restored, "the page came back from the back/forward cache")
            self.assertEqual((disconnects, notice, lost), (0, "", 0))

        return self.browse(scenario, back_forward_cache=True).addCallback(check)

    def test_serverGoneAndBack(self):  # type: ignore[no-untyped-def]
        """
        When the server goes away the page shows the closed state, in red
        on the graph, and the code and reason the server closed with, keeps
        trying on its own, saying so after that reason, and is open and drawing
        replies again soon after the server is back on the same port,
        counting one disconnect.
        """
        port = self.port

        def scenario(browser: Browser) -> None:
            browser.page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            self.on_reactor(self.stop_server)
            browser.wait("() => pingproto.state === 'closed'")
            closed = browser.last("marks", "k", "closed")
            self.assertTrue(closed["lost"])
            self.assertEqual(browser.column(closed["x"])[0], browser.colour("closed"))
            self.assertIn("Closed", browser.js("document.getElementById('status').textContent"))
            # The page says the server ended it, and how.
            self.assertEqual(
                browser.js("document.getElementById('notice').textContent"),
                "The server closed the connection (1001: server shutting down).",
            )
            # It retries while the server is down, still saying how it
            # ended (the first failed retry's notice replaced it)...
            browser.wait("() => pingproto.failedAttempts >= 1")
            notice = browser.js("document.getElementById('notice').textContent")
            self.assertTrue(
                notice.startswith("The server closed the connection (1001: server shutting down). Reconnecting: "),
                notice,
            )
            before = browser.js("pingproto.samples")
            self.on_reactor(self.start_server, port)
            # ...and comes back by itself, with no click.
            browser.wait(f"() => pingproto.state === 'open' && pingproto.samples >= {before + 2}")
            self.assertEqual(browser.js("pingproto.disconnects"), 1)
            self.assert_replies_drawn(browser)
            browser.screenshot("app-reconnect.png")

        return self.browse(scenario)


class PageRobustnessTests(BrowserTestCase):
    def test_retryKeepsServer(self):  # type: ignore[no-untyped-def]
        """
        The page's own reconnects go back to the server it was pinging: not
        to what is half typed in the field (nothing submitted), and not
        nowhere when the field is empty.
        """

        def drop_connections() -> None:
            for connection in list(self.listener.factory.protocols):
                connection.transport.abortConnection()

        def scenario(browser: Browser) -> dict[str, Any]:
            page = browser.page
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 2")
            url = browser.js("pingproto.url")
            for typed in ("exa", ""):
                page.get_by_label("Server").fill(typed)
                before = browser.js("pingproto.disconnects")
                self.on_reactor(drop_connections)
                browser.wait(f"() => pingproto.disconnects > {before}")
                browser.wait("() => pingproto.state === 'open'")
                self.assertEqual(browser.js("pingproto.url"), url, typed)
            # Saved every few seconds: only the server pinged is kept.
            browser.wait("() => localStorage.getItem('pingproto:v1:servers') !== null")
            return {
                "servers": browser.js("JSON.parse(localStorage.getItem('pingproto:v1:servers'))"),
                "errors": list(browser.errors),
            }

        def check(found: dict[str, Any]) -> None:
            self.assertEqual(found["servers"], [f"wss://127.0.0.1:{self.port}/sock/websocket"])
            self.assertEqual(found["errors"], [])

        return self.browse(scenario).addCallback(check)

    def test_corruptStoredServers(self):  # type: ignore[no-untyped-def]
        """
        A stored server list that is not a list (another page's, a hand
        edit) is ignored: no error, and switching servers still works.
        """
        other = f"wss://127.0.0.1:{self.port}/"

        def scenario(browser: Browser) -> list[str]:
            page = browser.page
            page.add_init_script("localStorage.setItem('pingproto:v1:servers', '{\"a\": 1}')")
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 1")
            field = page.get_by_label("Server")
            field.fill(other)
            field.press("Enter")
            browser.wait(f"() => pingproto.url === {other!r} && pingproto.state === 'open' && pingproto.samples >= 1")
            return list(browser.errors)

        return self.browse(scenario).addCallback(self.assertEqual, [])

    def test_parametersEditedInPlace(self):  # type: ignore[no-untyped-def]
        """
        Parameters edited after the C{#} of an open page (no reload: the
        same document) take effect.
        """

        def scenario(browser: Browser) -> None:
            browser.page.goto(self.https("/app") + "#flatline=0")
            browser.wait("() => pingproto.state === 'open' && pingproto.flatlineSeconds === 0")
            browser.js("location.hash = '#flatline=3'")
            browser.wait("() => window.pingproto && pingproto.flatlineSeconds === 3 && pingproto.state === 'open'")

        return self.browse(scenario)

    @inlineCallbacks
    def test_slowHandshakeShortFlatline(self):  # type: ignore[no-untyped-def]
        """
        A short flatline time does not cut connection attempts short: over
        a link whose answers come 1.5 s late (a TLS handshake and an
        upgrade of 3 s or more), the page with C{#flatline=2} still opens.
        """
        proxy = yield self.proxy(delay_down=1.5)
        address = self.https("/app") + f"#host=127.0.0.1:{proxy.port}&flatline=2"

        def scenario(browser: Browser) -> list[str]:
            browser.page.goto(address)
            browser.wait("() => pingproto.history.marks.some((m) => m.k === 'open')")
            return list(browser.errors)

        errors = yield self.browse(scenario)
        self.assertEqual(errors, [])

    # Fills the page's localStorage for real (once per tab), leaving room
    # for the page's one-byte probe but not for a history.
    FULL_STORAGE = """
        (() => {
          if (sessionStorage.getItem('filled')) return;
          sessionStorage.setItem('filled', '1');
          let i = 0;
          for (const size of [1 << 20, 1 << 14, 1 << 10, 64, 8]) {
            const chunk = 'x'.repeat(size);
            try { for (;;) localStorage.setItem('junk' + i++, chunk); } catch (e) {}
          }
          for (let k = 0; k < 3; k++) localStorage.removeItem('junk' + (--i - 1));
        })();
    """

    def test_storageFull(self):  # type: ignore[no-untyped-def]
        """
        With the browser's storage for the page full, the page keeps
        pinging and says that history is not being kept, not that it is.
        """

        def scenario(browser: Browser) -> str:
            browser.page.add_init_script(self.FULL_STORAGE)
            browser.page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 1")
            browser.wait("() => document.getElementById('storage').textContent.includes('not being kept')")
            return str(browser.js("document.getElementById('storage').textContent"))

        return self.browse(scenario).addCallback(
            self.assertEqual, "History is not being kept: this browser's storage for this page is full."
        )

    def test_nearlyAllLost(self):  # type: ignore[no-untyped-def]
        """
        Loss that is nearly all is not shown as all: one echo among 978
        pings (99.898 % lost) reads 99.9 %, not 100 %.
        """
        echo_only(self.service, lambda n: False)
        key = f"pingproto:v1:history:wss://127.0.0.1:{self.port}/sock/websocket"
        history = (
            "(() => { const now = Date.now(), p = [];"
            " for (let i = 978; i >= 1; i--) p.push(i === 900 ? [now - i * 1000, 1, 2.0] : [now - i * 1000, 0, 0]);"
            f" localStorage.setItem({key!r}, JSON.stringify({{v: 1, p, m: []}})); }})()"
        )

        def scenario(browser: Browser) -> str:
            browser.page.add_init_script(history)
            browser.page.goto(self.https("/app") + "#flatline=0")
            browser.wait("() => pingproto.state === 'open' && pingproto.stats.sent === 978")
            return str(browser.js("document.getElementById('s-loss').textContent"))

        return self.browse(scenario).addCallback(self.assertEqual, "99.9 %")

    # The page's clock, settable from the test: window.skewClock(ms).
    SKEWABLE_CLOCK = """
        (() => {
          const realNow = Date.now.bind(Date);
          let skew = 0;
          Date.now = () => realNow() + skew;
          window.skewClock = (ms) => { skew = ms; };
        })();
    """

    def test_clockSetBack(self):  # type: ignore[no-untyped-def]
        """
        A clock set back two minutes starts the graph and the figures
        afresh: nothing from the clock's future is counted or stays drawn.
        """

        def scenario(browser: Browser) -> dict[str, Any]:
            page = browser.page
            page.add_init_script(self.SKEWABLE_CLOCK)
            page.goto(self.https("/app"))
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 3")
            old = browser.last("pings", "fate", "reply")
            browser.js("window.skewClock(-120000)")
            browser.wait("() => pingproto.samples >= 2 && pingproto.history.pings.every((p) => p.t <= Date.now())")
            return {
                "oldColumn": browser.column(old["x"])[-1],
                "reply": browser.colour("reply"),
                "count": browser.js("pingproto.stats.count"),
                "samples": browser.js("pingproto.samples"),
            }

        def check(found: dict[str, Any]) -> None:
            self.assertNotEqual(found["oldColumn"], found["reply"], "the old bar is erased")
            self.assertEqual(found["count"], found["samples"])

        return self.browse(scenario).addCallback(check)


class FlatlineTests(BrowserTestCase):
    @inlineCallbacks
    def test_flatline(self):  # type: ignore[no-untyped-def]
        """
        When the link stalls (the connection stays open but nothing comes
        back), the page says "flatline" on the graph in its own colour
        after the set time, closes the connection and reconnects by
        itself once the link works again.
        """
        # A link slow enough for its replies to stand out in the picture.
        proxy = yield self.proxy(delay_down=0.12)
        address = self.https("/app") + f"#host=127.0.0.1:{proxy.port}&flatline=2"

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(address)
            browser.wait("() => pingproto.state === 'open' && pingproto.samples >= 4")
            self.assertEqual(browser.js("pingproto.url"), f"wss://127.0.0.1:{proxy.port}/sock/websocket")
            self.assertGreaterEqual(browser.js("pingproto.lastRtt"), 120)
            stalled_at = time.monotonic()
            self.on_reactor(proxy.stall)
            browser.wait("() => pingproto.flatlines === 1")
            detected_after = time.monotonic() - stalled_at
            flatline = browser.last("marks", "k", "flatline")
            column = browser.column(flatline["x"])
            magenta = browser.colour("flatline")
            found = {
                "detectedAfter": detected_after,
                "state": browser.js("pingproto.state"),
                "line": [column[0], column[500], column[-1]] == [magenta] * 3,
                "notice": browser.js("document.getElementById('notice').textContent"),
            }
            # While the link stays stalled, a new connection cannot open
            # either: the page gives up on it and tries again later.
            browser.wait("() => pingproto.failedAttempts >= 1")
            before = browser.js("pingproto.samples")
            self.on_reactor(proxy.resume)
            browser.wait(f"() => pingproto.state === 'open' && pingproto.samples >= {before + 3}")
            self.assert_replies_drawn(browser)
            found["stats"] = browser.js("pingproto.stats")
            browser.screenshot("app-screenshot.png")
            return found

        found = yield self.browse(scenario)
        self.assertGreaterEqual(found["detectedAfter"], 2.0)
        self.assertLess(found["detectedAfter"], 6.0)
        self.assertNotEqual(found["state"], "open")
        self.assertTrue(found["line"], "a full-height flatline line at the flatline's second")
        self.assertIn("Flatline", found["notice"])
        stats = found["stats"]
        self.assertEqual(stats["flatlines"], 1)
        self.assertEqual(stats["disconnects"], 1)
        self.assertGreaterEqual(stats["lost"], 1)


def echo_only(service: Any, answered: Callable[[int], bool]) -> None:
    """
    Make the server of C{service} leave unanswered each message whose
    number (from 1, over all its connections) C{answered} rejects: a real
    pingproto server that drops echoes, as a lossy path or a wedged server
    would.
    """
    count = 0

    def keep() -> bool:
        nonlocal count
        count += 1
        return answered(count)

    class DroppingEchoProtocol(EchoServerProtocol):
        # Both ways an echo leaves: the fast path and Autobahn's own.
        def send_back(self, payload: bytes, isBinary: bool) -> None:
            if keep():
                super().send_back(payload, isBinary)

        def sendMessage(self, payload: bytes, isBinary: bool = False, *args: Any, **kwargs: Any) -> None:
            if keep():
                super().sendMessage(payload, isBinary, *args, **kwargs)

    service.factory.protocol = DroppingEchoProtocol


class ReplyTimeoutTests(BrowserTestCase):
    @inlineCallbacks
    def test_lateEchoLost(self):  # type: ignore[no-untyped-def]
        """
        An echo later than the reply timeout is a lost ping when it comes,
        as with C{pingproto ping}, not a reply: on a link of 1.5 s round
        trips with C{#timeout=1.2} every ping is lost.
        """
        proxy = yield self.proxy(delay_down=1.5)
        address = self.https("/app") + f"#host=127.0.0.1:{proxy.port}&timeout=1.2&flatline=0"

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(address)
            browser.wait("() => pingproto.state === 'open' && pingproto.stats.lost >= 3")
            return browser.js("pingproto.stats")

        stats = yield self.browse(scenario)
        self.assertEqual(stats["count"], 0)
        self.assertGreaterEqual(stats["lost"], 3)

    def test_oneEchoDropped(self):  # type: ignore[no-untyped-def]
        """
        A ping whose echo never comes is lost after the reply timeout
        (C{#timeout=}), counted in the loss and drawn as lost, while the
        echoes after it keep the connection open: one dropped echo is
        neither a flatline nor a reconnect.
        """
        echo_only(self.service, lambda n: n != 3)
        address = self.https("/app") + "#timeout=2&flatline=3"

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(address)
            # Past the time a flatline would have come, had the dropped
            # ping been waited on until the socket closed.
            browser.wait("() => pingproto.samples >= 9")
            lost = browser.last("pings", "fate", "lost")
            column = browser.column(lost["x"])
            found = {
                "timeout": browser.js("pingproto.replyTimeoutSeconds"),
                "state": browser.js("pingproto.state"),
                "stats": browser.js("pingproto.stats"),
                "fates": [p["fate"] for p in browser.js("pingproto.history.pings")],
                "drawn": [column[0], column[500], column[-1]],
                "colours": [browser.colour("open"), browser.colour("lost"), browser.colour("lostCap")],
                "loss": browser.js("document.getElementById('s-loss').textContent"),
                "errors": list(browser.errors),
            }
            browser.screenshot("app-dropped-echo.png")
            return found

        def check(found: dict[str, Any]) -> None:
            self.assertEqual(found["timeout"], 2)
            self.assertEqual(found["state"], "open")
            stats = found["stats"]
            self.assertEqual((stats["lost"], stats["flatlines"], stats["disconnects"]), (1, 0, 0))
            self.assertEqual(found["fates"][:4], ["reply", "reply", "lost", "reply"])
            self.assertEqual(found["drawn"], found["colours"], "the lost ping's column: open strip, lost bar, its solid foot")
            self.assertNotEqual(found["loss"], "0 %")
            self.assertEqual(found["errors"], [])

        return self.browse(scenario).addCallback(check)

    def test_serverStopsEchoing(self):  # type: ignore[no-untyped-def]
        """
        With flatline detection off, a server that stops echoing shows as
        loss once the reply timeout passes, while the connection stays
        open, and only the pings within the timeout are waited on.  With
        it on, the pings lost to the timeout do not hide the silence: the
        flatline still comes at its time.
        """
        echo_only(self.service, lambda n: n <= 3)
        address = self.https("/app") + "#timeout=2&flatline=0"

        def scenario(browser: Browser) -> dict[str, Any]:
            page = browser.page
            page.goto(address)
            browser.wait("() => pingproto.stats.lost >= 3")
            # The panel is drawn once the second's echo is back, or given
            # up on: a moment after the ping.
            browser.wait("() => document.getElementById('s-echoes').textContent === `3 / ${pingproto.stats.sent}`")
            found = {
                "state": browser.js("pingproto.state"),
                "status": browser.js("document.getElementById('status').textContent"),
                "stats": browser.js("pingproto.stats"),
                "outstanding": browser.js("pingproto.outstanding"),
                "echoes": browser.js("document.getElementById('s-echoes').textContent"),
                "loss": browser.js("document.getElementById('s-loss').textContent"),
                "last": browser.js("document.getElementById('s-last').textContent"),
                "detail": browser.js("document.getElementById('detail').textContent"),
            }
            browser.screenshot("app-no-echo.png")
            page.goto("about:blank")
            page.goto(self.https("/app") + "#timeout=1&flatline=3")
            browser.wait("() => pingproto.state === 'open'")
            opened = time.monotonic()
            browser.wait("() => pingproto.flatlines === 1")
            found["flatlineAfter"] = time.monotonic() - opened
            return found

        def check(found: dict[str, Any]) -> None:
            self.assertEqual((found["state"], found["status"]), ("open", "Open"))
            stats = found["stats"]
            self.assertEqual(stats["count"], 3)
            self.assertGreaterEqual(stats["lost"], 3)
            self.assertEqual((stats["flatlines"], stats["disconnects"]), (0, 0))
            # Sent once a second, each waited on for 2 s.
            self.assertLessEqual(found["outstanding"], 3)
            self.assertEqual(found["echoes"], f"3 / {stats['sent']}")
            self.assertNotEqual(found["loss"], "0 %")
            # Not the last echo's round trip, long ago: the last ping's fate.
            self.assertEqual((found["last"], found["detail"]), ("no echo", "last ping: no echo"))
            self.assertGreaterEqual(found["flatlineAfter"], 2.0)
            self.assertLess(found["flatlineAfter"], 6.0)

        return self.browse(scenario).addCallback(check)


class PageFaultTests(BrowserTestCase):
    """
    The page against a server that is not an echo server, a page the
    browser could not run for a while, and settings it cannot take.
    """

    def test_serverSendingStrays(self):  # type: ignore[no-untyped-def]
        """
        A server that sends messages answering no ping past the bound
        pingproto ping keeps too (16, and 4 more a ping) is closed with
        4001 and a notice that says why, and the page reconnects: it is
        not left reading them all.
        """

        class Strays(EchoServerProtocol):
            def send_back(self, payload: bytes, isBinary: bool) -> None:
                super().send_back(payload, isBinary)
                for _ in range(30):
                    super().send_back(b"stray", False)

        self.service.factory.protocol = Strays

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(self.https("/app") + "#flatline=0")
            browser.wait("() => document.getElementById('notice').textContent.includes('answer no ping')")
            notice = browser.js("document.getElementById('notice').textContent")
            browser.wait("() => pingproto.history.marks.filter((m) => m.k === 'open').length >= 2")
            return {"notice": notice, "errors": list(browser.errors)}

        def check(found: dict[str, Any]) -> None:
            self.assertEqual(
                found["notice"],
                "The server sends messages that answer no ping: is it an echo server? Closed it; reconnecting.",
            )
            self.assertEqual(found["errors"], [])

        return self.browse(scenario).addCallback(check)

    @inlineCallbacks
    def test_pageHeldUp(self):  # type: ignore[no-untyped-def]
        """
        A page whose thread was held up for 3 s (a busy machine, a frozen
        tab) while a ping waited for its echo neither times that echo
        across the pause nor counts the ping lost: the ping is forgotten,
        and the pause is away on the graph.
        """
        proxy = yield self.proxy(delay_down=0.3)
        address = self.https("/app") + f"#host=127.0.0.1:{proxy.port}&flatline=2"

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(address)
            browser.wait("() => pingproto.samples >= 2 && pingproto.outstanding === 1")
            browser.js("(() => { const t = performance.now(); while (performance.now() - t < 3000) {} })()")
            browser.wait("() => pingproto.samples >= 5")
            return {
                "stats": browser.js("pingproto.stats"),
                "marks": [m["k"] for m in browser.js("pingproto.history.marks")],
                "errors": list(browser.errors),
            }

        found = yield self.browse(scenario)
        stats = found["stats"]
        self.assertLess(stats["max"], 1000, "no round trip timed across the pause")
        self.assertEqual((stats["lost"], stats["flatlines"], stats["disconnects"]), (0, 0, 0))
        self.assertIn("away", found["marks"])
        self.assertEqual(found["marks"][-1], "open")
        self.assertEqual(found["errors"], [])

    @inlineCallbacks
    def test_hiddenTabKeepsCounting(self):  # type: ignore[no-untyped-def]
        """
        A hidden tab's timers are throttled while its messages still come:
        a late step there is no stall, and the ping then waiting is
        answered (or lost) as ever, not forgotten, and no time is away.
        """
        proxy = yield self.proxy(delay_down=0.3)
        address = self.https("/app") + f"#host=127.0.0.1:{proxy.port}&flatline=0"

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(address)
            browser.wait("() => pingproto.samples >= 2 && pingproto.outstanding === 1")
            waiting = browser.last("pings", "fate", "waiting")
            browser.js(
                "(() => { Object.defineProperty(document, 'hidden', { value: true, configurable: true });"
                " document.dispatchEvent(new Event('visibilitychange'));"
                " const t = performance.now(); while (performance.now() - t < 3000) {} })()"
            )
            browser.wait("() => pingproto.samples >= 4")
            pings = browser.js("pingproto.history.pings")
            return {
                # None: the ping was forgotten.
                "fate": next((p["fate"] for p in pings if p["t"] == waiting["t"]), None),
                "marks": [m["k"] for m in browser.js("pingproto.history.marks")],
            }

        found = yield self.browse(scenario)
        self.assertEqual(found["fate"], "reply")
        self.assertNotIn("away", found["marks"])

    def test_settingsOutOfRange(self):  # type: ignore[no-untyped-def]
        """
        A timeout or flatline time that is not a number of seconds in
        range is not taken, and not dropped silently either: the page says
        which it ignored, and keeps saying it while it pings.  A flatline
        time past what a browser's timer can wait used to make every
        connection attempt give up at once.
        """

        def scenario(browser: Browser) -> dict[str, Any]:
            browser.page.goto(self.https("/app") + "?timeout=2#timeout=abc&flatline=1e300")
            browser.wait("() => pingproto.samples >= 2")
            return {
                "timeout": browser.js("pingproto.replyTimeoutSeconds"),
                "flatline": browser.js("pingproto.flatlineSeconds"),
                "notice": browser.js("document.getElementById('notice').textContent"),
            }

        def check(found: dict[str, Any]) -> None:
            # The query's good value stands when the fragment's is bad.
            self.assertEqual((found["timeout"], found["flatline"]), (2, 10))
            self.assertEqual(
                found["notice"],
                "#flatline=1e300 ignored (seconds from 0 to 86400): using 10. "
                "#timeout=abc ignored (seconds from 0.1 to 60): using 2.",
            )

        return self.browse(scenario).addCallback(check)
