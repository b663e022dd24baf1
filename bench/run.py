#!/usr/bin/env python3
"""`make bench`: the workloads of SPEC §5 measured against references run side by side, the
latency under a constant offered rate, the Spring Boot comparison, the cache on and off, and the
lock-strategy table (bench/strategies.py); then the invariants in every database written to.

    python3 bench/run.py [--quick] [--out DIR] [--binary build/release/concertd]

Writes DIR/benchmarks.md and DIR/benchmarks.png (DIR: docs/, or with --quick a temp dir) and
prints the tables. Exits non-zero when a workload failed to run or an invariant is broken (the
burst's "exactly 50 of 10,000" is one); a missed speed bar is reported, never an exit status.
--quick (≤ 2 min) proves the harness runs; its numbers are not measurements."""
from __future__ import annotations

import argparse
import json
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import invariants  # noqa: E402
import report  # noqa: E402
import tools  # noqa: E402
import workloads as w  # noqa: E402
from stack import ROOT, Concertd, Postgres, Redis  # noqa: E402

try:  # the lock-strategy table, written alongside; optional until it lands
    import strategies  # noqa: E402
except ImportError:  # pragma: no cover
    strategies = None


class Bench:
    def __init__(self, binary: str, work: pathlib.Path, settings: w.Settings):
        self.binary = binary
        self.work = work
        self.s = settings
        self.results: dict = {}
        self.failures: list[str] = []
        self.invariants: dict[str, dict] = {}
        self.started = time.time()
        self.pg: Postgres | None = None
        self.load_start = " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])

    def log(self, text: str):
        print(f"[{time.time() - self.started:5.0f} s] {text}", flush=True)

    def step(self, name: str, fn, *args):
        self.log(name)
        try:
            result = fn(*args)
        except Exception as error:  # noqa: BLE001 - a failed workload is reported, the rest runs
            self.failures.append(f"{name}: {error}")
            self.log(f"{name} FAILED: {error}")
            traceback.print_exc(file=sys.stderr)
            return None
        self.results[name] = result
        return result

    def check(self, label: str, url: str, bursts=()):
        self.log(f"invariants: {label}")
        try:
            broken = invariants.check(url, [b for b in bursts if b])
        except Exception as error:  # noqa: BLE001
            broken = {f"the check itself failed: {error}": 1}
        self.invariants[label] = broken
        for what, count in broken.items():
            self.failures.append(f"invariant broken on {label}: {what} ({count})")

    def burst_ok(self, name: str):
        r = self.results.get(name)
        if r and not (r.get("succeeded") == 50 and r.get("answered_all") and r.get("five_xx") == 0):
            self.failures.append(f"{name}: {r.get('succeeded')} holds succeeded, {r.get('answered')} of "
                                 f"{r.get('clients')} answered ({r.get('connect_failed')} could not connect), "
                                 f"{r.get('five_xx')} 5xx: SPEC §5 wants exactly 50, all answered, no 5xx")

    def concertd(self, name: str, database_url: str, redis_url: str | None = None, env=None) -> Concertd:
        return Concertd(self.binary, self.work / name, name, database_url, redis_url, env).start()


# --- the stacks, each its own concertd process and database -------------------------------------

def embedded(b: Bench):
    """The embedded default: SQLite, in-process queue, lock and cache."""
    url = f"sqlite:{b.work}/sqlite/concert.db"
    server = b.concertd("sqlite", url)
    w.cpu_groups = {"concertd": lambda: [server.pid]}
    try:
        [schedule], _ = server.create_concert(1, 50, title="reads")
        token = w.reader_token(server)
        body = w.seat_map(server, schedule, token)
        b.step("nginx", w.nginx_reference, b.work, f"/v1/schedules/{schedule}/seats", body, token, b.s)
        b.step("reads_sqlite", w.seat_map_reads, server, schedule, token, b.s)
        b.step("vegeta_reads_sqlite", w.vegeta_reads, server, schedule, token, b.work, b.s, "sqlite")
        b.step("vegeta_holds_sqlite", w.vegeta_holds, server, b.work, b.s, "sqlite")
        burst = b.step("burst_sqlite", w.burst, server, b.work, b.s, "sqlite")
    finally:
        server.stop()
    b.burst_ok("burst_sqlite")
    b.check("SQLite", url, [burst and burst["schedule"]])


