// Wallets and their history on MariaDB/MySQL: a point charge as `pessimistic` (FOR UPDATE),
// `optimistic` (version check, bounded retry with jitter, then the row lock once) or
// `distributed` (plain transaction inside the lock port's lock, fenced when the lock has fences).
//
// Round trips of a charge (no pipeline in libmariadb: one per statement), with the wallet row
// there already; its first use adds 2 (kEnsureWallet and the read again), 3 when fenced:
// - pessimistic: START TRANSACTION, SELECT … FOR UPDATE, UPDATE wallets, INSERT wallet_entries,
//   INSERT outbox, COMMIT: 6. Refused at the limit: 3 (… ROLLBACK).
// - optimistic: SELECT (autocommit), START TRANSACTION, UPDATE … AND version = ?, INSERT
//   wallet_entries, INSERT outbox, COMMIT: 6. A lost race costs 4 (… UPDATE matching 0, ROLLBACK)
//   before the next try; refused at the limit: 1.
// - distributed: as pessimistic with a plain SELECT, plus the fence UPDATE first when the lock
//   gives a fence: 6, or 7 fenced.
#pragma once

#include "adapters/mysql/mysql_pool.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::mysql {

class MysqlWalletStore final : public app::WalletStore {
public:
    MysqlWalletStore(MysqlPool& pool, app::AppStats& stats) : pool_(pool), stats_(stats) {}
    app::Task<domain::Result<domain::Won>> charge(app::ChargeCommand command) override;
    app::Task<domain::Won> balance(domain::UserId user) override;
    app::Task<std::vector<domain::WalletEntry>> history(domain::UserId user, int limit) override;

private:
    app::Task<domain::Result<domain::Won>> charge_once(app::ChargeCommand command);
    app::Task<domain::Result<domain::Won>> charge_locked(app::ChargeCommand command, bool row_lock);
    app::Task<void> record_charge(detail::MysqlConnection& conn, const app::ChargeCommand& command,
                                  domain::Won balance, domain::TimePoint now);

    MysqlPool& pool_;
    app::AppStats& stats_;
};

}  // namespace concertd::mysql
