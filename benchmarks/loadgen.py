#!/usr/bin/env python3
"""
The load generator of benchmarks/run: one process, one event loop, meant to
be pinned to a core of its own.  It drives one server on 127.0.0.1 and
measures the server process from /proc while it does.

    loadgen.py echo      --proto wss --port P --server-pid PID --conns 100 --duration 3
    loadgen.py idle      --proto wss --port P --server-pid PID --conns 10000 --rate 1000
    loadgen.py handshake --proto wss --port P --server-pid PID --duration 3 --concurrency 32

--proto is tcp or tls (a raw echo: 13 bytes out, 13 bytes back) or ws or
wss (a 13-byte text message, the length of a Date.now() timestamp).  With
picows and uvloop importable (benchmarks/run installs them into a scratch
virtualenv) WebSockets go through picows; otherwise through the small
asyncio client below.  One JSON object is printed on stdout at the end.

echo       opens --conns connections, then each sends a message, waits for
           its echo, sends the next (closed loop); after --warmup seconds
           it measures for --duration seconds: round trips, RTT percentiles
           (client side, monotonic clock), and the CPU time (utime+stime
           from /proc/PID/stat) of the server and of this process.  With
           --sync it prints "ready" after the warm-up and starts measuring
           at the time.monotonic() given on stdin, so that several
           generators measure the same window (benchmarks/scaling.py).
idle       opens --conns connections at no more than --rate a second (each
           does one echo, so every handshake is complete), waits
           --settle seconds, and reports the server's VmRSS growth.
handshake  for --duration seconds (at most --count times), --concurrency at
           a time, opens and closes a connection: TCP connect, TLS
           handshake, WebSocket upgrade, then a clean close (a WebSocket
           close frame, answered by the server; TLS close_notify); reports
           the server's CPU time per connection, counted until the server
           has gone quiet after the last one, and this process's.  Its
           client is not picows but handshakes.py (epoll and pyOpenSSL,
           which pingproto needs anyway): half the CPU per connection.

Load only goes to 127.0.0.1; every phase is bounded in count and time.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import os
import resource
import ssl
import sys
import time
from typing import Any

# The handshake client, and the upgrade request every client here sends.
# pyOpenSSL is there wherever this runs: benchmarks/run installs it with
# picows, and the fallback is pingproto's own Python.
from handshakes import HOST, Handshakes, upgrade_request

MESSAGE = b"1764000000000"  # 13 bytes: a Date.now() timestamp, as the page sends
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_CONNS = 20_000
CONNECT_TIMEOUT = 10.0  # pingproto's handshake timeout
SYNC_TIMEOUT = 120.0  # the longest an echo --sync waits for its start time

try:  # the fast client
    import uvloop  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - the fallback
    uvloop = None
try:
    import picows  # type: ignore[import-not-found]
    from picows import WSCloseCode, WSListener, WSMsgType
except ImportError:  # pragma: no cover - the fallback
    picows = None
    WSListener = object


def proc_cpu(pid: int | str) -> float:
    """
    CPU seconds (user + system, all threads) of a process, from /proc.
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss(pid: int) -> int:
    """
    Resident set size in bytes (VmRSS).
    """
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def machine_cpu() -> tuple[float, float]:
    """
    Busy and stolen CPU seconds of the whole machine, all CPUs, from
    /proc/stat: what else was running while we measured.
    """
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, steal / CLK_TCK


def percentile(sorted_values: Any, q: float) -> float:
    if not sorted_values:
        return float("nan")
    i = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[i]


class Driver:
    """
    Shared state of all connections: the closed loop and the samples.
    """

    def __init__(self) -> None:
        self.running = False
        self.measuring = False
        self.samples = array.array("q")
        self.count = 0
        self.in_flight = 0
        self.lost = 0
        self.clock = time.perf_counter_ns

    def echoed(self, conn: Any) -> None:
        now = self.clock()
        self.in_flight -= 1
        if self.measuring:
            self.samples.append(now - conn.t0)
            self.count += 1
        waiter = conn.waiter
        if waiter is not None:
            conn.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self.running:
            self.in_flight += 1
            conn.send()


