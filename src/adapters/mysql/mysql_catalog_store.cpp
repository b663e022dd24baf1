#include "adapters/mysql/mysql_catalog_store.hpp"

#include <algorithm>
#include <string>

#include "adapters/catalog_rows.hpp"
#include "adapters/mysql/mysql_rows.hpp"

namespace concertd::mysql {

app::Task<std::vector<Concert>> MysqlCatalogStore::list_concerts() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT id, title FROM concerts ORDER BY id", {},
                                         pool_.options().statement_timeout);
    std::vector<Concert> concerts;
    for (int row = 0; row < result.rows(); ++row) {
        concerts.push_back({result.int64(row, 0), std::string(result.text(row, 1))});
    }
    co_return concerts;
}

app::Task<std::optional<std::vector<ScheduleDate>>> MysqlCatalogStore::list_schedules(
    ConcertId concert) {
    auto conn = co_await pool_.acquire();
    // One round trip: the concert (no row: it does not exist), each schedule (NULL: it has none).
    auto rows = co_await conn->execute(
        "SELECT sc.id, sc.starts_at, sc.total_seats"
        " FROM concerts c LEFT JOIN schedules sc ON sc.concert_id = c.id"
        " WHERE c.id = ? ORDER BY sc.starts_at, sc.id",
        {param(concert)}, pool_.options().statement_timeout);
    if (rows.rows() == 0) co_return std::nullopt;
    co_return adapters::read_schedule_dates(rows);
}

app::Task<std::vector<ScheduleUsage>> MysqlCatalogStore::schedule_usage(
    std::vector<ScheduleId> schedules) {
    if (schedules.empty()) co_return std::vector<ScheduleUsage>{};
    // The id list padded to the next power of two by repeating the last id: a handful of
    // prepared statements per connection, not one per list size.
    std::size_t slots = 1;
    while (slots < schedules.size()) slots *= 2;
    std::string sql =
        "SELECT sc.id, s.status, s.hold_expires_at"
        " FROM schedules sc LEFT JOIN seats s ON s.schedule_id = sc.id AND s.status <> 'AVAILABLE'"
        " WHERE sc.id IN (?";
    std::vector<MysqlParam> params;
    params.reserve(slots);
    for (std::size_t i = 0; i < slots; ++i) {
        if (i > 0) sql += ", ?";
        params.push_back(param(schedules[std::min(i, schedules.size() - 1)]));
    }
    sql += ") ORDER BY sc.id";
    auto conn = co_await pool_.acquire();
    auto rows = co_await conn->execute(sql, std::move(params), pool_.options().statement_timeout);
    co_return adapters::read_schedule_usage(rows);
}

app::Task<std::optional<SeatMap>> MysqlCatalogStore::seat_map(ScheduleId schedule) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT seat_no, price, status, hold_expires_at FROM seats"
        " WHERE schedule_id = ? ORDER BY seat_no",
        {param(schedule)}, pool_.options().statement_timeout);
    if (result.rows() == 0) co_return std::nullopt;  // every schedule has at least one seat
    co_return adapters::read_seat_map(result, schedule);
}

// Round trips: 3 + 2 per schedule (its row, then all its seats in one multi-row INSERT).
app::Task<app::CreatedConcert> MysqlCatalogStore::create_concert(app::NewConcert concert,
                                                                 TimePoint now) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    co_await conn->query(kBegin, timeout);
    auto inserted = co_await conn->execute("INSERT INTO concerts (title, created_at) VALUES (?, ?)",
                                           {param(concert.title), param(to_millis(now))}, timeout);
    app::CreatedConcert created;
    created.concert_id = inserted.insert_id();
    for (const auto& schedule : concert.schedules) {
        auto row = co_await conn->execute(
            "INSERT INTO schedules (concert_id, starts_at, total_seats) VALUES (?, ?, ?)",
            {param(created.concert_id), param(to_millis(schedule.starts_at)),
             param(std::int64_t{schedule.seat_count})},
            timeout);
        const ScheduleId id = row.insert_id();
        created.schedule_ids.push_back(id);
        // Integers only, so a text statement is safe; one statement per schedule whatever its
        // size (a prepared one would be one per seat count).
        std::string seats = "INSERT INTO seats (schedule_id, seat_no, price) VALUES ";
        const std::string tail = "," + std::to_string(schedule.price_won) + ")";
        for (std::int32_t seat = 1; seat <= schedule.seat_count; ++seat) {
            if (seat > 1) seats += ',';
            seats += '(' + std::to_string(id) + ',' + std::to_string(seat) + tail;
        }
        co_await conn->query(seats, timeout);
    }
    co_await conn->query(kCommit, timeout);
    co_return created;
}

app::Task<bool> MysqlCatalogStore::has_concerts() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT EXISTS (SELECT 1 FROM concerts)", {},
                                         pool_.options().statement_timeout);
    co_return result.int64(0, 0) == 1;
}

app::Task<bool> MysqlCatalogStore::ping() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT 1", {}, pool_.options().statement_timeout);
    co_return result.rows() == 1;
}

}  // namespace concertd::mysql
