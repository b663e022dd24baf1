// Wallet statements shared by the wallet and payment stores.
#pragma once

#include "adapters/postgres/pg_rows.hpp"

namespace concertd::postgres {

// Makes sure the wallet row exists (a wallet starts at 0 on first use), so it can be locked.
inline PgStatement ensure_wallet(UserId user) {
    return {"INSERT INTO wallets (user_id, balance) VALUES ($1, 0) ON CONFLICT (user_id) DO NOTHING",
            {param(user)}};
}

inline constexpr const char* kWalletRead =
    "SELECT balance, version, now_ms() FROM wallets WHERE user_id = $1";
inline constexpr const char* kWalletForUpdate =
    "SELECT balance, version, now_ms() FROM wallets WHERE user_id = $1 FOR UPDATE";

struct WalletRow {
    Won balance_won = 0;
    std::int64_t version = 0;
    bool exists = false;
    TimePoint db_now;
};

inline WalletRow read_wallet(const PgResult& result) {
    if (result.rows() == 0) return {};
    return {result.int64(0, 0), result.int64(0, 1), true, from_millis(result.int64(0, 2))};
}

// Fenced write: only a lock fence newer than the wallet's last one may go on.
inline PgStatement fence_wallet(UserId user, std::uint64_t fence) {
    return {"UPDATE wallets SET lock_fence = $2 WHERE user_id = $1 AND lock_fence < $2",
            {param(user), param(static_cast<std::int64_t>(fence))}};
}

inline PgStatement write_wallet(UserId user, Won balance) {
    return {"UPDATE wallets SET balance = $2, version = version + 1 WHERE user_id = $1",
            {param(user), param(balance)}};
}

inline PgStatement write_wallet_if_unchanged(UserId user, Won balance, std::int64_t version) {
    return {"UPDATE wallets SET balance = $2, version = version + 1"
            " WHERE user_id = $1 AND version = $3",
            {param(user), param(balance), param(version)}};
}

inline PgStatement append_wallet_entry(UserId user, WalletEntryType type, Won amount, Won after,
                                       TimePoint at) {
    return {"INSERT INTO wallet_entries (user_id, type, amount, balance_after, at)"
            " VALUES ($1, $2, $3, $4, $5)",
            {param(user), param(to_string(type)), param(amount), param(after), param(to_millis(at))}};
}

}  // namespace concertd::postgres
