#include "adapters/sqlite/sqlite_rows.hpp"

#include <cassert>

#include "app/events.hpp"

namespace concertd::sqlite {

Reservation read_reservation(detail::Statement& row, int c) {
    Reservation r;
    r.id = row.column_int64(c + 0);
    r.user_id = row.column_int64(c + 1);
    r.schedule_id = row.column_int64(c + 2);
    r.concert_id = row.column_int64(c + 3);
    r.seat_no = static_cast<SeatNo>(row.column_int64(c + 4));
    r.price_won = row.column_int64(c + 5);
    auto status = parse_reservation_status(row.column_text(c + 6));
    assert(status);
    r.stored_status = status.value_or(ReservationStatus::kExpired);
    r.expires_at = from_millis(row.column_int64(c + 7));
    return r;
}

std::optional<Reservation> find_reservation(detail::Connection& db, ReservationId id) {
    auto query = db.prepare("SELECT " CONCERTD_RESERVATION_COLUMNS
                            " FROM reservations r JOIN schedules sc ON sc.id = r.schedule_id"
                            " WHERE r.id = ?");
    query->bind(1, id);
    if (!query->step()) return std::nullopt;
    return read_reservation(*query);
}

std::optional<SeatRow> find_seat(detail::Connection& db, ScheduleId schedule, SeatNo seat_no) {
    auto query = db.prepare(
        "SELECT s.id, sc.concert_id, sc.starts_at, s.price, s.status, s.hold_expires_at, s.version"
        " FROM seats s JOIN schedules sc ON sc.id = s.schedule_id"
        " WHERE s.schedule_id = ? AND s.seat_no = ?");
    query->bind(1, schedule).bind(2, std::int64_t{seat_no});
    if (!query->step()) return std::nullopt;
    SeatRow seat;
    seat.seat_id = query->column_int64(0);
    seat.concert_id = query->column_int64(1);
    seat.schedule_starts_at = from_millis(query->column_int64(2));
    seat.state.seat_no = seat_no;
    seat.state.price_won = query->column_int64(3);
    seat.state.stored_status = parse_seat_status(query->column_text(4)).value_or(SeatStatus::kSold);
    if (auto expiry = query->column_optional_int64(5)) seat.state.hold_expires_at = from_millis(*expiry);
    seat.version = query->column_int64(6);
    return seat;
}

void insert_event(detail::Connection& db, const Event& event) {
    auto insert = db.prepare(
        "INSERT INTO outbox (event_id, type, aggregate_id, payload, occurred_at)"
        " VALUES (?, ?, ?, ?, ?)");
    insert->bind(1, event.event_id)
        .bind(2, event.type)
        .bind(3, event.aggregate_id)
        .bind(4, event.payload_json)
        .bind(5, to_millis(event.occurred_at))
        .execute();
}

void expire_stale_holds_of_seat(detail::Connection& db, std::int64_t seat_id, TimePoint now) {
    std::vector<Reservation> stale;
    {
        auto expire = db.prepare(
            "UPDATE reservations SET status = 'EXPIRED', resolved_at = ?1, version = version + 1"
            " WHERE seat_id = ?2 AND status = 'HELD' AND expires_at <= ?1"
            " RETURNING " CONCERTD_RESERVATION_RETURNING);
        expire->bind(1, to_millis(now)).bind(2, seat_id);
        while (expire->step()) stale.push_back(read_reservation(*expire));
    }
    for (auto& reservation : stale) {
        reservation.stored_status = ReservationStatus::kExpired;
        insert_event(db, app::reservation_expired_event(reservation, now));
    }
}

}  // namespace concertd::sqlite
