"""Malformed and invalid input: every one answers its 4xx of SPEC §3 and changes nothing.
(Every request of the suite also asserts that no answer is a 5xx.)"""
from __future__ import annotations

import pytest

from support import Api, expect, expect_error, new_user_id

JSON_CT = {"Content-Type": "application/json"}

# Well-formed JSON whose fields are missing or mistyped: 400 VALIDATION_FAILED.
BAD_ID_VALUES = [0, -1, "1", "abc", 1.5, 1.0, 1e3, None, True, [1], {"id": 1},
                 9223372036854775808, 123456789012345678901234567890]
# Raw bodies that are not JSON: 400 INVALID_JSON.
NOT_JSON = [b"{", b'{"userId": 1', b"{userId: 1}", b"{'userId': 1}", b'{"userId": 1} trailing',
            b'{"userId": 01}', b"nul", b'{"userId": 1,}']
# Raw bodies that a parser may refuse as JSON or a validator as a field: 400 either way.
EDGE_BODIES = [b"", b'{"userId": 1e400}', b'{"userId": 1, "x": "\xff\xfe"}', b"[" * 5000 + b"]" * 5000,
               b'{"userId": -0}', b'{"userId": 1E2}']


def either_400(resp):
    return expect_error(resp, 400, {"INVALID_JSON", "VALIDATION_FAILED"})


# --- POST /v1/queue/tokens ---------------------------------------------------------------------

@pytest.mark.parametrize("value", BAD_ID_VALUES, ids=repr)
def test_issue_token_bad_user_id(api: Api, value):
    expect_error(api.s.post("/v1/queue/tokens", {"userId": value}), 400, "VALIDATION_FAILED")


@pytest.mark.parametrize("body", [{}, [], "userId", 42, None, {"user": 1}], ids=repr)
def test_issue_token_bad_shape(api: Api, body):
    expect_error(api.s.post("/v1/queue/tokens", data=_dumps(body), headers=JSON_CT), 400, "VALIDATION_FAILED")


@pytest.mark.parametrize("raw", NOT_JSON, ids=repr)
def test_issue_token_not_json(api: Api, raw):
    expect_error(api.s.post("/v1/queue/tokens", data=raw, headers=JSON_CT), 400, "INVALID_JSON")


@pytest.mark.parametrize("raw", EDGE_BODIES, ids=lambda b: repr(b[:20]))
def test_issue_token_edge_bodies(api: Api, raw):
    either_400(api.s.post("/v1/queue/tokens", data=raw, headers=JSON_CT))
    assert api.s.get("/healthz").status_code == 200


def test_largest_user_id_is_valid(api: Api):
    biggest = 2**63 - 1
    body = expect(api.s.post("/v1/queue/tokens", {"userId": biggest}), 201)
    assert body["userId"] == biggest
    assert expect(api.s.get(f"/v1/users/{biggest}/points"), 200) == {"userId": biggest, "balance": 0}


def _dumps(body) -> bytes:
    import json
    return json.dumps(body).encode()


# --- POST /v1/users/{id}/points/charge --------------------------------------------------------

@pytest.mark.parametrize("value", [0, 1_000_001, -1, -1000, "100", 100.5, 100.0, 1e2, None, True, [100],
                                   2**63, 10**30], ids=repr)
def test_charge_bad_amount_changes_nothing(api: Api, value):
    user = new_user_id()
    api.charged(user, 700)
    expect_error(api.charge(user, value), 400, "VALIDATION_FAILED")
    assert api.balance(user) == 700
    assert len(api.history(user)) == 1


@pytest.mark.parametrize("raw", [b"{}", b"[]", b'{"amt": 5}', b"5", b"null"] + NOT_JSON[:4], ids=repr)
def test_charge_bad_body_changes_nothing(api: Api, raw):
    user = new_user_id()
    api.charged(user, 700)
    r = api.s.post(f"/v1/users/{user}/points/charge", data=raw, headers=JSON_CT)
    expect_error(r, 400, "VALIDATION_FAILED" if raw in (b"{}", b"[]", b'{"amt": 5}', b"5", b"null") else "INVALID_JSON")
    assert api.balance(user) == 700
    assert len(api.history(user)) == 1


@pytest.mark.parametrize("amount", [1, 1_000_000])
def test_charge_bounds_are_accepted(api: Api, amount):
    user = new_user_id()
    assert expect(api.charge(user, amount), 200) == {"userId": user, "balance": amount}


