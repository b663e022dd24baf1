"""Every hot query of the PostgreSQL back end uses an index on large tables (docs/indexes.md).

A server applies the migrations to a fresh database and is stopped (its sweeper and relay would
otherwise work on the rows below); then the tables are filled with INSERT … SELECT
generate_series (200k seats over 4000 schedules, 200k reservations, 100k wallet entries, 100k
outbox rows mostly published, 100k queue tokens mostly admitted, 50k payments and idempotency
keys) and ANALYZEd. Each query is PREPAREd as the server prepares it (named statement, parameter
types inferred: src/adapters/postgres/detail/pg_connection.cpp) and EXPLAINed six times with
realistic values: the custom plans of the first executions and the plan PostgreSQL keeps from
the sixth on (generic, if it is not dearer). A Seq Scan on a large table in any fails the test.
"""
from __future__ import annotations

import json
import pathlib
import re

import pytest

pytestmark = [pytest.mark.postgres]

# Tables that hold enough rows here that a sequential scan is a missing or unusable index.
LARGE = {"schedules", "seats", "reservations", "wallets", "wallet_entries", "payments", "idempotency_keys",
         "outbox", "queue_tokens", "processed_events", "sales_ledger"}

SOURCES = pathlib.Path(__file__).resolve().parents[2] / "src" / "adapters" / "postgres"

# The server's SQL macros: (text, the file that defines it).
RES_COLS = "r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at"
SEAT_SELECT = ("SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version,"
               " now_ms() FROM seats s JOIN schedules sc ON sc.id = s.schedule_id"
               " WHERE s.schedule_id = $1 AND s.seat_no = $2")
PAY_RESERVATION = (f"SELECT {RES_COLS}, r.version, now_ms()"
                   " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = $1")
HOLD_READ = ("SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version,"
             f" now_ms(), nextval('reservations_id_seq'), {RES_COLS}"
             " FROM seats s JOIN schedules sc ON sc.id = s.schedule_id"
             " LEFT JOIN LATERAL (SELECT id, user_id, schedule_id, seat_no, price, status, expires_at"
             " FROM reservations WHERE seat_id = s.id AND status = 'HELD' LIMIT 1) r ON true"
             " WHERE s.schedule_id = $1 AND s.seat_no = $2")
HELD_OF_SEAT = (f"SELECT {RES_COLS}"
                " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
                " WHERE r.seat_id = (SELECT id FROM seats WHERE schedule_id = $1 AND seat_no = $2)"
                " AND r.status = 'HELD'")
USAGE = ("SELECT sc.id, s.status, s.hold_expires_at FROM schedules sc"
         " LEFT JOIN LATERAL (SELECT status, hold_expires_at FROM seats"
         " WHERE schedule_id = sc.id AND status <> 'AVAILABLE' OFFSET 0) s ON true"
         " WHERE sc.id = ANY($1::bigint[]) ORDER BY sc.id")
MACROS = [(RES_COLS, "pg_rows.hpp"), (SEAT_SELECT, "pg_reservation_store.cpp"),
          (PAY_RESERVATION, "pg_payment_store.cpp")]

