#!/usr/bin/env python3
"""
Throughput scaling of `twistd pingproto --workers N`, in one run.

    python3 benchmarks/scaling.py          # wss and ws, N = 1 .. CPUs, node: about 1.5 minutes on 2 CPUs

For pingproto over wss:// and ws://, and for N = 1, 2, ... up to the CPUs
this process may use, starts `twistd -n --pidfile= pingproto --listen
tcp:0:interface=127.0.0.1 --workers N` (with benchmarks/run's lifted limits),
waits until every worker serves, and drives it to saturation from
--generators load-generator processes (benchmarks/loadgen.py echo --sync:
picows + uvloop, --conns closed-loop connections in all, 13-byte text
messages).  The generators warm up, say "ready", and all measure the same
window, which this script times too.  Over that window it reads
/proc/PID/stat of the whole server (the twistd supervisor and every worker),
of each generator, and /proc/stat of the machine, and counts which worker
holds each connection (the ESTABLISHED sockets of /proc/net/tcp on the
server's port, matched to each worker's file descriptors).  The node `ws`
and SockJS echoes of benchmarks/run (single processes), when node and their
packages are there, run under the same load for comparison.

Nothing is pinned: N workers need N CPUs, and the generators share them.
On a machine with as many CPUs as workers the server therefore never has N
free cores.  So besides the raw throughput ratio to N=1 it prints the two
factors of that ratio (the server CPU it got, and its CPU per round trip:
if that stays flat, throughput grows with the cores it is given) and the
ratio this machine allows with the generators on it, min(N, C*s/(s+g))
for s and g the server's and the generators' CPU per round trip at N=1
(benchmarks/README.md explains every row).

Load only goes to 127.0.0.1; every loop is bounded in count and time, and
every process it starts is stopped on every way out.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

# The harness's helpers: the client's virtualenv, node, the TLS directory,
# the servers, and the bookkeeping that stops every child on every way out.
import harness as run

log = run.log
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_TOTAL_SECONDS = 10 * 60  # the whole run stops after this
START_TIMEOUT = 60.0  # server (and all its workers) listening
READY_TIMEOUT = 60.0  # generators connected and warmed up


# --- /proc ----------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """
    The whole machine's busy CPU seconds, and of those the ones in softirq:
    without CONFIG_IRQ_TIME_ACCOUNTING a tick that lands in softirq (the
    loopback's packet processing, mostly our own traffic) is counted there
    and not to the process it interrupted.
    """
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / CLK_TCK, softirq / CLK_TCK


def children(pid: int) -> list[int]:
    """
    The direct children of pid, oldest first.
    """
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append((int(fields[19]), int(name)))  # starttime, pid
    return [p for _, p in sorted(found)]


def connections_by_pid(port: int, pids: list[int]) -> dict[int, int]:
    """
    How many ESTABLISHED TCP connections to 127.0.0.1:port each pid holds.
    """
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state, inode = parts[1], parts[3], parts[9]
                    if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                        inodes.add(inode)
        except OSError:
            continue
    counts = {}
    for pid in pids:
        n = 0
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            fds = []
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                n += 1
        counts[pid] = n
    return counts


# --- one measurement ------------------------------------------------------------


@dataclass
class Target:
    """
    One server under test: pingproto over ws or wss with N workers, or a
    node echo; its figures, one dict per round.
    """

    key: str  # e.g. "pp-wss", "node-ws"
    workers: int
    server: Any  # benchmarks/run's Server
    worker_pids: list[int] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.key} N={self.workers}" if self.key.startswith("pp-") else self.key

    @property
    def figures(self) -> dict[str, Any]:
        """
        Medians over the rounds; per-worker lists busiest first.
        """
        out: dict[str, Any] = {}
        for name, value in self.rounds[0].items():
            values = [r[name] for r in self.rounds]
            if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
                numbers = [v for v in values if v is not None]
                out[name] = statistics.median(numbers) if numbers else None
            elif name in ("worker_cpus", "worker_conns"):
                ranked = [sorted(v, reverse=True) for v in values]
                out[name] = [statistics.median(v[i] for v in ranked) for i in range(len(ranked[0]))]
        spreads = [max(r["worker_conns"]) / max(1, min(r["worker_conns"])) for r in self.rounds]
        out["worst_conn_spread"] = max(spreads)
        return out


def wait_workers(server: Any, count: int, deadline: float) -> None:
    """
    Wait until the supervisor has relayed "listening" from every worker.
    """
    if count < 2:
        return
    while time.monotonic() < deadline:
        with open(server.logfile, "rb") as f:
            text = f.read()
        if len(run.workers_listening(text)) >= count:
            return
        if server.proc.poll() is not None:
            break
        time.sleep(0.1)
    raise SystemExit(f"benchmarks/scaling.py: {server.key} --workers {count}: not every worker started; "
                     f"see {server.logfile}")


def read_ready(procs: list[subprocess.Popen[bytes]], deadline: float) -> None:
    for proc in procs:
        assert proc.stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SystemExit("benchmarks/scaling.py: a load generator was not ready in time")
            readable, _, _ = select.select([proc.stdout], [], [], remaining)
            if not readable:
                continue
            line = proc.stdout.readline()
            if line.strip() == b"ready":
                break
            if not line:  # it ended
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise SystemExit(f"benchmarks/scaling.py: a load generator failed:\n{err[-3000:]}")


def start_target(t: Target, scratch: str, left: Any) -> None:
    run.start_server(t.server, None, scratch)
    run.wait_listening(t.server, time.monotonic() + min(left(), START_TIMEOUT))
    wait_workers(t.server, t.workers, time.monotonic() + min(left(), START_TIMEOUT))


def drive(t: Target, client_py: str, conns: int, generators: int, duration: float, warmup: float,
          left: Any) -> dict[str, Any]:
    """
    One measurement: open the connections, warm up, measure, close them.
    """
    server, workers = t.server, t.workers
    if server.proc.poll() is not None:
        raise SystemExit(f"benchmarks/scaling.py: {t.label} died; see {server.logfile}")
    supervisor = server.proc.pid
    worker_pids = children(supervisor) if workers > 1 else [supervisor]
    if len(worker_pids) != workers or (t.worker_pids and worker_pids != t.worker_pids):
        raise SystemExit(f"benchmarks/scaling.py: {t.label}: a worker died or is missing; see {server.logfile}")
    t.worker_pids = worker_pids
    tree = [supervisor] + (worker_pids if workers > 1 else [])

    shares = [conns // generators + (1 if i < conns % generators else 0) for i in range(generators)]
    gens: list[subprocess.Popen[bytes]] = []
    for share in shares:
        argv = [client_py, run.LOADGEN, "echo", "--proto", server.proto, "--port", str(server.port),
                "--path", server.path, "--server-pid", str(supervisor), "--conns", str(share),
                "--duration", str(duration), "--warmup", str(warmup), "--sync"]
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=run._child_setup(None))
        run._children.append(proc)
        gens.append(proc)
    try:
        read_ready(gens, time.monotonic() + min(left(), READY_TIMEOUT))
        spread = connections_by_pid(server.port, worker_pids)
        start = time.monotonic() + 0.3
        for proc in gens:
            assert proc.stdin is not None
            proc.stdin.write(f"{start!r}\n".encode())
            proc.stdin.flush()
        time.sleep(max(0.0, start - time.monotonic()))
        t0 = time.monotonic()
        s0 = {pid: cpu_seconds(pid) for pid in tree}
        g0 = {p.pid: cpu_seconds(p.pid) for p in gens}
        m0, q0 = machine_busy()
        time.sleep(max(0.0, start + duration - time.monotonic()))
        s1 = {pid: cpu_seconds(pid) for pid in tree}
        g1 = {p.pid: cpu_seconds(p.pid) for p in gens}
        m1, q1 = machine_busy()
        wall = time.monotonic() - t0
        outputs = []
        for proc in gens:
            try:
                out, err = proc.communicate(timeout=min(left(), duration + 60))
            except subprocess.TimeoutExpired:
                raise SystemExit("benchmarks/scaling.py: a load generator did not finish in time")
            if proc.returncode != 0:
                raise SystemExit("benchmarks/scaling.py: a load generator failed:\n"
                                 + err.decode(errors="replace")[-3000:])
            if err.strip():
                log("  " + err.decode(errors="replace").strip().replace("\n", "\n  "))
            outputs.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for proc in gens:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
            if proc in run._children:  # a signal's stop_children() may have emptied it
                run._children.remove(proc)

    def delta(a: dict[int, float | None], b: dict[int, float | None], pid: int) -> float:
        x, y = a.get(pid), b.get(pid)
        return 0.0 if x is None or y is None else y - x

    rt = sum(o["rt_per_s"] for o in outputs)
    server_cpus = sum(delta(s0, s1, p) for p in tree) / wall
    gen_cpus = sum(delta(g0, g1, p.pid) for p in gens) / wall
    per_worker_cpus = [delta(s0, s1, p) / wall for p in worker_pids]
    return {
        "workers": workers,
        "conns": conns,
        "generators": generators,
        "wall_s": wall,
        "rt_per_s": rt,
        "server_cpus": server_cpus,
        "supervisor_cpus": delta(s0, s1, supervisor) / wall if workers > 1 else None,
        "worker_cpus": per_worker_cpus,
        "worker_conns": [spread.get(p, 0) for p in worker_pids],
        "gen_cpus": gen_cpus,
        "softirq_cpus": (q1 - q0) / wall,
        "other_cpus": max(0.0, (m1 - m0 - (q1 - q0)) / wall - server_cpus - gen_cpus),
        "idle_cpus": max(0.0, len(os.sched_getaffinity(0)) - (m1 - m0) / wall),
        "us_server_cpu_per_rt": 1e6 * server_cpus / rt if rt else None,
        "us_gen_cpu_per_rt": 1e6 * gen_cpus / rt if rt else None,
        "rtt_p50_us": statistics.median(o["rtt_p50_us"] for o in outputs),
        "rtt_p99_us": max(o["rtt_p99_us"] for o in outputs),
        "lost_connections": sum(o["lost_connections"] for o in outputs),
        "generator_results": outputs,
    }


def stop_server(server: Any) -> None:
    proc = server.proc
    if proc is None:
        return
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            # The supervisor's own deadline for its workers is 10 s; past
            # this, end the whole session (supervisor and workers).
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    if proc in run._children:
        run._children.remove(proc)


def source() -> dict[str, Any]:
    """
    The commit measured, and whether pingproto/ differed from it (read-only
    git commands: other people commit in this tree).
    """
    git = ["git", "--no-optional-locks", "-C", run.REPO]
    try:
        head = subprocess.run(git + ["rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(git + ["diff", "--quiet", "HEAD", "--", "pingproto"], capture_output=True,
                               timeout=10).returncode == 1
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": head, "pingproto_uncommitted_changes": dirty}


# --- the table --------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(targets: list[Target]) -> str:
    header = ["figure (median)"] + [t.label for t in targets]
    rows: list[list[str]] = []
    figures = [t.figures for t in targets]

    def row(label: str, get: Any) -> None:
        rows.append([label] + [get(f) for f in figures])

    row("round trips / s", lambda f: fmt(f["rt_per_s"]))
    row("server CPU, CPUs (supervisor + workers)", lambda f: fmt(f["server_cpus"], 2))
    row("server CPU us / round trip", lambda f: fmt(f["us_server_cpu_per_rt"]))
    row("generator CPU, CPUs (all generators)", lambda f: fmt(f["gen_cpus"], 2))
    row("generator CPU us / round trip", lambda f: fmt(f["us_gen_cpu_per_rt"]))
    row("softirq (loopback), CPUs", lambda f: fmt(f["softirq_cpus"], 2))
    row("other processes, CPUs", lambda f: fmt(f["other_cpus"], 2))
    row("idle, CPUs", lambda f: fmt(f["idle_cpus"], 2))
    row("connections per worker, busiest first", lambda f: "/".join(f"{c:.0f}" for c in f["worker_conns"]))
    row("  busiest/idlest, worst round", lambda f: f"{f['worst_conn_spread']:.2f}x")
    row("CPU per worker, CPUs, busiest first", lambda f: "/".join(f"{c:.2f}" for c in f["worker_cpus"]))
    row("supervisor CPU, CPUs", lambda f: fmt(f["supervisor_cpus"], 3))
    row("RTT p50 / p99, ms", lambda f: f"{f['rtt_p50_us'] / 1e3:.1f} / {f['rtt_p99_us'] / 1e3:.1f}")
    row("connections lost", lambda f: str(f["lost_connections"]))
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]

    def render(r: list[str]) -> str:
        return "| " + " | ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)) + " |"

    sep = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    return "\n".join([render(header), sep] + [render(r) for r in rows])


def compare(one: dict[str, Any], f: dict[str, Any], n: int, cpus: int) -> dict[str, Any]:
    """
    N workers (f) against N=1 (one): medians, or one round of each.
    """
    s, g = one["us_server_cpu_per_rt"], one["us_gen_cpu_per_rt"]
    ratio = f["rt_per_s"] / one["rt_per_s"]
    # What C CPUs allow with the generators on them, at N=1's costs.
    bound = min(n, cpus * s / (s + g))
    # The same counting the loopback's softirq time (charged to no process)
    # as a cost per round trip, and only the CPUs the other processes left,
    # against the rate N=1 really reached.
    q = 1e6 * one["softirq_cpus"] / one["rt_per_s"]
    machine_bound = (cpus - f["other_cpus"]) / ((s + g + q) / 1e6) / one["rt_per_s"]
    return {
        "throughput_ratio": ratio,
        # throughput ratio = (server CPU it got ratio) / (CPU per round trip ratio)
        "cpu_per_rt_ratio": f["us_server_cpu_per_rt"] / s,
        "server_cpu_ratio": f["server_cpus"] / one["server_cpus"],
        "s_us": s, "g_us": g, "q_us": q,
        "bound": bound, "of_bound": ratio / bound,
        "machine_bound": machine_bound, "of_machine_bound": ratio / machine_bound,
        "other_cpus": (one["other_cpus"], f["other_cpus"]),
        "gen_cpus": f["gen_cpus"],
        "free_cores": n <= cpus - (f["gen_cpus"] + f["other_cpus"]),
    }


def verdicts(targets: list[Target], cpus: int) -> list[dict[str, Any]]:
    """
    Per protocol and N > 1 against N=1: the raw throughput ratio, its two
    factors (the server CPU it got, its CPU per round trip), the ratio this
    machine allows with the generators on it, min(N, C*s/(s+g)) for s and g
    the server's and the generators' CPU per round trip at N=1 (2s/(s+g)
    for N=2 on 2 CPUs), and how evenly the workers shared the load.  From
    the medians, from each round, and from the round least disturbed by
    other processes.
    """
    out = []
    for key in sorted({t.key for t in targets if t.key.startswith("pp-")}, reverse=True):
        by_n = {t.workers: t for t in targets if t.key == key}
        if 1 not in by_n or not by_n[1].figures["rt_per_s"]:
            continue
        one = by_n[1]
        for n, t in sorted(by_n.items()):
            if n == 1:
                continue
            f = t.figures
            rounds = [compare(a, b, n, cpus) for a, b in zip(one.rounds, t.rounds)]
            quiet = min(range(len(rounds)), key=lambda i: max(rounds[i]["other_cpus"]))
            conns, wcpu = f["worker_conns"], f["worker_cpus"]
            out.append({
                "server": key, "workers": n, "target": 0.8 * n,
                "medians": compare(one.figures, f, n, cpus),
                "rounds": rounds,
                "quietest_round": quiet,
                "conn_spread": (max(conns) / min(conns)) if min(conns) else None,
                "worst_conn_spread": f["worst_conn_spread"],
                "cpu_spread": (max(wcpu) / min(wcpu)) if min(wcpu) > 0 else None,
            })
    return out


def render_verdicts(items: list[dict[str, Any]], cpus: int) -> str:
    lines = []
    for v in items:
        n, m, rounds = v["workers"], v["medians"], v["rounds"]
        k = v["quietest_round"]
        q = rounds[k]

        def each(name: str) -> str:
            return ", ".join(f"{r[name]:.2f}x" for r in rounds)

        cores = ("the server had them" if m["free_cores"] else
                 f"the server did not have them: generators {m['gen_cpus']:.2f} + other processes "
                 f"{m['other_cpus'][1]:.2f} CPUs")
        spread = "-" if v["conn_spread"] is None else f"{v['conn_spread']:.2f}x"
        cpu_spread = "-" if v["cpu_spread"] is None else f"{v['cpu_spread']:.2f}x"
        lines += [
            f"  {v['server']} N={n} vs N=1 (issue 6: >= {v['target']:.1f}x on {n} free cores; {cores}):",
            f"    other processes' CPUs at N=1/N={n}, each round: "
            + ", ".join(f"{r['other_cpus'][0]:.2f}/{r['other_cpus'][1]:.2f}" for r in rounds)
            + f"; least disturbed: round {k + 1}",
            f"    (a) throughput: medians {m['throughput_ratio']:.2f}x; rounds {each('throughput_ratio')}; "
            f"least disturbed {q['throughput_ratio']:.2f}x",
            f"    (b) server CPU per round trip: medians {m['cpu_per_rt_ratio']:.2f}x; rounds {each('cpu_per_rt_ratio')}; "
            f"least disturbed {q['cpu_per_rt_ratio']:.2f}x (server CPU it got: medians {m['server_cpu_ratio']:.2f}x, "
            f"least disturbed {q['server_cpu_ratio']:.2f}x)",
            f"    (c) bound min(N, C*s/(s+g)) on these {cpus} CPUs with the generators: medians {m['bound']:.2f}x "
            f"(s = {m['s_us']:.1f}, g = {m['g_us']:.1f} us; reached {100 * m['of_bound']:.0f} %), least disturbed "
            f"{q['bound']:.2f}x (reached {100 * q['of_bound']:.0f} %)",
            f"        with softirq (q = {m['q_us']:.1f} us/rt) and only the CPUs others left, "
            f"(C - other)/(s+g+q) / rate(N=1): medians {m['machine_bound']:.2f}x (reached "
            f"{100 * m['of_machine_bound']:.0f} %), least disturbed {q['machine_bound']:.2f}x "
            f"(reached {100 * q['of_machine_bound']:.0f} %)",
            f"    (d) busiest/idlest worker: connections {spread} (worst round {v['worst_conn_spread']:.2f}x), "
            f"CPU {cpu_spread}",
        ]
    return "\n".join(lines)


# --- main -------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protos", default="wss,ws", help="pingproto over these, in this order [wss,ws]")
    parser.add_argument("--max-workers", type=int, help="N = 1 .. this [the CPUs this process may use]")
    parser.add_argument("--conns", type=int, default=600, help="closed-loop connections in all [600]")
    parser.add_argument("--generators", type=int, default=2, help="load-generator processes [2]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the table gives medians [3]")
    parser.add_argument("--duration", type=float, default=2.0, help="seconds measured per server and round [2]")
    parser.add_argument("--warmup", type=float, default=0.8, help="seconds of load before measuring [0.8]")
    parser.add_argument("--no-node", action="store_true", help="leave the node ws and SockJS echoes out")
    parser.add_argument("--json", help="also write every figure to this file")
    parser.add_argument("--report", metavar="FILE", help="only print the table of a saved --json FILE again")
    args = parser.parse_args()
    if args.report:
        return reprint(args.report)
    cpus = len(os.sched_getaffinity(0))
    max_workers = args.max_workers or cpus
    protos = args.protos.split(",")
    if set(protos) - {"ws", "wss"} or not protos:
        parser.error("--protos: ws and/or wss")
    if not (1 <= max_workers <= 16 and 1 <= args.generators <= 8 and args.generators <= args.conns <= 5000
            and 0.5 <= args.duration <= 30 and 0 <= args.warmup <= 10 and 1 <= args.rounds <= 9):
        parser.error("--max-workers 1..16, --generators 1..8, --conns generators..5000, "
                     "--duration 0.5..30, --warmup 0..10, --rounds 1..9")

    signal.signal(signal.SIGTERM, run._on_signal)
    signal.signal(signal.SIGINT, run._on_signal)
    started = time.monotonic()

    def left() -> float:
        remaining = MAX_TOTAL_SECONDS - (time.monotonic() - started)
        if remaining <= 0:
            raise SystemExit("benchmarks/scaling.py: the run took longer than its bound; stopping")
        return remaining

    measured_source = source()
    client_py, client = run.client_python()
    node = run.node_ready(not args.no_node)
    scratch = tempfile.mkdtemp(prefix="pingproto-scaling-")
    tls_dir = os.path.join(scratch, "tls")
    run.make_tls_dir(tls_dir)
    known = {s.key: s for s in run.server_list(tls_dir, node, sys.executable)}
    plan: list[tuple[str, int]] = [(f"pp-{p}", n) for p in protos for n in range(1, max_workers + 1)]
    plan += [(k, 1) for k in ("node-ws", "sockjs") if k in known]
    log(f"benchmarks/scaling.py: {', '.join(f'{k} N={n}' if k.startswith('pp-') else k for k, n in plan)}; "
        f"{args.conns} connections from {args.generators} generators ({client}), {args.warmup} s warm-up, "
        f"{args.duration} s measured each, {args.rounds} round(s); {cpus} CPUs, nothing pinned; logs in {scratch}")

    targets: list[Target] = []
    for key, n in plan:
        base = known[key]
        argv = list(base.argv) + (["--workers", str(n)] if key.startswith("pp-") else [])
        server = run.Server(f"{key}-{n}" if key.startswith("pp-") else key, base.title, base.proto, argv,
                            base.env, path=base.path)
        targets.append(Target(key, n, server))
    try:
        for t in targets:  # all at once; only the one measured has load
            start_target(t, scratch, left)
        # Rounds rotate the servers; pingproto's N = 1, 2, ... of one
        # protocol stay next to each other (in turn forwards and backwards),
        # so that each round's ratio compares measurements seconds apart.
        groups = [[t for t in targets if t.key == key] for key in dict.fromkeys(t.key for t in targets)]
        for rnd in range(args.rounds):
            turned = groups[rnd % len(groups):] + groups[: rnd % len(groups)]
            order = [t for g in turned for t in (reversed(g) if rnd % 2 else g)]
            for t in order:
                f = drive(t, client_py, args.conns, args.generators, args.duration, args.warmup, left)
                t.rounds.append(f)
                log(f"  [{rnd + 1}/{args.rounds}] {t.label:10} {f['rt_per_s']:>8,.0f} rt/s  server "
                    f"{f['server_cpus']:.2f} CPUs {f['us_server_cpu_per_rt']:5.1f} us/rt  generators "
                    f"{f['gen_cpus']:.2f} CPUs {f['us_gen_cpu_per_rt']:5.1f} us/rt  softirq "
                    f"{f['softirq_cpus']:.2f}  other {f['other_cpus']:.2f} CPUs  "
                    f"conns {'/'.join(map(str, f['worker_conns']))}  "
                    f"worker CPUs {'/'.join(f'{c:.2f}' for c in f['worker_cpus'])}")
    finally:
        for t in targets:
            stop_server(t.server)
        run.stop_children()

    elapsed = time.monotonic() - started
    report = {
        "cpus": cpus, "client": client, "elapsed_s": round(elapsed), "source": measured_source,
        "settings": {"conns": args.conns, "generators": args.generators, "duration_s": args.duration,
                     "warmup_s": args.warmup, "rounds": args.rounds, "pingproto_options": run.PINGPROTO_LIMITS},
        "results": [{"server": t.key, "workers": t.workers, "argv": t.server.argv, "median": t.figures,
                     "rounds": t.rounds} for t in targets],
        "verdicts": verdicts(targets, cpus),
    }
    for path in filter(None, [args.json, os.path.join(scratch, "results.json")]):
        with open(path, "w") as fh:
            json.dump(report, fh, indent=1)
    print_report(report, targets)
    print(f"every figure: {args.json or os.path.join(scratch, 'results.json')}")
    return 0


def print_report(report: dict[str, Any], targets: list[Target]) -> None:
    settings, cpus = report["settings"], report["cpus"]
    print()
    print(f"pingproto --workers scaling: {cpus} CPUs, nothing pinned; {settings['conns']} closed-loop connections "
          f"(13-byte text messages) from {settings['generators']} generators ({report['client']}); "
          f"{settings['rounds']} interleaved round(s) of {settings['duration_s']} s per server, medians; "
          f"{report['elapsed_s'] / 60:.1f} min")
    print()
    print(table(targets))
    print()
    print(render_verdicts(verdicts(targets, cpus), cpus))
    print()
    src = report.get("source")
    if src:
        print(f"source: {src['commit'][:12]}"
              f"{' with uncommitted changes in pingproto/' if src['pingproto_uncommitted_changes'] else ''}")


def reprint(path: str) -> int:
    """
    --report FILE: print the table and the verdicts of a saved run again.
    """
    with open(path) as f:
        report = json.load(f)
    targets = [Target(r["server"], r["workers"], None, rounds=r["rounds"]) for r in report["results"]]
    print_report(report, targets)
    return 0


if __name__ == "__main__":
    sys.exit(main())
