"""Redis goes away under load and comes back (CONCERTD_E2E_BACKEND=postgres+redis).

During a burst of token issues and polls, holds under the distributed seat lock, charges under
the distributed points lock and payments (test_crash.start_burst, 24 clients), Redis stops
(scripts/redis-stop.sh: SHUTDOWN NOSAVE) — or freezes (SIGSTOP: connections stay open and
nothing answers). While it is away:

- what needs the queue (token issue and poll, and every token-gated endpoint: dates, seat map,
  hold, payment) or the Redis lock (a charge under `distributed`) answers 503
  DEPENDENCY_UNAVAILABLE with Retry-After (SPEC §3), soon, never another 5xx; the process stays
  up; /healthz is 200, /readyz is 503 naming redis down and the database up;
- what needs neither keeps working: GET /v1/concerts, a wallet's balance and history, a
  reservation by id.

Redis starts again on the same port. It persisted nothing, so every queue token issued before
is gone (401 QUEUE_TOKEN_INVALID, docs/redis.md "Persistence"): clients issue new ones (the
decision is written down in tests/e2e/README.md). Within a few seconds /readyz is 200 and
tokens, holds, charges and payments work again; then every invariant of the crash test holds
(nothing acknowledged lost, nothing doubled, outbox relayed once).

And a concertd started while its Redis is not there yet: alive, not ready, 503 where Redis is
needed, ready within seconds once Redis answers.
"""
from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter

import pytest
import requests

from support import (Api, RedisServer, Server, error_code, expect, expect_error, free_port, new_user_id, poll,
                     report, schedule_spec)
from test_crash import PRICE, check_invariants, start_burst

pytestmark = [pytest.mark.redis, pytest.mark.crash, pytest.mark.slow]

SEATS = 50
REFUSE_WITHIN = 5.0  # seconds a request may take to be refused while Redis is away


def probe(s: Server, method: str, path: str, **kw) -> tuple[requests.Response, float]:
    started = time.monotonic()
    r = s.request(method, path, allow_5xx=True, timeout=15, session=requests.Session(), **kw)
    return r, time.monotonic() - started


def assert_unavailable(r: requests.Response, what: str) -> None:
    assert r.status_code == 503, f"{what} while Redis is away: {r.status_code} {r.text[:300]}"
    assert error_code(r) == "DEPENDENCY_UNAVAILABLE", f"{what}: {r.text[:300]}"
    assert r.headers.get("Retry-After"), f"{what}: 503 without Retry-After"


def redis_pid(s: Server) -> int:
    return int((s.redis.dir / "redis.pid").read_text().strip())


