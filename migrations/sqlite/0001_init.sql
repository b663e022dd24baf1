-- concertd schema, version 1. Times are integer milliseconds since the Unix epoch (UTC).

CREATE TABLE concerts (
    id          INTEGER PRIMARY KEY,
    title       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE schedules (
    id           INTEGER PRIMARY KEY,
    concert_id   INTEGER NOT NULL REFERENCES concerts(id),
    starts_at    INTEGER NOT NULL,
    total_seats  INTEGER NOT NULL CHECK (total_seats > 0)
);
-- schedules of a concert (dates list)
CREATE INDEX schedules_by_concert ON schedules(concert_id, starts_at);

-- The seat row is what every strategy locks, versions or conditionally updates.
CREATE TABLE seats (
    id               INTEGER PRIMARY KEY,
    schedule_id      INTEGER NOT NULL REFERENCES schedules(id),
    seat_no          INTEGER NOT NULL CHECK (seat_no > 0),
    price            INTEGER NOT NULL CHECK (price > 0),
    status           TEXT    NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    hold_expires_at  INTEGER,
    version          INTEGER NOT NULL DEFAULT 0,
    UNIQUE (schedule_id, seat_no)  -- seat map by schedule; seat by (schedule, number)
);

CREATE TABLE reservations (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    schedule_id  INTEGER NOT NULL REFERENCES schedules(id),
    seat_id      INTEGER NOT NULL REFERENCES seats(id),
    seat_no      INTEGER NOT NULL,
    price        INTEGER NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED')),
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    resolved_at  INTEGER,
    version      INTEGER NOT NULL DEFAULT 0
);
-- The last guard of correctness: the database refuses a second live hold or sale of one seat,
-- whatever the strategy did.
CREATE UNIQUE INDEX reservations_one_live_per_seat ON reservations(seat_id)
    WHERE status IN ('HELD', 'CONFIRMED');
-- the live or stale reservation of a seat (a new hold resolves a stale one)
CREATE INDEX reservations_by_seat ON reservations(seat_id, status);
-- the sweeper's query: holds due to expire
CREATE INDEX reservations_due ON reservations(expires_at) WHERE status = 'HELD';

CREATE TABLE wallets (
    user_id  INTEGER PRIMARY KEY,
    balance  INTEGER NOT NULL CHECK (balance BETWEEN 0 AND 100000000),
    version  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE wallet_entries (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL,
    type           TEXT    NOT NULL CHECK (type IN ('CHARGE', 'USE')),
    amount         INTEGER NOT NULL CHECK (amount > 0),
    balance_after  INTEGER NOT NULL,
    at             INTEGER NOT NULL
);
-- history of a wallet, newest first
CREATE INDEX wallet_entries_by_user ON wallet_entries(user_id, id);

CREATE TABLE payments (
    id              INTEGER PRIMARY KEY,
    reservation_id  INTEGER NOT NULL UNIQUE REFERENCES reservations(id),  -- paid exactly once
    user_id         INTEGER NOT NULL,
    amount          INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('COMPLETED')),
    paid_at         INTEGER NOT NULL
);

-- Idempotency-Key of POST /v1/payments: written in the payment's own transaction.
CREATE TABLE idempotency_keys (
    key             TEXT    PRIMARY KEY,
    user_id         INTEGER NOT NULL,
    reservation_id  INTEGER NOT NULL,
    payment_id      INTEGER NOT NULL REFERENCES payments(id),
    created_at      INTEGER NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);

-- Transactional outbox: rows written in the transaction of the change they describe.
CREATE TABLE outbox (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,
    type          TEXT    NOT NULL,
    aggregate_id  INTEGER NOT NULL,
    payload       TEXT    NOT NULL,
    occurred_at   INTEGER NOT NULL,
    published_at  INTEGER
);
-- the relay's query: unpublished rows in order
CREATE INDEX outbox_unpublished ON outbox(id) WHERE published_at IS NULL;

-- Consumers act once per event id.
CREATE TABLE processed_events (
    consumer   TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

-- The sales ledger consumer's effect: one row per completed payment.
CREATE TABLE sales_ledger (
    id              INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL UNIQUE,
    payment_id      INTEGER NOT NULL UNIQUE,
    reservation_id  INTEGER NOT NULL,
    user_id         INTEGER NOT NULL,
    amount          INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL
);
