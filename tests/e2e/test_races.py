"""Races with real concurrent HTTP, for every concurrency-control strategy (SPEC §1, §2, §4:
"never give one seat to two people, under any load, any lock strategy"; no lost update, no double
charge). Under contention the only extra answer allowed is 429 RATE_LIMITED (a lock wait that
gave up, docs/api-decisions.md "Locks"): it must be rare and must change nothing. Never a 5xx."""
from __future__ import annotations

import itertools
import random
import time
import uuid
from collections import Counter

import pytest

from support import (LOCK_STRATEGIES, SEAT_STRATEGIES, Api, Server, describe, new_service, error_code, expect,
                     new_user_id, parse_iso, run_concurrently, schedule_spec)

pytestmark = pytest.mark.race

RATE_LIMITED = (429, "RATE_LIMITED")


def outcome(resp) -> tuple[int, str | None]:
    assert resp.status_code < 500, f"server error under contention: {describe(resp)}"
    if resp.status_code == 429:  # docs/api-decisions.md "Locks"
        assert resp.headers.get("Retry-After") == "1", f"429 without Retry-After: 1: {describe(resp)}"
    return resp.status_code, error_code(resp)


def assert_rare_429(counts: Counter, total: int, share: float = 0.05) -> None:
    limited = counts.get(RATE_LIMITED, 0)
    assert limited <= max(1, int(total * share)), f"{limited} of {total} answers were 429: {dict(counts)}"


def only(counts: Counter, allowed: set) -> None:
    unexpected = {k: v for k, v in counts.items() if k not in allowed}
    assert not unexpected, f"unexpected answers under contention: {unexpected} (all: {dict(counts)})"


def _server(request, session_dir, name: str, **env) -> Server:
    s = new_service(env, workdir=session_dir / f"{name}-{request.param}", name=f"{name}-{request.param}")
    s.start()
    return s


@pytest.fixture(scope="module", params=SEAT_STRATEGIES)
def seat_server(request, session_dir):
    s = _server(request, session_dir, "seat", CONCERTD_LOCK_SEAT=request.param)
    yield s
    s.close()


@pytest.fixture(scope="module", params=LOCK_STRATEGIES)
def points_server(request, session_dir):
    s = _server(request, session_dir, "points", CONCERTD_LOCK_POINTS=request.param)
    yield s
    s.close()


@pytest.fixture(scope="module", params=LOCK_STRATEGIES)
def payment_server(request, session_dir):
    s = _server(request, session_dir, "payment", CONCERTD_LOCK_PAYMENT=request.param)
    yield s
    s.close()


# --- seats -----------------------------------------------------------------------------------------

