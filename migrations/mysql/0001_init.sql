-- concertd schema on MariaDB 10.11 and MySQL 8, version 1: the tables of migrations/postgres
-- 0001..0003 in one file (same names and columns, except idempotency_keys.idem_key and the
-- lock_fence table below). Times are BIGINT milliseconds since the Unix epoch (UTC), taken from
-- the database's clock so every process agrees: CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED),
-- computed by the adapter in each statement (no stored function).
--
-- The same SQL runs on both servers; where they differ it says so. Every table is InnoDB,
-- utf8mb4 with the binary collation utf8mb4_bin, so comparisons are byte-wise and
-- case-sensitive as on PostgreSQL (tokens, keys and event ids must not match another case).
-- utf8mb4_bin is PAD SPACE on both servers ('a' = 'a '); no key the service stores can end in a
-- space (tokens are hex, event ids UUIDs, Idempotency-Keys printable ASCII without spaces).
--
-- MySQL and MariaDB commit before and after each DDL statement: a migration is not atomic. Every
-- statement here may run again (IF NOT EXISTS, INSERT IGNORE), so a start killed halfway through
-- this file finishes it on the next start (the runner records the version only at the end).
-- No partial indexes on either server: each partial index of PostgreSQL is an ordinary
-- composite index led by the column it filtered on, or a generated column (reservations).

