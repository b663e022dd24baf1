#!/usr/bin/env python3
"""A first comparison of the seat-hold strategies: holds/s, p99, answers and retries, under low
contention (every attempt a fresh seat) and high contention (every attempt on one 50-seat
schedule), on SQLite or PostgreSQL. The full benchmark with references is `make bench`.

    python3 bench/strategy_measure.py [--binary build/release/concertd] [--seconds 8]
                                      [--postgres] [--connections 64]
"""
import argparse, json, os, pathlib, re, signal, socket, subprocess, tempfile, time, urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent
USERS = 2000

LUA = """
local tokens = {%(tokens)s}
local ids = {%(ids)s}
local contended = %(contended)s
local threads = {}
local counter = 0
function setup(thread)
  thread:set("offset", counter * 50000); counter = counter + 1  -- 100,000 seats, half each
  table.insert(threads, thread)
end
local n = 0
statuses = {}  -- a global: done() reads it from each thread
request = function()
  local s = offset + n; n = n + 1
  local u = (s %% %(users)d) + 1
  local schedule, seat
  if contended then
    schedule, seat = ids[1], math.random(1, 50)
  else
    schedule, seat = ids[math.floor(s / 1000) %% #ids + 1], (s %% 1000) + 1
  end
  local body = string.format('{"userId":%%d,"scheduleId":%%d,"seatNo":%%d}', u, schedule, seat)
  return wrk.format("POST", "/v1/reservations", {["Content-Type"]="application/json", ["Queue-Token"]=tokens[u]}, body)
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, k .. "=" .. v) end
  print("STATUSES " .. table.concat(parts, ","))
end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base, method, path, body=None, headers=None):
    request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None,
                                     method=method)
    request.add_header("Content-Type", "application/json")
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


def metric(base, name):
    text = urllib.request.urlopen(base + "/metrics").read().decode()
    found = re.search(rf"^{name} (\d+)", text, re.M)
    return int(found.group(1)) if found else 0


def run_strategy(args, work, database_url, strategy, contended):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CONCERTD_LISTEN=f"127.0.0.1:{port}", CONCERTD_DATABASE_URL=database_url,
               CONCERTD_DEMO_DATA="false", CONCERTD_ADMIN_KEY="k", CONCERTD_QUEUE_ADMIT_PER_SECOND="100000",
               CONCERTD_QUEUE_MAX_ACTIVE="100000", CONCERTD_LOCK_SEAT=strategy)
    log = open(work / f"{strategy}-{contended}.log", "w")
    server = subprocess.Popen([args.binary], env=env, stderr=log)
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        seats = 50 if contended else 1000
        count = 1 if contended else 100
        schedules = [{"startsAt": "2030-01-01T19:00:00Z", "seatCount": seats, "price": 1000}] * count
        ids = call(base, "POST", "/v1/admin/concerts", {"title": "bench", "schedules": schedules},
                   {"Admin-Key": "k"})["scheduleIds"]
        tokens = [call(base, "POST", "/v1/queue/tokens", {"userId": u})["token"] for u in range(1, USERS + 1)]
        time.sleep(1.0)
        script = work / "holds.lua"
        script.write_text(LUA % {"tokens": ",".join(f'"{t}"' for t in tokens), "ids": ",".join(map(str, ids)),
                                 "contended": "true" if contended else "false", "users": USERS})
        out = subprocess.run(["wrk", "-t2", f"-c{args.connections}", f"-d{args.seconds}s", "--latency",
                              "-s", str(script), base], capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
        statuses = dict(kv.split("=") for kv in re.search(r"STATUSES (\S*)", out).group(1).split(",") if kv)
        return {"strategy": strategy, "workload": "one 50-seat schedule" if contended else "uniform seats",
                "rps": rps, "p99": p99, "statuses": statuses,
                "holds": metric(base, "concertd_holds_total"), "retries": metric(base, "concertd_hold_retries_total")}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=str(ROOT / "build/release/concertd"))
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-strategies-"))
    work.chmod(0o755)  # the cluster runs as the postgres user, who must enter it
    cluster = work / "pg"
    base_url = None
    if args.postgres:
        base_url = subprocess.run([str(ROOT / "scripts/pg-start.sh"), str(cluster)], capture_output=True,
                                  text=True, check=True).stdout.strip().rsplit("/", 1)[0]
    rows = []
    try:
        for contended in (False, True):
            for strategy in ("pessimistic", "optimistic", "distributed", "atomic"):
                name = f"b_{strategy}_{int(contended)}"
                if args.postgres:
                    subprocess.run(["psql", "-q", f"{base_url}/postgres", "-c", f"CREATE DATABASE {name}"], check=True)
                    url = f"{base_url}/{name}"
                else:
                    url = f"sqlite:{work}/{name}.db"
                rows.append(run_strategy(args, work, url, strategy, contended))
    finally:
        if args.postgres:
            subprocess.run([str(ROOT / "scripts/pg-stop.sh"), str(cluster)], capture_output=True)
    print(f"\nseat holds on {'PostgreSQL' if args.postgres else 'SQLite'}, {args.connections} connections, "
          f"{args.seconds} s each (wrk, closed model)\n")
    print("| workload | strategy | attempts/s | p99 | 201 | 409 | 429 | 5xx | retries |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        s = r["statuses"]
        five = sum(int(v) for k, v in s.items() if k.startswith("5"))
        print(f"| {r['workload']} | {r['strategy']} | {r['rps']:,.0f} | {r['p99']} | {s.get('201', 0)} | "
              f"{s.get('409', 0)} | {s.get('429', 0)} | {five} | {r['retries']} |")


if __name__ == "__main__":
    main()
