"""The MariaDB schema itself (migrations/mysql/*.sql, applied from the files: what the binary
embeds), no concertd: the guards the stores lean on hold at the database (docs/mysql.md
"Schema").

- one live reservation per seat: a second HELD (or CONFIRMED) reservation of a seat is refused
  with 1062 naming reservations_one_live_per_seat, any number of EXPIRED ones are not, and an
  EXPIRED one cannot come back to life beside a live one;
- the CHECK constraints and foreign keys refuse what PostgreSQL's refuse;
- keys compare byte-wise (utf8mb4_bin): two Idempotency-Keys that differ in case are two keys;
- the lock fence is one row, bumped through LAST_INSERT_ID(), and the OK packet carries it;
- the whole file can run again (a start killed halfway through a migration finishes it).
"""
from __future__ import annotations

import pathlib

import pytest

import support

pytestmark = [pytest.mark.mariadb]

MIGRATIONS = pathlib.Path(__file__).resolve().parents[2] / "migrations" / "mysql"
NOW_MS = "CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
ER_DUP_ENTRY, ER_NO_REFERENCED_ROW_2 = 1062, 1452
ER_CHECK = {4025, 3819}  # MariaDB's ER_CONSTRAINT_FAILED, MySQL 8's ER_CHECK_CONSTRAINT_VIOLATED


def apply(db_server, database: str) -> None:
    import pymysql
    conn = pymysql.connect(host="127.0.0.1", port=db_server.port, user="concertd", password="concertd",
                           database=database, autocommit=True,
                           client_flag=pymysql.constants.CLIENT.MULTI_STATEMENTS)
    try:
        with conn.cursor() as cur:
            for path in sorted(MIGRATIONS.glob("*.sql")):
                cur.execute(path.read_text())
                while cur.nextset():
                    pass
    finally:
        conn.close()


@pytest.fixture
def db(db_server):
    database = support.new_database_name("schema")
    db_server.create_database(database)
    apply(db_server, database)
    conn = db_server.connect(database)
    yield conn
    conn.close()
    db_server.drop_database(database)


def run(conn, sql: str, params=()):
    with conn.cursor() as cur:
        cur.execute(sql, params or None)
        return cur.fetchall() if cur.description else cur.rowcount


def refused(conn, sql: str, params=()) -> int:
    import pymysql
    with pytest.raises(pymysql.err.MySQLError) as caught:
        run(conn, sql, params)
    return caught.value.args[0]


def hold(status: str, user: int, seat: int) -> str:
    return ("INSERT INTO reservations (user_id, schedule_id, seat_id, seat_no, price, status, created_at,"
            f" expires_at) VALUES ({user}, 1, {seat}, {seat}, 1000, '{status}', {NOW_MS}, {NOW_MS} + 300000)")


def test_one_live_reservation_per_seat(db):
    run(db, f"INSERT INTO concerts (title, created_at) VALUES ('Schema ♪', {NOW_MS})")
    run(db, f"INSERT INTO schedules (concert_id, starts_at, total_seats) VALUES (1, {NOW_MS} + 86400000, 2)")
    run(db, "INSERT INTO seats (schedule_id, seat_no, price) VALUES (1, 1, 1000), (1, 2, 1000)")
    for user in range(10):
        run(db, hold("EXPIRED", user, 1))  # any number of expired ones
    run(db, hold("HELD", 100, 1))
    import pymysql
    with pytest.raises(pymysql.err.IntegrityError) as caught:
        run(db, hold("HELD", 101, 1))
    assert caught.value.args[0] == ER_DUP_ENTRY and "reservations_one_live_per_seat" in caught.value.args[1]
    assert refused(db, hold("CONFIRMED", 102, 1)) == ER_DUP_ENTRY
    run(db, "UPDATE reservations SET status = 'CONFIRMED' WHERE user_id = 100")
    assert refused(db, hold("HELD", 103, 1)) == ER_DUP_ENTRY
    # an expired one back to HELD beside the sale
    assert refused(db, "UPDATE reservations SET status = 'HELD' WHERE user_id = 0") == ER_DUP_ENTRY
    # seat 2: held, expired, held again
    run(db, hold("HELD", 200, 2))
    run(db, "UPDATE reservations SET status = 'EXPIRED' WHERE user_id = 200")
    run(db, hold("HELD", 201, 2))
    rows = run(db, "SELECT seat_id, status, count(*), count(live_seat_id) FROM reservations"
                   " GROUP BY seat_id, status ORDER BY seat_id, status")
    assert [tuple(r) for r in rows] == [(1, "CONFIRMED", 1, 1), (1, "EXPIRED", 10, 0),
                                        (2, "EXPIRED", 1, 0), (2, "HELD", 1, 1)]


