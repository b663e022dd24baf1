#!/usr/bin/env python3
"""The lock-strategy table: which concurrency-control strategy where, with our numbers.

Seat hold (pessimistic, optimistic, distributed, atomic), point charge and payment
(pessimistic, optimistic, distributed) under low contention and high contention, on PostgreSQL +
Redis (`distributed` = the Redis lock), on PostgreSQL alone (`distributed` = advisory locks) and
on MariaDB alone (`distributed` = GET_LOCK, table queue).
docs/concurrency.md explains the strategies and reads the table.

Workloads (wrk with Lua, closed model: each connection sends its next request when the last is
answered; "fixed work" runs stop as soon as every item is answered, the others after D seconds):

    hold, low      every hold a fresh seat (fixed work: N holds on N seats, 64 connections)
    hold, high     one 50-seat schedule: 10,000 connections of 10,000 users each send one hold of
                   a random seat at once (SPEC §5): exactly 50 may succeed, all must be answered
    charge, low    1 point to one of 10,000 users in turn (wallets made beforehand), D seconds
    charge, high   1 point to one hot wallet from 1,000 connections, D seconds
    payment, low   N users each pay their own held reservation once (64 connections)
    payment, high  the double-submit storm: U users, each sends R = 20 concurrent payments of
                   its one held reservation (1,000 connections): exactly one may succeed per user;
                   after it commits, the user's queue token is expired (SPEC), so late copies
                   get 401, copies already past the gate 409 RESERVATION_NOT_PAYABLE

Each strategy runs in its own concertd process on a fresh database (and an emptied Redis).
Counters come from /metrics (deltas around the wrk run): retries, lock timeouts, database
round trips (concertd_db_round_trips_total). After each run the invariants are checked in the
database: exactly 50 live holds on the hot schedule, holds = 201 answers, balance = sum of
successful charges, at most one payment per reservation and per user in the storm, balances
= charges - payments.

    python3 bench/strategies.py [--quick] [--binary build/release/concertd] [--backends pg-redis,pg,mariadb]
                                [--strategies optimistic,atomic] [--json rows.json]

`run(binary, workdir, quick)` returns (rows, markdown) for bench/run.py.
"""
import argparse, datetime, json, os, pathlib, platform, re, resource, shutil, signal
import subprocess, sys, tempfile, time, urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from stack import bulk, free_port  # noqa: E402 - pipelined HTTP, free ports: shared with run.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
ADMIN_KEY = "bench-admin"
PRICE = 1000
STRATEGIES = {
    "hold": ("pessimistic", "optimistic", "distributed", "atomic"),
    "charge": ("pessimistic", "optimistic", "distributed"),
    "payment": ("pessimistic", "optimistic", "distributed"),
}
BACKENDS = {"pg-redis": "PostgreSQL + Redis", "pg": "PostgreSQL alone (advisory locks, table queue)",
            "mariadb": "MariaDB 10.11 alone (GET_LOCK, table queue)"}

# User ids by role, disjoint.
HOLD_USERS = 1               # 1..10,000: holds (low and high)
CHARGE_USERS = 1_000_001     # charges, low contention
HOT_WALLET = 2_000_000       # charges, high contention
PAY_LOW_USERS = 3_000_001
PAY_HIGH_USERS = 4_000_001


class Settings:
    def __init__(self, quick):
        self.quick = quick
        self.seconds = 1 if quick else 5            # duration-based runs
        self.low_connections = 64
        self.high_connections = 10_000              # holds on one 50-seat schedule
        self.hot_connections = 1_000                # one hot wallet; the payment storm
        self.hold_low = 4_000 if quick else 15_000  # fixed work: holds of fresh seats
        self.charge_users = 2_000 if quick else 10_000
        self.pay_low = 1_000 if quick else 5_000
        self.pay_high_users = 100 if quick else 800
        self.pay_high_copies = 20
        self.backends = ("pg-redis",) if quick else ("pg-redis", "pg", "mariadb")
        self.safety_seconds = 30 if quick else 120  # wrk -d for fixed-work runs (they stop early)


# --- processes -----------------------------------------------------------------------------

