#include "adapters/sqlite/sqlite_reservation_store.hpp"

#include "adapters/sqlite/optimistic_retry.hpp"
#include "adapters/sqlite/sqlite_rows.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::sqlite {

using detail::Connection;
using detail::Transaction;
using app::HoldCommand;

namespace {

std::optional<Refusal> check_hold(const std::optional<SeatRow>& seat, const HoldCommand& c) {
    if (!seat) return Refusal{Rejection::kNotFound, "no such schedule or seat"};
    if (seat->schedule_starts_at <= c.now) {
        return Refusal{Rejection::kSeatUnavailable, "the performance has already started"};
    }
    return check_holdable(seat->state, c.now);
}

// Writes the reservation of a seat just claimed, and its event; resolves the seat's stale hold
// first so the unique index sees at most one live reservation.
Reservation record_hold(Connection& db, std::int64_t seat_id, ConcertId concert, Won price,
                        const HoldCommand& c) {
    expire_stale_holds_of_seat(db, seat_id, c.now);
    auto insert = db.prepare(
        "INSERT INTO reservations"
        " (user_id, schedule_id, seat_id, seat_no, price, status, created_at, expires_at)"
        " VALUES (?, ?, ?, ?, ?, 'HELD', ?, ?)");
    insert->bind(1, c.user_id)
        .bind(2, c.schedule_id)
        .bind(3, seat_id)
        .bind(4, std::int64_t{c.seat_no})
        .bind(5, price)
        .bind(6, to_millis(c.now))
        .bind(7, to_millis(c.expires_at))
        .execute();
    Reservation reservation;
    reservation.id = db.last_insert_rowid();
    reservation.user_id = c.user_id;
    reservation.schedule_id = c.schedule_id;
    reservation.concert_id = concert;
    reservation.seat_no = c.seat_no;
    reservation.price_won = price;
    reservation.stored_status = ReservationStatus::kHeld;
    reservation.expires_at = c.expires_at;
    insert_event(db, app::reservation_held_event(reservation, c.now));
    return reservation;
}

void mark_seat_held(Connection& db, std::int64_t seat_id, const HoldCommand& c) {
    auto update = db.prepare(
        "UPDATE seats SET status = 'HELD', hold_expires_at = ?, version = version + 1"
        " WHERE id = ?");
    update->bind(1, to_millis(c.expires_at)).bind(2, seat_id).execute();
}

// The unique index is the last guard: if a strategy let a second live hold through, the insert
// fails and the hold is refused, with nothing written.
template <class Fn>
auto refusing_duplicates(Fn&& fn) -> decltype(fn()) {
    try {
        return fn();
    } catch (const detail::SqliteError& error) {
        if (error.primary_code() != SQLITE_CONSTRAINT) throw;
        return Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
    }
}

// pessimistic and distributed: read and write inside one write transaction.
Result<Reservation> hold_in_transaction(Connection& db, const HoldCommand& c) {
    return refusing_duplicates([&]() -> Result<Reservation> {
        Transaction tx(db, Transaction::Kind::kImmediate);
        auto seat = find_seat(db, c.schedule_id, c.seat_no);
        if (auto refusal = check_hold(seat, c)) return *refusal;
        mark_seat_held(db, seat->seat_id, c);
        auto reservation = record_hold(db, seat->seat_id, seat->concert_id, seat->state.price_won, c);
        tx.commit();
        return reservation;
    });
}

// optimistic: the write succeeds only if the seat's version is the one read. nullopt when the
// version moved on.
std::optional<Result<Reservation>> hold_if_unchanged(Connection& db, const SeatRow& seat,
                                                     const HoldCommand& c) {
    return refusing_duplicates([&]() -> std::optional<Result<Reservation>> {
        Transaction tx(db, Transaction::Kind::kImmediate);
        auto update = db.prepare(
            "UPDATE seats SET status = 'HELD', hold_expires_at = ?, version = version + 1"
            " WHERE id = ? AND version = ?");
        update->bind(1, to_millis(c.expires_at)).bind(2, seat.seat_id).bind(3, seat.version).execute();
        if (db.changes() == 0) return std::nullopt;
        auto reservation = record_hold(db, seat.seat_id, seat.concert_id, seat.state.price_won, c);
        tx.commit();
        return Result<Reservation>(std::move(reservation));
    });
}

// atomic: one conditional UPDATE claims the seat, no read first.
Result<Reservation> hold_atomic(Connection& db, const HoldCommand& c) {
    return refusing_duplicates([&]() -> Result<Reservation> {
        Transaction tx(db, Transaction::Kind::kImmediate);
        auto claim = db.prepare(
            "UPDATE seats SET status = 'HELD', hold_expires_at = ?1, version = version + 1"
            " WHERE schedule_id = ?2 AND seat_no = ?3"
            " AND (status = 'AVAILABLE' OR (status = 'HELD' AND hold_expires_at <= ?4))"
            " AND (SELECT starts_at FROM schedules WHERE id = ?2) > ?4"
            " RETURNING id, price, (SELECT concert_id FROM schedules WHERE id = ?2)");
        claim->bind(1, to_millis(c.expires_at))
            .bind(2, c.schedule_id)
            .bind(3, std::int64_t{c.seat_no})
            .bind(4, to_millis(c.now));
        if (!claim->step()) {
            // Only the refusal path reads, to tell an unknown seat from a taken one.
            auto seat = find_seat(db, c.schedule_id, c.seat_no);
            auto refusal = check_hold(seat, c);
            return refusal ? *refusal : Refusal{Rejection::kSeatUnavailable, "seat is held or sold"};
        }
        std::int64_t seat_id = claim->column_int64(0);
        Won price = claim->column_int64(1);
        ConcertId concert = claim->column_int64(2);
        claim->execute();  // finish the statement before the next one
        auto reservation = record_hold(db, seat_id, concert, price, c);
        tx.commit();
        return reservation;
    });
}

}  // namespace

