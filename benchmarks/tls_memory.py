#!/usr/bin/env python3
"""
What one server-side TLS connection holds in memory, with pingproto's own
TLS context: the floor under pingproto's memory per idle wss connection.

    python3 benchmarks/tls_memory.py [--connections 3000]

Makes the connections in this process, each a pair of pyOpenSSL
connections over memory BIOs (as Twisted's TLSMemoryBIOProtocol uses
them), and counts the heap bytes in use with glibc's mallinfo2, which,
unlike RSS, goes down when memory is freed, so the clients can be measured
apart and subtracted.  Prints KiB per server connection freshly made, after
a TLS 1.3 handshake and one small exchange, the same with session
tickets and the session cache turned off, and the same once the memory
BIOs have been renewed as pingproto's TLS layer renews them
(L{pingproto.tls.release_bio_buffers}).  No sockets, no network.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import sys
import tempfile

from OpenSSL import SSL

sys.path[:0] = [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]

from pingproto.tls import release_bio_buffers, server_context  # noqa: E402
from pingproto.tlsfiles import load_tls_dir  # noqa: E402
from tests.test_tls import handshake as tls_handshake  # noqa: E402
from tests.tlsdir import write_tls_dir  # noqa: E402


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
    ]


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _MallInfo2


def heap_kib() -> float:
    gc.collect()
    info = _libc.mallinfo2()
    return (info.uordblks + info.hblkhd) / 1024


def _move(source: SSL.Connection, sink: SSL.Connection) -> None:
    sink.bio_write(source.bio_read(65536))


def pair(
    server_ctx: SSL.Context, client_ctx: SSL.Context, handshake: bool, release: bool = False
) -> tuple[SSL.Connection, SSL.Connection]:
    if not handshake:
        server = SSL.Connection(server_ctx, None)
        server.set_accept_state()
        return server, SSL.Connection(client_ctx, None)
    server, client = tls_handshake(server_ctx, client_ctx)
    # One ping and its echo; the client also reads the session tickets.
    client.send(b"1764000000000")
    _move(client, server)
    server.send(server.recv(100))
    _move(server, client)
    client.recv(100)
    if release and not release_bio_buffers(server):
        raise RuntimeError("the server's memory BIOs were not empty")
    return server, client


def per_server_connection(server_ctx: SSL.Context, count: int, handshake: bool, release: bool = False) -> float:
    client_ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    warm = [pair(server_ctx, client_ctx, handshake, release) for _ in range(50)]
    before = heap_kib()
    pairs = [pair(server_ctx, client_ctx, handshake, release) for _ in range(count)]
    servers = [s for s, _ in pairs]
    del pairs
    after = heap_kib()
    del servers, warm
    return (after - before) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=3000)
    count = parser.parse_args().connections
    directory = tempfile.mkdtemp(prefix="pingproto-tlsmem-")
    write_tls_dir(directory)
    material = load_tls_dir(directory)
    plain = server_context(material)
    lean = server_context(material)
    lean.set_options(SSL.OP_NO_TICKET)
    lean.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    print(f"KiB of heap per server-side TLS connection ({count:,} connections, pingproto's TLS context):")
    print(f"  created, no handshake:                     {per_server_connection(plain, count, False):6.1f}")
    print(f"  after a TLS 1.3 handshake and one echo:    {per_server_connection(plain, count, True):6.1f}")
    print(f"  the same, no session tickets and no cache: {per_server_connection(lean, count, True):6.1f}")
    print(f"  the same, memory BIOs renewed (pingproto):  {per_server_connection(plain, count, True, True):6.1f}")


if __name__ == "__main__":
    main()