def raise_file_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def psql(url, sql):
    out = subprocess.run(["psql", "-XAtq", "-v", "ON_ERROR_STOP=1", url, "-c", sql],
                         capture_output=True, text=True, check=True).stdout.strip()
    return out


def mariadb(url, sql):
    """`sql` through the mariadb client on mysql://user:password@host:port/db."""
    found = re.match(r"mysql://([^:@]+):([^@]*)@([^:/]+):(\d+)/(.*)", url)
    user, password, host, port, database = found.groups()
    return subprocess.run(["mariadb", "--no-defaults", "-h", host, "-P", port, "-u", user, f"-p{password}",
                           "-N", "-B", database, "-e", sql], capture_output=True, text=True, check=True).stdout.strip()


def pg_int(url, sql):
    """An integer from `sql` on the database at `url` (PostgreSQL or MariaDB)."""
    out = mariadb(url, sql) if url.startswith("mysql://") else psql(url, sql)
    return int(out) if out and out != "NULL" else 0


class Server:
    """One concertd with one strategy for all three operations."""

    def __init__(self, binary, workdir, name, env):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ, CONCERTD_LISTEN=f"127.0.0.1:{self.port}", CONCERTD_DEMO_DATA="false",
                        CONCERTD_ADMIN_KEY=ADMIN_KEY, CONCERTD_QUEUE_ADMIT_PER_SECOND="1000000",
                        CONCERTD_QUEUE_MAX_ACTIVE="10000000", **env)
        self.log_path = workdir / f"concertd-{name}.log"
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen([binary], env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(self.base + "/readyz", timeout=2)
                return
            except OSError:
                if self.process.poll() is not None or time.time() > deadline:
                    self.stop()
                    raise RuntimeError(f"concertd did not start; see {self.log_path}")
                time.sleep(0.05)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def settle(self, timeout=30):
        """Waits until the requests wrk left in flight are done: no success counter moves."""
        names = ("concertd_holds_total", "concertd_holds_rejected_total", "concertd_charges_total",
                 "concertd_payments_total")  # not the round trips: the background loops poll
        last = None
        deadline = time.time() + timeout
        while time.time() < deadline:
            snapshot = self.metrics()
            now = tuple(snapshot.get(n, 0) for n in names)
            if now == last and snapshot.get("concertd_http_connections_open", 0) <= 1:
                return
            last = now
            time.sleep(0.1)

    def metrics(self):
        text = urllib.request.urlopen(self.base + "/metrics", timeout=10).read().decode()
        return {name: int(value) for name, value in re.findall(r"^(concertd_\w+) (\d+)$", text, re.M)}


def expect_all(answers, status, what):
    bad = [a for a in answers if a[0] != status]
    if bad:
        raise RuntimeError(f"{what}: {len(bad)} of {len(answers)} answers were not {status}, e.g. {bad[0]}")


# --- data --------------------------------------------------------------------------------

def create_seats(server, seats, seats_per_schedule=1000):
    """Schedules with `seats` seats in all; returns [(schedule_id, seat_count)]."""
    out = []
    remaining = seats
    while remaining > 0:
        schedules = []
        while remaining > 0 and len(schedules) < 100:
            n = min(seats_per_schedule, remaining)
            schedules.append({"startsAt": "2030-01-01T19:00:00Z", "seatCount": n, "price": PRICE})
            remaining -= n
        [(status, body)] = bulk(server.port, [("POST", "/v1/admin/concerts", {"title": "bench", "schedules": schedules},
                                               {"Admin-Key": ADMIN_KEY})], connections=1)
        if status != 201:
            raise RuntimeError(f"creating a concert: {status} {body}")
        out += list(zip(body["scheduleIds"], [s["seatCount"] for s in schedules]))
    return out


def issue_tokens(server, users):
    answers = bulk(server.port, [("POST", "/v1/queue/tokens", {"userId": u}) for u in users])
    for status, body in answers:
        if status not in (200, 201):
            raise RuntimeError(f"token issue: {status} {body}")
    tokens = {u: body["token"] for u, (status, body) in zip(users, answers)}
    # Admission runs every 100 ms: wait until the last one is ACTIVE.
    deadline = time.time() + 20
    last = users[-1]
    while True:
        [(status, body)] = bulk(server.port, [("GET", "/v1/queue/tokens/current", None, {"Queue-Token": tokens[last]})],
                                connections=1)
        if status == 200 and body.get("status") == "ACTIVE":
            return tokens
        if time.time() > deadline:
            raise RuntimeError(f"tokens were not admitted: {status} {body}")
        time.sleep(0.1)


def hold_seats(server, users, tokens, schedules):
    """One hold per user on consecutive seats of `schedules`; returns reservation ids."""
    seats = [(sid, no) for sid, count in schedules for no in range(1, count + 1)]
    requests = [("POST", "/v1/reservations", {"userId": u, "scheduleId": sid, "seatNo": no}, {"Queue-Token": tokens[u]})
                for u, (sid, no) in zip(users, seats)]
    answers = bulk(server.port, requests)
    expect_all(answers, 201, "prepared holds")
    return [body["reservationId"] for _, body in answers]


def charge_each(server, users, amount):
    answers = bulk(server.port, [("POST", f"/v1/users/{u}/points/charge", {"amount": amount}) for u in users])
    expect_all(answers, 200, "prepared charges")


# --- wrk --------------------------------------------------------------------------------

LUA = r"""
-- %(title)s
local T = %(threads)d
local fixed = %(fixed)s          -- number of items, or nil: run for the duration
local kind = "%(kind)s"
local done_path = "%(done_path)s"
local users = {%(users)s}
local tokens = {%(tokens)s}
local ids = {%(ids)s}            -- schedule ids (holds) or reservation ids (payments)
local copies = %(copies)d         -- payment storm: consecutive items per user
local base_user = %(base_user)d
local nusers = %(nusers)d
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long sec; long nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *out);
]]
local clock = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, clock)  -- CLOCK_MONOTONIC
  return tonumber(clock.sec) * 1000000 + math.floor(tonumber(clock.nsec) / 1000)
end
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", counter); counter = counter + 1
  table.insert(threads, thread)
end
local n, got, share, verified = 0, 0, nil, false
statuses = {}
first_us, last_us = -1, -1  -- globals: done() reads them from each thread
function init(args)
  math.randomseed(os.time() * 1000 + tid * 7919)
  if fixed then share = math.floor((fixed - tid + T - 1) / T) end
end
local json = {["Content-Type"] = "application/json"}
local function gated(token)
  return {["Content-Type"] = "application/json", ["Queue-Token"] = token}
end
local function make(i)
  if kind == "hold_low" then
    local u = (i %% nusers) + 1
    local body = string.format('{"userId":%%d,"scheduleId":%%d,"seatNo":%%d}', users[u], ids[math.floor(i / 1000) + 1], (i %% 1000) + 1)
    return wrk.format("POST", "/v1/reservations", gated(tokens[u]), body)
  elseif kind == "hold_high" then
    local u = (i %% nusers) + 1
    local body = string.format('{"userId":%%d,"scheduleId":%%d,"seatNo":%%d}', users[u], ids[1], math.random(1, 50))
    return wrk.format("POST", "/v1/reservations", gated(tokens[u]), body)
  elseif kind == "charge_low" then
    return wrk.format("POST", "/v1/users/" .. (base_user + (i %% nusers)) .. "/points/charge", json, '{"amount":1}')
  elseif kind == "charge_high" then
    return wrk.format("POST", "/v1/users/" .. base_user .. "/points/charge", json, '{"amount":1}')
  else  -- payment: item i is user k's copy
    local k = math.floor(i / copies) + 1
    local body = string.format('{"userId":%%d,"reservationId":%%d}', users[k], ids[k])
    return wrk.format("POST", "/v1/payments", gated(tokens[k]), body)
  end
end
-- Once a thread's share is sent, its connections get a request the server never finishes
-- reading (no blank line after the headers): nothing more reaches the service, no answer skews
-- the latency, and the runner interrupts wrk as soon as every share is answered.
local idle = "GET /healthz HTTP/1.1\r\nHost: bench\r\n"
request = function()
  if tid == 0 and not verified then
    verified = true  -- wrk's own check of the first request: built, never sent
    return make(0)
  end
  if fixed and n >= share then return idle end
  local i = tid + n * T
  n = n + 1
  if first_us < 0 then first_us = now_us() end
  return make(i)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  got = got + 1
  last_us = now_us()
  if fixed and got >= share then
    io.open(done_path .. tid, "w"):close()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local total, first, last = {}, nil, nil
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
    local f, l = t:get("first_us"), t:get("last_us")
    if f >= 0 and (not first or f < first) then first = f end
    if l >= 0 and (not last or l > last) then last = l end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  local e = summary.errors
  io.write(string.format("RESULT duration_us=%%d p50_us=%%d p99_us=%%d connect=%%d read=%%d write=%%d timeout=%%d statuses=%%s\n",
    (first and last) and (last - first) or summary.duration, latency:percentile(50.0), latency:percentile(99.0),
    e.connect, e.read, e.write, e.timeout, table.concat(parts, ",")))
end
"""


def lua_list(values, quote=False):
    return ",".join(f'"{v}"' if quote else str(v) for v in values)


def run_wrk(server, workdir, name, kind, connections, seconds, fixed=None, users=(), tokens=(), ids=(),
            copies=1, base_user=0, nusers=1, threads=2):
    """Duration-based (fixed None: `seconds`) or fixed work (`fixed` items; `seconds` bounds it)."""
    script = workdir / f"{name}.lua"
    done_path = workdir / f"{name}.done-"
    for old in workdir.glob(f"{name}.done-*"):
        old.unlink()
    script.write_text(LUA % {"title": name, "threads": threads, "fixed": fixed if fixed else "nil", "kind": kind,
                             "done_path": done_path, "users": lua_list(users), "tokens": lua_list(tokens, quote=True),
                             "ids": lua_list(ids), "copies": copies, "base_user": base_user, "nusers": max(nusers, 1)})
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
               server.base]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    interrupted = False
    if fixed:
        # wrk sleeps for its whole -d whatever its threads do: interrupt it once every thread has
        # had all its answers (SIGINT ends the sleep; wrk then reports as usual).
        while process.poll() is None:
            if all(pathlib.Path(f"{done_path}{t}").exists() for t in range(threads)):
                process.send_signal(signal.SIGINT)
                interrupted = True
                break
            time.sleep(0.01)
    try:
        stdout, stderr = process.communicate(timeout=seconds + 120)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    found = re.search(r"^RESULT (.*)$", stdout, re.M)
    if process.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({process.returncode}): {stdout[-2000:]} {stderr[-2000:]}")
    fields = dict(part.split("=", 1) for part in found.group(1).split())
    statuses = {int(k): int(v) for k, v in (kv.split("=") for kv in fields.pop("statuses").split(",") if kv)}
    out = {k: int(v) for k, v in fields.items()}
    out["statuses"] = dict(sorted(statuses.items()))
    out["socket_errors"] = out["connect"] + out["read"] + out["write"] + out["timeout"]
    out["finished"] = interrupted or not fixed
    return out


