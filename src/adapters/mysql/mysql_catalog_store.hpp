// Concerts, schedules and seat maps on MariaDB/MySQL, and the database's readiness.
#pragma once

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/storage.hpp"

namespace concertd::mysql {

class MysqlCatalogStore final : public app::CatalogStore, public app::DependencyHealth {
public:
    explicit MysqlCatalogStore(MysqlPool& pool) : pool_(pool) {}
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
    MysqlPool& pool_;
};

}  // namespace concertd::mysql
