"""Seat holds: refusals, and expiry by the server's clock (SPEC §2 Seat status, Reservation;
docs/api-decisions.md "Reservations and seats", "Payments")."""
from __future__ import annotations

import datetime as dt
import time

import pytest

from support import Api, expect, expect_error, now_utc, parse_iso, poll, schedule_spec

HOLD_SECONDS = 2


def test_seat_taken_is_unavailable(api: Api):
    sid = api.new_schedule(seats=4, price=100)
    a, ta = api.user_with_token()
    b, tb = api.user_with_token()
    first = api.held(ta, a, sid, 2)
    expect_error(api.hold(tb, b, sid, 2), 409, "SEAT_UNAVAILABLE")
    expect_error(api.hold(ta, a, sid, 2), 409, "SEAT_UNAVAILABLE")  # the holder again
    assert api.seat_statuses(tb, sid) == {1: "AVAILABLE", 2: "HELD", 3: "AVAILABLE", 4: "AVAILABLE"}
    assert expect(api.reservation(first["reservationId"]), 200)["status"] == "HELD"
    # B can hold another seat; one user may hold several
    api.held(tb, b, sid, 3)
    api.held(ta, a, sid, 4)


def test_sold_seat_is_unavailable(api: Api):
    sid = api.new_schedule(seats=2, price=100)
    a, ta = api.user_with_token()
    rid = api.held(ta, a, sid, 1)["reservationId"]
    api.charged(a, 100)
    expect(api.pay(ta, a, rid), 201)
    b, tb = api.user_with_token()
    expect_error(api.hold(tb, b, sid, 1), 409, "SEAT_UNAVAILABLE")
    assert api.seat_statuses(tb, sid)[1] == "SOLD"


def test_unknown_schedule_or_seat(api: Api):
    sid = api.new_schedule(seats=50, price=100)
    user, token = api.user_with_token()
    expect_error(api.hold(token, user, 987654321, 1), 404, "NOT_FOUND")
    expect_error(api.hold(token, user, sid, 51), 404, "NOT_FOUND")
    expect_error(api.hold(token, user, sid, 1_000_000), 404, "NOT_FOUND")
    assert set(api.seat_statuses(token, sid).values()) == {"AVAILABLE"}


def test_started_schedule_is_unavailable(api: Api):
    concert_id, (past_id,) = api.create_concert([{"startsAt": "2020-02-02T20:00:00Z", "seatCount": 3, "price": 10}])
    user, token = api.user_with_token()
    expect_error(api.hold(token, user, past_id, 1), 409, "SEAT_UNAVAILABLE")
    api.charged(user, 10)
    assert api.balance(user) == 10  # nothing was held, so nothing to pay


@pytest.fixture(scope="module")
def short_hold(pool):
    return pool.get(CONCERTD_HOLD_SECONDS=HOLD_SECONDS)


def hold_with_due(api: Api, token: str, user: int, sid: int, seat: int) -> tuple[dict, dt.datetime]:
    """Holds a seat; returns the answer and the latest moment the hold can end by the server's
    clock (expiresAt, or the answer's arrival + the hold time should expiresAt be rounded down)."""
    body = api.held(token, user, sid, seat)
    due = max(parse_iso(body["expiresAt"]), now_utc() + dt.timedelta(seconds=HOLD_SECONDS))
    return body, due


def wait_until(t: dt.datetime, extra: float) -> None:
    delay = (t - now_utc()).total_seconds() + extra
    if delay > 0:
        time.sleep(delay)


@pytest.mark.slow
def test_hold_expires_at_once_for_every_read(short_hold):
    api = Api(short_hold)
    concert_id, (sid,) = api.create_concert([schedule_spec(seats=3, price=500)])
    a, ta = api.user_with_token()
    b, tb = api.user_with_token()
    api.charged(a, 1000)
    before = now_utc()
    held, due = hold_with_due(api, ta, a, sid, 1)
    expires = parse_iso(held["expiresAt"])
    assert before + dt.timedelta(seconds=HOLD_SECONDS - 1) <= expires <= now_utc() + dt.timedelta(
        seconds=HOLD_SECONDS + 1), f"expiresAt {held['expiresAt']} is not about now + {HOLD_SECONDS} s"
    rid = held["reservationId"]
    # still held until then
    expect_error(api.hold(tb, b, sid, 1), 409, "SEAT_UNAVAILABLE")
    assert api.schedules(tb, concert_id)[0]["availableSeats"] == 2

    # just past expiresAt every read shows it free, sweeper or not
    wait_until(due, 0.3)
    assert api.seat_statuses(tb, sid)[1] == "AVAILABLE"
    assert expect(api.reservation(rid), 200)["status"] == "EXPIRED"
    assert api.schedules(tb, concert_id)[0]["availableSeats"] == 3

    # paying the expired hold is refused and changes nothing
    expect_error(api.pay(ta, a, rid), 409, "RESERVATION_EXPIRED")
    assert api.balance(a) == 1000
    assert [e["type"] for e in api.history(a)] == ["CHARGE"]

    # another user can hold the seat now
    again = api.held(tb, b, sid, 1)
    assert again["reservationId"] != rid and again["userId"] == b
    assert api.seat_statuses(ta, sid)[1] == "HELD"
    assert expect(api.reservation(rid), 200)["status"] == "EXPIRED", "the old hold came back"
    expect_error(api.pay(ta, a, rid), 409, "RESERVATION_EXPIRED")
    assert api.balance(a) == 1000