# (name, source file under src/adapters/postgres/, SQL as the server sends it, realistic
# arguments as SQL literals). Copied from the C++ sources: when one changes, change it here.
QUERIES = [
    # --- seat map and catalog: pg_catalog_store.cpp
    ("seat map by schedule", "pg_catalog_store.cpp",
     "SELECT seat_no, price, status, hold_expires_at FROM seats WHERE schedule_id = $1 ORDER BY seat_no",
     ["1234"]),
    ("dates of a concert", "pg_catalog_store.cpp",
     "SELECT sc.id, sc.starts_at, sc.total_seats"
     " FROM concerts c LEFT JOIN schedules sc ON sc.concert_id = c.id"
     " WHERE c.id = $1 ORDER BY sc.starts_at, sc.id",
     ["17"]),
    ("taken seats of some schedules (dates list usage)", "pg_catalog_store.cpp",
     USAGE, ["'{1234,1235,1236}'"]),
    # A concert whose dates are a large share of the table (the bench's; a young database):
    # a flattened join is then planned as a scan of every seat.
    ("taken seats of half the schedules (dates list usage)", "pg_catalog_store.cpp",
     USAGE, ["'{" + ",".join(str(i) for i in range(1, 4001, 2)) + "}'"]),
    # --- holds: pg_reservation_store.cpp
    ("seat by schedule and number (hold read)", "pg_reservation_store.cpp",
     SEAT_SELECT + " FOR UPDATE OF s",
     ["1234", "7"]),
    ("seat with its held reservation and the next id (optimistic hold read)", "pg_reservation_store.cpp",
     HOLD_READ,
     ["1100", "7"]),
    ("seat claimed with its reservation and event (optimistic hold write)", "pg_reservation_store.cpp",
     "WITH claimed AS (UPDATE seats SET status = 'HELD', hold_expires_at = $3::bigint,"
     " version = version + 1 WHERE id = $1 AND version = $2 RETURNING id),"
     " held AS (INSERT INTO reservations (id, user_id, schedule_id, seat_id, seat_no, price,"
     " status, created_at, expires_at) SELECT $4::bigint, $5::bigint, $6::bigint, id,"
     " $7::integer, $8::bigint, 'HELD', $9::bigint, $3::bigint FROM claimed RETURNING id)"
     " INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
     " SELECT $10::text, $11::text, $12::bigint, $13::text, $14::bigint FROM held",
     ["190001", "0", "1900000000000", "900001", "42", "3801", "1", "1000", "1800000000000",
      "'ev-hold'", "'reservation.held'", "900001", "'{}'", "1800000000000"]),
    ("seat lock fence (distributed hold)", "pg_reservation_store.cpp",
     "UPDATE seats SET lock_fence = $3 WHERE schedule_id = $1 AND seat_no = $2 AND lock_fence < $3",
     ["1234", "7", "99"]),
    ("held reservation of a seat", "pg_reservation_store.cpp",
     HELD_OF_SEAT,
     ["1100", "7"]),
    ("atomic hold", "pg_reservation_store.cpp",
     "UPDATE seats s SET status = 'HELD', hold_expires_at = now_ms() + $3,"
     " version = s.version + 1"
     " FROM schedules sc WHERE sc.id = s.schedule_id AND s.schedule_id = $1"
     " AND s.seat_no = $2 AND sc.starts_at > now_ms()"
     " AND (s.status = 'AVAILABLE' OR (s.status = 'HELD' AND s.hold_expires_at <= now_ms()))"
     " RETURNING s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at,"
     " s.version, now_ms()",
     ["1234", "7", "300000"]),
    ("reservation by id", "pg_reservation_store.cpp",
     f"SELECT {RES_COLS} FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = $1",
     ["123456"]),
    ("holds to expire, claimed with their seats (sweeper)", "pg_reservation_store.cpp",
     "SELECT r.id, s.id FROM reservations r JOIN seats s ON s.id = r.seat_id"
     " WHERE r.status = 'HELD' AND r.expires_at <= now_ms() ORDER BY r.expires_at LIMIT $1"
     " FOR UPDATE OF s, r SKIP LOCKED",
     ["100"]),
    ("claimed holds resolved (sweeper)", "pg_reservation_store.cpp",
     "UPDATE reservations SET status = 'EXPIRED', resolved_at = now_ms(),"
     " version = version + 1 WHERE id = ANY($1::bigint[])"
     " RETURNING id, user_id, schedule_id,"
     " (SELECT concert_id FROM schedules WHERE schedules.id = reservations.schedule_id),"
     " seat_no, price, status, expires_at, now_ms()",
     ["'{123456,123457,123458}'"]),
    ("claimed seats freed (sweeper)", "pg_reservation_store.cpp",
     "UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL, version = version + 1"
     " WHERE id = ANY($1::bigint[]) AND status = 'HELD' AND hold_expires_at <= now_ms()",
     ["'{1100,1101,1102}'"]),
    # --- wallet: pg_wallet.hpp, pg_wallet_store.cpp
    ("wallet by user", "pg_wallet.hpp",
     "SELECT balance, version, now_ms() FROM wallets WHERE user_id = $1 FOR UPDATE",
     ["4242"]),
    ("wallet lock fence (distributed charge, payment)", "pg_wallet.hpp",
     "UPDATE wallets SET lock_fence = $2 WHERE user_id = $1 AND lock_fence < $2",
     ["4242", "99"]),
    ("wallet conditional update", "pg_wallet.hpp",
     "UPDATE wallets SET balance = $2, version = version + 1 WHERE user_id = $1 AND version = $3",
     ["4242", "1000", "3"]),
    ("wallet history newest first", "pg_wallet_store.cpp",
     "SELECT type, amount, balance_after, at FROM wallet_entries WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
     ["4242", "20"]),
    # --- payments: pg_payment_store.cpp
    ("reservation to pay", "pg_payment_store.cpp",
     PAY_RESERVATION + " FOR UPDATE OF r",
     ["52000"]),
    ("idempotency key lookup", "pg_payment_store.cpp",
     "SELECT k.user_id, k.reservation_id, p.id, p.amount, p.paid_at"
     " FROM idempotency_keys k JOIN payments p ON p.id = k.payment_id WHERE k.key = $1",
     ["'key-4242'"]),
    ("seat sold by a payment", "pg_payment_store.cpp",
     "UPDATE seats SET status = 'SOLD', hold_expires_at = NULL,"
     " version = version + 1 WHERE schedule_id = $1 AND seat_no = $2",
     ["1100", "7"]),
    ("idempotency key purge", "pg_payment_store.cpp",
     "DELETE FROM idempotency_keys WHERE key IN"
     " (SELECT key FROM idempotency_keys WHERE created_at < $1 LIMIT $2)",
     ["(extract(epoch FROM now()) * 1000)::bigint - 7 * 86400000", "500"]),
    # --- outbox: pg_outbox_store.cpp
    ("unpublished outbox rows in order", "pg_outbox_store.cpp",
     "SELECT id, event_id, type, aggregate_id, payload, occurred_at FROM outbox"
     " WHERE published_at IS NULL ORDER BY id LIMIT $1",
     ["100"]),
    ("unpublished outbox count", "pg_outbox_store.cpp",
     "SELECT count(*) FROM outbox WHERE published_at IS NULL", []),
    ("outbox rows marked published", "pg_outbox_store.cpp",
     "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
     ["'{99500,99501,99502}'", "1"]),
    ("sales ledger consumer, once per event", "pg_outbox_store.cpp",
     "INSERT INTO sales_ledger (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
     " SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (SELECT 1 FROM sales_ledger WHERE event_id = $1)",
     ["'ev-new'", "999999", "999999", "1", "100", "1"]),
    # --- queue: pg_waiting_queue.cpp (the line: 5,000 WAITING, 95,000 ACTIVE)
    ("queue position count (poll of a waiting token)", "pg_waiting_queue.cpp",
     "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
     "polled AS ("
     " UPDATE queue_tokens t SET last_poll_at = c.now FROM clock c"
     " WHERE t.token = $1 AND t.status = 'WAITING' AND t.last_poll_at > c.now - $2::bigint"
     " RETURNING t.user_id, t.seq, c.now) "
     "SELECT p.user_id, 1 + ("
     "  SELECT count(*) FROM queue_tokens q WHERE q.status = 'WAITING' AND q.seq < p.seq"
     "  AND q.last_poll_at > p.now - $2::bigint) "
     "FROM polled p",
     ["'tok-97500'", "60000"]),
    ("active token lookup", "pg_waiting_queue.cpp",
     "SELECT user_id FROM queue_tokens WHERE token = $1 AND status = 'ACTIVE' AND expires_at > now_ms()",
     ["'tok-4242'"]),
    ("token issue with its position", "pg_waiting_queue.cpp",
     "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
     "issued AS ("
     " INSERT INTO queue_tokens AS t (token, user_id, status, last_poll_at)"
     " SELECT $1, $2::bigint, 'WAITING', clock.now FROM clock"
     " ON CONFLICT (user_id) DO UPDATE SET"
     "  token = CASE WHEN (CASE t.status WHEN 'WAITING'"
     "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
     "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.token ELSE excluded.token END,"
     "  seq = CASE WHEN (CASE t.status WHEN 'WAITING'"
     "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
     "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.seq ELSE excluded.seq END,"
     "  status = CASE WHEN (CASE t.status WHEN 'WAITING'"
     "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
     "   ELSE t.expires_at > excluded.last_poll_at END) THEN t.status ELSE excluded.status END,"
     "  expires_at = CASE WHEN (CASE t.status WHEN 'WAITING'"
     "   THEN t.last_poll_at > excluded.last_poll_at - $3::bigint"
     "   ELSE t.expires_at > excluded.last_poll_at END)"
     "   THEN t.expires_at ELSE excluded.expires_at END,"
     "  last_poll_at = excluded.last_poll_at"
     " RETURNING t.token, t.status, t.seq, t.last_poll_at) "
     "SELECT i.token, i.status, CASE WHEN i.status = 'WAITING' THEN 1 + ("
     "  SELECT count(*) FROM queue_tokens q WHERE q.status = 'WAITING' AND q.seq < i.seq"
     "  AND q.last_poll_at > i.last_poll_at - $3::bigint) ELSE 0 END "
     "FROM issued i",
     ["'tok-fresh'", "200001", "60000"]),
    ("queue admission tick", "pg_waiting_queue.cpp",
     "WITH clock AS MATERIALIZED (SELECT now_ms() AS now), "
     "bucket AS MATERIALIZED ("
     " SELECT CASE WHEN a.refilled_at = 0 THEN $1::float8"
     "  ELSE LEAST($1::float8, a.budget"
     "   + LEAST(GREATEST(c.now - a.refilled_at, 0), 1000) * $1::float8 / 1000.0) END AS budget,"
     "  GREATEST(a.refilled_at, c.now) AS refilled_at"
     " FROM queue_admission a, clock c WHERE a.id = 1), "
     "expired AS ("
     " DELETE FROM queue_tokens t USING clock c"
     " WHERE t.token = ANY(ARRAY(SELECT e.token FROM queue_tokens e, clock ce"
     "  WHERE e.status = 'ACTIVE' AND e.expires_at <= ce.now ORDER BY e.expires_at"
     "  LIMIT $5::bigint))"
     " AND t.status = 'ACTIVE' AND t.expires_at <= c.now"
     " RETURNING 1), "
     "dropped AS ("
     " DELETE FROM queue_tokens t USING clock c"
     " WHERE t.token = ANY(ARRAY(SELECT h.token FROM (SELECT token, last_poll_at"
     "   FROM queue_tokens WHERE status = 'WAITING' ORDER BY seq LIMIT $5::bigint) h, clock ch"
     "  WHERE h.last_poll_at <= ch.now - $3::bigint))"
     " AND t.status = 'WAITING' AND t.last_poll_at <= c.now - $3::bigint"
     " RETURNING 1), "
     "active AS ("
     " SELECT count(*) AS n FROM queue_tokens t, clock c"
     " WHERE t.status = 'ACTIVE' AND t.expires_at > c.now), "
     "quota AS ("
     " SELECT GREATEST(0, LEAST(floor(b.budget + 1e-9)::bigint, $2::bigint - a.n)) AS n"
     " FROM bucket b, active a), "
     "admitted AS ("
     " UPDATE queue_tokens t SET status = 'ACTIVE', expires_at = c.now + $4::bigint"
     " FROM clock c"
     " WHERE t.token = ANY(ARRAY(SELECT h.token FROM (SELECT token, seq, last_poll_at"
     "   FROM queue_tokens WHERE status = 'WAITING' ORDER BY seq LIMIT $5::bigint) h, clock ch"
     "  WHERE h.last_poll_at > ch.now - $3::bigint"
     "  ORDER BY h.seq LIMIT COALESCE((SELECT n FROM quota), 0)))"
     " AND t.status = 'WAITING' AND t.last_poll_at > c.now - $3::bigint"
     " RETURNING 1), "
     "spent AS (SELECT count(*) AS n FROM admitted), "
     "refilled AS ("
     " UPDATE queue_admission a SET budget = GREATEST(b.budget - s.n, 0),"
     "  refilled_at = b.refilled_at"
     " FROM bucket b, spent s WHERE a.id = 1 RETURNING 1) "
     "SELECT (SELECT n FROM spent), (SELECT count(*) FROM refilled)",
     ["100", "100000", "60000", "600000", "1000"]),
]

