// Reading and writing the rows several SQLite stores share: reservations, seats, outbox events.
#pragma once

#include <optional>
#include <vector>

#include "adapters/sqlite/detail/sqlite_connection.hpp"
#include "domain/types.hpp"

namespace concertd::sqlite {

using namespace concertd::domain;  // NOLINT

inline std::int64_t to_millis(TimePoint at) { return at.time_since_epoch().count(); }
inline TimePoint from_millis(std::int64_t ms) { return TimePoint(std::chrono::milliseconds(ms)); }

// The columns every reservation query selects, in this order.
#define CONCERTD_RESERVATION_COLUMNS                                                          \
    "r.id, r.user_id, r.schedule_id, sc.concert_id, r.seat_no, r.price, r.status, r.expires_at"

// The same columns for a RETURNING clause of a statement on `reservations` (which may not join).
#define CONCERTD_RESERVATION_RETURNING                                                        \
    "id, user_id, schedule_id,"                                                               \
    " (SELECT concert_id FROM schedules WHERE schedules.id = reservations.schedule_id),"      \
    " seat_no, price, status, expires_at"

Reservation read_reservation(detail::Statement& row, int first_column = 0);

std::optional<Reservation> find_reservation(detail::Connection& db, ReservationId id);

struct SeatRow {
    std::int64_t seat_id = 0;
    ConcertId concert_id = 0;
    TimePoint schedule_starts_at;
    SeatState state;
    std::int64_t version = 0;
};

// The seat (with its schedule's concert and start); nullopt when schedule or seat is unknown.
std::optional<SeatRow> find_seat(detail::Connection& db, ScheduleId schedule, SeatNo seat_no);

void insert_event(detail::Connection& db, const Event& event);

// Resolves the seat's stale HELD reservations (their time has passed) as EXPIRED and writes
// their events. A new hold of the seat calls this in its own transaction.
void expire_stale_holds_of_seat(detail::Connection& db, std::int64_t seat_id, TimePoint now);

}  // namespace concertd::sqlite
