"""Events on Apache Kafka (issue 6, docs/kafka.md) end to end: concertd on PostgreSQL with
CONCERTD_KAFKA_BROKERS, a throwaway broker per test (kafka_broker.KafkaBroker), the topics read
back from the beginning with kcat.

- End to end: holds, a refused hold and a refused payment (no event), charges, payments and
  expiries give exactly one message per change, on the topic of its family, keyed by its
  aggregate, with the envelope and headers of docs/kafka.md, in outbox order per key; the sales
  ledger (a consumer group member) has one row per payment.
- Broker outage mid-burst, longer than the producer's delivery timeout: requests keep succeeding
  (no 5xx), /readyz is 503 with "kafka": "down" and an outbox backlog; the broker back on the
  same port, the backlog drains, every event is on Kafka (at least once) and the ledger has one
  row per payment.
- kill -9 of the process holding the relay's turn while its batch waits for the broker's acks
  (the broker frozen with SIGSTOP): the other process sends the batch again; no event is lost.
- Poison messages on concertd.payment go to concertd.dead-letter and the partition goes on.

Skipped unless CONCERTD_E2E_KAFKA=1 on PostgreSQL (scripts/test-e2e-all.sh sets it for its
PostgreSQL run, after scripts/install-kafka.sh).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections import Counter, defaultdict

import pytest

import support
from kafka_broker import KafkaBroker
from support import (Api, Server, expect, expect_error, poll, report, schedule_spec, start_pair)
from test_crash import PRICE, start_burst

pytestmark = [
    pytest.mark.postgres, pytest.mark.slow,
    pytest.mark.skipif(not support.IS_POSTGRES or os.environ.get("CONCERTD_E2E_KAFKA") != "1",
                       reason="Kafka on PostgreSQL only: run with CONCERTD_E2E_KAFKA=1 and CONCERTD_E2E_BACKEND=postgres"),
]

TOPICS = ("concertd.reservation", "concertd.points", "concertd.payment")
DEAD_LETTER = "concertd.dead-letter"
ENVELOPE_FIELDS = {"eventId", "type", "aggregateId", "occurredAt", "payload"}
# The relay's turn (src/adapters/postgres/pg_outbox_store.cpp, kRelayLockKey): the kill test
# looks for the process holding it.
RELAY_LOCK_KEY = 7160000002
OUTAGE_SECONDS = 11


@pytest.fixture
def broker():
    # Asked for before make_server, so it stops after the servers: a concertd stopping without
    # its broker waits for it to leave the consumer group (seconds per server).
    b = KafkaBroker().start()
    try:
        yield b
    finally:
        b.destroy()


def kafka_env(broker: KafkaBroker, **env) -> dict:
    return {"CONCERTD_KAFKA_BROKERS": broker.bootstrap, **env}


def kafka_events(broker: KafkaBroker) -> list[dict]:
    """Every message of the event topics: kcat's fields, headers as a dict, the parsed envelope."""
    out = []
    for topic in TOPICS:
        for m in broker.consume(topic, timeout=60):
            flat = m.get("headers") or []
            out.append({**m, "headers": dict(zip(flat[::2], flat[1::2])), "envelope": json.loads(m["payload"])})
    return out


def metric(server, name: str) -> float:
    m = re.search(rf"^{name} (\S+)$", server.get("/metrics").text, re.M)
    assert m, f"no {name} in /metrics"
    return float(m.group(1))


def unpublished(server) -> int:
    return server.db_query("SELECT count(*) AS n FROM outbox WHERE published_at IS NULL")[0]["n"]