@pytest.mark.parametrize("how", ["stop", "freeze"])
def test_redis_outage_mid_burst(make_server, how):
    s = make_server(CONCERTD_HOLD_SECONDS=300, CONCERTD_LOCK_SEAT="distributed", CONCERTD_LOCK_POINTS="distributed",
                    CONCERTD_LOCK_PAYMENT="distributed")
    api = Api(s)
    concert_id, sids = api.create_concert([schedule_spec(seats=SEATS, price=PRICE),
                                           schedule_spec(days=40, seats=SEATS, price=PRICE)])
    prober, prober_token = api.user_with_token()
    api.charged(prober, 10 * PRICE)
    probe_rid = api.held(prober_token, prober, sids[0], SEATS)["reservationId"]
    history_before = api.history(prober)
    assert expect(s.get("/readyz"), 200)["checks"] == {"database": "up", "redis": "up"}

    users, hot, ledger, stop, threads = start_burst(api, sids, SEATS, clients=24, outage=True)
    frozen_pid = None
    orphans: dict = {}
    try:
        poll(lambda: len(ledger.payments) >= 20, timeout=30, what="20 payments before the outage")
        time.sleep(random.uniform(0.05, 0.3))
        before = len(ledger.payments)
        down_at = time.monotonic()
        if how == "stop":
            s.redis.stop()
        else:
            frozen_pid = redis_pid(s)
            os.kill(frozen_pid, signal.SIGSTOP)

        # --- away: 503 with Retry-After where Redis is needed, the rest works
        ready, ready_in = probe(s, "GET", "/readyz")
        deadline = time.monotonic() + 10
        while ready.status_code != 503 and time.monotonic() < deadline:
            time.sleep(0.1)
            ready, ready_in = probe(s, "GET", "/readyz")
        assert ready.status_code == 503, f"/readyz while Redis is away: {ready.status_code} {ready.text}"
        assert ready.json().get("checks") == {"database": "up", "redis": "down"}, ready.text
        assert ready_in < REFUSE_WITHIN, f"/readyz took {ready_in:.1f}s while Redis is away"
        assert probe(s, "GET", "/healthz")[0].status_code == 200, "/healthz while Redis is away"
        newcomer = new_user_id()
        probes = {
            "token issue": probe(s, "POST", "/v1/queue/tokens", json={"userId": newcomer}),
            "token poll": probe(s, "GET", "/v1/queue/tokens/current", token=prober_token),
            "dates": probe(s, "GET", f"/v1/concerts/{concert_id}/schedules", token=prober_token),
            "seat map": probe(s, "GET", f"/v1/schedules/{sids[1]}/seats", token=prober_token),
            "hold": probe(s, "POST", "/v1/reservations", json={"userId": prober, "scheduleId": sids[1], "seatNo": 1},
                          token=prober_token),
            "payment": probe(s, "POST", "/v1/payments", json={"userId": prober, "reservationId": probe_rid},
                             token=prober_token, headers={"Idempotency-Key": f"redis-outage-{how}"}),
            "charge (distributed lock)": probe(s, "POST", f"/v1/users/{prober}/points/charge", json={"amount": 1}),
        }
        slow = {what: round(took, 1) for what, (_, took) in probes.items() if took >= REFUSE_WITHIN}
        for what, (r, took) in probes.items():
            assert_unavailable(r, what)
        assert not slow, f"refused only after (s): {slow}"
        working = {
            "concerts": probe(s, "GET", "/v1/concerts"),
            "balance": probe(s, "GET", f"/v1/users/{prober}/points"),
            "history": probe(s, "GET", f"/v1/users/{prober}/points/history"),
            "reservation": probe(s, "GET", f"/v1/reservations/{probe_rid}"),
        }
        for what, (r, took) in working.items():
            assert r.status_code == 200, f"{what} needs no Redis, yet while Redis is away: {r.status_code} {r.text}"
            assert took < REFUSE_WITHIN, f"{what} took {took:.1f}s while Redis is away"
        assert concert_id in [c["concertId"] for c in working["concerts"][0].json()["concerts"]]
        assert working["balance"][0].json()["balance"] == 10 * PRICE
        assert working["history"][0].json()["entries"] == history_before
        assert working["reservation"][0].json()["status"] == "HELD"
        time.sleep(1.0)  # the burst keeps knocking
        assert s.running, f"concertd exited while Redis was away:\n{s.log_tail(30)}"
        assert probe(s, "GET", "/healthz")[0].status_code == 200
        assert probe(s, "GET", "/readyz")[0].status_code == 503
        during = len(ledger.unavailable)
        assert during > 0, "the burst saw no 503 while Redis was away"

        # --- back (empty after a stop, as it was after a freeze): within a few seconds all works
        up_at = time.monotonic()
        if how == "stop":
            s.redis.start()
        else:
            os.kill(frozen_pid, signal.SIGCONT)
            frozen_pid = None
            time.sleep(0.05)
            # locks granted to acquires that concertd had given up on (their commands waited in the
            # socket buffers of the frozen Redis): concertd releases them by owner once Redis
            # answers, well before their lease (5 s) would end them
            orphans = {k: (s.redis.command("GET", k), s.redis.command("PTTL", k))
                       for k in s.redis.command("KEYS", "concertd:lock:l:*")}
        poll(lambda: probe(s, "GET", "/readyz")[0].status_code == 200, timeout=5, interval=0.1,
             what="/readyz 200 after Redis came back")
        ready_after = time.monotonic() - up_at
        assert expect(s.get("/readyz"), 200)["checks"] == {"database": "up", "redis": "up"}

        def charge_works():
            r, _ = probe(s, "POST", f"/v1/users/{prober}/points/charge", json={"amount": 1})
            return r.status_code == 200
        poll(charge_works, timeout=5, interval=0.1, what="a charge under the Redis lock after Redis came back")
        served_after = time.monotonic() - up_at
        if how == "freeze":  # every lease granted at the resume is gone within 2 s, not 5
            def still_held():
                return [(k, owner, s.redis.command("PTTL", k)) for k, (owner, _) in orphans.items()
                        if owner is not None and s.redis.command("GET", k) == owner]
            poll(lambda: not still_held(), timeout=2.0, interval=0.05,
                 what=lambda: f"the leases granted at the resume released (held: {still_held()})")
        r, _ = probe(s, "GET", "/v1/queue/tokens/current", token=prober_token)
        if how == "stop":  # Redis came back empty: the token is gone, a new one is needed
            expect_error(r, 401, "QUEUE_TOKEN_INVALID")
            prober_token = api.active_token(prober)
        else:
            assert expect(r, 200)["status"] == "ACTIVE", r.text
        expect(api.pay(prober_token, prober, probe_rid, key=f"redis-outage-{how}"), 201)
        poll(lambda: len(ledger.payments) >= before + 10, timeout=15, what="10 more payments after the outage")
    finally:
        if frozen_pid is not None:
            os.kill(frozen_pid, signal.SIGCONT)
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
    # 401 QUEUE_TOKEN_INVALID, never while Redis is away (a token that cannot be checked is a
    # 503), and afterwards only for a known reason:
    # - stop: Redis came back empty, every token issued before is gone;
    # - freeze: the token was ended by a payment that committed although its client got a 503
    #   (the token's end, and the cache invalidation, waited in the frozen Redis's sockets), or a
    #   token issued again after a payment was still the paid one, whose end was deferred.
    lost = [x for x in ledger.tokens_lost if x[0] >= up_at]
    early = [x for x in ledger.tokens_lost if x[0] < up_at]
    assert not early, f"401 while Redis was away (down {down_at:.2f}, up {up_at:.2f}): {early[:10]}"
    odd = [o for o in ledger.odd if not (o[4] == 401 and "QUEUE_TOKEN_INVALID" in o[5] and o[0] >= up_at)]
    assert not odd, f"answers other than 200/201/409/429/503 (down {down_at:.2f}, up {up_at:.2f}): {odd[:10]}"
    if how == "freeze" and lost:
        acked = Counter(user for user, _, _ in ledger.payments.values())
        with s.db() as db:
            paid = Counter(dict(db.tuples("SELECT user_id, count(*) FROM payments GROUP BY user_id")))
        def explained(user: int, path: str) -> bool:
            if ledger.payments_unknown[user] and paid[user] > acked[user]:
                return True  # a payment answered 503 that committed
            # a token issued again after a payment (acked or not) while that payment's end of the
            # token still waited for Redis: the issue returned the old token, which then ended
            return path == "/v1/queue/tokens/current" and paid[user] > 0
        unexplained = sorted({u for _, u, _, path in lost if not explained(u, path)})
        assert not unexplained, (f"tokens of users {unexplained} invalid after the freeze without a payment that "
                                 f"committed: {[x for x in lost if x[1] in unexplained][:10]}")
    report(f"redis outage ({how}): {during} answers 503 while away; /readyz 200 {ready_after:.1f}s and a locked "
           f"charge {served_after:.1f}s after Redis came back; {len(lost)} 401s after (tokens gone); "
           f"answers {dict(statuses)}; {len(ledger.payments)} payments"
           + (f"; {len(orphans)} lock keys taken right after SIGCONT, PTTL up to "
              f"{max((ttl for _, ttl in orphans.values()), default=0)} ms" if how == "freeze" else ""))

    check_invariants(api, ledger, users, hot, sids)


