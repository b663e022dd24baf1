"""The waiting queue with slow, small settings: positions, FIFO admission at a bounded rate,
max_active, waiting and active TTLs, re-issue, and the end of a token at payment (SPEC §2 Queue
token, §3)."""
from __future__ import annotations

import time

import pytest

from support import Api, expect, expect_error, new_user_id, run_concurrently, schedule_spec

pytestmark = pytest.mark.slow


def status_of(api: Api, token: str) -> dict:
    return expect(api.token_status(token), 200)


def test_positions_not_active_and_payment_frees_a_slot(make_server):
    s = make_server(CONCERTD_QUEUE_ADMIT_PER_SECOND=20, CONCERTD_QUEUE_MAX_ACTIVE=2)
    api = Api(s)
    _, (sid,) = api.create_concert([schedule_spec(seats=5, price=100)])
    f1, f2 = new_user_id(), new_user_id()
    t1, t2 = api.active_token(f1), api.active_token(f2)

    # the active slots are full: every new token waits, in arrival order
    waiting = []
    for k in range(1, 6):
        user = new_user_id()
        body = expect(api.issue_token(user), 201)
        assert body["status"] == "WAITING", f"token {k} admitted although max_active=2 is reached: {body}"
        assert body["position"] == k, f"token {k} has position {body['position']}"
        assert isinstance(body["estimatedWaitSeconds"], (int, float)) and body["estimatedWaitSeconds"] > 0, body
        waiting.append((user, body["token"]))
    estimates = []
    for k, (user, token) in enumerate(waiting, start=1):
        st = status_of(api, token)
        assert st["userId"] == user and st["status"] == "WAITING" and st["position"] == k, st
        assert st["estimatedWaitSeconds"] > 0, st
        estimates.append(st["estimatedWaitSeconds"])
    assert estimates == sorted(estimates), f"later positions should not wait less: {estimates}"

    # issuing again returns the same waiting token with 200
    again = expect(api.issue_token(waiting[2][0]), 200)
    assert again["token"] == waiting[2][1] and again["status"] == "WAITING" and again["position"] == 3, again

    # a waiting token is refused on every gated endpoint; checks run in the documented order
    w1, tw1 = waiting[0]
    w2 = waiting[1][0]
    expect_error(s.get(f"/v1/schedules/{sid}/seats", token=tw1), 403, "QUEUE_NOT_ACTIVE")
    expect_error(s.get("/v1/concerts/1/schedules", token=tw1), 403, "QUEUE_NOT_ACTIVE")
    expect_error(api.hold(tw1, w1, sid, 1), 403, "QUEUE_NOT_ACTIVE")
    expect_error(api.pay(tw1, w1, 1), 403, "QUEUE_NOT_ACTIVE")
    expect_error(api.hold(tw1, w2, sid, 1), 403, "FORBIDDEN")  # another user's body comes first
    expect_error(api.hold(tw1, w1, sid, 0), 400, "VALIDATION_FAILED")  # validation before that
    assert set(api.seat_statuses(t1, sid).values()) == {"AVAILABLE"}

    # paying ends the payer's token and frees its slot: the first waiting token is admitted
    rid = api.held(t1, f1, sid, 1)["reservationId"]
    api.charged(f1, 100)
    expect(api.pay(t1, f1, rid), 201)
    expect_error(api.token_status(t1), 401, "QUEUE_TOKEN_INVALID")
    deadline = time.monotonic() + 5
    while status_of(api, tw1)["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "first waiting token not admitted after a payment freed a slot"
        for _, token in waiting[1:]:
            assert status_of(api, token)["status"] == "WAITING", "admitted out of order"
        time.sleep(0.05)
    # f2 and w1 fill the two slots again: the rest wait, one place further
    time.sleep(0.3)
    for k, (user, token) in enumerate(waiting[1:], start=1):
        st = status_of(api, token)
        assert st["status"] == "WAITING" and st["position"] == k, st
    api.held(tw1, w1, sid, 2)
    expect(api.token_status(t2), 200)


def test_fifo_admission_at_bounded_rate(make_server):
    rate, count = 5, 15
    s = make_server(CONCERTD_QUEUE_ADMIT_PER_SECOND=rate, CONCERTD_QUEUE_MAX_ACTIVE=1000)
    api = Api(s)
    tokens = []
    started = time.monotonic()
    for _ in range(count):
        body = expect(api.issue_token(new_user_id()), 201)
        tokens.append(body["token"])
    admitted_round: dict[int, int] = {}
    admitted_at: dict[int, float] = {}
    rnd = 0
    deadline = started + count / rate + 4
    while len(admitted_round) < count:
        assert time.monotonic() < deadline, f"only {len(admitted_round)} of {count} admitted in time"
        rnd += 1
        # newest first: a later token seen ACTIVE before an earlier one is seen WAITING is a
        # real overtaking, never an artefact of the reading order
        for i, token in reversed(list(enumerate(tokens))):
            if i in admitted_round:
                continue
            st = status_of(api, token)
            if st["status"] == "ACTIVE":
                admitted_round[i] = rnd
                admitted_at[i] = time.monotonic()
            else:
                assert st["status"] == "WAITING", st
                assert st["estimatedWaitSeconds"] > 0, st
        time.sleep(0.05)
    rounds = [admitted_round[i] for i in range(count)]
    assert rounds == sorted(rounds), f"not first come, first served: admission rounds {rounds}"
    span = max(admitted_at.values()) - started
    # at most `rate` per second (allowing one second's burst): 15 tokens need >= 2 s
    assert span >= (count - rate) / rate - 0.3, f"{count} tokens admitted in {span:.2f}s at {rate}/s"
    first_second = sum(1 for t in admitted_at.values() if t - started <= 1.0)
    assert first_second <= 2 * rate + 1, f"{first_second} admitted within the first second at {rate}/s"


def test_waiting_token_not_polled_drops_out(make_server):
    s = make_server(CONCERTD_QUEUE_ADMIT_PER_SECOND=50, CONCERTD_QUEUE_MAX_ACTIVE=1,
                    CONCERTD_QUEUE_WAITING_TTL_SECONDS=2)
    api = Api(s)
    api.active_token(new_user_id())
    dropped_user, kept_user = new_user_id(), new_user_id()
    dropped = expect(api.issue_token(dropped_user), 201)
    kept = expect(api.issue_token(kept_user), 201)
    assert (dropped["status"], dropped["position"]) == ("WAITING", 1), dropped
    assert (kept["status"], kept["position"]) == ("WAITING", 2), kept
    end = time.monotonic() + 3.5
    while time.monotonic() < end:
        assert status_of(api, kept["token"])["status"] == "WAITING"
        time.sleep(0.3)
    expect_error(api.token_status(dropped["token"]), 401, "QUEUE_TOKEN_INVALID")
    st = status_of(api, kept["token"])
    assert st["status"] == "WAITING" and st["position"] == 1, f"the dropped token still counts: {st}"
    # the dropped user starts again at the back, with a new token
    back = expect(api.issue_token(dropped_user), 201)
    assert back["token"] != dropped["token"]
    assert back["status"] == "WAITING" and back["position"] == 2, back


def test_active_token_expires_after_ttl_and_frees_its_slot(make_server):
    ttl = 2
    s = make_server(CONCERTD_QUEUE_ADMIT_PER_SECOND=50, CONCERTD_QUEUE_MAX_ACTIVE=1,
                    CONCERTD_QUEUE_ACTIVE_TTL_SECONDS=ttl)
    api = Api(s)
    _, (sid,) = api.create_concert([schedule_spec(seats=2, price=10)])
    first_user = new_user_id()
    first = api.active_token(first_user)
    admitted = time.monotonic()
    second_user = new_user_id()
    second = expect(api.issue_token(second_user), 201)
    assert second["status"] == "WAITING" and second["position"] == 1, second
    assert api.seat_statuses(first, sid) == {1: "AVAILABLE", 2: "AVAILABLE"}

    # polling does not extend an active token
    while True:
        # read the second first: if it is ACTIVE while the first still is, max_active was passed
        second_status = status_of(api, second["token"])["status"]
        r = api.token_status(first)
        if r.status_code == 401:
            break
        assert expect(r, 200)["status"] == "ACTIVE"
        assert second_status == "WAITING", "admitted past max_active"
        assert time.monotonic() - admitted < ttl + 2, "active token did not expire"
        time.sleep(0.05)
    lived = time.monotonic() - admitted
    assert lived >= ttl - 0.5, f"active token expired after {lived:.2f}s, TTL is {ttl}s"
    expect_error(r, 401, "QUEUE_TOKEN_INVALID")
    expect_error(s.get(f"/v1/schedules/{sid}/seats", token=first), 401, "QUEUE_TOKEN_INVALID")
    expect_error(api.hold(first, first_user, sid, 1), 401, "QUEUE_TOKEN_INVALID")

    # the freed slot goes to the waiting token
    deadline = time.monotonic() + 3
    while status_of(api, second["token"])["status"] != "ACTIVE":
        assert time.monotonic() < deadline, "waiting token not admitted after the active one expired"
        time.sleep(0.05)
    api.held(second["token"], second_user, sid, 1)

    # the expired user gets a new token
    fresh = expect(api.issue_token(first_user), 201)
    assert fresh["token"] != first and fresh["status"] == "WAITING", fresh


def test_concurrent_arrivals_get_distinct_positions(make_server):
    s = make_server(CONCERTD_QUEUE_ADMIT_PER_SECOND=50, CONCERTD_QUEUE_MAX_ACTIVE=1)
    api = Api(s)
    api.active_token(new_user_id())
    users = [new_user_id() for _ in range(40)]
    results = run_concurrently(lambda u: api.issue_token(u), [(u,) for u in users])
    bodies = [expect(r, 201) for r in results]
    assert all(b["status"] == "WAITING" for b in bodies), bodies
    assert sorted(b["position"] for b in bodies) == list(range(1, 41)), "positions are not 1..40, each once"
    assert len({b["token"] for b in bodies}) == 40
    # positions read back agree with the ones given at arrival
    for b in bodies:
        assert status_of(api, b["token"])["position"] == b["position"], b