def idle(b: Bench):
    server = b.concertd("idle", f"sqlite:{b.work}/idle/concert.db")  # fresh: no allocator history
    try:
        b.step("idle", w.idle_connections, server, b.s)
    finally:
        server.stop()


def postgres_alone(b: Bench):
    """PostgreSQL without Redis: the queue in a table, advisory locks, no cache."""
    url = b.pg.create_database("bench_pg")
    server = b.concertd("pg", url)
    w.cpu_groups = {"concertd": lambda: [server.pid], "PostgreSQL": b.pg.pids}
    try:
        [schedule], _ = server.create_concert(1, 50, title="reads")
        token = w.reader_token(server)
        b.step("reads_pg", w.seat_map_reads, server, schedule, token, b.s, url)
        holds = b.step("holds_pg", w.holds_vs_pgbench, server, url, b.work, b.s)
        if holds:
            b.results["holds_pg"], b.results["holds_pgbench"] = holds
        b.step("charge_pg", w.hot_wallet_charges, server, b.work, b.s, w.HOT_WALLET, "pg")
        b.step("charge_pgbench", w.hot_wallet_pgbench, server, url, b.work, b.s)
    finally:
        server.stop()
    b.check("PostgreSQL", url)


def postgres_redis(b: Bench):
    """PostgreSQL + Redis: queue, lock and cache in Redis."""
    redis = Redis(b.work / "redis").start()
    url = b.pg.create_database("bench_pg_redis")
    burst = None
    try:
        server = b.concertd("pg-redis", url, redis.url)
        w.cpu_groups = {"concertd": lambda: [server.pid], "PostgreSQL": b.pg.pids, "Redis": redis.pids}
        try:
            [schedule], _ = server.create_concert(1, 50, title="reads")
            token = w.reader_token(server)
            b.step("reads_pg_redis", w.seat_map_reads, server, schedule, token, b.s, url, redis)
            b.step("holds_pg_redis", w.concertd_holds, server, b.work, b.s)
            b.step("charge_pg_redis", w.hot_wallet_charges, server, b.work, b.s, w.HOT_WALLET, "pg-redis")
            b.step("vegeta_reads_pg_redis", w.vegeta_reads, server, schedule, token, b.work, b.s, "pg-redis")
            b.step("vegeta_holds_pg_redis", w.vegeta_holds, server, b.work, b.s, "pg-redis")
            b.step("scenario", w.scenario, server, b.s, b.s.scenario_rate, b.s.scenario_seconds,
                   w.SCENARIO_USERS, False)
            b.step("poll", w.poll, server, b.s)
            # Seats that never run out: 1000-seat maps (~50 KB), each hold invalidating its map
            # and the concert's dates list. Not the published shape: shows what limits the flow.
            if not b.s.quick:
                b.step("scenario_heavy", w.scenario, server, b.s, b.s.scenario_rate, b.s.scenario_heavy_seconds,
                       w.SCENARIO_HEAVY_USERS, False, 20, 1000)
            b.step("scenario_pay", w.scenario, server, b.s, b.s.pay_rate, b.s.pay_seconds, w.PAY_USERS, True)
            burst = b.step("burst_pg_redis", w.burst, server, b.work, b.s, "pg-redis")
        finally:
            server.stop()
    finally:
        redis.stop()
    b.burst_ok("burst_pg_redis")
    b.check("PostgreSQL + Redis", url, [burst and burst["schedule"]])


def waiting_line(b: Bench):
    """Token issues for new users into a line that does not move (one admission a second), on a
    Redis of its own: issues/s against redis-benchmark ZADD, and Redis memory per waiting user."""
    redis = Redis(b.work / "redis-queue").start()
    url = b.pg.create_database("bench_queue")
    try:
        server = b.concertd("queue", url, redis.url, {
            "CONCERTD_QUEUE_ADMIT_PER_SECOND": "1", "CONCERTD_QUEUE_MAX_ACTIVE": "1",
            "CONCERTD_QUEUE_WAITING_TTL_SECONDS": "3600"})
        w.cpu_groups = {"concertd": lambda: [server.pid], "PostgreSQL": b.pg.pids, "Redis": redis.pids}
        try:
            b.step("issue", w.token_issues_and_waiting_memory, server, redis, b.work, b.s)
        finally:
            server.stop()
        w.cpu_groups = {"Redis": redis.pids}
        b.step("zadd", w.metered, tools.redis_zadd, redis.port, b.s.write_connections, b.s.zadd_requests)
    finally:
        redis.stop()


