#!/usr/bin/env python3
"""A first quick measurement with wrk: seat-map reads/s, token issues/s and holds/s, on the
embedded default, on PostgreSQL, or on PostgreSQL + Redis.

Starts concertd (and a throwaway PostgreSQL / Redis when asked), creates a concert of 100 dates
x 1000 seats and one of 50 seats, admits 2000 users, then runs wrk for each workload. Not the
benchmark of SPEC §5 (that is `make bench`): no reference, no open-model load.

    python3 bench/quick_measure.py [--binary build/release/concertd] [--seconds 8]
                                   [--postgres] [--redis]
"""
import argparse, json, os, pathlib, re, signal, socket, subprocess, sys, tempfile, time, urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
USERS = 2000


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def metric(base, name):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    found = re.search(rf"^{name} (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def wrk(url, script, connections, seconds):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, p99, int(errors.group(1)) if errors else 0


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/release/concertd"))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--redis", action="store_true")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-quick-"))
    work.chmod(0o755)  # a PostgreSQL cluster runs as the postgres user, who must enter it
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CONCERTD_LISTEN=f"127.0.0.1:{port}", CONCERTD_DATABASE_URL=f"sqlite:{work}/c.db",
               CONCERTD_DEMO_DATA="false", CONCERTD_ADMIN_KEY="k", CONCERTD_QUEUE_ADMIT_PER_SECOND="1000000",
               CONCERTD_QUEUE_MAX_ACTIVE="10000000")
    stops = []
    if args.postgres:
        url = subprocess.run([str(ROOT / "scripts/pg-start.sh"), str(work / "pg")], capture_output=True, text=True,
                             check=True).stdout.strip()
        env["CONCERTD_DATABASE_URL"] = url
        stops.append([str(ROOT / "scripts/pg-stop.sh"), str(work / "pg")])
    if args.redis:
        env["CONCERTD_REDIS_URL"] = subprocess.run([str(ROOT / "scripts/redis-start.sh"), str(work / "redis")],
                                                   capture_output=True, text=True, check=True).stdout.strip()
        stops.append([str(ROOT / "scripts/redis-stop.sh"), str(work / "redis")])
    server = subprocess.Popen([args.binary], env=env, stderr=open(work / "log", "w"))
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        schedules = [{"startsAt": "2030-01-01T19:00:00Z", "seatCount": 1000, "price": 1000}] * 100
        ids = call(base, "POST", "/v1/admin/concerts", {"title": "bench", "schedules": schedules},
                   {"Admin-Key": "k"})["scheduleIds"]
        small = call(base, "POST", "/v1/admin/concerts",
                     {"title": "reads", "schedules": [{"startsAt": "2030-01-01T19:00:00Z", "seatCount": 50, "price": 1000}]},
                     {"Admin-Key": "k"})["scheduleIds"][0]
        tokens = [call(base, "POST", "/v1/queue/tokens", {"userId": u})["token"] for u in range(1, USERS + 1)]
        time.sleep(1.0)
        # wrk runs LuaJIT (Lua 5.1): no // operator. Each hold is a fresh seat; each thread its half.
        (work / "holds.lua").write_text(f"""
local tokens = {{{",".join('"' + t + '"' for t in tokens)}}}
local ids = {{{",".join(map(str, ids))}}}
local counter = 0
function setup(thread) thread:set("offset", counter * 50000); counter = counter + 1 end
local n = 0
request = function()
  local s = offset + n; n = n + 1
  local u = (s % {USERS}) + 1
  local body = string.format('{{"userId":%d,"scheduleId":%d,"seatNo":%d}}', u, ids[math.floor(s / 1000) % 100 + 1], (s % 1000) + 1)
  return wrk.format("POST", "/v1/reservations", {{["Content-Type"]="application/json", ["Queue-Token"]=tokens[u]}}, body)
end
""")
        (work / "seats.lua").write_text(f'wrk.headers["Queue-Token"] = "{tokens[0]}"\n')
        (work / "tokens.lua").write_text("""
local counter = 0
function setup(thread) thread:set("offset", 10000000 + counter * 5000000); counter = counter + 1 end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/queue/tokens", {["Content-Type"]="application/json"}, string.format('{"userId":%d}', offset + n))
end
""")
        misses_before = metric(base, "concertd_cache_misses_total")
        reads, reads_p99, reads_errors = wrk(f"{base}/v1/schedules/{small}/seats", str(work / "seats.lua"), 256, args.seconds)
        misses = metric(base, "concertd_cache_misses_total") - misses_before
        issues, issues_p99, issues_errors = wrk(base, str(work / "tokens.lua"), 64, args.seconds)
        holds, holds_p99, holds_errors = wrk(base, str(work / "holds.lua"), 64, args.seconds)
        mode = "SQLite" if not args.postgres else "PostgreSQL" + (" + Redis" if args.redis else "")
        if args.redis and not args.postgres:
            mode = "SQLite + Redis"
        print(f"{mode}, wrk -t2 on the same 2 cores, {args.seconds} s each:")
        print(f"  seat map read (50 seats, 256 conns): {reads:,.0f} req/s, p99 {reads_p99}, non-2xx {reads_errors}, "
              f"database queries per read {misses / max(1, reads * args.seconds):.4f}")
        print(f"  queue token issue (new users, 64 conns): {issues:,.0f} req/s, p99 {issues_p99}, non-2xx {issues_errors}")
        print(f"  seat hold (uniform seats, default strategy, 64 conns): {holds:,.0f} req/s, p99 {holds_p99}, non-2xx {holds_errors}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        for stop in stops:
            subprocess.run(stop, capture_output=True)


if __name__ == "__main__":
    main()
