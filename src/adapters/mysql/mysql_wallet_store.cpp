#include "adapters/mysql/mysql_wallet_store.hpp"

#include "adapters/mysql/mysql_wallet.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::mysql {

app::Task<Result<Won>> MysqlWalletStore::charge(app::ChargeCommand command) {
    co_return co_await retrying_conflicts([&] { return charge_once(command); });
}

// History row, outbox event, COMMIT: 3 round trips, inside the open transaction.
app::Task<void> MysqlWalletStore::record_charge(detail::MysqlConnection& conn,
                                                const app::ChargeCommand& c, Won balance,
                                                TimePoint now) {
    auto timeout = pool_.options().statement_timeout;
    co_await conn.execute(kAppendWalletEntry,
                          wallet_entry_params(c.user_id, WalletEntryType::kCharge, c.amount_won,
                                              balance, now),
                          timeout);
    auto event = app::points_charged_event(c.user_id, c.amount_won, balance, now);
    co_await conn.execute(kInsertEvent, event_params(event), timeout);
    co_await conn.query(kCommit, timeout);
}

app::Task<Result<Won>> MysqlWalletStore::charge_once(app::ChargeCommand c) {
    if (c.strategy != app::Strategy::kOptimistic) {
        co_return co_await charge_locked(c, c.strategy == app::Strategy::kPessimistic);
    }
    auto timeout = pool_.options().statement_timeout;
    for (int attempt = 1; attempt <= kOptimisticAttemptsMax; ++attempt) {
        {
            auto conn = co_await pool_.acquire();
            // Read outside a transaction: no lock is held while the new balance is worked out.
            auto row =
                read_wallet(co_await conn->execute(kWalletRead, {param(c.user_id)}, timeout));
            if (!row.exists) {
                // First charge of this user: create the row (autocommit, so its lock ends with
                // the statement), then read it like any other.
                co_await conn->execute(kEnsureWallet, {param(c.user_id)}, timeout);
                row = read_wallet(co_await conn->execute(kWalletRead, {param(c.user_id)}, timeout));
            }
            auto balance = balance_after_charge(row.balance_won, c.amount_won);
            if (!balance) co_return balance;
            co_await conn->query(kBegin, timeout);
            // A record lock on the wallet only (READ COMMITTED: no gap locks); a writer that
            // committed since the read makes it match nothing, and it writes nothing.
            auto claimed = co_await conn->execute(
                kWriteWalletIfUnchanged,
                {param(balance.value()), param(c.user_id), param(row.version)}, timeout);
            if (claimed.affected_rows() == 1) {
                co_await record_charge(*conn, c, balance.value(), row.db_now);
                co_return balance;
            }
            co_await conn->query(kRollback, timeout);
        }
        stats_.charge_retries.add();
        if (attempt < kOptimisticAttemptsMax) co_await jitter_pause(attempt);
    }
    // A hot wallet keeps losing: take the row lock once rather than fail the charge.
    co_return co_await charge_locked(c, true);
}

app::Task<Result<Won>> MysqlWalletStore::charge_locked(app::ChargeCommand c, bool row_lock) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    co_await conn->query(kBegin, timeout);
    auto wallet = co_await read_wallet_for_write(*conn, c.user_id, c.fence,
                                                 row_lock ? kWalletForUpdate : kWalletRead,
                                                 {param(c.user_id)}, timeout);
    auto row = read_wallet(wallet.read);
    Result<Won> balance = balance_after_charge(row.balance_won, c.amount_won);
    if (balance && !wallet.fence_taken) balance = stale_fence_refusal();
    if (!balance) {
        co_await conn->query(kRollback, timeout);
        co_return balance;
    }
    co_await conn->execute(kWriteWallet, {param(balance.value()), param(c.user_id)}, timeout);
    co_await record_charge(*conn, c, balance.value(), row.db_now);
    co_return balance;
}

app::Task<Won> MysqlWalletStore::balance(UserId user) {
    auto conn = co_await pool_.acquire();
    auto row = read_wallet(
        co_await conn->execute(kWalletRead, {param(user)}, pool_.options().statement_timeout));
    co_return row.balance_won;
}

app::Task<std::vector<WalletEntry>> MysqlWalletStore::history(UserId user, int limit) {
    auto conn = co_await pool_.acquire();
    // wallet_entries_by_user (user_id, id) read backwards: newest first, no sort.
    auto result = co_await conn->execute(
        "SELECT type, amount, balance_after, at FROM wallet_entries"
        " WHERE user_id = ? ORDER BY id DESC LIMIT ?",
        {param(user), param(std::int64_t{limit})}, pool_.options().statement_timeout);
    std::vector<WalletEntry> entries;
    entries.reserve(static_cast<std::size_t>(result.rows()));
    for (int row = 0; row < result.rows(); ++row) {
        entries.push_back(
            {parse_wallet_entry_type(result.text(row, 0)).value_or(WalletEntryType::kUse),
             result.int64(row, 1), result.int64(row, 2), from_millis(result.int64(row, 3))});
    }
    co_return entries;
}

}  // namespace concertd::mysql
