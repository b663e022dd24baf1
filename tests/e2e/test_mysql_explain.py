"""Every hot query of the MySQL/MariaDB back end uses an index on large tables (the MariaDB twin
of test_pg_explain.py; docs/mysql.md "Schema").

A server applies the migrations to a fresh database and is stopped (its sweeper and relay would
otherwise work on the rows below); then the tables are filled with INSERT … SELECT over a
numbers table (neither server has generate_series; MariaDB's seq_1_to_N tables are not on
MySQL 8): 200k seats over 4000 schedules, 200k reservations, 100k wallet entries, 100k outbox
rows mostly published, 100k queue tokens mostly admitted, 50k payments and idempotency keys;
then ANALYZE TABLE. Each query is EXPLAINed with realistic values in place of its `?`s: MySQL
and MariaDB plan a prepared statement at each execution with the values it is given (there is
no generic plan to catch, unlike PostgreSQL). An access of type ALL (a full table scan) or
`index` (a full index scan) on a large table fails the test, unless the query says it is one
that reads a bounded number of rows in index order (`bounded`: ORDER BY the key ... LIMIT n).

The SQL is what the adapter (src/adapters/mysql/) sends: test_query_table_matches_the_sources
checks each piece of it (between the adapter's macros, MACROS, and run-time lists, IDS) is in the
named source file verbatim, and each macro in the file that defines it, as test_pg_explain.py
does; a statement changed in the sources fails it until the table here follows.

CONCERTD_E2E_MYSQL_SCHEMA=files applies migrations/mysql/*.sql directly instead of through a
concertd (to check the schema alone, before the adapter runs).
"""
from __future__ import annotations

import os
import pathlib
import re

import pytest

import support

pytestmark = [pytest.mark.mariadb]

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCES = REPO / "src" / "adapters" / "mysql"

# EXPLAIN names a table by its alias in the query.
ALIASES = {"r": "reservations", "s": "seats", "sc": "schedules", "k": "idempotency_keys", "p": "payments",
           "w": "wallets", "t": "queue_tokens", "q": "queue_tokens"}
LARGE = {"schedules", "seats", "reservations", "wallets", "wallet_entries", "payments", "idempotency_keys",
         "outbox", "queue_tokens", "processed_events", "sales_ledger"}

# The database's clock in milliseconds, as the adapter computes it (docs/mysql.md).
NOW_MS = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
RES_COLS = "r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at"
SEAT_COLS = ("SELECT s.id, (SELECT concert_id FROM schedules WHERE id = s.schedule_id),"
             " (SELECT starts_at FROM schedules WHERE id = s.schedule_id), s.price, s.status,"
             f" s.hold_expires_at, s.version, {NOW_MS}")
# The payment store's: CONCERTD_MY_PAY_RESERVATION_COLUMNS (the schedule's concert from a
# subquery, so FOR UPDATE does not lock the schedule row), CONCERTD_MY_PAY_KEY_COLUMNS, and the
# statements built of them, CONCERTD_MY_PAY_RESERVATION, CONCERTD_MY_PAY_WALLET_AND_KEY and
# CONCERTD_MY_PAY_CONFIRM (each also sent with a suffix: FOR UPDATE, or a version check).
PAY_RES_COLS = ("r.id, r.user_id, r.schedule_id,"
                " (SELECT sc.concert_id FROM schedules sc WHERE sc.id = r.schedule_id),"
                " r.seat_no, r.price, r.status, r.expires_at")
PAY_KEY_COLS = "k.user_id, k.reservation_id, p.id, p.amount, p.paid_at"
PAY_RESERVATION = f"SELECT {PAY_RES_COLS}, r.version, {NOW_MS} FROM reservations r WHERE r.id = ?"
PAY_WALLET_AND_KEY = (f"SELECT w.balance, w.version, {NOW_MS}, {PAY_KEY_COLS}"
                      " FROM wallets w LEFT JOIN idempotency_keys k ON k.idem_key = ?"
                      " LEFT JOIN payments p ON p.id = k.payment_id WHERE w.user_id = ?")