# --- the cells -----------------------------------------------------------------------------

RETRY_METRIC = {"hold": "concertd_hold_retries_total", "charge": "concertd_charge_retries_total",
                "payment": "concertd_payment_retries_total"}
SUCCESS_STATUS = {"hold": 201, "charge": 200, "payment": 201}


class Backend:
    def __init__(self, key, pg_base, redis_port, mariadb_base=None):
        self.key = key
        self.pg_base = pg_base            # postgresql://postgres@127.0.0.1:PORT
        self.redis_port = redis_port      # None: the database alone
        self.mariadb_base = mariadb_base  # mysql://concertd:concertd@127.0.0.1:PORT: MariaDB's

    def fresh_database(self, name):
        """An empty database `name`; its URL."""
        if self.mariadb_base:
            mariadb(f"{self.mariadb_base}/mysql", f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name}")
            return f"{self.mariadb_base}/{name}"
        psql(f"{self.pg_base}/postgres", f"DROP DATABASE IF EXISTS {name}")
        psql(f"{self.pg_base}/postgres", f"CREATE DATABASE {name}")
        return f"{self.pg_base}/{name}"

    def redis_commands(self):
        if self.redis_port is None:
            return 0
        out = subprocess.run(["redis-cli", "-p", str(self.redis_port), "info", "stats"], capture_output=True,
                             text=True, check=True).stdout
        return int(re.search(r"total_commands_processed:(\d+)", out).group(1))