def all_on_kafka(server, broker: KafkaBroker) -> tuple[Counter, set[str]]:
    """Every outbox event marked published is on Kafka (a row is marked only after the broker's
    ack), and Kafka has no event the outbox has not. Read in that order: expiries still add
    events. Returns how often each event id is on Kafka, and the published ids."""
    published = {r["event_id"] for r in server.db_query("SELECT event_id FROM outbox WHERE published_at IS NOT NULL")}
    on_kafka = Counter(e["envelope"]["eventId"] for e in kafka_events(broker))
    missing = published - set(on_kafka)
    assert not missing, f"{len(missing)} of {len(published)} published events not on Kafka: {missing_rows(server, missing)}"
    assert set(on_kafka) <= {r["event_id"] for r in server.db_query("SELECT event_id FROM outbox")}, \
        "Kafka has events the outbox never had"
    return on_kafka, published


def ready(server) -> dict | None:
    """/readyz's body once it answers 200 (the producer's first probe comes within a second)."""
    r = server.get("/readyz", allow_5xx=True)
    return r.json() if r.status_code == 200 else None


def missing_rows(server, ids: set[str], limit: int = 5) -> list:
    """Outbox rows of events not on Kafka, for the failure message: the range of their outbox ids
    and a few (id, type, occurred_at, published_at)."""
    rows = [r for r in server.db_query("SELECT id, type, occurred_at, published_at, event_id FROM outbox ORDER BY id")
            if r["event_id"] in ids]
    return [f"ids {rows[0]['id']}..{rows[-1]['id']}"] + [tuple(r)[:4] for r in rows[:limit]] if rows else []


def check_ledger(server, payments: int) -> None:
    """The sales ledger acted once per payment.completed: one row per payment, its event id the
    payment's event, and one processed_events row each."""
    poll(lambda: server.db_query("SELECT count(*) AS n FROM sales_ledger")[0]["n"] >= payments, timeout=30,
         interval=0.2, what=lambda: f"{payments} sales_ledger rows (have "
                                    f"{server.db_query('SELECT count(*) AS n FROM sales_ledger')[0]['n']})")
    with server.db() as db:
        rows = db.tuples("SELECT l.payment_id, o.type FROM sales_ledger l LEFT JOIN outbox o ON o.event_id = l.event_id")
        paid = {r[0] for r in db.tuples("SELECT id FROM payments")}
        processed = db.tuples("SELECT count(*) FROM processed_events WHERE consumer = 'sales_ledger'")[0][0]
    assert len(paid) == payments
    assert sorted(r[0] for r in rows) == sorted(paid), "sales_ledger is not one row per payment"
    assert {r[1] for r in rows} == {"payment.completed"}, rows
    assert processed == payments, f"{processed} processed_events for {payments} payments"


# ---------------------------------------------------------------------------------------------

