// Wallets and their history on SQLite, with the pessimistic, optimistic and distributed forms
// of a point charge.
#pragma once

#include "adapters/sqlite/sqlite_database.hpp"
#include "app/ports/storage.hpp"
#include "app/stats.hpp"

namespace concertd::sqlite {

class SqliteWalletStore final : public app::WalletStore {
public:
    SqliteWalletStore(SqliteDatabase& db, app::AppStats& stats) : db_(db), stats_(stats) {}
    app::Task<domain::Result<domain::Won>> charge(app::ChargeCommand command) override;
    app::Task<domain::Won> balance(domain::UserId user) override;
    app::Task<std::vector<domain::WalletEntry>> history(domain::UserId user, int limit) override;

private:
    SqliteDatabase& db_;
    app::AppStats& stats_;
};

}  // namespace concertd::sqlite
