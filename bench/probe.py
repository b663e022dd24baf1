"""A/B probe of the open-model seat-map read on one PostgreSQL + Redis stack: each binary given
runs as its own concertd on the same database and Redis, and vegeta reads one 50-seat map at a
constant rate from each in turn (the order alternates per round, so host noise falls on both).
Per run: latency, concertd and Redis CPU, barrier calls (EVALSHA) per read; with --strace, the
system calls per read of each binary instead (strace slows the server: use a low rate).

    python3 bench/probe.py --rounds 3 build/release/concertd /tmp/concertd-before
    python3 bench/probe.py --rate 1000 --strace build/release/concertd
"""
from __future__ import annotations

import argparse
import pathlib
import re
import subprocess
import sys
import tempfile
import time

import workloads as w
from stack import Concertd, Postgres, Redis


def ticks(pid: int) -> int:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def strace_counts(server: Concertd, run) -> tuple[dict, int]:
    """Runs `run()` under strace -c on the server: calls per system call, and the total."""
    out = server.directory / "strace.txt"
    tracer = subprocess.Popen(["strace", "-c", "-f", "-p", str(server.pid), "-o", str(out)],
                              stderr=subprocess.DEVNULL)
    time.sleep(1)  # attached
    run()
    tracer.send_signal(2)
    tracer.wait()
    calls = {}
    for line in out.read_text().splitlines():
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if m and m.group(2) != "total":
            calls[m.group(2)] = int(m.group(1))
    return calls, sum(calls.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binaries", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--rate", type=int, default=10_000, help="reads/s offered (vegeta)")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--strace", action="store_true", help="count system calls per read")
    args = parser.parse_args()
    s = w.Settings(False)
    s.vegeta_read_rate, s.vegeta_seconds = args.rate, args.seconds
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-probe-"))
    work.chmod(0o755)  # PostgreSQL runs as its own user
    pg, redis = Postgres(work / "pg").start(), Redis(work / "redis").start()
    url = pg.create_database("probe")
    servers = [Concertd(b, work / f"c{i}", f"c{i}", url, redis.url).start() for i, b in enumerate(args.binaries)]
    try:
        [schedule], _ = servers[0].create_concert(1, 50, title="reads")
        token = w.reader_token(servers[0])
        for server in servers:  # warm: connections, the cache, the secret
            w.vegeta_reads(server, schedule, token, work, s, f"warm-{server.name}")
        for round_no in range(args.rounds):
            order = list(enumerate(servers)) if round_no % 2 == 0 else list(enumerate(servers))[::-1]
            for i, server in order:
                name = f"{server.name}-{round_no}"
                if args.strace:
                    result = {}
                    calls, total = strace_counts(server, lambda: result.update(
                        w.vegeta_reads(server, schedule, token, work, s, name)))
                    reads = result["requests"]
                    top = ", ".join(f"{k} {v / reads:.2f}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1])[:5])
                    print(f"{args.binaries[i]}: {total / reads:.1f} system calls per read ({top})", flush=True)
                    continue
                redis_pids = redis.pids()
                start = (time.time(), ticks(server.pid), sum(ticks(p) for p in redis_pids), redis.command_calls())
                r = w.vegeta_reads(server, schedule, token, work, s, name)
                seconds = time.time() - start[0]
                cpu = (ticks(server.pid) - start[1]) / seconds
                redis_cpu = (sum(ticks(p) for p in redis_pids) - start[2]) / seconds
                evalsha = (redis.command_calls().get("evalsha", 0) - start[3].get("evalsha", 0)) / r["requests"]
                load = open("/proc/loadavg").read().split()[0]
                print(f"{args.binaries[i]}: p50 {r['p50_ms']:.2f} p95 {r['p95_ms']:.2f} p99 {r['p99_ms']:.2f} "
                      f"max {r['max_ms']:.0f} ms, {r['errors']} errors | CPU % concertd {cpu:.0f}, Redis "
                      f"{redis_cpu:.0f} | barrier calls per read {evalsha:.2f} | load {load}", flush=True)
    finally:
        for server in servers:
            server.stop()
        redis.stop()
        pg.stop()


if __name__ == "__main__":
    sys.exit(main())
