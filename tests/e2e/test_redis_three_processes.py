"""Three concertd processes on ONE PostgreSQL database and ONE Redis form one service (SPEC §4:
"no correctness may depend on memory that only one process has"): the waiting queue, the
`distributed` lock and the cache live in Redis. Requests are spread round robin: client i talks
to process i % 3.

- Races, for every seat strategy (distributed included) and every points/payment strategy: one
  seat (exactly one 201), a whole schedule (each seat once), 200 charges of one wallet (exact
  balance), 30 payments of one reservation (exactly one; with one shared key every 201 carries
  the same paymentId).
- The queue: positions 1..N in issue order across the processes, FIFO admission, never more
  than max_active ACTIVE, one admission rate for the whole service.
- The cache: a write on one process is seen by the very next read on the others (seat map and
  dates list), hold expiry reads AVAILABLE at once everywhere, a payment reads SOLD everywhere,
  and readers hammering the three processes never see a seat AVAILABLE after its hold was
  answered; hits and misses over 1,000 reads of one seat map.
"""
from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter

import pytest

from support import (Api, describe, error_code, expect, expect_error, new_user_id, parse_iso, report,
                     run_concurrently, schedule_spec, start_group)

pytestmark = [pytest.mark.redis, pytest.mark.race]

RATE_LIMITED = (429, "RATE_LIMITED")
N = 3  # processes

# (seat, points, payment): every strategy of each operation at least once, `distributed` (the
# Redis lock) for each operation.
STRATEGY_SETS = [("pessimistic", "pessimistic", "pessimistic"), ("optimistic", "optimistic", "optimistic"),
                 ("distributed", "distributed", "distributed"), ("atomic", "distributed", "distributed")]


def outcome(resp) -> tuple[int, str | None]:
    assert resp.status_code < 500, f"server error with three processes on one Redis: {describe(resp)}"
    if resp.status_code == 429:
        assert resp.headers.get("Retry-After") == "1", f"429 without Retry-After: 1: {describe(resp)}"
    return resp.status_code, error_code(resp)


def only(counts: Counter, allowed: set) -> None:
    unexpected = {k: v for k, v in counts.items() if k not in allowed}
    assert not unexpected, f"unexpected answers: {unexpected} (all: {dict(counts)})"


def rare_429(counts: Counter, total: int, share: float = 0.05) -> None:
    limited = counts.get(RATE_LIMITED, 0)
    assert limited <= max(1, int(total * share)), f"{limited} of {total} answers were 429: {dict(counts)}"


def metric(api: Api, name: str) -> float:
    for line in api.s.get("/metrics").text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no {name} in /metrics of {api.s.name}")


def tokens_from_each(apis: list[Api], users: list[int]) -> dict[int, str]:
    """Each user's token issued on the process it will talk to (user i -> process i % 3)."""
    tokens = {}
    for k, api in enumerate(apis):
        tokens.update(api.active_tokens(users[k::N], workers=24))
    return tokens


@pytest.fixture(scope="module", params=STRATEGY_SETS, ids=["-".join(s) for s in STRATEGY_SETS])
def trio(request, session_dir):
    seat, points, payment = request.param
    group = start_group(session_dir, f"trio-{seat}-{points}-{payment}", N, CONCERTD_LOCK_SEAT=seat,
                        CONCERTD_LOCK_POINTS=points, CONCERTD_LOCK_PAYMENT=payment)
    yield [Api(s) for s in group]
    for s in reversed(group):  # the first owns the database and the Redis: closed last
        s.close()


def test_processes_share_one_redis(trio):
    apis = trio
    urls = {api.s.redis.url for api in apis}
    assert len(urls) == 1, urls
    for api in apis:
        ready = expect(api.s.get("/readyz"), 200)
        assert ready.get("checks") == {"database": "up", "redis": "up"}, ready
    # a token issued on one process is known to the others (the queue is not in a process)
    user = new_user_id()
    token = apis[0].active_token(user)
    for api in apis:
        st = expect(api.token_status(token), 200)
        assert (st["userId"], st["status"]) == (user, "ACTIVE"), st
        assert expect(api.issue_token(user), 200)["token"] == token


