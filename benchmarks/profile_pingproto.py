#!/usr/bin/env python3
"""
Where pingproto's CPU goes, per echo and per handshake.

    python3 benchmarks/profile_pingproto.py [--tls | --plain] [--seconds 8] [--out FILE]
    python3 benchmarks/profile_pingproto.py --ab TREE [--plain] [--rounds 5] [--seconds 3]

Runs the real server (`twistd -n --pidfile= pingproto --listen
tcp:0:interface=127.0.0.1 [--tls-dir DIR] --max-per-address 0
--max-connections 20000 --max-message-rate 1000000`) pinned to the first CPU
and drives it with benchmarks/loadgen.py on the second, in three scenarios:
echo over 1 connection, echo over 100 connections, and connections opened
and closed (TCP + TLS + upgrade + clean close), each twice:

 1. under twistd's own cProfile (`twistd --profile FILE --profiler cprofile
    --savestats`): exact call counts, reported per echo (per
    EchoServerProtocol.onMessage call) or per handshake (per onConnect
    call), and time per call, inflated by the profiler's overhead;
 2. unprofiled, sampled by py-spy (`py-spy record --function --native`,
    installed in the load generator's scratch virtualenv) while loadgen
    measures the server's CPU per operation: each function's share of the
    samples times that CPU gives microseconds per operation without the
    deterministic profiler's distortion.

Prints (and writes to --out) the top functions of each.  Load only goes to
127.0.0.1, every run is bounded in time, and every process it starts is
stopped on every way out.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

import harness as run  # noqa: E402  (benchmarks/run's helpers)

SITE = os.path.dirname(os.path.dirname(os.__file__)) + "/site-packages/"


def short(path: str) -> str:
    for prefix in (SITE, os.path.dirname(os.__file__) + "/", REPO + "/"):
        if path.startswith(prefix):
            return path[len(prefix):]
    return path


def start_pingproto(tls_dir: str | None, scratch: str, name: str, cpu: int | None,
                    profile: str | None) -> run.Server:
    argv = [run.twistd(), "-n", "--pidfile="]
    if profile:
        argv += ["--profile", profile, "--profiler", "cprofile", "--savestats"]
    argv += ["pingproto", "--listen", "tcp:0:interface=127.0.0.1", *run.PINGPROTO_LIMITS]
    if tls_dir:
        argv += ["--tls-dir", tls_dir]
    server = run.Server(name, name, "wss" if tls_dir else "ws", argv, run.environment())
    run.start_server(server, cpu, scratch)
    run.wait_listening(server, time.monotonic() + 60)
    return server


def stop(server: run.Server) -> None:
    assert server.proc is not None
    server.proc.terminate()
    try:
        server.proc.wait(30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait(5)
    run._children.remove(server.proc)


SCENARIOS = [
    ("echo, 1 connection", "echo", ["--conns", "1"], "onMessage"),
    ("echo, 100 connections", "echo", ["--conns", "100"], "onMessage"),
    ("handshake (connect, TLS, upgrade, close)", "handshake", ["--concurrency", "32"], "onConnect"),
]


def cprofile_report(stats_file: str, per: str, top: int) -> tuple[int, list[dict[str, Any]]]:
    st = pstats.Stats(stats_file)
    ops = 0
    for (file, line, func), (cc, nc, tt, ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        if func == per and file.endswith("pingproto/server.py"):
            ops = nc
    rows = []
    for (file, line, func), (cc, nc, tt, ct, callers) in st.stats.items():  # type: ignore[attr-defined]
        rows.append({
            "function": func, "where": f"{short(file)}:{line}" if line else short(file),
            "calls_per_op": nc / ops if ops else None,
            "tottime_us_per_op": 1e6 * tt / ops if ops else None,
            "cumtime_us_per_op": 1e6 * ct / ops if ops else None,
        })
    rows.sort(key=lambda r: -(r["tottime_us_per_op"] or 0))
    return ops, rows[:top] + [r for r in rows[top:] if _watched(r)]


# Functions named in issue 6, always shown when called.
WATCH = ("create_xor_masker", "XorMaskerNvx.__init__", "__init__", "pformat", "_connectionMade", "callLater",
         "_scheduledFlush", "process", "_AggregateSmallWrites.write", "runUntilCurrent", "doPoll")


def _watched(row: dict[str, Any]) -> bool:
    return (row["function"] in ("create_xor_masker", "pformat", "_scheduledFlush", "callLater",
                                "_connectionMade", "runUntilCurrent")
            or ("xormasker" in row["where"] and row["function"] in ("__init__", "process")))


PLUMBING = ("<module> (twistd", "run (twisted/", "runApp (", "ApplicationRunner.", "UnixApplicationRunner.",
            "runReactorWithLogging", "ReactorBase.run ", "ReactorBase.mainLoop", "0x")

# Functions worth a line of their own whatever their rank (issue 6's
# suspects and pingproto's own per-message work), matched by prefix.
FOCUS = (
    "WebSocketAdapterProtocol.dataReceived", "WebSocketProtocol._dataReceived", "WebSocketProtocol.processData",
    "WebSocketProtocol.onFrameData", "WebSocketProtocol.onFrameEnd", "WebSocketProtocol._onMessageEnd",
    "EchoServerProtocol.onMessage", "TokenBucket.take", "WebSocketProtocol.sendMessage ",
    "WebSocketProtocol.sendFrame", "WebSocketProtocol.sendData", "hltype ", "hlval ", "hl ", "style ",
    "create_xor_masker", "XorMaskerNvx.__init__", "XorMaskerNvx.process", "XorMaskerSimple.__init__",
    "pformat ", "PrettyPrinter.pformat", "WebSocketProtocol._connectionMade", "WebSocketServerProtocol._connectionMade",
    "create_transport_details", "WebSocketServerProtocol.processHandshake", "EchoServerProtocol.processHandshake",
    "EchoServerProtocol.onOpen", "EchoServerProtocol.onClose", "EchoServerProtocol.connectionMade",
    "EchoServerProtocol.connectionLost", "Logger.emit", "Logger.info", "FileLogObserver.__call__",
    "LogPublisher.__call__", "_AggregateSmallWrites.write", "_AggregateSmallWrites._scheduledFlush",
    "ReactorBase.callLater", "ReactorBase.runUntilCurrent", "EPollReactor.doPoll",
    "TLSMemoryBIOProtocol.dataReceived", "TLSMemoryBIOProtocol._flushReceiveBIO", "TLSMemoryBIOProtocol._write",
    "TLSMemoryBIOProtocol._checkHandshakeStatus", "TLSMemoryBIOProtocol._flushSendBIO", "Connection.do_handshake",
    "Connection.recv ", "Connection.send ", "Connection.bio_read", "Connection.bio_write", "ServerTLS.serverConnectionForTLS",
    "Connection.__init__", "FileDescriptor.write", "FileDescriptor.doWrite", "Connection.doRead",
    "Port.doRead", "WebSocketServerFactory.__call__", "Factory.buildProtocol", "WrappingFactory.buildProtocol",
)


def component(frame: str) -> str:
    """
    Where a leaf frame's time goes, coarsely.
    """
    m = re.match(r".* \((.*?)(?::\d+)?\)$", frame)
    where = m.group(1) if m else frame
    if where.startswith("lib") and "python" not in where and "crypto" not in where and "ssl" not in where:
        return "libc (system calls, malloc)"
    if "_rust.abi3" in where or "libssl" in where or "libcrypto" in where or "_openssl" in where:
        return "OpenSSL (native)"
    if "libpython" in where:
        return "CPython runtime (native)"
    if "_cffi_backend" in where or "_nvx_" in where:
        return "cffi (native)"
    top = where.split("/")[0]
    return {"twisted": "Twisted (Python)", "autobahn": "Autobahn (Python)", "OpenSSL": "pyOpenSSL (Python)",
            "pingproto": "pingproto (Python)", "pprint.py": "pprint (Python)", "click": "click (Python)",
            "txaio": "txaio (Python)", "zope": "zope.interface (Python)", "cffi": "cffi (Python)"}.get(
        top, "other: " + top)


def pyspy_report(raw_file: str, top: int) -> dict[str, Any]:
    """
    Self and inclusive sample counts per function from py-spy's raw
    (collapsed stack) output, and self time per component.
    """
    self_counts: collections.Counter[str] = collections.Counter()
    incl_counts: collections.Counter[str] = collections.Counter()
    comp_counts: collections.Counter[str] = collections.Counter()
    total = 0
    with open(raw_file) as f:
        for line in f:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count_text)
            total += count
            frames = [_clean_frame(fr) for fr in stack.split(";") if fr]
            if frames:
                self_counts[frames[-1]] += count
                comp_counts[component(frames[-1])] += count
            for fr in set(frames):
                incl_counts[fr] += count

    def share(counter: collections.Counter[str], keys: Any) -> list[dict[str, Any]]:
        return [{"function": k, "share": counter[k] / total} for k in keys]

    inclusive = [k for k, _ in incl_counts.most_common() if not k.startswith(PLUMBING)]
    focus = sorted((k for k in incl_counts if k.startswith(FOCUS)), key=lambda k: -incl_counts[k])
    return {
        "samples": total,
        "self": share(self_counts, [k for k, _ in self_counts.most_common(top)]),
        "inclusive": share(incl_counts, inclusive[:top]),
        "focus": share(incl_counts, focus),
        "components": share(comp_counts, [k for k, _ in comp_counts.most_common()]),
    }


def _clean_frame(frame: str) -> str:
    m = re.match(r"(.*) \((.*?)(?::(\d+))?\)$", frame)
    if not m:
        return frame
    name, file, line = m.groups()
    return f"{name} ({short(file)}{':' + line if line else ''})"


def ab_compare(tree: str, rounds: int, seconds: float, plain: bool = False) -> int:
    """
    Interleaved A/B, unprofiled: the raw TLS echo, pingproto from TREE
    ("before") and pingproto from this checkout ("after"), all running at
    once on the first CPU; each round runs a 1-connection echo and a
    handshake test against each, rotating the order, and the medians and
    per-round ratios to the raw TLS echo are printed.  With C{plain}, the
    same over ws:// against the raw TCP echo.
    """
    import statistics

    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, gen_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if gen_cpu is not None:
        os.sched_setaffinity(0, {gen_cpu})
    client_py, _ = run.client_python()
    scratch = tempfile.mkdtemp(prefix="pingproto-ab-")
    tls_dir = os.path.join(scratch, "tls")
    run.make_tls_dir(tls_dir)
    tls = [] if plain else ["--tls-dir", tls_dir]
    base_key, scheme = ("tcp", "ws") if plain else ("tls", "wss")
    before_env = dict(os.environ, PYTHONPATH=os.path.abspath(tree))
    tw = [run.twistd(), "-n", "--pidfile=", "pingproto", "--listen", "tcp:0:interface=127.0.0.1", *run.PINGPROTO_LIMITS]
    servers = [
        run.Server(base_key, f"raw {base_key.upper()} echo", base_key,
                   [sys.executable, os.path.join(run.SERVERS_DIR, "raw_echo.py"), *tls], run.environment()),
        run.Server("before", f"pingproto {scheme}, {tree}", scheme, tw + tls, before_env),
        run.Server("after", f"pingproto {scheme}, this checkout", scheme, tw + tls, run.environment()),
    ]
    results: dict[str, dict[str, list[float]]] = {s.key: collections.defaultdict(list) for s in servers}
    try:
        for server in servers:
            run.start_server(server, server_cpu, scratch)
        for server in servers:
            run.wait_listening(server, time.monotonic() + 60)
        for r in range(rounds):
            order = servers[r % len(servers):] + servers[: r % len(servers)]
            for server in order:
                echo = run.loadgen(client_py, gen_cpu, server, "echo", "--conns", "1", "--warmup", "0.5",
                                   "--duration", str(seconds), timeout=120 + seconds)
                hs = run.loadgen(client_py, gen_cpu, server, "handshake", "--concurrency", "32",
                                 "--duration", str(seconds), timeout=120 + seconds)
                results[server.key]["cpu_echo"].append(echo["us_cpu_per_rt"])
                results[server.key]["p50"].append(echo["rtt_p50_us"])
                results[server.key]["cpu_hs"].append(hs["us_cpu_per_handshake"])
            print(f"round {r + 1}: " + "; ".join(
                f"{k} echo {v['cpu_echo'][-1]:.1f} us p50 {v['p50'][-1]:.1f} us hs {v['cpu_hs'][-1]:.0f} us"
                for k, v in results.items()), flush=True)
    finally:
        run.stop_children()
    base = results[base_key]
    name = base_key.upper()
    print(f"\nmedians of {rounds} interleaved rounds ({seconds} s each), ratio to raw {name} = median of per-round ratios")
    print(f"{'':8} {'CPU us/echo':>12} {'x ' + name:>6} {'p50 us':>8} {'x ' + name:>6} {'CPU us/hs':>10} {'x ' + name:>6}")
    for key, v in results.items():
        def ratio(name: str) -> float:
            return statistics.median(a / b for a, b in zip(v[name], base[name]))
        print(f"{key:8} {statistics.median(v['cpu_echo']):12.1f} {ratio('cpu_echo'):6.2f}"
              f" {statistics.median(v['p50']):8.1f} {ratio('p50'):6.2f}"
              f" {statistics.median(v['cpu_hs']):10.0f} {ratio('cpu_hs'):6.2f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--plain", action="store_true", help="profile ws:// instead of wss://")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds of load per scenario and method")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="also write the report (JSON) here")
    parser.add_argument("--no-native", action="store_true", help="py-spy without --native")
    parser.add_argument("--ab", metavar="TREE",
                        help="instead of profiling, compare pingproto from TREE (a copy of the source tree, e.g."
                             " before a change) with this checkout and the raw TLS echo (with --plain: ws:// and"
                             " the raw TCP echo), interleaved, unprofiled")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the --ab comparison")
    args = parser.parse_args()
    if not 2 <= args.seconds <= 120:
        parser.error("--seconds 2..120")
    if args.ab:
        if not 1 <= args.rounds <= 20:
            parser.error("--rounds 1..20")
        return ab_compare(args.ab, args.rounds, args.seconds, args.plain)
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, gen_cpu = (cpus[0], cpus[1]) if len(cpus) >= 2 else (None, None)
    if gen_cpu is not None:
        os.sched_setaffinity(0, {gen_cpu})
    client_py, client = run.client_python()
    pyspy = os.path.join(os.path.dirname(client_py), "py-spy")
    if not os.path.exists(pyspy):
        subprocess.run([client_py, "-m", "pip", "install", "-q", "py-spy"], timeout=300)
    if not os.path.exists(pyspy):
        pyspy = shutil.which("py-spy") or ""
    scratch = tempfile.mkdtemp(prefix="pingproto-profile-")
    tls_dir = None
    if not args.plain:
        tls_dir = os.path.join(scratch, "tls")
        run.make_tls_dir(tls_dir)
    report: dict[str, Any] = {"tls": not args.plain, "scenarios": []}
    try:
        for title, mode, extra, per in SCENARIOS:
            load = ["--duration", str(args.seconds), *extra]
            if mode == "echo":
                load += ["--warmup", "1"]
            # 1. cProfile: call counts.
            stats = os.path.join(scratch, f"{mode}{len(report['scenarios'])}.pstats")
            server = start_pingproto(tls_dir, scratch, f"cprofile-{mode}", server_cpu, stats)
            r1 = run.loadgen(client_py, gen_cpu, server, mode, *load, timeout=120 + args.seconds)
            stop(server)
            ops, rows = cprofile_report(stats, per, args.top)
            # 2. py-spy on an unprofiled server: time shares.
            server = start_pingproto(tls_dir, scratch, f"pyspy-{mode}", server_cpu, None)
            assert server.proc is not None
            gen = subprocess.Popen(
                [client_py, run.LOADGEN, mode, "--proto", server.proto, "--port", str(server.port),
                 "--server-pid", str(server.proc.pid), *load],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=run._child_setup(gen_cpu))
            run._children.append(gen)
            raw = os.path.join(scratch, f"{mode}{len(report['scenarios'])}.pyspy.txt")
            spy: dict[str, Any] = {"samples": 0}
            if pyspy:
                time.sleep(2.0)  # connected and warmed up
                cmd = [pyspy, "record", "--pid", str(server.proc.pid), "--duration", str(int(args.seconds - 2)),
                       "--rate", "500", "--format", "raw", "--function", "--output", raw]
                if not args.no_native:
                    cmd.append("--native")
                done = subprocess.run(cmd, capture_output=True, timeout=args.seconds + 60)
                if done.returncode != 0 and not args.no_native:
                    cmd.remove("--native")
                    subprocess.run(cmd, capture_output=True, timeout=args.seconds + 60)
                if os.path.exists(raw):
                    spy = pyspy_report(raw, args.top)
            out, err = gen.communicate(timeout=args.seconds + 120)
            run._children.remove(gen)
            r2 = json.loads(out.decode().strip().splitlines()[-1])
            stop(server)
            cpu_key = "us_cpu_per_rt" if mode == "echo" else "us_cpu_per_handshake"
            report["scenarios"].append({
                "title": title, "ops_profiled": ops, "cprofile": rows, "cprofile_load": r1,
                "pyspy": spy,
                "unprofiled_load": r2, "us_cpu_per_op": r2.get(cpu_key),
            })
            print_scenario(report["scenarios"][-1], args.top)
    finally:
        run.stop_children()
    if args.out:
        with open(args.out, "w") as f:
            json.dump(report, f, indent=1)
    print(f"\nraw profiles in {scratch}")
    return 0


def print_scenario(sc: dict[str, Any], top: int) -> None:
    per = sc["us_cpu_per_op"]
    load = sc["unprofiled_load"]
    print(f"\n=== pingproto, {sc['title']}: {per:.1f} us server CPU per operation unprofiled "
          f"(server {load['server_cpu_pct']:.0f}% / load generator {load['gen_cpu_pct']:.0f}% CPU; "
          f"{sc['ops_profiled']:,} operations under cProfile) ===")
    print("\ncProfile (exact calls per operation; times inflated by the profiler):")
    print(f"{'calls/op':>9} {'self us/op':>10} {'cum us/op':>10}  function")
    for r in sc["cprofile"]:
        print(f"{r['calls_per_op']:9.2f} {r['tottime_us_per_op']:10.2f} {r['cumtime_us_per_op']:10.2f}  "
              f"{r['function']}  {r['where']}")
    spy = sc["pyspy"]
    if not spy["samples"]:
        return
    print(f"\npy-spy on the unprofiled server ({spy['samples']:,} samples); us/op = share x {per:.1f} us")
    for title, key in (("self time by component", "components"), ("self time", "self"),
                       ("inclusive time (without the reactor's outer frames)", "inclusive"),
                       ("inclusive time of the functions in question", "focus")):
        print(f"\n{'%':>6} {'us/op':>7}  {title}")
        for r in spy[key][: max(top, 40) if key == "focus" else top]:
            print(f"{100 * r['share']:6.1f} {r['share'] * per:7.2f}  {r['function']}")


if __name__ == "__main__":
    sys.exit(main())
