"""Two concertd processes on ONE PostgreSQL or MariaDB database form one service (SPEC §4: "no
correctness may depend on memory that only one process has"); without Redis the waiting queue,
the `distributed` lock and the relay's turn are the database's. Requests are spread alternately over both:
client i talks to process i % 2. For each strategy set: the seat race, a whole schedule, a hot
wallet, concurrent payments of one reservation; then FIFO admission across the processes and
no stale seat map."""
from __future__ import annotations

import random
import time
import uuid
from collections import Counter

import pytest

from support import (Api, describe, error_code, expect, expect_error, new_user_id, run_concurrently, schedule_spec,
                     start_pair)

pytestmark = [pytest.mark.shared_db, pytest.mark.race]

RATE_LIMITED = (429, "RATE_LIMITED")

# (seat, points, payment): every strategy of each operation runs at least once.
STRATEGY_SETS = [("pessimistic", "pessimistic", "pessimistic"), ("optimistic", "optimistic", "optimistic"),
                 ("distributed", "distributed", "distributed"), ("atomic", "distributed", "distributed")]


def outcome(resp) -> tuple[int, str | None]:
    assert resp.status_code < 500, f"server error with two processes: {describe(resp)}"
    if resp.status_code == 429:
        assert resp.headers.get("Retry-After") == "1", f"429 without Retry-After: 1: {describe(resp)}"
    return resp.status_code, error_code(resp)


def only(counts: Counter, allowed: set) -> None:
    unexpected = {k: v for k, v in counts.items() if k not in allowed}
    assert not unexpected, f"unexpected answers: {unexpected} (all: {dict(counts)})"


def rare_429(counts: Counter, total: int, share: float = 0.05) -> None:
    limited = counts.get(RATE_LIMITED, 0)
    assert limited <= max(1, int(total * share)), f"{limited} of {total} answers were 429: {dict(counts)}"


@pytest.fixture(scope="module", params=STRATEGY_SETS, ids=["-".join(s) for s in STRATEGY_SETS])
def pair(request, session_dir):
    seat, points, payment = request.param
    a, b = start_pair(session_dir, f"pair-{seat}-{points}-{payment}", CONCERTD_LOCK_SEAT=seat,
                      CONCERTD_LOCK_POINTS=points, CONCERTD_LOCK_PAYMENT=payment)
    yield Api(a), Api(b)
    b.close()
    a.close()  # owns the database: dropped last


def test_seat_race_200_clients_one_seat(pair):
    apis = pair
    concert_id, (sid,) = apis[0].create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(200)]
    tokens = {}
    for k, api in enumerate(apis):  # each user's token from the process it will talk to
        tokens.update(api.active_tokens(users[k::2], workers=32))
    results = run_concurrently(lambda i, u: apis[i % 2].hold(tokens[u], u, sid, 7, allow_5xx=True),
                               list(enumerate(users)))
    counts = Counter(outcome(r) for r in results)
    only(counts, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
    assert counts[(201, None)] == 1, f"exactly one hold must win across both processes: {dict(counts)}"
    rare_429(counts, len(results))
    won = [r.json() for r in results if r.status_code == 201][0]
    for api in apis:
        seats = api.seat_statuses(tokens[users[0]], sid)
        assert seats[7] == "HELD" and all(st == "AVAILABLE" for no, st in seats.items() if no != 7), seats
        assert api.schedules(tokens[users[0]], concert_id)[0]["availableSeats"] == 49
    rows = apis[0].s.db_query("SELECT id, user_id, status FROM reservations WHERE schedule_id = ?", (sid,))
    assert [(r["id"], r["user_id"], r["status"]) for r in rows] == [(won["reservationId"], won["userId"], "HELD")]


def test_whole_schedule_100_clients_50_seats(pair):
    apis = pair
    concert_id, (sid,) = apis[0].create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(100)]
    tokens = {}
    for k, api in enumerate(apis):
        tokens.update(api.active_tokens(users[k::2], workers=32))

    def client(i, user):
        api = apis[i % 2]
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


