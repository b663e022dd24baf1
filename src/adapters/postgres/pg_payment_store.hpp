// Payments on PostgreSQL: balance, history, reservation, seat, payment row, idempotency key and
// outbox events in one transaction, as `pessimistic` (FOR UPDATE on the reservation and the
// wallet), `optimistic` (version checks, bounded retry) or `distributed` (inside the lock).
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::postgres {

class PgPaymentStore final : public app::PaymentStore {
public:
    PgPaymentStore(PgPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
    app::Task<domain::Result<app::PaymentReceipt>> pay(app::PayCommand command) override;
    app::Task<std::optional<domain::Result<app::PaymentReceipt>>> replay(
        std::string key, domain::UserId user, domain::ReservationId reservation) override;
    app::Task<std::int64_t> purge_idempotency_keys(domain::TimePoint cutoff, int batch) override;

private:
    app::Task<domain::Result<app::PaymentReceipt>> pay_once(app::PayCommand command);
    enum class Mode { kRowLocked, kVersionChecked, kPlain };
    app::Task<std::optional<domain::Result<app::PaymentReceipt>>> attempt(
        const app::PayCommand& command, Mode mode);

    PgPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::postgres
