#include "adapters/sqlite/sqlite_wallet.hpp"

#include "adapters/sqlite/sqlite_rows.hpp"

namespace concertd::sqlite {

WalletRow read_wallet(detail::Connection& db, UserId user) {
    auto query = db.prepare("SELECT balance, version FROM wallets WHERE user_id = ?");
    query->bind(1, user);
    if (!query->step()) return {};
    return {query->column_int64(0), query->column_int64(1), true};
}

bool write_wallet_if_unchanged(detail::Connection& db, UserId user, const WalletRow& row,
                               Won new_balance_won) {
    if (!row.exists) {
        auto insert = db.prepare(
            "INSERT INTO wallets (user_id, balance, version) VALUES (?, ?, 1)"
            " ON CONFLICT (user_id) DO NOTHING");
        insert->bind(1, user).bind(2, new_balance_won).execute();
        return db.changes() == 1;
    }
    auto update = db.prepare(
        "UPDATE wallets SET balance = ?, version = version + 1 WHERE user_id = ? AND version = ?");
    update->bind(1, new_balance_won).bind(2, user).bind(3, row.version).execute();
    return db.changes() == 1;
}

void append_wallet_entry(detail::Connection& db, UserId user, WalletEntryType type, Won amount_won,
                         Won balance_after_won, TimePoint at) {
    auto insert = db.prepare(
        "INSERT INTO wallet_entries (user_id, type, amount, balance_after, at)"
        " VALUES (?, ?, ?, ?, ?)");
    insert->bind(1, user)
        .bind(2, to_string(type))
        .bind(3, amount_won)
        .bind(4, balance_after_won)
        .bind(5, to_millis(at))
        .execute();
}

}  // namespace concertd::sqlite
