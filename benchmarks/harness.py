"""
Performance comparison: pingproto beside its baselines, in one run.

    python3 benchmarks/run            # the full run, about 11 minutes on 2 CPUs
    python3 benchmarks/run --quick    # a short one, about 4 minutes

Starts each server as its own process on 127.0.0.1, pinned to the first
CPU (when there are two or more), and drives each in turn from a separate
load-generator process (benchmarks/loadgen.py: picows + uvloop, installed by
this script into a scratch virtualenv) pinned to the second.  The servers:

  tcp      Twisted raw TCP echo                  benchmarks/servers/raw_echo.py
  fl-ws    the WebSocket floor, ws://            benchmarks/servers/ws_floor.py
  ab-ws    plain Autobahn echo on Twisted, ws:// benchmarks/servers/autobahn_echo.py
  pp-ws    pingproto, ws://                      twistd -n pingproto ...
  tls      Twisted raw TLS echo, pingproto's TLS benchmarks/servers/raw_echo.py --tls-dir
  fl-wss   the WebSocket floor, wss://           benchmarks/servers/ws_floor.py --tls-dir
  ab-wss   plain Autobahn echo, wss://           benchmarks/servers/autobahn_echo.py --tls-dir
  pp-wss   pingproto, wss://                     twistd -n pingproto ... --tls-dir
  node-ws  node `ws`, wss://                     benchmarks/servers/ws_echo.js
  sockjs   node SockJS, wss://, /sock/websocket  benchmarks/servers/sockjs_echo.js

(the floor is the least a WebSocket echo can do on Twisted: upgrade, echo,
answer a close, with no checks, limits or logging; what it costs over the
raw echoes is what the WebSocket protocol costs on this stack; the node
servers run when `node` and `npm` exist; `ws` and `sockjs` are
installed with npm into /var/tmp/pingproto-bench-node, outside the repo).

It measures, for each: the server's CPU time per round trip (utime+stime
from /proc/PID/stat over the measuring window, divided by the round trips),
round trips a second and the RTT p50/p99 seen by the client at 1, 100 and
1,000 connections (each a closed loop of 13-byte text messages); memory per
idle connection (VmRSS growth over 10,000 open connections); and the CPU per
connection (TCP + TLS + WebSocket upgrade + clean close).  The echo and
handshake figures are medians of --rounds interleaved rounds.  It prints
one table with the figures and pingproto's ratios to the baselines, and the
targets of issue 6 as met or not.  Then it runs benchmarks/scaling.py
(`--workers` 1 and 2 under the same load; --no-scaling leaves it out) and
prints its table.  The method is in docs/performance.md.

Load only goes to 127.0.0.1; every loop is bounded in count and time, and
every process it starts is stopped on every way out.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from tests.commands import environment, twistd  # noqa: E402  (the repo's own helpers)
SERVERS_DIR = os.path.join(HERE, "servers")
LOADGEN = os.path.join(HERE, "loadgen.py")
CLIENT_VENV = "/var/tmp/pingproto-bench-py"
NODE_DIR = "/var/tmp/pingproto-bench-node"
CLIENT_PACKAGES = ["picows", "uvloop", "pyopenssl"]  # pyOpenSSL: the handshake client
NODE_PACKAGES = ["ws", "sockjs"]

# pingproto's own limits would distort a load test from one address (per
# address cap 256, message rate 100/s): lifted, and only these.
PINGPROTO_LIMITS = ["--max-per-address", "0", "--max-connections", "20000", "--max-message-rate", "1000000"]

LEVELS = (1, 100, 1000)
MAX_TOTAL_SECONDS = 30 * 60  # a run that takes longer than this is stopped


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------

_children: list[subprocess.Popen[bytes]] = []
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup(cpu: int | None) -> Any:
    def setup() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    return setup


def stop_children() -> None:
    for proc in _children:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 8
    for proc in _children:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    _children.clear()


def _on_signal(signum: int, frame: Any) -> None:
    stop_children()
    raise SystemExit(128 + signum)


# --- setup: the client's virtualenv, the node packages, the certificate ----


def client_python() -> tuple[str, str]:
    """
    A Python with picows, uvloop and pyOpenSSL: a scratch virtualenv, made
    (or completed) on first use.  Falls back to this Python (asyncio,
    uvloop if it has it; pyOpenSSL it has, as pingproto needs it).
    """
    py = os.path.join(CLIENT_VENV, "bin", "python")
    check = [py, "-c", "import picows, uvloop, OpenSSL"]
    if os.path.exists(py) and subprocess.run(check, capture_output=True).returncode == 0:
        return py, "picows + uvloop, handshakes.py"
    log(f"setting up the load generator's virtualenv in {CLIENT_VENV} (pip install {' '.join(CLIENT_PACKAGES)}) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", CLIENT_VENV], check=True, timeout=120, capture_output=True)
        subprocess.run([py, "-m", "pip", "install", "-q", *CLIENT_PACKAGES], check=True, timeout=600, capture_output=True)
        if subprocess.run(check, capture_output=True).returncode == 0:
            return py, "picows + uvloop, handshakes.py"
    except (subprocess.SubprocessError, OSError) as e:
        log(f"  could not install picows/uvloop ({e}); falling back to asyncio")
    return sys.executable, "asyncio (fallback), handshakes.py"


def node_ready(enabled: bool) -> str | None:
    """
    The node executable, with ws and sockjs installed in NODE_DIR, or None.
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if not enabled or not node or not npm:
        return None
    modules = os.path.join(NODE_DIR, "node_modules")
    if all(os.path.isdir(os.path.join(modules, p)) for p in NODE_PACKAGES):
        return node
    log(f"installing {' '.join(NODE_PACKAGES)} with npm into {NODE_DIR} ...")
    os.makedirs(NODE_DIR, exist_ok=True)
    package = os.path.join(NODE_DIR, "package.json")
    if not os.path.exists(package):
        with open(package, "w") as f:
            f.write('{"name": "pingproto-bench-node", "private": true}\n')
    try:
        subprocess.run([npm, "install", "--no-audit", "--no-fund", *NODE_PACKAGES], cwd=NODE_DIR,
                       check=True, timeout=300, capture_output=True)
    except (subprocess.SubprocessError, OSError) as e:
        log(f"  npm install failed ({e}); leaving the node servers out")
        return None
    return node


