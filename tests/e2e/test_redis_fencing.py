"""Fencing: a holder of the Redis lock that lost its lease (paused past it: GC, swap, SIGSTOP)
must not write (docs/redis.md "The lock": the database refuses a write whose fence is not newer
than the last one it accepted for that resource; the refusal is 429 RATE_LIMITED and changes
nothing).

Pausing a concertd exactly while it holds a lock is hard to time from outside, so the tests play
the stale holder through Redis itself. The lock of resource R is the key `concertd:lock:l:R`
(owner, SET NX PX) and its last fence `concertd:lock:f:R`; a grant's fence is
max(last fence + 1, Redis clock in µs) (src/adapters/redis/redis_lock.cpp); R is
`wallet:{userId}` for charges and payments, `seat:{scheduleId}:{seatNo}` for holds
(src/app/lock_scope.hpp).

1. INCRBY the fence key far ahead (as if many grants had happened): the next write gets the
   newest fence there is and succeeds; PostgreSQL keeps it (wallets/seats.lock_fence).
2. SET the fence key back to 1 and DEL the lock key (as if Redis had lost both): the next grant
   gets a fence from the clock, older than the one PostgreSQL saw: that writer is the stale
   holder, and its write is refused with 429 RATE_LIMITED, nothing changed (balance, history,
   reservation, payment, outbox, token).
3. Putting the fence key back above PostgreSQL's makes writes go through again.
"""
from __future__ import annotations

import time

import pytest

from support import Api, RedisServer, expect, expect_error, new_user_id, poll

pytestmark = [pytest.mark.redis]

LOCK_PREFIX = "concertd:lock:"
AHEAD = 10 ** 12  # µs: about 11.6 days of the clock-based floor


def lock_key(resource: str) -> str:
    return f"{LOCK_PREFIX}l:{resource}"


def fence_key(resource: str) -> str:
    return f"{LOCK_PREFIX}f:{resource}"


def redis_clock_us(redis: RedisServer) -> int:
    sec, usec = redis.command("TIME")
    return int(sec) * 1_000_000 + int(usec)


def fence_of(redis: RedisServer, resource: str) -> int | None:
    value = redis.command("GET", fence_key(resource))
    return None if value is None else int(value)


def bump_fence(redis: RedisServer, resource: str) -> int:
    """INCRBY the fence key to AHEAD past both its value and Redis's clock (the floor of the next
    grant); returns the new value."""
    current = fence_of(redis, resource) or 0
    target = max(current, redis_clock_us(redis)) + AHEAD
    return redis.command("INCRBY", fence_key(resource), target - current)


def counts(s) -> dict[str, int]:
    with s.db() as db:
        return {table: db.tuples(f"SELECT count(*) FROM {table}")[0][0]
                for table in ("wallet_entries", "payments", "reservations", "outbox", "idempotency_keys")}


def assert_stale_refusal(resp) -> None:
    err = expect_error(resp, 429, "RATE_LIMITED")
    assert resp.headers.get("Retry-After") == "1", f"429 without Retry-After: 1: {resp.headers}"
    assert err["message"]


@pytest.fixture
def fenced(make_server):
    s = make_server(CONCERTD_LOCK_SEAT="distributed", CONCERTD_LOCK_POINTS="distributed",
                    CONCERTD_LOCK_PAYMENT="distributed")
    return s, Api(s), s.redis


def test_fence_keys_are_where_the_server_puts_them(fenced):
    s, api, redis = fenced
    user = new_user_id()
    resource = f"wallet:{user}"
    assert fence_of(redis, resource) is None
    api.charged(user, 100)
    fence = fence_of(redis, resource)
    assert fence is not None, (f"no {fence_key(resource)} after a charge under the distributed lock; keys: "
                               f"{redis.command('KEYS', LOCK_PREFIX + '*')}")
    assert abs(fence - redis_clock_us(redis)) < 60_000_000, f"fence {fence} is not near Redis's clock in µs"
    assert redis.command("EXISTS", lock_key(resource)) == 0, "the lock was not released after the charge"
    ttl = redis.command("PTTL", fence_key(resource))
    assert ttl > 24 * 3600 * 1000, f"fence key kept only {ttl} ms"
    (row,) = s.db_query("SELECT lock_fence FROM wallets WHERE user_id = ?", (user,))
    assert row["lock_fence"] == fence, "PostgreSQL did not record the charge's fence"


