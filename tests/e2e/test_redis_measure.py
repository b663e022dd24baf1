"""Rough numbers only (the benchmark measures properly, against references): token issues and
seat-map reads per second on one concertd with Redis (queue and cache in Redis) and on one
without it (PostgreSQL alone: the queue in a table, no cache), both on this 2-core machine with
the load generator (loadgen.py, 64 keep-alive connections) sharing the cores. Printed in the
"measurements" section; the test fails only on wrong answers."""
from __future__ import annotations

import time
from collections import Counter

import pytest

import loadgen
from support import Api, new_user_id, report, schedule_spec

pytestmark = [pytest.mark.redis, pytest.mark.slow]

READS, ISSUES, CONNECTIONS = 4000, 3000, 64


def metric(api: Api, name: str) -> float:
    for line in api.s.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics")


def timed(port: int, reqs: list[loadgen.Req]) -> tuple[list[loadgen.Res], float]:
    started = time.perf_counter()
    results = loadgen.run(port, reqs, concurrency=CONNECTIONS)
    return results, time.perf_counter() - started


def test_rough_throughput_with_and_without_redis(make_server):
    lines = []
    for label, redis in (("redis", None), ("postgres only", False)):
        s = make_server(redis=redis)
        api = Api(s)
        _, (sid,) = api.create_concert([schedule_spec(seats=50, price=100)])
        _, token = api.user_with_token()
        api.seat_statuses(token, sid)  # warm
        hits0, misses0 = metric(api, "concertd_cache_hits_total"), metric(api, "concertd_cache_misses_total")
        reads, took = timed(s.port, [loadgen.Req("GET", f"/v1/schedules/{sid}/seats", {"Queue-Token": token})
                                     for _ in range(READS)])
        assert Counter(r.status for r in reads) == {200: READS}, Counter((r.status, r.error) for r in reads)
        hits = metric(api, "concertd_cache_hits_total") - hits0
        misses = metric(api, "concertd_cache_misses_total") - misses0
        p99 = loadgen.percentile([r.latency for r in reads], 99) * 1000
        read_line = f"{READS / took:.0f} seat-map reads/s (p99 {p99:.1f} ms; {hits:.0f} hits, {misses:.0f} misses)"

        issues, took = timed(s.port, [loadgen.Req("POST", "/v1/queue/tokens", {}, {"userId": new_user_id()})
                                      for _ in range(ISSUES)])
        assert Counter(r.status for r in issues) == {201: ISSUES}, Counter((r.status, r.error) for r in issues)
        p99 = loadgen.percentile([r.latency for r in issues], 99) * 1000
        lines.append(f"rough, {label}: {read_line}; {ISSUES / took:.0f} token issues/s (p99 {p99:.1f} ms)")
        if redis is None:
            assert misses <= 2, f"{misses} cache misses over {READS} reads of one unchanged seat map"
    for line in lines:
        report(line + f" [{CONNECTIONS} connections, 2 I/O threads, loadgen on the same 2 cores]")
