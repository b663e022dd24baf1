// Wallet rows shared by the wallet and payment stores: read with version, versioned update,
// history entry.
#pragma once

#include <optional>

#include "adapters/sqlite/detail/sqlite_connection.hpp"
#include "domain/types.hpp"

namespace concertd::sqlite {

struct WalletRow {
    domain::Won balance_won = 0;
    std::int64_t version = 0;  // 0 and absent: the wallet has no row yet
    bool exists = false;
};

WalletRow read_wallet(detail::Connection& db, domain::UserId user);

// Writes the new balance if the row is still at `row.version` (inserting it when it did not
// exist); false when another writer got there first.
bool write_wallet_if_unchanged(detail::Connection& db, domain::UserId user, const WalletRow& row,
                               domain::Won new_balance_won);

void append_wallet_entry(detail::Connection& db, domain::UserId user, domain::WalletEntryType type,
                         domain::Won amount_won, domain::Won balance_after_won,
                         domain::TimePoint at);

}  // namespace concertd::sqlite
