"""
Run by tests/test_hardening.py: a TLS 1.3 client that sends key updates.

Neither Python's C{ssl} nor pyOpenSSL can send a key update; tlslite-ng
(the TLS implementation tlsfuzzer tests TLS servers with) can.  It is a
blocking client, so it runs in a process of its own.

Connects to C{127.0.0.1:PORT} (a test's own server: its certificate is
not checked), does the handshake, sends C{COUNT} key updates that ask for one back, each in a write of its
own, then a plain C{GET /}, and prints as JSON the first line of the
answer (or the empty string if the connection ended first).
"""

from __future__ import annotations

import json
import socket
import sys

from tlslite import HandshakeSettings, TLSConnection
from tlslite.constants import KeyUpdateMessageType
from tlslite.errors import TLSError


def main(port: int, count: int) -> None:
    connection = TLSConnection(socket.create_connection(("127.0.0.1", port), timeout=10))
    settings = HandshakeSettings()
    settings.minVersion = settings.maxVersion = (3, 4)
    connection.handshakeClientCert(settings=settings, serverName="localhost")
    answer = b""
    try:
        for _ in range(count):
            for _ in connection.send_keyupdate_request(KeyUpdateMessageType.update_requested):
                pass
        connection.write(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        while b"\r\n" not in answer:
            piece = connection.read(max=4096)
            if not piece:
                break
            answer += piece
    except (OSError, TLSError):
        pass
    print(json.dumps({"answer": answer.split(b"\r\n")[0].decode("latin-1")}))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
