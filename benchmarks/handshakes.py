"""
The load of `loadgen.py handshake`: connections opened and closed as fast
as one process can, each a TCP connect, a TLS handshake (tls, wss), the
WebSocket upgrade (ws, wss), and a clean close: a WebSocket close frame
(ws, wss), a TLS close_notify (tls) or a half-close (tcp), then the
server's answer up to its end of the connection.

Why not the asyncio clients of loadgen.py: against the raw TLS echo,
picows on uvloop with the ssl module spent 740-1,000 us of CPU per
connection, a third of it in Debian's OpenSSL 3.0 decoding the server's
certificate (OSSL_DECODER and its locks), so in the handshake test the
generator set the pace for the faster servers, at half their CPU.  Here
every connection is a generator on a non-blocking socket in one epoll loop,
TLS goes through pyOpenSSL (the OpenSSL that `cryptography` bundles, a
pingproto dependency), and the client offers only X25519, the group every
server here picks first: about 400 us per wss connection.

Load only goes to 127.0.0.1; every connection has a deadline and every run
a count and a time limit.
"""

from __future__ import annotations

import base64
import errno
import os
import selectors
import socket
import time
from collections.abc import Generator
from typing import Any

from OpenSSL import SSL

HOST = "127.0.0.1"
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
# A masked close frame, code 1000 (the mask is zero: the client need not be
# unpredictable to a server it owns).
CLOSE_FRAME = bytes((0x88, 0x82, 0, 0, 0, 0)) + (1000).to_bytes(2, "big")

Steps = Generator[int, None, Any]  # yields the event it waits for


