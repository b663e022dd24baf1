// Seat holds and their expiry on MariaDB/MySQL, with each strategy of SPEC §4: `pessimistic`
// (SELECT … FOR UPDATE), `optimistic` (version check, bounded retry with jitter), `distributed`
// (the lock port holds the seat's lock around a plain transaction) and `atomic` (one conditional
// UPDATE claims the seat, no read first). Times come from the database's clock. The unique
// index on the generated column reservations.live_seat_id refuses a second live hold whatever
// happened. Round trips per hold are in the .cpp (libmariadb has no pipeline).
#pragma once

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::mysql {

class MysqlReservationStore final : public app::ReservationStore {
public:
    MysqlReservationStore(MysqlPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
    app::Task<domain::Result<domain::Reservation>> hold(app::HoldCommand command) override;
    app::Task<std::optional<domain::Reservation>> find(domain::ReservationId id) override;
    app::Task<std::vector<domain::Reservation>> expire_due(domain::TimePoint now,
                                                           int batch) override;

private:
    app::Task<domain::Result<domain::Reservation>> hold_once(app::HoldCommand command);
    app::Task<std::vector<domain::Reservation>> expire_due_once(int batch);
    app::Task<domain::Result<domain::Reservation>> hold_locked(app::HoldCommand command,
                                                               bool row_lock);
    app::Task<domain::Result<domain::Reservation>> hold_optimistic(app::HoldCommand command);
    app::Task<domain::Result<domain::Reservation>> hold_atomic(app::HoldCommand command);

    MysqlPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::mysql
