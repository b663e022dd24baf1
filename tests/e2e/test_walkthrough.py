"""The happy path of SPEC §3 end to end, and the catalog reads (concerts, schedules, seats)."""
from __future__ import annotations

import datetime as dt

from support import (ISO_Z, Api, expect, expect_error, is_int, new_user_id, now_utc, parse_iso,
                     schedule_spec)

HOLD_SECONDS_DEFAULT = 300


def assert_reservation_shape(body: dict, *, user: int, schedule_id: int, seat_no: int, price: int,
                             status: str) -> None:
    assert set(body) >= {"reservationId", "userId", "scheduleId", "seatNo", "price", "status", "expiresAt"}, body
    assert is_int(body["reservationId"]) and body["reservationId"] > 0, body
    assert body["userId"] == user and is_int(body["userId"]), body
    assert body["scheduleId"] == schedule_id and is_int(body["scheduleId"]), body
    assert body["seatNo"] == seat_no and is_int(body["seatNo"]), body
    assert body["price"] == price and is_int(body["price"]), body
    assert body["status"] == status, body
    parse_iso(body["expiresAt"])


def test_walkthrough(api: Api):
    s = api.s
    user = new_user_id()
    price = 1500
    concert_id, (schedule_id,) = api.create_concert([schedule_spec(days=20, seats=50, price=price)],
                                                    title="Walkthrough")

    # token: 201 new, WAITING or ACTIVE; polled until ACTIVE; issuing again returns it with 200
    r = api.issue_token(user)
    first = expect(r, 201)
    assert set(first) >= {"token", "userId", "status", "position", "estimatedWaitSeconds"}, first
    assert isinstance(first["token"], str) and len(first["token"]) >= 16, first
    assert first["userId"] == user and first["status"] in ("WAITING", "ACTIVE"), first
    token = api.active_token(user)
    assert token == first["token"]
    again = expect(api.issue_token(user), 200)
    assert again["token"] == token and again["userId"] == user and again["status"] == "ACTIVE", again
    current = expect(api.token_status(token), 200)
    assert current["userId"] == user and current["status"] == "ACTIVE", current
    assert set(current) >= {"userId", "status", "position", "estimatedWaitSeconds"}, current

    # concerts (no token needed)
    concerts = expect(s.get("/v1/concerts"), 200)["concerts"]
    assert {"concertId": concert_id, "title": "Walkthrough"} in [
        {"concertId": c["concertId"], "title": c["title"]} for c in concerts]

    # schedules
    out = expect(s.get(f"/v1/concerts/{concert_id}/schedules", token=token), 200)
    assert out["concertId"] == concert_id
    (sched,) = out["schedules"]
    assert sched["scheduleId"] == schedule_id
    assert sched["availableSeats"] == 50 and sched["totalSeats"] == 50, sched
    assert ISO_Z.match(sched["startsAt"]), sched

    # seats: ordered by seatNo, all AVAILABLE at the price set
    out = expect(s.get(f"/v1/schedules/{schedule_id}/seats", token=token), 200)
    assert out["scheduleId"] == schedule_id
    assert [x["seatNo"] for x in out["seats"]] == list(range(1, 51))
    assert all(x["price"] == price and x["status"] == "AVAILABLE" for x in out["seats"]), out["seats"]

    # hold
    before = now_utc()
    held = expect(api.hold(token, user, schedule_id, 7), 201)
    after = now_utc()
    assert_reservation_shape(held, user=user, schedule_id=schedule_id, seat_no=7, price=price, status="HELD")
    expires = parse_iso(held["expiresAt"])
    assert before + dt.timedelta(seconds=HOLD_SECONDS_DEFAULT - 3) <= expires <= after + dt.timedelta(
        seconds=HOLD_SECONDS_DEFAULT + 3), f"expiresAt {expires} is not about now + 300 s"
    reservation_id = held["reservationId"]

    sched = api.schedules(token, concert_id)[0]
    assert sched["availableSeats"] == 49 and sched["totalSeats"] == 50, sched
    statuses = api.seat_statuses(token, schedule_id)
    assert statuses[7] == "HELD"
    assert all(st == "AVAILABLE" for no, st in statuses.items() if no != 7)

    got = expect(api.reservation(reservation_id), 200)
    assert got == held, f"GET reservation {got} differs from the hold answer {held}"

    # charge, balance, history
    charged = expect(api.charge(user, 2000), 200)
    assert charged == {"userId": user, "balance": 2000}, charged
    assert api.balance(user) == 2000
    (entry,) = api.history(user)
    assert entry["type"] == "CHARGE" and entry["amount"] == 2000 and entry["balanceAfter"] == 2000, entry
    parse_iso(entry["at"])

    # pay
    before = now_utc()
    paid = expect(api.pay(token, user, reservation_id), 201)
    after = now_utc()
    assert set(paid) >= {"paymentId", "reservationId", "userId", "amount", "status", "paidAt"}, paid
    assert is_int(paid["paymentId"]) and paid["paymentId"] > 0
    assert paid["reservationId"] == reservation_id and paid["userId"] == user
    assert paid["amount"] == price and paid["status"] == "COMPLETED"
    paid_at = parse_iso(paid["paidAt"])
    assert before - dt.timedelta(seconds=2) <= paid_at <= after + dt.timedelta(seconds=2), paid_at

    # afterwards: reservation CONFIRMED, seat SOLD, balance reduced, USE entry, token ended
    got = expect(api.reservation(reservation_id), 200)
    assert_reservation_shape(got, user=user, schedule_id=schedule_id, seat_no=7, price=price, status="CONFIRMED")
    _, reader = api.user_with_token()
    assert api.seat_statuses(reader, schedule_id)[7] == "SOLD"
    assert api.schedules(reader, concert_id)[0]["availableSeats"] == 49
    assert api.balance(user) == 500
    entries = api.history(user)
    assert [(e["type"], e["amount"], e["balanceAfter"]) for e in entries] == [
        ("USE", price, 500), ("CHARGE", 2000, 2000)], entries
    expect_error(api.token_status(token), 401, "QUEUE_TOKEN_INVALID")
    expect_error(s.get(f"/v1/schedules/{schedule_id}/seats", token=token), 401, "QUEUE_TOKEN_INVALID")

    # a new token for the user is a new one
    fresh = expect(api.issue_token(user), 201)
    assert fresh["token"] != token


