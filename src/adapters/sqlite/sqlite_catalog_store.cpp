#include "adapters/sqlite/sqlite_catalog_store.hpp"

#include "adapters/catalog_rows.hpp"
#include "adapters/sqlite/sqlite_rows.hpp"

namespace concertd::sqlite {

using detail::Connection;

app::Task<std::vector<Concert>> SqliteCatalogStore::list_concerts() {
    co_return co_await db_.read([](Connection& db) {
        std::vector<Concert> concerts;
        auto query = db.prepare("SELECT id, title FROM concerts ORDER BY id");
        while (query->step()) {
            concerts.push_back({query->column_int64(0), std::string(query->column_text(1))});
        }
        return concerts;
    });
}

app::Task<std::optional<std::vector<ScheduleDate>>> SqliteCatalogStore::list_schedules(
    ConcertId concert) {
    co_return co_await db_.read([concert](Connection& db)
                                    -> std::optional<std::vector<ScheduleDate>> {
        // The concert (no row: it does not exist), each schedule (NULL: it has none).
        auto query = db.prepare(
            "SELECT sc.id, sc.starts_at, sc.total_seats"
            " FROM concerts c LEFT JOIN schedules sc ON sc.concert_id = c.id"
            " WHERE c.id = ? ORDER BY sc.starts_at, sc.id");
        query->bind(1, concert);
        std::optional<std::vector<ScheduleDate>> dates;
        while (query->step()) {
            if (!dates) dates.emplace();
            if (query->column_is_null(0)) continue;
            dates->push_back({query->column_int64(0), from_millis(query->column_int64(1)),
                              static_cast<std::int32_t>(query->column_int64(2))});
        }
        return dates;
    });
}

app::Task<std::vector<ScheduleUsage>> SqliteCatalogStore::schedule_usage(
    std::vector<ScheduleId> schedules) {
    co_return co_await db_.read([&schedules](Connection& db) {
        std::vector<ScheduleUsage> usages;
        auto query = db.prepare(
            "SELECT sc.id, s.status, s.hold_expires_at FROM schedules sc"
            " LEFT JOIN seats s ON s.schedule_id = sc.id AND s.status <> 'AVAILABLE'"
            " WHERE sc.id = ?");
        for (const ScheduleId schedule : schedules) {  // in process: no round trip to save
            query->reset();
            query->bind(1, schedule);
            while (query->step()) {
                std::optional<std::string_view> status;
                if (!query->column_is_null(1)) status = query->column_text(1);
                adapters::add_usage_row(usages, schedule, status, query->column_optional_int64(2));
            }
        }
        return usages;
    });
}

app::Task<std::optional<SeatMap>> SqliteCatalogStore::seat_map(ScheduleId schedule) {
    co_return co_await db_.read([schedule](Connection& db) -> std::optional<SeatMap> {
        auto query = db.prepare(
            "SELECT seat_no, price, status, hold_expires_at FROM seats"
            " WHERE schedule_id = ? ORDER BY seat_no");
        query->bind(1, schedule);
        SeatMap map;
        map.schedule_id = schedule;
        while (query->step()) {
            SeatState seat;
            seat.seat_no = static_cast<SeatNo>(query->column_int64(0));
            seat.price_won = query->column_int64(1);
            seat.stored_status =
                parse_seat_status(query->column_text(2)).value_or(SeatStatus::kSold);
            if (auto expiry = query->column_optional_int64(3)) {
                seat.hold_expires_at = from_millis(*expiry);
            }
            map.seats.push_back(seat);
        }
        if (map.seats.empty()) return std::nullopt;  // every schedule has at least one seat
        return map;
    });
}

app::Task<app::CreatedConcert> SqliteCatalogStore::create_concert(app::NewConcert concert,
                                                                  TimePoint now) {
    co_return co_await db_.write([concert = std::move(concert), now](Connection& db) {
        detail::Transaction tx(db, detail::Transaction::Kind::kImmediate);
        app::CreatedConcert created;
        {
            auto insert = db.prepare("INSERT INTO concerts (title, created_at) VALUES (?, ?)");
            insert->bind(1, concert.title).bind(2, to_millis(now)).execute();
            created.concert_id = db.last_insert_rowid();
        }
        for (const auto& schedule : concert.schedules) {
            {
                auto insert = db.prepare(
                    "INSERT INTO schedules (concert_id, starts_at, total_seats) VALUES (?, ?, ?)");
                insert->bind(1, created.concert_id)
                    .bind(2, to_millis(schedule.starts_at))
                    .bind(3, std::int64_t{schedule.seat_count})
                    .execute();
            }
            ScheduleId schedule_id = db.last_insert_rowid();
            created.schedule_ids.push_back(schedule_id);
            auto insert_seat =
                db.prepare("INSERT INTO seats (schedule_id, seat_no, price) VALUES (?, ?, ?)");
            for (std::int32_t seat_no = 1; seat_no <= schedule.seat_count; ++seat_no) {
                insert_seat->bind(1, schedule_id)
                    .bind(2, std::int64_t{seat_no})
                    .bind(3, schedule.price_won)
                    .execute();
                insert_seat->reset();
            }
        }
        tx.commit();
        return created;
    });
}

app::Task<bool> SqliteCatalogStore::has_concerts() {
    co_return co_await db_.read([](Connection& db) {
        auto query = db.prepare("SELECT EXISTS (SELECT 1 FROM concerts)");
        return query->step() && query->column_int64(0) == 1;
    });
}

app::Task<bool> SqliteCatalogStore::ping() {
    co_return co_await db_.read([](Connection& db) {
        auto query = db.prepare("SELECT 1");
        return query->step();
    });
}

}  // namespace concertd::sqlite