def test_events_end_to_end(broker, make_server):
    s = make_server(processes=1, **kafka_env(broker, CONCERTD_HOLD_SECONDS=3))
    api = Api(s)
    poll(lambda: ready(s), timeout=10, what="/readyz 200 with Kafka up")
    sid = api.new_schedule(seats=10, price=PRICE)

    paid, left, payments, users = {}, {}, {}, []
    for k in range(3):  # each user: two charges, two holds, one paid (the other expires)
        user, token = api.user_with_token()
        users.append(user)
        assert api.charged(user, PRICE) == PRICE and api.charged(user, PRICE) == 2 * PRICE
        a = api.held(token, user, sid, 2 * k + 1)
        b = api.held(token, user, sid, 2 * k + 2)
        body = expect(api.pay(token, user, a["reservationId"]), 201)
        paid[a["reservationId"]], left[b["reservationId"]] = user, user
        payments[body["paymentId"]] = a["reservationId"]
    # Refusals change nothing and send nothing: a sold seat, a payment without the points.
    poor, token = api.user_with_token()
    expect_error(api.hold(token, poor, sid, 1), 409, "SEAT_UNAVAILABLE")
    r = api.held(token, poor, sid, 7)
    expect_error(api.pay(token, poor, r["reservationId"]), 409, "INSUFFICIENT_BALANCE")
    left[r["reservationId"]] = poor

    expected = Counter({"reservation.held": 7, "reservation.confirmed": 3, "reservation.expired": 4,
                        "points.charged": 6, "points.used": 3, "payment.completed": 3})
    poll(lambda: s.db_query("SELECT count(*) AS n FROM outbox")[0]["n"] == sum(expected.values())
         and unpublished(s) == 0, timeout=20, interval=0.2, what="every event of the flow, expiries included, relayed")
    events = kafka_events(broker)
    outbox = {r["event_id"]: r for r in s.db_query("SELECT id, event_id, type, aggregate_id, occurred_at FROM outbox")}

    # exactly the expected events, each once (no failure: the normal case publishes once)
    assert Counter(e["envelope"]["type"] for e in events) == expected
    ids = [e["envelope"]["eventId"] for e in events]
    assert len(set(ids)) == len(ids), f"an event published twice: {Counter(ids).most_common(3)}"
    assert set(ids) == set(outbox)

    for e in events:
        env, row = e["envelope"], outbox[e["envelope"]["eventId"]]
        assert set(env) == ENVELOPE_FIELDS, env
        assert e["topic"] == "concertd." + env["type"].split(".")[0], (e["topic"], env["type"])
        assert e["key"] == str(env["aggregateId"]) == str(row["aggregate_id"]), e
        assert e["headers"] == {"event_id": env["eventId"], "event_type": env["type"]}, e["headers"]
        assert (env["type"], env["occurredAt"]) == (row["type"], row["occurred_at"]), (env, row)
        p = env["payload"]
        assert isinstance(p, dict) and p.get("eventId") == env["eventId"], p
        if env["type"].startswith("reservation."):
            assert env["aggregateId"] == p["reservationId"] and p["reservationId"] in {**paid, **left}, env
            assert p["userId"] == {**paid, **left}[p["reservationId"]] and p["price"] == PRICE, env
        elif env["type"].startswith("points."):
            assert env["aggregateId"] == p["userId"] and p["userId"] in users, env
        else:  # payment.completed: keyed by its reservation, like the reservation's own events
            assert payments.get(p["paymentId"]) == p["reservationId"] == env["aggregateId"], env
            assert p["amount"] == PRICE and p["userId"] == paid[p["reservationId"]], env

    # per key: one partition, offsets in outbox order, and the story of the aggregate
    by_key = defaultdict(list)
    for e in events:
        by_key[(e["topic"], e["key"])].append(e)
    for (topic, key), msgs in by_key.items():
        assert len({m["partition"] for m in msgs}) == 1, f"{topic} key {key} over several partitions"
        msgs.sort(key=lambda m: m["offset"])
        order = [outbox[m["envelope"]["eventId"]]["id"] for m in msgs]
        assert order == sorted(order), f"{topic} key {key}: not in outbox order"
        story = [m["envelope"]["type"] for m in msgs]
        if topic == "concertd.reservation":
            end = "reservation.confirmed" if int(key) in paid else "reservation.expired"
            assert story == ["reservation.held", end], (key, story)
        elif topic == "concertd.points":
            assert story == ["points.charged", "points.charged", "points.used"], (key, story)
            assert [m["envelope"]["payload"]["balanceAfter"] for m in msgs] == [PRICE, 2 * PRICE, PRICE]
        else:
            assert story == ["payment.completed"], (key, story)

    check_ledger(s, len(payments))
    assert metric(s, "concertd_events_published_total") == sum(expected.values())
    # (counted just after the ledger's commit)
    poll(lambda: metric(s, "concertd_events_consumed_total") == len(payments), timeout=5, what="3 events consumed")
    body = ready(s)
    assert body and body["checks"]["kafka"] == "up" and body["outboxUnpublished"] == 0, body