# Rows: see the module docstring. Ids are dense from 1, so row g of one table can name row g of
# another; every live reservation (HELD or CONFIRMED) is on its own seat.
FILL = [
    "INSERT INTO concerts (title, created_at) SELECT 'concert ' || g, now_ms() FROM generate_series(1, 100) g",
    "INSERT INTO schedules (concert_id, starts_at, total_seats)"
    " SELECT 1 + g % 100, now_ms() + g::bigint * 3600000, 50 FROM generate_series(1, 4000) g",
    "INSERT INTO seats (schedule_id, seat_no, price)"
    " SELECT 1 + (g - 1) / 50, 1 + (g - 1) % 50, 1000 FROM generate_series(1, 200000) g",
    # 50,000 CONFIRMED, 5,000 HELD (the first 500 already due), 145,000 EXPIRED
    "INSERT INTO reservations (user_id, schedule_id, seat_id, seat_no, price, status, created_at,"
    " expires_at, resolved_at)"
    " SELECT 1 + g % 50000, s.schedule_id, s.id, s.seat_no, s.price,"
    "  CASE WHEN g <= 50000 THEN 'CONFIRMED' WHEN g <= 55000 THEN 'HELD' ELSE 'EXPIRED' END,"
    "  now_ms() - 300000, now_ms() + (g - 50500) * 60,"
    "  CASE WHEN g <= 50000 OR g > 55000 THEN now_ms() END"
    " FROM generate_series(1, 200000) g JOIN seats s ON s.id = g",
    "UPDATE seats s SET status = CASE WHEN r.status = 'CONFIRMED' THEN 'SOLD' ELSE 'HELD' END,"
    " hold_expires_at = CASE WHEN r.status = 'HELD' THEN r.expires_at END"
    " FROM reservations r WHERE r.seat_id = s.id AND r.status IN ('HELD', 'CONFIRMED')",
    "INSERT INTO wallets (user_id, balance) SELECT g, 1000000 FROM generate_series(1, 50000) g",
    "INSERT INTO wallet_entries (user_id, type, amount, balance_after, at)"
    " SELECT 1 + g % 50000, CASE WHEN g % 2 = 0 THEN 'CHARGE' ELSE 'USE' END, 100, 1000000, now_ms()"
    " FROM generate_series(1, 100000) g",
    "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at)"
    " SELECT id, user_id, price, 'COMPLETED', now_ms() FROM reservations WHERE status = 'CONFIRMED' ORDER BY id",
    "INSERT INTO idempotency_keys (key, user_id, reservation_id, payment_id, created_at)"
    " SELECT 'key-' || id, user_id, reservation_id, id, now_ms() - id * 10000 FROM payments",
    "INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at, published_at)"
    " SELECT 'ev-' || g, 'points.charged', g, '{\"userId\":1}', now_ms(),"
    "  CASE WHEN g <= 99000 THEN now_ms() END FROM generate_series(1, 100000) g",
    "INSERT INTO processed_events (consumer, event_id, processed_at)"
    " SELECT 'sales_ledger', 'ev-' || g, now_ms() FROM generate_series(1, 50000) g",
    "INSERT INTO sales_ledger (event_id, payment_id, reservation_id, user_id, amount, recorded_at)"
    " SELECT 'ev-' || id, id, reservation_id, user_id, amount, now_ms() FROM payments",
    # 95,000 ACTIVE (admitted), then a line of 5,000 WAITING
    "INSERT INTO queue_tokens (token, user_id, status, last_poll_at, expires_at)"
    " SELECT 'tok-' || g, g, CASE WHEN g <= 95000 THEN 'ACTIVE' ELSE 'WAITING' END, now_ms(),"
    "  CASE WHEN g <= 95000 THEN now_ms() + 600000 END FROM generate_series(1, 100000) g ORDER BY g",
    "ANALYZE",
]