# --- path ids ------------------------------------------------------------------------------------

BAD_PATH_IDS = ["0", "-1", "abc", "1.5", "1e3", "99999999999999999999", "9223372036854775808", "12abc"]


@pytest.mark.parametrize("raw_id", BAD_PATH_IDS)
def test_bad_path_ids(api: Api, raw_id):
    s = api.s
    expect_error(s.get(f"/v1/users/{raw_id}/points"), 400, "VALIDATION_FAILED")
    expect_error(s.get(f"/v1/users/{raw_id}/points/history"), 400, "VALIDATION_FAILED")
    expect_error(s.post(f"/v1/users/{raw_id}/points/charge", {"amount": 10}), 400, "VALIDATION_FAILED")
    expect_error(s.get(f"/v1/reservations/{raw_id}"), 400, "VALIDATION_FAILED")


@pytest.mark.parametrize("raw_id", BAD_PATH_IDS)
def test_bad_path_ids_gated(api: Api, raw_id):
    _, token = api.user_with_token()
    expect_error(api.s.get(f"/v1/schedules/{raw_id}/seats", token=token), 400, "VALIDATION_FAILED")
    expect_error(api.s.get(f"/v1/concerts/{raw_id}/schedules", token=token), 400, "VALIDATION_FAILED")


def test_unknown_reservation(api: Api):
    expect_error(api.reservation(987654321012), 404, "NOT_FOUND")


# --- POST /v1/reservations ---------------------------------------------------------------------

@pytest.fixture
def holder(api: Api):
    sid = api.new_schedule(seats=5, price=100)
    user, token = api.user_with_token()
    return sid, user, token


@pytest.mark.parametrize("field", ["userId", "scheduleId", "seatNo"])
@pytest.mark.parametrize("value", ["missing", 0, -1, "1", 1.5, None, [1], 2**63, 10**25], ids=repr)
def test_hold_bad_field_changes_nothing(api: Api, holder, field, value):
    sid, user, token = holder
    body = {"userId": user, "scheduleId": sid, "seatNo": 1}
    if value == "missing":
        del body[field]
    else:
        body[field] = value
    expect_error(api.s.post("/v1/reservations", body, token=token), 400, "VALIDATION_FAILED")
    assert set(api.seat_statuses(token, sid).values()) == {"AVAILABLE"}


@pytest.mark.parametrize("raw", [b"[]", b"1", b"null", b'"x"'] + NOT_JSON[:3], ids=repr)
def test_hold_bad_body(api: Api, holder, raw):
    sid, user, token = holder
    r = api.s.post("/v1/reservations", data=raw, headers=JSON_CT, token=token)
    expect_error(r, 400, "VALIDATION_FAILED" if raw in (b"[]", b"1", b"null", b'"x"') else "INVALID_JSON")
    assert set(api.seat_statuses(token, sid).values()) == {"AVAILABLE"}


# --- POST /v1/payments -----------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["userId", "reservationId"])
@pytest.mark.parametrize("value", ["missing", 0, -7, "5", 2.5, None, {}, 2**64], ids=repr)
def test_pay_bad_field_changes_nothing(api: Api, holder, field, value):
    sid, user, token = holder
    rid = api.held(token, user, sid, 2)["reservationId"]
    api.charged(user, 500)
    body = {"userId": user, "reservationId": rid}
    if value == "missing":
        del body[field]
    else:
        body[field] = value
    expect_error(api.s.post("/v1/payments", body, token=token), 400, "VALIDATION_FAILED")
    assert api.balance(user) == 500
    assert expect(api.reservation(rid), 200)["status"] == "HELD"
    # the token still works: the refusal did not end it
    expect(api.token_status(token), 200)


@pytest.mark.parametrize("key", ["k" * 129, "", "tab\there", "new\u00e9"], ids=["129chars", "empty", "tab", "non-ascii"])
def test_pay_bad_idempotency_key(api: Api, holder, key):
    sid, user, token = holder
    rid = api.held(token, user, sid, 3)["reservationId"]
    api.charged(user, 500)
    r = api.s.post("/v1/payments", {"userId": user, "reservationId": rid}, token=token,
                   headers={"Idempotency-Key": key.encode("latin-1")})
    expect_error(r, 400, "VALIDATION_FAILED")
    assert api.balance(user) == 500
    assert expect(api.reservation(rid), 200)["status"] == "HELD"