app::Task<Result<Reservation>> SqliteReservationStore::hold(HoldCommand command) {
    switch (command.strategy) {
        case app::Strategy::kOptimistic:
            co_return co_await hold_optimistic(command);
        case app::Strategy::kAtomic:
            co_return co_await db_.write([command](Connection& db) { return hold_atomic(db, command); });
        case app::Strategy::kPessimistic:
        case app::Strategy::kDistributed:
            break;
    }
    co_return co_await db_.write(
        [command](Connection& db) { return hold_in_transaction(db, command); });
}

app::Task<Result<Reservation>> SqliteReservationStore::hold_optimistic(HoldCommand command) {
    for (int attempt = 1; attempt < kOptimisticAttemptsMax; ++attempt) {
        auto seat = co_await db_.read([command](Connection& db) {
            return find_seat(db, command.schedule_id, command.seat_no);
        });
        // A seat already taken is refused from the read alone: the writer never sees the loser.
        if (auto refusal = check_hold(seat, command)) co_return *refusal;
        auto outcome = co_await db_.write([command, seat = *seat](Connection& db) {
            return hold_if_unchanged(db, seat, command);
        });
        if (outcome) co_return std::move(*outcome);
        stats_.hold_retries.add();
        co_await jitter_pause(attempt);
    }
    co_return co_await db_.write(
        [command](Connection& db) { return hold_in_transaction(db, command); });
}

app::Task<std::optional<Reservation>> SqliteReservationStore::find(ReservationId id) {
    co_return co_await db_.read([id](Connection& db) { return find_reservation(db, id); });
}

app::Task<std::vector<Reservation>> SqliteReservationStore::expire_due(TimePoint now, int batch) {
    co_return co_await db_.write([now, batch](Connection& db) {
        Transaction tx(db, Transaction::Kind::kImmediate);
        std::vector<Reservation> expired;
        {
            auto due = db.prepare(
                "UPDATE reservations SET status = 'EXPIRED', resolved_at = ?1,"
                " version = version + 1"
                " WHERE id IN (SELECT id FROM reservations WHERE status = 'HELD'"
                " AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2)"
                " RETURNING " CONCERTD_RESERVATION_RETURNING);
            due->bind(1, to_millis(now)).bind(2, std::int64_t{batch});
            while (due->step()) expired.push_back(read_reservation(*due));
        }
        for (auto& reservation : expired) {
            reservation.stored_status = ReservationStatus::kExpired;
            auto free_seat = db.prepare(
                "UPDATE seats SET status = 'AVAILABLE', hold_expires_at = NULL,"
                " version = version + 1"
                " WHERE schedule_id = ? AND seat_no = ? AND status = 'HELD'");
            free_seat->bind(1, reservation.schedule_id)
                .bind(2, std::int64_t{reservation.seat_no})
                .execute();
            insert_event(db, app::reservation_expired_event(reservation, now));
        }
        tx.commit();
        return expired;
    });
}

}  // namespace concertd::sqlite