def seq_scans(plan: dict) -> list[str]:
    found = []
    if plan.get("Node Type") == "Seq Scan" and plan.get("Relation Name") in LARGE:
        found.append(plan["Relation Name"])
    for child in plan.get("Plans", []):
        found += seq_scans(child)
    return found


def literals(path: pathlib.Path) -> str:
    """The string literals of a C++ file, concatenated in order (comments skipped)."""
    text, out, i = path.read_text(), [], 0
    while i < len(text):
        if text.startswith("//", i):
            i = text.find("\n", i)
            i = len(text) if i < 0 else i
        elif text.startswith("/*", i):
            i = text.index("*/", i) + 2
        elif text[i] == "'":
            i = text.index("'", i + 2 if text[i + 1] == "\\" else i + 1) + 1
        elif text[i] == '"':
            j = i + 1
            while text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i + 1:j].replace('\\"', '"'))
            i = j + 1
        else:
            i += 1
    return "".join(out)


def test_query_table_matches_the_sources():
    """The table above is a copy: every piece of it (between macro expansions) must still be in
    the source file it names, or the table has drifted from the server."""
    stream = {p.name: literals(p) for p in list(SOURCES.glob("*.cpp")) + list(SOURCES.glob("*.hpp"))}
    drifted = []
    checks = [(f"macro in {source}", source, text) for text, source in MACROS] + \
             [(name, source, sql) for name, source, sql, _ in QUERIES]
    for name, source, sql in checks:
        inner = [m for m, _ in sorted(MACROS, key=lambda m: -len(m[0])) if m != sql]
        for piece in re.split("|".join(re.escape(m) for m in inner), sql):
            if piece.strip() and piece not in stream[source]:
                drifted.append(f"{name} ({source}): {piece!r}")
    assert not drifted, "queries no longer found verbatim in the sources:\n" + "\n".join(drifted)