PAY_CONFIRM = ("UPDATE reservations r JOIN seats s ON s.id = r.seat_id"
               " JOIN wallets w ON w.user_id = r.user_id"
               " SET r.status = 'CONFIRMED', r.resolved_at = ?, r.version = r.version + 1,"
               " s.status = 'SOLD', s.hold_expires_at = NULL, s.version = s.version + 1,"
               " w.balance = ?, w.version = w.version + 1 WHERE r.id = ?")
# The queue's TOKEN_STATE_COLUMNS: status, live, position (over t, the token, and c.now; two ?s,
# the waiting TTL). The queue spells the clock NOW_MS (its alias of CONCERTD_MY_NOW_MS).
TOKEN_STATE = (" t.status,"
               " IF(t.status = 'WAITING', t.last_poll_at > c.now - ?, t.expires_at > c.now),"
               " IF(t.status = 'WAITING', 1 + (SELECT COUNT(*) FROM queue_tokens q"
               "  WHERE q.status = 'WAITING' AND q.seq < t.seq AND q.last_poll_at > c.now - ?), 0)")
# The adapter's SQL macros: (text, the file that defines it): CONCERTD_MY_NOW_MS and
# CONCERTD_MY_RESERVATION_COLUMNS, CONCERTD_MY_SEAT_COLUMNS, the payment store's and the queue's.
# test_query_table_matches_the_sources cuts them out of a query and checks each macro's own text
# (less the macros inside it) in the file that defines it.
MACROS = [(NOW_MS, "mysql_rows.hpp"), (RES_COLS, "mysql_rows.hpp"), (SEAT_COLS, "mysql_reservation_store.cpp"),
          (PAY_RES_COLS, "mysql_payment_store.cpp"), (PAY_KEY_COLS, "mysql_payment_store.cpp"),
          (PAY_RESERVATION, "mysql_payment_store.cpp"), (PAY_WALLET_AND_KEY, "mysql_payment_store.cpp"),
          (PAY_CONFIRM, "mysql_payment_store.cpp"), (TOKEN_STATE, "mysql_waiting_queue.cpp")]
# Where a statement has a list built at run time (a batch of ids spliced in as text, or the
# outbox's padded run of `, ?`s): its argument is the whole list, and the verbatim check skips it.
IDS = "{ids}"