def make_tls_dir(directory: str) -> None:
    from tests.tlsdir import write_tls_dir  # trustme: the throw-away CA of the tests

    write_tls_dir(directory)


# --- servers ----------------------------------------------------------------


@dataclass
class Server:
    key: str
    title: str
    proto: str  # how the load generator talks to it: tcp, tls, ws, wss
    argv: list[str]
    env: dict[str, str]
    path: str = "/"
    proc: subprocess.Popen[bytes] | None = None
    port: int = 0
    logfile: str = ""
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def server_list(tls_dir: str, node: str | None, py: str, experiments: bool = False) -> list[Server]:
    env = environment()
    tw = [twistd(), "-n", "--pidfile=", "pingproto", "--listen", "tcp:0:interface=127.0.0.1", *PINGPROTO_LIMITS]
    raw = [py, os.path.join(SERVERS_DIR, "raw_echo.py")]
    ab = [py, os.path.join(SERVERS_DIR, "autobahn_echo.py")]
    floor = [py, os.path.join(SERVERS_DIR, "ws_floor.py")]
    tls = ["--tls-dir", tls_dir]
    servers = [
        Server("tcp", "Twisted raw TCP echo", "tcp", raw, env),
        Server("fl-ws", "the WebSocket floor on Twisted, ws://", "ws", floor, env),
        Server("ab-ws", "plain Autobahn echo on Twisted, ws://", "ws", ab, env),
        Server("pp-ws", "pingproto, ws://", "ws", tw, env),
        Server("tls", "Twisted raw TLS echo (pingproto's ServerTLS)", "tls", raw + tls, env),
        Server("fl-wss", "the WebSocket floor on Twisted, wss://", "wss", floor + tls, env),
        Server("ab-wss", "plain Autobahn echo on Twisted, wss://", "wss", ab + tls, env),
        Server("pp-wss", "pingproto, wss://", "wss", tw + tls, env),
    ]
    if experiments:
        servers.append(Server("tls-nb", "experiment: raw TLS echo without Twisted's write buffering", "tls",
                              raw + tls + ["--unbuffered-tls"], env))
        servers.append(Server("tcp-now", "experiment: raw TCP echo writing at once, as pingproto does", "tcp",
                              raw + ["--write-now"], env))
    if node:
        nenv = dict(os.environ, NODE_PATH=os.path.join(NODE_DIR, "node_modules"))
        servers += [
            Server("node-ws", "node ws, wss://", "wss", [node, os.path.join(SERVERS_DIR, "ws_echo.js"), *tls], nenv),
            Server("sockjs", "node SockJS, wss:// /sock/websocket", "wss",
                   [node, os.path.join(SERVERS_DIR, "sockjs_echo.js"), *tls], nenv, path="/sock/websocket"),
        ]
    return servers