def test_seat_race_200_clients_one_seat(trio):
    apis = trio
    concert_id, (sid,) = apis[0].create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(200)]
    tokens = tokens_from_each(apis, users)
    results = run_concurrently(lambda i, u: apis[i % N].hold(tokens[u], u, sid, 7, allow_5xx=True),
                               [(i, u) for i, u in enumerate(users)])
    counts = Counter(outcome(r) for r in results)
    only(counts, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
    assert counts[(201, None)] == 1, f"exactly one hold must win across three processes: {dict(counts)}"
    rare_429(counts, len(results))
    won = [r.json() for r in results if r.status_code == 201][0]
    for api in apis:
        seats = api.seat_statuses(tokens[users[0]], sid)
        assert seats[7] == "HELD" and all(st == "AVAILABLE" for no, st in seats.items() if no != 7), seats
        assert api.schedules(tokens[users[0]], concert_id)[0]["availableSeats"] == 49
    rows = apis[0].s.db_query("SELECT id, user_id, status FROM reservations WHERE schedule_id = ?", (sid,))
    assert [(r["id"], r["user_id"], r["status"]) for r in rows] == [(won["reservationId"], won["userId"], "HELD")]


def test_whole_schedule_100_clients_50_seats(trio):
    apis = trio
    concert_id, (sid,) = apis[0].create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(100)]
    tokens = tokens_from_each(apis, users)

    def client(i, user):
        api = apis[i % N]
        rng = random.Random(user)
        order = list(range(1, 51))
        rng.shuffle(order)
        retries, seen = Counter(), Counter()
        while order:
            seat = order.pop(0)
            r = api.hold(tokens[user], user, sid, seat, allow_5xx=True)
            o = outcome(r)
            seen[o] += 1
            if o == (201, None):
                return user, seat, seen
            if o == RATE_LIMITED and retries[seat] < 3:
                retries[seat] += 1
                order.append(seat)
        return user, None, seen

    results = run_concurrently(client, list(enumerate(users)))
    counts = sum((r[2] for r in results), Counter())
    only(counts, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
    rare_429(counts, sum(counts.values()))
    seats_won = [seat for _, seat, _ in results if seat is not None]
    assert sorted(seats_won) == list(range(1, 51)), (
        f"{len(seats_won)} winners; seats won twice: {[s for s, c in Counter(seats_won).items() if c > 1]}")
    for api in apis:
        assert set(api.seat_statuses(tokens[users[0]], sid).values()) == {"HELD"}
        assert api.schedules(tokens[users[0]], concert_id)[0]["availableSeats"] == 0
    (row,) = apis[0].s.db_query("SELECT count(*) AS n, count(DISTINCT seat_id) AS seats FROM reservations "
                                "WHERE schedule_id = ? AND status = 'HELD'", (sid,))
    assert (row["n"], row["seats"]) == (50, 50), dict(row)


def test_200_concurrent_charges_one_wallet(trio):
    """Every charge lands exactly once; a 429 (a lock wait that gave up, changing nothing) is
    retried by the client, as Retry-After tells it."""
    apis = trio
    user = new_user_id()

    def charge(i):
        answers = []
        for _ in range(4):
            r = apis[i % N].charge(user, 1000, allow_5xx=True)
            answers.append(r)
            if r.status_code != 429:
                break
        return answers

    results = run_concurrently(charge, [(i,) for i in range(200)])
    counts = Counter(outcome(r) for answers in results for r in answers)
    only(counts, {(200, None), RATE_LIMITED})
    rare_429(counts, 200)
    ok = [answers[-1] for answers in results if answers[-1].status_code == 200]
    assert len(ok) == 200, f"{len(ok)} of 200 charges landed: {dict(counts)}"
    balances = sorted(r.json()["balance"] for r in ok)
    assert balances == [1000 * k for k in range(1, 201)], "two charges saw the same balance: lost update"
    for api in apis:
        assert api.balance(user) == 200_000
    newest = apis[2].history(user, 100)
    assert [e["balanceAfter"] for e in newest] == [1000 * k for k in range(200, 100, -1)]
    (row,) = apis[0].s.db_query("SELECT count(*) AS n, sum(amount) AS total FROM wallet_entries WHERE user_id = ?",
                                (user,))
    assert (row["n"], row["total"]) == (200, 200_000), dict(row)


@pytest.mark.parametrize("keys", ["none", "shared"])
def test_30_concurrent_payments_one_reservation(trio, keys):
    apis = trio
    price = 700
    sid = apis[0].new_schedule(seats=3, price=price)
    user, token = apis[1].user_with_token()
    rid = apis[2].held(token, user, sid, 2)["reservationId"]
    apis[0].charged(user, 5 * price)
    key = f"three-{uuid.uuid4()}" if keys == "shared" else None
    results = run_concurrently(lambda i: apis[i % N].pay(token, user, rid, key=key, allow_5xx=True),
                               [(i,) for i in range(30)])
    counts = Counter(outcome(r) for r in results)
    paid = [r.json() for r in results if r.status_code == 201]
    if keys == "shared":
        only(counts, {(201, None), (409, "IDEMPOTENCY_CONFLICT"), RATE_LIMITED})
        assert paid, f"no payment succeeded: {dict(counts)}"
        assert len({p["paymentId"] for p in paid}) == 1, f"one key, several payments: {paid}"
    else:
        only(counts, {(201, None), (409, "RESERVATION_NOT_PAYABLE"), (401, "QUEUE_TOKEN_INVALID"), RATE_LIMITED})
        assert len(paid) == 1, f"exactly one payment must succeed across three processes: {dict(counts)}"
    rare_429(counts, 30, share=0.1)
    assert paid[0]["amount"] == price and paid[0]["reservationId"] == rid
    for api in apis:
        assert api.balance(user) == 4 * price, "charged more than once"
        assert expect(api.reservation(rid), 200)["status"] == "CONFIRMED"
    assert [e["type"] for e in apis[1].history(user)] == ["USE", "CHARGE"]
    rows = apis[0].s.db_query("SELECT id FROM payments WHERE reservation_id = ?", (rid,))
    assert [r["id"] for r in rows] == [paid[0]["paymentId"]]
    # the payment ended the token on every process (it lives in Redis)
    for api in apis:
        expect_error(api.token_status(token), 401, "QUEUE_TOKEN_INVALID")


# --- the queue across three processes ------------------------------------------------------------

@pytest.fixture
def make_trio(tmp_path, pg_cluster):
    started = []

    def make(name="trio", **env):
        group = start_group(tmp_path, name, N, **env)
        started.extend(reversed(group))
        return [Api(s) for s in group]

    yield make
    for s in started:
        s.close()


def pay_for(api: Api, token: str, user: int, sid: int, seat: int, price: int) -> None:
    """Ends `token` the way SPEC §2 says: its user pays a hold."""
    rid = api.held(token, user, sid, seat)["reservationId"]
    api.charged(user, price)
    expect(api.pay(token, user, rid), 201)


@pytest.mark.slow
def test_fifo_admission_across_three_processes(make_trio):
    """admit 5/s, max_active 3: tokens issued alternately on A, B, C get positions 1..N in issue
    order (as every process tells them); they are admitted in that order; no poll ever sees
    more than 3 ACTIVE. Only payments free a slot (active TTL 600 s), so what each poll round
    sees ACTIVE is still ACTIVE at its end."""
    max_active, n, price = 3, 12, 10
    apis = make_trio(CONCERTD_QUEUE_ADMIT_PER_SECOND=5, CONCERTD_QUEUE_MAX_ACTIVE=max_active)
    _, (sid,) = apis[0].create_concert([schedule_spec(seats=n + max_active + 1, price=price)])
    seats = iter(range(1, n + max_active + 1))

    # fill the active slots first, so that every token of the line waits
    blockers = []
    for k in range(max_active):
        user = new_user_id()
        blockers.append((user, apis[k % N].active_token(user)))
    line = []
    for k in range(n):
        user = new_user_id()
        body = expect(apis[k % N].issue_token(user), 201)
        assert body["status"] == "WAITING" and body["position"] == k + 1, f"token {k + 1} issued on {k % N}: {body}"
        line.append((user, body["token"]))
    for k, (user, token) in enumerate(line):
        for api in apis:
            st = expect(api.token_status(token), 200)
            assert (st["userId"], st["status"], st["position"]) == (user, "WAITING", k + 1), (api.s.name, st)

    # the budget of a second (5 admissions) changes nothing while the slots are full
    time.sleep(1.0)
    for k, (user, token) in enumerate(line):
        st = expect(apis[(k + 1) % N].token_status(token), 200)
        assert (st["status"], st["position"]) == ("WAITING", k + 1), f"token {k + 1} with 3 slots taken: {st}"
    for user, token in blockers:
        assert expect(apis[2].token_status(token), 200)["status"] == "ACTIVE"

    live = {user for user, _ in blockers}  # users whose token is ACTIVE and not yet ended
    admitted: list[int] = []   # indexes into line, in admission order
    max_seen = 0
    rnd = 0
    # end the blockers one by one, then each admitted token, until every token was admitted
    to_end = list(blockers)
    deadline = time.monotonic() + 60
    while len(admitted) < n:
        assert time.monotonic() < deadline, f"only {len(admitted)} of {n} admitted within 60 s"
        if to_end:
            user, token = to_end.pop(0)
            pay_for(apis[rnd % N], token, user, sid, next(seats), price)
            live.remove(user)
        rnd += 1
        # one poll round, newest first: a later token seen ACTIVE while an earlier one is then
        # seen WAITING is overtaking
        seen_active = []
        for j in range(n - 1, -1, -1):
            user, token = line[j]
            if j in admitted:
                if user not in live:
                    continue  # ended by its payment
            st = expect(apis[(j + rnd) % N].token_status(token), 200)
            if st["status"] == "ACTIVE":
                if j not in admitted:
                    seen_active.append(j)
            else:
                assert st["status"] == "WAITING", st
                assert j not in admitted, f"token {j + 1} was ACTIVE and is {st} again"
                newer = [i for i in admitted + seen_active if i > j]
                assert not newer, f"tokens {[i + 1 for i in newer]} admitted before token {j + 1} (round {rnd})"
        for j in sorted(seen_active):  # admitted since the last round, in line order
            admitted.append(j)
            live.add(line[j][0])
            to_end.append(line[j])
        # nothing leaves ACTIVE during a round but by our payments: what it saw is all still ACTIVE
        max_seen = max(max_seen, len(live))
        assert len(live) <= max_active, f"{len(live)} ACTIVE at once, max_active is {max_active}"
        time.sleep(0.05)
    assert admitted == list(range(n)), f"admission order {[i + 1 for i in admitted]}"
    assert max_seen >= 2, max_seen


@pytest.mark.slow
def test_admission_rate_is_shared_by_three_processes(make_trio):
    """admit_per_second = 5 is the service's rate, not each process's (that would be 15/s),
    first come first served whichever process is polled."""
    rate, count = 5, 20
    apis = make_trio(CONCERTD_QUEUE_ADMIT_PER_SECOND=rate, CONCERTD_QUEUE_MAX_ACTIVE=1000)
    tokens = []
    started = time.monotonic()
    for k in range(count):
        tokens.append(expect(apis[k % N].issue_token(new_user_id()), 201)["token"])
    admitted_round: dict[int, int] = {}
    admitted_at: dict[int, float] = {}
    rnd = 0
    deadline = started + count / rate + 4
    while len(admitted_round) < count:
        assert time.monotonic() < deadline, f"only {len(admitted_round)} of {count} admitted in time"
        rnd += 1
        for i, token in reversed(list(enumerate(tokens))):
            if i in admitted_round:
                continue
            st = expect(apis[(i + rnd) % N].token_status(token), 200)
            if st["status"] == "ACTIVE":
                admitted_round[i] = rnd
                admitted_at[i] = time.monotonic()
            else:
                assert st["status"] == "WAITING", st
        time.sleep(0.05)
    rounds = [admitted_round[i] for i in range(count)]
    assert rounds == sorted(rounds), f"not first come, first served across processes: rounds {rounds}"
    span = max(admitted_at.values()) - started
    assert span >= (count - rate) / rate - 0.3, f"{count} tokens admitted in {span:.2f}s at {rate}/s by three processes"
    report(f"redis queue: {count} tokens issued on 3 processes admitted in {span:.2f}s at {rate}/s "
           f"(≥ {(count - rate) / rate:.1f}s expected)")


# --- the cache across three processes --------------------------------------------------------------

def seat_maps(apis: list[Api], token: str, sid: int) -> list[dict[int, str]]:
    return [api.seat_statuses(token, sid) for api in apis]


def available(apis: list[Api], token: str, concert_id: int) -> list[int]:
    return [api.schedules(token, concert_id)[0]["availableSeats"] for api in apis]


@pytest.mark.slow
def test_cache_follows_hold_expiry_and_payment_on_every_process(make_trio):
    apis = make_trio(CONCERTD_HOLD_SECONDS=2)
    a, b, c = apis
    concert_id, (sid,) = a.create_concert([schedule_spec(seats=4, price=100)])
    user, token = a.user_with_token()
    for _ in range(3):  # every process has read (and cached) the map and the dates
        assert [set(m.values()) for m in seat_maps(apis, token, sid)] == [{"AVAILABLE"}] * N
        assert available(apis, token, concert_id) == [4] * N
    cached_before = sum(metric(api, "concertd_cache_hits_total") for api in apis)
    assert cached_before > 0, "no cache hit at all after nine reads of the same map and dates"

    # a hold on A: HELD on B and C (and A) in the very next read, one seat fewer everywhere
    held = a.held(token, user, sid, 3)
    for name, m in zip("ABC", seat_maps([b, c, a], token, sid)):
        assert m == {1: "AVAILABLE", 2: "AVAILABLE", 3: "HELD", 4: "AVAILABLE"}, f"{name} after a hold on A: {m}"
    assert available([b, c, a], token, concert_id) == [3] * N, "stale availableSeats after a hold on A"
    expect_error(c.hold(token, user, sid, 3), 409, "SEAT_UNAVAILABLE")

    # the hold expires (2 s): every process reads it AVAILABLE at once, sweep or not
    expires = parse_iso(held["expiresAt"]).timestamp()
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    for name, m in zip("CBA", seat_maps([c, b, a], token, sid)):
        assert set(m.values()) == {"AVAILABLE"}, f"{name} right after the hold expired: {m}"
    assert available([c, b, a], token, concert_id) == [4] * N, "availableSeats right after the hold expired"
    time.sleep(1.5)  # and after the sweeper resolved it
    assert [set(m.values()) for m in seat_maps(apis, token, sid)] == [{"AVAILABLE"}] * N
    assert expect(b.reservation(held["reservationId"]), 200)["status"] == "EXPIRED"

    # a hold on B paid on C: SOLD on A, B and C in the very next read
    rid = b.held(token, user, sid, 1)["reservationId"]
    assert [m[1] for m in seat_maps(apis, token, sid)] == ["HELD"] * N
    c.charged(user, 100)
    expect(c.pay(token, user, rid), 201)
    token = b.active_token(user)  # the payment ended the old one
    for name, m in zip("ABC", seat_maps(apis, token, sid)):
        assert m == {1: "SOLD", 2: "AVAILABLE", 3: "AVAILABLE", 4: "AVAILABLE"}, f"{name} after a payment on C: {m}"
    assert available(apis, token, concert_id) == [3] * N
    time.sleep(2.5)  # a SOLD seat stays SOLD (no expiry turns it back)
    assert [m[1] for m in seat_maps(apis, token, sid)] == ["SOLD"] * N


@pytest.mark.slow
def test_no_reader_sees_a_seat_free_after_its_hold_was_answered(make_trio):
    """docs/caching.md: once a hold has answered 201, every read that starts afterwards, on any
    process, shows it. Readers hammer the seat map and the dates of one schedule on A, B and C
    while holds are made one after another on the three processes."""
    apis = make_trio()
    seats = 30
    concert_id, (sid,) = apis[0].create_concert([schedule_spec(seats=seats, price=100)])
    users = [new_user_id() for _ in range(seats + 6)]
    tokens = tokens_from_each(apis, users)
    readers = users[seats:]
    acked: dict[int, float] = {}  # seatNo -> monotonic time its hold's 201 was read
    lock = threading.Lock()
    stop = threading.Event()
    stale: list[tuple] = []
    reads = Counter()

    def reader(i, user):
        api = apis[i % N]
        session_api = Api(api.s)
        while not stop.is_set():
            started = time.monotonic()
            with lock:
                known = dict(acked)
            if i % 2:
                m = session_api.seat_statuses(tokens[user], sid)
                free = [no for no, t in known.items() if t < started and m[no] == "AVAILABLE"]
                if free:
                    stale.append((api.s.name, "seats", free, started))
            else:
                left = session_api.schedules(tokens[user], concert_id)[0]["availableSeats"]
                done = sum(1 for t in known.values() if t < started)
                if left > seats - done:
                    stale.append((api.s.name, "schedules", left, seats - done, started))
            reads[api.s.name] += 1

    threads = [threading.Thread(target=reader, args=(i, u)) for i, u in enumerate(readers)]
    for t in threads:
        t.start()
    try:
        order = list(range(1, seats + 1))
        random.Random(sid).shuffle(order)
        for k, seat in enumerate(order):
            user = users[k]
            expect(apis[k % N].hold(tokens[user], user, sid, seat), 201)
            with lock:
                acked[seat] = time.monotonic()
            time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join(20)
    assert not stale, f"{len(stale)} reads after a 201 showed the seat free: {stale[:5]}"
    assert sum(reads.values()) > 100, dict(reads)


@pytest.mark.slow
def test_cache_hits_over_1000_seat_map_reads(make_trio):
    """Each cache miss is one database query: over 1,000 reads of one seat map spread across
    the three processes, hits ≫ misses."""
    apis = make_trio()
    _, (sid,) = apis[0].create_concert([schedule_spec(seats=50, price=100)])
    user, token = apis[0].user_with_token()
    names = ("concertd_cache_hits_total", "concertd_cache_misses_total")
    before = [sum(metric(api, n) for api in apis) for n in names]
    started = time.monotonic()
    sessions = [api.s.session() for api in apis]
    for i in range(1000):
        r = apis[i % N].s.get(f"/v1/schedules/{sid}/seats", token=token, session=sessions[i % N])
        assert r.status_code == 200, describe(r)
    took = time.monotonic() - started
    after = [sum(metric(api, n) for api in apis) for n in names]
    hits, misses = after[0] - before[0], after[1] - before[1]
    assert hits + misses >= 1000, f"1000 reads counted {hits} hits and {misses} misses"
    assert misses <= 10, f"{misses} misses (database queries) for 1000 reads of one unchanged seat map"
    assert hits >= 990, (hits, misses)
    report(f"redis cache: 1000 seat-map reads on 3 processes: {hits:.0f} hits, {misses:.0f} misses "
           f"(hit ratio {hits / max(1.0, hits + misses):.4f}, {hits / max(1.0, misses):.0f}:1); "
           f"{1000 / took:.0f} reads/s from one Python client")
