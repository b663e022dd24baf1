// Catalog rows read the same way from any SQL database: `Rows` is the adapter's result type
// (PostgreSQL, MariaDB) with rows(), is_null(), text(), int64() and optional_int64(); SQLite steps
// its statement and adds each row with add_usage_row.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "domain/types.hpp"

namespace concertd::adapters {

// Rows of (schedule id, starts_at ms, total_seats) → the dates (a NULL id, from a concert with
// none, is skipped).
template <class Rows>
std::vector<domain::ScheduleDate> read_schedule_dates(const Rows& rows) {
    std::vector<domain::ScheduleDate> dates;
    dates.reserve(static_cast<std::size_t>(rows.rows()));
    for (int row = 0; row < rows.rows(); ++row) {
        if (rows.is_null(row, 0)) continue;
        dates.push_back({rows.int64(row, 0),
                         domain::TimePoint(std::chrono::milliseconds(rows.int64(row, 1))),
                         static_cast<std::int32_t>(rows.int64(row, 2))});
    }
    return dates;
}

// One row of (schedule id, seat status, hold_expires_at ms) in schedule order, status none for a
// schedule without taken seats, into the schedules' usages.
inline void add_usage_row(std::vector<domain::ScheduleUsage>& usages, domain::ScheduleId id,
                          std::optional<std::string_view> status,
                          std::optional<std::int64_t> hold_expires_at) {
    if (usages.empty() || usages.back().schedule_id != id) usages.push_back({id, 0, {}});
    if (!status) return;
    auto& usage = usages.back();
    if (*status == "SOLD") {
        ++usage.sold_seats;
    } else if (hold_expires_at) {
        usage.hold_expiries.push_back(
            domain::TimePoint(std::chrono::milliseconds(*hold_expires_at)));
    }
}

// Rows of (schedule id, seat status, hold_expires_at ms) ordered by schedule, one per
// non-available seat (status NULL: a schedule with none) → each schedule's usage.
template <class Rows>
std::vector<domain::ScheduleUsage> read_schedule_usage(const Rows& rows) {
    std::vector<domain::ScheduleUsage> usages;
    for (int row = 0; row < rows.rows(); ++row) {
        std::optional<std::string_view> status;
        if (!rows.is_null(row, 1)) status = rows.text(row, 1);
        add_usage_row(usages, rows.int64(row, 0), status, rows.optional_int64(row, 2));
    }
    return usages;
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