def measure(server, backend, settings, workdir, operation, contention, strategy, check, **wrk_args):
    before, redis_before = server.metrics(), backend.redis_commands()
    result = run_wrk(server, workdir, f"{backend.key}-{operation}-{contention}-{strategy}", **wrk_args)
    after, redis_after = server.metrics(), backend.redis_commands()
    server.settle()  # for the invariants: what was in flight when wrk stopped has committed
    delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
    seconds = result["duration_us"] / 1e6
    answers = sum(result["statuses"].values())
    successes = result["statuses"].get(SUCCESS_STATUS[operation], 0)
    row = {
        "backend": backend.key, "operation": operation, "contention": contention, "strategy": strategy,
        "connections": wrk_args["connections"], "seconds": round(seconds, 2),
        "successes": successes, "answers": answers,
        "successes_per_s": successes / seconds, "answers_per_s": answers / seconds,
        "p50_ms": result["p50_us"] / 1000, "p99_ms": result["p99_us"] / 1000,
        "retries": delta.get(RETRY_METRIC[operation], 0), "lock_timeouts": delta.get("concertd_lock_timeouts_total", 0),
        "db_round_trips": delta.get("concertd_db_round_trips_total", 0),
        "redis_commands": (redis_after - redis_before) if backend.redis_port else None,
        "statuses": result["statuses"], "socket_errors": result["socket_errors"],
    }
    row["db_round_trips_per_success"] = row["db_round_trips"] / successes if successes else None
    row["db_round_trips_per_answer"] = row["db_round_trips"] / answers if answers else None
    row["redis_commands_per_answer"] = (row["redis_commands"] / answers
                                        if answers and row["redis_commands"] is not None else None)
    problems = check(row)
    if not result["finished"]:
        problems.append(f"not every request answered within {wrk_args['seconds']} s")
    if any(code >= 500 for code in result["statuses"]):
        problems.append(f"{sum(v for k, v in result['statuses'].items() if k >= 500)} answers 5xx")
    if result["socket_errors"]:
        problems.append(f"{result['socket_errors']} socket errors or timeouts (wrk)")
    row["invariants"] = "ok" if not problems else "; ".join(problems)
    print(f"  {operation:7} {contention:4} {strategy:11} {row['successes_per_s']:9.0f} ok/s {row['answers_per_s']:9.0f} "
          f"answers/s p50 {row['p50_ms']:8.1f} ms p99 {row['p99_ms']:8.1f} ms retries {row['retries']:6} "
          f"RT/ok {fmt(row['db_round_trips_per_success'])} {row['statuses']} {row['invariants']}", flush=True)
    return row