def strategy_table(b: Bench):
    if strategies is None:
        # TODO(bench): bench/strategies.py (the lock-strategy table) plugs in here.
        b.log("strategies: bench/strategies.py not there, skipped")
        return
    rows, markdown = strategies.run(b.binary, b.work, b.s.quick)
    b.results["strategies"] = {"rows": rows, "markdown": markdown}
    bad = [r for r in rows if r.get("invariants", "ok") != "ok"]
    for r in bad:
        b.failures.append(f"strategies: {r.get('backend')} {r.get('operation')} {r.get('contention')} "
                          f"{r.get('strategy')}: {r.get('invariants')}")


# --- setup --------------------------------------------------------------------------------------

def check_tools():
    missing = [t for t in ("wrk", "nginx", "gnuplot", "redis-benchmark", "redis-server", "psql")
               if shutil.which(t) is None]
    missing += [str(p) for p in (tools.PGBENCH, tools.VEGETA) if not pathlib.Path(p).exists()]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)}: run scripts/install-bench-deps.sh")
    sources = list((ROOT / "bench/loadgen").glob("*.go"))
    if not tools.LOADGEN.exists() or any(p.stat().st_mtime > tools.LOADGEN.stat().st_mtime for p in sources):
        subprocess.run(["go", "build", "-o", str(tools.LOADGEN), "."], cwd=ROOT / "bench/loadgen", check=True)


def raise_file_limit():
    """wrk, loadgen and concertd each hold 10,000 connections and more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 12_000:
        print(f"bench: warning: open files limit {hard}: 10,000 connections need ≥ 12,000", file=sys.stderr)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="≤ 2 min: the harness runs, invariants hold")
    parser.add_argument("--out", help="where benchmarks.md and .png go (default docs/, quick: a temp dir)")
    parser.add_argument("--binary", default=str(ROOT / "build/release/concertd"))
    parser.add_argument("--only", help="comma-separated stacks: embedded,idle,pg,pg-redis,queue,strategies")
    args = parser.parse_args()
    if not pathlib.Path(args.binary).exists():
        sys.exit(f"bench: no binary at {args.binary} (make build)")
    check_tools()
    raise_file_limit()
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-bench-"))
    work.chmod(0o755)  # the PostgreSQL cluster runs as the postgres user, who must enter it
    if args.out:
        out = pathlib.Path(args.out)
    else:
        out = pathlib.Path(tempfile.mkdtemp(prefix="concertd-bench-out-")) if args.quick else ROOT / "docs"
    out.mkdir(parents=True, exist_ok=True)
    b = Bench(str(pathlib.Path(args.binary).resolve()), work, w.Settings(args.quick))
    stacks = {"embedded": embedded, "pg": postgres_alone, "pg-redis": postgres_redis, "queue": waiting_line,
              "idle": idle, "strategies": strategy_table}
    chosen = args.only.split(",") if args.only else list(stacks)
    b.log(f"bench {'--quick ' if args.quick else ''}in {work}")
    b.pg = Postgres(work / "pg")
    try:
        if {"pg", "pg-redis", "queue"} & set(chosen):
            b.pg.start()
        for name in chosen:
            if name == "strategies":
                continue
            try:
                stacks[name](b)
            except Exception as error:  # noqa: BLE001 - a stack that cannot start: the rest runs
                b.failures.append(f"{name}: {error}")
                b.log(f"{name} FAILED: {error}")
                traceback.print_exc(file=sys.stderr)
    finally:
        b.pg.stop()
    if "strategies" in chosen:
        try:
            strategy_table(b)
        except Exception as error:  # noqa: BLE001
            b.failures.append(f"strategies: {error}")
            traceback.print_exc(file=sys.stderr)
    elapsed = time.time() - b.started
    command = "make bench" + (" QUICK=1" if args.quick else "")
    text = report.write(b.results, b.invariants, b.failures, b.s, out, command, elapsed, b.load_start)
    raw = ROOT / "build/bench" / ("results-quick.json" if args.quick else "results.json")
    raw.parent.mkdir(parents=True, exist_ok=True)
    raw.write_text(json.dumps({"results": b.results, "invariants": b.invariants, "failures": b.failures},
                              indent=1, default=str))
    print()
    print(text)
    print(f"bench: {elapsed:.0f} s; wrote {out / 'benchmarks.md'}, {out / 'benchmarks.png'} and {raw}")
    if b.failures:
        print("bench: FAILED:\n  " + "\n  ".join(b.failures), file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