# --- raw TCP / TLS echo client --------------------------------------------


class RawConn(asyncio.Protocol):
    def __init__(self, driver: Driver) -> None:
        self.d = driver
        self.t0 = 0
        self.got = 0
        self.waiter: asyncio.Future[None] | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        while self.got >= len(MESSAGE):
            self.got -= len(MESSAGE)
            self.d.echoed(self)

    def send(self) -> None:
        self.t0 = self.d.clock()
        self.transport.write(MESSAGE)

    def connection_lost(self, exc: Exception | None) -> None:
        self.d.lost += 1
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self, graceful: bool) -> None:
        if graceful:
            if self.transport.can_write_eof():
                # Plain TCP: half-close and wait for the server to close
                # its side, so that every connection has been accepted and
                # served before the next one (else they pile up in the
                # kernel's accept queue, which overflows and drops SYNs).
                self.transport.write_eof()
            else:
                self.transport.close()
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 5)
            finally:
                self.transport.abort()
        else:
            self.transport.abort()


# --- WebSocket client: picows ---------------------------------------------


class PicowsConn(WSListener):  # type: ignore[misc,valid-type]
    def __init__(self, driver: Driver) -> None:
        super().__init__()
        self.d = driver
        self.t0 = 0
        self.waiter: asyncio.Future[None] | None = None
        self.transport: Any = None

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        msg_type = frame.msg_type
        if msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            self.d.echoed(self)
        elif msg_type is WSMsgType.CLOSE:
            transport.disconnect()

    def on_ws_disconnected(self, transport: Any) -> None:
        self.d.lost += 1

    def send(self) -> None:
        self.t0 = self.d.clock()
        self.transport.send(WSMsgType.TEXT, MESSAGE)

    async def close(self, graceful: bool) -> None:
        if graceful:
            self.transport.send_close(WSCloseCode.OK)
            try:
                await asyncio.wait_for(self.transport.wait_disconnected(), 5)
            except asyncio.TimeoutError:
                self.transport.disconnect(graceful=False)
        else:
            self.transport.disconnect(graceful=False)


# --- WebSocket client: plain asyncio fallback -------------------------------


def _masked_frame(opcode: int, payload: bytes) -> bytes:
    mask = os.urandom(4)
    body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + body