def run_strategy(binary, workdir, settings, backend, strategy):
    """One concertd (all three operations on `strategy`), fresh database; returns rows."""
    db = backend.fresh_database(f"bench_{backend.key.replace('-', '_')}_{strategy}")
    env = {"CONCERTD_DATABASE_URL": db, "CONCERTD_LOCK_SEAT": strategy}
    if strategy != "atomic":
        env.update(CONCERTD_LOCK_POINTS=strategy, CONCERTD_LOCK_PAYMENT=strategy)
    if backend.redis_port:
        subprocess.run(["redis-cli", "-p", str(backend.redis_port), "flushall"], capture_output=True, check=True)
        env["CONCERTD_REDIS_URL"] = f"redis://127.0.0.1:{backend.redis_port}/0"
    server = Server(binary, workdir, f"{backend.key}-{strategy}", env)
    rows = []
    s = settings
    try:
        hold_users = list(range(HOLD_USERS, HOLD_USERS + s.high_connections))
        pays = strategy in STRATEGIES["payment"]
        pay_low_users = list(range(PAY_LOW_USERS, PAY_LOW_USERS + s.pay_low)) if pays else []
        pay_high_users = list(range(PAY_HIGH_USERS, PAY_HIGH_USERS + s.pay_high_users)) if pays else []
        tokens = issue_tokens(server, hold_users + pay_low_users + pay_high_users)

        # hold, low contention: N fresh seats, 2000 users in turn.
        low_schedules = create_seats(server, s.hold_low)
        low_ids = [sid for sid, _ in low_schedules]
        users = hold_users[:2000]

        def check_hold_low(row):
            held = pg_int(db, "SELECT count(*) FROM reservations WHERE status = 'HELD' AND schedule_id IN ("
                          + ",".join(map(str, low_ids)) + ")")
            problems = [] if held == row["successes"] else [f"{held} holds in the database, {row['successes']} answered 201"]
            if row["answers"] != s.hold_low:
                problems.append(f"{row['answers']} of {s.hold_low} holds answered")
            return problems

        rows.append(measure(server, backend, s, workdir, "hold", "low", strategy, check_hold_low, kind="hold_low",
                            connections=s.low_connections, seconds=s.safety_seconds, fixed=s.hold_low,
                            users=users, tokens=[tokens[u] for u in users], ids=low_ids, nusers=len(users)))

        # hold, high contention: one 50-seat schedule, 10,000 connections.
        [(hot_schedule, _)] = create_seats(server, 50)

        def check_hold_high(row):
            live = pg_int(db, f"SELECT count(*) FROM reservations WHERE schedule_id = {hot_schedule}"
                              " AND status IN ('HELD', 'CONFIRMED')")
            seats = pg_int(db, f"SELECT count(*) FROM seats WHERE schedule_id = {hot_schedule} AND status = 'HELD'")
            problems = []
            if not (live == seats == row["successes"] == 50):
                problems.append(f"{row['successes']} answered 201, {live} live holds, {seats} seats HELD (want 50)")
            if row["answers"] != s.high_connections:
                problems.append(f"{row['answers']} of {s.high_connections:,} holds answered")
            return problems

        # One hold from each of the 10,000 clients at once (SPEC §5).
        rows.append(measure(server, backend, s, workdir, "hold", "high", strategy, check_hold_high, kind="hold_high",
                            connections=s.high_connections, seconds=s.safety_seconds, fixed=s.high_connections,
                            users=hold_users,
                            tokens=[tokens[u] for u in hold_users], ids=[hot_schedule], nusers=len(hold_users)))
        if strategy == "atomic":
            return rows

        # charge, low contention: users in turn; each has a wallet already.
        charge_users = list(range(CHARGE_USERS, CHARGE_USERS + s.charge_users))
        charge_each(server, charge_users, 1)

        def check_charge_low(row):
            total = pg_int(db, f"SELECT coalesce(sum(balance), 0) FROM wallets WHERE user_id BETWEEN {CHARGE_USERS}"
                               f" AND {CHARGE_USERS + s.charge_users - 1}")
            # A duration-based run stops with up to one request per connection in flight: the
            # server may commit those without wrk counting their answers.
            counted = s.charge_users + row["successes"]
            if 0 <= total - counted <= row["connections"]:
                return []
            return [f"balances sum to {total}, counted charges to {counted}"]

        rows.append(measure(server, backend, s, workdir, "charge", "low", strategy, check_charge_low,
                            kind="charge_low", connections=s.low_connections, seconds=s.seconds,
                            base_user=CHARGE_USERS, nusers=s.charge_users))

        # charge, high contention: one hot wallet.
        def check_charge_high(row):
            balance = pg_int(db, f"SELECT coalesce(max(balance), 0) FROM wallets WHERE user_id = {HOT_WALLET}")
            entries = pg_int(db, f"SELECT count(*) FROM wallet_entries WHERE user_id = {HOT_WALLET}")
            if balance == entries and 0 <= balance - row["successes"] <= row["connections"]:
                return []
            return [f"balance {balance}, {entries} entries, {row['successes']} charges answered 200"]

        rows.append(measure(server, backend, s, workdir, "charge", "high", strategy, check_charge_high,
                            kind="charge_high", connections=s.hot_connections, seconds=s.seconds,
                            base_user=HOT_WALLET, nusers=1))

        # payment, low contention: each user pays its own held seat once.
        def prepare_payers(users):
            reservations = hold_seats(server, users, tokens, create_seats(server, len(users)))
            charge_each(server, users, 5 * PRICE)
            return reservations

        def check_payments(users, copies):
            def check(row):
                first, last = users[0], users[-1]
                paid = pg_int(db, f"SELECT count(*) FROM payments WHERE user_id BETWEEN {first} AND {last}")
                worst = pg_int(db, f"SELECT coalesce(max(c), 0) FROM (SELECT count(*) c FROM payments"
                                   f" WHERE user_id BETWEEN {first} AND {last} GROUP BY user_id) t")
                wrong = pg_int(db, f"SELECT count(*) FROM wallets w WHERE user_id BETWEEN {first} AND {last} AND"
                                   f" balance <> {5 * PRICE} - {PRICE} * (SELECT count(*) FROM payments p"
                                   " WHERE p.user_id = w.user_id)")
                problems = []
                if paid != row["successes"]:
                    problems.append(f"{paid} payments stored, {row['successes']} answered 201")
                if worst > 1:
                    problems.append(f"a user paid {worst} times")
                if wrong:
                    problems.append(f"{wrong} wallets whose balance is not charges - payments")
                if row["answers"] != len(users) * copies:
                    problems.append(f"{row['answers']} of {len(users) * copies} payments answered")
                return problems
            return check

        reservations = prepare_payers(pay_low_users)
        rows.append(measure(server, backend, s, workdir, "payment", "low", strategy,
                            check_payments(pay_low_users, 1), kind="payment",
                            connections=s.low_connections, seconds=s.safety_seconds, fixed=len(pay_low_users),
                            users=pay_low_users, tokens=[tokens[u] for u in pay_low_users], ids=reservations))

        # payment, high contention: each user sends 20 concurrent copies of its payment.
        reservations = prepare_payers(pay_high_users)
        rows.append(measure(server, backend, s, workdir, "payment", "high", strategy,
                            check_payments(pay_high_users, s.pay_high_copies), kind="payment",
                            connections=s.hot_connections, seconds=s.safety_seconds,
                            fixed=len(pay_high_users) * s.pay_high_copies, copies=s.pay_high_copies,
                            users=pay_high_users, tokens=[tokens[u] for u in pay_high_users], ids=reservations))
        return rows
    finally:
        server.stop()


