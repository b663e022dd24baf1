"""The references concertd is measured against, side by side in the same run (SPEC §5):

- nginx serving the seat map's exact JSON bytes as a static file (stack.Nginx);
- pgbench running the SQL transaction concertd runs for an optimistic seat hold, and for a point
  charge, statement for statement and round trip for round trip (scripts below);
- redis-benchmark ZADD (tools.redis_zadd).

The SQL is copied from src/adapters/postgres/pg_reservation_store.cpp (hold_optimistic:
kSeatWithHeldReservation, kClaimAndRecord), pg_wallet_store.cpp / pg_wallet.hpp (charge) and
pg_rows.cpp (insert_event); docs/postgres.md lists the round trips. Where pgbench cannot carry a
value from one pipeline to the next (\\gset is not allowed in a pipeline), the value is computed
where the database already has it: the seat id from the seeded layout (checked before the run),
the reservation id with currval() after concertd's own nextval(), times with now_ms()."""
from __future__ import annotations

import pathlib

from stack import Postgres, PRICE_WON, SEATS_PER_SCHEDULE_MAX

# A multiplier coprime with every seat count used (multiples of 1000 = 2^3 5^3): k -> k * P mod N
# is a permutation, so "random" seats never repeat. wrk's Lua script uses the same mapping.
SEAT_PERMUTATION_PRIME = 7919

HOLD_SCRIPT = r"""
-- concertd's optimistic seat hold (PgReservationStore::hold_optimistic), one fresh seat each time.
\set n :n + 1
\set i :client_id * :stride + :n
\set k (:i * :prime) % :seats_total
\set schedule :first_schedule + :k / {per_schedule}
\set seat_no :k % {per_schedule} + 1
\set seat_id :first_seat + :k
\set user :first_user + :i % :users
-- round trip 1, no transaction: the seat with its version, its held reservation and the next id
SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version, now_ms(), nextval('reservations_id_seq'), r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at FROM seats s JOIN schedules sc ON sc.id = s.schedule_id LEFT JOIN LATERAL (SELECT id, user_id, schedule_id, seat_no, price, status, expires_at FROM reservations WHERE seat_id = s.id AND status = 'HELD' LIMIT 1) r ON true WHERE s.schedule_id = :schedule AND s.seat_no = :seat_no;
-- round trip 2, one statement (its own transaction): claim the seat if its version is still the
-- one read (a fresh seat: 0); the reservation and its event only if it was claimed
WITH claimed AS (UPDATE seats SET status = 'HELD', hold_expires_at = now_ms() + 300000, version = version + 1 WHERE id = :seat_id AND version = 0 RETURNING id), held AS (INSERT INTO reservations (id, user_id, schedule_id, seat_id, seat_no, price, status, created_at, expires_at) SELECT currval('reservations_id_seq'), :user, :schedule, id, :seat_no, {price}, 'HELD', now_ms(), now_ms() + 300000 FROM claimed RETURNING id) INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at) SELECT gen_random_uuid()::text, 'reservation.held', currval('reservations_id_seq'), '{{"reservationId":' || currval('reservations_id_seq') || ',"userId":' || :user || ',"scheduleId":' || :schedule || ',"seatNo":' || :seat_no || ',"price":{price},"expiresAt":"2030-01-01T19:05:00Z","eventId":"00000000-0000-4000-8000-000000000000","type":"reservation.held","occurredAt":"2030-01-01T19:00:00Z"}}', now_ms() FROM held;
"""

CHARGE_SCRIPT = r"""
-- a point charge on one hot wallet: the wallet UPDATE, the history row and the outbox row in one
-- transaction; the row lock is held over one client round trip, as in concertd's charge
-- (PgWalletStore::charge_locked: the fence UPDATE locks the row, the writes and COMMIT follow).
BEGIN;
UPDATE wallets SET balance = balance + 1, version = version + 1 WHERE user_id = :wallet RETURNING balance \gset
\startpipeline
INSERT INTO wallet_entries (user_id, type, amount, balance_after, at) VALUES (:wallet, 'CHARGE', 1, :balance, now_ms());
INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at) VALUES (gen_random_uuid()::text, 'points.charged', :wallet, '{"userId":' || :wallet || ',"amount":1,"balanceAfter":' || :balance || ',"eventId":"00000000-0000-4000-8000-000000000000","type":"points.charged","occurredAt":"2030-01-01T19:00:00Z"}', now_ms());
COMMIT;
\endpipeline
"""