def start_server(server: Server, cpu: int | None, scratch: str) -> None:
    server.logfile = os.path.join(scratch, f"{server.key}.log")
    out = open(server.logfile, "wb")
    server.proc = subprocess.Popen(
        server.argv, env=server.env, cwd=scratch, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        preexec_fn=_child_setup(cpu), start_new_session=True,
    )
    _children.append(server.proc)
    out.close()


# The line a supervisor relays from its worker N once that listens:
# "worker 2: [pingproto.service#info] pingproto listening on wss://...".
WORKER_LISTENING = re.compile(rb"worker (\d+): \[pingproto\.service(?:#\w+)?\] pingproto listening on ")


def workers_listening(log: bytes) -> set[int]:
    """
    The workers that a supervisor's log says are listening.
    """
    return {int(n) for n in WORKER_LISTENING.findall(log)}


def wait_listening(server: Server, deadline: float) -> None:
    pattern = re.compile(rb"(?:pingproto listening on wss?://127\.0\.0\.1:|^listening on )(\d+)", re.M)
    while time.monotonic() < deadline:
        with open(server.logfile, "rb") as f:
            match = pattern.search(f.read())
        if match:
            server.port = int(match.group(1))
            return
        if server.proc is not None and server.proc.poll() is not None:
            break
        time.sleep(0.1)
    with open(server.logfile, "rb") as f:
        tail = f.read()[-2000:].decode(errors="replace")
    raise SystemExit(f"benchmarks/run: {server.key} did not start:\n{tail}")


# --- running the load generator -----------------------------------------------


def loadgen(py: str, cpu: int | None, server: Server, mode: str, *args: str, timeout: float) -> dict[str, Any]:
    assert server.proc is not None
    argv = [py, LOADGEN, mode, "--proto", server.proto, "--port", str(server.port), "--path", server.path,
            "--server-pid", str(server.proc.pid), *args]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=_child_setup(cpu))
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise SystemExit(f"benchmarks/run: the load generator ran out of time on {server.key} {mode}")
    finally:
        _children.remove(proc)
    if proc.returncode != 0 or not out.strip():
        raise SystemExit(f"benchmarks/run: the load generator failed on {server.key} {mode}:\n"
                         + err.decode(errors="replace")[-3000:])
    if err.strip():
        log("  " + err.decode(errors="replace").strip().replace("\n", "\n  "))
    if server.proc.poll() is not None:
        raise SystemExit(f"benchmarks/run: {server.key} died during {mode}; see {server.logfile}")
    return json.loads(out.decode().strip().splitlines()[-1])


# --- the table ----------------------------------------------------------------


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def figure(server: Server, test: str, name: str) -> float | None:
    return median([r[name] for r in server.results.get(test, [])])


