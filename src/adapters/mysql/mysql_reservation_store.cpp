#include "adapters/mysql/mysql_reservation_store.hpp"

#include <cassert>

#include "adapters/mysql/mysql_rows.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

// Round trips of a hold that succeeds (each statement is one; a stale hold on the seat adds its
// UPDATE, and after a locked read also the read of its reservation; its event rides in the
// same INSERT as the new hold's):
//   optimistic   6: read (seat + its HELD reservation), START, claim (version check),
//                   INSERT reservation, INSERT event(s), COMMIT
//   pessimistic  7: read, START, read FOR UPDATE (the seat alone), claim, INSERT, INSERT, COMMIT
//   distributed  7, 8 with a fence: as pessimistic, the fence UPDATE first, the read unlocked
//   atomic       7: read, START, conditional claim, read of what it claimed, INSERT, INSERT,
//                   COMMIT
// A refusal of a taken seat costs 1 (the first read, which locks nothing); one that loses the
// race after that read: 3 more (START, the claim or the locked read, ROLLBACK).
//
// Locks (InnoDB, READ COMMITTED: record locks only, no gap locks): a hold locks the seat row
// (claim or FOR UPDATE), then inserts the reservation (its foreign keys take shared locks on
// the seat, already held, and on the schedule, shared by every hold); a payment locks the
// reservation, then the seat; the sweeper takes both with SKIP LOCKED, so it never waits on
// either. The schedule's columns come from scalar subqueries: MariaDB locks every row of a
// locking read's joins, but not the rows its subqueries read.