# (name, source file under src/adapters/mysql/, SQL with ? placeholders, arguments as SQL
# literals (for IDS: the list), bounded). `bounded`: a full index scan is fine, the query stops
# after LIMIT rows. Every statement the stores send that reads rows is here; the plain INSERT …
# VALUES (one row by its keys; MariaDB's EXPLAIN shows them as type ALL) and the lock calls
# (SELECT GET_LOCK / RELEASE_ALL_LOCKS, no table) are not.
QUERIES = [
    # --- seat map and catalog
    ("seat map by schedule", "mysql_catalog_store.cpp",
     "SELECT seat_no, price, status, hold_expires_at FROM seats WHERE schedule_id = ? ORDER BY seat_no",
     ["1234"], False),
    ("dates of a concert", "mysql_catalog_store.cpp",
     "SELECT sc.id, sc.starts_at, sc.total_seats"
     " FROM concerts c LEFT JOIN schedules sc ON sc.concert_id = c.id"
     " WHERE c.id = ? ORDER BY sc.starts_at, sc.id",
     ["17"], False),
    ("taken seats of some schedules (dates list usage, 4 ids)", "mysql_catalog_store.cpp",
     "SELECT sc.id, s.status, s.hold_expires_at"
     " FROM schedules sc LEFT JOIN seats s ON s.schedule_id = sc.id AND s.status <> 'AVAILABLE'"
     f" WHERE sc.id IN (?{IDS}) ORDER BY sc.id",
     ["1234", ", 1235, 1236, 1236"], False),
    # --- holds. The schedule's columns come from scalar subqueries: FOR UPDATE on a join would
    # also lock the schedule row (MariaDB has no FOR UPDATE OF), and every hold and payment of
    # that schedule would queue on it (docs/mysql.md).
    ("seat and its held reservation (hold read)", "mysql_reservation_store.cpp",
     f"{SEAT_COLS}, r.id, r.user_id, r.schedule_id, 0, r.seat_no, r.price, r.status, r.expires_at"
     " FROM seats s LEFT JOIN reservations r ON r.seat_id = s.id AND r.status = 'HELD'"
     " WHERE s.schedule_id = ? AND s.seat_no = ?",
     ["1100", "7"], False),
    ("seat by schedule and number, locked (hold read)", "mysql_reservation_store.cpp",
     f"{SEAT_COLS} FROM seats s WHERE s.schedule_id = ? AND s.seat_no = ? FOR UPDATE",
     ["1234", "7"], False),
    ("held reservation of a seat", "mysql_reservation_store.cpp",
     f"SELECT {RES_COLS}"
     " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
     " WHERE r.seat_id = ? AND r.status = 'HELD'",
     ["55000"], False),
    ("seat lock fence (distributed hold)", "mysql_reservation_store.cpp",
     "UPDATE seats SET lock_fence = ? WHERE schedule_id = ? AND seat_no = ? AND lock_fence < ?",
     ["99", "1234", "7", "99"], False),
    ("atomic hold", "mysql_reservation_store.cpp",
     f"UPDATE seats SET status = 'HELD', hold_expires_at = {NOW_MS} + ?, version = version + 1"
     " WHERE schedule_id = ? AND seat_no = ?"
     f" AND (status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= {NOW_MS}))"
     f" AND (SELECT starts_at FROM schedules WHERE id = ?) > {NOW_MS}",
     ["300000", "1234", "7", "1234"], False),
    ("reservation by id", "mysql_reservation_store.cpp",
     f"SELECT {RES_COLS} FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = ?",
     ["123456"], False),
    ("holds to expire, claimed with their seats (sweeper)", "mysql_reservation_store.cpp",
     "SELECT r.id, r.user_id, r.schedule_id,"
     " (SELECT concert_id FROM schedules WHERE id = r.schedule_id), r.seat_no, r.price,"
     f" r.status, r.expires_at, s.id, {NOW_MS}"
     " FROM reservations r JOIN seats s ON s.id = r.seat_id"
     f" WHERE r.status = 'HELD' AND r.expires_at <= {NOW_MS}"
     " ORDER BY r.expires_at LIMIT ? FOR UPDATE SKIP LOCKED",
     ["100"], False),
    ("claimed holds resolved (sweeper)", "mysql_reservation_store.cpp",
     f"UPDATE reservations SET status = 'EXPIRED', resolved_at = {NOW_MS}"
     f", version = version + 1 WHERE id IN ({IDS})",
     ["123456, 123457, 123458"], False),
    ("claimed seats freed (sweeper)", "mysql_reservation_store.cpp",
     "UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL,"
     f" version = version + 1 WHERE id IN ({IDS}) AND status = 'HELD' AND hold_expires_at <= {NOW_MS}",
     ["1100, 1101, 1102"], False),
    # --- wallet (mysql_wallet.hpp: the statements the wallet and payment stores share)
    ("wallet by user (optimistic read, balance)", "mysql_wallet.hpp",
     f"SELECT balance, version, {NOW_MS} FROM wallets WHERE user_id = ?",
     ["4242"], False),
    ("wallet by user, locked", "mysql_wallet.hpp",
     f"SELECT balance, version, {NOW_MS} FROM wallets WHERE user_id = ? FOR UPDATE",
     ["4242"], False),
    ("wallet lock fence (distributed charge, payment)", "mysql_wallet.hpp",
     "UPDATE wallets SET lock_fence = ? WHERE user_id = ? AND lock_fence < ?",
     ["99", "4242", "99"], False),
    ("wallet write (locked charge)", "mysql_wallet.hpp",
     "UPDATE wallets SET balance = ?, version = version + 1 WHERE user_id = ?",
     ["1000", "4242"], False),
    ("wallet conditional update (optimistic charge)", "mysql_wallet.hpp",
     "UPDATE wallets SET balance = ?, version = version + 1 WHERE user_id = ? AND version = ?",
     ["1000", "4242", "3"], False),
    ("wallet history newest first", "mysql_wallet_store.cpp",
     "SELECT type, amount, balance_after, at FROM wallet_entries WHERE user_id = ? ORDER BY id DESC LIMIT ?",
     ["4242", "20"], False),
    # --- payments (reservation 52,000 is HELD, its user 2,001 has a wallet). The reservation is
    # locked alone, the schedule read in a subquery (as the seat above).
    ("reservation to pay (optimistic read)", "mysql_payment_store.cpp",
     PAY_RESERVATION, ["52000"], False),
    ("reservation to pay, locked", "mysql_payment_store.cpp",
     f"{PAY_RESERVATION} FOR UPDATE", ["52000"], False),
    ("wallet with the idempotency key's answer (payment, known key)", "mysql_payment_store.cpp",
     PAY_WALLET_AND_KEY, ["'key-4242'", "2001"], False),
    ("wallet with the idempotency key's answer, locked (unknown key)", "mysql_payment_store.cpp",
     f"{PAY_WALLET_AND_KEY} FOR UPDATE", ["'key-new-52000'", "2001"], False),
    ("idempotency key with its payment and reservation (replay)", "mysql_payment_store.cpp",
     f"SELECT {PAY_KEY_COLS}, {PAY_RES_COLS}"
     " FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id"
     " JOIN reservations r ON r.id = p.reservation_id WHERE k.idem_key = ?",
     ["'key-4242'"], False),
    ("reservation confirmed, seat sold, wallet written (locked payment)", "mysql_payment_store.cpp",
     PAY_CONFIRM, [NOW_MS, "999000", "52000"], False),
    ("the same if unchanged (optimistic payment)", "mysql_payment_store.cpp",
     f"{PAY_CONFIRM} AND r.version = ? AND r.status = 'HELD' AND w.version = ?",
     [NOW_MS, "999000", "52000", "0", "0"], False),
    ("idempotency key purge", "mysql_payment_store.cpp",
     "DELETE FROM idempotency_keys WHERE created_at < ? ORDER BY created_at LIMIT ?",
     [f"{NOW_MS} - 7 * 86400000", "500"], False),
    # --- outbox
    ("relay turn, only when there is something to send", "mysql_outbox_store.cpp",
     "SELECT IF(EXISTS(SELECT 1 FROM outbox WHERE published_at IS NULL), GET_LOCK(?, 0), NULL)",
     ["'concertd.explain:relay'"], False),
    ("unpublished outbox rows in order", "mysql_outbox_store.cpp",
     "SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
     " WHERE published_at IS NULL ORDER BY id LIMIT ?",
     ["500"], False),
    ("unpublished outbox count", "mysql_outbox_store.cpp",
     "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL", [], False),
    # The relay's batch of 500, padded to 512 ?s (the list is built at run time).
    ("outbox rows marked published (512 ids)", "mysql_outbox_store.cpp",
     f"UPDATE outbox SET published_at = ? WHERE id IN (?{IDS})",
     [NOW_MS, "99001", "".join(f", {99001 + min(i, 499)}" for i in range(1, 512))], False),
    ("published outbox purge", "mysql_outbox_store.cpp",
     "DELETE FROM outbox WHERE published_at < ? ORDER BY published_at, id LIMIT ?",
     [f"{NOW_MS} - 86400000", "500"], False),
    # An event id the ledger has, so the plan shows the probe: a new id's is answered while
    # planning (const on sales_ledger_event_id: "no matching row in const table").
    ("sales ledger row unless recorded (consumer)", "mysql_outbox_store.cpp",
     "INSERT INTO sales_ledger (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
     " SELECT ?, ?, ?, ?, ?, ? FROM DUAL WHERE NOT EXISTS (SELECT 1 FROM sales_ledger WHERE event_id = ?)",
     ["'ev-42'", "60001", "60001", "4242", "1000", NOW_MS, "'ev-42'"], False),
    # --- queue (the line: 5,000 WAITING behind 95,000 ACTIVE; token 'tok-97500' is user 97,500's,
    # halfway down the line). ttl: the waiting TTL in ms; cutoff: now - ttl.
    ("dead token of a user deleted (issue)", "mysql_waiting_queue.cpp",
     "DELETE FROM queue_tokens WHERE user_id = ? AND IF(status = 'WAITING',"
     f" last_poll_at <= {NOW_MS} - ?, expires_at IS NULL OR expires_at <= {NOW_MS})",
     ["97500", "60000"], False),
    ("issued token with its state and position (issue)", "mysql_waiting_queue.cpp",
     f"SELECT RELEASE_ALL_LOCKS(), t.token,{TOKEN_STATE}"
     f" FROM (SELECT {NOW_MS} AS now) c LEFT JOIN queue_tokens t ON t.user_id = ?",
     ["60000", "60000", "97500"], False),
    ("token with its state and position (poll)", "mysql_waiting_queue.cpp",
     f"SELECT t.user_id,{TOKEN_STATE}"
     f" FROM (SELECT {NOW_MS} AS now) c JOIN queue_tokens t ON t.token = ?",
     ["60000", "60000", "'tok-97500'"], False),
    ("waiting token polled", "mysql_waiting_queue.cpp",
     f"UPDATE queue_tokens SET last_poll_at = {NOW_MS}"
     f" WHERE token = ? AND status = 'WAITING' AND last_poll_at > {NOW_MS} - ?",
     ["'tok-97500'", "60000"], False),
    ("tokens of a user deleted (expire_user)", "mysql_waiting_queue.cpp",
     "DELETE FROM queue_tokens WHERE user_id = ?", ["4242"], False),
    ("line or due tokens? (admission peek)", "mysql_waiting_queue.cpp",
     "SELECT EXISTS(SELECT 1 FROM queue_tokens WHERE status = 'WAITING'),"
     f" EXISTS(SELECT 1 FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at <= {NOW_MS})",
     [], False),
    ("admission budget row", "mysql_waiting_queue.cpp",
     f"SELECT budget, refilled_at, {NOW_MS} FROM queue_admission WHERE id = 1 FOR UPDATE NOWAIT",
     [], False),
    ("active and due counts, stale and live of the head (admission)", "mysql_waiting_queue.cpp",
     "SELECT a.active, a.due, w.stale, w.live FROM"
     " (SELECT COALESCE(SUM(expires_at > ?), 0) AS active, COALESCE(SUM(expires_at <= ?), 0) AS due"
     "  FROM queue_tokens WHERE status = 'ACTIVE') a,"
     " (SELECT COALESCE(SUM(h.last_poll_at <= ?), 0) AS stale,"
     "  COALESCE(SUM(h.last_poll_at > ?), 0) AS live"
     "  FROM (SELECT last_poll_at FROM queue_tokens WHERE status = 'WAITING'"
     "   ORDER BY seq LIMIT ?) h) w",
     [NOW_MS, NOW_MS, f"{NOW_MS} - 60000", f"{NOW_MS} - 60000", "1000"], False),
    ("expired active tokens (admission sweep)", "mysql_waiting_queue.cpp",
     "DELETE FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at <= ? LIMIT ?",
     [NOW_MS, "1000"], False),
    ("stale tokens of the head (admission sweep)", "mysql_waiting_queue.cpp",
     "DELETE t FROM queue_tokens t JOIN"
     " (SELECT h.token FROM (SELECT token, last_poll_at FROM queue_tokens"
     "   WHERE status = 'WAITING' ORDER BY seq LIMIT ?) h WHERE h.last_poll_at <= ?) d"
     " ON t.token = d.token"
     " WHERE t.status = 'WAITING' AND t.last_poll_at <= ?",
     ["1000", f"{NOW_MS} - 60000", f"{NOW_MS} - 60000"], False),
    ("head of the line admitted (admission)", "mysql_waiting_queue.cpp",
     "UPDATE queue_tokens t JOIN"
     " (SELECT h.token FROM (SELECT token, seq, last_poll_at FROM queue_tokens"
     "   WHERE status = 'WAITING' ORDER BY seq LIMIT ?) h WHERE h.last_poll_at > ?"
     "  ORDER BY h.seq LIMIT ?) a"
     " ON t.token = a.token"
     " SET t.status = 'ACTIVE', t.expires_at = ?"
     " WHERE t.status = 'WAITING' AND t.last_poll_at > ?",
     ["1000", f"{NOW_MS} - 60000", "100", f"{NOW_MS} + 600000", f"{NOW_MS} - 60000"], False),
    ("admission budget charged", "mysql_waiting_queue.cpp",
     "UPDATE queue_admission SET budget = ?, refilled_at = ? WHERE id = 1", ["'0'", NOW_MS], False),
    ("live waiting and active counts (stats)", "mysql_waiting_queue.cpp",
     "SELECT (SELECT COUNT(*) FROM queue_tokens"
     "  WHERE status = 'WAITING' AND last_poll_at > c.now - ?),"
     " (SELECT COUNT(*) FROM queue_tokens WHERE status = 'ACTIVE' AND expires_at > c.now)"
     f" FROM (SELECT {NOW_MS} AS now) c",
     ["60000"], False),
]


