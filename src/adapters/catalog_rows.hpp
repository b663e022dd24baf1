// Catalog rows read the same way from any SQL database (PostgreSQL, MariaDB): `Rows` is the
// adapter's result type with rows(), is_null(), text(), int64() and optional_int64().
#pragma once

#include <cstdint>
#include <vector>

#include "domain/types.hpp"

namespace concertd::adapters {

// Rows of (schedule id, starts_at ms, total_seats, seat status, hold_expires_at ms) ordered by
// schedule, one per non-available seat (status NULL: a schedule with none; schedule id NULL: a
// concert with no schedule) → the schedules with their sold seats and hold expiries.
template <class Rows>
std::vector<domain::ScheduleSummary> read_schedule_summaries(const Rows& rows) {
    std::vector<domain::ScheduleSummary> schedules;
    for (int row = 0; row < rows.rows(); ++row) {
        if (rows.is_null(row, 0)) continue;
        domain::ScheduleId id = rows.int64(row, 0);
        if (schedules.empty() || schedules.back().id != id) {
            domain::ScheduleSummary summary;
            summary.id = id;
            summary.starts_at = domain::TimePoint(std::chrono::milliseconds(rows.int64(row, 1)));
            summary.total_seats = static_cast<std::int32_t>(rows.int64(row, 2));
            schedules.push_back(std::move(summary));
        }
        if (rows.is_null(row, 3)) continue;
        auto& summary = schedules.back();
        if (rows.text(row, 3) == "SOLD") {
            ++summary.sold_seats;
        } else if (auto expiry = rows.optional_int64(row, 4)) {
            summary.hold_expiries.push_back(domain::TimePoint(std::chrono::milliseconds(*expiry)));
        }
    }
    return schedules;
}

// Rows of (seat_no, price, status, hold_expires_at ms) ordered by seat_no → the seat map.
template <class Rows>
domain::SeatMap read_seat_map(const Rows& rows, domain::ScheduleId schedule) {
    domain::SeatMap map;
    map.schedule_id = schedule;
    map.seats.reserve(static_cast<std::size_t>(rows.rows()));
    for (int row = 0; row < rows.rows(); ++row) {
        domain::SeatState seat;
        seat.seat_no = static_cast<domain::SeatNo>(rows.int64(row, 0));
        seat.price_won = rows.int64(row, 1);
        seat.stored_status =
            domain::parse_seat_status(rows.text(row, 2)).value_or(domain::SeatStatus::kSold);
        if (auto expiry = rows.optional_int64(row, 3)) {
            seat.hold_expires_at = domain::TimePoint(std::chrono::milliseconds(*expiry));
        }
        map.seats.push_back(seat);
    }
    return map;
}

}  // namespace concertd::adapters