def test_broker_outage_mid_burst(broker, make_server):
    # Short holds: unpaid holds expire during the burst, so seats never run out (and expiries
    # are among the events that wait in the outbox).
    s = make_server(processes=1, **kafka_env(broker, CONCERTD_HOLD_SECONDS=5))
    api = Api(s)
    poll(lambda: ready(s), timeout=10, what="/readyz 200 with Kafka up")
    _, sids = api.create_concert([schedule_spec(seats=200, price=PRICE), schedule_spec(days=40, seats=200, price=PRICE)])
    users, hot, ledger, stop, threads = start_burst(api, sids, 200, clients=8)
    try:
        poll(lambda: len(ledger.payments) >= 10 and metric(s, "concertd_events_published_total") > 0,
             timeout=30, what="10 payments and events on Kafka before the outage")
        broker.stop()
        down_at = time.monotonic()
        paid_before = len(ledger.payments)

        def down():
            r = s.get("/readyz", allow_5xx=True)
            body = r.json()
            ok = r.status_code == 503 and body["checks"].get("kafka") == "down" and body.get("outboxUnpublished", 0) > 0
            return body if ok else None
        down_body = poll(down, timeout=10, interval=0.1, what="/readyz 503 with kafka down and a backlog")
        # Down for longer than the producer's delivery timeout (10 s, docs/kafka.md): the batch in
        # flight fails, is rolled back and sent again after the restart.
        poll(lambda: len(ledger.payments) >= paid_before + 10 and time.monotonic() - down_at > OUTAGE_SECONDS,
             timeout=40, what="10 payments while the broker is down")
        backlog = metric(s, "concertd_outbox_unpublished")
        assert backlog >= down_body["outboxUnpublished"] > 0, (backlog, down_body)
        assert not ledger.unavailable, f"5xx while the broker is down: {ledger.unavailable[:5]}"

        broker.start()  # same directory and port: its topics and the group's offsets are back
        up_at = time.monotonic()
        paid_up = len(ledger.payments)
        poll(lambda: len(ledger.payments) >= paid_up + 5, timeout=30, what="5 payments after the broker came back")
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads), "a client hangs"
    assert not ledger.unavailable, f"5xx: {ledger.unavailable[:10]}"
    assert not ledger.transport_errors, dict(ledger.transport_errors)
    assert not ledger.odd, ledger.odd[:10]

    poll(lambda: unpublished(s) == 0, timeout=60, interval=0.2, what="the outbox drained after the outage")
    drained_in = time.monotonic() - up_at
    poll(lambda: ready(s), timeout=10, what="/readyz 200 after the outage")
    on_kafka, in_outbox = all_on_kafka(s, broker)
    paid = s.db_query("SELECT count(*) AS n FROM payments")[0]["n"]
    assert set(ledger.payments) <= {r["id"] for r in s.db_query("SELECT id FROM payments")}
    check_ledger(s, paid)
    poll(lambda: metric(s, "concertd_events_consumed_total") == paid, timeout=5, what=f"{paid} events consumed")
    report(f"kafka outage: {len(in_outbox)} events, backlog {int(backlog)} while down "
           f"{up_at - down_at:.1f} s, drained {drained_in:.1f} s after the start; "
           f"{sum(on_kafka.values()) - len(on_kafka)} sent twice; {paid} payments, answers {dict(ledger.statuses)}")


def relay_holder(servers: list[Server]) -> Server | None:
    """The process whose database session holds the relay's turn (a transaction-scoped advisory
    lock), found by the session's client port."""
    with servers[0].db() as db:
        rows = db.tuples(
            "SELECT a.client_port FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = ? AND l.objid = ? AND l.objsubid = 1",
            (RELAY_LOCK_KEY >> 32, RELAY_LOCK_KEY & 0xFFFFFFFF))
    if not rows:
        return None
    out = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{rows[0][0]} )"],
                         capture_output=True, text=True).stdout
    pids = {int(p) for p in re.findall(r"pid=(\d+)", out)}
    return next((s for s in servers if s.running and s.proc.pid in pids), None)


