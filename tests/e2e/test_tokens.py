"""Queue-token enforcement on the gated endpoints and the order of checks of
docs/api-decisions.md ("Order of checks on a gated endpoint"). Waiting tokens (403
QUEUE_NOT_ACTIVE) need a slow queue: see test_queue.py."""
from __future__ import annotations

import secrets

import pytest

from support import Api, expect, expect_error, new_user_id


@pytest.fixture
def world(api: Api):
    """Two users with ACTIVE tokens, a schedule, and a HELD reservation of user B."""
    sid = api.new_schedule(seats=10, price=100)
    a, ta = api.user_with_token()
    b, tb = api.user_with_token()
    rb = api.held(tb, b, sid, 1)["reservationId"]
    return dict(sid=sid, a=a, ta=ta, b=b, tb=tb, rb=rb)


def gated_requests(w):
    """(method, path, body) of every endpoint that needs an ACTIVE token, valid for user A."""
    return [
        ("GET", "/v1/concerts/1/schedules", None),
        ("GET", f"/v1/schedules/{w['sid']}/seats", None),
        ("POST", "/v1/reservations", {"userId": w["a"], "scheduleId": w["sid"], "seatNo": 2}),
        ("POST", "/v1/payments", {"userId": w["a"], "reservationId": w["rb"]}),
    ]


def test_issue_token_shape(api: Api):
    user = new_user_id()
    body = expect(api.issue_token(user), 201)
    assert set(body) >= {"token", "userId", "status", "position", "estimatedWaitSeconds"}, body
    assert body["userId"] == user and body["status"] in ("WAITING", "ACTIVE")
    assert isinstance(body["token"], str) and len(body["token"]) >= 16
    assert isinstance(body["estimatedWaitSeconds"], (int, float)) and body["estimatedWaitSeconds"] >= 0
    again = expect(api.issue_token(user), 200)
    assert again["token"] == body["token"] and again["userId"] == user


def test_tokens_are_distinct_per_user(api: Api):
    tokens = [expect(api.issue_token(new_user_id()), 201)["token"] for _ in range(30)]
    assert len(set(tokens)) == 30
    # unguessable: no two tokens share a long common prefix the way counters would
    prefixes = {t[:-4] for t in tokens}
    assert len(prefixes) == 30, "tokens differ only in their last characters"


def test_current_without_and_with_bad_token(api: Api):
    expect_error(api.s.get("/v1/queue/tokens/current"), 401, "QUEUE_TOKEN_MISSING")
    expect_error(api.token_status(secrets.token_hex(32)), 401, "QUEUE_TOKEN_INVALID")


def test_missing_token(api: Api, world):
    for method, path, body in gated_requests(world):
        r = api.s.request(method, path, json=body)
        expect_error(r, 401, "QUEUE_TOKEN_MISSING")
    assert api.seat_statuses(world["ta"], world["sid"])[2] == "AVAILABLE"


@pytest.mark.parametrize("forge", ["random_hex", "random_urlsafe", "tampered", "truncated", "extended"])
def test_forged_token(api: Api, world, forge):
    real = world["ta"]
    forged = {
        "random_hex": secrets.token_hex(32),
        "random_urlsafe": secrets.token_urlsafe(24),
        "tampered": real[: len(real) // 2] + ("0" if real[len(real) // 2] != "0" else "1")
        + real[len(real) // 2 + 1:],
        "extended": real + "0",
        "truncated": real[: len(real) // 2],
    }[forge]
    assert forged != real
    for method, path, body in gated_requests(world):
        expect_error(api.s.request(method, path, json=body, token=forged), 401, "QUEUE_TOKEN_INVALID")
    expect_error(api.token_status(forged), 401, "QUEUE_TOKEN_INVALID")
    assert api.seat_statuses(real, world["sid"])[2] == "AVAILABLE"
    assert expect(api.reservation(world["rb"]), 200)["status"] == "HELD"


def test_token_of_another_user(api: Api, world):
    # A's token, B's body
    r = api.hold(world["ta"], world["b"], world["sid"], 3)
    expect_error(r, 403, "FORBIDDEN")
    api.charged(world["b"], 100)
    r = api.pay(world["ta"], world["b"], world["rb"])
    expect_error(r, 403, "FORBIDDEN")
    assert api.seat_statuses(world["ta"], world["sid"])[3] == "AVAILABLE"
    assert expect(api.reservation(world["rb"]), 200)["status"] == "HELD"
    assert api.balance(world["b"]) == 100


def test_order_content_type_before_token(api: Api, world):
    r = api.s.post("/v1/reservations", data=b"{}", headers={"Content-Type": "text/plain"})
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = api.s.post("/v1/payments", data=b"not json", headers={"Content-Type": "text/plain"},
                   token=secrets.token_hex(16))
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_order_token_before_json(api: Api, world):
    json_ct = {"Content-Type": "application/json"}
    for path in ("/v1/reservations", "/v1/payments"):
        expect_error(api.s.post(path, data=b"{oops", headers=json_ct), 401, "QUEUE_TOKEN_MISSING")
        expect_error(api.s.post(path, data=b"{oops", headers=json_ct, token=secrets.token_hex(16)),
                     401, "QUEUE_TOKEN_INVALID")
        expect_error(api.s.post(path, data=b"{oops", headers=json_ct, token=world["ta"]), 400, "INVALID_JSON")


def test_order_token_before_path_validation(api: Api, world):
    expect_error(api.s.get("/v1/schedules/abc/seats"), 401, "QUEUE_TOKEN_MISSING")
    expect_error(api.s.get("/v1/schedules/0/seats", token=secrets.token_hex(16)), 401, "QUEUE_TOKEN_INVALID")
    expect_error(api.s.get("/v1/schedules/abc/seats", token=world["ta"]), 400, "VALIDATION_FAILED")
    expect_error(api.s.get("/v1/concerts/0/schedules", token=world["ta"]), 400, "VALIDATION_FAILED")


def test_order_validation_before_forbidden(api: Api, world):
    # A's token, B's userId, and a bad seat number: validation answers first
    r = api.s.post("/v1/reservations", {"userId": world["b"], "scheduleId": world["sid"], "seatNo": 0},
                   token=world["ta"])
    expect_error(r, 400, "VALIDATION_FAILED")
    r = api.s.post("/v1/payments", {"userId": world["b"], "reservationId": "x"}, token=world["ta"])
    expect_error(r, 400, "VALIDATION_FAILED")


def test_order_forbidden_before_business_rules(api: Api, world):
    # A's token, B's userId, a schedule that does not exist: 403, not 404
    r = api.s.post("/v1/reservations", {"userId": world["b"], "scheduleId": 987654321, "seatNo": 1},
                   token=world["ta"])
    expect_error(r, 403, "FORBIDDEN")
    r = api.pay(world["ta"], world["b"], 987654321)
    expect_error(r, 403, "FORBIDDEN")


def test_token_reads_need_active_token_not_same_user(api: Api, world):
    # seat maps carry no userId: any ACTIVE token reads them
    assert api.seat_statuses(world["ta"], world["sid"])[1] == "HELD"
    assert api.seat_statuses(world["tb"], world["sid"])[1] == "HELD"