def upgrade_request(path: str, port: int) -> bytes:
    """
    The least a client sends to open a WebSocket (RFC 6455, 4.1).
    """
    key = base64.b64encode(os.urandom(16)).decode()
    return (
        f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()


def client_context() -> SSL.Context:
    """
    A TLS client that trusts the throw-away certificate without checking
    it and offers only X25519, to spend as little CPU as a client can.
    """
    from cryptography.hazmat.bindings.openssl.binding import Binding

    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_verify(SSL.VERIFY_NONE)
    # pyOpenSSL has no call for the groups (pingproto/tls.py does the same);
    # OpenSSL's default would also compute an X25519MLKEM768 share that
    # none of the servers takes.  Bindings before cryptography 47 lack the
    # call; OpenSSL's default groups then stand.
    setter = getattr(Binding.lib, "SSL_CTX_set1_curves_list", None)
    if setter is not None and setter(context._context, b"X25519") != 1:  # noqa: SLF001
        raise RuntimeError("OpenSSL refused the group X25519")
    return context


class Handshakes:
    """
    Opens and closes connections to one server, `concurrency` at a time.
    After each run(): done, failures and up to three errors.
    """

    def __init__(self, proto: str, port: int, path: str, concurrency: int, timeout: float) -> None:
        self.proto, self.port = proto, port
        self.tls = client_context() if proto in ("tls", "wss") else None
        self.request = upgrade_request(path, port) if proto in ("ws", "wss") else None
        self.concurrency = concurrency
        self.timeout = timeout
        self.done = self.failures = 0
        self.errors: list[str] = []

    def run(self, count: int, seconds: float) -> None:
        """
        Open and close up to `count` connections, starting new ones for
        `seconds`; then wait (at most `timeout`) for those still open.
        """
        self.done = self.failures = 0
        selector = selectors.EpollSelector()
        active: dict[socket.socket, tuple[Steps, float]] = {}
        started = 0
        stop_starting = time.monotonic() + seconds
        next_check = 0.0
        try:
            while True:
                now = time.monotonic()
                while started < count and now < stop_starting and len(active) < self.concurrency:
                    started += 1
                    self._start(selector, active, now)
                if not active:
                    return
                for key, _ in selector.select(0.1):
                    self._step(selector, active, key.fileobj)  # type: ignore[arg-type]
                if now >= next_check:  # every connection has its deadline
                    next_check = now + 0.2
                    for sock, (_, deadline) in list(active.items()):
                        if now > deadline:
                            self._end(selector, active, sock, TimeoutError(f"not closed in {self.timeout} s"))
        finally:
            for sock in list(active):
                self._end(selector, active, sock, RuntimeError("stopped"))
            selector.close()

    def _start(self, selector: selectors.BaseSelector, active: dict[socket.socket, Any], now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        code = sock.connect_ex((HOST, self.port))
        steps = self._cycle(sock)
        active[sock] = (steps, now + self.timeout)
        if code not in (0, errno.EINPROGRESS):
            self._end(selector, active, sock, OSError(code, os.strerror(code)))
            return
        selector.register(sock, next(steps))

    def _step(self, selector: selectors.BaseSelector, active: dict[socket.socket, Any], sock: socket.socket) -> None:
        steps, _ = active[sock]
        try:
            wanted = next(steps)
        except StopIteration:
            self._end(selector, active, sock, None)
        except Exception as e:  # noqa: BLE001 - counted and reported
            self._end(selector, active, sock, e)
        else:
            if selector.get_key(sock).events != wanted:
                selector.modify(sock, wanted)

    def _end(self, selector: selectors.BaseSelector, active: dict[socket.socket, Any],
             sock: socket.socket, error: BaseException | None) -> None:
        del active[sock]
        if sock in selector.get_map():
            selector.unregister(sock)
        sock.close()
        if error is None:
            self.done += 1
        else:
            self.failures += 1
            if len(self.errors) < 3:
                self.errors.append(repr(error))

    # --- one connection, as the events it waits for ------------------------

    def _cycle(self, sock: socket.socket) -> Steps:
        yield WRITE  # the connect
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, os.strerror(code))
        io: Any = sock
        if self.tls is not None:
            io = SSL.Connection(self.tls, sock)
            io.set_tlsext_host_name(b"localhost")
            io.set_connect_state()
            yield from _tls_call(io.do_handshake)
        if self.request is not None:
            yield from _send(io, self.request)
            response = b""
            while b"\r\n\r\n" not in response:
                data = yield from _recv(io)
                if not data:
                    raise ConnectionError(f"closed during the upgrade: {response[:80]!r}")
                response += data
            head, _, rest = response.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 101 "):
                first = head.partition(b"\r\n")[0][:80].decode("latin-1")
                raise ConnectionError(f"no upgrade, the answer began: {first}")
            yield from _send(io, CLOSE_FRAME)
            rest += yield from _until_end(io)
            if rest[:1] != b"\x88":
                raise ConnectionError(f"no close frame before the end: {rest[:20]!r}")
        elif self.tls is not None:
            yield from _tls_call(io.shutdown)
            yield from _until_end(io)
        else:
            sock.shutdown(socket.SHUT_WR)
            yield from _until_end(io)


def _tls_call(call: Any) -> Steps:
    while True:
        try:
            return call()
        except SSL.WantReadError:
            yield READ
        except SSL.WantWriteError:
            yield WRITE


def _send(io: Any, data: bytes) -> Steps:
    while data:
        try:
            data = data[io.send(data):]
        except (SSL.WantWriteError, BlockingIOError):
            yield WRITE
        except SSL.WantReadError:
            yield READ


def _until_end(io: Any) -> Steps:
    got = b""
    while data := (yield from _recv(io)):
        got += data
    return got


def _recv(io: Any) -> Steps:
    """
    The next bytes, or b"" at the end of the connection (a TLS close_notify
    or the TCP end).
    """
    while True:
        try:
            return io.recv(65536)
        except (SSL.WantReadError, BlockingIOError):
            yield READ
        except SSL.WantWriteError:
            yield WRITE
        except SSL.ZeroReturnError:
            return b""
        except SSL.SysCallError as e:
            if e.args[0] == -1:  # the TCP end without a close_notify
                return b""
            raise