def test_200_concurrent_charges_one_wallet(pair):
    """Every charge lands exactly once: a 429 (a lock wait that gave up, changing nothing) is
    retried by the client, as Retry-After tells it."""
    apis = pair
    user = new_user_id()

    def charge(i):
        answers = []
        for _ in range(4):
            r = apis[i % 2].charge(user, 1000, allow_5xx=True)
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
    newest = apis[1].history(user, 100)
    assert [e["balanceAfter"] for e in newest] == [1000 * k for k in range(200, 100, -1)]
    (row,) = apis[0].s.db_query("SELECT count(*) AS n, sum(amount) AS total FROM wallet_entries WHERE user_id = ?",
                                (user,))
    assert (row["n"], row["total"]) == (200, 200_000), dict(row)


@pytest.mark.parametrize("keys", ["none", "shared"])
def test_30_concurrent_payments_one_reservation(pair, keys):
    apis = pair
    price = 700
    sid = apis[0].new_schedule(seats=3, price=price)
    user, token = apis[0].user_with_token()
    rid = apis[1].held(token, user, sid, 2)["reservationId"]
    apis[0].charged(user, 5 * price)
    shared = f"two-{uuid.uuid4()}"
    key = shared if keys == "shared" else None
    results = run_concurrently(lambda i: apis[i % 2].pay(token, user, rid, key=key, allow_5xx=True),
                               [(i,) for i in range(30)])
    counts = Counter(outcome(r) for r in results)
    paid = [r.json() for r in results if r.status_code == 201]
    if keys == "shared":
        only(counts, {(201, None), (409, "IDEMPOTENCY_CONFLICT"), RATE_LIMITED})
        assert paid, f"no payment succeeded: {dict(counts)}"
        assert len({p["paymentId"] for p in paid}) == 1, f"one key, several payments: {paid}"
    else:
        only(counts, {(201, None), (409, "RESERVATION_NOT_PAYABLE"), (401, "QUEUE_TOKEN_INVALID"), RATE_LIMITED})
        assert len(paid) == 1, f"exactly one payment must succeed across both processes: {dict(counts)}"
    rare_429(counts, 30, share=0.1)
    assert paid[0]["amount"] == price and paid[0]["reservationId"] == rid
    for api in apis:
        assert api.balance(user) == 4 * price, "charged more than once"
        assert expect(api.reservation(rid), 200)["status"] == "CONFIRMED"
    assert [e["type"] for e in apis[1].history(user)] == ["USE", "CHARGE"]
    rows = apis[0].s.db_query("SELECT id FROM payments WHERE reservation_id = ?", (rid,))
    assert [r["id"] for r in rows] == [paid[0]["paymentId"]]


def test_no_stale_seat_map_across_processes(pair):
    a, b = pair
    concert_id, (sid,) = a.create_concert([schedule_spec(seats=4, price=100)])
    user, token = a.user_with_token()
    # both processes have read the map (and so would have cached it, had they a cache)
    assert set(a.seat_statuses(token, sid).values()) == {"AVAILABLE"}
    assert set(b.seat_statuses(token, sid).values()) == {"AVAILABLE"}
    assert b.schedules(token, concert_id)[0]["availableSeats"] == 4

    rid = a.held(token, user, sid, 3)["reservationId"]
    assert b.seat_statuses(token, sid)[3] == "HELD", "process B serves a stale seat map after a hold on A"
    assert b.schedules(token, concert_id)[0]["availableSeats"] == 3, "stale availability on B"
    expect_error(b.hold(token, user, sid, 3), 409, "SEAT_UNAVAILABLE")

    b.charged(user, 100)
    expect(b.pay(token, user, rid), 201)
    assert a.seat_statuses(a.active_token(user), sid)[3] == "SOLD", "process A serves a stale seat map after a payment on B"
    assert expect(a.reservation(rid), 200)["status"] == "CONFIRMED"
    assert a.balance(user) == 0


