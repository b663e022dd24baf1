#include "adapters/sqlite/sqlite_wallet_store.hpp"

#include "adapters/sqlite/optimistic_retry.hpp"
#include "adapters/sqlite/sqlite_rows.hpp"
#include "adapters/sqlite/sqlite_wallet.hpp"
#include "app/events.hpp"
#include "domain/rules.hpp"

namespace concertd::sqlite {

using detail::Connection;
using detail::Transaction;

namespace {

// Charges from the wallet state `row` (read before or inside this transaction). nullopt when
// the row changed since it was read.
std::optional<Result<Won>> charge_from(Connection& db, const app::ChargeCommand& c,
                                       const WalletRow& row) {
    auto balance = balance_after_charge(row.balance_won, c.amount_won);
    if (!balance) return Result<Won>(balance.refusal());
    if (!write_wallet_if_unchanged(db, c.user_id, row, balance.value())) return std::nullopt;
    append_wallet_entry(db, c.user_id, WalletEntryType::kCharge, c.amount_won, balance.value(), c.now);
    insert_event(db, app::points_charged_event(c.user_id, c.amount_won, balance.value(), c.now));
    return balance;
}

Result<Won> charge_in_transaction(Connection& db, const app::ChargeCommand& c) {
    Transaction tx(db, Transaction::Kind::kImmediate);
    auto outcome = charge_from(db, c, read_wallet(db, c.user_id));
    assert(outcome);  // read inside the write transaction: nothing can change it
    if (outcome->ok()) tx.commit();
    return std::move(*outcome);
}

}  // namespace

app::Task<Result<Won>> SqliteWalletStore::charge(app::ChargeCommand command) {
    if (command.strategy == app::Strategy::kOptimistic) {
        for (int attempt = 1; attempt < kOptimisticAttemptsMax; ++attempt) {
            auto row = co_await db_.read(
                [user = command.user_id](Connection& db) { return read_wallet(db, user); });
            auto outcome = co_await db_.write([command, row](Connection& db) {
                Transaction tx(db, Transaction::Kind::kImmediate);
                auto result = charge_from(db, command, row);
                if (result && result->ok()) tx.commit();
                return result;
            });
            if (outcome) co_return std::move(*outcome);
            stats_.charge_retries.add();
            co_await jitter_pause(attempt);
        }
    }
    co_return co_await db_.write(
        [command](Connection& db) { return charge_in_transaction(db, command); });
}

app::Task<Won> SqliteWalletStore::balance(UserId user) {
    co_return co_await db_.read(
        [user](Connection& db) { return read_wallet(db, user).balance_won; });
}

app::Task<std::vector<WalletEntry>> SqliteWalletStore::history(UserId user, int limit) {
    co_return co_await db_.read([user, limit](Connection& db) {
        auto query = db.prepare(
            "SELECT type, amount, balance_after, at FROM wallet_entries"
            " WHERE user_id = ? ORDER BY id DESC LIMIT ?");
        query->bind(1, user).bind(2, std::int64_t{limit});
        std::vector<WalletEntry> entries;
        while (query->step()) {
            WalletEntry entry;
            entry.type = parse_wallet_entry_type(query->column_text(0)).value_or(WalletEntryType::kUse);
            entry.amount_won = query->column_int64(1);
            entry.balance_after_won = query->column_int64(2);
            entry.at = from_millis(query->column_int64(3));
            entries.push_back(entry);
        }
        return entries;
    });
}

}  // namespace concertd::sqlite
