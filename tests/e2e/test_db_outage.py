"""The database (PostgreSQL or MariaDB, the session's kind) goes away under load, and a process
dies under load.

- Outage: during a burst of holds, charges and payments from many threads, the database server
  stops: cleanly, ending the sessions (PostgreSQL: pg_ctl -m fast; MariaDB: SIGTERM), or in a
  crash recovered at the next start (PostgreSQL: -m immediate; MariaDB: SIGKILL, InnoDB crash
  recovery). While it is down every answer that needs it is 503 DEPENDENCY_UNAVAILABLE with
  Retry-After (SPEC §3), never another 5xx, the process stays up, /healthz stays 200 and
  /readyz is 503. The server starts again on the same port; within a few seconds requests
  succeed and /readyz is 200. Then every invariant of the crash test holds.
  The outage runs on a database server of its own, so the session's other servers see nothing
  of it. With Redis (CONCERTD_E2E_BACKEND=postgres+redis) the queue does not need the database:
  a token is issued during the outage (201), every other probe is 503 as without Redis.
  For PostgreSQL's `immediate`, the database has synchronous_commit on (pg-start.sh sets it off,
  and an acknowledged commit could then be lost by a PostgreSQL crash: a property of that
  setting, not of concertd). MariaDB's innodb_flush_log_at_trx_commit=2 (mariadb-start.sh)
  writes the log at each commit, so a crash of mariadbd alone loses no acknowledged commit.
- kill -9 of one of two processes on one database mid-burst: the other one serves on (the
  locks of the dead one's sessions, advisory locks or GET_LOCK(), are gone with them), the dead
  one restarts, and every invariant holds. (kill -9 of a single process is test_crash.py, which
  runs on every back end.)
"""
from __future__ import annotations

import random
import time
from collections import Counter

import pytest
import requests

from support import (DB_STOP_MODES, IS_POSTGRES, USES_REDIS, Api, Server, error_code, expect, new_database_name,
                     new_db_server, new_user_id, poll, schedule_spec, start_pair)
from test_crash import PRICE, check_invariants, start_burst

pytestmark = [pytest.mark.shared_db, pytest.mark.crash, pytest.mark.slow]

SEATS = 50


@pytest.fixture
def own_cluster():
    """A database server of the session's kind (PgCluster or MariaDbServer) for this test alone."""
    cluster = new_db_server().start()
    yield cluster
    cluster.destroy()


def probe(s: Server, method: str, path: str, **kw) -> tuple[requests.Response, float]:
    started = time.monotonic()
    r = s.request(method, path, allow_5xx=True, timeout=15, session=requests.Session(), **kw)
    return r, time.monotonic() - started


def assert_unavailable(r: requests.Response, what: str) -> None:
    assert r.status_code == 503, f"{what} during the outage: {r.status_code} {r.text[:300]}"
    assert error_code(r) == "DEPENDENCY_UNAVAILABLE", f"{what}: {r.text[:300]}"
    assert r.headers.get("Retry-After"), f"{what}: 503 without Retry-After"


@pytest.mark.parametrize("mode", DB_STOP_MODES)
def test_database_outage_mid_burst(own_cluster, tmp_path, mode):
    database = new_database_name(f"outage_{mode}")
    own_cluster.create_database(database)
    if IS_POSTGRES and mode == "immediate":
        own_cluster.admin(f"ALTER DATABASE {database} SET synchronous_commit = on")
    s = Server({"CONCERTD_HOLD_SECONDS": "300"}, workdir=tmp_path / "server", name=f"outage-{mode}",
               database=database, cluster=own_cluster)
    s.start()
    try:
        _run_outage(s, own_cluster, mode)
    finally:
        s.close()