def test_pay_longest_idempotency_key_is_valid(api: Api, holder):
    sid, user, token = holder
    rid = api.held(token, user, sid, 4)["reservationId"]
    api.charged(user, 100)
    key = "K" * 100 + "~!@#$%^&*()_+-={}[]|:;<>,.?/"  # 128 printable characters
    assert len(key) == 128
    expect(api.pay(token, user, rid, key=key), 201)


# --- media type, size, routes, methods -------------------------------------------------------------

POST_ENDPOINTS = ["/v1/queue/tokens", "/v1/reservations", "/v1/payments", "/v1/users/5/points/charge",
                  "/v1/admin/concerts"]


@pytest.mark.parametrize("path", POST_ENDPOINTS)
@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
def test_unsupported_media_type(api: Api, path, ctype):
    headers = {} if ctype is None else {"Content-Type": ctype}
    r = api.s.post(path, data=b'{"userId": 5, "amount": 5}', headers=headers, admin=True)
    expect_error(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8",
                                   "application/json;charset=UTF-8"])
def test_json_content_type_variants_accepted(api: Api, ctype):
    user = new_user_id()
    r = api.s.post(f"/v1/users/{user}/points/charge", data=b'{"amount": 5}', headers={"Content-Type": ctype})
    assert expect(r, 200) == {"userId": user, "balance": 5}


def padded(body: bytes, size: int) -> bytes:
    """`body` (a JSON object) padded with spaces inside to exactly `size` bytes."""
    assert body.endswith(b"}")
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_body_of_64_kib_is_accepted(api: Api):
    user = new_user_id()
    r = api.s.post(f"/v1/users/{user}/points/charge", data=padded(b'{"amount": 9}', 65536), headers=JSON_CT)
    assert expect(r, 200)["balance"] == 9


@pytest.mark.parametrize("size", [65537, 100_000])
def test_body_over_64_kib(api: Api, size):
    user = new_user_id()
    api.charged(user, 1)
    r = api.s.post(f"/v1/users/{user}/points/charge", data=padded(b'{"amount": 9}', size), headers=JSON_CT)
    expect_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert api.balance(user) == 1


def test_chunked_body_over_64_kib(api: Api):
    user = new_user_id()
    api.charged(user, 1)
    body = padded(b'{"amount": 9}', 70_000)

    def chunks():
        for i in range(0, len(body), 8192):
            yield body[i:i + 8192]

    r = api.s.post(f"/v1/users/{user}/points/charge", data=chunks(), headers=JSON_CT)
    expect_error(r, 413, "PAYLOAD_TOO_LARGE")
    assert api.balance(user) == 1


@pytest.mark.parametrize("method,path", [
    ("GET", "/"), ("GET", "/v1"), ("GET", "/v1/nothing"), ("GET", "/v2/concerts"),
    ("POST", "/v1/unknown"), ("GET", "/v1/concerts/1/schedules/extra"), ("GET", "/v1/users/1"),
    ("GET", "/v1/concertsx"), ("GET", "/healthz/more"),
])
def test_unknown_route(api: Api, method, path):
    r = api.s.request(method, path, json={} if method == "POST" else None)
    expect_error(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path", [
    ("DELETE", "/v1/concerts"), ("POST", "/v1/concerts"), ("PUT", "/v1/reservations/1"),
    ("GET", "/v1/payments"), ("GET", "/v1/admin/concerts"), ("PATCH", "/v1/users/1/points"),
    ("DELETE", "/v1/queue/tokens/current"), ("GET", "/v1/queue/tokens"), ("GET", "/v1/reservations"),
    ("GET", "/v1/users/1/points/charge"), ("POST", "/healthz"),
])
def test_wrong_method(api: Api, method, path):
    r = api.s.request(method, path, json={} if method in ("POST", "PUT", "PATCH") else None)
    expect_error(r, 405, "METHOD_NOT_ALLOWED")


def test_unknown_query_parameters_are_ignored(api: Api):
    user = new_user_id()
    api.charged(user, 3)
    r = api.s.get(f"/v1/users/{user}/points?foo=bar")
    assert expect(r, 200)["balance"] == 3
    r = api.s.get(f"/v1/users/{user}/points/history?foo=bar&limit=1")
    assert len(expect(r, 200)["entries"]) == 1
