#!/usr/bin/env python3
"""Events/s through the outbox relay to Kafka and the end-to-end lag, at the bench's hold load
(issue 6). Not part of `make bench`: it needs the test Kafka (scripts/install-kafka.sh).

    python3 bench/kafka.py [--binary build/release/concertd] [--seconds 10]

In a temp dir: one PostgreSQL (scripts/pg-start.sh), one Kafka (scripts/kafka-start.sh), one
concertd with CONCERTD_KAFKA_BROKERS; bench/workloads.py's seat holds (every hold a fresh seat,
one `reservation.held` event each), for --seconds each:
1. the broker up, holds offered at 1,000/s (vegeta, the bench's constant-rate hold load), then
   as fast as 64 connections go (wrk). A kcat consumer follows concertd.reservation; per event
   the lag from `occurredAt` (the outbox row, the database's clock) to the relay taking it, to
   the message's timestamp (the producer's clock as it sends) and to the consumer's receipt
   (all one machine's clock);
2. drain: wrk's load with the broker stopped (the events wait in the outbox), then the broker
   started again: how fast the relay empties the backlog alone, its top speed.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import tools  # noqa: E402
import workloads as w  # noqa: E402
from stack import ROOT, Concertd, Postgres, http_get, run, wait_until  # noqa: E402

TOPIC = "concertd.reservation"


class Kafka:
    def __init__(self, directory: pathlib.Path):
        self.directory = directory
        self.port = ""
        self.bootstrap = ""

    def start(self) -> "Kafka":
        cmd = [ROOT / "scripts/kafka-start.sh", self.directory] + ([self.port] if self.port else [])
        self.bootstrap = run(cmd, timeout=180).strip().splitlines()[-1]
        self.port = self.bootstrap.rsplit(":", 1)[1]
        return self

    def stop(self):
        subprocess.run([str(ROOT / "scripts/kafka-stop.sh"), str(self.directory)], capture_output=True)


class Follower:
    """kcat following a topic; stamps each message with the time it arrived here."""

    def __init__(self, bootstrap: str):
        self.received: list[tuple[float, dict]] = []
        self.process = subprocess.Popen(["kcat", "-C", "-b", bootstrap, "-t", TOPIC, "-o", "end", "-J", "-u", "-q"],
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("{"):
                self.received.append((time.time() * 1000, json.loads(line)))

    def stop(self):
        self.process.terminate()
        self.process.wait(10)


def percentiles(values: list[float]) -> str:
    v = sorted(values)
    if not v:
        return "none"
    pick = lambda p: v[min(len(v) - 1, int(p * len(v)))]  # noqa: E731
    return f"p50 {pick(0.5):.0f} ms, p99 {pick(0.99):.0f} ms, max {v[-1]:.0f} ms"


def unpublished(url: str) -> int:
    return int(Postgres.psql(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0])


def follow(server: Concertd, kafka: Kafka, url: str, name: str, load) -> None:
    """Runs `load()` (a bench workload's dict) with a kcat consumer following the topic; prints
    the relay's rate and the lag of the load's events."""
    follower = Follower(kafka.bootstrap)
    time.sleep(2)  # assigned and at the end of the topic before the load
    published0 = server.metrics()["concertd_events_published_total"]
    since_ms = int(time.time() * 1000)
    result = load()
    backlog = unpublished(url)
    published = server.metrics()["concertd_events_published_total"] - published0
    wait_until(lambda: unpublished(url) == 0, 120, "the outbox to drain")
    time.sleep(2)  # the last messages reach the follower
    follower.stop()
    events = [(at, m, json.loads(m["payload"])) for at, m in follower.received]
    events = [e for e in events if e[2]["type"] == "reservation.held" and e[2]["occurredAt"] >= since_ms]
    seconds = result.get("seconds") or result["requests"] / result["rate"]
    print(f"{name}: {len(events)} holds in {seconds:.1f} s ({len(events) / seconds:.0f}/s, HTTP p99 "
          f"{result['p99_ms']:.0f} ms); the relay published {published:.0f} events meanwhile "
          f"({published / seconds:.0f}/s), {backlog} left in the outbox at the end of the load")
    # published_at is the time the relay step that sent the event began
    taken = [float(r[0]) for r in Postgres.psql(url, "SELECT published_at - occurred_at FROM outbox"
                                                     f" WHERE occurred_at >= {since_ms}")]
    print(f"  occurredAt -> taken by the relay: {percentiles(taken)}")
    print(f"  occurredAt -> message timestamp:  {percentiles([m['ts'] - e['occurredAt'] for _, m, e in events])}")
    print(f"  occurredAt -> kcat consumer:      {percentiles([at - e['occurredAt'] for at, _, e in events])}")
    print(f"  load: {result['command']}")


def drain(server: Concertd, kafka: Kafka, url: str, work: pathlib.Path, s: w.Settings) -> None:
    kafka.stop()
    load = w.concertd_holds(server, work, s)
    backlog = unpublished(url)
    kafka.start()
    started = time.time()
    # The relay's batch that failed while the broker was away is retried a second later: time
    # the drain from the first drop of the backlog.
    first = ready_at = None
    while first is None or ready_at is None:
        now = time.time()
        if now - started > 60:
            raise RuntimeError("the relay did not start draining, or /readyz stayed 503, for 60 s")
        if first is None and unpublished(url) < backlog:
            first = now
        if ready_at is None and http_get(server.base + "/readyz")[0] == 200:
            ready_at = now
        time.sleep(0.02)
    wait_until(lambda: unpublished(url) == 0, 300, "the backlog to drain", pause=0.05)
    took = time.time() - first
    print(f"drain: {backlog} events waited ({load['holds_per_s']:.0f} holds/s with the broker down); "
          f"the broker back, the relay sent them in {took:.2f} s after {first - started:.1f} s: "
          f"{backlog / took:.0f} events/s; /readyz 200 {ready_at - started:.1f} s after the broker's start")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=str(ROOT / "build/release/concertd"))
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    for tool in ("wrk", "kcat", "psql", str(tools.VEGETA)):
        if shutil.which(tool) is None:
            sys.exit(f"bench/kafka.py: {tool} missing (scripts/install-bench-deps.sh, scripts/install-kafka.sh)")
    run([ROOT / "scripts/install-kafka.sh"], timeout=1800)
    work = pathlib.Path(tempfile.mkdtemp(prefix="concertd-bench-kafka-"))
    work.chmod(0o755)  # the cluster runs as the postgres user
    s = w.Settings(quick=False)
    s.write_seconds = s.vegeta_seconds = args.seconds
    s.hold_schedules = 100  # 100,000 fresh seats per wrk run: more than 10 s take
    pg, kafka, server = Postgres(work / "pg"), Kafka(work / "kafka"), None
    try:
        pg.start()
        kafka.start()
        url = pg.create_database("bench_kafka")
        server = Concertd(str(pathlib.Path(args.binary).resolve()), work, "kafka", url,
                          env={"CONCERTD_KAFKA_BROKERS": kafka.bootstrap}).start()
        # One hold first: its topic exists before the follower starts.
        _, answer = server.call("POST", "/v1/queue/tokens", {"userId": 1})
        token = answer["token"]
        wait_until(lambda: server.call("GET", "/v1/queue/tokens/current", None, {"Queue-Token": token})[1]
                   ["status"] == "ACTIVE", 10, "a token")
        sid = server.create_concert(1, 1)[0][0]
        server.call("POST", "/v1/reservations", {"userId": 1, "scheduleId": sid, "seatNo": 1}, {"Queue-Token": token})
        wait_until(lambda: unpublished(url) == 0, 30, "the first event on Kafka")
        load = " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
        print(f"bench/kafka.py --seconds {args.seconds}: PostgreSQL 15, Kafka {kafka.bootstrap}, {args.binary}, "
              f"machine load {load}")
        # The bench's two hold loads: a constant 1,000/s (vegeta) and as fast as it goes (wrk).
        follow(server, kafka, url, f"{s.vegeta_hold_rate}/s offered",
               lambda: w.vegeta_holds(server, work, s, "kafka"))
        follow(server, kafka, url, "closed loop", lambda: w.concertd_holds(server, work, s))
        drain(server, kafka, url, work, s)
        failed = server.log_path.read_text(errors="replace").count("outbox relay failed")
        print(f"relay steps that failed: {failed} (the broker was down for one batch's timeout at least)")
    finally:
        if server:
            server.stop()
        kafka.stop()
        pg.stop()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
