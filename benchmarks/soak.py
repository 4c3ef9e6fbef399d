#!/usr/bin/env python3
"""
Soak test: hold thousands of concurrent wss:// connections to the real
C{twistd -n pingproto} on 127.0.0.1, ping each once a second, and check that
every echo comes back and that the server's memory stays flat.

    python3 benchmarks/soak.py --connections 5000 --duration 300

What it does, in order:

 1. Makes a throw-away CA and server certificate with C{trustme}
    (C{tests/tlsdir.py}) in a temporary directory.
 2. Starts the server as a separate process, C{twistd -n --pidfile=
    pingproto --listen tcp:0:interface=127.0.0.1 --tls-dir DIR}, with its
    open-file limit raised to the hard limit and, on a machine with two or
    more CPUs, pinned to the first one; reads the port from its
    C{pingproto listening on wss://127.0.0.1:PORT/} log line.
 3. Starts the load generator: one or more copies of this script in
    C{--client} mode, pinned to the remaining CPUs.  Each opens its share
    of the connections at a bounded rate (C{--ramp-rate}, shared between
    them), verifying the server certificate against the test CA, and sends
    every open connection a C{Date.now()}-style text ping once a second,
    the connections spread evenly over the second.  An echo must come back
    byte for byte within C{--timeout} seconds or the ping counts as lost.
 4. Once every connection is open, holds them for C{--duration} seconds,
    sampling the server's VmRSS and CPU time from C{/proc} every
    C{--sample-every} seconds.
 5. Stops the pings, waits for the last echoes, closes every WebSocket
    cleanly (1000), stops the server and prints the figures and a verdict.

It exits 0 only if every connection opened and stayed open, every echo was
answered within the timeout, the generators kept to their schedule, and the
server's RSS grew by no more than the larger of C{--max-growth-percent} and
C{--max-growth-mib} between the end of the first minute at full load
(C{--warmup}) and the end; 1 on a failed verdict (a ramp-up that does not
finish in time included); 2 when the run could not be made (the server did
not start or died, a generator died or did not finish, a signal stopped
it).  Every process it starts is stopped on every way out, including
C{SIGINT}/C{SIGTERM}/C{SIGHUP}, and dies with it if it is killed
(C{PR_SET_PDEATHSIG}).

Since the server serves at most 256 connections from one address by
default, connection I{i} comes from loopback address 127.0.0.(1 + I{i} //
C{--per-source}).  The CPU used by other processes on the machine and the
CPU pressure are reported too: on a shared machine they explain late
echoes.

Load only ever goes to 127.0.0.1, and every loop is bounded in count and
in time (C{MAX_CONNECTIONS}, C{MAX_DURATION}, and a deadline per phase).
"""

from __future__ import annotations

import argparse
import collections
import ctypes
import json
import math
import os
import platform
import re
import resource
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from tests.commands import environment, twistd  # noqa: E402  (the repo's own helpers)
HOST = "127.0.0.1"  # load only ever goes to loopback; there is no option to change it

MAX_CONNECTIONS = 20_000
MAX_DURATION = 3_600.0
MAX_RAMP_RATE = 2_000.0
MAX_CLIENTS = 16

# Pings are scheduled on SLOTS ticks per interval; a connection pings on
# its own slot, so the load is spread evenly over each second.
SLOTS = 100

# Round-trip histogram: BUCKETS_PER_DECADE logarithmic buckets from
# RTT_FLOOR seconds up, 7 decades (10 us .. 100 s).
RTT_FLOOR = 1e-5
BUCKETS_PER_DECADE = 50
BUCKETS = 7 * BUCKETS_PER_DECADE

LISTENING = re.compile(rb"pingproto listening on wss://127\.0\.0\.1:(\d+)/")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1


class SoakError(Exception):
    """
    The run could not be made (as opposed to a failed verdict).
    """


class Stopped(BaseException):
    """
    A signal asked this script to stop.
    """


# --------------------------------------------------------------------------
# Small helpers shared by both sides.


