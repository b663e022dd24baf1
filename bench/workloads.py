"""The workloads of SPEC §5 and issue 5, one function each, on a running concertd (and its
reference where it has one). Each returns a dict of what it measured; run.py strings them into
stacks and report.py into tables."""
from __future__ import annotations

import pathlib
import time

import references
import tools
from stack import (Concertd, CpuMeter, Nginx, Postgres, Redis, SEATS_PER_SCHEDULE_MAX, http_get,
                   wait_for_client_ports)


class Settings:
    """Durations and sizes: the full run (≤ 15 min with the strategy table) or --quick (≤ 2 min,
    which proves the harness runs and the invariants hold, never a speed)."""

    def __init__(self, quick: bool):
        q = self.quick = quick
        self.read_seconds = 2 if q else 10
        self.read_connections = 256               # SPEC §5
        self.write_seconds = 2 if q else 10
        self.write_connections = 64
        self.hold_schedules = 20 if q else 200    # per side (concertd, pgbench): 1000 seats each
        self.hold_users = 2000
        self.waiting_users = 50_000 if q else 1_000_000
        self.zadd_requests = 200_000 if q else 2_000_000
        self.burst_clients = 10_000               # SPEC §5, also in quick mode
        self.idle_connections = 10_000            # SPEC §5
        self.idle_hold = "1s" if q else "5s"
        self.vegeta_seconds = 2 if q else 10
        # vegeta alone takes ~1.4 of the 2 cores at 15,000/s: at 20,000/s it starves the server
        self.vegeta_read_rate = 2_000 if q else 10_000
        self.vegeta_hold_rate = 200 if q else 1_000
        self.scenario_rate = 300 if q else 3_000  # the Spring Boot comparison's offered rate
        self.scenario_seconds = 2 if q else 30
        self.scenario_heavy_seconds = 2 if q else 15
        self.poll_users = 500 if q else 5_000     # the Spring Boot comparison's virtual users
        self.poll_seconds = 2 if q else 30
        self.pay_rate = 100 if q else 300
        self.pay_seconds = 2 if q else 5


# Process groups whose CPU each measurement reports (run.py sets them per stack: concertd, and
# PostgreSQL or Redis where the stack has them).
cpu_groups: dict = {}


def metered(fn, *args, extra: dict | None = None, **kwargs) -> dict:
    """Runs a load tool, adding to its result the CPU each process group used meanwhile."""
    with CpuMeter({**cpu_groups, **(extra or {})}) as meter:
        result = fn(*args, **kwargs)
    result["cpu"] = meter.percent
    return result


# User id ranges, disjoint per use.
READER = 1
HOLD_USERS = 1_000
VEGETA_HOLD_USERS = 10_000
BURST_USERS = 100_000
SCENARIO_USERS = 1_000_000
SCENARIO_HEAVY_USERS = 2_000_000
POLL_USERS = 3_000_000
PAY_USERS = 4_000_000
WAITING_USERS = 10_000_000
HOT_WALLET = 900_000_001
HOT_WALLET_PGBENCH = 900_000_002


def reader_token(server: Concertd) -> str:
    return server.issue_tokens([READER])[READER]


def seat_map(server: Concertd, schedule: int, token: str) -> bytes:
    status, body, headers = http_get(f"{server.base}/v1/schedules/{schedule}/seats", {"Queue-Token": token})
    assert status == 200 and headers.get("Content-Type") == "application/json; charset=utf-8", (status, headers)
    return body