class MiniWSConn(asyncio.Protocol):
    """
    Just enough of an RFC 6455 client for small unfragmented messages.
    """

    FRAME = _masked_frame(0x1, MESSAGE)

    def __init__(self, driver: Driver, path: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        self.d = driver
        self.t0 = 0
        self.waiter: asyncio.Future[None] | None = None
        self.opened: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self.buf = b""
        self.upgraded = False
        self.path = path
        self.port = port
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        transport.write(upgrade_request(self.path, self.port))

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(RuntimeError(buf[:end].decode(errors="replace")))
                self.transport.abort()
                return
            self.upgraded = True
            self.opened.set_result(None)
            buf = buf[end + 4 :]
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            length = buf[1] & 0x7F
            start = 2
            if length == 126:
                if len(buf) < 4:
                    break
                length = int.from_bytes(buf[2:4], "big")
                start = 4
            elif length == 127:
                if len(buf) < 10:
                    break
                length = int.from_bytes(buf[2:10], "big")
                start = 10
            if len(buf) < start + length:
                break
            payload = buf[start : start + length]
            buf = buf[start + length :]
            if opcode in (0x1, 0x2):
                self.d.echoed(self)
            elif opcode == 0x9:
                self.transport.write(_masked_frame(0xA, payload))
            elif opcode == 0x8:
                self.transport.close()
        self.buf = buf

    def send(self) -> None:
        self.t0 = self.d.clock()
        self.transport.write(self.FRAME)

    def connection_lost(self, exc: Exception | None) -> None:
        self.d.lost += 1
        if not self.opened.done():
            self.opened.set_exception(ConnectionError("closed during the upgrade"))
        if not self.closed.done():
            self.closed.set_result(None)

    async def close(self, graceful: bool) -> None:
        if graceful:
            self.transport.write(_masked_frame(0x8, (1000).to_bytes(2, "big")))
            try:
                await asyncio.wait_for(asyncio.shield(self.closed), 5)
            except asyncio.TimeoutError:
                self.transport.abort()
        else:
            self.transport.abort()


# --- connecting -----------------------------------------------------------


def client_tls() -> ssl.SSLContext:
    # The server's figures are what is measured: the client trusts the
    # throw-away certificate without checking it, to spend less CPU.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class Target:
    def __init__(self, proto: str, port: int, path: str, driver: Driver) -> None:
        self.proto = proto
        self.port = port
        self.path = path
        self.d = driver
        self.tls = client_tls() if proto in ("tls", "wss") else None
        self.websocket = proto in ("ws", "wss")

    async def connect(self) -> Any:
        loop = asyncio.get_running_loop()
        if not self.websocket:
            _, conn = await loop.create_connection(
                lambda: RawConn(self.d), HOST, self.port, ssl=self.tls,
                server_hostname="localhost" if self.tls else None,
            )
            return conn
        if picows is not None:
            url = f"{self.proto}://{HOST}:{self.port}{self.path}"
            _, conn = await picows.ws_connect(
                lambda: PicowsConn(self.d), url, ssl_context=self.tls,
                websocket_handshake_timeout=CONNECT_TIMEOUT,
            )
            return conn
        _, conn = await loop.create_connection(
            lambda: MiniWSConn(self.d, self.path, self.port), HOST, self.port, ssl=self.tls,
            server_hostname="localhost" if self.tls else None,
        )
        await conn.opened
        return conn


async def one_echo(conn: Any, driver: Driver) -> None:
    conn.waiter = asyncio.get_running_loop().create_future()
    driver.in_flight += 1
    conn.send()
    await asyncio.wait_for(conn.waiter, CONNECT_TIMEOUT)


async def open_many(target: Target, n: int, rate: float, concurrency: int, echo: bool,
                    deadline: float) -> tuple[list[Any], int]:
    """
    Open n connections, at most `concurrency` at a time and `rate` a
    second; optionally one echo on each.  Returns (connections, failures).
    """
    conns: list[Any] = []
    failures = 0
    sem = asyncio.Semaphore(concurrency)
    start = time.monotonic()
    errors: list[str] = []

    async def one() -> None:
        nonlocal failures
        try:
            conn = await asyncio.wait_for(target.connect(), CONNECT_TIMEOUT)
            if echo:
                await one_echo(conn, target.d)
            conns.append(conn)
        except Exception as e:  # noqa: BLE001 - counted and reported
            failures += 1
            if len(errors) < 3:
                errors.append(repr(e))
        finally:
            sem.release()

    tasks = []
    for i in range(n):
        if time.monotonic() > deadline:
            raise TimeoutError(f"opened only {len(conns)} of {n} connections in time")
        await sem.acquire()
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.ensure_future(one()))
    await asyncio.wait_for(asyncio.gather(*tasks), max(1.0, deadline - time.monotonic()))
    if errors:
        print(f"loadgen: {failures} connections failed, e.g. {errors}", file=sys.stderr)
    return conns, failures


async def close_all(conns: list[Any], graceful: bool = False) -> None:
    for conn in conns:
        try:
            await conn.close(graceful)
        except Exception:  # noqa: BLE001 - teardown
            pass
    await asyncio.sleep(0.2)


# --- the three modes ------------------------------------------------------


