"""
The live page: one self-contained HTML file that pings a server from a
browser and graphs what comes back.

It ships inside the package so that the server can answer C{GET /app} with
it over the same listener as the WebSocket, and so that C{pingproto app}
can hand it out as a file or a C{data:} URL for when the page must not
come from the server it measures (the original tutorial's "unhosted" page).
The helpers here are pure, so they are tested without a browser or reactor.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import sys
from importlib.resources import files
from pathlib import Path
from typing import IO

from twisted.python import usage

from pingproto.cli import EXIT_ERROR, EXIT_OK, CommandOptions
from pingproto.config import check_authority, refuse_credentials, split_url

__all__ = [
    "AppOptions",
    "check_server",
    "content_security_policy",
    "data_url",
    "page",
    "preset",
]

# The page reads its preset server from this tag; an empty one means "take
# it from where the page was served from, else example.com:1234".
_EMPTY_PRESET = b'<meta name="pingproto-server" content="">'
_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


def page() -> bytes:
    """
    The page as shipped, read from the installed package (a wheel, an
    egg or a source tree alike).
    """
    return files("pingproto").joinpath("web").joinpath("app.html").read_bytes()


def check_server(text: str) -> str:
    """
    Return C{text} stripped if the page can connect to it: C{HOST[:PORT][/PATH]}
    (the page adds C{wss://} and, with no path, C{/sock/websocket}) or a
    C{ws://} or C{wss://} URL; raise L{ValueError} saying why not otherwise.

    Checked here so that a typo is a usage error now, not a page that
    fails later in someone's browser.
    """
    refuse_credentials(text.strip())
    value = text.strip()
    if not value or any(c.isspace() for c in value):
        raise ValueError(f"{text!r} is not a host:port or a ws:// or wss:// URL")
    if not value.isprintable():
        # As pingproto ping's URL rule (check_ws_url).
        raise ValueError(f"{text!r}: a URL cannot have control or other unprintable characters")
    if "://" in value:
        parts = split_url(value, text)
        if parts.scheme not in ("ws", "wss"):
            raise ValueError(f"{text!r}: the page speaks ws:// or wss://, not {parts.scheme}://")
    else:
        parts = split_url("//" + value, text)
    check_authority(parts, text)
    return value


def preset(document: bytes, server: str) -> bytes:
    """
    The page with C{server} as the server it connects to first, for when
    it is opened from a file or a C{data:} URL and has no address of its own
    to fall back on.
    """
    if document.count(_EMPTY_PRESET) != 1:
        raise ValueError("the page has no (or more than one) empty pingproto-server tag")
    tag = '<meta name="pingproto-server" content="{}">'.format(html.escape(check_server(server), quote=True))
    return document.replace(_EMPTY_PRESET, tag.encode("utf-8"))


def data_url(document: bytes) -> str:
    """
    A C{data:} URL that opens C{document}: base64, since a percent-encoded
    page is larger and some browsers mangle C{#} in it.
    """
    return "data:text/html;base64," + base64.b64encode(document).decode("ascii")


def content_security_policy(document: bytes) -> str:
    """
    A policy that lets the page run its own inline script and style and
    nothing else, and connect only to WebSockets.

    Hashes rather than C{'unsafe-inline'}: a script injected into the page
    would not run, and the hashes are computed from the page itself, so
    editing it never leaves a stale policy behind.
    """
    found: dict[bytes, list[str]] = {b"script": [], b"style": []}
    for tag, body in _INLINE.findall(document):
        # What the browser hashes: the element's text as parsed, with the
        # HTML parser's newline normalization.
        text = body.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        digest = base64.b64encode(hashlib.sha256(text).digest()).decode("ascii")
        found[tag].append(f"'sha256-{digest}'")
    scripts = " ".join(found[b"script"]) or "'none'"
    styles = " ".join(found[b"style"]) or "'none'"
    return (
        f"default-src 'none'; script-src {scripts}; style-src {styles}; "
        "connect-src ws: wss:; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    )


class AppOptions(CommandOptions):
    """
    C{pingproto app}: the page, preset with C{--server} when given, as a
    C{data:} URL, a file or standard output.
    """

    synopsis = "[--server HOST:PORT | --server ws[s]://HOST:PORT/PATH] [-o FILE]"
    longdesc = (
        "Hand out the live ping page: printed as a data: URL to paste into a "
        "browser's address bar, or written to FILE to open from disk. A server "
        "serves the same page itself at https://HOST:PORT/app. Chromium keeps "
        "a data: page off loopback and LAN addresses (Local Network Access): "
        "for a server there, use -o FILE or the server's /app."
    )
    optParameters = [
        [
            "server",
            "s",
            None,
            "The server the page connects to when opened: HOST:PORT (for "
            "wss://HOST:PORT/sock/websocket) or a ws:// or wss:// URL, e.g. "
            "ws://127.0.0.1:1234/ for a local `twistd -n pingproto`.",
        ],
        ["output", "o", None, "Write the page to FILE ('-': standard output) instead of printing a data: URL."],
    ]

    def postOptions(self) -> None:
        if self["server"] is not None:
            try:
                self["server"] = check_server(self["server"])
            except ValueError as e:
                raise usage.UsageError(f"--server {e}") from None

    def document(self) -> bytes:
        """
        The page this command hands out, preset when C{--server} says so.
        """
        document = page()
        if self["server"] is not None:
            document = preset(document, self["server"])
        return document

    def run(self, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
        """
        Hand the page out; return the exit status (L{EXIT_ERROR} when
        C{-o FILE} cannot be written).
        """
        out = stdout or sys.stdout
        err = stderr or sys.stderr
        document = self.document()
        if self["server"] is None:
            err.write(
                "pingproto app: no --server given; the page starts at example.com:1234 "
                "until you type a server into it\n"
            )
        target = self["output"]
        if target is None:
            out.write(data_url(document) + "\n")
            return EXIT_OK
        if target == "-":
            out.write(document.decode("utf-8"))
            return EXIT_OK
        try:
            Path(target).write_bytes(document)
        except OSError as e:
            err.write(f"pingproto app: cannot write {target}: {e.strerror}\n")
            return EXIT_ERROR
        # Printed so that `chromium "$(pingproto app -o page.html)"` works.
        out.write(Path(target).resolve().as_uri() + "\n")
        return EXIT_OK