# --- the table -------------------------------------------------------------------------------

def fmt(value, digits=1):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}"


def shape(settings, operation, contention):
    s = settings
    return {
        ("hold", "low"): f"{s.hold_low:,} holds of fresh seats, {s.low_connections} conn.",
        ("hold", "high"): f"one 50-seat schedule, one hold from each of {s.high_connections:,} conn. at once",
        ("charge", "low"): f"{s.charge_users:,} wallets in turn, {s.low_connections} conn., {s.seconds} s",
        ("charge", "high"): f"one hot wallet, {s.hot_connections:,} conn., {s.seconds} s",
        ("payment", "low"): f"{s.pay_low:,} users pay once, {s.low_connections} conn.",
        ("payment", "high"): f"{s.pay_high_users:,} users × {s.pay_high_copies} concurrent copies, "
                             f"{s.hot_connections:,} conn.",
    }[(operation, contention)]


def markdown(rows, settings):
    lines = []
    for backend in settings.backends:
        mine = [r for r in rows if r["backend"] == backend]
        if not mine:
            continue
        redis = mine[0]["redis_commands"] is not None
        lines.append(f"**{BACKENDS[backend]}**\n")
        head = ("| operation | contention | strategy | successes/s | answers/s | p50 ms | p99 ms | retries "
                "| lock timeouts | DB RT / success | DB RT / answer |" + (" Redis cmds / answer |" if redis else "")
                + " answers by status | invariants |")
        lines += [head, "|" + " --- |" * 3 + " ---: |" * (8 + redis) + " --- | --- |"]
        for r in mine:
            statuses = " ".join(f"{k}×{v:,}" for k, v in r["statuses"].items())
            lines.append(
                f"| {r['operation']} | {r['contention']} | {r['strategy']} | {r['successes_per_s']:,.0f} | "
                f"{r['answers_per_s']:,.0f} | {r['p50_ms']:,.1f} | {r['p99_ms']:,.1f} | {r['retries']:,} | "
                f"{r['lock_timeouts']:,} | {fmt(r['db_round_trips_per_success'])} | "
                f"{fmt(r['db_round_trips_per_answer'], 2)} |"
                + (f" {fmt(r['redis_commands_per_answer'], 2)} |" if redis else "")
                + f" {statuses} | {r['invariants']} |")
        lines.append("")
    lines.append("Shapes: " + "; ".join(f"{op} {c}: {shape(settings, op, c)}"
                                         for op in STRATEGIES for c in ("low", "high")) + ".")
    return "\n".join(lines) + "\n"


