"""POST /v1/admin/concerts: the key, and the limits of docs/api-decisions.md ("Admin")."""
from __future__ import annotations

import copy
import json

import pytest

from support import ADMIN_KEY, Api, expect, expect_error, parse_iso, schedule_spec

VALID = {"title": "Admin test", "schedules": [{"startsAt": "2032-01-02T03:04:05Z", "seatCount": 3, "price": 700}]}


def concert_count(api: Api) -> int:
    return len(expect(api.s.get("/v1/concerts"), 200)["concerts"])


@pytest.mark.parametrize("key", [None, "", "wrong-key", ADMIN_KEY + "x", ADMIN_KEY.upper(), ADMIN_KEY[:-1]])
def test_admin_key_missing_or_wrong(api: Api, key):
    before = concert_count(api)
    headers = {} if key is None else {"Admin-Key": key}
    r = api.s.post("/v1/admin/concerts", VALID, headers=headers)
    expect_error(r, 401, "ADMIN_KEY_INVALID")
    assert concert_count(api) == before


def test_admin_refuses_every_call_without_configured_key(make_server):
    s = make_server(CONCERTD_ADMIN_KEY=None)
    for key in (None, "", ADMIN_KEY, "anything"):
        headers = {} if key is None else {"Admin-Key": key}
        expect_error(s.post("/v1/admin/concerts", VALID, headers=headers), 401, "ADMIN_KEY_INVALID")
    assert expect(s.get("/v1/concerts"), 200)["concerts"] == []


def mutate(path: tuple, value):
    body = copy.deepcopy(VALID)
    target = body
    for step in path[:-1]:
        target = target[step]
    if value == "<delete>":
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return body


SCHEDULE = ("schedules", 0)
BAD_BODIES = {
    "title missing": mutate(("title",), "<delete>"),
    "title empty": mutate(("title",), ""),
    "title 201 chars": mutate(("title",), "t" * 201),
    "title number": mutate(("title",), 5),
    "title null": mutate(("title",), None),
    "schedules missing": mutate(("schedules",), "<delete>"),
    "schedules empty": mutate(("schedules",), []),
    "schedules 101": mutate(("schedules",), [schedule_spec(5, 1, 1)] * 101),
    "schedules object": mutate(("schedules",), {"startsAt": "2032-01-02T03:04:05Z", "seatCount": 3, "price": 7}),
    "schedule not object": mutate(("schedules",), [5]),
    "startsAt missing": mutate(SCHEDULE + ("startsAt",), "<delete>"),
    "startsAt words": mutate(SCHEDULE + ("startsAt",), "next friday"),
    "startsAt no zone": mutate(SCHEDULE + ("startsAt",), "2032-01-02T03:04:05"),
    "startsAt date only": mutate(SCHEDULE + ("startsAt",), "2032-01-02"),
    "startsAt bad month": mutate(SCHEDULE + ("startsAt",), "2032-13-02T03:04:05Z"),
    "startsAt bad day": mutate(SCHEDULE + ("startsAt",), "2032-02-30T03:04:05Z"),
    "startsAt number": mutate(SCHEDULE + ("startsAt",), 1956528000),
    "seatCount missing": mutate(SCHEDULE + ("seatCount",), "<delete>"),
    "seatCount 0": mutate(SCHEDULE + ("seatCount",), 0),
    "seatCount 1001": mutate(SCHEDULE + ("seatCount",), 1001),
    "seatCount -1": mutate(SCHEDULE + ("seatCount",), -1),
    "seatCount string": mutate(SCHEDULE + ("seatCount",), "10"),
    "seatCount float": mutate(SCHEDULE + ("seatCount",), 10.5),
    "price missing": mutate(SCHEDULE + ("price",), "<delete>"),
    "price 0": mutate(SCHEDULE + ("price",), 0),
    "price 10000001": mutate(SCHEDULE + ("price",), 10_000_001),
    "price string": mutate(SCHEDULE + ("price",), "700"),
    "price float": mutate(SCHEDULE + ("price",), 700.5),
    "price huge": mutate(SCHEDULE + ("price",), 10**20),
    "body array": [VALID],
    "body null": None,
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
def test_admin_invalid_body_changes_nothing(api: Api, name):
    before = concert_count(api)
    r = api.s.post("/v1/admin/concerts", data=json.dumps(BAD_BODIES[name]).encode(), admin=True,
                   headers={"Content-Type": "application/json"})
    expect_error(r, 400, "VALIDATION_FAILED")
    assert concert_count(api) == before


def test_admin_invalid_json(api: Api):
    before = concert_count(api)
    r = api.s.post("/v1/admin/concerts", data=b'{"title": "x", "schedules": [', admin=True,
                   headers={"Content-Type": "application/json"})
    expect_error(r, 400, "INVALID_JSON")
    assert concert_count(api) == before


def test_admin_one_bad_schedule_creates_nothing(api: Api):
    before = concert_count(api)
    body = {"title": "Half bad", "schedules": [schedule_spec(5, 3, 10), schedule_spec(6, 0, 10)]}
    expect_error(api.s.post("/v1/admin/concerts", body, admin=True), 400, "VALIDATION_FAILED")
    assert concert_count(api) == before


def test_admin_limits_accepted(api: Api):
    body = {"title": "T" * 200,
            "schedules": [schedule_spec(1 + i, 1, 1) for i in range(99)] + [schedule_spec(200, 1000, 10_000_000)]}
    r = api.s.post("/v1/admin/concerts", body, admin=True)
    out = expect(r, 201)
    assert len(out["scheduleIds"]) == 100 and len(set(out["scheduleIds"])) == 100
    _, token = api.user_with_token()
    seats = api.seats(token, out["scheduleIds"][-1])
    assert len(seats) == 1000 and seats[-1]["seatNo"] == 1000 and seats[0]["price"] == 10_000_000
    titles = {c["concertId"]: c["title"] for c in expect(api.s.get("/v1/concerts"), 200)["concerts"]}
    assert titles[out["concertId"]] == "T" * 200


def test_admin_title_limit_counts_characters(api: Api):
    """1–200 characters, not bytes: 200 Hangul syllables (600 bytes of UTF-8) fit, 201 do not."""
    body = {"title": "가" * 200, "schedules": [schedule_spec(5, 1, 10)]}
    out = expect(api.s.post("/v1/admin/concerts", body, admin=True), 201)
    titles = {c["concertId"]: c["title"] for c in expect(api.s.get("/v1/concerts"), 200)["concerts"]}
    assert titles[out["concertId"]] == "가" * 200
    body["title"] = "가" * 201
    expect_error(api.s.post("/v1/admin/concerts", body, admin=True), 400, "VALIDATION_FAILED")


def test_admin_starts_at_with_fraction(api: Api):
    concert_id, (sid,) = api.create_concert([{"startsAt": "2033-06-07T08:09:10.250Z", "seatCount": 1, "price": 1}])
    _, token = api.user_with_token()
    (listed,) = api.schedules(token, concert_id)
    assert listed["scheduleId"] == sid
    assert parse_iso(listed["startsAt"]).replace(microsecond=0) == parse_iso("2033-06-07T08:09:10Z")