def fmt(value: float | None, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "ratio":
        return f"{value:.2f}x"
    if kind == "int":
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


RATIOS = [("pp-wss", "tls"), ("fl-wss", "tls"), ("pp-wss", "fl-wss"), ("pp-wss", "ab-wss"), ("pp-wss", "node-ws"),
          ("pp-ws", "tcp"), ("fl-ws", "tcp"), ("pp-ws", "fl-ws"), ("pp-ws", "ab-ws"), ("tls-nb", "tls"),
          ("pp-ws", "tcp-now"), ("tcp-now", "tcp")]


def rows(servers: list[Server]) -> list[tuple[str, str, Any]]:
    """
    (label, kind, getter(server) -> value or text) for every row.
    """
    out: list[tuple[str, str, Any]] = []
    for n in LEVELS:
        out.append((f"CPU us / round trip, {n:,} conn", "", lambda s, n=n: figure(s, f"echo{n}", "us_cpu_per_rt")))
    # How far apart the rounds were where the targets are read: on a quiet
    # machine a few microseconds; a run slowed from outside shows here
    # first, in the raw echoes (nothing inside the machine sees it).
    out.append(("CPU us / rt, 1 conn, rounds' range", "text", lambda s: _range(s, "echo1", "us_cpu_per_rt")))
    for n in LEVELS:
        out.append((f"round trips / s, {n:,} conn", "int", lambda s, n=n: figure(s, f"echo{n}", "rt_per_s")))
    for n in LEVELS:
        out.append((f"RTT p50 us, {n:,} conn", "", lambda s, n=n: figure(s, f"echo{n}", "rtt_p50_us")))
        out.append((f"RTT p99 us, {n:,} conn", "", lambda s, n=n: figure(s, f"echo{n}", "rtt_p99_us")))
    out.append(("KiB / idle conn (VmRSS)", "", lambda s: figure(s, "idle", "kib_per_conn")))
    out.append(("CPU us / handshake", "", lambda s: figure(s, "handshake", "us_cpu_per_handshake")))
    out.append(("handshakes / s", "int", lambda s: figure(s, "handshake", "handshakes_per_s")))
    for n in LEVELS:
        out.append((f"gen/server CPU %, {n:,} conn", "text", lambda s, n=n: _pair(s, f"echo{n}")))
    out.append(("gen/server CPU %, handshakes", "text", lambda s: _pair(s, "handshake")))
    out.append(("other load, CPUs (echo)", "text", lambda s: _other(s)))
    return out


def _pair(server: Server, test: str) -> str:
    g, s = figure(server, test, "gen_cpu_pct"), figure(server, test, "server_cpu_pct")
    return "-" if g is None or s is None else f"{g:.0f}/{s:.0f}"


def _range(server: Server, test: str, name: str) -> str:
    values = [r[name] for r in server.results.get(test, []) if r.get(name) is not None]
    return f"{fmt(min(values))}-{fmt(max(values))}" if len(values) > 1 else "-"


def _other(server: Server) -> str:
    values = [r["other_load_cpus"] for n in LEVELS for r in server.results.get(f"echo{n}", [])]
    return f"{statistics.median(values):.2f}" if values else "-"


def table(servers: list[Server]) -> str:
    by_key = {s.key: s for s in servers}
    ratios = [(a, b) for a, b in RATIOS if a in by_key and b in by_key]
    header = ["figure (median)"] + [s.key for s in servers] + [f"{a}/{b}" for a, b in ratios]
    body = []
    for label, kind, get in rows(servers):
        line = [label] + [get(s) if kind == "text" else fmt(get(s), kind) for s in servers]
        for a, b in ratios:
            if kind == "text":
                line.append("")
                continue
            va, vb = get(by_key[a]), get(by_key[b])
            line.append(fmt(va / vb, "ratio") if va is not None and vb else "-")
        body.append(line)
    widths = [max(len(str(r[i])) for r in [header] + body) for i in range(len(header))]

    def render(r: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(widths[0]) if i == 0 else str(c).rjust(widths[i])
                                 for i, c in enumerate(r)) + " |"

    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([render(header), sep] + [render(r) for r in body])


TARGETS = [
    # (label, numerator, denominator or None, test, field, limit)
    ("CPU per wss echo vs raw TLS echo (1 conn)", "pp-wss", "tls", "echo1", "us_cpu_per_rt", 1.25),
    ("p50 RTT wss vs raw TLS echo (1 conn)", "pp-wss", "tls", "echo1", "rtt_p50_us", 1.15),
    ("memory per idle wss connection, KiB", "pp-wss", None, "idle", "kib_per_conn", 24.0),
    ("CPU per wss handshake vs raw TLS handshake", "pp-wss", "tls", "handshake", "us_cpu_per_handshake", 1.25),
    ("CPU per ws echo vs raw TCP echo (1 conn)", "pp-ws", "tcp", "echo1", "us_cpu_per_rt", 1.25),
    ("p50 RTT ws vs raw TCP echo (1 conn)", "pp-ws", "tcp", "echo1", "rtt_p50_us", 1.15),
    ("memory per idle ws connection, KiB", "pp-ws", None, "idle", "kib_per_conn", 24.0),
    ("CPU per ws handshake vs raw TCP connection", "pp-ws", "tcp", "handshake", "us_cpu_per_handshake", 1.25),
]


def verdicts(servers: list[Server]) -> list[dict[str, Any]]:
    by_key = {s.key: s for s in servers}
    out = []
    for label, a, b, test, name, limit in TARGETS:
        if a not in by_key or (b is not None and b not in by_key):
            continue
        value = _measure(by_key, a, b, test, name)
        out.append({
            "target": label, "value": value, "limit": limit, "ratio": b is not None,
            "met": None if value is None else value <= limit,
            # What the WebSocket floor reaches on the same measure.
            "floor": _measure(by_key, a.replace("pp-", "fl-"), b, test, name),
        })
    return out


def _measure(by_key: dict[str, Server], a: str, b: str | None, test: str, name: str) -> float | None:
    """
    Server C{a}'s figure, divided by C{b}'s if there is a C{b}.
    """
    if a not in by_key:
        return None
    va = figure(by_key[a], test, name)
    if b is None or va is None:
        return va
    vb = figure(by_key[b], test, name)
    return va / vb if vb else None


def render_verdicts(items: list[dict[str, Any]]) -> str:
    lines = []
    for v in items:
        if v["value"] is None:
            lines.append(f"  {v['target']}: not measured")
            continue
        shown = f"{v['value']:.2f}x" if v["ratio"] else f"{v['value']:.1f}"
        limit = f"{v['limit']:.2f}x" if v["ratio"] else f"{v['limit']:.0f}"
        floor = v.get("floor")
        at_floor = ""
        if floor is not None:
            at_floor = f"; the WebSocket floor: {floor:.2f}x" if v["ratio"] else f"; the WebSocket floor: {floor:.1f}"
        lines.append(f"  {v['target']}: {shown} (target <= {limit}) {'met' if v['met'] else 'NOT met'}{at_floor}")
    return "\n".join(lines)


# --- machine facts ------------------------------------------------------------


def machine(cpus: list[int], client: str, node: str | None, client_py: str) -> dict[str, Any]:
    import OpenSSL
    import autobahn
    import twisted
    from OpenSSL import SSL
    from autobahn.websocket import USES_NVX

    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "cpu": model,
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "twisted": twisted.__version__,
        "autobahn": autobahn.__version__,
        "autobahn_nvx": USES_NVX,
        "pyopenssl": OpenSSL.__version__,
        "openssl": SSL.OpenSSL_version(SSL.OPENSSL_VERSION).decode(),
        "client": client,
        "loadavg_before": os.getloadavg(),
    }
    versions = subprocess.run(
        [client_py, "-c", "import importlib.metadata as m\nfor p in ('picows','uvloop','aiofastnet','pyopenssl'):\n"
         "    try: print(p, m.version(p))\n    except Exception: pass"],
        capture_output=True, text=True,
    ).stdout.split()
    facts["client_packages"] = " ".join(versions)
    if node:
        facts["node"] = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
        for p in NODE_PACKAGES:
            try:
                with open(os.path.join(NODE_DIR, "node_modules", p, "package.json")) as f:
                    facts[f"node_{p}"] = json.load(f)["version"]
            except (OSError, ValueError, KeyError):
                pass
    return facts