async def run_echo(args: argparse.Namespace) -> dict[str, Any]:
    d = Driver()
    target = Target(args.proto, args.port, args.path, d)
    deadline = time.monotonic() + 60 + args.conns / 50
    conns, failures = await open_many(target, args.conns, 5000.0, 32, True, deadline)
    if failures:
        raise RuntimeError(f"{failures} of {args.conns} connections failed to open")
    d.running = True
    for conn in conns:
        d.in_flight += 1
        conn.send()
    await asyncio.sleep(args.warmup)
    if args.sync:
        await wait_for_go()
    d.samples = array.array("q")
    d.count = 0
    lost0 = d.lost
    d.measuring = True
    t0 = time.monotonic()
    s0, g0, (m0, st0) = proc_cpu(args.server_pid), proc_cpu("self"), machine_cpu()
    await asyncio.sleep(args.duration)
    s1, g1, (m1, st1) = proc_cpu(args.server_pid), proc_cpu("self"), machine_cpu()
    t1 = time.monotonic()
    d.measuring = False
    d.running = False
    count = d.count
    lost = d.lost - lost0
    drain_deadline = time.monotonic() + 3
    while d.in_flight > 0 and time.monotonic() < drain_deadline:
        await asyncio.sleep(0.01)
    await close_all(conns)
    rtts = sorted(d.samples)
    wall = t1 - t0
    return {
        "mode": "echo",
        "conns": args.conns,
        "round_trips": count,
        "wall_s": wall,
        "rt_per_s": count / wall,
        "server_cpu_s": s1 - s0,
        "gen_cpu_s": g1 - g0,
        "server_cpu_pct": 100 * (s1 - s0) / wall,
        "gen_cpu_pct": 100 * (g1 - g0) / wall,
        # CPUs' worth of everything else on the machine meanwhile.
        "other_load_cpus": max(0.0, (m1 - m0) - (s1 - s0) - (g1 - g0)) / wall,
        "steal_cpus": (st1 - st0) / wall,
        "us_cpu_per_rt": 1e6 * (s1 - s0) / count if count else None,
        "rtt_p50_us": percentile(rtts, 0.50) / 1e3,
        "rtt_p90_us": percentile(rtts, 0.90) / 1e3,
        "rtt_p99_us": percentile(rtts, 0.99) / 1e3,
        "rtt_max_us": (rtts[-1] / 1e3) if rtts else None,
        "lost_connections": lost,
    }


async def wait_for_go() -> None:
    """
    --sync: say "ready" on stdout, read a start time (time.monotonic(), one
    clock for every process on the machine) from stdin, and sleep until
    then, so that several generators and the caller measure one window.
    """
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), SYNC_TIMEOUT)
    try:
        start = float(line)
    except ValueError:
        raise RuntimeError(f"--sync: expected a start time on stdin, got {line!r}") from None
    delay = start - time.monotonic()
    if not -1.0 <= delay <= SYNC_TIMEOUT:
        raise RuntimeError(f"--sync: the start time is {delay:.1f} s away")
    await asyncio.sleep(max(0.0, delay))


async def run_idle(args: argparse.Namespace) -> dict[str, Any]:
    d = Driver()
    target = Target(args.proto, args.port, args.path, d)
    # Warm the server up (imports, first-use caches) before the baseline.
    warm, _ = await open_many(target, 50, 500.0, 16, True, time.monotonic() + 30)
    await close_all(warm, graceful=True)
    await asyncio.sleep(1.0)
    rss0 = await steady_rss(args.server_pid)
    lost0 = d.lost
    c0 = proc_cpu(args.server_pid)
    t0 = time.monotonic()
    deadline = t0 + 3 * args.conns / args.rate + 60
    conns, failures = await open_many(target, args.conns, args.rate, args.concurrency, True, deadline)
    ramp = time.monotonic() - t0
    c1 = proc_cpu(args.server_pid)
    await asyncio.sleep(args.settle)
    rss1 = await steady_rss(args.server_pid)
    still_open = len(conns) - (d.lost - lost0)
    await close_all(conns)
    return {
        "mode": "idle",
        "conns_asked": args.conns,
        "conns_open": still_open,
        "failures": failures,
        "ramp_s": ramp,
        "rss_before_bytes": rss0,
        "rss_after_bytes": rss1,
        "kib_per_conn": (rss1 - rss0) / 1024 / still_open if still_open else None,
        "server_cpu_ramp_s": c1 - c0,
        "us_cpu_per_conn_ramp": 1e6 * (c1 - c0) / max(1, len(conns)),
    }