def write_hold_script(path: pathlib.Path) -> pathlib.Path:
    path.write_text(HOLD_SCRIPT.format(per_schedule=SEATS_PER_SCHEDULE_MAX, price=PRICE_WON))
    return path


def write_charge_script(path: pathlib.Path) -> pathlib.Path:
    path.write_text(CHARGE_SCRIPT)
    return path


def hold_defines(url: str, schedule_ids: list[int], clients: int, first_user: int, users: int) -> dict:
    """pgbench -D values for HOLD_SCRIPT over the seats of `schedule_ids` (consecutive ids of
    full 1000-seat schedules, as concertd seeded them). Checks that seat ids follow the layout
    the script computes them from."""
    first, last = min(schedule_ids), max(schedule_ids)
    if sorted(schedule_ids) != list(range(first, last + 1)):
        raise RuntimeError("pgbench hold: the schedules are not consecutive")
    total = len(schedule_ids) * SEATS_PER_SCHEDULE_MAX
    first_seat = int(Postgres.psql(url, f"SELECT min(id) FROM seats WHERE schedule_id = {first}")[0][0])
    off = int(Postgres.psql(url, f"SELECT count(*) FROM seats WHERE schedule_id BETWEEN {first} AND {last}"
                                 f" AND id <> {first_seat} + (schedule_id - {first}) * {SEATS_PER_SCHEDULE_MAX}"
                                 f" + seat_no - 1")[0][0])
    if off:
        raise RuntimeError(f"pgbench hold: {off} seats off the computed layout")
    return {"n": 0, "stride": total // clients, "prime": SEAT_PERMUTATION_PRIME, "seats_total": total,
            "first_schedule": first, "first_seat": first_seat, "first_user": first_user, "users": users}


def hold_lua(tokens: dict[int, str], schedule_ids: list[int]) -> str:
    """wrk script: concertd holds, one fresh seat each, the same permutation as HOLD_SCRIPT."""
    users = sorted(tokens)
    total = len(schedule_ids) * SEATS_PER_SCHEDULE_MAX
    return f"""
local tokens = {{{",".join('"' + tokens[u] + '"' for u in users)}}}
local users = {{{",".join(map(str, users))}}}
local ids = {{{",".join(map(str, schedule_ids))}}}
local total, prime, per = {total}, {SEAT_PERMUTATION_PRIME}, {SEATS_PER_SCHEDULE_MAX}
local counter = 0
function setup(thread) thread:set("offset", counter * math.floor(total / 2)); counter = counter + 1 end
local n = 0
request = function()
  local i = offset + n; n = n + 1
  local k = (i * prime) % total
  local u = (i % #users) + 1
  local body = string.format('{{"userId":%d,"scheduleId":%d,"seatNo":%d}}', users[u], ids[math.floor(k / per) + 1], k % per + 1)
  return wrk.format("POST", "/v1/reservations", {{["Content-Type"]="application/json", ["Queue-Token"]=tokens[u]}}, body)
end
"""


def charge_lua(user: int) -> str:
    return f"""
wrk.method = "POST"
wrk.path = "/v1/users/{user}/points/charge"
wrk.body = '{{"amount":1}}'
wrk.headers["Content-Type"] = "application/json"
"""


def issue_lua(first_user: int, per_thread: int) -> str:
    """wrk script: token issues for new users, thread t takes users first + t * per_thread + n."""
    return f"""
local counter = 0
function setup(thread) thread:set("offset", {first_user} + counter * {per_thread}); counter = counter + 1 end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/v1/queue/tokens", {{["Content-Type"]="application/json"}}, string.format('{{"userId":%d}}', offset + n))
end
"""