# --- main -------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run: 1 round, 2,000 idle connections")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of the echo and handshake tests [3]")
    parser.add_argument("--duration", type=float, help="seconds measured per echo test [2.5]")
    parser.add_argument("--idle-conns", type=int, help="idle connections for the memory figure [10000]")
    parser.add_argument("--handshake-seconds", type=float,
                        help="seconds of opening and closing connections per handshake test [2.5]")
    parser.add_argument("--servers", help="comma-separated subset, e.g. tls,pp-wss (default: all)")
    parser.add_argument("--no-node", action="store_true", help="leave the node servers out")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--experiments", action="store_true",
                        help="add tls-nb: the raw TLS echo without Twisted's small-write buffering, "
                        "and tcp-now: the raw TCP echo writing at once (pingproto.eagerwrite)")
    parser.add_argument("--no-scaling", action="store_true",
                        help="leave out the --workers scaling run (benchmarks/scaling.py) at the end")
    args = parser.parse_args()
    quick = args.quick
    def pick(value: Any, short: Any, full: Any) -> Any:
        return value if value is not None else (short if quick else full)

    rounds = pick(args.rounds, 1, 3)
    duration = pick(args.duration, 1.5, 2.5)
    idle_conns = pick(args.idle_conns, 2000, 10_000)
    handshakes = pick(args.handshake_seconds, 1.5, 2.5)
    if not (1 <= rounds <= 9 and 0.5 <= duration <= 60 and 0 <= idle_conns <= 15_000 and 0.5 <= handshakes <= 60):
        parser.error("--rounds 1..9, --duration 0.5..60, --idle-conns 0..15000, --handshake-seconds 0.5..60")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    started = time.monotonic()
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, gen_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if gen_cpu is not None:
        os.sched_setaffinity(0, {gen_cpu})  # this script sleeps; keep the servers' CPU free
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < idle_conns + 1000:
        parser.error(f"the open-file limit ({hard}) is too low for {idle_conns} connections")

    client_py, client = client_python()
    node = node_ready(not args.no_node)
    scratch = tempfile.mkdtemp(prefix="pingproto-bench-")
    tls_dir = os.path.join(scratch, "tls")
    make_tls_dir(tls_dir)
    servers = server_list(tls_dir, node, sys.executable, args.experiments)
    if args.servers:
        wanted = args.servers.split(",")
        unknown = set(wanted) - {s.key for s in servers}
        if unknown:
            parser.error(f"unknown or unavailable servers: {', '.join(sorted(unknown))}")
        servers = [s for s in servers if s.key in wanted]
    facts = machine(cpus, client, node, client_py)
    facts["cpus"] = len(cpus)
    log(f"benchmarks/run: {len(servers)} servers, {rounds} round(s) of echo at {', '.join(map(str, LEVELS))} "
        f"connections ({duration} s each) and {handshakes} s of handshakes, {idle_conns} idle connections; "
        f"servers on CPU {server_cpu}, load generator on CPU {gen_cpu}; client {client}; logs in {scratch}")

    def left() -> float:
        remaining = MAX_TOTAL_SECONDS - (time.monotonic() - started)
        if remaining <= 0:
            raise SystemExit("benchmarks/run: the run took longer than its bound; stopping")
        return remaining

    try:
        for s in servers:
            start_server(s, server_cpu, scratch)
        for s in servers:
            wait_listening(s, time.monotonic() + 60)

        # Memory first, on fresh processes: nothing freed earlier can be
        # reused by the new connections and hide their cost.
        if idle_conns:
            for s in servers:
                rate = "1000" if s.proto in ("tls", "wss") else "2000"
                r = loadgen(client_py, gen_cpu, s, "idle", "--conns", str(idle_conns), "--rate", rate,
                            "--concurrency", "32", "--settle", "3",
                            timeout=min(left(), 120 + 3 * idle_conns / int(rate)))
                s.results.setdefault("idle", []).append(r)
                log(f"  {s.key:8} idle {r['conns_open']:,} conns: {r['kib_per_conn']:.1f} KiB/conn "
                    f"(RSS {r['rss_before_bytes'] / 2**20:.0f} -> {r['rss_after_bytes'] / 2**20:.0f} MiB, "
                    f"ramp {r['ramp_s']:.1f} s)")
                if r["conns_open"] < idle_conns:
                    log(f"  warning: only {r['conns_open']} of {idle_conns} connections stayed open")

        for rnd in range(rounds):
            order = servers[rnd % len(servers):] + servers[: rnd % len(servers)]
            for s in order:
                for n in LEVELS:
                    r = loadgen(client_py, gen_cpu, s, "echo", "--conns", str(n), "--duration", str(duration),
                                "--warmup", "0.5", timeout=min(left(), 90 + duration))
                    s.results.setdefault(f"echo{n}", []).append(r)
                    log(f"  [{rnd + 1}/{rounds}] {s.key:8} echo {n:>5} conn: {r['rt_per_s']:>8,.0f} rt/s "
                        f"{r['us_cpu_per_rt']:6.1f} us CPU/rt  p50 {r['rtt_p50_us']:8.1f} us  "
                        f"p99 {r['rtt_p99_us']:8.1f} us  gen {r['gen_cpu_pct']:3.0f}% server "
                        f"{r['server_cpu_pct']:3.0f}% other {r['other_load_cpus']:.2f} CPUs")
                r = loadgen(client_py, gen_cpu, s, "handshake", "--duration", str(handshakes), "--count", "20000",
                            "--concurrency", "32", timeout=min(left(), 120 + handshakes))
                s.results.setdefault("handshake", []).append(r)
                log(f"  [{rnd + 1}/{rounds}] {s.key:8} handshakes: {r['us_cpu_per_handshake']:.0f} us CPU each, "
                    f"{r['handshakes_per_s']:,.0f}/s, gen {r['gen_cpu_pct']:.0f}% server {r['server_cpu_pct']:.0f}%")
    finally:
        stop_children()

    elapsed = time.monotonic() - started
    facts["elapsed_s"] = round(elapsed)
    facts["loadavg_after"] = os.getloadavg()
    result = {
        "machine": facts,
        "settings": {"rounds": rounds, "duration_s": duration, "idle_conns": idle_conns, "handshake_s": handshakes,
                     "levels": LEVELS, "server_cpu": server_cpu, "gen_cpu": gen_cpu,
                     "pingproto_options": PINGPROTO_LIMITS},
        "servers": {s.key: {"title": s.title, "argv": s.argv, "results": s.results} for s in servers},
        "verdicts": verdicts(servers),
    }
    for path in filter(None, [args.json, os.path.join(scratch, "results.json")]):
        with open(path, "w") as f:
            json.dump(result, f, indent=1)

    print()
    print(f"pingproto performance: {facts['cpus']} CPUs ({facts['cpu']}), Python {facts['python']}, "
          f"Twisted {facts['twisted']}, Autobahn {facts['autobahn']}, {facts['openssl']}, "
          f"node {facts.get('node', 'absent')}; client {client} ({facts['client_packages']}); "
          f"{rounds} round(s), medians; {elapsed / 60:.1f} min")
    print()
    print(table(servers))
    print()
    for s in servers:
        print(f"  {s.key:8} {s.title}")
    print()
    print("targets (issue 6):")
    print(render_verdicts(result["verdicts"]))
    print()
    print(f"every figure: {args.json or os.path.join(scratch, 'results.json')}")
    if args.no_scaling or args.servers:
        return 0
    print(flush=True)
    scaling = [sys.executable, os.path.join(HERE, "scaling.py")]
    scaling += ["--rounds", "1", "--duration", "1.5"] if quick else []
    scaling += ["--no-node"] if args.no_node else []
    # With every CPU this script started with: it pinned itself since.
    return subprocess.run(scaling, timeout=900, preexec_fn=lambda: os.sched_setaffinity(0, cpus)).returncode

