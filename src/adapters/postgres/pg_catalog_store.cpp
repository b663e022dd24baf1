#include "adapters/postgres/pg_catalog_store.hpp"

#include "adapters/catalog_rows.hpp"
#include "adapters/postgres/pg_rows.hpp"

namespace concertd::postgres {

app::Task<std::vector<Concert>> PgCatalogStore::list_concerts() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT id, title FROM concerts ORDER BY id", {},
                                         pool_.options().statement_timeout);
    std::vector<Concert> concerts;
    for (int row = 0; row < result.rows(); ++row) {
        concerts.push_back({result.int64(row, 0), std::string(result.text(row, 1))});
    }
    co_return concerts;
}

app::Task<std::optional<std::vector<ScheduleDate>>> PgCatalogStore::list_schedules(
    ConcertId concert) {
    auto conn = co_await pool_.acquire();
    // One round trip: the concert (no row: it does not exist), each schedule (NULL: it has none).
    auto rows = co_await conn->execute(
        "SELECT sc.id, sc.starts_at, sc.total_seats"
        " FROM concerts c LEFT JOIN schedules sc ON sc.concert_id = c.id"
        " WHERE c.id = $1 ORDER BY sc.starts_at, sc.id",
        {param(concert)}, pool_.options().statement_timeout);
    if (rows.rows() == 0) co_return std::nullopt;
    co_return adapters::read_schedule_dates(rows);
}

app::Task<std::vector<ScheduleUsage>> PgCatalogStore::schedule_usage(
    std::vector<ScheduleId> schedules) {
    if (schedules.empty()) co_return std::vector<ScheduleUsage>{};
    auto conn = co_await pool_.acquire();
    // Per schedule, an index probe of its taken seats. OFFSET 0 keeps the subquery from being
    // flattened into a join the planner may run as a scan of all seats: it picks that when the
    // schedules asked for look like a large share of the table (statistics average schedules of
    // all sizes, and are stale after a sale), and a scan costs a full table per dates list.
    auto rows = co_await conn->execute(
        "SELECT sc.id, s.status, s.hold_expires_at FROM schedules sc"
        " LEFT JOIN LATERAL (SELECT status, hold_expires_at FROM seats"
        " WHERE schedule_id = sc.id AND status <> 'AVAILABLE' OFFSET 0) s ON true"
        " WHERE sc.id = ANY($1::bigint[]) ORDER BY sc.id",
        {param(int64_array(schedules))}, pool_.options().statement_timeout);
    co_return adapters::read_schedule_usage(rows);
}

app::Task<std::optional<SeatMap>> PgCatalogStore::seat_map(ScheduleId schedule) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT seat_no, price, status, hold_expires_at FROM seats"
        " WHERE schedule_id = $1 ORDER BY seat_no",
        {param(schedule)}, pool_.options().statement_timeout);
    if (result.rows() == 0) co_return std::nullopt;  // every schedule has at least one seat
    co_return adapters::read_seat_map(result, schedule);
}

app::Task<app::CreatedConcert> PgCatalogStore::create_concert(app::NewConcert concert,
                                                              TimePoint now) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    std::vector<PgStatement> first{
        kBegin, {"INSERT INTO concerts (title, created_at) VALUES ($1, $2) RETURNING id",
                 {param(concert.title), param(to_millis(now))}}};
    for (const auto& schedule : concert.schedules) {
        first.push_back({"INSERT INTO schedules (concert_id, starts_at, total_seats)"
                         " VALUES (currval('concerts_id_seq'), $1, $2) RETURNING id",
                         {param(to_millis(schedule.starts_at)), param(std::int64_t{schedule.seat_count})}});
    }
    auto results = co_await conn->pipeline(all(first), timeout);
    app::CreatedConcert created;
    created.concert_id = results[1].int64(0, 0);
    std::vector<PgStatement> seats;
    for (std::size_t i = 0; i < concert.schedules.size(); ++i) {
        ScheduleId id = results[2 + i].int64(0, 0);
        created.schedule_ids.push_back(id);
        seats.push_back({"INSERT INTO seats (schedule_id, seat_no, price)"
                         " SELECT $1, n, $2 FROM generate_series(1, $3) AS n",
                         {param(id), param(concert.schedules[i].price_won),
                          param(std::int64_t{concert.schedules[i].seat_count})}});
    }
    seats.push_back(kCommit);
    co_await conn->pipeline(all(seats), timeout);
    co_return created;
}

app::Task<bool> PgCatalogStore::has_concerts() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT EXISTS (SELECT 1 FROM concerts)", {},
                                         pool_.options().statement_timeout);
    co_return result.boolean(0, 0);
}

app::Task<bool> PgCatalogStore::ping() {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute("SELECT 1", {}, pool_.options().statement_timeout);
    co_return result.rows() == 1;
}

}  // namespace concertd::postgres