def test_stale_fence_refuses_charge_and_payment(fenced):
    s, api, redis = fenced
    price = 300
    sid = api.new_schedule(seats=3, price=price)
    user, token = api.user_with_token()
    resource = f"wallet:{user}"
    assert api.charged(user, 1000) == 1000

    # 1. the fence counter far ahead: the next charge holds the newest fence, and succeeds
    bumped = bump_fence(redis, resource)
    assert api.charged(user, 1000) == 2000
    newest = fence_of(redis, resource)
    assert newest == bumped + 1, f"the charge's fence should be {bumped + 1}, Redis has {newest}"
    (row,) = s.db_query("SELECT lock_fence FROM wallets WHERE user_id = ?", (user,))
    assert row["lock_fence"] == newest

    # 2. the counter back to 1 and the lock gone: the next holder's fence (the clock) is older
    rid = api.held(token, user, sid, 1)["reservationId"]
    before = counts(s)
    history = api.history(user)
    for attempt in range(2):
        redis.command("SET", fence_key(resource), 1)
        redis.command("DEL", lock_key(resource))
        assert_stale_refusal(api.charge(user, 1000))
        stale = fence_of(redis, resource)
        assert stale is not None and stale < newest, (stale, newest)
        redis.command("SET", fence_key(resource), 1)
        assert_stale_refusal(api.pay(token, user, rid, key=f"stale-{attempt}"))
    assert api.balance(user) == 2000, "a stale holder's write changed the balance"
    assert api.history(user) == history, "a stale holder's write added history"
    assert counts(s) == before, f"a stale holder's write left rows: {before} -> {counts(s)}"
    assert expect(api.reservation(rid), 200)["status"] == "HELD"
    (row,) = s.db_query("SELECT lock_fence FROM wallets WHERE user_id = ?", (user,))
    assert row["lock_fence"] == newest, "a stale fence overwrote the newer one"
    assert expect(api.token_status(token), 200)["status"] == "ACTIVE", "a refused payment ended the token"
    with s.db() as db:
        assert db.tuples("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0] == 0

    # 3. the fence counter above PostgreSQL's again: writes go through, the refused key is free
    redis.command("SET", fence_key(resource), newest + 10)
    assert api.charged(user, 1000) == 3000
    paid = expect(api.pay(token, user, rid, key="stale-1"), 201)
    assert paid["amount"] == price
    assert api.balance(user) == 3000 - price
    assert [e["type"] for e in api.history(user)] == ["USE", "CHARGE", "CHARGE", "CHARGE"]


def test_stale_fence_refuses_seat_hold(make_server):
    s = make_server(CONCERTD_LOCK_SEAT="distributed", CONCERTD_HOLD_SECONDS=2)
    api, redis = Api(s), s.redis
    sid = api.new_schedule(seats=2, price=100)
    user, token = api.user_with_token()
    resource = f"seat:{sid}:2"

    bumped = bump_fence(redis, resource)
    held = api.held(token, user, sid, 2)
    newest = fence_of(redis, resource)
    assert newest == bumped + 1, (f"the hold's fence should be {bumped + 1}, Redis has {newest} "
                                  f"(keys {redis.command('KEYS', LOCK_PREFIX + '*')})")
    (row,) = s.db_query("SELECT lock_fence FROM seats WHERE schedule_id = ? AND seat_no = 2", (sid,))
    assert row["lock_fence"] == newest

    # the hold expires, the seat is free again; the next holder's fence is older than the seat's
    time.sleep(2.2)
    assert api.seat_statuses(token, sid)[2] == "AVAILABLE"
    # and the sweeper has resolved it (its reservation.expired event would change the counts)
    poll(lambda: s.db_query("SELECT status FROM reservations WHERE id = ?", (held["reservationId"],))[0]["status"]
         == "EXPIRED", timeout=15, interval=0.2, what="the expired hold resolved by the sweeper")
    before = counts(s)
    redis.command("SET", fence_key(resource), 1)
    redis.command("DEL", lock_key(resource))
    other, other_token = api.user_with_token()
    assert_stale_refusal(api.hold(other_token, other, sid, 2))
    assert counts(s) == before, "a stale holder's hold left rows"
    assert api.seat_statuses(token, sid)[2] == "AVAILABLE"
    rows = s.db_query("SELECT id FROM reservations WHERE schedule_id = ?", (sid,))
    assert [r["id"] for r in rows] == [held["reservationId"]]
    # seat 1 has its own lock and fence: unaffected
    api.held(other_token, other, sid, 1)

    redis.command("SET", fence_key(resource), newest + 10)
    assert api.held(other_token, other, sid, 2)["seatNo"] == 2