def numbers(count: int) -> str:
    """A derived table of g = 1..count (count <= 1,000,000) over fill_n (0..999)."""
    return (f"(SELECT 1 + x.n + 1000 * y.n AS g FROM fill_n x JOIN fill_n y"
            f" WHERE y.n < {(count + 999) // 1000} AND x.n + 1000 * y.n < {count})")


DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"
FILL = [
    "CREATE TABLE fill_n (n INT PRIMARY KEY) ENGINE=InnoDB",
    f"INSERT INTO fill_n SELECT a.d + 10 * b.d + 100 * c.d FROM {DIGITS} a, {DIGITS} b, {DIGITS} c",
    f"INSERT INTO concerts (title, created_at) SELECT CONCAT('concert ', g), {NOW_MS} FROM {numbers(100)} t",
    "INSERT INTO schedules (concert_id, starts_at, total_seats)"
    f" SELECT 1 + g % 100, {NOW_MS} + g * 3600000, 50 FROM {numbers(4000)} t ORDER BY g",
    "INSERT INTO seats (schedule_id, seat_no, price)"
    f" SELECT 1 + (g - 1) DIV 50, 1 + (g - 1) % 50, 1000 FROM {numbers(200000)} t ORDER BY g",
    # 50,000 CONFIRMED, 5,000 HELD (the first 500 already due), 145,000 EXPIRED
    "INSERT INTO reservations (user_id, schedule_id, seat_id, seat_no, price, status, created_at,"
    " expires_at, resolved_at)"
    " SELECT 1 + g % 50000, s.schedule_id, s.id, s.seat_no, s.price,"
    "  CASE WHEN g <= 50000 THEN 'CONFIRMED' WHEN g <= 55000 THEN 'HELD' ELSE 'EXPIRED' END,"
    f"  {NOW_MS} - 300000, {NOW_MS} + (g - 50500) * 60,"
    f"  CASE WHEN g <= 50000 OR g > 55000 THEN {NOW_MS} END"
    f" FROM {numbers(200000)} t JOIN seats s ON s.id = t.g ORDER BY g",
    "UPDATE seats s JOIN reservations r ON r.seat_id = s.id"
    " SET s.status = CASE WHEN r.status = 'CONFIRMED' THEN 'SOLD' ELSE 'HELD' END,"
    "  s.hold_expires_at = CASE WHEN r.status = 'HELD' THEN r.expires_at END"
    " WHERE r.status IN ('HELD', 'CONFIRMED')",
    f"INSERT INTO wallets (user_id, balance) SELECT g, 1000000 FROM {numbers(50000)} t",
    "INSERT INTO wallet_entries (user_id, type, amount, balance_after, at)"
    f" SELECT 1 + g % 50000, CASE WHEN g % 2 = 0 THEN 'CHARGE' ELSE 'USE' END, 100, 1000000, {NOW_MS}"
    f" FROM {numbers(100000)} t ORDER BY g",
    "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at)"
    f" SELECT id, user_id, price, 'COMPLETED', {NOW_MS} FROM reservations WHERE status = 'CONFIRMED' ORDER BY id",
    "INSERT INTO idempotency_keys (idem_key, user_id, reservation_id, payment_id, created_at)"
    f" SELECT CONCAT('key-', id), user_id, reservation_id, id, {NOW_MS} - id * 10000 FROM payments",
    "INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at, published_at)"
    f" SELECT CONCAT('ev-', g), 'points.charged', g, '{{\"userId\":1}}', {NOW_MS},"
    f"  CASE WHEN g <= 99000 THEN {NOW_MS} - (100000 - g) * 1000 END FROM {numbers(100000)} t ORDER BY g",
    "INSERT INTO processed_events (consumer, event_id, processed_at)"
    f" SELECT 'sales_ledger', CONCAT('ev-', g), {NOW_MS} FROM {numbers(50000)} t",
    "INSERT INTO sales_ledger (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
    f" SELECT CONCAT('ev-', id), id, reservation_id, user_id, amount, {NOW_MS} FROM payments",
    # 95,000 ACTIVE (admitted), then a line of 5,000 WAITING (seq in token order)
    "INSERT INTO queue_tokens (token, user_id, status, last_poll_at, expires_at)"
    f" SELECT CONCAT('tok-', g), g, CASE WHEN g <= 95000 THEN 'ACTIVE' ELSE 'WAITING' END, {NOW_MS},"
    f"  CASE WHEN g <= 95000 THEN {NOW_MS} + 600000 END FROM {numbers(100000)} t ORDER BY g",
    "DROP TABLE fill_n",
    "ANALYZE TABLE " + ", ".join(sorted(LARGE)),
]


