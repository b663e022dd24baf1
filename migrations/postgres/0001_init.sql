-- concertd schema on PostgreSQL, version 1. Times are bigint milliseconds since the Unix epoch
-- (UTC), as on SQLite, taken from the database's clock (now_ms()) so every process agrees.

CREATE FUNCTION now_ms() RETURNS bigint LANGUAGE sql STABLE
    AS $$ SELECT (extract(epoch FROM now()) * 1000)::bigint $$;  -- the transaction's time

CREATE TABLE concerts (
    id          bigserial PRIMARY KEY,
    title       text   NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE schedules (
    id           bigserial PRIMARY KEY,
    concert_id   bigint  NOT NULL REFERENCES concerts(id),
    starts_at    bigint  NOT NULL,
    total_seats  integer NOT NULL CHECK (total_seats > 0)
);
-- dates of a concert
CREATE INDEX schedules_by_concert ON schedules(concert_id, starts_at);

-- The seat row is what every strategy locks, versions or conditionally updates.
CREATE TABLE seats (
    id               bigserial PRIMARY KEY,
    schedule_id      bigint  NOT NULL REFERENCES schedules(id),
    seat_no          integer NOT NULL CHECK (seat_no > 0),
    price            bigint  NOT NULL CHECK (price > 0),
    status           text    NOT NULL DEFAULT 'AVAILABLE' CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    hold_expires_at  bigint,
    version          bigint  NOT NULL DEFAULT 0,
    UNIQUE (schedule_id, seat_no)  -- seat map by schedule; seat by (schedule, number)
);

CREATE TABLE reservations (
    id           bigserial PRIMARY KEY,
    user_id      bigint  NOT NULL,
    schedule_id  bigint  NOT NULL REFERENCES schedules(id),
    seat_id      bigint  NOT NULL REFERENCES seats(id),
    seat_no      integer NOT NULL,
    price        bigint  NOT NULL,
    status       text    NOT NULL CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED')),
    created_at   bigint  NOT NULL,
    expires_at   bigint  NOT NULL,
    resolved_at  bigint,
    version      bigint  NOT NULL DEFAULT 0
);
-- The last guard of correctness: one live hold or sale per seat, whatever the strategy did.
CREATE UNIQUE INDEX reservations_one_live_per_seat ON reservations(seat_id)
    WHERE status IN ('HELD', 'CONFIRMED');
-- the sweeper's query: holds due to expire
CREATE INDEX reservations_due ON reservations(expires_at) WHERE status = 'HELD';

CREATE TABLE wallets (
    user_id  bigint PRIMARY KEY,
    balance  bigint NOT NULL CHECK (balance BETWEEN 0 AND 100000000),
    version  bigint NOT NULL DEFAULT 0
);

CREATE TABLE wallet_entries (
    id             bigserial PRIMARY KEY,
    user_id        bigint NOT NULL,
    type           text   NOT NULL CHECK (type IN ('CHARGE', 'USE')),
    amount         bigint NOT NULL CHECK (amount > 0),
    balance_after  bigint NOT NULL,
    at             bigint NOT NULL
);
-- history of a wallet, newest first
CREATE INDEX wallet_entries_by_user ON wallet_entries(user_id, id DESC);

CREATE TABLE payments (
    id              bigserial PRIMARY KEY,
    reservation_id  bigint NOT NULL UNIQUE REFERENCES reservations(id),  -- paid exactly once
    user_id         bigint NOT NULL,
    amount          bigint NOT NULL,
    status          text   NOT NULL CHECK (status IN ('COMPLETED')),
    paid_at         bigint NOT NULL
);

CREATE TABLE idempotency_keys (
    key             text   PRIMARY KEY,
    user_id         bigint NOT NULL,
    reservation_id  bigint NOT NULL,
    payment_id      bigint NOT NULL REFERENCES payments(id),
    created_at      bigint NOT NULL
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);

CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      text   NOT NULL UNIQUE,
    type          text   NOT NULL,
    aggregate_id  bigint NOT NULL,
    payload       text   NOT NULL,
    occurred_at   bigint NOT NULL,
    published_at  bigint
);
-- the relay's query: unpublished rows in order
CREATE INDEX outbox_unpublished ON outbox(id) WHERE published_at IS NULL;

CREATE TABLE processed_events (
    consumer      text   NOT NULL,
    event_id      text   NOT NULL,
    processed_at  bigint NOT NULL,
    PRIMARY KEY (consumer, event_id)
);

CREATE TABLE sales_ledger (
    id              bigserial PRIMARY KEY,
    event_id        text   NOT NULL UNIQUE,
    payment_id      bigint NOT NULL UNIQUE,
    reservation_id  bigint NOT NULL,
    user_id         bigint NOT NULL,
    amount          bigint NOT NULL,
    recorded_at     bigint NOT NULL
);

-- The waiting queue when no Redis is configured: the table a team reaches for first.
CREATE TABLE queue_tokens (
    token        text   PRIMARY KEY,
    user_id      bigint NOT NULL,
    seq          bigserial NOT NULL,
    status       text   NOT NULL CHECK (status IN ('WAITING', 'ACTIVE')),
    last_poll_at bigint NOT NULL,
    expires_at   bigint            -- ACTIVE: end of the active TTL
);
-- one live token per user (issuing again returns it)
CREATE UNIQUE INDEX queue_tokens_by_user ON queue_tokens(user_id);
-- positions and admission: the line in order
CREATE INDEX queue_tokens_line ON queue_tokens(seq) WHERE status = 'WAITING';
-- active count and active expiry
CREATE INDEX queue_tokens_active ON queue_tokens(expires_at) WHERE status = 'ACTIVE';

-- One row: the admission budget shared by every process (token bucket), locked by the admitter.
CREATE TABLE queue_admission (
    id              integer PRIMARY KEY CHECK (id = 1),
    budget          double precision NOT NULL,
    refilled_at     bigint NOT NULL
);
INSERT INTO queue_admission VALUES (1, 0, 0);

-- Fencing tokens of the advisory-lock `distributed` strategy.
CREATE SEQUENCE lock_fence;
