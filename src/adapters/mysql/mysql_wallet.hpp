// Wallet statements shared by the MariaDB/MySQL wallet and payment stores.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <stdexcept>
#include <optional>
#include <string_view>
#include <vector>

#include "adapters/mysql/mysql_rows.hpp"

namespace concertd::mysql {

// Makes sure the wallet row exists (a wallet starts at 0 on first use). ON DUPLICATE KEY UPDATE,
// not INSERT IGNORE: on an existing row InnoDB takes an exclusive lock where INSERT IGNORE takes
// a shared one, and two transactions that each hold the shared lock and then ask for the row
// lock (FOR UPDATE, UPDATE) deadlock. Inside a transaction this leaves the row locked.
inline constexpr std::string_view kEnsureWallet =
    "INSERT INTO wallets (user_id, balance) VALUES (?, 0)"
    " ON DUPLICATE KEY UPDATE user_id = user_id";

// balance, version, the database's now: read_wallet's columns.
inline constexpr std::string_view kWalletRead =
    "SELECT balance, version, " CONCERTD_MY_NOW_MS " FROM wallets WHERE user_id = ?";
inline constexpr std::string_view kWalletForUpdate =
    "SELECT balance, version, " CONCERTD_MY_NOW_MS " FROM wallets WHERE user_id = ? FOR UPDATE";

// Fenced write: only a lock fence newer than the wallet's last one may go on. Its count is rows
// matched (CLIENT_FOUND_ROWS), so 0 means stale, or no wallet row yet.
inline constexpr std::string_view kFenceWallet =
    "UPDATE wallets SET lock_fence = ? WHERE user_id = ? AND lock_fence < ?";
inline std::vector<MysqlParam> fence_params(UserId user, std::uint64_t fence) {
    auto value = static_cast<std::int64_t>(fence);
    return {param(value), param(user), param(value)};
}

inline constexpr std::string_view kWriteWallet =
    "UPDATE wallets SET balance = ?, version = version + 1 WHERE user_id = ?";
inline constexpr std::string_view kWriteWalletIfUnchanged =
    "UPDATE wallets SET balance = ?, version = version + 1 WHERE user_id = ? AND version = ?";

inline constexpr std::string_view kAppendWalletEntry =
    "INSERT INTO wallet_entries (user_id, type, amount, balance_after, at) VALUES (?, ?, ?, ?, ?)";
inline std::vector<MysqlParam> wallet_entry_params(UserId user, WalletEntryType type, Won amount,
                                                   Won after, TimePoint at) {
    return {param(user), param(to_string(type)), param(amount), param(after), param(to_millis(at))};
}

struct WalletRow {
    Won balance_won = 0;
    std::int64_t version = 0;
    bool exists = false;
    TimePoint db_now;
};

// From the first three columns (balance, version, now) of a result's first row.
inline WalletRow read_wallet(const MysqlResult& result) {
    if (result.rows() == 0) return {};
    return {result.int64(0, 0), result.int64(0, 1), true, from_millis(result.int64(0, 2))};
}

// The wallet row read inside an open transaction for a write, created on first use.
struct WalletForWrite {
    MysqlResult read;         // of `select`: balance, version, now first
    bool fence_taken = true;  // false: a newer fence wrote the wallet (the lease was lost)
};

// Fences the wallet first when `fence` is given (a stale holder's write commits first or is
// refused, never lost under ours), then runs `select` (balance, version, now, ...; its params).
// A missing wallet is created (kEnsureWallet, which locks it) and both are run again: 1 or 2
// round trips, 3 or 5 on the user's first use.
inline boost::asio::awaitable<WalletForWrite> read_wallet_for_write(
    detail::MysqlConnection& conn, UserId user, std::optional<std::uint64_t> fence,
    std::string_view select, std::vector<MysqlParam> params, std::chrono::milliseconds timeout) {
    for (int pass = 1;; ++pass) {
        WalletForWrite out;
        if (fence) {
            auto fenced = co_await conn.execute(kFenceWallet, fence_params(user, *fence), timeout);
            out.fence_taken = fenced.affected_rows() == 1;
        }
        out.read = co_await conn.execute(select, params, timeout);
        if (out.read.rows() > 0) co_return out;
        // kEnsureWallet made the row in this transaction: it cannot be missing twice.
        if (pass > 1) throw std::logic_error("mysql: wallet row missing after its insert");
        co_await conn.execute(kEnsureWallet, {param(user)}, timeout);
    }
}

}  // namespace concertd::mysql
