// Concerts, schedules and seat maps on PostgreSQL, and the database's readiness.
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"

namespace concertd::postgres {

class PgCatalogStore final : public app::CatalogStore, public app::DependencyHealth {
public:
    explicit PgCatalogStore(PgPool& pool) : pool_(pool) {}
    app::Task<std::vector<domain::Concert>> list_concerts() override;
    app::Task<std::optional<std::vector<domain::ScheduleDate>>> list_schedules(
        domain::ConcertId concert) override;
    app::Task<std::vector<domain::ScheduleUsage>> schedule_usage(
        std::vector<domain::ScheduleId> schedules) override;
    app::Task<std::optional<domain::SeatMap>> seat_map(domain::ScheduleId schedule) override;
    app::Task<app::CreatedConcert> create_concert(app::NewConcert concert,
                                                  domain::TimePoint now) override;
    app::Task<bool> has_concerts() override;
    app::Task<bool> ping() override;

private:
    PgPool& pool_;
};

}  // namespace concertd::postgres
