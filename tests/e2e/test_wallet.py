"""Wallet: charge, balance, history (SPEC §2 Wallet, §3; docs/api-decisions.md "Wallet")."""
from __future__ import annotations

import pytest

from support import Api, expect, expect_error, is_int, new_user_id, parse_iso


def test_new_wallet_reads_zero(api: Api):
    user = new_user_id()
    body = expect(api.s.get(f"/v1/users/{user}/points"), 200)
    assert body == {"userId": user, "balance": 0}
    assert expect(api.s.get(f"/v1/users/{user}/points/history"), 200) == {"userId": user, "entries": []}


def test_charges_add_up(api: Api):
    user = new_user_id()
    total = 0
    for amount in (1, 999, 1_000_000, 5):
        total += amount
        body = expect(api.charge(user, amount), 200)
        assert body == {"userId": user, "balance": total}, body
        assert is_int(body["balance"])
    assert api.balance(user) == total


def test_history_newest_first_with_default_and_limits(api: Api):
    user = new_user_id()
    for amount in range(1, 26):
        api.charged(user, amount)
    entries = api.history(user)
    assert len(entries) == 20, "default limit is 20"
    assert [e["amount"] for e in entries] == list(range(25, 5, -1)), "not newest first"
    running = [sum(range(1, n + 1)) for n in range(25, 5, -1)]
    assert [e["balanceAfter"] for e in entries] == running
    for e in entries:
        assert set(e) >= {"type", "amount", "balanceAfter", "at"}, e
        assert e["type"] == "CHARGE" and is_int(e["amount"]) and is_int(e["balanceAfter"])
    times = [parse_iso(e["at"]) for e in entries]
    assert times == sorted(times, reverse=True), "times not newest first"
    assert [e["amount"] for e in api.history(user, 5)] == [25, 24, 23, 22, 21]
    assert [e["amount"] for e in api.history(user, 1)] == [25]
    assert len(api.history(user, 100)) == 25


def test_history_limit_max_100(api: Api):
    user = new_user_id()
    for _ in range(105):
        api.charged(user, 1)
    entries = api.history(user, 100)
    assert len(entries) == 100
    assert [e["balanceAfter"] for e in entries] == list(range(105, 5, -1))


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1", "1.5", "", "1e1", "99999999999999999999"])
def test_history_bad_limit(api: Api, limit):
    user = new_user_id()
    api.charged(user, 1)
    expect_error(api.s.get(f"/v1/users/{user}/points/history?limit={limit}"), 400, "VALIDATION_FAILED")


def test_balance_limit(api: Api):
    user = new_user_id()
    for _ in range(99):
        api.charged(user, 1_000_000)
    assert api.balance(user) == 99_000_000
    api.charged(user, 999_999)
    # an amount in range that would pass the limit is refused and changes nothing
    expect_error(api.charge(user, 2), 409, "BALANCE_LIMIT_EXCEEDED")
    assert api.balance(user) == 99_999_999
    assert expect(api.charge(user, 1), 200)["balance"] == 100_000_000
    expect_error(api.charge(user, 1), 409, "BALANCE_LIMIT_EXCEEDED")
    expect_error(api.charge(user, 1_000_000), 409, "BALANCE_LIMIT_EXCEEDED")
    assert api.balance(user) == 100_000_000
    newest = api.history(user, 3)
    assert [(e["amount"], e["balanceAfter"]) for e in newest] == [
        (1, 100_000_000), (999_999, 99_999_999), (1_000_000, 99_000_000)], "a refused charge left a history row"
