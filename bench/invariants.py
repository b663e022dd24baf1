"""What must hold in a database after a bench run that wrote to it (SPEC §2), checked with SQL
on the schema of migrations/{sqlite,postgres}/ (the same tables and columns on both).

Each check is a query that counts violations; a run with any count above zero fails the bench.
Times are bigint milliseconds; `now` is passed in (the bench runs on the database's machine, and
no hold of a run is anywhere near its expiry when the check runs)."""
from __future__ import annotations

import sqlite3
import time

from stack import Postgres

CHECKS = {
    "a seat with two live reservations (holds or sales)":
        "SELECT count(*) FROM (SELECT seat_id FROM reservations"
        " WHERE status = 'CONFIRMED' OR (status = 'HELD' AND expires_at > {now})"
        " GROUP BY seat_id HAVING count(*) > 1) x",
    "a SOLD seat without exactly one CONFIRMED reservation":
        "SELECT count(*) FROM seats s WHERE s.status = 'SOLD' AND"
        " (SELECT count(*) FROM reservations r WHERE r.seat_id = s.id AND r.status = 'CONFIRMED') <> 1",
    "a CONFIRMED reservation whose seat is not SOLD":
        "SELECT count(*) FROM reservations r JOIN seats s ON s.id = r.seat_id"
        " WHERE r.status = 'CONFIRMED' AND s.status <> 'SOLD'",
    "a live hold whose seat is not HELD":
        "SELECT count(*) FROM reservations r JOIN seats s ON s.id = r.seat_id"
        " WHERE r.status = 'HELD' AND r.expires_at > {now} AND s.status <> 'HELD'",
    "a HELD seat (unexpired) without its live hold":
        "SELECT count(*) FROM seats s WHERE s.status = 'HELD' AND s.hold_expires_at > {now} AND NOT EXISTS"
        " (SELECT 1 FROM reservations r WHERE r.seat_id = s.id AND r.status = 'HELD' AND r.expires_at > {now})",
    "a CONFIRMED reservation without exactly one COMPLETED payment of its price by its user":
        "SELECT count(*) FROM reservations r WHERE r.status = 'CONFIRMED' AND"
        " (SELECT count(*) FROM payments p WHERE p.reservation_id = r.id AND p.status = 'COMPLETED'"
        "  AND p.amount = r.price AND p.user_id = r.user_id) <> 1",
    "a payment of a reservation that is not CONFIRMED":
        "SELECT count(*) FROM payments p JOIN reservations r ON r.id = p.reservation_id"
        " WHERE r.status <> 'CONFIRMED'",
    "a wallet below 0, or not equal to its last history balanceAfter, or to its charges - uses":
        "SELECT count(*) FROM wallets w WHERE w.balance < 0"
        " OR w.balance <> COALESCE((SELECT e.balance_after FROM wallet_entries e WHERE e.user_id = w.user_id"
        "    ORDER BY e.id DESC LIMIT 1), 0)"
        " OR w.balance <> COALESCE((SELECT SUM(CASE WHEN e.type = 'CHARGE' THEN e.amount ELSE -e.amount END)"
        "    FROM wallet_entries e WHERE e.user_id = w.user_id), 0)",
    "a user whose USE entries differ from the payments they made":
        "SELECT count(*) FROM (SELECT user_id FROM payments UNION SELECT user_id FROM wallet_entries"
        " WHERE type = 'USE') x WHERE"
        " COALESCE((SELECT SUM(amount) FROM payments p WHERE p.user_id = x.user_id), 0) <>"
        " COALESCE((SELECT SUM(amount) FROM wallet_entries e WHERE e.user_id = x.user_id AND e.type = 'USE'), 0)",
    "outbox: reservation.held events <> reservations":
        "SELECT abs((SELECT count(*) FROM outbox WHERE type = 'reservation.held')"
        " - (SELECT count(*) FROM reservations))",
    "outbox: points.charged events <> CHARGE entries":
        "SELECT abs((SELECT count(*) FROM outbox WHERE type = 'points.charged')"
        " - (SELECT count(*) FROM wallet_entries WHERE type = 'CHARGE'))",
    "outbox: payment.completed events <> payments":
        "SELECT abs((SELECT count(*) FROM outbox WHERE type = 'payment.completed')"
        " - (SELECT count(*) FROM payments))",
}


class Database:
    """A read-only view of one stack's database: SQLite file or PostgreSQL URL."""

    def __init__(self, url: str):
        self.url = url

    def scalar(self, sql: str) -> int:
        if self.url.startswith("sqlite:"):
            path = self.url[len("sqlite:"):]
            with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as db:
                return int(db.execute(sql).fetchone()[0] or 0)
        return int(Postgres.psql(self.url, sql)[0][0] or 0)


def check(url: str, burst_schedules=(), burst_seats: int = 50) -> dict[str, int]:
    """Violations found, by what was violated (empty when all holds)."""
    db = Database(url)
    now = int(time.time() * 1000)
    broken = {}
    for what, sql in CHECKS.items():
        count = db.scalar(sql.format(now=now))
        if count:
            broken[what] = count
    for schedule in burst_schedules:
        # A burst schedule: every seat taken, each by exactly one live hold.
        live = db.scalar(f"SELECT count(*) FROM reservations WHERE schedule_id = {int(schedule)}"
                         f" AND status = 'HELD' AND expires_at > {now}")
        held = db.scalar(f"SELECT count(*) FROM seats WHERE schedule_id = {int(schedule)}"
                         f" AND status = 'HELD' AND hold_expires_at > {now}")
        if live != burst_seats or held != burst_seats:
            broken[f"burst schedule {schedule}: {live} live holds, {held} HELD seats (want {burst_seats})"] = 1
    return broken