def _emit(kind: str, **fields: Any) -> None:
    fields["type"] = kind
    sys.stdout.write(json.dumps(fields, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _bucket(rtt: float) -> int:
    if rtt <= RTT_FLOOR:
        return 0
    return min(BUCKETS - 1, int(math.log10(rtt / RTT_FLOOR) * BUCKETS_PER_DECADE))


def _bucket_top(index: int) -> float:
    return RTT_FLOOR * 10 ** ((index + 1) / BUCKETS_PER_DECADE)


def _percentile(hist: list[int], fraction: float) -> float | None:
    """
    The upper edge of the bucket holding the C{fraction} quantile (within
    about 5 %).
    """
    total = sum(hist)
    if not total:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index, count in enumerate(hist):
        seen += count
        if seen >= rank:
            return _bucket_top(index)
    return _bucket_top(BUCKETS - 1)


def _exact_percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


def _child_setup(cpus: set[int] | None, nofile: int) -> Any:
    """
    What every child runs between fork and exec: the open-file limit raised
    to C{nofile}, pinned to C{cpus}, and killed when this script dies.
    """

    def setup() -> None:
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
        if cpus:
            os.sched_setaffinity(0, cpus)
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass

    return setup


def _raise_nofile() -> int:
    """
    Raise this process's soft open-file limit to the hard limit; return it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _proc_rss(pid: int) -> tuple[int, int]:
    """
    VmRSS and VmHWM of C{pid}, in bytes.
    """
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, amount, _unit = line.split()
                values[name[:-1]] = int(amount) * 1024
    return values["VmRSS"], values["VmHWM"]


def _proc_cpu(pid: int) -> float:
    """
    User plus system CPU seconds used so far by C{pid}.
    """
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def _tree(pid: int) -> list[int]:
    """
    C{pid} and every process descended from it (the workers of
    C{--workers N}), as far as /proc shows them now.
    """
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry))
    found, queue = [], [pid]
    while queue and len(found) < 10_000:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, ()))
    return found


def _tree_rss(pid: int) -> tuple[int, int]:
    """
    VmRSS and VmHWM summed over C{pid} and its descendants, in bytes.
    """
    rss = hwm = 0
    for member in _tree(pid):
        try:
            a, b = _proc_rss(member)
        except (OSError, KeyError):
            continue
        rss, hwm = rss + a, hwm + b
    return rss, hwm


def _tree_cpu(pid: int) -> float:
    total = 0.0
    for member in _tree(pid):
        try:
            total += _proc_cpu(member)
        except OSError:
            continue
    return total


def _listen_drops() -> int:
    """
    The kernel's count of connections dropped at a full listen queue
    (TcpExt ListenDrops, which includes ListenOverflows), machine-wide.
    """
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines, lines[1:]):
        if names.startswith("TcpExt:") and values.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:]))
            return int(table.get("ListenDrops", 0))
    return 0


def _machine_cpu() -> tuple[float, float]:
    """
    CPU seconds the whole machine has been busy (all CPUs together), and
    seconds stolen by the hypervisor.
    """
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq) / CLK_TCK, steal / CLK_TCK


def _cpu_pressure() -> float | None:
    """
    Seconds in which some runnable task waited for a CPU (Linux PSI), or
    L{None} where the kernel does not tell.
    """
    try:
        with open("/proc/pressure/cpu") as f:
            some = f.readline()
    except OSError:
        return None
    match = re.search(r"total=(\d+)", some)
    return int(match.group(1)) / 1e6 if match else None


# --------------------------------------------------------------------------
# The load generator (--client mode): one reactor, many connections.


def run_client(opts: argparse.Namespace) -> int:
    from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
    from twisted.internet import reactor, task
    from twisted.internet.endpoints import TCP4ClientEndpoint, wrapClientTLS
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        textFileLogObserver,
    )

    from pingproto.tls import client_tls_options

    # Errors (unhandled failures and the like) to stderr; nothing else.
    globalLogBeginner.beginLoggingTo(
        [
            FilteringLogObserver(
                textFileLogObserver(sys.stderr),
                [LogLevelFilterPredicate(defaultLogLevel=LogLevel.error)],
            )
        ],
        redirectStandardIO=False,
    )

    monotonic = time.monotonic

    class SoakClientProtocol(WebSocketClientProtocol):
        """
        Counts are kept by the L{Load}; the protocol only reports.
        """

        def __init__(self) -> None:
            super().__init__()
            self.pending: collections.deque[tuple[bytes, float]] = collections.deque()
            # The last few pings given up for lost, to tell a late echo
            # from a wrong one.
            self.expired: collections.deque[bytes] = collections.deque(maxlen=16)
            self.started = monotonic()
            self.slot = -1
            self.was_open = False
            self.requested = False

        def onOpen(self) -> None:
            self.was_open = True
            load.opened(self)

        def onMessage(self, payload: bytes, isBinary: bool) -> None:
            load.echoed(self, payload, isBinary)

        def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
            load.closed(self, wasClean, code, reason)

    class Load:
        def __init__(self) -> None:
            self.n = opts.count
            self.rate = opts.rate
            self.interval = opts.interval
            self.timeout = opts.timeout
            self.c = collections.Counter(
                {
                    k: 0
                    for k in (
                        "attempted opened failed sent echoed lost lost_disconnect "
                        "late unmatched disconnects closed unclean_close skipped_ticks"
                    ).split()
                }
            )
            self.failures: collections.Counter[str] = collections.Counter()
            self.drops: collections.Counter[str] = collections.Counter()
            self.setup: list[float] = []
            self.hist = [0] * BUCKETS
            self.rtt_max = 0.0
            self.max_lag = 0.0
            # The same, from the moment the conductor says all are open.
            self.hold_hist: list[int] | None = None
            self.hold_rtt_max = 0.0
            self.hold_lag = 0.0
            self.slots: list[dict[Any, None]] = [{} for _ in range(SLOTS)]
            self.live: set[Any] = set()  # TCP connected, not yet closed
            self.connecting: set[Any] = set()  # connect Deferreds not yet fired
            self.next_tick: int | None = None
            self.state = "ramping"
            self.ramped_sent = False
            self.started = monotonic()
            self.finished = False

            url = f"wss://{HOST}:{opts.port}/"
            self.factory = WebSocketClientFactory(url)
            self.factory.protocol = SoakClientProtocol
            self.factory.setProtocolOptions(
                # The server's handshake limit is the one under test.
                openHandshakeTimeout=max(60.0, 2 * opts.timeout),
                closeHandshakeTimeout=5.0,
                utf8validateIncoming=False,
            )
            self.tls = client_tls_options(HOST, opts.ca_file)

        def endpoint(self, index: int) -> Any:
            """
            Connection C{index} of all generators comes from loopback
            address 127.0.0.(1 + index // per_source): the server caps
            connections per client address, and real clients have many.
            """
            source = f"127.0.0.{1 + (opts.first + index) // opts.per_source}"
            return wrapClientTLS(
                self.tls,
                TCP4ClientEndpoint(reactor, HOST, opts.port, timeout=30, bindAddress=(source, 0)),
            )

        # ---- ramp-up
        def start(self) -> None:
            self.ramp_call = task.LoopingCall(self._ramp)
            self.ramp_call.start(0.02)
            self.tick_call = task.LoopingCall(self._tick)
            self.tick_call.start(self.interval / SLOTS)
            self.sweep_call = task.LoopingCall(self._sweep)
            self.sweep_call.start(0.5, now=False)
            self.report_call = task.LoopingCall(self._report)
            self.report_call.start(1.0, now=False)
            reactor.callLater(opts.max_seconds, self.abort)

        def _ramp(self) -> None:
            due = min(self.n, int((monotonic() - self.started) * self.rate) + 1)
            while self.c["attempted"] < due:
                self._connect()
            if self.c["attempted"] >= self.n and self.ramp_call.running:
                self.ramp_call.stop()

        def _connect(self) -> None:
            index = self.c["attempted"]
            self.c["attempted"] += 1
            started = monotonic()
            d = self.endpoint(index).connect(self.factory)
            self.connecting.add(d)

            def made(protocol: Any) -> None:
                self.connecting.discard(d)
                protocol.started = started
                self.live.add(protocol)

            def failed(reason: Any) -> None:
                self.connecting.discard(d)
                self.c["failed"] += 1
                self.failures[f"connect: {reason.getErrorMessage()}"] += 1
                self._check_ramped()

            d.addCallbacks(made, failed)

        def _check_ramped(self) -> None:
            if not self.ramped_sent and self.c["opened"] + self.c["failed"] >= self.n:
                self.ramped_sent = True
                if self.state == "ramping":
                    self.state = "running"
                _emit("ramped", elapsed=monotonic() - self.started, **self._counts())

        def opened(self, protocol: Any) -> None:
            self.c["opened"] += 1
            self.setup.append(monotonic() - protocol.started)
            if self.state in ("ramping", "running"):
                protocol.slot = (opts.offset + self.c["opened"]) % SLOTS
                self.slots[protocol.slot][protocol] = None
            self._check_ramped()

        # ---- pings and echoes
        def _tick(self) -> None:
            now = monotonic()
            current = int(now * SLOTS / self.interval)
            if self.next_tick is None:
                self.next_tick = current
            behind = current - self.next_tick + 1
            if behind > SLOTS:
                # More than a whole interval late: each connection gets one
                # ping, not several; the rest are counted as skipped.
                self.c["skipped_ticks"] += behind - SLOTS
                self.next_tick = current - SLOTS + 1
            lag = now - self.next_tick * self.interval / SLOTS
            self.max_lag = max(self.max_lag, lag)
            if self.hold_hist is not None:
                self.hold_lag = max(self.hold_lag, lag)
            if self.state not in ("ramping", "running"):
                self.next_tick = current + 1
                return
            payload = str(int(time.time() * 1000)).encode("ascii")
            c = self.c
            while self.next_tick <= current:
                for protocol in tuple(self.slots[self.next_tick % SLOTS]):
                    protocol.pending.append((payload, now))
                    protocol.sendMessage(payload, False)
                    c["sent"] += 1
                self.next_tick += 1

        def echoed(self, protocol: Any, payload: bytes, is_binary: bool) -> None:
            pending = protocol.pending
            if pending and not is_binary and pending[0][0] == payload:
                rtt = monotonic() - pending.popleft()[1]
                if rtt > self.timeout:
                    # Answered, but after the timeout: lost all the same.
                    self.c["lost"] += 1
                    self.c["late"] += 1
                    return
                self.c["echoed"] += 1
                bucket = _bucket(rtt)
                self.hist[bucket] += 1
                if rtt > self.rtt_max:
                    self.rtt_max = rtt
                if self.hold_hist is not None:
                    self.hold_hist[bucket] += 1
                    if rtt > self.hold_rtt_max:
                        self.hold_rtt_max = rtt
            elif not is_binary and payload in protocol.expired:
                protocol.expired.remove(payload)
                self.c["late"] += 1
            else:
                self.c["unmatched"] += 1

        def _sweep(self) -> None:
            limit = monotonic() - self.timeout
            lost = 0
            for protocol in self.live:
                pending = protocol.pending
                while pending and pending[0][1] < limit:
                    protocol.expired.append(pending.popleft()[0])
                    lost += 1
            self.c["lost"] += lost

        def closed(self, protocol: Any, clean: bool, code: int | None, reason: str | None) -> None:
            self.live.discard(protocol)
            if protocol.slot >= 0:
                self.slots[protocol.slot].pop(protocol, None)
            if protocol.was_open:
                self.c["lost_disconnect"] += len(protocol.pending)
                protocol.pending.clear()
                if protocol.requested:
                    self.c["closed"] += 1
                    if not clean:
                        self.c["unclean_close"] += 1
                else:
                    self.c["disconnects"] += 1
                    self.drops[f"{code}: {reason or protocol.wasNotCleanReason}"[:200]] += 1
            else:
                self.c["failed"] += 1
                self.failures[f"{code}: {reason or protocol.wasNotCleanReason}"[:200]] += 1
                self._check_ramped()

        # ---- reporting
        def _counts(self) -> dict[str, Any]:
            return dict(self.c, open=sum(len(s) for s in self.slots), lag=self.max_lag)

        def _report(self) -> None:
            _emit("progress", **self._counts())

        def hold(self) -> None:
            """
            Every generator is fully ramped up: measure the steady state
            apart from here on.
            """
            if self.hold_hist is None:
                self.hold_hist = [0] * BUCKETS

        # ---- the end
        def stop(self) -> None:
            """
            Stop pinging, wait for the last echoes (at most the timeout),
            then close every WebSocket cleanly.
            """
            if self.state not in ("ramping", "running"):
                return
            self.state = "draining"
            if self.ramp_call.running:
                self.ramp_call.stop()
            deadline = monotonic() + self.timeout + 0.5

            def drain() -> None:
                waiting = any(p.pending for p in self.live)
                if waiting and monotonic() < deadline:
                    return
                self._sweep()
                drain_call.stop()
                self._close_all()

            drain_call = task.LoopingCall(drain)
            drain_call.start(0.05)

        def _close_all(self) -> None:
            self.state = "closing"
            for d in tuple(self.connecting):
                d.cancel()
            for protocol in tuple(self.live):
                protocol.requested = True
                if protocol.was_open and protocol.state == protocol.STATE_OPEN:
                    protocol.sendClose(1000)
                else:
                    protocol.transport.abortConnection()
            deadline = monotonic() + 15.0

            def wait() -> None:
                if self.live and monotonic() < deadline:
                    return
                wait_call.stop()
                self.finish()

            wait_call = task.LoopingCall(wait)
            wait_call.start(0.05)

        def finish(self, aborted: bool = False) -> None:
            if self.finished:
                return
            self.finished = True
            usage = resource.getrusage(resource.RUSAGE_SELF)
            _emit(
                "final",
                aborted=aborted,
                still_open=len(self.live),
                failures=dict(self.failures.most_common(10)),
                drops=dict(self.drops.most_common(10)),
                setup=self.setup,
                hist=self.hist,
                rtt_max=self.rtt_max,
                hold_hist=self.hold_hist or [0] * BUCKETS,
                hold_rtt_max=self.hold_rtt_max,
                hold_lag=self.hold_lag,
                cpu=usage.ru_utime + usage.ru_stime,
                maxrss=usage.ru_maxrss * 1024,
                **self._counts(),
            )
            reactor.stop()

        def abort(self) -> None:
            """
            The hard time bound: report what there is and stop.
            """
            self._sweep()
            self.finish(aborted=True)

    load = Load()
    # From the conductor: SIGUSR2, all generators are at full load;
    # SIGUSR1, finish gracefully.
    signal.signal(signal.SIGUSR2, lambda *_: reactor.callFromThread(load.hold))
    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(load.stop))
    reactor.callWhenRunning(load.start)
    reactor.run()
    return 0 if load.finished else 2


# --------------------------------------------------------------------------
# The conductor: server, generators, sampling, figures.


class Client:
    def __init__(self, index: int, process: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.process = process
        self.buffer = b""
        self.latest: dict[str, Any] = {}
        self.ramped: dict[str, Any] | None = None
        self.final: dict[str, Any] | None = None
        self.eof = False


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tmp: str | None = None
        self.server: subprocess.Popen[bytes] | None = None
        self.server_log: Any = None
        self.clients: list[Client] = []
        self.selector = selectors.DefaultSelector()
        self.samples: list[tuple[float, int]] = []  # (seconds since full load, RSS)
        self.timeline: list[dict[str, Any]] = []  # per sample: RSS, echoes awaited, CPU shares
        self.figures: dict[str, Any] = {}

    # ---- output
    def say(self, text: str) -> None:
        print(text, flush=True)

    # ---- processes
    def start_server(self, tls_dir: str, cpus: set[int] | None, nofile: int) -> int:
        assert self.tmp is not None
        command = [
            twistd(), "-n", "--pidfile=", *self.args.twistd_arg, "pingproto",
            "--listen", f"tcp:0:interface={HOST}" + (f":backlog={self.args.backlog}" if self.args.backlog else ""),
            "--tls-dir", tls_dir,
            *self.args.server_arg,
        ]
        self.figures["server_command"] = " ".join(["twistd", *command[1:-1 - len(self.args.server_arg)], "DIR",
                                                   *self.args.server_arg])
        log_path = os.path.join(self.tmp, "server.log")
        self.server_log = open(log_path, "wb")
        self.server = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self.server_log,
            stderr=subprocess.STDOUT,
            cwd=self.tmp,
            env=environment(),
            preexec_fn=_child_setup(cpus, nofile),
        )
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:
            with open(log_path, "rb") as f:
                match = LISTENING.search(f.read())
            if match:
                return int(match.group(1))
            if self.server.poll() is not None:
                raise SoakError(f"the server exited with {self.server.returncode}:\n{self.server_tail()}")
            time.sleep(0.05)
        raise SoakError(f"the server did not listen within 30 s:\n{self.server_tail()}")

    def server_tail(self, lines: int = 20) -> str:
        assert self.tmp is not None
        try:
            with open(os.path.join(self.tmp, "server.log"), "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")
        except OSError:
            return ""

    def start_clients(self, port: int, ca_file: str, cpus: set[int] | None, nofile: int,
                      hard_seconds: float) -> None:
        a = self.args
        k = a.clients
        first = 0
        for index in range(k):
            count = a.connections // k + (1 if index < a.connections % k else 0)
            command = [
                sys.executable, os.path.abspath(__file__), "--client",
                "--port", str(port), "--ca-file", ca_file,
                "--count", str(count), "--offset", str(index * SLOTS // k),
                "--first", str(first), "--per-source", str(a.per_source),
                "--rate", repr(a.ramp_rate / k), "--timeout", repr(a.timeout),
                "--interval", repr(a.interval), "--max-seconds", repr(hard_seconds),
            ]
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=environment(),
                preexec_fn=_child_setup(cpus, nofile),
            )
            first += count
            client = Client(index, process)
            self.clients.append(client)
            assert process.stdout is not None
            os.set_blocking(process.stdout.fileno(), False)
            self.selector.register(process.stdout, selectors.EVENT_READ, client)

    def pump(self, until: float) -> None:
        """
        Read what the generators say until C{until} (a monotonic time).
        """
        while True:
            remaining = until - time.monotonic()
            if remaining <= 0:
                return
            for key, _ in self.selector.select(min(remaining, 0.5)):
                client: Client = key.data
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    client.eof = True
                    self.selector.unregister(key.fileobj)
                    continue
                client.buffer += data
                *lines, client.buffer = client.buffer.split(b"\n")
                for line in lines:
                    message = json.loads(line)
                    kind = message.pop("type")
                    if kind == "ramped":
                        client.ramped = message
                    elif kind == "final":
                        client.final = message
                    client.latest = message
            self.check_alive()

    def check_alive(self) -> None:
        if self.server is not None and self.server.poll() is not None:
            raise SoakError(f"the server exited with {self.server.returncode} during the run:\n"
                            f"{self.server_tail()}")
        for client in self.clients:
            if client.final is None and client.eof:
                raise SoakError(f"generator {client.index} exited with "
                                f"{client.process.wait(5)} before reporting")

    def total(self, name: str, source: str = "latest") -> int:
        return sum(int((getattr(c, source) or {}).get(name, 0)) for c in self.clients)

    def cpu_of(self, processes: list[subprocess.Popen[bytes]]) -> float:
        total = 0.0
        for process in processes:
            try:
                total += _proc_cpu(process.pid)
            except OSError:
                pass
        return total

    def mark(self) -> dict[str, Any]:
        """
        Where the CPU clocks stand: this run's processes, the machine, and
        how long tasks waited for a CPU.
        """
        assert self.server is not None
        own = resource.getrusage(resource.RUSAGE_SELF)
        busy, steal = _machine_cpu()
        return dict(
            t=time.monotonic(),
            server=_tree_cpu(self.server.pid),
            generator=self.cpu_of([c.process for c in self.clients]),
            own=own.ru_utime + own.ru_stime,
            machine=busy,
            steal=steal,
            pressure=_cpu_pressure(),
        )

    @staticmethod
    def phase(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        """
        CPU use between two marks, as fractions of one core: the server, the
        generators, every other process on the machine, time stolen, and
        the share of the time some task waited for a CPU.
        """
        wall = max(1e-9, after["t"] - before["t"])
        share = {k: (after[k] - before[k]) / wall for k in ("server", "generator", "own", "machine", "steal")}
        share["others"] = max(0.0, share["machine"] - share["server"] - share["generator"] - share["own"])
        share["pressure"] = (
            None if before["pressure"] is None or after["pressure"] is None
            else (after["pressure"] - before["pressure"]) / wall
        )
        return share

    def stop_everything(self) -> None:
        """
        Stop every process this script started; safe to call more than once.
        """
        for client in self.clients:
            if client.process.poll() is None:
                client.process.kill()
        for client in self.clients:
            try:
                client.process.wait(5)
            except subprocess.TimeoutExpired:
                pass
            if client.process.stdout is not None:
                client.process.stdout.close()
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait(5)
        if self.server_log is not None:
            self.server_log.close()
            self.server_log = None

    # ---- the run
    def run(self) -> int:
        a = self.args
        nofile = _raise_nofile()
        needed = a.connections + 200
        if nofile < needed:
            raise SoakError(
                f"the open-file limit is {nofile}, and the server needs about {needed} "
                f"descriptors for {a.connections} connections: raise the hard limit "
                "(ulimit -Hn, or LimitNOFILE= under systemd)"
            )
        cpus = sorted(os.sched_getaffinity(0))
        server_cpus = client_cpus = None
        if len(cpus) >= 2 and not a.no_pin:
            server_cpus, client_cpus = {cpus[0]}, set(cpus[1:])
            os.sched_setaffinity(0, client_cpus)
        self.figures.update(
            machine=_machine(), cpus=len(cpus),
            server_cpus=sorted(server_cpus) if server_cpus else "any",
            generator_cpus=sorted(client_cpus) if client_cpus else "any",
            nofile=nofile,
        )
        self.tmp = tempfile.mkdtemp(prefix="pingproto-soak-")
        from tests.tlsdir import write_ca_file, write_tls_dir

        tls_dir = os.path.join(self.tmp, "tls")
        ca_file = write_ca_file(os.path.join(self.tmp, "ca.pem"), write_tls_dir(tls_dir))

        port = self.start_server(tls_dir, server_cpus, nofile)
        assert self.server is not None
        server_pid = self.server.pid
        self.say(f"server: pid {server_pid}, wss://{HOST}:{port}/, CPUs {self.figures['server_cpus']}")
        idle_mark = self.mark()
        time.sleep(2.0)
        idle_rss, _ = _tree_rss(server_pid)
        self.figures["rss_idle"] = idle_rss
        self.figures["cpu_before"] = self.phase(idle_mark, self.mark())

        ramp_bound = a.connections / a.ramp_rate + 60.0
        hard = ramp_bound + a.duration + a.timeout + 60.0
        drops_before = _listen_drops()
        ramp_started = time.monotonic()
        self.start_clients(port, ca_file, client_cpus, nofile, hard)
        ramp_mark = self.mark()
        self.say(f"generator: {a.clients} process(es), CPUs {self.figures['generator_cpus']}, "
                 f"ramping up {a.connections} connections at {a.ramp_rate:g}/s")

        # Ramp-up: until every generator has every connection open or failed.
        deadline = ramp_started + ramp_bound
        next_note = ramp_started + 5.0
        while not all(c.ramped for c in self.clients):
            now = time.monotonic()
            if now >= deadline:
                # Not a crash: stop, and report what the connections that
                # did not open ran into.
                self.figures["ramp_incomplete"] = ramp_bound
                self.say(f"ramp-up did not finish within {ramp_bound:.0f} s: stopping without a hold")
                break
            self.pump(min(deadline, now + 0.5))
            if time.monotonic() >= next_note:
                next_note += 5.0
                self.say(f"  ramp +{time.monotonic() - ramp_started:5.1f}s: "
                         f"{self.total('opened')} open, {self.total('failed')} failed")
        full_load = time.monotonic()
        for client in self.clients:
            client.process.send_signal(signal.SIGUSR2)
        ramp_time = full_load - ramp_started
        load_mark = self.mark()
        self.figures["listen_drops"] = _listen_drops() - drops_before
        load_rss, _ = _tree_rss(server_pid)
        self.samples.append((0.0, load_rss))
        opened = self.total("opened")
        failed = self.total("failed")
        self.figures.update(ramp_time=ramp_time, rss_load=load_rss,
                            server_procs=len(_tree(server_pid)),
                            server_fds=sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in _tree(server_pid)),
                            cpu_ramp=self.phase(ramp_mark, load_mark))
        self.say(f"full load after {ramp_time:.1f} s: {opened} open, {failed} failed, "
                 f"server RSS {load_rss / 2**20:.1f} MiB")

        # Hold: sample the server every --sample-every seconds, and at the
        # end of the warm-up, the reference for flatness.
        duration = 0.0 if "ramp_incomplete" in self.figures else a.duration
        end = full_load + duration
        warmup = min(a.warmup, a.duration / 2)
        schedule = sorted(
            {warmup} | {k * a.sample_every for k in range(1, int(a.duration / a.sample_every) + 1)}
        )
        schedule = [t for t in schedule if t < duration - 0.5]
        previous = load_mark
        for offset in schedule:
            next_sample = full_load + offset
            self.pump(next_sample)
            elapsed = time.monotonic() - full_load
            rss, _ = _tree_rss(server_pid)
            self.samples.append((elapsed, rss))
            current = self.mark()
            cpu = self.phase(previous, current)  # since the last sample
            previous = current
            waiting = self.total("sent") - self.total("echoed") - self.total("lost")
            self.timeline.append(dict(t=elapsed, rss=rss, waiting=waiting, lost=self.total("lost"), **cpu))
            self.say(f"  hold +{elapsed:5.0f}s: {self.total('open')} open, "
                     f"{self.total('sent')} sent, {self.total('echoed')} answered, {waiting} awaited, "
                     f"{self.total('lost')} lost, {self.total('disconnects')} dropped; "
                     f"server RSS {rss / 2**20:.1f} MiB; CPU since last: server {100 * cpu['server']:.0f} %, "
                     f"generator {100 * cpu['generator']:.0f} %, others {100 * cpu['others']:.0f} %, "
                     f"pressure {100 * (cpu['pressure'] or 0):.0f} %")
        self.pump(end)
        self.figures["warmup"] = warmup
        held = time.monotonic() - full_load
        end_rss, hwm = _tree_rss(server_pid)
        self.samples.append((held, end_rss))
        end_mark = self.mark()
        self.figures.update(
            held=held, rss_end=end_rss, rss_hwm=hwm,
            cpu_hold=self.phase(load_mark, end_mark),
        )

        # Stop the pings, collect the finals, stop the server.
        for client in self.clients:
            client.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + a.timeout + 30.0
        while not all(c.final for c in self.clients):
            if time.monotonic() >= deadline:
                raise SoakError("the generators did not finish within "
                                f"{a.timeout + 30.0:.0f} s of being told to stop")
            self.pump(min(deadline, time.monotonic() + 0.5))
        for client in self.clients:
            client.process.wait(10)
        self.server.terminate()
        try:
            code = self.server.wait(15)
            self.figures["server_exit"] = (
                "stopped by SIGTERM" if code == -signal.SIGTERM else f"exit status {code} on SIGTERM"
            )
        except subprocess.TimeoutExpired:
            self.figures["server_exit"] = "did not stop within 15 s of SIGTERM"
        assert self.server_log is not None
        self.server_log.close()
        self.server_log = None
        with open(os.path.join(self.tmp, "server.log"), "rb") as f:
            log = f.read()
        self.figures.update(
            log_closed=len(re.findall(rb" closed: code ", log)),
            log_tracebacks=log.count(b"Traceback"),
        )
        if b"Server Shut Down." in log:
            self.figures["server_exit"] += ", shut down cleanly"
        return self.report(opened, failed)

    # ---- figures
    def report(self, opened: int, failed: int) -> int:
        a, f = self.args, self.figures
        finals = [c.final or {} for c in self.clients]

        def total(name: str) -> int:
            return sum(int(x.get(name, 0)) for x in finals)

        hist = [sum(x) for x in zip(*(x["hist"] for x in finals))]
        hold_hist = [sum(x) for x in zip(*(x["hold_hist"] for x in finals))]
        setup = [s for x in finals for s in x["setup"]]
        failures: collections.Counter[str] = collections.Counter()
        drops: collections.Counter[str] = collections.Counter()
        for x in finals:
            failures.update(x["failures"])
            drops.update(x["drops"])
        sent, echoed = total("sent"), total("echoed")
        lost, lost_disc = total("lost"), total("lost_disconnect")
        unmatched, disconnects = total("unmatched"), total("disconnects")
        aborted = any(x.get("aborted") for x in finals)

        # Flatness: from the first sample at or after the warm-up to the end.
        reference = next((s for s in self.samples if s[0] >= f["warmup"]), self.samples[-1])
        after = [rss for t, rss in self.samples if t >= reference[0]]
        growth = self.samples[-1][1] - reference[1]
        peak_growth = max(after) - reference[1]
        limit = max(a.max_growth_mib * 2**20, reference[1] * a.max_growth_percent / 100)
        per_connection = (f["rss_load"] - f["rss_idle"]) / max(1, opened)
        per_connection_end = (f["rss_end"] - f["rss_idle"]) / max(1, opened)

        problems = []
        if "ramp_incomplete" in f:
            problems.append(f"ramp-up did not finish within {f['ramp_incomplete']:.0f} s "
                            f"({a.connections - opened - failed} connections still opening)")
        if opened < a.connections or failed:
            problems.append(f"{a.connections - opened} of {a.connections} connections did not open")
        if disconnects:
            problems.append(f"{disconnects} connections dropped")
        if lost or lost_disc:
            problems.append(f"{lost + lost_disc} echoes lost")
        if unmatched:
            problems.append(f"{unmatched} echoes did not match their ping")
        if sent != echoed + lost + lost_disc:
            problems.append(f"{sent - echoed - lost - lost_disc} pings unaccounted for")
        if growth > limit:
            problems.append(f"server RSS grew {growth / 2**20:.1f} MiB after the first "
                            f"{reference[0]:.0f} s (limit {limit / 2**20:.1f} MiB)")
        if aborted:
            problems.append("a generator hit its time bound")
        skipped = total("skipped_ticks")
        if skipped:
            problems.append(f"the generator fell more than a whole interval behind ({skipped} ticks)")

        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.1f} ms"

        def mib(value: float) -> str:
            return f"{value / 2**20:.1f} MiB"

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{100 * value:.0f} %"

        hold, ramp = f["cpu_hold"], f["cpu_ramp"]
        rows = [
            ("machine", f["machine"]),
            ("server command", f["server_command"]),
            ("CPUs", f"server on {f['server_cpus']}, {a.clients} generator process(es) on "
                     f"{f['generator_cpus']}, open-file limit {f['nofile']}"),
            ("client addresses", f"{math.ceil(a.connections / a.per_source)} loopback addresses from "
                                 f"127.0.0.1, at most {a.per_source} connections each"),
            ("connections requested", a.connections),
            ("connections opened", opened),
            ("connections failed", failed),
            ("ramp-up", f"{f['ramp_time']:.1f} s at {a.ramp_rate:g}/s; setup p50 "
                        f"{ms(_exact_percentile(setup, 0.5))}, p99 "
                        f"{ms(_exact_percentile(setup, 0.99))}, max {ms(max(setup, default=None))}; "
                        f"{f['listen_drops']} SYNs dropped at a full listen queue"),
            ("held at full load", f"{f['held']:.0f} s"),
            ("echoes sent", sent),
            ("echoes answered", echoed),
            ("echoes lost", f"{lost}  (no echo within {a.timeout:g} s; {total('late')} of them came late)"),
            ("echoes lost at disconnect", lost_disc),
            ("echoes unmatched", unmatched),
            ("disconnects", disconnects),
            ("closed cleanly at the end", f"{total('closed')} ({total('unclean_close')} unclean)"),
            ("round trip, whole run", f"p50 {ms(_percentile(hist, 0.5))}, p99 {ms(_percentile(hist, 0.99))}, "
                                      f"p99.9 {ms(_percentile(hist, 0.999))}, "
                                      f"max {ms(max(x['rtt_max'] for x in finals) if sum(hist) else None)}"),
            ("round trip, full load", f"p50 {ms(_percentile(hold_hist, 0.5))}, "
                                      f"p99 {ms(_percentile(hold_hist, 0.99))}, "
                                      f"p99.9 {ms(_percentile(hold_hist, 0.999))}, "
                                      f"max {ms(max(x['hold_rtt_max'] for x in finals) if sum(hold_hist) else None)}"),
            ("server RSS idle", mib(f["rss_idle"])),
            ("server RSS at full load", f"{mib(f['rss_load'])} (right after ramp-up; {f['server_fds']} open fds"
                                        f"{'' if f['server_procs'] == 1 else ', summed over %d processes' % f['server_procs']})"),
            ("server RSS after warm-up", f"{mib(reference[1])} (at +{reference[0]:.0f} s)"),
            ("server RSS at end", f"{mib(f['rss_end'])} (at +{f['held']:.0f} s; peak VmHWM {mib(f['rss_hwm'])})"),
            ("memory per connection", f"{per_connection / 1024:.1f} KiB at full load, "
                                      f"{per_connection_end / 1024:.1f} KiB at end"),
            ("growth after warm-up", f"{growth / 2**20:+.2f} MiB ({100 * growth / reference[1]:+.2f} %), "
                                     f"peak {peak_growth / 2**20:+.2f} MiB; limit {limit / 2**20:.1f} MiB"),
            ("server CPU", f"{pct(hold['server'])} of one core at full load, "
                           f"{pct(ramp['server'])} during ramp-up"),
            ("generator CPU", f"{pct(hold['generator'])} of one core at full load, "
                              f"{pct(ramp['generator'])} during ramp-up "
                              f"({a.clients} process(es) together)"),
            ("other load on the machine", f"{pct(hold['others'])} of one core at full load, "
                                          f"{pct(ramp['others'])} during ramp-up, "
                                          f"{pct(f['cpu_before']['others'])} before; "
                                          f"steal {pct(hold['steal'])}"),
            ("CPU pressure (PSI some)", f"{pct(hold['pressure'])} of the time at full load, "
                                        f"{pct(ramp['pressure'])} during ramp-up, "
                                        f"{pct(f['cpu_before']['pressure'])} before"),
            ("generator lag", f"max {ms(max(x['hold_lag'] for x in finals))} behind schedule at full load, "
                              f"{ms(max(x['lag'] for x in finals))} overall; {skipped} skipped ticks"),
            ("server log", f"{f['log_closed']} WebSockets logged at their close, "
                           f"{f['log_tracebacks']} tracebacks; {f['server_exit']}"),
        ]
        self.say("")
        self.say(f"pingproto soak: {a.connections} wss:// connections on {HOST}, "
                 f"one ping per {a.interval:g} s each, echo timeout {a.timeout:g} s")
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            self.say(f"  {name:<{width}}  {value}")
        self.say("  RSS samples (s: MiB): " + ", ".join(f"{t:.0f}: {rss / 2**20:.1f}" for t, rss in self.samples))
        for reason, count in failures.most_common(5):
            self.say(f"  failed x{count}: {reason}")
        for reason, count in drops.most_common(5):
            self.say(f"  dropped x{count}: {reason}")

        summary = dict(
            connections=a.connections, opened=opened, failed=failed, sent=sent, answered=echoed,
            lost=lost, lost_at_disconnect=lost_disc, unmatched=unmatched, disconnects=disconnects,
            held=f["held"], ramp_time=f["ramp_time"], rss_idle=f["rss_idle"], rss_load=f["rss_load"],
            rss_reference=reference[1], reference_at=reference[0], rss_end=f["rss_end"],
            rss_hwm=f["rss_hwm"], per_connection=per_connection, per_connection_end=per_connection_end,
            growth=growth, peak_growth=peak_growth, growth_limit=limit,
            cpu_hold=hold, cpu_ramp=ramp, cpu_before=f["cpu_before"], clients=a.clients,
            late=total("late"), listen_drops=f["listen_drops"],
            rtt_p50=_percentile(hist, 0.5), rtt_p99=_percentile(hist, 0.99),
            rtt_p999=_percentile(hist, 0.999), rtt_max=max(x["rtt_max"] for x in finals),
            hold_rtt_p50=_percentile(hold_hist, 0.5), hold_rtt_p99=_percentile(hold_hist, 0.99),
            hold_rtt_p999=_percentile(hold_hist, 0.999),
            hold_rtt_max=max(x["hold_rtt_max"] for x in finals),
            hold_lag_max=max(x["hold_lag"] for x in finals), server_fds=f["server_fds"],
            setup_p50=_exact_percentile(setup, 0.5), setup_p99=_exact_percentile(setup, 0.99),
            setup_max=max(setup, default=None), lag_max=max(x["lag"] for x in finals),
            skipped_ticks=skipped, samples=self.samples, timeline=self.timeline, problems=problems,
            failures=dict(failures), drops=dict(drops), machine=f["machine"],
        )
        if a.json:
            with open(a.json, "w") as out:
                json.dump(summary, out, indent=1)
        if problems:
            self.say("verdict: FAIL: " + "; ".join(problems))
            return 1
        self.say(f"verdict: PASS: {opened} connections held {f['held']:.0f} s, {echoed} of {sent} "
                 f"echoes answered, none lost, none dropped, server RSS "
                 f"{growth / 2**20:+.2f} MiB after the first {reference[0]:.0f} s")
        return 0


def _machine() -> str:
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    import OpenSSL
    import autobahn
    import twisted
    from OpenSSL import SSL

    return (f"{os.cpu_count()} x {model or platform.machine()}, Linux {platform.release()}, "
            f"Python {platform.python_version()}, Twisted {twisted.__version__}, "
            f"Autobahn {autobahn.__version__}, pyOpenSSL {OpenSSL.__version__}, "
            f"{SSL.SSLeay_version(SSL.SSLEAY_VERSION).decode()}")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Soak pingproto's wss:// echo with many concurrent connections on 127.0.0.1.",
    )
    p.add_argument("--connections", "-c", type=int, default=5000,
                   help=f"concurrent connections (1..{MAX_CONNECTIONS}; default 5000)")
    p.add_argument("--duration", "-d", type=float, default=300.0,
                   help=f"seconds to hold them all open once ramped up (max {MAX_DURATION:g}; default 300)")
    p.add_argument("--ramp-rate", type=float, default=200.0,
                   help="new connections per second during ramp-up, all generators together (default 200)")
    p.add_argument("--clients", type=int, default=0,
                   help="generator processes (default: one per 2500 connections, at least 2)")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between pings on a connection (default 1)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds an echo may take before it is lost (default 5)")
    p.add_argument("--sample-every", type=float, default=10.0, help="seconds between memory samples (default 10)")
    p.add_argument("--warmup", type=float, default=60.0,
                   help="seconds at full load before memory must stay flat (default 60; at most half the duration)")
    p.add_argument("--max-growth-percent", type=float, default=2.0,
                   help="allowed RSS growth after the warm-up, percent of RSS then (default 2)")
    p.add_argument("--max-growth-mib", type=float, default=2.0,
                   help="allowed RSS growth after the warm-up in MiB, if larger than the percentage (default 2)")
    p.add_argument("--per-source", type=int, default=250,
                   help="connections from each loopback source address 127.0.0.1, 127.0.0.2, ... "
                        "(default 250: the server serves at most 256 per address by default)")
    p.add_argument("--backlog", type=int, default=0,
                   help="listen queue length for the server's endpoint (default: Twisted's, 50)")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin the server and the generators to separate CPUs")
    p.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for `twistd pingproto` (repeatable), e.g. --server-arg=--handshake-timeout=30")
    p.add_argument("--twistd-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for twistd itself, before `pingproto` (repeatable), "
                        "e.g. --twistd-arg=--profile=FILE --twistd-arg=--profiler=cprofile")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE as JSON")
    # --client mode: one load generator process, started by the conductor.
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    p.add_argument("--ca-file", help=argparse.SUPPRESS)
    p.add_argument("--count", type=int, help=argparse.SUPPRESS)
    p.add_argument("--first", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--offset", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    p.add_argument("--max-seconds", type=float, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.connections <= MAX_CONNECTIONS:
        p.error(f"--connections must be 1..{MAX_CONNECTIONS}")
    if not 0 < args.duration <= MAX_DURATION:
        p.error(f"--duration must be more than 0 and at most {MAX_DURATION:g}")
    if not 0 < args.ramp_rate <= MAX_RAMP_RATE:
        p.error(f"--ramp-rate must be more than 0 and at most {MAX_RAMP_RATE:g}")
    if not 0.05 <= args.interval <= 60 or not 0 < args.timeout <= 60 or args.sample_every <= 0:
        p.error("--interval must be 0.05..60 s, --timeout 0..60 s, --sample-every positive")
    if not 1 <= args.per_source <= 65_000 or args.connections / args.per_source > 254:
        p.error("--per-source must be 1..65000, and at most 254 source addresses are used")
    if args.clients == 0:
        args.clients = max(2, math.ceil(args.connections / 2500))
    args.clients = max(1, min(args.clients, MAX_CLIENTS, args.connections))
    if args.client and (args.port is None or args.count is None or args.rate is None
                        or args.max_seconds is None or args.ca_file is None):
        p.error("--client needs --port, --ca-file, --count, --rate and --max-seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if args.client:
        return run_client(args)

    soak = Soak(args)

    def terminate(signum: int, frame: Any) -> None:
        raise Stopped(signum)

    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, terminate)
    try:
        return soak.run()
    except (SoakError, FileNotFoundError) as e:
        print(f"soak: {e}", file=sys.stderr, flush=True)
        return 2
    except Stopped as e:
        print(f"soak: stopped by signal {e.args[0]}; stopping everything it started", file=sys.stderr, flush=True)
        return 2
    finally:
        soak.stop_everything()
        if soak.tmp is not None:
            shutil.rmtree(soak.tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