def _run_outage(s: Server, cluster, mode: str) -> None:
    api = Api(s)
    _, sids = api.create_concert([schedule_spec(seats=SEATS, price=PRICE),
                                  schedule_spec(days=40, seats=SEATS, price=PRICE)])
    prober, prober_token = api.user_with_token()
    api.charged(prober, 10 * PRICE)
    probe_rid = api.held(prober_token, prober, sids[0], SEATS)["reservationId"]

    users, hot, ledger, stop, threads = start_burst(api, sids, SEATS, clients=24, outage=True)
    try:
        poll(lambda: len(ledger.payments) >= 20, timeout=30, what="20 payments before the outage")
        time.sleep(random.uniform(0.05, 0.3))
        before = len(ledger.payments)
        down_at = time.monotonic()
        cluster.stop(mode)
        stopped_in = time.monotonic() - down_at

        # --- down: the process stays up, answers 503 with Retry-After, /healthz 200, /readyz 503
        ready, ready_in = probe(s, "GET", "/readyz")
        deadline = time.monotonic() + 5
        while ready.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready, ready_in = probe(s, "GET", "/readyz")
        assert ready.status_code == 503, f"/readyz while the database is down: {ready.status_code} {ready.text}"
        assert ready_in < 5, f"/readyz took {ready_in:.1f}s while the database is down"
        health, _ = probe(s, "GET", "/healthz")
        assert health.status_code == 200, f"/healthz while the database is down: {health.status_code}"
        newcomer = new_user_id()  # no token yet
        probes = {
            "charge": probe(s, "POST", f"/v1/users/{prober}/points/charge", json={"amount": 1}),
            "hold": probe(s, "POST", "/v1/reservations", json={"userId": prober, "scheduleId": sids[1], "seatNo": 1},
                          token=prober_token),
            "payment": probe(s, "POST", "/v1/payments", json={"userId": prober, "reservationId": probe_rid},
                             token=prober_token, headers={"Idempotency-Key": "outage-probe"}),
            "balance": probe(s, "GET", f"/v1/users/{prober}/points"),
            "token": probe(s, "POST", "/v1/queue/tokens", json={"userId": newcomer}),
        }
        if USES_REDIS:  # the queue lives in Redis: a token is issued without the database
            r, took = probes.pop("token")
            assert r.status_code == 201 and r.json()["userId"] == newcomer, f"token during the outage: {r.text}"
            assert took < 10, f"token issue took {took:.1f}s while the database is down"
        for what, (r, took) in probes.items():
            assert_unavailable(r, what)
            assert took < 10, f"{what} took {took:.1f}s to be refused while the database is down"
        time.sleep(1.0)  # the burst keeps knocking
        assert s.running, f"concertd exited while the database was down:\n{s.log_tail(30)}"
        assert probe(s, "GET", "/healthz")[0].status_code == 200
        assert probe(s, "GET", "/readyz")[0].status_code == 503
        during = len(ledger.unavailable)
        assert during > 0, "the burst saw no 503 while the database was down"

        # --- up again on the same port: within a few seconds the service serves again
        up_at = time.monotonic()
        cluster.start()
        assert poll(lambda: probe(s, "GET", "/readyz")[0].status_code == 200, timeout=5, interval=0.1,
                    what="/readyz 200 after the database came back")
        ready_after = time.monotonic() - up_at

        def charge_works():
            r, _ = probe(s, "POST", f"/v1/users/{prober}/points/charge", json={"amount": 1})
            return r.status_code == 200
        poll(charge_works, timeout=5, interval=0.1, what="a charge succeeding after the database came back")
        served_after = time.monotonic() - up_at
        poll(lambda: len(ledger.payments) >= before + 10, timeout=15, what="10 more payments after the outage")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client hangs"
    assert s.running, "concertd exited"

    statuses = Counter(ledger.statuses)
    other_5xx = [u for u in ledger.unavailable if u[2] != 503]
    assert not other_5xx, f"5xx other than 503: {other_5xx[:10]}"
    bad_503 = [u for u in ledger.unavailable if u[3] != "DEPENDENCY_UNAVAILABLE" or not u[4]]
    assert not bad_503, f"503 without DEPENDENCY_UNAVAILABLE or Retry-After: {bad_503[:10]}"
    assert not ledger.transport_errors, f"requests cut or refused (the process must stay up): {dict(ledger.transport_errors)}"
    # A payment that committed as the queue's database went away has its token expired later
    # (app/after_commit.hpp): that token may answer 401 once the database is back.
    odd = [o for o in ledger.odd if not (o[4] == 401 and "QUEUE_TOKEN_INVALID" in o[5] and o[0] >= up_at)]
    assert not odd, f"answers other than 200/201/409/429/503 (down {down_at:.2f}, up {up_at:.2f}): {odd[:10]}"
    print(f"outage ({mode}): stopped in {stopped_in:.1f}s; {len(ledger.unavailable)} answers 503 "
          f"({during} while down); /readyz 200 {ready_after:.1f}s and a charge {served_after:.1f}s after the "
          f"start; answers {dict(statuses)}; {len(ledger.payments)} payments")

    check_invariants(api, ledger, users, hot, sids)


def test_kill_9_one_of_two_processes_mid_burst(tmp_path):
    a, b = start_pair(tmp_path, "killed", CONCERTD_HOLD_SECONDS="300")
    try:
        api_a, api_b = Api(a), Api(b)
        # Twice the seats: the burst holds seats for 300 s, and B must still find free ones after
        # the kill.
        seats = 2 * SEATS
        _, sids = api_a.create_concert([schedule_spec(seats=seats, price=PRICE),
                                        schedule_spec(days=40, seats=seats, price=PRICE)])
        users, hot, ledger, stop, threads = start_burst(api_b, sids, seats, clients=24, servers=[a, b])
        try:
            poll(lambda: len(ledger.payments) >= 30, timeout=30, what="30 payments before the kill")
            time.sleep(random.uniform(0.05, 0.3))
            a.kill()
            killed_with = len(ledger.payments)
            hot_before = ledger.charges_acked[hot]
            # B serves on alone, the hot wallet (locked by A's sessions a moment ago) included
            try:
                poll(lambda: len(ledger.payments) >= killed_with + 10 and ledger.charges_acked[hot] >= hot_before + 20,
                     timeout=30, what="10 payments and 20 hot-wallet charges on B after A was killed")
            except AssertionError as exc:
                raise AssertionError(f"{exc}: {len(ledger.payments) - killed_with} payments and "
                                     f"{ledger.charges_acked[hot] - hot_before} hot charges after the kill; "
                                     f"{sum(t.is_alive() for t in threads)} clients alive; answers "
                                     f"{dict(ledger.statuses)}; 5xx {ledger.unavailable[:5]}") from None
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not any(t.is_alive() for t in threads)
        assert not ledger.unavailable, f"5xx on the surviving process: {ledger.unavailable[:10]}"
        assert all(name == a.name for name, _, _ in ledger.transport_errors), dict(ledger.transport_errors)
        print(f"kill -9 of one of two: {len(ledger.payments)} payments ({len(ledger.payments) - killed_with} after "
              f"the kill); cut {sum(ledger.transport_errors.values())}; answers {dict(ledger.statuses)}")

        a.start()
        expect(api_a.s.get("/readyz"), 200)
        check_invariants(api_a, ledger, users, hot, sids, stop_first=[b])
    finally:
        b.close()
        a.close()
