#!/usr/bin/env python3
"""A first quick measurement on the embedded default: seat-map reads/s and holds/s with wrk.

Starts concertd on a fresh SQLite file, creates a concert of 100 dates x 1000 seats, admits 2000
users, then runs wrk for each workload. Not the benchmark of SPEC §5 (that is `make bench`):
no reference, no open-model load; just the numbers and the command that gave them.

    python3 bench/quick_measure.py [path/to/concertd] [seconds]
"""
import json, os, pathlib, re, signal, socket, subprocess, sys, tempfile, time, urllib.request

binary = sys.argv[1] if len(sys.argv) > 1 else "build/release/concertd"
seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 10
users = 2000


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


def wrk(url, script, connections):
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script, url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)
    return rps, p99, out


def main():
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-quick-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, CONCERTD_LISTEN=f"127.0.0.1:{port}", CONCERTD_DATABASE_URL=f"sqlite:{work}/c.db",
               CONCERTD_DEMO_DATA="false", CONCERTD_ADMIN_KEY="k", CONCERTD_QUEUE_ADMIT_PER_SECOND="100000",
               CONCERTD_QUEUE_MAX_ACTIVE="100000")
    server = subprocess.Popen([binary], env=env, stderr=open(work / "log", "w"))
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        schedules = [{"startsAt": "2030-01-01T19:00:00Z", "seatCount": 1000, "price": 1000}] * 100
        created = call(base, "POST", "/v1/admin/concerts", {"title": "bench", "schedules": schedules},
                       {"Admin-Key": "k"})
        ids = created["scheduleIds"]
        # the SPEC's default schedule: 50 seats, for the read measurement
        small = call(base, "POST", "/v1/admin/concerts",
                     {"title": "reads", "schedules": [{"startsAt": "2030-01-01T19:00:00Z", "seatCount": 50, "price": 1000}]},
                     {"Admin-Key": "k"})["scheduleIds"][0]
        tokens = [call(base, "POST", "/v1/queue/tokens", {"userId": u})["token"] for u in range(1, users + 1)]
        time.sleep(0.5)
        # wrk runs LuaJIT (Lua 5.1): no // operator.
        # each wrk request: user u holds seat (s % 1000)+1 of schedule ids[s // 1000]: every hold a fresh seat
        (work / "holds.lua").write_text(f"""
local tokens = {{{",".join('"' + t + '"' for t in tokens)}}}
local ids = {{{",".join(map(str, ids))}}}
local counter = 0
function setup(thread) thread:set("offset", counter * 50000); counter = counter + 1 end
local n = 0
request = function()
  local s = offset + n; n = n + 1
  local u = (s % {users}) + 1
  local body = string.format('{{"userId":%d,"scheduleId":%d,"seatNo":%d}}', u, ids[math.floor(s / 1000) % 100 + 1], (s % 1000) + 1)
  return wrk.format("POST", "/v1/reservations", {{["Content-Type"]="application/json", ["Queue-Token"]=tokens[u]}}, body)
end
""")
        (work / "seats.lua").write_text(f'wrk.headers["Queue-Token"] = "{tokens[0]}"\n')
        rps_r, p99_r, _ = wrk(f"{base}/v1/schedules/{small}/seats", str(work / "seats.lua"), 256)
        rps_h, p99_h, out = wrk(base, str(work / "holds.lua"), 64)
        if "Non-2xx" in out:
            print(out)
        codes = call(base, "GET", "/healthz")
        print(f"seat map read (cached, 50 seats, 256 connections): {rps_r:,.0f} req/s, p99 {p99_r}")
        print(f"seat hold (uniform seats, optimistic, 64 connections): {rps_h:,.0f} req/s, p99 {p99_h}")
        metrics = urllib.request.urlopen(base + "/metrics").read().decode()
        held = re.search(r"^concertd_holds_total (\d+)", metrics, re.M).group(1)
        print(f"holds that succeeded: {held}")
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