def test_kill_9_of_the_relaying_process_loses_no_event(tmp_path, broker):
    a, b = start_pair(tmp_path, "relay", **kafka_env(broker, CONCERTD_HOLD_SECONDS=5))
    try:
        api = Api(b)
        poll(lambda: ready(a) and ready(b), timeout=10, what="/readyz 200 on both with Kafka up")
        _, sids = api.create_concert([schedule_spec(seats=200, price=PRICE), schedule_spec(days=40, seats=200, price=PRICE)])
        users, hot, ledger, stop, threads = start_burst(api, sids, 200, clients=8, servers=[a, b])
        try:
            poll(lambda: len(ledger.payments) >= 10, timeout=30, what="10 payments before the kill")
            # Frozen, the broker takes the relayer's batch and never acknowledges it: the relayer
            # holds its turn (and the batch, unmarked) until message.timeout.ms.
            broker.pause()
            try:
                def steady_holder():
                    first = relay_holder([a, b])
                    time.sleep(0.3)
                    return first if first is not None and relay_holder([a, b]) is first else None
                victim = poll(steady_holder, timeout=15, interval=0.1, what="a process holding the relay's turn")
                in_flight = unpublished(b)
                victim.kill()
            finally:
                broker.resume()
            survivor = b if victim is a else a
            paid_at_kill = len(ledger.payments)
            poll(lambda: len(ledger.payments) >= paid_at_kill + 10, timeout=30,
                 what="10 payments on the survivor after the kill")
        finally:
            stop.set()
            for t in threads:
                t.join(30)
        assert not any(t.is_alive() for t in threads), "a client hangs"
        assert not ledger.unavailable, f"5xx: {ledger.unavailable[:10]}"
        assert all(name == victim.name for name, _, _ in ledger.transport_errors), dict(ledger.transport_errors)

        poll(lambda: unpublished(survivor) == 0, timeout=60, interval=0.2, what="the outbox drained by the survivor")
        on_kafka, in_outbox = all_on_kafka(survivor, broker)
        # The survivor's consumer takes over the dead member's partitions (session.timeout.ms).
        check_ledger(survivor, survivor.db_query("SELECT count(*) AS n FROM payments")[0]["n"])
        report(f"kafka kill -9 of the relayer ({victim.name}, {in_flight} unpublished at the kill): "
               f"{len(in_outbox)} events all on Kafka, {sum(on_kafka.values()) - len(on_kafka)} sent twice")
    finally:
        b.close()
        a.close()  # it created the database: last


def test_poison_messages_go_to_the_dead_letter_topic(broker, make_server):
    s = make_server(processes=1, **kafka_env(broker))
    api = Api(s)
    poll(lambda: ready(s), timeout=10, what="/readyz 200 with Kafka up")
    sid = api.new_schedule(seats=5, price=PRICE)
    user, token = api.user_with_token()
    api.charged(user, PRICE)
    rid = api.held(token, user, sid, 1)["reservationId"]
    # Keyed like the payment that follows: the same partition, before it.
    broker.produce("concertd.payment", "not an event", key=str(rid), headers={"event_id": "poison-1"})
    forged = {"eventId": "poison-2", "type": "payment.completed", "aggregateId": rid,
              "occurredAt": int(time.time() * 1000), "payload": {"no": "payment"}}  # fails 5 times
    broker.produce("concertd.payment", json.dumps(forged), key=str(rid), headers={"event_id": "poison-2"})
    expect(api.pay(token, user, rid), 201)

    check_ledger(s, 1)
    poll(lambda: metric(s, "concertd_events_dead_lettered_total") >= 2, timeout=30, what="two dead letters")
    letters = broker.consume(DEAD_LETTER, timeout=60)
    assert sorted(m["payload"] for m in letters) == sorted(["not an event", json.dumps(forged)]), letters
    for m in letters:
        h = m.get("headers") or []
        headers = dict(zip(h[::2], h[1::2]))
        assert m["key"] == str(rid), m
        assert headers.get("consumer") == "sales_ledger" and headers.get("source_topic") == "concertd.payment", headers
        assert headers.get("error") and headers.get("event_id") in ("poison-1", "poison-2"), headers
    assert s.db_query("SELECT count(*) AS n FROM processed_events WHERE event_id LIKE 'poison-%'")[0]["n"] == 0