namespace concertd::mysql {

using app::HoldCommand;

namespace {

#define CONCERTD_MY_SEAT_COLUMNS                                                               \
    "SELECT s.id, (SELECT concert_id FROM schedules WHERE id = s.schedule_id),"                \
    " (SELECT starts_at FROM schedules WHERE id = s.schedule_id), s.price, s.status,"          \
    " s.hold_expires_at, s.version, " CONCERTD_MY_NOW_MS

// The seat, and its HELD reservation if any (at most one: the unique index), in one read.
constexpr std::string_view kSeatRead =
    CONCERTD_MY_SEAT_COLUMNS
    ", r.id, r.user_id, r.schedule_id, 0, r.seat_no, r.price, r.status, r.expires_at"
    " FROM seats s LEFT JOIN reservations r ON r.seat_id = s.id AND r.status = 'HELD'"
    " WHERE s.schedule_id = ? AND s.seat_no = ?";
// The seat alone, locked: a join would lock the reservation's row too (MariaDB locks every
// row a locking read joins), against the payment's order (reservation, then seat).
constexpr std::string_view kSeatForUpdate =
    CONCERTD_MY_SEAT_COLUMNS " FROM seats s WHERE s.schedule_id = ? AND s.seat_no = ? FOR UPDATE";
// The seat's HELD reservation, read after kSeatForUpdate only when the seat shows a hold whose
// time has passed.
constexpr std::string_view kHeldReservationOfSeat =
    "SELECT " CONCERTD_MY_RESERVATION_COLUMNS
    " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
    " WHERE r.seat_id = ? AND r.status = 'HELD'";

// What a hold reads before it writes.
struct SeatSnapshot {
    std::optional<std::int64_t> seat_id;
    ConcertId concert_id = 0;
    TimePoint starts_at;
    SeatState state;
    std::int64_t version = 0;
    TimePoint db_now;
    bool held_read = false;             // the read included the seat's HELD reservation
    std::optional<Reservation> held;    // that reservation, if any
};

SeatSnapshot read_snapshot(const MysqlResult& seat, SeatNo seat_no) {
    SeatSnapshot s;
    if (seat.rows() == 0) return s;
    s.seat_id = seat.int64(0, 0);
    s.concert_id = seat.int64(0, 1);
    s.starts_at = from_millis(seat.int64(0, 2));
    s.state.seat_no = seat_no;
    s.state.price_won = seat.int64(0, 3);
    s.state.stored_status = parse_seat_status(seat.text(0, 4)).value_or(SeatStatus::kSold);
    if (auto expiry = seat.optional_int64(0, 5)) s.state.hold_expires_at = from_millis(*expiry);
    s.version = seat.int64(0, 6);
    s.db_now = from_millis(seat.int64(0, 7));
    s.held_read = seat.columns() > 8;
    if (s.held_read && !seat.is_null(0, 8)) {
        s.held = read_reservation(seat, 0, 8);
        s.held->concert_id = s.concert_id;
    }
    return s;
}

std::vector<MysqlParam> seat_key(const HoldCommand& c) {
    return {param(c.schedule_id), param(std::int64_t{c.seat_no})};
}

std::optional<Refusal> check_hold(const SeatSnapshot& s) {
    if (!s.seat_id) return Refusal{Rejection::kNotFound, "no such schedule or seat"};
    if (s.starts_at <= s.db_now) {
        return Refusal{Rejection::kSeatUnavailable, "the performance has already started"};
    }
    return check_holdable(s.state, s.db_now);
}

std::chrono::milliseconds hold_duration(const HoldCommand& c) { return c.expires_at - c.now; }

// The seat and its HELD reservation, read without a lock (kSeatRead).
app::Task<SeatSnapshot> read_seat(detail::MysqlConnection& conn, const HoldCommand& c,
                                  std::chrono::milliseconds timeout) {
    co_return read_snapshot(co_await conn.execute(kSeatRead, seat_key(c), timeout), c.seat_no);
}

// The seat's HELD reservation whose time has passed, which the claiming transaction must
// resolve EXPIRED: from the read, or (after a locked read of the seat alone) read now when the
// seat shows a passed hold.
app::Task<std::optional<Reservation>> stale_hold(detail::MysqlConnection& conn,
                                                 const SeatSnapshot& s,
                                                 std::chrono::milliseconds timeout) {
    std::optional<Reservation> held = s.held;
    if (!s.held_read && s.state.stored_status == SeatStatus::kHeld && s.state.hold_expires_at &&
        *s.state.hold_expires_at <= s.db_now) {
        held = find_reservation_in(
            co_await conn.execute(kHeldReservationOfSeat, {param(*s.seat_id)}, timeout));
    }
    // A live one (committed after the read) stays, and the unique index refuses the new hold.
    if (held && held->expires_at > s.db_now) held.reset();
    co_return held;
}

// The writes after the seat is claimed (inside the open transaction): resolve the stale hold,
// insert the reservation and the events, commit. The unique index refusing the reservation (a
// race the strategy could not see) is kSeatUnavailable, the transaction rolled back.
app::Task<Result<Reservation>> record_hold(detail::MysqlConnection& conn, const SeatSnapshot& s,
                                           const HoldCommand& c, TimePoint expires_at,
                                           std::chrono::milliseconds timeout) {
    std::vector<Event> events;
    try {
        if (auto stale = co_await stale_hold(conn, s, timeout)) {
            co_await conn.execute(
                "UPDATE reservations SET status = 'EXPIRED', resolved_at = ?,"
                " version = version + 1 WHERE id = ? AND status = 'HELD' AND expires_at <= ?",
                {param(to_millis(s.db_now)), param(stale->id), param(to_millis(s.db_now))},
                timeout);
            stale->stored_status = ReservationStatus::kExpired;
            events.push_back(app::reservation_expired_event(*stale, s.db_now));
        }
        auto inserted = co_await conn.execute(
            "INSERT INTO reservations (user_id, schedule_id, seat_id, seat_no, price, status,"
            " created_at, expires_at) VALUES (?, ?, ?, ?, ?, 'HELD', ?, ?)",
            {param(c.user_id), param(c.schedule_id), param(*s.seat_id),
             param(std::int64_t{c.seat_no}), param(s.state.price_won), param(to_millis(s.db_now)),
             param(to_millis(expires_at))},
            timeout);
        Reservation reservation;
        reservation.id = inserted.insert_id();
        reservation.user_id = c.user_id;
        reservation.schedule_id = c.schedule_id;
        reservation.concert_id = s.concert_id;
        reservation.seat_no = c.seat_no;
        reservation.price_won = s.state.price_won;
        reservation.stored_status = ReservationStatus::kHeld;
        reservation.expires_at = expires_at;
        events.push_back(app::reservation_held_event(reservation, s.db_now));
        co_await insert_events(conn, events, timeout);
        co_await conn.query(kCommit, timeout);
        co_return reservation;
    } catch (const MysqlError& error) {
        if (!error.is_duplicate_key()) throw;
    }
    co_return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
}

}  // namespace

app::Task<Result<Reservation>> MysqlReservationStore::hold(HoldCommand command) {
    co_return co_await retrying_conflicts([&] { return hold_once(command); });
}

app::Task<Result<Reservation>> MysqlReservationStore::hold_once(HoldCommand command) {
    switch (command.strategy) {
        case app::Strategy::kOptimistic: co_return co_await hold_optimistic(command);
        case app::Strategy::kAtomic: co_return co_await hold_atomic(command);
        case app::Strategy::kPessimistic: co_return co_await hold_locked(command, true);
        case app::Strategy::kDistributed: co_return co_await hold_locked(command, false);
    }
    co_return co_await hold_locked(command, true);
}

// pessimistic (row lock) and distributed (the lock port already serializes this seat).
app::Task<Result<Reservation>> MysqlReservationStore::hold_locked(HoldCommand c, bool row_lock) {
    assert(!c.queue_token && "the MariaDB stores do not check queue tokens");
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // A taken seat is refused by a read that locks nothing: under contention most holds are
    // for seats already gone, and queueing them on the row lock (holding a pooled connection
    // each) only to refuse them made 10,000 holds on one schedule wait past the pool's timeout.
    // The lock is for a seat that looks free; the locked read below decides.
    if (auto refusal = check_hold(co_await read_seat(*conn, c, timeout))) co_return *refusal;
    co_await conn->query(kBegin, timeout);
    bool fence_stale = false;
    if (c.fence) {
        // Fenced write: only a fence newer than the seat's last one may go on (and it locks
        // the row until commit).
        auto fenced = co_await conn->execute(
            "UPDATE seats SET lock_fence = ? WHERE schedule_id = ? AND seat_no = ?"
            " AND lock_fence < ?",
            {param(static_cast<std::int64_t>(*c.fence)), param(c.schedule_id),
             param(std::int64_t{c.seat_no}), param(static_cast<std::int64_t>(*c.fence))},
            timeout);
        fence_stale = fenced.affected_rows() == 0;
    }
    auto snapshot = read_snapshot(
        co_await conn->execute(row_lock ? kSeatForUpdate : kSeatRead, seat_key(c), timeout),
        c.seat_no);
    std::optional<Refusal> refusal = check_hold(snapshot);
    if (!refusal && fence_stale) refusal = stale_fence_refusal();
    if (refusal) {
        co_await conn->query(kRollback, timeout);
        co_return *refusal;
    }
    const TimePoint expires_at = snapshot.db_now + hold_duration(c);
    co_await conn->execute(
        "UPDATE seats SET status = 'HELD', hold_expires_at = ?, version = version + 1"
        " WHERE id = ?",
        {param(to_millis(expires_at)), param(*snapshot.seat_id)}, timeout);
    co_return co_await record_hold(*conn, snapshot, c, expires_at, timeout);
}

app::Task<Result<Reservation>> MysqlReservationStore::hold_optimistic(HoldCommand c) {
    assert(!c.queue_token && "the MariaDB stores do not check queue tokens");
    auto timeout = pool_.options().statement_timeout;
    for (int attempt = 1; attempt <= kOptimisticAttemptsMax; ++attempt) {
        std::optional<Result<Reservation>> outcome;
        {
            auto conn = co_await pool_.acquire();
            auto snapshot = co_await read_seat(*conn, c, timeout);
            // A taken seat is refused from the read alone: the loser never writes.
            if (auto refusal = check_hold(snapshot)) co_return *refusal;
            const TimePoint expires_at = snapshot.db_now + hold_duration(c);
            co_await conn->query(kBegin, timeout);
            auto claimed = co_await conn->execute(
                "UPDATE seats SET status = 'HELD', hold_expires_at = ?, version = version + 1"
                " WHERE id = ? AND version = ?",
                {param(to_millis(expires_at)), param(*snapshot.seat_id), param(snapshot.version)},
                timeout);
            if (claimed.affected_rows() == 1) {
                outcome = co_await record_hold(*conn, snapshot, c, expires_at, timeout);
            } else {
                co_await conn->query(kRollback, timeout);
            }
        }
        if (outcome) co_return std::move(*outcome);
        stats_.hold_retries.add();
        if (attempt < kOptimisticAttemptsMax) co_await jitter_pause(attempt);
    }
    // Still losing races after every retry: the seat is contended; take the row lock once.
    co_return co_await hold_locked(c, true);
}

app::Task<Result<Reservation>> MysqlReservationStore::hold_atomic(HoldCommand c) {
    assert(!c.queue_token && "the MariaDB stores do not check queue tokens");
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // As in hold_locked: a seat visibly taken is refused by a read that locks nothing. Without
    // it every loser of a storm paid 4 statements in a transaction, and 10,000 holds on one
    // 50-seat schedule waited past the pool's 3 s (1,994 answers 503, make bench 2026-12-03).
    // The conditional claim below still decides for a seat that looks free.
    if (auto refusal = check_hold(co_await read_seat(*conn, c, timeout))) co_return *refusal;
    co_await conn->query(kBegin, timeout);
    // Under READ COMMITTED a row that does not match is skipped without waiting for its lock
    // (InnoDB's semi-consistent read); one that matches is locked, then checked again.
    auto claimed = co_await conn->execute(
        "UPDATE seats SET status = 'HELD', hold_expires_at = " CONCERTD_MY_NOW_MS " + ?,"
        " version = version + 1"
        " WHERE schedule_id = ? AND seat_no = ?"
        " AND (status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= " CONCERTD_MY_NOW_MS
        "))"
        " AND (SELECT starts_at FROM schedules WHERE id = ?) > " CONCERTD_MY_NOW_MS,
        {param(static_cast<std::int64_t>(hold_duration(c).count())), param(c.schedule_id),
         param(std::int64_t{c.seat_no}), param(c.schedule_id)},
        timeout);
    if (claimed.affected_rows() == 0) {  // the seat exists (the first read): taken meanwhile
        co_await conn->query(kRollback, timeout);
        co_return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
    }
    // The read shows this claim; the stale hold it replaced, if any, is the HELD reservation
    // the read joined.
    auto snapshot = co_await read_seat(*conn, c, timeout);
    const TimePoint expires_at = *snapshot.state.hold_expires_at;
    co_return co_await record_hold(*conn, snapshot, c, expires_at, timeout);
}

app::Task<std::optional<Reservation>> MysqlReservationStore::find(ReservationId id) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT " CONCERTD_MY_RESERVATION_COLUMNS
        " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id WHERE r.id = ?",
        {param(id)}, pool_.options().statement_timeout);
    co_return find_reservation_in(result);
}

