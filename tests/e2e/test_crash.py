"""kill -9 in the middle of a burst of holds, charges and payments; restart on the same database
(SQLite file or PostgreSQL database); check every invariant of SPEC §2 through HTTP and in the
database itself (schema: migrations/sqlite/0001_init.sql, the same tables in
migrations/postgres/0001_init.sql). Nothing acknowledged may be lost, nothing may be half done, the
outbox is relayed after the restart and the sales-ledger consumer acted once per payment."""
from __future__ import annotations

import itertools
import random
import re
import threading
import time
import uuid
from collections import Counter, defaultdict

import pytest
import requests

from support import Api, error_code, expect, new_user_id, poll, schedule_spec

pytestmark = [pytest.mark.crash, pytest.mark.slow]

PRICE = 300


class Ledger:
    """What the clients saw: acknowledged operations and those whose outcome is unknown."""

    def __init__(self):
        self.lock = threading.Lock()
        self.charges_acked = Counter()     # user -> count of 200s
        self.charges_unknown = Counter()   # user -> count of requests cut by the kill
        self.holds = {}                    # reservationId -> (user, scheduleId, seatNo)
        self.payments = {}                 # paymentId -> (user, reservationId, amount)
        self.statuses = Counter()
        self.unavailable = []              # 5xx answers: (method, path, status, code, Retry-After)
        self.transport_errors = Counter()  # requests cut or refused: (server, method, path) -> n
        self.odd = []                      # answers other than 200, 201, 409, 429, 503: (method, path, status, body)
        self.payments_unknown = Counter()  # user -> payments answered 503 or cut (outcome unknown)
        self.tokens_lost = []              # 401 answers: (monotonic time, user, method, path)


def burst_worker(api: Api, ledger: Ledger, user: int, hot: int, sids: list[int], seats: int, stop: threading.Event,
                 outage: bool = False, servers: list | None = None):
    """One client's loop: token, charge its own wallet and a hot one, hold a random seat, pay 70 %
    of its holds.

    - Plain (a kill): a transport error ends the loop (the kill cut it), a 5xx fails.
    - `outage` (the database goes away, the process stays up): a 503 is recorded with its code
      and Retry-After, its outcome counted as unknown, and the loop goes on until `stop`; so
      does it after a transport error (recorded: there should be none).
    - `servers` (several processes on one database): requests go alternately to the processes
      still running; a transport error (one was killed) counts the request as unknown and the
      loop goes on with the others.
    """
    rng = random.Random(user)
    targets = servers or [api.s]
    turn = itertools.count(rng.randrange(len(targets)))
    sess = {id(x): requests.Session() for x in targets}
    token = None

    class Unavailable(Exception):
        pass

    def pick():
        for _ in range(len(targets)):
            s = targets[next(turn) % len(targets)]
            if s.running:
                return s
        return targets[0]

    def call(method, path, **kw):
        s = pick()
        try:
            r = s.request(method, path, session=sess[id(s)], allow_5xx=True, timeout=10, **kw)
        except requests.RequestException:
            with ledger.lock:
                ledger.transport_errors[(s.name, method, re.sub(r"/\d+", "/{}", path))] += 1
            raise
        with ledger.lock:
            ledger.statuses[r.status_code] += 1
            if r.status_code == 401:
                ledger.tokens_lost.append((time.monotonic(), user, method, path))
            if r.status_code >= 500:
                ledger.unavailable.append((method, path, r.status_code, error_code(r), r.headers.get("Retry-After")))
            if r.status_code not in (200, 201, 409, 429, 503):
                ledger.odd.append((time.monotonic(), s.name, method, path, r.status_code, r.text[:200]))
        if outage and r.status_code == 503:
            raise Unavailable()
        assert r.status_code < 500, f"{method} {path}: {r.status_code} {r.text}"
        return r

    while not stop.is_set():
        try:
            if token is None:  # kept only once seen ACTIVE (an outage may cut the wait)
                r = call("POST", "/v1/queue/tokens", json={"userId": user})
                pending = r.json()["token"]
                while True:
                    r = call("GET", "/v1/queue/tokens/current", token=pending)
                    if r.status_code == 401:  # gone (a Redis that restarted empty): issue again
                        pending = None
                        break
                    if r.json()["status"] == "ACTIVE":
                        break
                    time.sleep(0.01)
                if pending is None:
                    continue
                token = pending
            for who, amount in ((user, PRICE), (hot, 10)):
                try:
                    r = call("POST", f"/v1/users/{who}/points/charge", json={"amount": amount})
                except (requests.RequestException, Unavailable):
                    with ledger.lock:
                        ledger.charges_unknown[who] += 1
                    raise
                if r.status_code == 200:
                    with ledger.lock:
                        ledger.charges_acked[who] += 1
            sid, seat = rng.choice(sids), rng.randint(1, seats)
            r = call("POST", "/v1/reservations", json={"userId": user, "scheduleId": sid, "seatNo": seat},
                     token=token)
            if r.status_code == 401:
                token = None
                continue
            if r.status_code != 201:
                continue
            rid = r.json()["reservationId"]
            with ledger.lock:
                ledger.holds[rid] = (user, sid, seat)
            if rng.random() < 0.7:
                try:
                    r = call("POST", "/v1/payments", json={"userId": user, "reservationId": rid}, token=token,
                             headers={"Idempotency-Key": f"crash-{uuid.uuid4()}"})
                except (requests.RequestException, Unavailable):
                    with ledger.lock:
                        ledger.payments_unknown[user] += 1
                    raise
                if r.status_code == 201:
                    body = r.json()
                    with ledger.lock:
                        ledger.payments[body["paymentId"]] = (user, rid, body["amount"])
                    token = None
        except Unavailable:
            time.sleep(0.02)  # the database is away: try again, as a client told Retry-After would
        except requests.RequestException:
            if not outage and len(targets) == 1:
                return  # the kill cut it: outcome unknown
            time.sleep(0.02)
            sess = {id(x): requests.Session() for x in targets}