CREATE TABLE IF NOT EXISTS concerts (
    id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    title       VARCHAR(200) NOT NULL,  -- domain limit kTitleMaxChars (code points)
    created_at  BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS schedules (
    id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    concert_id   BIGINT NOT NULL,
    starts_at    BIGINT NOT NULL,
    total_seats  INT    NOT NULL,
    CONSTRAINT schedules_total_seats CHECK (total_seats > 0),
    -- dates of a concert (also the foreign key's index)
    KEY schedules_by_concert (concert_id, starts_at),
    CONSTRAINT schedules_concert FOREIGN KEY (concert_id) REFERENCES concerts (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The seat row is what every strategy locks, versions or conditionally updates.
CREATE TABLE IF NOT EXISTS seats (
    id               BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    schedule_id      BIGINT      NOT NULL,
    seat_no          INT         NOT NULL,
    price            BIGINT      NOT NULL,
    status           VARCHAR(16) NOT NULL DEFAULT 'AVAILABLE',
    hold_expires_at  BIGINT,
    version          BIGINT      NOT NULL DEFAULT 0,
    -- Fencing for the `distributed` strategy: the last lock fence that wrote this row. A writer
    -- whose fence is not newer lost its lease to another holder, and its write is refused.
    lock_fence       BIGINT      NOT NULL DEFAULT 0,
    CONSTRAINT seats_seat_no CHECK (seat_no > 0),
    CONSTRAINT seats_price CHECK (price > 0),
    CONSTRAINT seats_status CHECK (status IN ('AVAILABLE', 'HELD', 'SOLD')),
    -- seat map by schedule (in seat order); seat by (schedule, number)
    UNIQUE KEY seats_by_schedule (schedule_id, seat_no),
    -- The dates list counts each schedule's taken seats (sold, or held with their expiry): PG's
    -- partial index on status <> 'AVAILABLE'. Covering, so the count reads this index alone.
    KEY seats_taken_by_schedule (schedule_id, status, hold_expires_at),
    CONSTRAINT seats_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS reservations (
    id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id      BIGINT      NOT NULL,
    schedule_id  BIGINT      NOT NULL,
    seat_id      BIGINT      NOT NULL,
    seat_no      INT         NOT NULL,
    price        BIGINT      NOT NULL,
    status       VARCHAR(16) NOT NULL,
    created_at   BIGINT      NOT NULL,
    expires_at   BIGINT      NOT NULL,
    resolved_at  BIGINT,
    version      BIGINT      NOT NULL DEFAULT 0,
    -- The seat while the reservation is live (HELD or CONFIRMED), NULL once it expired. Computed
    -- by the server: no INSERT or UPDATE names it (MySQL 8 refuses any value but DEFAULT;
    -- MariaDB ignores one). STORED, not VIRTUAL: both servers index either, but a stored column
    -- keeps the unique check a plain index lookup, with nothing to recompute in InnoDB's purge.
    live_seat_id BIGINT GENERATED ALWAYS AS
        (IF(status IN ('HELD', 'CONFIRMED'), seat_id, NULL)) STORED,
    CONSTRAINT reservations_status CHECK (status IN ('HELD', 'CONFIRMED', 'EXPIRED')),
    -- The last guard of correctness: one live hold or sale per seat, whatever the strategy did
    -- (PG: a unique index on seat_id WHERE status IN ('HELD', 'CONFIRMED')). A unique index
    -- allows any number of NULLs: a seat may have many EXPIRED reservations. The duplicate is
    -- error 1062 (ER_DUP_ENTRY, SQLSTATE 23000) naming this key.
    UNIQUE KEY reservations_one_live_per_seat (live_seat_id),
    -- the seat's reservations by status (the hold's read of a stale HELD one; the foreign key)
    KEY reservations_by_seat (seat_id, status),
    KEY reservations_by_schedule (schedule_id),
    -- the sweeper's query: holds due to expire (PG: expires_at WHERE status = 'HELD')
    KEY reservations_due (status, expires_at),
    CONSTRAINT reservations_schedule FOREIGN KEY (schedule_id) REFERENCES schedules (id),
    CONSTRAINT reservations_seat FOREIGN KEY (seat_id) REFERENCES seats (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wallets (
    user_id     BIGINT NOT NULL PRIMARY KEY,
    balance     BIGINT NOT NULL,
    version     BIGINT NOT NULL DEFAULT 0,
    lock_fence  BIGINT NOT NULL DEFAULT 0,  -- as seats.lock_fence
    CONSTRAINT wallets_balance CHECK (balance BETWEEN 0 AND 100000000)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS wallet_entries (
    id             BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id        BIGINT      NOT NULL,
    type           VARCHAR(16) NOT NULL,
    amount         BIGINT      NOT NULL,
    balance_after  BIGINT      NOT NULL,
    at             BIGINT      NOT NULL,
    CONSTRAINT wallet_entries_type CHECK (type IN ('CHARGE', 'USE')),
    CONSTRAINT wallet_entries_amount CHECK (amount > 0),
    -- history of a wallet, newest first: read backwards (MariaDB has DESC indexes only from
    -- 10.8, and a backward scan of this one is as cheap)
    KEY wallet_entries_by_user (user_id, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS payments (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    reservation_id  BIGINT      NOT NULL,
    user_id         BIGINT      NOT NULL,
    amount          BIGINT      NOT NULL,
    status          VARCHAR(16) NOT NULL,
    paid_at         BIGINT      NOT NULL,
    CONSTRAINT payments_status CHECK (status IN ('COMPLETED')),
    UNIQUE KEY payments_once_per_reservation (reservation_id),  -- paid exactly once
    CONSTRAINT payments_reservation FOREIGN KEY (reservation_id) REFERENCES reservations (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The key column is `idem_key`, not PostgreSQL's `key`: KEY is a reserved word on both servers.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    idem_key        VARCHAR(128) NOT NULL PRIMARY KEY,  -- domain limit kIdempotencyKeyMaxChars
    user_id         BIGINT       NOT NULL,
    reservation_id  BIGINT       NOT NULL,
    payment_id      BIGINT       NOT NULL,
    created_at      BIGINT       NOT NULL,
    KEY idempotency_keys_by_age (created_at),
    KEY idempotency_keys_by_payment (payment_id),
    CONSTRAINT idempotency_keys_payment FOREIGN KEY (payment_id) REFERENCES payments (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS outbox (
    id            BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id      VARCHAR(64) NOT NULL,  -- a UUID (36)
    type          VARCHAR(64) NOT NULL,
    aggregate_id  BIGINT      NOT NULL,
    payload       TEXT        NOT NULL,  -- JSON, well under TEXT's 64 KiB
    occurred_at   BIGINT      NOT NULL,
    published_at  BIGINT,
    UNIQUE KEY outbox_event_id (event_id),
    -- the relay's query: unpublished rows in id order (PG: id WHERE published_at IS NULL). The
    -- NULLs come first and in id order within; published ones are found by age for the purge.
    KEY outbox_unpublished (published_at, id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS processed_events (
    consumer      VARCHAR(64) NOT NULL,
    event_id      VARCHAR(64) NOT NULL,
    processed_at  BIGINT      NOT NULL,
    PRIMARY KEY (consumer, event_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS sales_ledger (
    id              BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id        VARCHAR(64) NOT NULL,
    payment_id      BIGINT      NOT NULL,
    reservation_id  BIGINT      NOT NULL,
    user_id         BIGINT      NOT NULL,
    amount          BIGINT      NOT NULL,
    recorded_at     BIGINT      NOT NULL,
    UNIQUE KEY sales_ledger_event_id (event_id),
    UNIQUE KEY sales_ledger_payment_id (payment_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The waiting queue when no Redis is configured.
CREATE TABLE IF NOT EXISTS queue_tokens (
    token         VARCHAR(64) NOT NULL PRIMARY KEY,  -- 32 hex digits (128 random bits)
    user_id       BIGINT      NOT NULL,
    -- The place in line. InnoDB allows one AUTO_INCREMENT column per table and wants it first in
    -- an index (queue_tokens_seq). A new place is a new row (DELETE the dead token, INSERT the
    -- new one): the counter does not follow an UPDATE of seq, so an updated seq could later
    -- collide with a generated one.
    seq           BIGINT      NOT NULL AUTO_INCREMENT,
    status        VARCHAR(16) NOT NULL,
    last_poll_at  BIGINT      NOT NULL,
    expires_at    BIGINT,  -- ACTIVE: end of the active TTL
    CONSTRAINT queue_tokens_status CHECK (status IN ('WAITING', 'ACTIVE')),
    UNIQUE KEY queue_tokens_seq (seq),
    -- one live token per user (issuing again returns it)
    UNIQUE KEY queue_tokens_by_user (user_id),
    -- positions and admission: the line in order (PG: seq WHERE status = 'WAITING')
    KEY queue_tokens_line (status, seq),
    -- active count and active expiry (PG: expires_at WHERE status = 'ACTIVE')
    KEY queue_tokens_active (status, expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- One row: the admission budget shared by every process (token bucket), locked by the admitter.
CREATE TABLE IF NOT EXISTS queue_admission (
    id           INT    NOT NULL PRIMARY KEY,
    budget       DOUBLE NOT NULL,
    refilled_at  BIGINT NOT NULL,
    CONSTRAINT queue_admission_one_row CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO queue_admission (id, budget, refilled_at) VALUES (1, 0, 0);

-- Fencing tokens of the `distributed` strategy (PG: the sequence lock_fence; neither server here
-- has sequences that MySQL 8 shares). One row, bumped in its own autocommit statement so its row
-- lock is held for that statement only:
--   UPDATE lock_fence SET value = LAST_INSERT_ID(GREATEST(value + 1, <clock in µs>)) WHERE id = 1
-- then SELECT LAST_INSERT_ID() on the same connection (LAST_INSERT_ID(expr) sets the connection's
-- value; the OK packet's insert id carries it too, so no second round trip is needed).
CREATE TABLE IF NOT EXISTS lock_fence (
    id     TINYINT NOT NULL PRIMARY KEY,
    value  BIGINT  NOT NULL,
    CONSTRAINT lock_fence_one_row CHECK (id = 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
INSERT IGNORE INTO lock_fence (id, value) VALUES (1, 0);