def test_concerts_list_shape(api: Api):
    title = "List shape ✓ 콘서트"
    concert_id, _ = api.create_concert(title=title)
    body = expect(api.s.get("/v1/concerts"), 200)
    assert isinstance(body.get("concerts"), list), body
    ids = [c["concertId"] for c in body["concerts"]]
    assert len(ids) == len(set(ids)), "a concert listed twice"
    for c in body["concerts"]:
        assert is_int(c["concertId"]) and isinstance(c["title"], str), c
    assert {"concertId": concert_id, "title": title} in [
        {"concertId": c["concertId"], "title": c["title"]} for c in body["concerts"]]


def test_schedules_future_only(api: Api):
    past = {"startsAt": "2020-05-01T18:00:00Z", "seatCount": 10, "price": 100}
    far = schedule_spec(days=60, seats=12, price=100)
    near = schedule_spec(days=2, seats=8, price=100)
    concert_id, (past_id, far_id, near_id) = api.create_concert([past, far, near])
    assert len({past_id, far_id, near_id}) == 3
    _, token = api.user_with_token()
    out = expect(api.s.get(f"/v1/concerts/{concert_id}/schedules", token=token), 200)
    assert out["concertId"] == concert_id
    by_id = {x["scheduleId"]: x for x in out["schedules"]}
    assert set(by_id) == {far_id, near_id}, f"listed {sorted(by_id)}; past schedule {past_id} must not be"
    for sid, spec in ((far_id, far), (near_id, near)):
        x = by_id[sid]
        assert parse_iso(x["startsAt"]) == parse_iso(spec["startsAt"]), (x, spec)
        assert x["totalSeats"] == spec["seatCount"] and x["availableSeats"] == spec["seatCount"], x
        assert all(is_int(x[k]) for k in ("scheduleId", "availableSeats", "totalSeats")), x


def test_schedules_ordered_by_start(api: Api):
    """SPEC is silent on the order; the dates list of a concert reads soonest first (the schema's
    schedules_by_concert index exists for it)."""
    specs = [schedule_spec(days=d, seats=3, price=10) for d in (9, 3, 27, 1)]
    concert_id, ids = api.create_concert(specs)
    _, token = api.user_with_token()
    listed = api.schedules(token, concert_id)
    starts = [parse_iso(x["startsAt"]) for x in listed]
    assert starts == sorted(starts), f"schedules not in start order: {[x['startsAt'] for x in listed]}"
    assert [x["scheduleId"] for x in listed] == [ids[3], ids[1], ids[0], ids[2]]


def test_starts_at_with_offset_is_read_back_in_utc(api: Api):
    concert_id, (sid,) = api.create_concert([{"startsAt": "2031-03-04T19:30:00+09:00", "seatCount": 2,
                                              "price": 5}])
    _, token = api.user_with_token()
    (x,) = api.schedules(token, concert_id)
    assert x["scheduleId"] == sid
    assert x["startsAt"] in ("2031-03-04T10:30:00Z", "2031-03-04T10:30:00.000Z"), x


def test_seat_map_shape(api: Api):
    sid = api.new_schedule(seats=7, price=4321)
    _, token = api.user_with_token()
    out = expect(api.s.get(f"/v1/schedules/{sid}/seats", token=token), 200)
    assert out["scheduleId"] == sid
    assert [x["seatNo"] for x in out["seats"]] == [1, 2, 3, 4, 5, 6, 7]
    for x in out["seats"]:
        assert set(x) >= {"seatNo", "price", "status"}, x
        assert is_int(x["seatNo"]) and x["price"] == 4321 and x["status"] == "AVAILABLE", x


def test_seat_map_statuses_after_holds_and_sale(api: Api):
    sid = api.new_schedule(seats=12, price=300)
    user, token = api.user_with_token()
    for seat in (12, 3, 8):
        api.held(token, user, sid, seat)
    r = api.held(token, user, sid, 5)
    api.charged(user, 300)
    expect(api.pay(token, user, r["reservationId"]), 201)
    _, reader = api.user_with_token()
    seats = api.seats(reader, sid)
    assert [x["seatNo"] for x in seats] == list(range(1, 13)), "not ordered by seatNo"
    expected = {n: "AVAILABLE" for n in range(1, 13)}
    expected.update({12: "HELD", 3: "HELD", 8: "HELD", 5: "SOLD"})
    assert {x["seatNo"]: x["status"] for x in seats} == expected


def test_unknown_concert_and_schedule(api: Api):
    _, token = api.user_with_token()
    expect_error(api.s.get("/v1/concerts/987654321/schedules", token=token), 404, "NOT_FOUND")
    expect_error(api.s.get("/v1/schedules/987654321/seats", token=token), 404, "NOT_FOUND")


def test_concert_without_future_schedules_lists_none(api: Api):
    concert_id, _ = api.create_concert([{"startsAt": "2021-01-01T00:00:00Z", "seatCount": 5, "price": 10}])
    _, token = api.user_with_token()
    out = expect(api.s.get(f"/v1/concerts/{concert_id}/schedules", token=token), 200)
    assert out == {"concertId": concert_id, "schedules": []}, out