def test_checks_foreign_keys_and_byte_wise_keys(db):
    run(db, f"INSERT INTO concerts (title, created_at) VALUES ('x', {NOW_MS})")
    assert refused(db, "INSERT INTO schedules (concert_id, starts_at, total_seats) VALUES (1, 0, 0)") in ER_CHECK
    assert refused(db, "INSERT INTO schedules (concert_id, starts_at, total_seats) VALUES (99, 0, 1)") \
        == ER_NO_REFERENCED_ROW_2
    # (the refused inserts used up ids, as a sequence's nextval does)
    run(db, "INSERT INTO schedules (id, concert_id, starts_at, total_seats) VALUES (1, 1, 0, 1)")
    assert refused(db, "INSERT INTO seats (schedule_id, seat_no, price, status) VALUES (1, 1, 1, 'FREE')") in ER_CHECK
    assert refused(db, "INSERT INTO wallets (user_id, balance) VALUES (1, 100000001)") in ER_CHECK
    assert refused(db, "INSERT INTO wallet_entries (user_id, type, amount, balance_after, at)"
                       " VALUES (1, 'GIFT', 1, 1, 0)") in ER_CHECK
    run(db, "INSERT INTO seats (id, schedule_id, seat_no, price) VALUES (1, 1, 1, 10)")
    run(db, hold("HELD", 1, 1))
    run(db, "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at) VALUES (1, 1, 10, 'COMPLETED', 0)")
    assert refused(db, "INSERT INTO payments (reservation_id, user_id, amount, status, paid_at)"
                       " VALUES (1, 1, 10, 'COMPLETED', 0)") == ER_DUP_ENTRY  # paid exactly once
    run(db, "INSERT INTO idempotency_keys (idem_key, user_id, reservation_id, payment_id, created_at)"
            " VALUES ('Key-A', 1, 1, 1, 0), ('key-a', 1, 1, 1, 0)")  # two keys: case matters
    assert refused(db, "INSERT INTO idempotency_keys (idem_key, user_id, reservation_id, payment_id, created_at)"
                       " VALUES ('Key-A', 1, 1, 1, 0)") == ER_DUP_ENTRY
    assert run(db, "SELECT count(*) FROM idempotency_keys WHERE idem_key = 'KEY-A'")[0][0] == 0
    run(db, "INSERT INTO queue_tokens (token, user_id, status, last_poll_at) VALUES ('ab', 1, 'WAITING', 0)")
    assert refused(db, "INSERT INTO queue_tokens (token, user_id, status, last_poll_at)"
                       " VALUES ('cd', 1, 'WAITING', 0)") == ER_DUP_ENTRY  # one token per user
    run(db, "INSERT INTO queue_tokens (token, user_id, status, last_poll_at) VALUES ('AB', 2, 'WAITING', 0)")
    assert [r[0] for r in run(db, "SELECT token FROM queue_tokens ORDER BY seq")] == ["ab", "AB"]


def test_lock_fence_through_last_insert_id(db):
    with db.cursor() as cur:
        fences = []
        for _ in range(3):
            assert cur.execute("UPDATE lock_fence SET value = LAST_INSERT_ID(value + 1) WHERE id = 1") == 1
            fences.append(cur.lastrowid)  # the OK packet's insert id: no second round trip
        cur.execute("SELECT LAST_INSERT_ID(), value FROM lock_fence")
        assert cur.fetchone() == (3, 3)
    assert fences == [1, 2, 3]
    assert run(db, "SELECT count(*) FROM lock_fence")[0][0] == 1
    assert run(db, "SELECT id, budget, refilled_at FROM queue_admission") == ((1, 0.0, 0),)


def test_the_migration_runs_again(db_server, db):
    database = db.db.decode() if isinstance(db.db, bytes) else db.db
    run(db, f"INSERT INTO concerts (title, created_at) VALUES ('kept', {NOW_MS})")
    apply(db_server, database)  # as after a start killed halfway through it
    assert run(db, "SELECT title FROM concerts") == (("kept",),)
    assert run(db, "SELECT count(*) FROM lock_fence")[0][0] == 1
    assert run(db, "SELECT count(*) FROM queue_admission")[0][0] == 1