def start_burst(api: Api, sids: list[int], seats: int, clients: int = 24, outage: bool = False,
                servers: list | None = None):
    users = [new_user_id() for _ in range(clients)]
    hot = new_user_id()
    ledger = Ledger()
    stop = threading.Event()
    threads = [threading.Thread(target=burst_worker, args=(api, ledger, u, hot, sids, seats, stop, outage, servers))
               for u in users]
    for t in threads:
        t.start()
    return users, hot, ledger, stop, threads


def check_invariants(api: Api, ledger: Ledger, users: list[int], hot: int, sids: list[int],
                     stop_first: list | None = None) -> None:
    """After a crash or an outage, with `api.s` running: what was acknowledged is there through
    HTTP, then with every process on the database stopped (`api.s` and `stop_first`), the
    invariants of SPEC §2 hold in the database itself; then `api.s` serves again."""
    s = api.s
    now_ms = int(time.time() * 1000)

    # the outbox is relayed within a few seconds
    poll(lambda: s.db_query("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0]["n"] == 0,
         timeout=10, interval=0.2, what="every outbox row published after the restart")

    # through HTTP: what was acknowledged is there
    for pid, (user, rid, amount) in ledger.payments.items():
        body = expect(api.reservation(rid), 200)
        assert body["status"] == "CONFIRMED" and body["userId"] == user, (pid, body)
    for rid, (user, sid, seat) in ledger.holds.items():
        body = expect(api.reservation(rid), 200)
        assert body["status"] in ("HELD", "CONFIRMED"), body
        assert (body["userId"], body["scheduleId"], body["seatNo"]) == (user, sid, seat), body
    _, reader = api.user_with_token()
    http_seats = {sid: api.seat_statuses(reader, sid) for sid in sids}
    http_balances = {u: api.balance(u) for u in users + [hot]}

    for other in stop_first or []:
        if other.running:
            assert other.stop() == 0, f"{other.name}: exit code after SIGTERM"
    rc = s.stop()
    assert rc == 0, f"exit code {rc} after SIGTERM"
    db = s.db()
    q = lambda sql, *p: db.tuples(sql, p)  # noqa: E731 - plain tuples
    # no seat with two live reservations
    assert q("""SELECT seat_id, count(*) FROM reservations
                WHERE status = 'CONFIRMED' OR (status = 'HELD' AND expires_at > ?)
                GROUP BY seat_id HAVING count(*) > 1""", now_ms) == []
    # SOLD <=> exactly one CONFIRMED reservation with exactly one payment
    assert q("""SELECT s.id FROM seats s WHERE s.status = 'SOLD' AND
                (SELECT count(*) FROM reservations r WHERE r.seat_id = s.id AND r.status = 'CONFIRMED') != 1""") == []
    assert q("""SELECT r.id FROM reservations r JOIN seats s ON s.id = r.seat_id
                WHERE r.status = 'CONFIRMED' AND s.status != 'SOLD'""") == []
    assert q("""SELECT r.id FROM reservations r
                WHERE r.status = 'CONFIRMED' AND (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id) != 1""") == []
    assert q("""SELECT p.id FROM payments p JOIN reservations r ON r.id = p.reservation_id
                WHERE r.status != 'CONFIRMED' OR p.amount != r.price OR p.user_id != r.user_id
                   OR p.status != 'COMPLETED'""") == []
    # the seat map read through HTTP agrees with the reservations
    rows = q("""SELECT s.schedule_id, s.seat_no,
                  (SELECT r.status FROM reservations r WHERE r.seat_id = s.id AND
                     (r.status = 'CONFIRMED' OR (r.status = 'HELD' AND r.expires_at > ?))) AS live
                FROM seats s WHERE s.schedule_id IN (?, ?)""", now_ms, sids[0], sids[1])
    derived = defaultdict(dict)
    for sid, seat_no, live in rows:
        derived[sid][seat_no] = {"CONFIRMED": "SOLD", "HELD": "HELD", None: "AVAILABLE"}[live]
    assert {sid: derived[sid] for sid in sids} == http_seats

    # wallets: balance = sum of the history = last balance_after, never out of bounds
    for user_id, balance in q("SELECT user_id, balance FROM wallets"):
        charged, used = q("""SELECT coalesce(sum(CASE WHEN type = 'CHARGE' THEN amount END), 0),
                                    coalesce(sum(CASE WHEN type = 'USE' THEN amount END), 0)
                             FROM wallet_entries WHERE user_id = ?""", user_id)[0]
        assert balance == charged - used, (user_id, balance, charged, used)
        last = q("SELECT balance_after FROM wallet_entries WHERE user_id = ? ORDER BY id DESC LIMIT 1", user_id)
        assert last and last[0][0] == balance, (user_id, balance, last)
        assert 0 <= balance <= 100_000_000
    entry_users = {r[0] for r in q("SELECT DISTINCT user_id FROM wallet_entries")}
    assert entry_users <= {r[0] for r in q("SELECT user_id FROM wallets")}
    # running balances: each entry's balance_after follows from the one before
    for (user_id,) in q("SELECT DISTINCT user_id FROM wallet_entries"):
        running = 0
        for typ, amount, after in q("SELECT type, amount, balance_after FROM wallet_entries WHERE user_id = ? "
                                    "ORDER BY id", user_id):
            running += amount if typ == "CHARGE" else -amount
            assert after == running, (user_id, typ, amount, after, running)
    # one USE per payment, of its amount
    assert q("""SELECT p.user_id FROM payments p GROUP BY p.user_id
                HAVING count(*) != (SELECT count(*) FROM wallet_entries e WHERE e.user_id = p.user_id AND e.type = 'USE')
                    OR sum(p.amount) != (SELECT sum(amount) FROM wallet_entries e WHERE e.user_id = p.user_id AND e.type = 'USE')
             """) == []
    assert q("""SELECT DISTINCT e.user_id FROM wallet_entries e WHERE e.type = 'USE'
                AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.user_id = e.user_id)""") == []

    # nothing acknowledged was lost; nothing unacknowledged beyond what was in flight
    payment_ids = {r[0] for r in q("SELECT id FROM payments")}
    assert set(ledger.payments) <= payment_ids, "an acknowledged payment was lost"
    reservation_ids = {r[0] for r in q("SELECT id FROM reservations")}
    assert set(ledger.holds) <= reservation_ids, "an acknowledged hold was lost"
    for who in users + [hot]:
        (n,) = q("SELECT count(*) FROM wallet_entries WHERE user_id = ? AND type = 'CHARGE'", who)[0]
        assert ledger.charges_acked[who] <= n <= ledger.charges_acked[who] + ledger.charges_unknown[who], \
            (who, n, ledger.charges_acked[who], ledger.charges_unknown[who])
        (balance,) = q("SELECT coalesce((SELECT balance FROM wallets WHERE user_id = ?), 0)", who)[0]
        assert http_balances[who] == balance

    # outbox: every row published, one event per change, event ids unique
    assert q("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0] == 0
    events = Counter(dict(q("SELECT type, count(*) FROM outbox GROUP BY type")))
    counts = {
        "payment.completed": q("SELECT count(*) FROM payments")[0][0],
        "reservation.confirmed": q("SELECT count(*) FROM reservations WHERE status = 'CONFIRMED'")[0][0],
        "reservation.held": q("SELECT count(*) FROM reservations")[0][0],
        "points.charged": q("SELECT count(*) FROM wallet_entries WHERE type = 'CHARGE'")[0][0],
        "points.used": q("SELECT count(*) FROM wallet_entries WHERE type = 'USE'")[0][0],
    }
    for typ, n in counts.items():
        assert events[typ] == n, f"{events[typ]} {typ} events for {n} changes (all: {dict(events)})"
    assert q("SELECT count(DISTINCT event_id) = count(*) FROM outbox")[0][0] == 1

    # the sales ledger consumer acted exactly once per payment
    ledger_rows = q("SELECT payment_id, reservation_id, user_id, amount, event_id FROM sales_ledger")
    assert sorted(r[0] for r in ledger_rows) == sorted(payment_ids), "sales_ledger is not one row per payment"
    for payment_id, reservation_id, user_id, amount, event_id in ledger_rows:
        assert q("SELECT reservation_id, user_id, amount FROM payments WHERE id = ?", payment_id)[0] == (
            reservation_id, user_id, amount)
        assert q("SELECT type FROM outbox WHERE event_id = ?", event_id) == [("payment.completed",)]
    db.close()

    # and the service works on after all that
    s.start()
    user, token = api.user_with_token()
    api.charged(user, PRICE)
    free = [(sid, no) for sid in sids for no, st in api.seat_statuses(token, sid).items() if st == "AVAILABLE"]
    if free:
        sid, no = free[0]
        rid = api.held(token, user, sid, no)["reservationId"]
        expect(api.pay(token, user, rid), 201)
        assert api.balance(user) == 0


def test_kill_9_mid_burst_then_restart(make_server):
    seats = 50
    s = make_server(CONCERTD_HOLD_SECONDS=300)
    api = Api(s)
    concert_id, sids = api.create_concert([schedule_spec(seats=seats, price=PRICE),
                                           schedule_spec(days=40, seats=seats, price=PRICE)])
    users, hot, ledger, stop, threads = start_burst(api, sids, seats)
    poll(lambda: len(ledger.payments) >= 30, timeout=30, what="30 payments before the kill")
    time.sleep(random.uniform(0.05, 0.3))
    s.kill()
    stop.set()
    for t in threads:
        t.join(20)
        assert not t.is_alive()
    assert not [k for k in ledger.statuses if k >= 500], dict(ledger.statuses)
    assert ledger.payments and ledger.holds and ledger.charges_acked
    print(f"before the kill: {len(ledger.holds)} holds, {len(ledger.payments)} payments, "
          f"{sum(ledger.charges_acked.values())} charges acknowledged, "
          f"{sum(ledger.charges_unknown.values())} cut; answers {dict(ledger.statuses)}")

    # restart on the same database, then every invariant
    s.start()
    check_invariants(api, ledger, users, hot, sids)
