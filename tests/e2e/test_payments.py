"""Payments: refusals and their precedence, idempotent replay (SPEC §2 Payment, §3;
docs/api-decisions.md "Payments")."""
from __future__ import annotations

import uuid

from support import Api, expect, expect_error


def setup_hold(api: Api, price: int = 800, charge: int | None = None):
    sid = api.new_schedule(seats=5, price=price)
    user, token = api.user_with_token()
    rid = api.held(token, user, sid, 1)["reservationId"]
    if charge:
        api.charged(user, charge)
    return sid, user, token, rid


def test_pay_unknown_reservation(api: Api):
    user, token = api.user_with_token()
    api.charged(user, 100)
    expect_error(api.pay(token, user, 987654321012), 404, "NOT_FOUND")
    assert api.balance(user) == 100
    expect(api.token_status(token), 200)


def test_pay_other_users_reservation(api: Api):
    sid, a, ta, rid = setup_hold(api, charge=800)
    b, tb = api.user_with_token()
    api.charged(b, 5000)
    expect_error(api.pay(tb, b, rid), 403, "FORBIDDEN")
    assert api.balance(a) == 800 and api.balance(b) == 5000
    assert expect(api.reservation(rid), 200)["status"] == "HELD"
    assert api.seat_statuses(tb, sid)[1] == "HELD"


def test_insufficient_balance_changes_nothing(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=799)
    history = api.history(user)
    expect_error(api.pay(token, user, rid), 409, "INSUFFICIENT_BALANCE")
    assert api.balance(user) == 799
    assert api.history(user) == history
    assert expect(api.reservation(rid), 200)["status"] == "HELD"
    assert api.seat_statuses(token, sid)[1] == "HELD"
    assert expect(api.token_status(token), 200)["status"] == "ACTIVE", "a refused payment ended the token"
    # after charging, the same hold can be paid
    api.charged(user, 1)
    paid = expect(api.pay(token, user, rid), 201)
    assert paid["amount"] == 800
    assert api.balance(user) == 0


def test_already_paid_is_not_payable(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=2000)
    expect(api.pay(token, user, rid), 201)
    expect_error(api.pay(token, user, rid), 401, "QUEUE_TOKEN_INVALID")  # the payment ended the token
    token2 = api.active_token(user)
    assert token2 != token
    expect_error(api.pay(token2, user, rid), 409, "RESERVATION_NOT_PAYABLE")
    assert api.balance(user) == 1200
    assert [e["type"] for e in api.history(user)] == ["USE", "CHARGE"]
    # another user paying the confirmed reservation: FORBIDDEN comes first
    b, tb = api.user_with_token()
    api.charged(b, 1000)
    expect_error(api.pay(tb, b, rid), 403, "FORBIDDEN")
    assert api.balance(b) == 1000


def test_idempotent_replay(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=2000)
    key = f"pay-{uuid.uuid4()}"
    first = expect(api.pay(token, user, rid, key=key), 201)
    for _ in range(3):
        again = expect(api.pay(token, user, rid, key=key), 201)  # the token has expired meanwhile
        assert again["paymentId"] == first["paymentId"], (first, again)
        assert again == first, f"replay differs: {first} vs {again}"
    assert api.balance(user) == 1200
    assert [e["type"] for e in api.history(user)] == ["USE", "CHARGE"]
    expect_error(api.token_status(token), 401, "QUEUE_TOKEN_INVALID")
    # with a new token too
    token2 = api.active_token(user)
    assert expect(api.pay(token2, user, rid, key=key), 201)["paymentId"] == first["paymentId"]
    assert api.balance(user) == 1200
    # without the key it is a new attempt: not payable
    expect_error(api.pay(token2, user, rid), 409, "RESERVATION_NOT_PAYABLE")
    assert api.balance(user) == 1200


def test_idempotency_key_with_another_body(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=5000)
    rid2 = api.held(token, user, sid, 2)["reservationId"]
    key = f"pay-{uuid.uuid4()}"
    expect(api.pay(token, user, rid, key=key), 201)
    expect_error(api.pay(token, user, rid2, key=key), 409, "IDEMPOTENCY_CONFLICT")
    token2 = api.active_token(user)
    expect_error(api.pay(token2, user, rid2, key=key), 409, "IDEMPOTENCY_CONFLICT")
    assert api.balance(user) == 4200
    assert expect(api.reservation(rid2), 200)["status"] == "HELD"
    # another user with the same key and body naming themselves: still a conflict
    b, tb = api.user_with_token()
    api.charged(b, 5000)
    rid_b = api.held(tb, b, sid, 3)["reservationId"]
    expect_error(api.pay(tb, b, rid_b, key=key), 409, "IDEMPOTENCY_CONFLICT")
    assert api.balance(b) == 5000
    # the second hold is payable under a fresh key
    paid2 = expect(api.pay(token2, user, rid2, key=f"pay-{uuid.uuid4()}"), 201)
    assert paid2["reservationId"] == rid2
    assert api.balance(user) == 3400


def test_refused_payment_stores_no_key(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=100)
    key = f"pay-{uuid.uuid4()}"
    expect_error(api.pay(token, user, rid, key=key), 409, "INSUFFICIENT_BALANCE")
    api.charged(user, 700)
    paid = expect(api.pay(token, user, rid, key=key), 201)
    assert paid["amount"] == 800 and paid["status"] == "COMPLETED"
    assert api.balance(user) == 0
    assert expect(api.pay(token, user, rid, key=key), 201)["paymentId"] == paid["paymentId"]


def test_payment_history_entry(api: Api):
    sid, user, token, rid = setup_hold(api, price=800, charge=1000)
    paid = expect(api.pay(token, user, rid), 201)
    use, charge = api.history(user)
    assert use["type"] == "USE" and use["amount"] == 800 and use["balanceAfter"] == 200, use
    assert charge["type"] == "CHARGE" and charge["balanceAfter"] == 1000, charge
    assert paid["userId"] == user and paid["reservationId"] == rid