@pytest.fixture(scope="module")
def filled(session_dir):
    from support import Server
    s = Server(workdir=session_dir / "explain", name="explain")
    s.start()  # applies the migrations
    assert s.stop() == 0
    conn = s.cluster.connect(s.database, timeout=120)
    cur = conn.cursor()
    for sql in FILL:
        cur.execute(sql)
    cur.execute("SELECT (SELECT count(*) FROM seats), (SELECT count(*) FROM reservations),"
                " (SELECT count(*) FROM outbox WHERE published_at IS NULL), (SELECT count(*) FROM queue_tokens)")
    assert tuple(cur.fetchone()) == (200000, 200000, 1000, 100000)
    yield conn
    conn.close()
    s.close()


@pytest.mark.parametrize("name,source,sql,args", QUERIES, ids=[q[0] for q in QUERIES])
def test_hot_query_uses_an_index(filled, name, source, sql, args):
    cur = filled.cursor()
    cur.execute("DEALLOCATE ALL")
    cur.execute(f"PREPARE hot AS {sql}")  # as the server does: a named statement, types inferred
    execute = f"EXECUTE hot({', '.join(args)})" if args else "EXECUTE hot"
    offenders = {}
    # The first five executions get custom plans; from the sixth PostgreSQL may pick the generic
    # plan (plan_cache_mode = auto). EXPLAIN EXECUTE counts as an execution, so the sixth
    # EXPLAIN shows what the server runs from then on.
    for attempt in range(1, 7):
        cur.execute(f"EXPLAIN (FORMAT JSON) {execute}")
        doc = cur.fetchone()[0]
        doc = json.loads(doc) if isinstance(doc, str) else doc
        scans = seq_scans(doc[0]["Plan"])
        if scans:
            cur.execute(f"EXPLAIN {execute}")
            offenders[f"execution {attempt}"] = (scans, "\n".join(r[0] for r in cur.fetchall()))
            break
    cur.execute("DEALLOCATE ALL")
    assert not offenders, (f"{name} (src/adapters/postgres/{source}) scans large tables sequentially:\n"
                           + "\n".join(f"-- {mode}: Seq Scan on {scans}\n{text}"
                                       for mode, (scans, text) in offenders.items()))


