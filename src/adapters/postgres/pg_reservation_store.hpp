// Seat holds and their expiry on PostgreSQL, with each strategy of SPEC §4: `pessimistic`
// (SELECT … FOR UPDATE), `optimistic` (version check, bounded retry with jitter), `distributed`
// (the lock port holds the seat's lock around a plain transaction) and `atomic` (one conditional
// UPDATE claims the seat, no read first). Times come from the database's clock. The partial
// unique index reservations_one_live_per_seat refuses a second live hold whatever happened.
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::postgres {

class PgReservationStore final : public app::ReservationStore {
public:
    PgReservationStore(PgPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
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

    PgPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::postgres
