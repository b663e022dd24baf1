// Payments on SQLite: balance, history, reservation, seat, payment row, idempotency key and
// outbox events in one transaction, with the pessimistic, optimistic and distributed forms.
#pragma once

#include "adapters/sqlite/sqlite_database.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::sqlite {

class SqlitePaymentStore final : public app::PaymentStore {
public:
    SqlitePaymentStore(SqliteDatabase& db, app::AppStats& stats) : db_(db), stats_(stats) {}
    app::Task<domain::Result<app::PaymentReceipt>> pay(app::PayCommand command) override;
    app::Task<std::optional<domain::Result<app::PaymentReceipt>>> replay(
        std::string key, domain::UserId user, domain::ReservationId reservation) override;
    app::Task<std::int64_t> purge_idempotency_keys(domain::TimePoint cutoff, int batch) override;

private:
    SqliteDatabase& db_;
    app::AppStats& stats_;
};

}  // namespace concertd::sqlite