def run(binary: str, workdir: pathlib.Path, quick: bool, backends=None, strategies=None) -> tuple[list[dict], str]:
    settings = Settings(quick)
    if backends:
        settings.backends = tuple(backends)
    parent = pathlib.Path(workdir)
    workdir = parent / "strategies"
    workdir.mkdir(parents=True, exist_ok=True)
    for part in (parent, workdir):  # the cluster runs as the postgres user, who must enter them
        part.chmod(part.stat().st_mode | 0o755)
    limit = raise_file_limit()
    if limit < settings.high_connections + 1000:  # per process: wrk and concertd each
        raise RuntimeError(f"open files limit {limit}: 10,000 connections need ulimit -n ≥ 11000")
    cluster = workdir / "pg"
    pg_url = subprocess.run([str(ROOT / "scripts/pg-start.sh"), str(cluster)], capture_output=True, text=True,
                            check=True).stdout.strip()
    pg_base = pg_url.rsplit("/", 1)[0]
    redis_dir = workdir / "redis"
    redis_port = None
    mariadb_dir = workdir / "mariadb"
    mariadb_base = None
    rows = []
    started = time.time()
    try:
        if "mariadb" in settings.backends:
            mariadb_url = subprocess.run([str(ROOT / "scripts/mariadb-start.sh"), str(mariadb_dir)],
                                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            mariadb_base = mariadb_url.rsplit("/", 1)[0]
        if "pg-redis" in settings.backends:
            redis_url = subprocess.run([str(ROOT / "scripts/redis-start.sh"), str(redis_dir)], capture_output=True,
                                       text=True, check=True).stdout.strip()
            redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
        for key in settings.backends:
            print(f"strategies on {BACKENDS[key]}:", flush=True)
            backend = Backend(key, pg_base, redis_port if key == "pg-redis" else None,
                              mariadb_base if key == "mariadb" else None)
            for strategy in strategies or STRATEGIES["hold"]:
                rows += run_strategy(binary, workdir, settings, backend, strategy)
    finally:
        if redis_port is not None:
            subprocess.run([str(ROOT / "scripts/redis-stop.sh"), str(redis_dir)], capture_output=True)
        if mariadb_base is not None:
            subprocess.run([str(ROOT / "scripts/mariadb-stop.sh"), str(mariadb_dir)], capture_output=True)
        subprocess.run([str(ROOT / "scripts/pg-stop.sh"), str(cluster)], capture_output=True)
    order = {(op, c, st): i for i, (op, c, st) in enumerate(
        (op, c, st) for op in STRATEGIES for c in ("low", "high") for st in STRATEGIES[op])}
    rows.sort(key=lambda r: (list(BACKENDS).index(r["backend"]), order[(r["operation"], r["contention"], r["strategy"])]))
    print(f"strategies: {time.time() - started:.0f} s", flush=True)
    return rows, markdown(rows, settings)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "build/release/concertd"))
    parser.add_argument("--quick", action="store_true", help="short runs, PostgreSQL + Redis only (≤ 40 s)")
    parser.add_argument("--backends", help="comma-separated: pg-redis,pg,mariadb")
    parser.add_argument("--strategies", help="comma-separated subset, e.g. optimistic,atomic")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    # A plain kill must still stop the servers this started (the finally clauses).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-strategies-"))
    rows, table = run(args.binary, work, args.quick, args.backends.split(",") if args.backends else None,
                      args.strategies.split(",") if args.strategies else None)
    print()
    print(f"{datetime.date.today()}, {platform.node()}, {os.cpu_count()} cores: python3 bench/strategies.py"
          + (" --quick" if args.quick else ""))
    print()
    print(table)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(rows, indent=1))
    bad = [r for r in rows if r["invariants"] != "ok"]
    if bad:
        print(f"{len(bad)} runs broke an invariant; logs and scripts in {work}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