@pytest.mark.slow
def test_expired_hold_can_be_held_again_by_same_user(short_hold):
    api = Api(short_hold)
    sid = api.new_schedule(seats=1, price=10)
    a, ta = api.user_with_token()
    first, due = hold_with_due(api, ta, a, sid, 1)
    wait_until(due, 0.3)
    second = api.held(ta, a, sid, 1)
    assert second["reservationId"] != first["reservationId"]
    assert expect(api.reservation(first["reservationId"]), 200)["status"] == "EXPIRED"
    assert expect(api.reservation(second["reservationId"]), 200)["status"] == "HELD"


@pytest.mark.slow
def test_expired_before_insufficient_balance(short_hold):
    api = Api(short_hold)
    sid = api.new_schedule(seats=1, price=10)
    a, ta = api.user_with_token()
    held, due = hold_with_due(api, ta, a, sid, 1)
    expect_error(api.pay(ta, a, held["reservationId"]), 409, "INSUFFICIENT_BALANCE")
    wait_until(due, 0.3)
    expect_error(api.pay(ta, a, held["reservationId"]), 409, "RESERVATION_EXPIRED")


@pytest.mark.slow
def test_paid_before_expiry_stays_confirmed(short_hold):
    api = Api(short_hold)
    sid = api.new_schedule(seats=1, price=10)
    a, ta = api.user_with_token()
    held, due = hold_with_due(api, ta, a, sid, 1)
    api.charged(a, 10)
    expect(api.pay(ta, a, held["reservationId"]), 201)
    wait_until(due, 0.5)
    assert expect(api.reservation(held["reservationId"]), 200)["status"] == "CONFIRMED"
    b, tb = api.user_with_token()
    assert api.seat_statuses(tb, sid)[1] == "SOLD"
    expect_error(api.hold(tb, b, sid, 1), 409, "SEAT_UNAVAILABLE")
    # already confirmed comes before expired in the precedence of payment refusals
    ta2 = api.active_token(a)
    expect_error(api.pay(ta2, a, held["reservationId"]), 409, "RESERVATION_NOT_PAYABLE")
    assert api.balance(a) == 0


@pytest.mark.slow
def test_expired_holds_are_resolved_once_with_an_event(short_hold):
    """The sweeper (or the next hold) resolves each passed hold to EXPIRED exactly once, and each
    resolution publishes one reservation.expired event through the outbox."""
    api = Api(short_hold)
    sid = api.new_schedule(seats=3, price=10)
    a, ta = api.user_with_token()
    rids = [hold_with_due(api, ta, a, sid, seat) for seat in (1, 2, 3)]
    wait_until(max(due for _, due in rids), 0.1)
    ids = tuple(body["reservationId"] for body, _ in rids)

    def resolved():
        rows = short_hold.db_query(
            f"SELECT status, resolved_at FROM reservations WHERE id IN ({','.join('?' * len(ids))})", ids)
        return all(r["status"] == "EXPIRED" and r["resolved_at"] is not None for r in rows)

    poll(resolved, timeout=15, interval=0.2, what="passed holds resolved to EXPIRED in the database")

    def events_published():
        (row,) = short_hold.db_query(
            "SELECT (SELECT count(*) FROM reservations WHERE status = 'EXPIRED') AS expired, "
            "(SELECT count(*) FROM outbox WHERE type = 'reservation.expired') AS events, "
            "(SELECT count(*) FROM outbox WHERE published_at IS NULL) AS unpublished")
        return row["expired"] == row["events"] and row["unpublished"] == 0 and row

    poll(events_published, timeout=10, interval=0.2, what="one published reservation.expired event per expiry")