def reservation_scans(plan: dict) -> list[str]:
    """How each plan node reading `reservations` finds its rows: the index condition, or the
    node type when it has none."""
    found = []
    if plan.get("Relation Name") == "reservations":
        found.append(plan.get("Index Cond") or plan["Node Type"])
    for child in plan.get("Plans", []):
        found += reservation_scans(child)
    return found


@pytest.fixture(scope="module")
def freshly_seeded(session_dir):
    """A ticket opening's first minute: migrations applied, 200 schedules of 1000 seats just
    inserted, no reservation yet and no ANALYZE (autovacuum has not run)."""
    from support import Server
    s = Server(workdir=session_dir / "explain-fresh", name="explain_fresh")
    s.start()
    assert s.stop() == 0
    conn = s.cluster.connect(s.database, timeout=120)
    cur = conn.cursor()
    cur.execute("INSERT INTO concerts (title, created_at) VALUES ('opening', now_ms())")
    cur.execute("INSERT INTO schedules (concert_id, starts_at, total_seats)"
                " SELECT 1, now_ms() + g::bigint * 3600000, 1000 FROM generate_series(1, 200) g")
    cur.execute("INSERT INTO seats (schedule_id, seat_no, price)"
                " SELECT 1 + (g - 1) / 1000, 1 + (g - 1) % 1000, 1000 FROM generate_series(1, 200000) g")
    yield conn
    conn.close()
    s.close()


@pytest.mark.parametrize("name,sql", [("optimistic hold read", HOLD_READ), ("held reservation of a seat", HELD_OF_SEAT)])
def test_hold_reads_probe_the_seat_on_a_fresh_database(freshly_seeded, name, sql):
    """The plan PostgreSQL caches while `reservations` is empty is kept as the table fills: it
    must look the seat's reservation up by seat_id, never read every HELD one (a plain LEFT
    JOIN did: a Materialize of all HELD rows per hold, 5x slower within seconds)."""
    cur = freshly_seeded.cursor()
    cur.execute("SET plan_cache_mode = force_generic_plan")
    cur.execute(f"PREPARE fresh AS {sql}")
    cur.execute("EXPLAIN (FORMAT JSON) EXECUTE fresh(150, 7)")
    doc = cur.fetchone()[0]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    scans = reservation_scans(doc[0]["Plan"])
    cur.execute("EXPLAIN EXECUTE fresh(150, 7)")
    text = "\n".join(r[0] for r in cur.fetchall())
    cur.execute("DEALLOCATE ALL")
    cur.execute("RESET plan_cache_mode")
    assert scans and all("seat_id" in scan for scan in scans), f"{name}: reservations read by {scans}\n{text}"