# --- the queue across processes ------------------------------------------------------------------

@pytest.fixture
def queue_pair(tmp_path, db_server):
    started = []

    def make(**env):
        a, b = start_pair(tmp_path, "queue", **env)
        started.extend([b, a])
        return Api(a), Api(b)

    yield make
    for s in started:
        s.close()


@pytest.mark.slow
def test_positions_and_fifo_admission_across_processes(queue_pair):
    """max_active = 1 holds the line still: tokens issued alternately on A and B get positions
    1..N in issue order, on both processes; each payment frees the slot for exactly the next one."""
    a, b = queue_pair(CONCERTD_QUEUE_ADMIT_PER_SECOND=20, CONCERTD_QUEUE_MAX_ACTIVE=1)
    apis = (a, b)
    n = 8
    _, (sid,) = a.create_concert([schedule_spec(seats=n + 1, price=10)])
    first = new_user_id()
    current = (first, a.active_token(first))
    line = []
    for k in range(n):
        user = new_user_id()
        body = expect(apis[k % 2].issue_token(user), 201)
        assert body["status"] == "WAITING" and body["position"] == k + 1, f"token {k + 1}: {body}"
        line.append((user, body["token"]))
    for k, (user, token) in enumerate(line):
        for api in apis:
            st = expect(api.token_status(token), 200)
            assert (st["userId"], st["status"], st["position"]) == (user, "WAITING", k + 1), st

    for k in range(n):
        user, token = current
        api = apis[k % 2]
        rid = api.held(token, user, sid, k + 1)["reservationId"]
        api.charged(user, 10)
        expect(apis[(k + 1) % 2].pay(token, user, rid), 201)  # frees the slot
        nxt_user, nxt_token = line[k]
        deadline = time.monotonic() + 5
        while True:
            # newest first: a later token ACTIVE before the next one is seen WAITING is overtaking
            for j in range(n - 1, k, -1):
                st = expect(apis[j % 2].token_status(line[j][1]), 200)
                assert st["status"] == "WAITING", f"token {j + 1} admitted before token {k + 1}: {st}"
            st = expect(apis[k % 2].token_status(nxt_token), 200)
            if st["status"] == "ACTIVE":
                break
            assert st["position"] == 1, st
            assert time.monotonic() < deadline, f"token {k + 1} not admitted within 5 s after a payment freed a slot"
            time.sleep(0.05)
        for j in range(k + 1, n):
            st = expect(apis[(j + 1) % 2].token_status(line[j][1]), 200)
            assert (st["status"], st["position"]) == ("WAITING", j - k), f"token {j + 1} after {k + 1} admitted: {st}"
        current = (nxt_user, nxt_token)


@pytest.mark.slow
def test_admission_rate_is_shared_by_both_processes(queue_pair):
    """At admit_per_second = 5 the service as a whole admits 5 per second, first come first
    served, however many processes poll (each process admitting 5 per second would be 10)."""
    rate, count = 5, 20
    a, b = queue_pair(CONCERTD_QUEUE_ADMIT_PER_SECOND=rate, CONCERTD_QUEUE_MAX_ACTIVE=1000)
    apis = (a, b)
    tokens = []
    started = time.monotonic()
    for k in range(count):
        tokens.append(expect(apis[k % 2].issue_token(new_user_id()), 201)["token"])
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
            st = expect(apis[(i + rnd) % 2].token_status(token), 200)
            if st["status"] == "ACTIVE":
                admitted_round[i] = rnd
                admitted_at[i] = time.monotonic()
            else:
                assert st["status"] == "WAITING", st
        time.sleep(0.05)
    rounds = [admitted_round[i] for i in range(count)]
    assert rounds == sorted(rounds), f"not first come, first served across processes: rounds {rounds}"
    span = max(admitted_at.values()) - started
    assert span >= (count - rate) / rate - 0.3, f"{count} tokens admitted in {span:.2f}s at {rate}/s by two processes"