app::Task<std::vector<Reservation>> MysqlReservationStore::expire_due(TimePoint now, int batch) {
    co_return co_await retrying_conflicts([&] { return expire_due_once(batch); });
}

// Round trips: 2 when nothing is due; else 5 + one per kEventsPerInsertMax events.
app::Task<std::vector<Reservation>> MysqlReservationStore::expire_due_once(int batch) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    co_await conn->query(kBegin, timeout);
    // Lock each due hold's reservation and seat together and skip any that someone holds: a
    // hold locks the seat before the reservation, a payment the reservation before the seat;
    // a sweeper that waited on either could deadlock with them.
    auto claimed = co_await conn->execute(
        "SELECT r.id, r.user_id, r.schedule_id,"
        " (SELECT concert_id FROM schedules WHERE id = r.schedule_id), r.seat_no, r.price,"
        " r.status, r.expires_at, s.id, " CONCERTD_MY_NOW_MS
        " FROM reservations r JOIN seats s ON s.id = r.seat_id"
        " WHERE r.status = 'HELD' AND r.expires_at <= " CONCERTD_MY_NOW_MS
        " ORDER BY r.expires_at LIMIT ? FOR UPDATE SKIP LOCKED",
        {param(std::int64_t{batch})}, timeout);
    if (claimed.rows() == 0) {
        co_await conn->query(kRollback, timeout);
        co_return std::vector<Reservation>{};
    }
    std::vector<std::int64_t> reservation_ids, seat_ids;
    std::vector<Reservation> expired;
    std::vector<Event> events;
    for (int row = 0; row < claimed.rows(); ++row) {
        auto reservation = read_reservation(claimed, row);
        reservation.stored_status = ReservationStatus::kExpired;
        const TimePoint at = from_millis(claimed.int64(row, 9));
        reservation_ids.push_back(reservation.id);
        seat_ids.push_back(claimed.int64(row, 8));
        events.push_back(app::reservation_expired_event(reservation, at));
        expired.push_back(reservation);
    }
    // Integer lists, so text statements are safe (and not one prepared text per batch size).
    co_await conn->query("UPDATE reservations SET status = 'EXPIRED', resolved_at = " CONCERTD_MY_NOW_MS
                         ", version = version + 1 WHERE id IN (" +
                             int64_list(reservation_ids) + ")",
                         timeout);
    // Not a newer hold: only seats whose hold has passed.
    co_await conn->query("UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL,"
                         " version = version + 1 WHERE id IN (" +
                             int64_list(seat_ids) + ") AND status = 'HELD' AND hold_expires_at <= " +
                             CONCERTD_MY_NOW_MS,
                         timeout);
    co_await insert_events(*conn, events, timeout);
    co_await conn->query(kCommit, timeout);
    co_return expired;
}

}  // namespace concertd::mysql