async def steady_rss(pid: int) -> int:
    values = []
    for _ in range(3):
        values.append(proc_rss(pid))
        await asyncio.sleep(0.25)
    return sorted(values)[1]


def server_settled(pid: int, limit: float = 3.0) -> float:
    """
    Wait until the server has used no CPU for 0.3 s (it has finished
    processing every close), at most `limit` seconds; its CPU time then.
    """
    end = time.monotonic() + limit
    last = proc_cpu(pid)
    while time.monotonic() < end:
        time.sleep(0.3)
        now = proc_cpu(pid)
        if now == last:
            return now
        last = now
    return last


def run_handshake(args: argparse.Namespace) -> dict[str, Any]:
    h = Handshakes(args.proto, args.port, args.path, args.concurrency, CONNECT_TIMEOUT)
    h.run(min(50, args.count), 10.0)  # warm-up
    s0 = server_settled(args.server_pid)
    g0, (m0, _) = proc_cpu("self"), machine_cpu()
    t0 = time.monotonic()
    h.run(args.count, args.duration)
    t1 = time.monotonic()
    g1, (m1, _) = proc_cpu("self"), machine_cpu()
    s_busy = proc_cpu(args.server_pid)
    s1 = server_settled(args.server_pid)
    if h.errors:
        print(f"loadgen: {h.failures} handshakes failed, e.g. {h.errors}", file=sys.stderr)
    wall = t1 - t0
    done = h.done
    return {
        "mode": "handshake",
        "count": done,
        "failures": h.failures,
        "wall_s": wall,
        "handshakes_per_s": done / wall,
        "server_cpu_s": s1 - s0,
        "us_cpu_per_handshake": 1e6 * (s1 - s0) / done if done else None,
        "server_cpu_pct": 100 * (s_busy - s0) / wall,
        "gen_cpu_pct": 100 * (g1 - g0) / wall,
        "us_gen_cpu_per_handshake": 1e6 * (g1 - g0) / done if done else None,
        "other_load_cpus": max(0.0, (m1 - m0) - (s_busy - s0) - (g1 - g0)) / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["echo", "idle", "handshake"])
    parser.add_argument("--proto", choices=["tcp", "tls", "ws", "wss"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/")
    parser.add_argument("--server-pid", type=int, required=True)
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--warmup", type=float, default=0.5)
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--settle", type=float, default=3.0)
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--sync", action="store_true",
                        help="echo: after the warm-up print 'ready', then measure from the "
                             "time.monotonic() read on stdin (benchmarks/scaling.py)")
    args = parser.parse_args()
    if not 1 <= args.conns <= MAX_CONNS:
        parser.error(f"--conns must be 1..{MAX_CONNS}")
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 60 or not 0 < args.rate <= 5000:
        parser.error("--duration, --warmup or --rate out of bounds")
    if not 1 <= args.count <= 100_000 or not 1 <= args.concurrency <= 256:
        parser.error("--count or --concurrency out of bounds")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if args.mode == "handshake":
        from OpenSSL import SSL

        result = run_handshake(args)
        result["client"] = f"epoll + pyOpenSSL ({SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode()})"
        print(json.dumps(result), flush=True)
        return
    run = {"echo": run_echo, "idle": run_idle}[args.mode]
    if uvloop is not None:
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    try:
        result = loop.run_until_complete(run(args))
    finally:
        loop.close()
    result["client"] = (
        ("picows " + picows.__version__ if hasattr(picows, "__version__") else "picows")
        if picows is not None and args.proto in ("ws", "wss")
        else "asyncio"
    ) + (" + uvloop" if uvloop is not None else "")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