def database_transactions(url: str) -> int:
    """Transactions the database has counted for this database so far (statistics are flushed
    by each backend at most once a second: call after a pause)."""
    return int(Postgres.psql(url, "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                                  " WHERE datname = current_database()")[0][0])


# --- reads --------------------------------------------------------------------------------------

def nginx_reference(workdir: pathlib.Path, path: str, body: bytes, token: str, s: Settings) -> dict:
    nginx = Nginx(workdir / "nginx", workers=2).start(path, body)
    try:
        url = f"http://127.0.0.1:{nginx.port}{path}"
        status, served, headers = http_get(url)
        assert status == 200 and served == body, "nginx serves other bytes"
        assert headers.get("Content-Type") == "application/json; charset=utf-8", headers
        tools.wrk(url, s.read_connections, 1, headers={"Queue-Token": token})  # warm
        with CpuMeter({"nginx": nginx.pids}) as meter:
            result = tools.wrk(url, s.read_connections, s.read_seconds, headers={"Queue-Token": token})
        result["cpu"] = meter.percent
        # The reference's own tail at the open-model read rate: the p99 bar is absolute, the
        # machine is shared, so the same tool and rate against nginx says what the host allows.
        targets = tools.vegeta_targets(workdir / "reads-nginx.targets", [("GET", url, {"Queue-Token": token}, None)])
        result["vegeta"] = tools.vegeta(targets, s.vegeta_read_rate, s.vegeta_seconds, workdir, "reads-nginx")
        return result
    finally:
        nginx.stop()


def seat_map_reads(server: Concertd, schedule: int, token: str, s: Settings, database_url: str | None = None,
                   redis: Redis | None = None) -> dict:
    """wrk -c256 on one 50-seat map, and what the reads cost the database: cache misses (each is
    one database read) and, on PostgreSQL, the transactions it counted."""
    url = f"{server.base}/v1/schedules/{schedule}/seats"
    headers = {"Queue-Token": token}
    tools.wrk(url, s.read_connections, 1, headers=headers)  # warm: connections, cache
    before = server.metrics()
    xacts_before = database_transactions(database_url) if database_url else None
    calls_before = redis.command_calls() if redis else None
    result = metered(tools.wrk, url, s.read_connections, s.read_seconds, headers=headers)
    after = server.metrics()
    if redis:
        calls = redis.command_calls()
        result["redis_calls_per_read"] = {k: (v - calls_before.get(k, 0)) / max(1, result["requests"])
                                          for k, v in calls.items() if v - calls_before.get(k, 0) > 0}
    reads = result["requests"]
    result["cache_hits"] = after["concertd_cache_hits_total"] - before["concertd_cache_hits_total"]
    result["cache_misses"] = after["concertd_cache_misses_total"] - before["concertd_cache_misses_total"]
    result["misses_per_read"] = result["cache_misses"] / max(1, reads)
    if database_url:
        time.sleep(1.5)
        result["db_transactions_per_read"] = (database_transactions(database_url) - xacts_before) / max(1, reads)
    return result


# --- writes -------------------------------------------------------------------------------------

def create_seats(server: Concertd, schedules: int) -> list[int]:
    """`schedules` full schedules (1000 seats), in concerts of at most 100 dates."""
    ids = []
    while len(ids) < schedules:
        batch, _ = server.create_concert(min(100, schedules - len(ids)), SEATS_PER_SCHEDULE_MAX)
        ids += batch
    return ids


def concertd_holds(server: Concertd, workdir: pathlib.Path, s: Settings, schedules: list[int] | None = None) -> dict:
    """Seat holds, every hold a fresh seat (a permutation of the seats), wrk, 64 connections of
    2,000 users with ACTIVE tokens."""
    schedules = schedules or create_seats(server, s.hold_schedules)
    users = list(range(HOLD_USERS, HOLD_USERS + s.hold_users))
    tokens = server.issue_tokens(users)
    script = workdir / "holds.lua"
    script.write_text(references.hold_lua(tokens, schedules))
    before = server.metrics()
    result = metered(tools.wrk, server.base, s.write_connections, s.write_seconds, script=script)
    after = server.metrics()
    result["holds"] = after["concertd_holds_total"] - before["concertd_holds_total"]
    if "concertd_db_round_trips_total" in after:
        result["db_round_trips_per_hold"] = ((after["concertd_db_round_trips_total"]
                                              - before["concertd_db_round_trips_total"]) / max(1, result["holds"]))
    result["retries"] = after["concertd_hold_retries_total"] - before["concertd_hold_retries_total"]
    result["holds_per_s"] = result["holds"] / result["seconds"]
    return result


def holds_vs_pgbench(server: Concertd, database_url: str, workdir: pathlib.Path, s: Settings) -> tuple[dict, dict]:
    """Seat holds on PostgreSQL, every hold a fresh seat: concertd (wrk) and pgbench running the
    same transaction, each on its own seats of the same database, same number of clients."""
    ours = create_seats(server, s.hold_schedules)
    theirs = create_seats(server, s.hold_schedules)
    concertd = concertd_holds(server, workdir, s, ours)
    sql = references.write_hold_script(workdir / "hold.pgbench")
    defines = references.hold_defines(database_url, theirs, s.write_connections, HOLD_USERS, s.hold_users)
    pgbench = metered(tools.pgbench, database_url, sql, s.write_connections, s.write_seconds, workdir, "hold", defines)
    first, last = min(theirs), max(theirs)
    made = int(Postgres.psql(database_url, "SELECT count(*) FROM reservations"
                                           f" WHERE schedule_id BETWEEN {first} AND {last}")[0][0])
    if made != pgbench["transactions"] or pgbench["failed"]:
        raise RuntimeError(f"pgbench hold: {pgbench['transactions']} transactions, {made} reservations made")
    return concertd, pgbench


def hot_wallet_charges(server: Concertd, workdir: pathlib.Path, s: Settings, wallet: int, name: str) -> dict:
    script = workdir / f"charge-{name}.lua"
    script.write_text(references.charge_lua(wallet))
    before = server.metrics()
    result = metered(tools.wrk, server.base, s.write_connections, s.write_seconds, script=script)
    after = server.metrics()
    result["charges"] = after["concertd_charges_total"] - before["concertd_charges_total"]
    result["retries"] = after["concertd_charge_retries_total"] - before["concertd_charge_retries_total"]
    result["lock_timeouts"] = after["concertd_lock_timeouts_total"] - before["concertd_lock_timeouts_total"]
    result["charges_per_s"] = result["charges"] / result["seconds"]
    return result


def hot_wallet_pgbench(server: Concertd, database_url: str, workdir: pathlib.Path, s: Settings) -> dict:
    status, _ = server.call("POST", f"/v1/users/{HOT_WALLET_PGBENCH}/points/charge", {"amount": 1})
    assert status == 200, status  # the wallet row exists, made by concertd
    sql = references.write_charge_script(workdir / "charge.pgbench")
    return metered(tools.pgbench, database_url, sql, s.write_connections, s.write_seconds, workdir, "charge",
                   {"wallet": HOT_WALLET_PGBENCH})


def token_issues_and_waiting_memory(server: Concertd, redis: Redis, workdir: pathlib.Path, s: Settings) -> dict:
    """New users take queue tokens (wrk, 64 connections) until `waiting_users` wait in Redis, in
    runs of `write_seconds` (wrk cannot stop at a count); Redis's used_memory before and after
    gives the bytes per waiting user."""
    server.issue_tokens([WAITING_USERS - 1], wait_active=False)  # the fixed keys exist first
    before_memory = redis.used_memory()
    before = server.metrics()
    runs, issued, seconds = [], 0, 0.0
    meter = CpuMeter(cpu_groups).__enter__()
    while issued < s.waiting_users and len(runs) < 30:
        script = workdir / "issue.lua"
        first = WAITING_USERS + len(runs) * 10_000_000
        script.write_text(references.issue_lua(first, 10_000_000 // tools.WRK_THREADS))
        remaining = (s.waiting_users - issued) / (issued / seconds) if issued else s.write_seconds
        run = tools.wrk(server.base, s.write_connections, max(1, min(s.write_seconds, int(remaining + 0.999))),
                        script=script)
        runs.append(run)
        seconds += run["seconds"]
        issued = server.metrics()["concertd_queue_tokens_issued_total"] - before["concertd_queue_tokens_issued_total"]
    meter.__exit__(None, None, None)
    result = dict(runs[0])
    result["cpu"] = meter.percent
    after = server.metrics()
    result["runs"] = len(runs)
    result["command"] += f"  (run {len(runs)} times, a new range of user ids each, until {issued:,.0f} were issued)"
    result["seconds"] = seconds
    result["requests"] = sum(r["requests"] for r in runs)
    result["non2xx"] = sum(r["non2xx"] for r in runs)
    result["socket_errors"] = sum(r["socket_errors"] for r in runs)
    result["rps"] = result["requests"] / seconds
    result["p99_ms"] = max(r["p99_ms"] for r in runs)
    result["max_ms"] = max(r["max_ms"] for r in runs)
    result["issued"] = issued
    result["issues_per_s"] = issued / seconds
    result["waiting"] = after["concertd_queue_waiting"]
    result["redis_bytes"] = redis.used_memory() - before_memory
    result["bytes_per_waiting_user"] = result["redis_bytes"] / max(1, issued)
    result["mb_per_million"] = result["bytes_per_waiting_user"]  # B/user = MB per million users
    return result


# --- the burst ----------------------------------------------------------------------------------

def burst(server: Concertd, workdir: pathlib.Path, s: Settings, name: str) -> dict:
    """10,000 clients with ACTIVE tokens hold a seat of one 50-seat schedule at the same instant."""
    [schedule], _ = server.create_concert(1, 50, title="burst")
    users = list(range(BURST_USERS, BURST_USERS + s.burst_clients))
    tokens = server.issue_tokens(users)
    token_file = workdir / f"burst-{name}.tokens"
    token_file.write_text("".join(f"{u} {tokens[u]}\n" for u in users))
    wait_for_client_ports(s.burst_clients)
    result = tools.loadgen("burst", ["-base", server.base, "-tokens", token_file, "-schedule", schedule,
                                     "-seats", 50], timeout=300)
    result["schedule"] = schedule
    hold = result.get("hold", {})
    status = hold.get("by_status", {})
    result["answered_all"] = sum(status.values()) == s.burst_clients and hold.get("errors", 0) == 0
    result["five_xx"] = sum(v for k, v in status.items() if str(k).startswith("5"))
    return result


# --- open model ---------------------------------------------------------------------------------

def vegeta_reads(server: Concertd, schedule: int, token: str, workdir: pathlib.Path, s: Settings, name: str) -> dict:
    targets = tools.vegeta_targets(workdir / f"reads-{name}.targets",
                                   [("GET", f"{server.base}/v1/schedules/{schedule}/seats", {"Queue-Token": token}, None)])
    return tools.vegeta(targets, s.vegeta_read_rate, s.vegeta_seconds, workdir, f"reads-{name}")


def vegeta_holds(server: Concertd, workdir: pathlib.Path, s: Settings, name: str) -> dict:
    count = s.vegeta_hold_rate * s.vegeta_seconds
    schedules = create_seats(server, -(-count // SEATS_PER_SCHEDULE_MAX))
    users = list(range(VEGETA_HOLD_USERS, VEGETA_HOLD_USERS + 1000))
    tokens = server.issue_tokens(users)
    targets = []
    for i in range(count):
        user = users[i % len(users)]
        body = (f'{{"userId":{user},"scheduleId":{schedules[i // SEATS_PER_SCHEDULE_MAX]},'
                f'"seatNo":{i % SEATS_PER_SCHEDULE_MAX + 1}}}').encode()
        targets.append(("POST", f"{server.base}/v1/reservations",
                        {"Queue-Token": tokens[user], "Content-Type": "application/json"}, body))
    path = tools.vegeta_targets(workdir / f"holds-{name}.targets", targets)
    return tools.vegeta(path, s.vegeta_hold_rate, s.vegeta_seconds, workdir, f"holds-{name}")


def scenario(server: Concertd, s: Settings, rate: int, seconds: int, users_from: int, pay: bool,
             schedules: int = 100, seats: int = 50) -> dict:
    """The ticket-opening flow (token, poll until ACTIVE, dates, seats, hold [, charge, pay]) at
    `rate` requests/s offered, on one concert of `schedules` dates of `seats` seats. The SPEC's
    shape (50 seats a date, 100 dates) sells out: later flows end at the dates list."""
    _, concert = server.create_concert(schedules, seats, title="scenario")
    args = ["-base", server.base, "-rate", rate, "-duration", f"{seconds}s", "-concert-id", concert,
            "-users-from", users_from, "-drain", "20s"]
    if pay:
        args.append("-pay")
    result = tools.loadgen("scenario", args, timeout=seconds + 120)
    result["shape"] = f"{schedules} dates × {seats} seats"
    return result


def poll(server: Concertd, s: Settings) -> dict:
    return tools.loadgen("poll", ["-base", server.base, "-users", s.poll_users, "-duration", f"{s.poll_seconds}s",
                                  "-users-from", POLL_USERS, "-interval", "1s"], timeout=s.poll_seconds + 120)


def idle_connections(server: Concertd, s: Settings) -> dict:
    wait_for_client_ports(s.idle_connections)
    return tools.loadgen("idle", ["-base", server.base, "-conns", s.idle_connections, "-pid", server.pid,
                                  "-hold", s.idle_hold], timeout=180)
