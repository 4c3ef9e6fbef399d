#!/usr/bin/env python3
"""
Baseline: the least a WebSocket echo can do on Twisted, over TCP or, with
--tls-dir, over pingproto's TLS setup (as raw_echo.py).

    python3 benchmarks/servers/ws_floor.py --port 0 [--tls-dir DIR]

It reads the request head up to its blank line, answers 101 with the
Sec-WebSocket-Accept of its key, echoes each (small, masked) frame
unmasked, and answers a close frame with one and the end of the
connection.  Nothing else: no header checks, no limits, no timers, no
logging, no fragmented or large messages, so it is no server to use, only
the floor under any WebSocket server on this stack, for telling what the
WebSocket protocol itself adds to the raw echoes from what a server adds
to the protocol.

It sets TCP_NODELAY, as every WebSocket server here does (Autobahn's
default, node's ws): without it, over TLS, Nagle's algorithm held small
writes back until the client had acknowledged the ones before, and a
third of every handshake test went by with the floor and its client both
waiting (63/66 % CPU), which made its CPU per handshake look a fifth
higher than it is (586 against 504 us per wss connection).

Prints "listening on PORT" once it listens on 127.0.0.1.  Needs the source
tree on PYTHONPATH for --tls-dir (benchmarks/run sets it).
"""

from __future__ import annotations

import base64
import hashlib

from twisted_baseline import arguments, serve  # first: it installs the epoll reactor

from twisted.internet.protocol import Factory, Protocol

_MAGIC = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3


class FloorEcho(Protocol):
    opened = False
    buffer = b""

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        buffer = self.buffer + data
        if not self.opened:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            key = b""
            for line in buffer[:end].split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            accept = base64.b64encode(hashlib.sha1(key + _MAGIC).digest())
            self.transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            self.opened = True
            buffer = buffer[end + 4 :]
        while len(buffer) >= 6:
            head, length = buffer[0], buffer[1] & 0x7F
            start = 6
            if length == 126:
                start, length = 8, int.from_bytes(buffer[2:4], "big")
            if len(buffer) < start + length:
                break
            mask = buffer[start - 4 : start] * (length // 4 + 1)
            masked = int.from_bytes(buffer[start : start + length], "little")
            payload = (masked ^ int.from_bytes(mask[:length], "little")).to_bytes(length, "little")
            header = bytes((head, length)) if length < 126 else bytes((head, 126)) + length.to_bytes(2, "big")
            self.transport.write(header + payload)
            buffer = buffer[start + length :]
            if head & 0x0F == 8:
                self.transport.loseConnection()
                break
        self.buffer = buffer


def main() -> None:
    factory = Factory.forProtocol(FloorEcho)
    factory.noisy = False
    serve(factory, arguments(__doc__))


if __name__ == "__main__":
    main()
