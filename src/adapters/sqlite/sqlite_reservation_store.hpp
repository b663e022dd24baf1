// Seat holds and their expiry on SQLite, with each concurrency strategy of SPEC §4. All writes
// go through the single writer connection; the partial unique index
// reservations_one_live_per_seat refuses a second live hold whatever a strategy did.
#pragma once

#include "adapters/sqlite/sqlite_database.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::sqlite {

class SqliteReservationStore final : public app::ReservationStore {
public:
    SqliteReservationStore(SqliteDatabase& db, app::AppStats& stats) : db_(db), stats_(stats) {}
    app::Task<domain::Result<domain::Reservation>> hold(app::HoldCommand command) override;
    app::Task<std::optional<domain::Reservation>> find(domain::ReservationId id) override;
    app::Task<std::vector<domain::Reservation>> expire_due(domain::TimePoint now,
                                                           int batch) override;

private:
    app::Task<domain::Result<domain::Reservation>> hold_optimistic(app::HoldCommand command);

    SqliteDatabase& db_;
    app::AppStats& stats_;
};

}  // namespace concertd::sqlite