def bind(sql: str, args: list[str]) -> str:
    """The statement with its ?s (and IDS) replaced by the literal arguments, in order."""
    pieces = re.split(r"\?|" + re.escape(IDS), sql)
    assert len(pieces) == len(args) + 1, f"{len(pieces) - 1} placeholders, {len(args)} arguments: {sql}"
    return pieces[0] + "".join(a + p for a, p in zip(args, pieces[1:]))


def full_scans(rows: list[dict], bounded: bool) -> list[str]:
    found = []
    for row in rows:
        table = ALIASES.get(row.get("table"), row.get("table"))
        if table not in LARGE:
            continue
        if row.get("type") == "ALL" or (row.get("type") == "index" and not bounded):
            found.append(f"{table} ({row.get('type')})")
    return found


def literals(path: pathlib.Path) -> str:
    from test_pg_explain import literals as pg_literals  # the same C++ string-literal reader
    return pg_literals(path)


def test_query_table_matches_the_sources():
    """The table above must be what the adapter sends: each query verbatim in its source file
    (after NOW_MS, which the adapter may spell through a macro, is cut out)."""
    missing = sorted({source for _, source, _, _, _ in QUERIES + [(None, s, None, None, None) for _, s in MACROS]
                      if not (SOURCES / source).is_file()})
    assert not missing, (f"src/adapters/mysql/ has no {missing}: the adapter is not there yet, or its files "
                         f"are named otherwise (rename them in QUERIES)")
    stream = {p.name: literals(p) for p in list(SOURCES.glob("*.cpp")) + list(SOURCES.glob("*.hpp"))}
    drifted = []
    checks = [(f"macro in {source}", source, text) for text, source in MACROS] + \
             [(name, source, sql) for name, source, sql, _, _ in QUERIES]
    for name, source, sql in checks:
        inner = [m for m, _ in sorted(MACROS, key=lambda m: -len(m[0])) if m != sql] + [IDS]
        for piece in re.split("|".join(re.escape(m) for m in inner), sql):
            if piece.strip() and piece not in stream[source]:
                drifted.append(f"{name} ({source}): {piece!r}")
    assert not drifted, "queries not found verbatim in the sources:\n" + "\n".join(drifted)


