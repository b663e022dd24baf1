// Wallets and their history on PostgreSQL: a point charge as `pessimistic` (FOR UPDATE),
// `optimistic` (version check, bounded retry with jitter) or `distributed` (plain transaction
// inside the lock port's lock).
#pragma once

#include "adapters/postgres/pg_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::postgres {

class PgWalletStore final : public app::WalletStore {
public:
    PgWalletStore(PgPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
    app::Task<domain::Result<domain::Won>> charge(app::ChargeCommand command) override;
    app::Task<domain::Won> balance(domain::UserId user) override;
    app::Task<std::vector<domain::WalletEntry>> history(domain::UserId user, int limit) override;

private:
    app::Task<domain::Result<domain::Won>> charge_once(app::ChargeCommand command);
    app::Task<domain::Result<domain::Won>> charge_locked(app::ChargeCommand command, bool row_lock);

    PgPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::postgres