def test_200_clients_one_seat(seat_server):
    api = Api(seat_server)
    concert_id, (sid,) = api.create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(200)]
    tokens = api.active_tokens(users, workers=32)
    results = run_concurrently(lambda u: api.hold(tokens[u], u, sid, 7, allow_5xx=True), [(u,) for u in users])
    counts = Counter(outcome(r) for r in results)
    only(counts, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
    assert counts[(201, None)] == 1, f"exactly one hold must win: {dict(counts)}"
    assert_rare_429(counts, len(results))
    (winner_resp,) = [r for r in results if r.status_code == 201]
    won = winner_resp.json()
    winner = won["userId"]
    assert won["seatNo"] == 7 and won["status"] == "HELD" and winner in tokens
    seats = api.seat_statuses(tokens[users[0]], sid)
    assert seats[7] == "HELD" and all(st == "AVAILABLE" for no, st in seats.items() if no != 7)
    assert expect(api.reservation(won["reservationId"]), 200)["userId"] == winner
    assert api.schedules(tokens[users[0]], concert_id)[0]["availableSeats"] == 49
    rows = seat_server.db_query("SELECT id, user_id, status FROM reservations WHERE schedule_id = ?", (sid,))
    assert [(r["id"], r["user_id"], r["status"]) for r in rows] == [(won["reservationId"], winner, "HELD")], \
        "a refused hold left a reservation row"


def test_100_clients_50_seats(seat_server):
    api = Api(seat_server)
    concert_id, (sid,) = api.create_concert([schedule_spec(seats=50, price=100)])
    users = [new_user_id() for _ in range(100)]
    tokens = api.active_tokens(users, workers=32)

    def client(user):
        rng = random.Random(user)
        order = list(range(1, 51))
        rng.shuffle(order)
        retries = Counter()
        seen = Counter()
        while order:
            seat = order.pop(0)
            r = api.hold(tokens[user], user, sid, seat, allow_5xx=True)
            o = outcome(r)
            seen[o] += 1
            if o == (201, None):
                return user, seat, r.json(), seen
            if o == RATE_LIMITED and retries[seat] < 3:
                retries[seat] += 1
                order.append(seat)
        return user, None, None, seen

    results = run_concurrently(client, [(u,) for u in users])
    counts = sum((r[3] for r in results), Counter())
    only(counts, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
    assert_rare_429(counts, sum(counts.values()))
    winners = [(u, seat, body) for u, seat, body, _ in results if seat is not None]
    seats_won = [seat for _, seat, _ in winners]
    assert sorted(seats_won) == list(range(1, 51)), (
        f"{len(winners)} winners; seats won twice: {[s for s, c in Counter(seats_won).items() if c > 1]}")
    assert len({u for u, _, _ in winners}) == 50
    for u, seat, body in winners:
        assert body["userId"] == u and body["seatNo"] == seat and body["status"] == "HELD", body
    reader = tokens[users[0]]
    assert set(api.seat_statuses(reader, sid).values()) == {"HELD"}
    assert api.schedules(reader, concert_id)[0]["availableSeats"] == 0
    rows = seat_server.db_query(
        "SELECT r.id, r.user_id, r.seat_no, r.status, s.seat_no AS seat_seat_no, s.status AS seat_status "
        "FROM reservations r JOIN seats s ON s.id = r.seat_id WHERE r.schedule_id = ?", (sid,))
    assert len(rows) == 50, f"{len(rows)} reservation rows for 50 holds"
    by_seat = {r["seat_no"]: r for r in rows}
    assert len(by_seat) == 50
    for u, seat, body in winners:
        row = by_seat[seat]
        assert (row["id"], row["user_id"], row["status"], row["seat_seat_no"]) == (
            body["reservationId"], u, "HELD", seat), dict(row)


# --- points ----------------------------------------------------------------------------------------

def test_200_concurrent_charges_one_wallet(points_server):
    api = Api(points_server)
    user = new_user_id()
    results = run_concurrently(lambda: api.charge(user, 1000, allow_5xx=True), [()] * 200)
    counts = Counter(outcome(r) for r in results)
    only(counts, {(200, None), RATE_LIMITED})
    assert_rare_429(counts, 200)
    ok = counts[(200, None)]
    balances = sorted(r.json()["balance"] for r in results if r.status_code == 200)
    assert balances == [1000 * k for k in range(1, ok + 1)], "two charges saw the same balance: lost update"
    assert api.balance(user) == 1000 * ok
    newest = api.history(user, 100)
    assert [e["balanceAfter"] for e in newest] == [1000 * k for k in range(ok, ok - 100, -1)]
    assert all(e["type"] == "CHARGE" and e["amount"] == 1000 for e in newest)
    (row,) = points_server.db_query(
        "SELECT count(*) AS n, sum(amount) AS total, max(balance_after) AS top FROM wallet_entries WHERE user_id = ?",
        (user,))
    assert (row["n"], row["total"], row["top"]) == (ok, 1000 * ok, 1000 * ok)
    (wallet,) = points_server.db_query("SELECT balance FROM wallets WHERE user_id = ?", (user,))
    assert wallet["balance"] == 1000 * ok


def test_concurrent_charges_many_wallets_and_limit(points_server):
    """Charges near the balance limit racing: never above 100,000,000, refusals change nothing."""
    api = Api(points_server)
    user = new_user_id()
    for _ in range(99):
        api.charged(user, 1_000_000)
    results = run_concurrently(lambda: api.charge(user, 300_000, allow_5xx=True), [()] * 20)
    counts = Counter(outcome(r) for r in results)
    only(counts, {(200, None), (409, "BALANCE_LIMIT_EXCEEDED"), RATE_LIMITED})
    assert counts[(200, None)] == 3, f"exactly 3 charges of 300,000 fit under the limit: {dict(counts)}"
    assert api.balance(user) == 99_900_000


# --- payments --------------------------------------------------------------------------------------

@pytest.mark.parametrize("keys", ["none", "shared", "distinct"])
def test_30_concurrent_payments_one_reservation(payment_server, keys):
    api = Api(payment_server)
    price = 700
    sid = api.new_schedule(seats=3, price=price)
    user, token = api.user_with_token()
    rid = api.held(token, user, sid, 2)["reservationId"]
    api.charged(user, 5 * price)
    shared = f"race-{uuid.uuid4()}"

    def key_for(i):
        return {"none": None, "shared": shared, "distinct": f"race-{i}-{uuid.uuid4()}"}[keys]

    results = run_concurrently(lambda i: api.pay(token, user, rid, key=key_for(i), allow_5xx=True),
                               [(i,) for i in range(30)])
    counts = Counter(outcome(r) for r in results)
    paid = [r.json() for r in results if r.status_code == 201]
    if keys == "shared":
        only(counts, {(201, None), (409, "IDEMPOTENCY_CONFLICT"), RATE_LIMITED})
        assert paid, f"no payment succeeded: {dict(counts)}"
        assert len({p["paymentId"] for p in paid}) == 1, f"one key, several payments: {paid}"
    else:
        only(counts, {(201, None), (409, "RESERVATION_NOT_PAYABLE"), (401, "QUEUE_TOKEN_INVALID"), RATE_LIMITED})
        assert len(paid) == 1, f"exactly one payment must succeed: {dict(counts)}"
    assert_rare_429(counts, 30, share=0.1)
    assert paid[0]["amount"] == price and paid[0]["reservationId"] == rid
    assert api.balance(user) == 4 * price, "charged more than once"
    assert [e["type"] for e in api.history(user)] == ["USE", "CHARGE"]
    assert expect(api.reservation(rid), 200)["status"] == "CONFIRMED"
    rows = payment_server.db_query("SELECT id FROM payments WHERE reservation_id = ?", (rid,))
    assert [r["id"] for r in rows] == [paid[0]["paymentId"]]


# --- every combination, compact ---------------------------------------------------------------------

COMBINATIONS = list(itertools.product(SEAT_STRATEGIES, LOCK_STRATEGIES, LOCK_STRATEGIES))


@pytest.mark.slow
@pytest.mark.parametrize("seat,points,payment", COMBINATIONS, ids=["-".join(c) for c in COMBINATIONS])
def test_combined_race(make_server, seat, points, payment):
    s = make_server(CONCERTD_LOCK_SEAT=seat, CONCERTD_LOCK_POINTS=points, CONCERTD_LOCK_PAYMENT=payment)
    api = Api(s)
    price = 500
    _, (sid_one, sid_four) = api.create_concert([schedule_spec(seats=1, price=price),
                                                 schedule_spec(days=31, seats=4, price=price)])
    users = [new_user_id() for _ in range(12)]
    tokens = api.active_tokens(users, workers=12)
    hot = new_user_id()

    # phase 1, mixed: 12 holds of one seat, 12 charges of a hot wallet, 12 charges of own wallets
    tasks = [("hold", u) for u in users] + [("hot", hot)] * 12 + [("own", u) for u in users]
    random.Random(hash((seat, points, payment))).shuffle(tasks)

    def phase1(kind, u):
        if kind == "hold":
            return kind, u, api.hold(tokens[u], u, sid_one, 1, allow_5xx=True)
        if kind == "hot":
            return kind, u, api.charge(u, 100, allow_5xx=True)
        return kind, u, api.charge(u, 2 * price, allow_5xx=True)

    results = run_concurrently(phase1, tasks)
    counts = Counter((k,) + outcome(r) for k, _, r in results)
    only(counts, {("hold", 201, None), ("hold", 409, "SEAT_UNAVAILABLE"), ("hot", 200, None),
                  ("own", 200, None)} | {(k,) + RATE_LIMITED for k in ("hold", "hot", "own")})
    assert counts[("hold", 201, None)] == 1, dict(counts)
    assert sum(v for k, v in counts.items() if k[1] == 429) <= 2, dict(counts)
    hot_ok = counts[("hot", 200, None)]
    assert api.balance(hot) == 100 * hot_ok
    assert sorted(r.json()["balance"] for k, _, r in results if k == "hot" and r.status_code == 200) == [
        100 * i for i in range(1, hot_ok + 1)]
    (winner, held) = [(u, r.json()) for k, u, r in results if k == "hold" and r.status_code == 201][0]
    own_ok = {u for k, u, r in results if k == "own" and r.status_code == 200}
    if winner not in own_ok:
        api.charged(winner, 2 * price)

    # phase 2: the winner pays 8 times at once under one key while 8 others race for 4 seats
    key = f"combo-{uuid.uuid4()}"
    others = [u for u in users if u != winner][:8]

    def phase2(kind, u):
        if kind == "pay":
            return kind, u, [api.pay(tokens[u], u, held["reservationId"], key=key, allow_5xx=True)]
        order = list(range(1, 5))
        random.Random(u).shuffle(order)
        answers, retried = [], Counter()
        while order:
            seat = order.pop(0)
            r = api.hold(tokens[u], u, sid_four, seat, allow_5xx=True)
            answers.append(r)
            if r.status_code == 201:
                break
            if r.status_code == 429 and retried[seat] < 3:
                retried[seat] += 1
                order.append(seat)
        return kind, u, answers

    results = run_concurrently(phase2, [("pay", winner)] * 8 + [("seats", u) for u in others])
    flat = [(k, u, r) for k, u, answers in results for r in answers]
    counts = Counter((k,) + outcome(r) for k, _, r in flat)
    only(counts, {("pay", 201, None), ("pay", 409, "IDEMPOTENCY_CONFLICT"), ("seats", 201, None),
                  ("seats", 409, "SEAT_UNAVAILABLE")} | {(k,) + RATE_LIMITED for k in ("pay", "seats")})
    assert sum(v for k, v in counts.items() if k[1] == 429) <= 2, dict(counts)
    payments = {r.json()["paymentId"] for k, _, r in flat if k == "pay" and r.status_code == 201}
    assert len(payments) == 1, f"payments: {payments}, answers {dict(counts)}"
    assert api.balance(winner) == 2 * price - price, "payment charged more or less than once"
    seat_winners = [r.json() for k, _, r in flat if k == "seats" and r.status_code == 201]
    assert sorted(w["seatNo"] for w in seat_winners) == [1, 2, 3, 4], f"seats won: {seat_winners}"
    assert len({w["userId"] for w in seat_winners}) == 4
    reader = tokens[others[0]]
    assert api.seat_statuses(reader, sid_one) == {1: "SOLD"}
    assert set(api.seat_statuses(reader, sid_four).values()) == {"HELD"}
    assert expect(api.reservation(held["reservationId"]), 200)["status"] == "CONFIRMED"
    rows = s.db_query("SELECT count(*) AS n FROM payments WHERE reservation_id = ?", (held["reservationId"],))
    assert rows[0]["n"] == 1


# --- a payment racing a new hold at the moment the hold expires -------------------------------------

EXPIRY_PAIRS = [("pessimistic", "pessimistic"), ("optimistic", "optimistic"), ("distributed", "distributed"),
                ("atomic", "optimistic")]


@pytest.mark.slow
@pytest.mark.parametrize("seat,payment", EXPIRY_PAIRS, ids=["-".join(p) for p in EXPIRY_PAIRS])
def test_payment_racing_new_hold_at_expiry(make_server, seat, payment):
    """Around the instant a hold expires its owner pays while another user grabs the seat: one
    of them wins, never both (SPEC §2: resolved exactly once, never one seat to two people)."""
    n, price = 12, 100
    s = make_server(CONCERTD_HOLD_SECONDS=2, CONCERTD_LOCK_SEAT=seat, CONCERTD_LOCK_PAYMENT=payment)
    api = Api(s)
    sid = api.new_schedule(seats=n, price=price)
    payers = [new_user_id() for _ in range(n)]
    grabbers = [new_user_id() for _ in range(n)]
    tokens = api.active_tokens(payers + grabbers)
    for p in payers:
        api.charged(p, price)
    holds = [api.held(tokens[p], p, sid, i + 1) for i, p in enumerate(payers)]
    wall_to_mono = time.monotonic() - time.time()

    def at(expires_at: str, offset: float) -> float:
        return parse_iso(expires_at).timestamp() + wall_to_mono + offset

    def payer(i):
        target = at(holds[i]["expiresAt"], random.Random(i).uniform(-0.08, 0.08))
        time.sleep(max(0.0, target - time.monotonic()))
        return api.pay(tokens[payers[i]], payers[i], holds[i]["reservationId"], allow_5xx=True)

    def grabber(i):
        time.sleep(max(0.0, at(holds[i]["expiresAt"], -0.08) - time.monotonic()))
        end = at(holds[i]["expiresAt"], 0.6)
        answers = []
        while True:  # at least once, also when a busy machine started this thread late
            r = api.hold(tokens[grabbers[i]], grabbers[i], sid, i + 1, allow_5xx=True)
            answers.append(r)
            if r.status_code == 201 or time.monotonic() >= end:
                break
            time.sleep(0.005)
        return answers

    results = run_concurrently(lambda kind, i: (kind, i, payer(i) if kind == "pay" else grabber(i)),
                               [("pay", i) for i in range(n)] + [("grab", i) for i in range(n)])
    paid = {i: r for kind, i, r in results if kind == "pay"}
    grabbed = {i: answers for kind, i, answers in results if kind == "grab"}
    ways = Counter()
    for i in range(n):
        pay_outcome = outcome(paid[i])
        grab_outcomes = Counter(outcome(r) for r in grabbed[i])
        assert pay_outcome in {(201, None), (409, "RESERVATION_EXPIRED"), RATE_LIMITED}, (i, describe(paid[i]))
        only(grab_outcomes, {(201, None), (409, "SEAT_UNAVAILABLE"), RATE_LIMITED})
        grab_won = grab_outcomes[(201, None)] == 1
        reservation = expect(api.reservation(holds[i]["reservationId"]), 200)
        seat_status = api.seat_statuses(tokens[grabbers[0]], sid)[i + 1]
        if pay_outcome == (201, None):
            ways["paid"] += 1
            assert not grab_won, f"seat {i + 1} paid by its holder AND held by another user"
            assert reservation["status"] == "CONFIRMED" and seat_status == "SOLD", (reservation, seat_status)
            assert api.balance(payers[i]) == 0
        else:
            ways["expired" if pay_outcome[1] == "RESERVATION_EXPIRED" else "limited"] += 1
            assert reservation["status"] == "EXPIRED", reservation
            assert api.balance(payers[i]) == price, "a refused payment charged the wallet"
            if pay_outcome[1] == "RESERVATION_EXPIRED" and not grab_outcomes.get(RATE_LIMITED):
                assert grab_won, f"seat {i + 1}: hold expired, yet nobody could take it ({dict(grab_outcomes)})"
            assert seat_status == ("HELD" if grab_won else "AVAILABLE"), seat_status
    assert ways["limited"] <= 1, dict(ways)
    live = s.db_query("SELECT seat_id, count(*) AS n FROM reservations WHERE schedule_id = ? AND "
                      "status IN ('HELD', 'CONFIRMED') GROUP BY seat_id HAVING count(*) > 1", (sid,))
    assert [tuple(r) for r in live] == []
    print(f"expiry race {seat}/{payment}: {dict(ways)}")


def test_concurrent_token_issue_for_one_user(server):
    api = Api(server)
    user = new_user_id()
    results = run_concurrently(lambda: api.issue_token(user, allow_5xx=True), [()] * 40)
    counts = Counter(outcome(r) for r in results)
    assert counts == Counter({(201, None): 1, (200, None): 39}), dict(counts)
    assert len({r.json()["token"] for r in results}) == 1, "one user got several live tokens"
