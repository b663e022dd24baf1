#include "adapters/postgres/pg_wallet_store.hpp"

#include "adapters/postgres/pg_wallet.hpp"
#include "adapters/postgres/pg_retry.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::postgres {

namespace {

std::vector<PgStatement> record_charge(const app::ChargeCommand& c, Won balance, TimePoint now) {
    return {append_wallet_entry(c.user_id, WalletEntryType::kCharge, c.amount_won, balance, now),
            insert_event(app::points_charged_event(c.user_id, c.amount_won, balance, now)),
            kCommit};
}

}  // namespace

app::Task<Result<Won>> PgWalletStore::charge(app::ChargeCommand command) {
    co_return co_await retrying_conflicts([&] { return charge_once(command); });
}

app::Task<Result<Won>> PgWalletStore::charge_once(app::ChargeCommand c) {
    if (c.strategy != app::Strategy::kOptimistic) {
        co_return co_await charge_locked(c, c.strategy == app::Strategy::kPessimistic);
    }
    auto timeout = pool_.options().statement_timeout;
    for (int attempt = 1; attempt <= kOptimisticAttemptsMax; ++attempt) {
        {
            auto conn = co_await pool_.acquire();
            auto row = read_wallet(co_await conn->execute(kWalletRead, {param(c.user_id)}, timeout));
            if (!row.exists) {
                // First charge of this user: create the row, then read it like any other.
                co_await conn->execute(ensure_wallet(c.user_id).sql, ensure_wallet(c.user_id).params,
                                       timeout);
                row = read_wallet(co_await conn->execute(kWalletRead, {param(c.user_id)}, timeout));
            }
            auto balance = balance_after_charge(row.balance_won, c.amount_won);
            if (!balance) co_return balance;
            std::vector<PgStatement> claim{
                kBegin, write_wallet_if_unchanged(c.user_id, balance.value(), row.version)};
            auto claimed = co_await conn->pipeline(all(claim), timeout);
            if (claimed[1].affected_rows() == 1) {
                co_await conn->pipeline(all(record_charge(c, balance.value(), row.db_now)), timeout);
                co_return balance;
            }
            co_await conn->execute("ROLLBACK", {}, timeout);
        }
        stats_.charge_retries.add();
        if (attempt < kOptimisticAttemptsMax) co_await jitter_pause(attempt);
    }
    // A hot wallet keeps losing: take the row lock once rather than fail the charge.
    co_return co_await charge_locked(c, true);
}

app::Task<Result<Won>> PgWalletStore::charge_locked(app::ChargeCommand c, bool row_lock) {
    auto timeout = pool_.options().statement_timeout;
    auto conn = co_await pool_.acquire();
    // A fenced write takes its fence before reading: a stale holder's write commits first or
    // is refused, never lost under ours.
    std::vector<PgStatement> read{kBegin, ensure_wallet(c.user_id)};
    if (c.fence) read.push_back(fence_wallet(c.user_id, *c.fence));
    read.push_back({row_lock ? kWalletForUpdate : kWalletRead, {param(c.user_id)}});
    auto results = co_await conn->pipeline(all(read), timeout);
    auto row = read_wallet(results.back());
    Result<Won> balance = balance_after_charge(row.balance_won, c.amount_won);
    if (balance && c.fence && results[2].affected_rows() == 0) balance = stale_fence_refusal();
    if (!balance) {
        co_await conn->execute("ROLLBACK", {}, timeout);
        co_return balance;
    }
    auto writes = record_charge(c, balance.value(), row.db_now);
    writes.insert(writes.begin(), write_wallet(c.user_id, balance.value()));
    co_await conn->pipeline(all(writes), timeout);
    co_return balance;
}

app::Task<Won> PgWalletStore::balance(UserId user) {
    auto conn = co_await pool_.acquire();
    auto row = read_wallet(
        co_await conn->execute(kWalletRead, {param(user)}, pool_.options().statement_timeout));
    co_return row.balance_won;
}

app::Task<std::vector<WalletEntry>> PgWalletStore::history(UserId user, int limit) {
    auto conn = co_await pool_.acquire();
    auto result = co_await conn->execute(
        "SELECT type, amount, balance_after, at FROM wallet_entries"
        " WHERE user_id = $1 ORDER BY id DESC LIMIT $2",
        {param(user), param(std::int64_t{limit})}, pool_.options().statement_timeout);
    std::vector<WalletEntry> entries;
    for (int row = 0; row < result.rows(); ++row) {
        entries.push_back({parse_wallet_entry_type(result.text(row, 0)).value_or(WalletEntryType::kUse),
                           result.int64(row, 1), result.int64(row, 2),
                           from_millis(result.int64(row, 3))});
    }
    co_return entries;
}

}  // namespace concertd::postgres