def _apply_files(conn) -> None:
    with conn.cursor() as cur:
        for path in sorted((REPO / "migrations" / "mysql").glob("*.sql")):
            cur.execute(path.read_text())
            while cur.nextset():
                pass


@pytest.fixture(scope="module")
def filled(session_dir):
    server = None
    db_server = support.db_server()
    if os.environ.get("CONCERTD_E2E_MYSQL_SCHEMA") == "files":
        database = support.new_database_name("explain")
        db_server.create_database(database)
        import pymysql
        conn = db_server.connect(database, timeout=300)
        setup = pymysql.connect(host="127.0.0.1", port=db_server.port, user="concertd", password="concertd",
                                database=database, client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS,
                                autocommit=True)
        try:
            _apply_files(setup)
        finally:
            setup.close()
    else:
        server = support.Server(workdir=session_dir / "explain-mysql", name="explain")
        server.start()  # applies the migrations
        assert server.stop() == 0
        database = server.database
        conn = db_server.connect(database, timeout=300)
    with conn.cursor() as cur:
        for sql in FILL:
            cur.execute(sql)
            if cur.description:
                cur.fetchall()
        cur.execute("SELECT (SELECT count(*) FROM seats), (SELECT count(*) FROM reservations),"
                    " (SELECT count(*) FROM outbox WHERE published_at IS NULL), (SELECT count(*) FROM queue_tokens),"
                    " (SELECT count(*) FROM payments)")
        assert tuple(cur.fetchone()) == (200000, 200000, 1000, 100000, 50000)
    yield conn
    conn.close()
    if server is not None:
        server.close()
    else:
        db_server.drop_database(database)


def explain(conn, sql: str) -> list[dict]:
    with conn.cursor() as cur:
        cur.execute("EXPLAIN " + sql)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]


def plan_text(rows: list[dict]) -> str:
    cols = ("id", "select_type", "table", "type", "key", "key_len", "ref", "rows", "Extra")
    return "\n".join(" | ".join(str(r.get(c)) for c in cols) for r in rows)


@pytest.mark.parametrize("name,source,sql,args,bounded", QUERIES, ids=[q[0] for q in QUERIES])
def test_hot_query_uses_an_index(filled, name, source, sql, args, bounded):
    rows = explain(filled, bind(sql, args))
    support.report(f"explain mysql: {name}: " + "; ".join(
        f"{r.get('table')} {r.get('type')} {r.get('key')} rows={r.get('rows')} {r.get('Extra') or ''}".strip()
        for r in rows))
    scans = full_scans(rows, bounded)
    assert not scans, (f"{name} (src/adapters/mysql/{source}) scans large tables: {scans}\n" + plan_text(rows))