def test_start_while_redis_is_down_then_redis_comes(make_server, tmp_path):
    """A concertd started before its Redis serves what needs no Redis, is alive but not ready,
    refuses the rest with 503 + Retry-After, and is ready within seconds once Redis answers."""
    redis = RedisServer(tmp_path / "late-redis")
    redis.port = free_port()  # nothing listens there yet
    try:
        s = make_server(redis=redis, CONCERTD_LOCK_POINTS="distributed")
        api = Api(s)
        assert expect(s.get("/healthz"), 200)
        r = s.get("/readyz", allow_5xx=True)
        assert r.status_code == 503 and r.json().get("checks") == {"database": "up", "redis": "down"}, r.text
        assert r.headers.get("Retry-After"), r.headers
        user = new_user_id()
        assert_unavailable(api.issue_token(user, allow_5xx=True), "token issue before Redis")
        assert_unavailable(api.charge(user, 100, allow_5xx=True), "charge (distributed lock) before Redis")
        assert expect(s.get("/v1/concerts"), 200) == {"concerts": []}
        assert api.balance(user) == 0

        redis.start()
        poll(lambda: s.get("/readyz", allow_5xx=True).status_code == 200, timeout=5, interval=0.1,
             what="/readyz 200 once Redis answers")
        assert api.charged(user, 100) == 100
        sid = api.new_schedule(seats=2, price=100)
        token = api.active_token(user)
        rid = api.held(token, user, sid, 1)["reservationId"]
        expect(api.pay(token, user, rid), 201)
        assert api.balance(user) == 0
    finally:
        redis.stop()
